"""Paths as CMake, Ninja and the linker see them.

Measured with a CPU build of examples/relu copied to a folder whose name holds one character
(CMake 3.25 and 4.4, Ninja 1.11, GNU ld 2.40; see docs/reliability.md):

- `"`, `#`, `<`, `>` break CMake itself when they are in the build folder (its compiler
  checks write an unquoted path; custom-target outputs refuse them);
- `;` and an unmatched `[` or `]` split CMake lists; `\\` becomes `/` in CMake paths;
- `$` reaches the shell unescaped in link options (`${HOME}` expands), `$(` breaks Ninja's
  rule file and `$<` is evaluated as a generator expression; `|` ends a Ninja path;
- `,` splits `-Wl,` options, `%` is a substitution in ld's `-Map=`; a newline ends a Ninja line.

Spaces, quotes ('), `&`, `(`, `*`, `?`, `{`, `!`, `@`, `=`, `:`, `~`, `^`, `+`, tabs and
non-ASCII letters built with CMake, Ninja and ld; but nvcc splits the values of its `-Xcompiler`
options at spaces (a path mapping with a space becomes two host-compiler arguments). Rather
than escaping each tool's syntax, a kernel directory whose path holds anything but plain
characters (a space included) is given to the tools through a symbolic link with a plain path,
in a private folder of the temporary directory: CMake, Ninja, nvcc and the linker never see the
original characters, and the files they write land in the real directory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import string
import tempfile
from pathlib import Path

from ..errors import UsageError

# Characters that reach the tools as they are; anything else goes through the alias.
PLAIN = frozenset(string.ascii_letters + string.digits + "_-.+/@=~:")
# Characters measured to break a build when they are in a path CMake uses (see above).
BREAKING = frozenset('"#<>;[]\\$|,%')
ALIAS_PARENT = "kernel-builder-{uid}"


def unsafe_character(path: str) -> str | None:
    """The first character of `path` measured to break CMake, Ninja or ld, or None."""
    for char in path:
        if char in BREAKING or not char.isprintable() or char == "\x7f":
            return char
    return None


def describe(char: str) -> str:
    return repr(char) if char.isprintable() else f"{char!r} (a control character)"


def require_plain(path: Path, what: str, remedy: str = "use an installation in a folder without it") -> None:
    """Refuse a path the tools cannot use and kernel-builder cannot alias (a Python, torch,
    a generated tree that the user builds with CMake directly)."""
    char = unsafe_character(str(path))
    if char is not None:
        raise UsageError(f"{what} {str(path)!r} holds the character {describe(char)}, which CMake, Ninja or the linker cannot use in a path; {remedy}")


def _private_parent() -> Path:
    """<tmp>/kernel-builder-<uid>: created 0700, and refused unless it is ours and private."""
    base = Path(tempfile.gettempdir())
    parent = base / ALIAS_PARENT.format(uid=os.getuid())
    try:
        parent.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(parent)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create {parent}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{parent} is not a private folder of this user")
    if any(c not in PLAIN for c in str(parent)):
        raise OSError(f"the temporary directory {base} is not a plain path itself (set TMPDIR)")
    return parent


def tool_root(kernel_dir: Path) -> Path:
    """The kernel directory as CMake, Ninja and the linker should see it.

    The directory itself when its absolute path is plain; else a symbolic link to it named
    after a hash of the path (stable, so incremental builds keep working). Raises UsageError
    naming the character and the path when no link can be made.
    """
    real = Path(kernel_dir).absolute()
    odd = next((c for c in str(real) if c not in PLAIN), None)
    if odd is None:
        return real
    try:
        parent = _private_parent()
        link = parent / hashlib.sha256(os.fsencode(real)).hexdigest()[:20]
        if not (link.is_symlink() and os.readlink(link) == str(real)):
            temporary = parent / f".{link.name}.{os.getpid()}"
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(real, target_is_directory=True)
            os.replace(temporary, link)
    except OSError as exc:
        raise UsageError(
            f"the kernel directory {str(real)!r} holds the character {describe(odd)}, which CMake, Ninja or the linker may not "
            f"handle, and the symbolic link kernel-builder builds through could not be made ({exc}); move the kernel to a "
            "path of letters, digits, spaces and _ - . + @ = ~ :"
        ) from None
    return link


def seen_by_tools(path: Path, kernel_dir: Path, root: Path) -> Path:
    """`path` as the tools see it: under `root` when it lies inside `kernel_dir`, else as it is
    (build-variant's work and output folders may be anywhere)."""
    path = Path(path).absolute()
    try:
        return root / path.relative_to(Path(kernel_dir).absolute())
    except ValueError:
        return path
