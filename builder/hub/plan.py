"""The upload plan as pure data: which files to add, which to delete, in which commits.

`plan_upload(source, remote)` compares what is to be published with the branch on the Hub:

- adds: every file of the upload whose content differs from the remote file at that path
  (identical files are left alone, so an unchanged re-upload makes no commit);
- deletes, on a **new** branch (it starts as a copy of main): every `build/…` and
  `benchmarks/…` file that is not part of the upload;
- deletes, on an **existing** branch: files under `build/<variant>/` of the *uploaded*
  variants that are no longer there, every file of the *withdrawn* variants (this folder
  uploaded them before and no longer holds them, see record.py), and stale top-level
  `benchmarks/benchmark*.py`; other variants on the branch are kept (they may come from
  another machine), unless `prune`;
- README.md on main from the filled card, when it differs.

Operations go in commits of at most 1000 (additions first, so an interrupted multi-commit
upload leaves extra files, never missing ones). `verify` compares the branch after the upload
with the plan. Nothing here touches the network or the disk.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from .source import LocalFile, UploadSource

MAX_OPERATIONS_PER_COMMIT = 1000
COMMIT_MESSAGE = "Uploaded using `kernel-builder`."
PUBLISHED_PREFIXES = ("build/", "benchmarks/")


@dataclass(frozen=True)
class RemoteFile:
    """A file on the Hub: its size, git blob id and, for large (LFS/Xet) files, its sha256."""

    path: str
    size: int
    git_oid: str
    sha256: str | None = None


@dataclass(frozen=True)
class RemoteState:
    """The branch as it is before the upload (for a new branch: main, which it will start from)."""

    branch_exists: bool
    files: dict[str, RemoteFile] = field(default_factory=dict)
    readme: RemoteFile | None = None  # README.md on main


@dataclass(frozen=True)
class Operation:
    kind: str  # "add" | "delete"
    path_in_repo: str
    file: LocalFile | None = None


@dataclass(frozen=True)
class UploadPlan:
    repo_id: str
    branch: str
    new_branch: bool
    adds: tuple[LocalFile, ...]
    deletes: tuple[str, ...]
    unchanged: tuple[str, ...]
    readme: LocalFile | None  # to commit on main (None: no change or no card)
    prune: bool = False
    withdrawn: tuple[str, ...] = ()

    @property
    def upload_bytes(self) -> int:
        return sum(f.size for f in self.adds) + (self.readme.size if self.readme else 0)

    @property
    def has_changes(self) -> bool:
        return bool(self.adds or self.deletes or self.readme)

    def batches(self, max_operations: int = MAX_OPERATIONS_PER_COMMIT) -> list[list[Operation]]:
        """The branch's operations in commits of at most `max_operations`."""
        if max_operations < 1:
            raise ValueError("max_operations must be at least 1")
        operations = [Operation("add", f.path_in_repo, f) for f in self.adds] + [Operation("delete", p) for p in self.deletes]
        return [operations[i : i + max_operations] for i in range(0, len(operations), max_operations)]


def same_content(local: LocalFile, remote: RemoteFile) -> bool:
    """True when the remote file holds exactly the local content (sha256 for LFS, else the blob id)."""
    if local.size != remote.size:
        return False
    if remote.sha256 is not None:
        return local.sha256 == remote.sha256
    return local.git_oid == remote.git_oid


def _is_top_level_benchmark(path: str) -> bool:
    return path.startswith("benchmarks/") and "/" not in path[len("benchmarks/") :] and fnmatch.fnmatch(path[len("benchmarks/") :], "benchmark*.py")


def _owned_by_upload(path: str, variants: tuple[str, ...], new_branch: bool, prune: bool) -> bool:
    """Whether the upload decides about this remote path (so that it is deleted when not uploaded).

    `variants`: the uploaded ones and the withdrawn ones."""
    if new_branch:
        return path.startswith(PUBLISHED_PREFIXES)
    if _is_top_level_benchmark(path):
        return True
    if prune and path.startswith("build/"):
        return True
    return any(path.startswith(f"build/{variant}/") for variant in variants)


