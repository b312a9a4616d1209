"""Put finished variants into build/ atomically, one kernel build at a time.

Layout of kernel-builder's private state (ignored by the loader, which skips names that are
not variants, and by upload/check-builds, which skip hidden folders):

  build/.kernel-builder/lock             one build per kernel directory at a time
  build/.kernel-builder/logs/<variant>.log
  build/.kernel-builder/work/<variant>/  generated tree and CMake build folder (incremental)
  build/.kernel-builder/staging-*        variants being assembled
  build/.kernel-builder/replaced-*       the previous good variant while it is swapped out

A variant is assembled and checked in a staging folder on the same file system, then renamed
into place; the previous good variant is moved aside first and restored if the rename fails.
A build that dies between the two renames is repaired by the next one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from ..errors import UsageError

STATE_DIR = ".kernel-builder"


class BuildDir:
    """The build/ folder of one kernel, with its private state."""

    def __init__(self, kernel_dir: Path, *, root: Path | None = None, state: Path | None = None):
        self.root = Path(root) if root is not None else Path(kernel_dir) / "build"
        self.state = Path(state) if state is not None else self.root / STATE_DIR

    def log_path(self, variant: str) -> Path:
        path = self.state / "logs" / f"{variant}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def work_dir(self, variant: str) -> Path:
        path = self.state / "work" / variant
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def locked(self, wait: float = -1, on_wait=None) -> Iterator[None]:
        """Hold the kernel's build lock; `on_wait()` is called if another build holds it."""
        self.state.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.state / "lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait(self.state / "lock")
            try:
                lock.acquire(timeout=wait)
            except Timeout:
                raise UsageError(f"another kernel-builder build holds {self.state / 'lock'}") from None
        try:
            self.recover()
            yield
        finally:
            lock.release()

    def recover(self) -> None:
        """Repair what an interrupted build left: restore swapped-out variants, drop staging."""
        if not self.state.is_dir():
            return
        for entry in self.state.iterdir():
            if entry.name.startswith("replaced-"):
                variant = entry.name[len("replaced-"):].rsplit(".", 1)[0]
                final = self.root / variant
                if not final.exists():
                    entry.rename(final)
                else:
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith("staging-"):
                shutil.rmtree(entry, ignore_errors=True)

    @contextmanager
    def staging(self, variant: str) -> Iterator[Path]:
        """A fresh staging folder (the CMake install prefix); removed afterwards in any case."""
        self.state.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"staging-{variant}.", dir=self.state))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def install(self, staged_variant: Path) -> Path:
        """Move a finished, checked variant folder into build/<name>, replacing the old one.

        The replacement is one atomic step: renameat2(RENAME_EXCHANGE) swaps the new folder and
        the old one, so build/<name> never goes missing, whatever happens (a loader running
        meanwhile sees the old variant or the new one). The old variant, now in the staging
        folder, is deleted with it; a build killed before that leaves it to recover(). Where the
        file system cannot exchange, the two renames of old are used (the window between them is
        repaired by recover()).
        """
        final = self.root / staged_variant.name
        if not final.exists():
            os.rename(staged_variant, final)  # nothing to replace: a rename is atomic
            return final
        if exchange(staged_variant, final):
            shutil.rmtree(staged_variant, ignore_errors=True)  # the old variant
            return final
        aside = Path(tempfile.mkdtemp(prefix=f"replaced-{final.name}.", dir=self.state))
        aside.rmdir()
        os.rename(final, aside)
        try:
            os.rename(staged_variant, final)
        except BaseException:
            os.rename(aside, final)
            raise
        shutil.rmtree(aside, ignore_errors=True)
        return final


AT_FDCWD = -100
RENAME_EXCHANGE = 2
SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (renameat2 with RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import errno
    import platform

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    args = (AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:  # glibc >= 2.28
        result = renameat2(*args)
    elif platform.machine() in SYS_RENAMEAT2:
        result = libc.syscall(SYS_RENAMEAT2[platform.machine()], *args)
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))
