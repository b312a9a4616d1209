"""Progress of a build: a live table on a terminal, plain lines otherwise, nothing with --quiet.

Messages are printed as given: no rich markup (a `[torch]` in a message stays), and no line
breaks inserted at the console width (a pipe or a CI log gets each message on one line).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.table import Table


FINAL_STAGES = ("done", "failed", "interrupted")


@dataclass
class _Row:
    stage: str = "queued"
    done: int | None = None
    total: int | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None


class Reporter:
    """Receives `stage(variant, stage, done, total)` events from the build."""

    def __init__(self, *, quiet: bool = False, live: bool | None = None, stream=None):
        self.console = Console(file=stream or sys.stderr, soft_wrap=True)
        self.quiet = quiet
        self.live_enabled = (self.console.is_terminal if live is None else live) and not quiet
        self.rows: dict[str, _Row] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None

    # -- lifecycle
    def __enter__(self) -> "Reporter":
        if self.live_enabled:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)
            self._live = None

    # -- events
    def add(self, variant: str) -> None:
        with self._lock:
            self.rows[variant] = _Row()
        self._refresh()

    def stage(self, variant: str, stage: str, done: int | None = None, total: int | None = None) -> None:
        with self._lock:
            row = self.rows.setdefault(variant, _Row())
            changed = row.stage != stage
            row.stage, row.done, row.total = stage, done, total
            if stage in FINAL_STAGES:
                row.finished = time.monotonic()
        if changed and not self.live_enabled and not self.quiet:
            self.console.print(f"{variant}: {stage}", highlight=False, markup=False)
        self._refresh()

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, markup=False)

    def waiting(self, lock) -> None:
        self.note(f"waiting for another build of this kernel to finish ({lock})")

    # -- rendering
    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())

    def _table(self) -> Table:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("variant")
        table.add_column("stage")
        table.add_column("time", justify="right")
        now = time.monotonic()
        with self._lock:
            for name, row in self.rows.items():
                stage = row.stage
                if stage == "compile" and row.total:
                    stage = f"compile {row.done}/{row.total}"
                style = {"done": "green", "failed": "red", "interrupted": "yellow"}.get(row.stage, "")
                took = (row.finished or now) - row.started
                table.add_row(name, f"[{style}]{stage}[/]" if style else stage, f"{took:5.0f}s")
        return table
