"""Run one build tool so that nothing it starts outlives kernel-builder.

    python -I -S supervisor.py <expected parent pid> -- <command> [args...]

Build tools start their own children: CMake starts Ninja, Ninja starts compilers, each in a
process group of its own. Signals to kernel-builder's group therefore miss them, and a
kernel-builder killed with SIGKILL cannot stop them. This supervisor sits between the two:

- it asks the kernel to send it SIGTERM when the thread of kernel-builder that started it dies
  (PR_SET_PDEATHSIG), however that happens;
- it adopts every orphan of the tool's tree (PR_SET_CHILD_SUBREAPER), so a compiler whose Ninja
  died is still its descendant;
- on SIGTERM/SIGINT/SIGHUP, and when the tool exits, it kills every descendant left.

Standard library only (it starts with -I -S, in milliseconds); Linux only (elsewhere it just runs
the command).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int) -> list[int]:
    """Every living descendant of `root`, from /proc (children before their parents are not needed: all are killed)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: the fields follow the last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def kill_descendants() -> None:
    me = os.getpid()
    for _ in range(50):
        left = descendants(me)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Reap what we adopted, so it does not stay a zombie.
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    expected_parent = int(argv[0])
    command = argv[argv.index("--") + 1:]
    linux = sys.platform.startswith("linux")
    if linux:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        if os.getppid() != expected_parent:  # kernel-builder died before the death signal was armed
            return 1

    def stop(signum, frame):
        kill_descendants() if linux else None
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        process = subprocess.Popen(command)
    except OSError as exc:
        print(f"kernel-builder: cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127
    code = process.wait()
    if linux:
        kill_descendants()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
