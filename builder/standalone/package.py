"""Which files of a kernel's Python package (torch-ext/<module>/) a variant ships.

One function decides, for kernel-builder's Python-only variants and for the CMake install of
compiled ones (`kbtools copy-package`): files whose names end in one of the pyext extensions,
subfolders kept, `__pycache__` skipped. Symbolic links are resolved: a link that stays inside
the kernel directory is shipped as the file (or folder) it points to, and a link that leaves
the kernel directory, a broken link or a link loop is refused with PackageError, so that a
variant never carries a link nor a copy of something outside the kernel.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

SKIPPED_DIRS = ("__pycache__",)


class PackageError(ValueError):
    """The package holds a symbolic link that cannot be shipped, or a special file."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def package_files(package_dir: Path | str, kernel_dir: Path | str, extensions: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(path relative to the package, real file to copy) for every file the variant ships.

    `extensions` are without the dot (py, pyi). Raises PackageError naming the offending
    path (relative to the kernel directory) and what it points to.
    """
    root = os.path.realpath(kernel_dir)
    suffixes = tuple(f".{e}" for e in extensions)
    found: list[tuple[str, Path]] = []

    def shown(path: str) -> str:
        return os.path.relpath(path, kernel_dir)

    def walk(real_dir: str, shown_dir: str, rel: str, chain: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError as exc:
            raise PackageError(f"{shown(shown_dir)}: cannot be read: {exc.strerror}") from None
        for entry in entries:
            name_rel = f"{rel}/{entry.name}" if rel else entry.name
            where = os.path.join(shown_dir, entry.name)
            real = entry.path
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not _inside(real, root):
                    raise PackageError(f"{shown(where)} is a symbolic link to {real}, outside the kernel directory; copy the file into the kernel instead")
                if not os.path.exists(real):
                    raise PackageError(f"{shown(where)} is a broken symbolic link (to {os.readlink(entry.path)})")
            try:
                mode = os.stat(real).st_mode
            except OSError as exc:
                raise PackageError(f"{shown(where)}: cannot be read: {exc.strerror}") from None
            if stat.S_ISDIR(mode):
                if entry.name in SKIPPED_DIRS:
                    continue
                if real in chain:
                    raise PackageError(f"{shown(where)} is a symbolic link to {real}, one of its own parent folders (a loop)")
                walk(real, where, name_rel, chain + (real,))
            elif entry.name.endswith(suffixes):
                if not stat.S_ISREG(mode):
                    raise PackageError(f"{shown(where)} is not a regular file")
                found.append((name_rel, Path(real)))

    start = os.path.realpath(package_dir)
    if not _inside(start, root):
        raise PackageError(f"{shown(str(package_dir))} resolves to {start}, outside the kernel directory")
    walk(start, str(package_dir), "", (start,))
    return found


def copy_package(package_dir: Path | str, kernel_dir: Path | str, extensions: tuple[str, ...], destination: Path | str) -> list[Path]:
    """Copy the files `package_files` selects into `destination` (links become files)."""
    written = []
    for rel, source in package_files(package_dir, kernel_dir, extensions):
        target = Path(destination) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        written.append(target)
    return written
