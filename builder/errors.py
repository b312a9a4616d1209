"""Errors that the CLI turns into a clear message and an exit code, never a traceback."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

# Exit codes: 2 is for bad input (configuration, arguments), 1 for a failed build or check.
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class KernelBuilderError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = EXIT_FAILED


class UsageError(KernelBuilderError):
    """The user asked for something that cannot be done (bad input): exit code 2."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a build.toml: where (a key path), what, and what is allowed."""

    key: str
    message: str
    allowed: str = ""

    def render(self, file: str) -> str:
        where = f"{file}: {self.key}" if self.key else file
        text = f"{where}: {self.message}"
        if self.allowed:
            text += f" ({self.allowed})"
        return text


class ConfigError(UsageError):
    """build.toml is invalid; carries every problem found in one pass."""

    def __init__(self, file: Path | str, problems: list[Problem]):
        self.file = str(file)
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [p.render(self.file) for p in self.problems]
        if len(lines) > 1:
            lines.insert(0, f"{self.file}: {len(lines)} problems found")
        return "\n".join(lines)


class BuildError(KernelBuilderError):
    """A build step failed; `log` is the file holding the full output, if any."""

    def __init__(self, message: str, log: Path | None = None):
        self.log = log
        if log is not None:
            message = f"{message}\nfull log: {log}"
        super().__init__(message)


class CheckError(KernelBuilderError):
    """A post-build check found violations."""


@contextmanager
def named_os_errors(path: Path | str) -> Iterator[None]:
    """Give an OSError raised while writing `path` (a full disk during write() carries no file
    name) that file name, so that the message says which file could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
