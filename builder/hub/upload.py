"""Carry out an upload plan on the Hub with huggingface_hub's `HfApi`, then check the result.

Steps: create the repository (kind `kernel` unless told otherwise; not with --create-pr), read
the branches, the branch's files and README.md on main, plan (plan.py), create the branch when
it is new, commit the branch's operations in batches, commit README.md on main, then list the
branch again and compare every file and digest with the plan.

Each commit names its parent (`parent_commit`), so the Hub applies it only on top of the state
it was planned against, all of it or nothing. When a commit's answer is lost (timeout, dropped
connection, 5xx), the branch head is read again before anything is re-sent: if the commit had
landed it is not sent twice; if someone else moved the branch the upload stops.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import KernelBuilderError, UsageError
from .client import HubError, describe, endpoint_of, explain, hub_api, is_transient, retry_attempts, retry_wait_s, retrying, status_of
from .plan import COMMIT_MESSAGE, MAX_OPERATIONS_PER_COMMIT, Operation, RemoteFile, RemoteState, UploadPlan, format_size, plan_upload, same_content, verify
from .progress import UploadProgress
from .source import UploadSource

log = logging.getLogger("kernel_builder")

# Files handed to huggingface_hub's pre-upload at once: progress is reported between groups.
PREUPLOAD_GROUP_FILES = 100
PREUPLOAD_GROUP_BYTES = 64 << 20


@dataclass
class UploadOptions:
    repo_type: str = "kernel"
    private: bool = False
    create_pr: bool = False
    prune: bool = False
    max_operations: int = MAX_OPERATIONS_PER_COMMIT


@dataclass
class UploadResult:
    status: str  # "no_changes" | "uploaded" | "pull_request_created"
    repo_id: str
    branch: str
    url: str
    plan: UploadPlan
    pull_requests: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "repo_id": self.repo_id,
            "branch": self.branch,
            "url": self.url,
            "pull_requests": self.pull_requests,
            "commits": self.commits,
            "added": [f.path_in_repo for f in self.plan.adds] + (["README.md (main)"] if self.plan.readme else []),
            "deleted": list(self.plan.deletes),
            "withdrawn": list(self.plan.withdrawn),
            "unchanged": len(self.plan.unchanged),
            "bytes": self.plan.upload_bytes,
        }


# ---- reading the Hub --------------------------------------------------------------------------


def _heads(api, repo_id: str, repo_type: str) -> dict[str, str]:
    """Branch name (and pull-request ref) → commit id."""
    refs = api.list_repo_refs(repo_id, repo_type=repo_type, include_pull_requests=True)
    heads = {ref.name: ref.target_commit for ref in refs.branches}
    heads.update({ref.ref: ref.target_commit for ref in refs.pull_requests or []})
    return heads


def _remote_file(entry) -> RemoteFile:
    return RemoteFile(entry.path, entry.size, entry.blob_id, entry.lfs.sha256 if entry.lfs is not None else None)


def _tree(api, repo_id: str, repo_type: str, revision: str, *, recursive: bool = True) -> dict[str, RemoteFile]:
    from huggingface_hub.hf_api import RepoFile

    entries = api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=recursive)
    return {e.path: _remote_file(e) for e in entries if isinstance(e, RepoFile)}


def _landed(files: dict[str, RemoteFile], batch: list[Operation]) -> bool:
    """Whether a branch already holds the result of this batch of operations."""
    for operation in batch:
        remote = files.get(operation.path_in_repo)
        if operation.kind == "delete" and remote is not None:
            return False
        if operation.kind == "add" and (remote is None or not same_content(operation.file, remote)):
            return False
    return True


# ---- committing -------------------------------------------------------------------------------


@dataclass
class _Committed:
    oid: str
    pr_url: str | None = None
    pr_num: int | None = None


def _groups(adds: list) -> list[list]:
    groups: list[list] = [[]]
    size = 0
    for op in adds:
        if groups[-1] and (len(groups[-1]) >= PREUPLOAD_GROUP_FILES or size + op.upload_info.size > PREUPLOAD_GROUP_BYTES):
            groups.append([])
            size = 0
        groups[-1].append(op)
        size += op.upload_info.size
    return [g for g in groups if g]


class Uploader:
    """One upload: the API, the repository and where progress goes."""

    def __init__(self, source: UploadSource, options: UploadOptions, progress: UploadProgress, api=None):
        self.source = source
        self.options = options
        self.progress = progress
        self.api = api if api is not None else hub_api()
        self.repo_id = source.repo_id
        self.repo_type = options.repo_type

    def step(self, what: str, call: Callable):
        return retrying(what, call, repo_id=self.repo_id)

    def heads(self) -> dict[str, str]:
        return self.step("reading the repository's branches", lambda: _heads(self.api, self.repo_id, self.repo_type))

    def tree(self, revision: str, what: str, *, recursive: bool = True) -> dict[str, RemoteFile]:
        return self.step(what, lambda: _tree(self.api, self.repo_id, self.repo_type, revision, recursive=recursive))

    def _operations(self, batch: list[Operation]) -> list:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        return [
            CommitOperationAdd(path_in_repo=op.path_in_repo, path_or_fileobj=str(op.file.local_path)) if op.kind == "add" else CommitOperationDelete(path_in_repo=op.path_in_repo)
            for op in batch
        ]

    def _send(self, batch: list[Operation], revision: str, message: str, parent: str | None, create_pr: bool) -> _Committed:
        from huggingface_hub import CommitOperationAdd

        operations = self._operations(batch)
        adds = [op for op in operations if isinstance(op, CommitOperationAdd)]
        for group in _groups(adds):
            # Large files travel here (LFS/Xet); regular files travel inside the commit.
            self.api.preupload_lfs_files(self.repo_id, additions=group, repo_type=self.repo_type, revision=revision, create_pr=create_pr)
            self.progress.advance(sum(op.upload_info.size for op in group), len(group))
        info = self.api.create_commit(self.repo_id, operations=operations, commit_message=message, repo_type=self.repo_type, revision=revision,
                                      parent_commit=parent, create_pr=create_pr)
        return _Committed(info.oid, info.pr_url, info.pr_num)

    def commit(self, batch: list[Operation], revision: str, message: str, parent: str | None, *, create_pr: bool = False) -> _Committed:
        """One commit, re-sent after transient failures unless it turns out to have landed."""
        what = f"committing to {revision}"
        attempts, wait = retry_attempts(), retry_wait_s()
        for attempt in range(1, attempts + 1):
            start = self.progress.completed
            try:
                return self._send(batch, revision, message, parent, create_pr)
            except KernelBuilderError:
                raise
            except Exception as exc:
                self.progress.reset_to(start)
                lost = is_transient(exc) or status_of(exc) == 412
                if not lost:
                    raise explain(what, exc, self.repo_id) from None
                if parent is not None:
                    head = self.heads().get(revision)
                    if head is not None and head != parent:
                        if _landed(self.tree(head, f"reading {revision}"), batch):
                            log.warning("%s: the commit had landed (%s); its answer was lost (%s)", what, head[:12], describe(exc))
                            return _Committed(head)
                        raise HubError(f"{revision} changed on the Hub during the upload (it is now at {head[:12]}, expected {parent[:12]}); "
                                       "this commit was not applied; run the upload again") from None
                if status_of(exc) == 412 or attempt == attempts:
                    raise HubError(f"{what} failed after {attempt} attempt(s): {describe(exc)}; nothing of this commit was applied") from None
                log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", what, describe(exc), wait, attempt + 1, attempts)
                time.sleep(wait)
                wait = min(30.0, wait * 2)
        raise AssertionError("unreachable")

    # ---- the whole upload

    def run(self) -> UploadResult:
        from huggingface_hub import get_token

        source, options = self.source, self.options
        if get_token() is None:  # HF_TOKEN, else the token `hf auth login` stored
            raise UsageError("no Hub token: set HF_TOKEN to a token with write access, or run `hf auth login`")
        for warning in source.warnings:
            log.warning(warning)
        if not options.create_pr:
            self.step("creating the repository", lambda: self.api.create_repo(self.repo_id, repo_type=self.repo_type, private=options.private, exist_ok=True))
        try:
            heads = self.heads()
        except HubError as exc:
            if exc.status == 404:
                hint = "; --create-pr needs an existing repository (upload without --create-pr to create it)" if options.create_pr else ""
                raise HubError(f"{self.repo_id} ({self.repo_type}) does not exist on the Hub{hint}") from None
            raise
        branch_head = heads.get(source.branch)
        start = branch_head or heads.get("main")
        files = self.tree(start, f"listing {source.branch if branch_head else 'main'}") if start else {}
        readme = self.tree(heads["main"], "reading README.md on main", recursive=False) if "main" in heads else {}
        plan = plan_upload(source, RemoteState(branch_head is not None, files, readme.get("README.md")), prune=options.prune)
        url = self.tree_url(source.branch)
        result = UploadResult("no_changes", self.repo_id, source.branch, url, plan)
        if not plan.has_changes:
            self.progress.note(f"{self.repo_id}@{source.branch} is up to date ({len(plan.unchanged)} files unchanged)")
            return result

        if plan.new_branch:
            self.create_branch(source.branch, start)
            branch_head = start
        self.progress.start(plan.upload_bytes, len(plan.adds) + (1 if plan.readme else 0))
        batches = plan.batches(options.max_operations)
        revision = source.branch
        try:
            for index, batch in enumerate(batches, 1):
                message = COMMIT_MESSAGE + (f" (batch {index}/{len(batches)})" if len(batches) > 1 else "")
                adds = [op for op in batch if op.kind == "add"]
                self.progress.note(f"{revision}: committing {len(adds)} files ({format_size(sum(op.file.size for op in adds))}), "
                                   f"{len(batch) - len(adds)} deletions" + (f" [batch {index}/{len(batches)}]" if len(batches) > 1 else ""))
                open_pr = options.create_pr and index == 1
                done = self.commit(batch, revision, message, None if open_pr else branch_head, create_pr=open_pr)
                branch_head = done.oid
                result.commits.append(done.oid)
                if open_pr:
                    revision = f"refs/pr/{done.pr_num}"
                    result.pull_requests.append(done.pr_url)
        except KernelBuilderError as exc:
            self.progress.finish()
            if result.commits:
                raise HubError(f"{exc}\n{len(result.commits)} of {len(batches)} commits landed on {revision}: it holds part of the upload "
                               "until the upload is run again (which sends only what is missing)") from None
            if plan.new_branch and not options.create_pr:
                self.remove_empty_branch(source.branch)
            raise
        readme_after = readme.get("README.md")
        if plan.readme is not None:
            self.progress.note("main: committing README.md from the card")
            card = [Operation("add", "README.md", plan.readme)]
            done = self.commit(card, "main", COMMIT_MESSAGE, None if options.create_pr else heads.get("main"), create_pr=options.create_pr)
            result.commits.append(done.oid)
            if options.create_pr:
                result.pull_requests.append(done.pr_url)
            readme_after = self.tree(done.oid, "reading README.md after the upload", recursive=False).get("README.md")
        self.progress.finish()

        after = self.tree(branch_head, "listing the branch after the upload")
        problems = verify(source, plan, after, readme_after)
        if problems:
            raise HubError(f"the Hub's copy of {self.repo_id}@{source.branch} differs from the upload:\n  " + "\n  ".join(problems))
        result.status = "pull_request_created" if options.create_pr else "uploaded"
        return result

    def create_branch(self, branch: str, start: str | None) -> None:
        try:
            self.step(f"creating branch {branch}", lambda: self.api.create_branch(self.repo_id, branch=branch, revision=start, repo_type=self.repo_type, exist_ok=True))
        except HubError as exc:
            if self.options.create_pr:
                raise HubError(f"{exc}\nbranch {branch} does not exist and this token may not create it; pull requests can only target existing "
                               f"branches: ask a maintainer of {self.repo_id} to create {branch}, then run the upload again") from None
            raise

    def remove_empty_branch(self, branch: str) -> None:
        """Delete a branch this upload created when nothing could be committed to it."""
        try:
            self.step(f"removing the empty branch {branch}", lambda: self.api.delete_branch(self.repo_id, branch=branch, repo_type=self.repo_type))
        except KernelBuilderError as exc:
            log.warning("branch %s was created but nothing was committed to it, and it could not be removed: %s", branch, exc)

    def tree_url(self, branch: str) -> str:
        from huggingface_hub import constants

        prefix = constants.REPO_TYPES_URL_PREFIXES.get(self.repo_type, "")
        return f"{endpoint_of(self.api)}/{prefix}{self.repo_id}/tree/{branch}"


def upload(source: UploadSource, options: UploadOptions, progress: UploadProgress | None = None, *, api=None) -> UploadResult:
    """Publish SOURCE (see the module docstring); raises HubError when the Hub's copy is not the plan."""
    return Uploader(source, options, progress or UploadProgress(quiet=True), api).run()