def plan_upload(source: UploadSource, remote: RemoteState, *, prune: bool = False) -> UploadPlan:
    """Compare the upload with the remote branch (see the module docstring)."""
    new_branch = not remote.branch_exists
    uploading = {f.path_in_repo: f for f in source.branch_files}
    adds, unchanged = [], []
    for path, local in uploading.items():
        existing = remote.files.get(path)
        if existing is not None and same_content(local, existing):
            unchanged.append(path)
        else:
            adds.append(local)
    owned = (*source.variants, *source.withdrawn)
    deletes = sorted(p for p in remote.files if p not in uploading and _owned_by_upload(p, owned, new_branch, prune))
    readme = source.card
    if readme is not None and remote.readme is not None and same_content(readme, remote.readme):
        readme = None
    return UploadPlan(source.repo_id, source.branch, new_branch, tuple(adds), tuple(deletes), tuple(unchanged), readme, prune, source.withdrawn)


def verify(source: UploadSource, plan: UploadPlan, after: dict[str, RemoteFile], readme_after: RemoteFile | None) -> list[str]:
    """Differences between the branch after the upload and what the plan says it must hold."""
    problems = []
    uploading = {f.path_in_repo: f for f in source.branch_files}
    for path, local in sorted(uploading.items()):
        remote = after.get(path)
        if remote is None:
            problems.append(f"{path}: missing on the Hub")
        elif not same_content(local, remote):
            problems.append(f"{path}: the Hub holds different content ({remote.size} bytes, {remote.sha256 or remote.git_oid})")
    for path in sorted(after):
        if path not in uploading and _owned_by_upload(path, (*source.variants, *plan.withdrawn), plan.new_branch, plan.prune):
            problems.append(f"{path}: still on the Hub but not part of the upload")
    if source.card is not None and (readme_after is None or not same_content(source.card, readme_after)):
        problems.append("README.md on main does not hold the card")
    return problems


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def dry_run_report(source: UploadSource, *, repo_type: str, prune: bool) -> dict:
    """What an upload of SOURCE would do, without asking the Hub what is there already."""
    if prune:
        deletion_rule = "every build/ file not listed here, and stale benchmarks/benchmark*.py"
    else:
        deletion_rule = (
            f"on a new branch: every build/ and benchmarks/ file not listed here; on an existing branch: files under "
            f"{', '.join(f'build/{v}/' for v in source.variants)} that are not listed here, and stale benchmarks/benchmark*.py"
        )
        if source.withdrawn:
            deletion_rule += (f"; and every file under {', '.join(f'build/{v}/' for v in source.withdrawn)} "
                              "(uploaded from this folder before, no longer in it)")
    return {
        "status": "dry_run",
        "repo_id": source.repo_id,
        "repo_type": repo_type,
        "branch": source.branch,
        "version": source.version,
        "variants": list(source.variants),
        "withdrawn": list(source.withdrawn),
        "adds": [{"path": f.path_in_repo, "size": f.size, "sha256": f.sha256} for f in source.branch_files],
        "main": [{"path": source.card.path_in_repo, "size": source.card.size, "sha256": source.card.sha256}] if source.card else [],
        "deletes": deletion_rule,
        "bytes": source.total_bytes,
        "warnings": list(source.warnings),
    }


def format_dry_run(report: dict) -> str:
    lines = [
        "dry run: nothing is sent to the Hub",
        f"repository: {report['repo_id']} ({report['repo_type']})",
        f"branch:     {report['branch']} (version {report['version']}; variants: {', '.join(report['variants'])})",
        f"add on {report['branch']}:",
    ]
    lines += [f"  {entry['path']}  ({format_size(entry['size'])})" for entry in report["adds"]]
    if report["main"]:
        lines.append("add on main:")
        lines += [f"  {entry['path']}  ({format_size(entry['size'])})" for entry in report["main"]]
    lines.append(f"delete: {report['deletes']}")
    lines.append(f"total: {len(report['adds']) + len(report['main'])} files, {format_size(report['bytes'])}")
    return "\n".join(lines)
