"""Write a generated tree next to the user's files, and remove exactly what was written.

A manifest (`.kernel-builder-generated.json`) records each generated file with its hash, so
regenerating may replace files it wrote earlier while refusing to overwrite the user's own
files (or generated files the user edited) unless forced, and `clean-pyproject` removes
exactly the generated files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import UsageError, named_os_errors

MANIFEST = ".kernel-builder-generated.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(target: Path) -> dict[str, str]:
    path = target / MANIFEST
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()).get("files", {}))
    except (ValueError, AttributeError):
        return {}


def _is_ours_unmodified(path: Path, recorded: str | None) -> bool:
    return recorded is not None and path.is_file() and _sha(path.read_bytes()) == recorded


def write_tree(target: Path, files: dict[str, bytes], *, force: bool = False) -> list[Path]:
    """Write `files` under `target`; refuse (UsageError) to replace foreign or edited files."""
    target.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(target)
    conflicts = [
        rel for rel in files
        if (target / rel).exists() and not _is_ours_unmodified(target / rel, previous.get(rel)) and (target / rel).read_bytes() != files[rel]
    ]
    if conflicts and not force:
        listed = "\n  ".join(conflicts)
        raise UsageError(f"these files exist in {target} and were not generated (or were edited since):\n  {listed}\nuse -f/--force to overwrite them")
    written = []
    for rel, data in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            with named_os_errors(path):
                path.write_bytes(data)
        written.append(path)
    # Files generated last time but no longer part of the tree are removed if untouched.
    for rel, recorded in previous.items():
        if rel not in files and _is_ours_unmodified(target / rel, recorded):
            (target / rel).unlink()
    manifest = {"generator": f"kernel-builder {__version__}", "files": {rel: _sha(data) for rel, data in sorted(files.items())}}
    with named_os_errors(target / MANIFEST):
        (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return written


@dataclass
class CleanResult:
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # edited since generation


def clean_tree(target: Path, *, force: bool = False, dry_run: bool = False) -> CleanResult:
    """Remove the files the manifest lists (edited ones only with `force`) and empty folders."""
    manifest = target / MANIFEST
    if not manifest.is_file():
        raise UsageError(f"{target} has no {MANIFEST}: nothing was generated there by kernel-builder")
    result = CleanResult()
    folders: set[Path] = set()
    for rel, recorded in read_manifest(target).items():
        path = target / rel
        if not path.exists():
            continue
        if not force and not _is_ours_unmodified(path, recorded):
            result.kept.append(path)
            continue
        result.removed.append(path)
        folders.update(p for p in path.parents if p != target and target in p.parents)
        if not dry_run:
            path.unlink()
    if not dry_run:
        if not result.kept:
            manifest.unlink()
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return result
