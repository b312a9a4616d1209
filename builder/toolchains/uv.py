"""Running uv, the resolver and installer of toolchain environments."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from functools import cache
from pathlib import Path

from ..errors import KernelBuilderError

log = logging.getLogger("kernel_builder")

# Index settings reach uv as arguments (see indexes.py); these would add to them behind our back.
SCRUBBED = ("UV_INDEX", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_NO_INDEX", "UV_CONSTRAINT", "UV_OVERRIDE",
            "UV_BUILD_CONSTRAINT", "UV_PYTHON", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")


class UvError(KernelBuilderError):
    """uv failed; the message carries what it printed."""


@cache
def uv_binary() -> str:
    """The uv executable: the one of the `uv` package kernel-builder depends on, else PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise UvError("uv is not installed: `pip install uv` (kernel-builder uses it to resolve and install toolchains)")


def run_uv(args: list[str], *, cwd: Path | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run `uv ARGS`; raise UvError with uv's own message on failure."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.setdefault("UV_NO_PROGRESS", "1")
    cmd = [uv_binary(), *args]
    start = time.monotonic()
    try:
        result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UvError(f"`uv {args[0]} {args[1] if len(args) > 1 else ''}` took longer than {timeout:.0f} s") from None
    except OSError as exc:
        raise UvError(f"cannot run uv: {exc}") from None
    log.debug("$ %s  (%.2f s, exit %d)", " ".join(cmd), time.monotonic() - start, result.returncode)
    if result.returncode != 0:
        raise UvError(result.stderr.strip() or result.stdout.strip() or f"uv exited with {result.returncode}")
    return result
