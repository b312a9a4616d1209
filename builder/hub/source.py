"""What an upload publishes, read from disk: the repo id, the branch and every file with its digests.

`collect_source` finds the variants (result/ → build/ → DIR), refuses variants that fail the
layout checks of `check-builds` or the portability gate, requires all variants to carry the
same version, resolves the repository id (`--repo-id` → `general.hub.repo-id`) and the branch
(`--branch` → `general.hub.branch` → `v<version>`), and lists the files: `build/<variant>/…`
and `benchmarks/benchmark*.py` for the version branch, `CARD.md` (the filled card, beside the
variants) as README.md for main. It makes no network connection.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..checks.layout import check_variant, require_variants
from ..config import rules
from ..errors import CheckError, UsageError

BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
REPO_TYPES = ("kernel", "model")


@dataclass(frozen=True)
class LocalFile:
    """A file to publish: where it goes in the repository, where it is, its size and digests."""

    path_in_repo: str
    local_path: Path
    size: int
    sha256: str  # hex; what the Hub reports for large (LFS/Xet) files
    git_oid: str  # git blob id; what the Hub reports for regular files


@dataclass(frozen=True)
class UploadSource:
    """Everything an upload publishes (no network involved in making it)."""

    repo_id: str
    branch: str
    version: int
    variants: tuple[str, ...]
    branch_files: tuple[LocalFile, ...]  # build/<variant>/… and benchmarks/benchmark*.py
    card: LocalFile | None  # README.md on main
    warnings: tuple[str, ...] = ()
    base: Path | None = None  # the folder holding the variants (build/)
    present: tuple[str, ...] = ()  # every variant in it, also those not uploaded now
    withdrawn: tuple[str, ...] = ()  # uploaded from here before, gone now: deleted (hub/record.py)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.branch_files) + (self.card.size if self.card else 0)


def file_digests(path: Path) -> tuple[int, str, str]:
    """(size, sha256 hex, git blob id) of a file, read once."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    git = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(chunk)
            git.update(chunk)
    return size, sha256.hexdigest(), git.hexdigest()


def local_file(path_in_repo: str, path: Path) -> LocalFile:
    size, sha256, git_oid = file_digests(path)
    return LocalFile(path_in_repo, path, size, sha256, git_oid)


def variant_files(variant: Path) -> list[LocalFile]:
    """Every file of a variant folder as build/<variant>/<path> (bytecode left out, links followed)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(variant, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".pyc"):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(variant).as_posix()
            files.append(local_file(f"build/{variant.name}/{rel}", path))
    return files


def check_repo_id(repo_id: str, where: str) -> str:
    """An `owner/name` repository id, or a UsageError saying what is wrong with it."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not rules.REPO_ID_RE.fullmatch(repo_id):
        raise UsageError(f"{where}: {repo_id!r} is not a Hub repository id (use OWNER/NAME, e.g. my-org/relu)")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UsageError(f"{where}: {repo_id!r} is not a Hub repository id: {exc}") from None
    return repo_id


def check_branch(branch: str, where: str) -> str:
    if not BRANCH_RE.fullmatch(branch) or ".." in branch or branch.endswith(("/", ".lock")) or "//" in branch:
        raise UsageError(f"{where}: {branch!r} is not a usable branch name (letters, digits, '.', '_', '-', '/'; e.g. v1)")
    return branch


def _load_hub_settings(kernel_dir: Path) -> tuple[str | None, str | None]:
    """`general.hub.repo-id` and `general.hub.branch` from build.toml, when DIR has one."""
    if not (kernel_dir / "build.toml").is_file():
        return None, None
    from ..config import load_config

    hub = load_config(kernel_dir, check_files=False).general.hub
    return (hub.repo_id, hub.branch) if hub is not None else (None, None)


def _gate(variant: Path, base: Path) -> list[str]:
    """The problems that keep a variant off the Hub: check-builds' rules and the portability gate."""
    from ..checks.portability import binaries_under, check_binary
    from ..standalone.naming import parse_variant

    problems = [f.render() for f in check_variant(variant, base=base) if not f.warning]
    parsed = parse_variant(variant.name) or {}
    if str(parsed.get("system") or "").endswith("-linux"):
        for binary in binaries_under([variant]):
            problems += [f"{variant.name}: {v.render()}" for v in check_binary(binary)]
    return problems


def _metadata(variant: Path) -> dict:
    return json.loads((variant / "metadata.json").read_text())


def collect_source(kernel_dir: Path, *, repo_id: str | None = None, branch: str | None = None, only: set[str] | None = None) -> UploadSource:
    """Read and check what `upload` would publish from KERNEL_DIR (see the module docstring)."""
    kernel_dir = Path(kernel_dir)
    if not kernel_dir.is_dir():
        raise UsageError(f"{kernel_dir}: no such folder")
    base, variants = require_variants(kernel_dir)
    present = tuple(v.name for v in variants)
    if only is not None:
        variants = [v for v in variants if v.name in only]
        if not variants:
            raise UsageError(f"none of the variants {', '.join(sorted(only))} is in {base}")

    problems = [p for v in variants for p in _gate(v, base)]
    if problems:
        raise CheckError(
            f"{len(problems)} problem(s) keep these variants off the Hub (see `kernel-builder check-builds` and `check-abi`):\n  "
            + "\n  ".join(problems)
        )

    metadata = {v.name: _metadata(v) for v in variants}
    versions = {name: data["version"] for name, data in metadata.items()}
    if len(set(versions.values())) != 1:
        listing = ", ".join(f"{name}: {version}" for name, version in sorted(versions.items()))
        raise UsageError(f"{base}: the variants do not agree on the kernel version ({listing}); rebuild them from one build.toml")
    version = next(iter(versions.values()))
    warnings = []
    for name, data in sorted(metadata.items()):
        kernel = (data.get("provenance") or {}).get("kernel") or {}
        if kernel.get("dirty"):
            warnings.append(f"{name} was built from a work tree with uncommitted changes (commit {str(kernel.get('commit', '?'))[:12]})")

    toml_repo_id, toml_branch = _load_hub_settings(kernel_dir)
    if repo_id is not None:
        repo_id = check_repo_id(repo_id, "--repo-id")
    elif toml_repo_id is not None:
        repo_id = check_repo_id(toml_repo_id, f"{kernel_dir / 'build.toml'}: general.hub.repo-id")
    else:
        raise UsageError(f"no repository id: pass --repo-id OWNER/NAME or set repo-id in [general.hub] of {kernel_dir / 'build.toml'}")
    if branch is not None:
        branch = check_branch(branch, "--branch")
    elif toml_branch is not None:
        branch = check_branch(toml_branch, f"{kernel_dir / 'build.toml'}: general.hub.branch")
    else:
        branch = f"v{version}"

    files = [f for v in variants for f in variant_files(v)]
    benchmarks = kernel_dir / "benchmarks"
    if benchmarks.is_dir():
        files += [local_file(f"benchmarks/{p.name}", p) for p in sorted(benchmarks.glob("benchmark*.py")) if p.is_file()]
    card_path = base / "CARD.md"
    card = local_file("README.md", card_path) if card_path.is_file() else None
    if card is None:
        warnings.append(f"no {card_path}: the repository keeps its README (run `kernel-builder fill-card` to write one)")
    return UploadSource(repo_id, branch, version, tuple(v.name for v in variants), tuple(files), card, tuple(warnings), base, present)
