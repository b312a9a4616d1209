"""Progress of an upload: a rich progress bar on a terminal for large uploads, plain lines otherwise.

Bytes are counted when huggingface_hub has taken a group of files (large files are sent
then; regular files travel inside the commit), so the bar moves group by group.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from .plan import format_size

# Below this, an upload is quick and a bar would only flicker.
LARGE_UPLOAD_BYTES = 20_000_000


class UploadProgress:
    def __init__(self, *, quiet: bool = False, live: bool | None = None, stream=None):
        self.console = Console(file=stream or sys.stderr)
        self.quiet = quiet
        self.live = (self.console.is_terminal if live is None else live) and not quiet
        self.completed = 0
        self.files = 0
        self.total = 0
        self.total_files = 0
        self._bar: Progress | None = None
        self._task = None
        self._last_line = -1

    def note(self, message: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(message, highlight=False)
        else:
            self.console.print(message, highlight=False)

    def start(self, total_bytes: int, total_files: int) -> None:
        self.total, self.total_files = total_bytes, total_files
        if self.quiet or (self.live and total_bytes >= LARGE_UPLOAD_BYTES):
            # One display: huggingface_hub's own per-file bars would fight with ours (or with --quiet).
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        if self.live and total_bytes >= LARGE_UPLOAD_BYTES:
            self._bar = Progress(TextColumn("uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("upload", total=total_bytes)

    def advance(self, nbytes: int, nfiles: int) -> None:
        self.completed += nbytes
        self.files += nfiles
        self._show()

    def reset_to(self, completed: int) -> None:
        """A commit is sent again: count its bytes once."""
        self.completed = completed
        self._show()

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed)
        elif not self.quiet and self.total >= LARGE_UPLOAD_BYTES:
            tenth = int(10 * self.completed / max(1, self.total))
            if tenth != self._last_line:  # at most ten lines for a large upload
                self._last_line = tenth
                self.console.print(f"uploaded {format_size(self.completed)} of {format_size(self.total)}", highlight=False)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
