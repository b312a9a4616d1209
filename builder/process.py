"""Running build tools: logged, cancellable, and never outliving kernel-builder.

Every tool runs under `supervisor.py`, in a session of its own (a terminal's Ctrl-C reaches
kernel-builder only, which then stops the tools it started). The supervisor kills the tool's
whole tree when kernel-builder dies, even by SIGKILL, and when the tool exits.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from .errors import BuildError

log = logging.getLogger("kernel_builder")
SUPERVISOR = Path(__file__).with_name("supervisor.py")


def supervised(cmd: list[str]) -> list[str]:
    """`cmd` run under the supervisor (see supervisor.py)."""
    return [sys.executable, "-I", "-S", str(SUPERVISOR), str(os.getpid()), "--", *cmd]


def kill_tree(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a supervised tool and everything it started: SIGTERM to its group (the supervisor
    then kills every descendant), SIGKILL after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            if sig == signal.SIGKILL:
                process.kill()
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


class Cancellation:
    """Stops a running build: kills the tools it started and refuses to start new ones."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._processes: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def register(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes.add(process)
            if self.event.is_set():
                kill_tree(process)

    def unregister(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes.discard(process)

    def cancel(self) -> None:
        with self._lock:
            self.event.set()
            for process in self._processes:
                kill_tree(process)

    def check(self) -> None:
        if self.event.is_set():
            raise BuildError("interrupted")


def run_logged(cmd: list[str], log_path: Path, *, cwd: Path | None = None, env: dict | None = None, on_line: Callable[[str], None] | None = None,
               cancel: Cancellation | None = None) -> None:
    """Run `cmd`, appending its output to `log_path`; raise BuildError on failure or cancellation."""
    if cancel is not None:
        cancel.check()
    start = time.monotonic()
    with open(log_path, "a", encoding="utf-8", errors="replace") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        log.debug("$ %s", " ".join(cmd))
        process = subprocess.Popen(supervised(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                   bufsize=1, start_new_session=True)
        if cancel is not None:
            cancel.register(process)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                out.write(line)
                if on_line is not None:
                    on_line(line)
            code = process.wait()
        except BaseException:
            kill_tree(process)
            process.wait()
            raise
        finally:
            if cancel is not None:
                cancel.unregister(process)
    log.debug("  (%.2f s, exit %d)", time.monotonic() - start, code)
    if cancel is not None:
        cancel.check()
    if code != 0:
        raise BuildError(f"`{Path(cmd[0]).name} {cmd[1] if len(cmd) > 1 else ''}` failed (exit code {code})", log_path)
