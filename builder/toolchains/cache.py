"""What the toolchain cache holds, and freeing it (`kernel-builder toolchains list|prune`).

Sizes count each file once however many hard links it has (environments are hard-linked from
uv's cache and from each other), so the total is what removing everything would free at most.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .environment import LAST_USED, STAMP, toolchains_root
from .store import cache_root


def _walk_size(path: Path, seen: set[tuple[int, int]]) -> int:
    total = 0
    for entry in path.rglob("*"):
        try:
            st = entry.lstat()
        except OSError:
            continue
        if entry.is_symlink() or entry.is_dir():
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.st_size
    return total


@dataclass
class EnvironmentInfo:
    path: Path
    hash: str
    key: str | None
    ready: bool
    size: int
    last_used: float

    @property
    def last_used_text(self) -> str:
        days = (time.time() - self.last_used) / 86400
        return "today" if days < 1 else f"{days:.0f} days ago"

    def to_json(self) -> dict:
        return {"path": str(self.path), "hash": self.hash, "key": self.key, "ready": self.ready, "size": self.size, "last-used": self.last_used}


@dataclass
class Inventory:
    root: Path
    environments: list[EnvironmentInfo] = field(default_factory=list)
    environments_size: int = 0
    artifacts: int = 0
    artifacts_size: int = 0

    def to_json(self) -> dict:
        return {"root": str(self.root), "environments": [e.to_json() for e in self.environments], "environments-size": self.environments_size,
                "artifacts": self.artifacts, "artifacts-size": self.artifacts_size}


def _environments() -> list[Path]:
    root = toolchains_root()
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def inventory() -> Inventory:
    """Every environment (ready or not) and the artifact store, with sizes."""
    inv = Inventory(root=cache_root())
    seen: set[tuple[int, int]] = set()
    for path in _environments():
        try:
            stamp = json.loads((path / STAMP).read_text())
        except (OSError, ValueError):
            stamp = {}
        marker = path / LAST_USED
        used = marker.stat().st_mtime if marker.exists() else path.stat().st_mtime
        size = _walk_size(path, seen)
        inv.environments.append(EnvironmentInfo(path, path.name, stamp.get("key"), bool(stamp), size, used))
        inv.environments_size += size
    artifacts = inv.root / "artifacts"
    if artifacts.is_dir():
        files = [p for p in artifacts.glob("*/*") if p.is_file() and not p.name.startswith(".")]
        inv.artifacts = len(files)
        inv.artifacts_size = sum(p.stat().st_size for p in files)
    return inv


def prune(*, older_than_days: float, artifacts: bool, dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove environments unused for `older_than_days` (and incomplete ones); optionally the artifacts no kept environment uses."""
    cutoff = time.time() - older_than_days * 86400
    removed: list[tuple[Path, int]] = []
    kept_hashes: set[str] = set()
    for info in inventory().environments:
        if info.ready and info.last_used > cutoff:
            try:
                kept_hashes.update(json.loads((info.path / STAMP).read_text()).get("artifacts", []))
            except (OSError, ValueError):
                pass
            continue
        removed.append((info.path, info.size))
        if not dry_run:
            shutil.rmtree(info.path, ignore_errors=True)
            Path(str(info.path) + ".lock").unlink(missing_ok=True)
    store = cache_root() / "artifacts"
    if artifacts and store.is_dir():
        for folder in sorted(p for p in store.iterdir() if p.is_dir()):
            if folder.name in kept_hashes and older_than_days > 0:
                continue
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            removed.append((folder, size))
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    return removed
