"""The content-addressed store of toolchain files, shared by every kernel on the machine.

    <cache>/artifacts/<sha256>/<filename>

A file lands there only after its sha256 (and size, when the lock knows it) was checked, and is
renamed into place atomically, so its presence means it is good. The Nix engine adds the same
files to the Nix store (`nix-store --add-fixed`) so its fixed-output fetches need no network.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from ..errors import KernelBuilderError
from .lock import Artifact

log = logging.getLogger("kernel_builder")
CHUNK = 1 << 20


class FetchError(KernelBuilderError):
    """A toolchain file could not be fetched or did not match its lock entry."""


def cache_root() -> Path:
    """KERNEL_BUILDER_CACHE, else $XDG_CACHE_HOME/kernel-builder, else ~/.cache/kernel-builder."""
    if os.environ.get("KERNEL_BUILDER_CACHE"):
        return Path(os.environ["KERNEL_BUILDER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kernel-builder"


@dataclass
class FetchStats:
    """What fetching cost in one run (reported in the summary: a no-op build downloads nothing)."""

    downloaded: int = 0
    bytes: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, size: int, seconds: float) -> None:
        with self._lock:
            self.downloaded += 1
            self.bytes += size
            self.seconds += seconds


class ArtifactStore:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_root() / "artifacts"
        self.stats = FetchStats()

    def path(self, artifact: Artifact) -> Path:
        return self.root / artifact.sha256 / artifact.filename

    def has(self, artifact: Artifact) -> bool:
        return self.path(artifact).is_file()

    def fetch(self, artifact: Artifact) -> Path:
        """The verified local file of `artifact`, downloading it if needed."""
        target = self.path(artifact)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.parent / ".lock")):
            if target.is_file():
                return target
            start = time.monotonic()
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
            os.close(fd)
            try:
                self._download(artifact, Path(tmp))
                self._verify(artifact, Path(tmp))
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
            size = target.stat().st_size
            self.stats.add(size, time.monotonic() - start)
            log.debug("fetched %s (%.1f MB, %.1f s)", artifact.filename, size / 1e6, time.monotonic() - start)
        return target

    def _download(self, artifact: Artifact, dest: Path) -> None:
        parsed = urllib.parse.urlparse(artifact.url)
        if parsed.scheme == "file":
            source = Path(urllib.parse.unquote(parsed.path))
            if not source.is_file():
                raise FetchError(f"{artifact.filename}: the lock points at {source}, which does not exist on this machine "
                                 "(it was resolved from a local folder); put the file there, or resolve again with `kernel-builder lock --upgrade`")
            shutil.copyfile(source, dest)
            return
        if parsed.scheme not in ("http", "https"):
            raise FetchError(f"{artifact.filename}: unsupported URL scheme in the lock: {artifact.url}")
        import httpx

        last: Exception | None = None
        for attempt in range(4):
            try:
                with httpx.stream("GET", artifact.url, follow_redirects=True, timeout=httpx.Timeout(60.0, connect=15.0)) as response:
                    response.raise_for_status()
                    with open(dest, "wb") as out:
                        for chunk in response.iter_bytes(CHUNK):
                            out.write(chunk)
                return
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code < 500:
                    raise FetchError(f"{artifact.filename}: {artifact.url} answered {exc.response.status_code}") from None
                last = exc
            except (httpx.TransportError, OSError) as exc:
                last = exc
            time.sleep(min(8.0, 0.5 * 2 ** attempt))
        raise FetchError(f"{artifact.filename}: download from {artifact.url} failed after 4 attempts: {last}")

    @staticmethod
    def _verify(artifact: Artifact, path: Path) -> None:
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        if digest.hexdigest() != artifact.sha256:
            raise FetchError(f"{artifact.filename}: sha256 {digest.hexdigest()} does not match the lock ({artifact.sha256}); "
                             f"the file at {artifact.url} changed since it was locked")
        if artifact.size is not None and size != artifact.size:
            raise FetchError(f"{artifact.filename}: {size} bytes, the lock says {artifact.size}")


def link_wheels(toolchain, files: list[Path], folder: Path) -> list[Path]:
    """The toolchain's wheels under their own file names in `folder` (symlinks to `files`).

    Installers need a wheel's real file name; a Nix store path is `<hash>-<name>`. Every artifact
    of the lock must be among `files`; each is matched by its file name.
    """
    by_name: dict[str, Path] = {}
    for path in files:
        for artifact in toolchain.artifacts:
            if path.name == artifact.filename or path.name.endswith("-" + artifact.filename):
                by_name[artifact.filename] = path
    missing = [a.filename for a in toolchain.artifacts if a.filename not in by_name]
    if missing:
        raise FetchError(f"{toolchain.key}: {len(missing)} wheel(s) of the lock were not given: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
    folder.mkdir(parents=True, exist_ok=True)
    linked = []
    for name, path in by_name.items():
        link = folder / name
        link.symlink_to(path.resolve())
        linked.append(link)
    return linked
