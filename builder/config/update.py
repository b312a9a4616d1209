"""`update-build`: rewrite a kernel's build.toml as edition 5."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, Problem
from .migrate import migrate
from .parse import parse_document, read_text, read_toml
from .write import dumps


@dataclass
class UpdateResult:
    text: str
    summary: str
    notes: list[str] = field(default_factory=list)
    changed: bool = True


def build_toml_path(kernel_dir: Path) -> Path:
    """<kernel_dir>/build.toml, or kernel_dir itself when it names a .toml file (read_text says
    what is wrong with it, if anything)."""
    try:
        is_dir = kernel_dir.is_dir()
    except OSError as exc:  # a name too long, a folder that cannot be searched
        raise ConfigError(kernel_dir, [Problem("", f"cannot be read: {exc.strerror or exc}")]) from None
    return kernel_dir / "build.toml" if is_dir or not kernel_dir.name.endswith(".toml") else kernel_dir


def update_build_file(kernel_dir: Path, *, license: str | None = None, dry_run: bool = False) -> UpdateResult:
    """Convert `<kernel_dir>/build.toml` to edition 5; the result is validated before writing."""
    path = build_toml_path(Path(kernel_dir))
    data = read_toml(path)
    migration = migrate(data, license=license, file=str(path))
    text = dumps(migration.document)
    # The converted file must be a valid edition-5 file before anything is written.
    parse_document(read_toml_text(text, path), path)
    if migration.source_format == "edition 5":
        return UpdateResult(read_text(path), f"{path}: already edition 5; nothing to do", [], changed=False)
    if not dry_run:
        _atomic_write(path, text)
    return UpdateResult(text, f"{path}: converted from {migration.source_format} to edition 5", migration.notes)


def read_toml_text(text: str, path: Path) -> dict:
    from .parse import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # would be a bug in the writer
        raise ConfigError(path, [Problem("", f"converted file is not valid TOML: {exc}")]) from None


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".build.toml.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
