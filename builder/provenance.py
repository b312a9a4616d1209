"""Where a build comes from: the unique id of its ops namespace and the provenance in metadata.

Unique id (the suffix of `_<module>_<backend>_<id>`):
- `--unique-id` when given;
- in a git work tree: the first 7 hex digits of the git tree hash of the kernel directory at
  HEAD, plus `_dirty` when tracked files under it differ from HEAD;
- otherwise: a hash of the kernel's source content (build.toml and every file it uses), so
  identical sources give an identical id.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import __version__
from .config.model import BuildConfig

ID_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class GitState:
    commit: str  # 40 hex digits of HEAD
    tree: str  # tree hash of the kernel directory at HEAD
    dirty: bool


def _git(cwd: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(directory: Path) -> GitState | None:
    """The git state of `directory` (which may be a subfolder of a repository), or None."""
    directory = directory.resolve()
    top = _git(directory, "rev-parse", "--show-toplevel")
    commit = _git(directory, "rev-parse", "HEAD") if top else None
    if not top or not commit:
        return None
    rel = directory.relative_to(Path(top).resolve()).as_posix()
    tree = _git(directory, "rev-parse", f"HEAD:{rel}" if rel != "." else "HEAD^{tree}")
    if not tree:  # the kernel folder is not committed yet
        return None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no", "--ignore-submodules", "--", ".")
    return GitState(commit=commit, tree=tree, dirty=bool(status))


def source_files(config: BuildConfig) -> list[Path]:
    """Every file that defines the build: build.toml, listed sources, the Python package."""
    root = config.root
    files = {root / "build.toml"}
    fw = config.framework
    for entry in fw.src:
        files.add(root / entry)
    for kernel in config.kernels:
        files.update(root / entry for entry in kernel.src)
    for entry in (*fw.include, *(i for k in config.kernels for i in k.include)):
        folder = root / entry
        if folder.is_dir():
            files.update(p for p in folder.rglob("*") if p.is_file())
    package = root / config.python_package_dir
    if package.is_dir():
        files.update(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(p for p in files if p.is_file())


def content_id(config: BuildConfig) -> str:
    """A deterministic id from the kernel's source content (used outside git)."""
    digest = hashlib.sha256()
    root = config.root
    for path in source_files(config):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:7]


def unique_id(config: BuildConfig, override: str | None = None) -> str:
    """The unique id of this build (see module docstring)."""
    if override is not None:
        cleaned = override.replace("-", "_")
        if not ID_RE.match(cleaned):
            from .errors import UsageError

            raise UsageError(f"--unique-id {override!r}: use letters, digits, '_' and '-' only")
        return cleaned
    state = git_state(config.root)
    if state is not None:
        return state.tree[:7] + ("_dirty" if state.dirty else "")
    return content_id(config)


COMMIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@cache
def builder_git() -> GitState | None:
    """kernel-builder's own commit: KERNEL_BUILDER_SOURCE_COMMIT/_DIRTY when set (a packaged
    build, e.g. the Nix package, knows its source revision), else the git checkout it runs from
    (an editable install); else None."""
    commit = os.environ.get("KERNEL_BUILDER_SOURCE_COMMIT", "").strip().lower()
    if COMMIT_RE.match(commit):
        return GitState(commit=commit, tree="", dirty=os.environ.get("KERNEL_BUILDER_SOURCE_DIRTY", "") in ("1", "true"))
    repo = Path(__file__).resolve().parent.parent
    return git_state(repo) if (repo / ".git").exists() else None


def provenance(config: BuildConfig, *, engine: str = "local", kernel: GitState | None = None) -> dict:
    """The `provenance` field of metadata.json.

    `engine` ("local" or "nix") is the only field in which the two engines' builds of one
    variant differ. `kernel` overrides the kernel's git state (the Nix engine builds a copy of
    the sources without .git and passes the flake's revision).
    """
    builder: dict = {"version": __version__, "engine": engine}
    own = builder_git()
    if own is not None:
        builder.update(commit=own.commit, dirty=own.dirty)
    result: dict = {"kernel-builder": builder}
    kernel = kernel or git_state(config.root)
    if kernel is not None:
        result["kernel"] = {"commit": kernel.commit, "dirty": kernel.dirty}
    return result
