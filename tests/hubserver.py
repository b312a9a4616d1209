"""A small Hugging Face Hub on 127.0.0.1 for tests, with fault injection.

No maintained package implements the Hub's API for kernel repositories (PyPI's "local hub"
packages are clients of other servers), so this one is kept small and honest: it stores real
commits (every commit holds its full tree; branches and pull-request refs point at commits),
applies a commit all or nothing (a wrong `parentCommit` is refused with 412, like the Hub),
stores regular files from the commit payload and large files through the Git LFS batch API,
and serves what huggingface_hub and `kernels` ask for: whoami, repo create, repo info, refs,
branch create, tree listing, preupload, commit, validate-yaml, organization overview and
file resolve (HEAD/GET). huggingface_hub and kernels run unpatched against it through
HF_ENDPOINT (and HF_TOKEN).

Xet: with hf_xet installed, huggingface_hub sends every file the server calls "lfs" through
the Xet protocol, which needs a content-addressed storage service this server does not have.
So by default preupload answers "regular" for every file (the content travels base64 in the
commit, as the Hub does for small text files), and with `lfs_patterns` set it answers "lfs" for
matching files, for clients that run with HF_HUB_DISABLE_XET=1 and so use the LFS batch API
implemented here. Downloads never carry `X-Xet-Hash`, so clients download over plain HTTP.

Faults (`add_fault`) apply per endpoint name (see ENDPOINTS) and method: an HTTP status, a
dropped connection before or after the request is processed, or a wait longer than the
client's timeout. Every request is recorded in `requests`.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

ENDPOINTS = ("agent_harnesses", "whoami", "create_repo", "repo_info", "refs", "branch", "tree", "preupload", "commit", "validate_yaml", "org_overview",
             "resolve", "lfs_batch", "lfs_upload", "lfs_verify")
TYPE_PREFIXES = {"models": "model", "kernels": "kernel", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "kernel": "kernels/", "dataset": "datasets/", "space": "spaces/"}
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_GITATTRIBUTES = b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.so filter=lfs diff=lfs merge=lfs -text\n"
REGULAR_LIMIT = 10 * 1000 * 1000  # the Hub stores larger files in LFS


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def oid(self) -> str:
        """The git blob id the Hub reports: of the content, or of the LFS pointer file."""
        return git_oid(self.pointer if self.lfs else self.data)


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, Blob]
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    pull_requests: dict[int, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        match = re.fullmatch(r"refs/pr/(\d+)", revision)
        if match:
            return self.pull_requests.get(int(match.group(1)))
        return revision if revision in self.commits else None


@dataclass
class Fault:
    endpoint: str
    kind: str  # "status" | "drop" | "drop_after" | "timeout"
    status: int = 503
    times: int = 1  # how many matching requests it hits (-1: all)
    method: str | None = None
    delay: float = 3.0
    after: int = 0  # matching requests let through before the fault starts


@dataclass
class Request:
    method: str
    endpoint: str
    path: str
    outcome: str = "pending"  # then the status sent, "dropped" or "timeout"


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class _Drop(Exception):
    pass


class HubState:
    """Users, tokens, repositories and large-file storage."""

    def __init__(self, *, users: dict[str, list[str]] | None = None, tokens: dict[str, str] | None = None,
                 trusted: tuple[str, ...] = (), lfs_patterns: tuple[str, ...] = ()):
        self.users = users or {}
        self.tokens = tokens or {}
        self.trusted = set(trusted)
        self.lfs_patterns = lfs_patterns
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.lock = threading.RLock()
        self.counter = 0

    def user_of(self, token: str | None) -> str | None:
        return self.tokens.get(token) if token else None

    def may_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (namespace == user or namespace in self.users.get(user, []))

    def new_commit(self, repo: Repo, parent: str | None, message: str, files: dict[str, Blob]) -> Commit:
        self.counter += 1
        digest = hashlib.sha1(json.dumps([parent, message, sorted((p, b.oid) for p, b in files.items()), self.counter]).encode())
        commit = Commit(digest.hexdigest(), parent, message, dict(files))
        repo.commits[commit.oid] = commit
        return commit

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type, repo_id, private)
        # Like the Hub: a new repository has one commit on main holding .gitattributes.
        repo.branches["main"] = self.new_commit(repo, None, "initial commit", {".gitattributes": Blob(DEFAULT_GITATTRIBUTES)}).oid
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def is_lfs(self, path: str, size: int) -> bool:
        return bool(self.lfs_patterns) and (size > REGULAR_LIMIT or any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in self.lfs_patterns))


class HubServer:
    """The server: `with HubServer(...) as hub:` then point HF_ENDPOINT at `hub.url`."""

    def __init__(self, **state_args):
        self.state = HubState(**state_args)
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.tokens_seen: set[str] = set()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- test helpers

    def add_fault(self, endpoint: str, kind: str, **kwargs) -> Fault:
        assert endpoint in ENDPOINTS, endpoint
        fault = Fault(endpoint, kind, **kwargs)
        self.faults.append(fault)
        return fault

    def take_fault(self, endpoint: str, method: str) -> Fault | None:
        with self.state.lock:
            for fault in self.faults:
                if fault.endpoint == endpoint and fault.times != 0 and (fault.method is None or fault.method == method):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1 if fault.times > 0 else 0
                    return fault
        return None

    def count(self, endpoint: str, method: str | None = None) -> int:
        return sum(1 for r in self.requests if r.endpoint == endpoint and (method is None or r.method == method))

    def repo(self, repo_id: str, repo_type: str = "kernel") -> Repo:
        return self.state.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, revision: str, repo_type: str = "kernel") -> dict[str, Blob]:
        repo = self.repo(repo_id, repo_type)
        return dict(repo.commits[repo.resolve(revision)].files)

    def history(self, repo_id: str, revision: str, repo_type: str = "kernel") -> list[Commit]:
        repo = self.repo(repo_id, repo_type)
        oid, commits = repo.resolve(revision), []
        while oid is not None:
            commits.append(repo.commits[oid])
            oid = repo.commits[oid].parent
        return commits


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the test reads `hub.requests`
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ---- plumbing

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        if token:
            self.hub.tokens_seen.add(token)
        return token

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _route(self, segments: list[str]) -> tuple[str, dict]:
        """The endpoint name and its parameters, from the path segments (still %-encoded)."""
        s = [unquote(x) for x in segments]
        if s[:2] == ["api", "agent-harnesses"]:
            return "agent_harnesses", {}
        if s[:2] == ["api", "whoami-v2"]:
            return "whoami", {}
        if s[:3] == ["api", "repos", "create"]:
            return "create_repo", {}
        if s[:2] == ["api", "validate-yaml"]:
            return "validate_yaml", {}
        if s[:2] == ["api", "organizations"] and len(s) == 4 and s[3] == "overview":
            return "org_overview", {"org": s[2]}
        if len(s) >= 4 and s[0] == "api" and s[1] in TYPE_PREFIXES:
            params = {"repo_type": TYPE_PREFIXES[s[1]], "repo_id": f"{s[2]}/{s[3]}"}
            rest = s[4:]
            if not rest:
                return "repo_info", {**params, "revision": "main"}
            kind, tail = rest[0], rest[1:]
            if kind == "revision" and tail:
                return "repo_info", {**params, "revision": tail[0]}
            if kind == "refs":
                return "refs", params
            if kind == "branch" and tail:
                return "branch", {**params, "branch": "/".join(tail)}
            if kind in ("tree", "preupload", "commit") and tail:
                return kind, {**params, "revision": tail[0], "path": "/".join(tail[1:])}
        if s[:2] == ["__lfs", "verify"]:
            return "lfs_verify", {}
        if s and s[0] == "__lfs" and len(s) == 2:
            return "lfs_upload", {"oid": s[1]}
        prefix_type = TYPE_PREFIXES.get(s[0]) if s else None
        start = 1 if prefix_type in ("kernel", "dataset", "space") else 0
        repo_type = prefix_type if start else "model"
        if len(s) >= start + 3 and s[start + 1].endswith(".git") and s[start + 2 :] == ["info", "lfs", "objects", "batch"]:
            return "lfs_batch", {"repo_type": repo_type, "repo_id": f"{s[start]}/{s[start + 1][:-4]}"}
        if len(s) >= start + 5 and s[start + 2] == "resolve":
            return "resolve", {"repo_type": repo_type, "repo_id": f"{s[start]}/{s[start + 1]}", "revision": s[start + 3],
                               "path": "/".join(s[start + 4 :])}
        return "unknown", {}

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        endpoint, params = self._route([x for x in split.path.split("/") if x])
        body = self._body() if method in ("POST", "PUT") else b""
        fault = self.hub.take_fault(endpoint, method)
        record = Request(method, endpoint, split.path)
        self.hub.requests.append(record)  # at arrival: a test may look while a slow answer is pending
        try:
            if fault is not None and fault.kind in ("drop", "timeout"):
                if fault.kind == "timeout":
                    record.outcome = "timeout"
                    time.sleep(fault.delay)
                raise _Drop
            if fault is not None and fault.kind == "status":
                self._json(fault.status, {"error": f"injected fault {fault.status}"}, {"X-Error-Message": f"injected fault {fault.status}"})
                record.outcome = str(fault.status)
                return
            try:
                with self.hub.state.lock:
                    status, payload, headers, content_type = getattr(self, f"_{endpoint}")(method, params, query, body)
            except HubError as exc:
                headers = {"X-Error-Message": exc.message}
                if exc.code:
                    headers["X-Error-Code"] = exc.code
                status, payload, content_type = exc.status, json.dumps({"error": exc.message, **exc.extra}).encode(), "application/json"
            if fault is not None and fault.kind == "drop_after":
                raise _Drop  # processed, but the answer is lost
            self._send(status, payload, headers, content_type)
            record.outcome = str(status)
        except _Drop:
            if record.outcome == "pending":
                record.outcome = "dropped"
            self.close_connection = True

    def _unknown(self, method, params, query, body):
        raise HubError(404, f"no such endpoint: {method} {self.path}")

    # ---- helpers

    def _user(self, required: bool = True) -> str | None:
        user = self.hub.state.user_of(self._token())
        if required and user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _repo(self, params: dict, *, write: bool = False, pull_request: bool = False) -> Repo:
        """The repository, if this user may read it (and write it; a pull request needs only a login)."""
        state = self.hub.state
        repo = state.repos.get((params["repo_type"], params["repo_id"]))
        user = self._user(required=write)
        namespace = params["repo_id"].split("/")[0]
        if repo is None or (repo.private and not state.may_write(user, namespace)):
            raise HubError(404, "Repository not found", "RepoNotFound")
        if write and not pull_request and not state.may_write(user, namespace):
            raise HubError(403, f"You don't have the rights to write to {params['repo_id']}")
        return repo

    def _commit_of(self, repo: Repo, revision: str) -> Commit:
        oid = repo.resolve(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    @staticmethod
    def _ok(data) -> tuple:
        return 200, json.dumps(data).encode(), {}, "application/json"

    # ---- endpoints (called with the state lock held)

    def _agent_harnesses(self, method, params, query, body):
        return self._ok({"standardEnvVars": [], "harnesses": {}})  # huggingface_hub's user-agent probe

    def _whoami(self, method, params, query, body):
        user = self._user()
        orgs = [{"name": org, "type": "org"} for org in self.hub.state.users.get(user, [])]
        return self._ok({"type": "user", "name": user, "fullname": user, "orgs": orgs, "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def _create_repo(self, method, params, query, body):
        request = json.loads(body or b"{}")
        user = self._user()
        namespace = request.get("organization") or user
        repo_type = request.get("type") or "model"
        repo_id = f"{namespace}/{request['name']}"
        state = self.hub.state
        if not state.may_write(user, namespace):
            raise HubError(403, f"You don't have the rights to create a repository under {namespace}")
        if (repo_type, repo_id) in state.repos:
            raise HubError(409, "You already created this repo", extra={"url": f"{self.hub.url}/{URL_PREFIX[repo_type]}{repo_id}"})
        private = request.get("private") is True or request.get("visibility") == "private"
        state.create_repo(repo_type, repo_id, private)
        return self._ok({"url": f"{self.hub.url}/{URL_PREFIX[repo_type]}{repo_id}", "name": repo_id})

    def _repo_info(self, method, params, query, body):
        repo = self._repo(params)
        commit = self._commit_of(repo, params["revision"])
        return self._ok({"id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.oid, "private": repo.private,
                         "lastModified": commit.date, "siblings": [{"rfilename": p} for p in sorted(commit.files)]})

    def _refs(self, method, params, query, body):
        repo = self._repo(params)
        data = {"branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in sorted(repo.branches.items())],
                "converts": [], "tags": []}
        if query.get("include_prs"):
            data["pullRequests"] = [{"name": str(n), "ref": f"refs/pr/{n}", "targetCommit": c} for n, c in sorted(repo.pull_requests.items())]
        return self._ok(data)

    def _branch(self, method, params, query, body):
        repo = self._repo(params, write=True)
        if method == "DELETE":
            if params["branch"] not in repo.branches or params["branch"] == "main":
                raise HubError(404, f"Invalid rev id: {params['branch']}", "RevisionNotFound")
            del repo.branches[params["branch"]]
            return self._ok({})
        if params["branch"] in repo.branches:
            raise HubError(409, f"Branch {params['branch']} already exists")
        start = json.loads(body or b"{}").get("startingPoint") or "main"
        repo.branches[params["branch"]] = self._commit_of(repo, start).oid
        return self._ok({})

    def _tree(self, method, params, query, body):
        repo = self._repo(params)
        commit = self._commit_of(repo, params["revision"])
        base = params["path"].strip("/")
        prefix = f"{base}/" if base else ""
        recursive = query.get("recursive", "").lower() in ("1", "true")
        files = {p: b for p, b in commit.files.items() if p.startswith(prefix)}
        if base and not files:
            raise HubError(404, f"{base} does not exist on {params['revision']}", "EntryNotFound")
        entries, folders = [], set()
        for path, blob in sorted(files.items()):
            rest = path[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if (recursive or depth == 1) and folder not in folders:
                    folders.add(folder)
                    entries.append({"type": "directory", "path": folder, "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0})
            if recursive or len(parts) == 1:
                entry = {"type": "file", "path": path, "size": len(blob.data), "oid": blob.oid}
                if blob.lfs:
                    entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
                entries.append(entry)
        return self._ok(entries)

    def _preupload(self, method, params, query, body):
        repo = self._repo(params, write=True, pull_request=query.get("create_pr") == "1" or params["revision"].startswith("refs/pr/"))
        commit = self._commit_of(repo, params["revision"])
        answers = []
        for item in json.loads(body)["files"]:
            existing = commit.files.get(item["path"])
            remote_oid = (existing.sha256 if existing.lfs else existing.oid) if existing is not None else None
            mode = "lfs" if self.hub.state.is_lfs(item["path"], item["size"]) else "regular"
            answers.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": remote_oid})
        return self._ok({"files": answers, "commitOid": commit.oid})

    def _commit(self, method, params, query, body):
        state = self.hub.state
        revision = params["revision"]
        repo = self._repo(params, write=True, pull_request=query.get("create_pr") == "1" or revision.startswith("refs/pr/"))
        base = self._commit_of(repo, revision)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        create_pr = query.get("create_pr") == "1"
        parent = header.get("parentCommit")
        if parent is not None and parent != base.oid:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(base.files)
        for line in lines:  # validate and apply to a copy: all or nothing
            key, value = line["key"], line.get("value", {})
            if key == "file":
                files[value["path"]] = Blob(base64.b64decode(value["content"]))
            elif key == "lfsFile":
                data = state.lfs.get(value["oid"])
                if data is None or len(data) != value["size"]:
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was not uploaded")
                files[value["path"]] = Blob(data, lfs=True)
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            elif key != "header":
                raise HubError(400, f"unsupported commit operation {key}")
        commit = state.new_commit(repo, base.oid, header.get("summary", ""), files)
        prefix = f"{self.hub.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"
        answer = {"success": True, "commitOid": commit.oid, "commitUrl": f"{prefix}/commit/{commit.oid}"}
        if create_pr:
            number = max(repo.pull_requests, default=0) + 1
            repo.pull_requests[number] = commit.oid
            answer["pullRequestUrl"] = f"{prefix}/discussions/{number}"
        elif revision.startswith("refs/pr/"):
            repo.pull_requests[int(revision.rsplit("/", 1)[1])] = commit.oid
        elif revision in repo.branches:
            repo.branches[revision] = commit.oid
        else:
            raise HubError(400, f"cannot commit to a commit id ({revision}); use a branch")
        return self._ok(answer)

    def _validate_yaml(self, method, params, query, body):
        return self._ok({"errors": [], "warnings": []})

    def _org_overview(self, method, params, query, body):
        org = params["org"]
        known = {o for orgs in self.hub.state.users.values() for o in orgs}
        if org not in known:
            raise HubError(404, f"Organization {org} not found")
        return self._ok({"name": org, "fullname": org, "avatarUrl": "", "trustedKernelPublisher": org in self.hub.state.trusted})

    def _resolve(self, method, params, query, body):
        repo = self._repo(params)
        commit = self._commit_of(repo, params["revision"])
        blob = commit.files.get(params["path"])
        if blob is None:
            raise HubError(404, f"Entry not found: {params['path']}", "EntryNotFound")
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.sha256 if blob.lfs else blob.oid}"'}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))})
        data = blob.data
        byte_range = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if byte_range and method == "GET":
            start = int(byte_range.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return 206, data[start:], headers, "application/octet-stream"
        return 200, data, headers, "application/octet-stream"

    def _lfs_batch(self, method, params, query, body):
        self._repo(params, write=True)
        request = json.loads(body)
        objects = []
        for item in request["objects"]:
            entry = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.hub.state.lfs:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/__lfs/{item['oid']}", "header": {}},
                                    "verify": {"href": f"{self.hub.url}/__lfs/verify", "header": {}}}
            objects.append(entry)
        return 200, json.dumps({"transfer": "basic", "objects": objects}).encode(), {}, "application/vnd.git-lfs+json"

    def _lfs_upload(self, method, params, query, body):
        if hashlib.sha256(body).hexdigest() != params["oid"]:
            raise HubError(400, "the uploaded content does not match its sha256")
        self.hub.state.lfs[params["oid"]] = body
        return 200, b"", {}, "text/plain"

    def _lfs_verify(self, method, params, query, body):
        request = json.loads(body)
        data = self.hub.state.lfs.get(request["oid"])
        if data is None or len(data) != request["size"]:
            raise HubError(404, "object not found")
        return self._ok({})
