"""Which kernel sources must see the unique ops namespace (TORCH_EXTENSION_NAME).

The id changes with every edit outside git (it is a hash of the content) and with the first
edit after a commit (`_dirty`). A compile definition on every translation unit would therefore
recompile them all; it is given instead to the framework's binding sources and to the kernel
sources that may use it. A kernel source may use it when the macro's name appears, outside
comments, in the source or in any file the source may include from the kernel's folders.

The bindings themselves usually name the id only to register ops and the module:
`TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m)`, `TORCH_LIBRARY_IMPL_EXPAND(TORCH_EXTENSION_NAME,
CUDA, m)` and `REGISTER_EXTENSION(TORCH_EXTENSION_NAME)`. When every use in every binding (and in
the kernel headers they reach) is one of those, the id is given at link time instead
(`ops_name_at_link`): registration.h's macros read the namespace from one small generated
translation unit (torch-ext/kb-ops-name.cpp), the only one compiled with the id, so a new id
recompiles that stub (no includes, a few milliseconds) and not the bindings.

The scan errs on the side of giving the id: an `#include` whose file name is a macro, a raw
string literal (which the comment stripper does not parse) or more files than MAX_FILES all
count as a use. An `#include` found nowhere under the kernel's folders is a system or
dependency header (torch, CUTLASS), which do not use the macro. Missing the id where it is
used would compile the literal name `TORCH_EXTENSION_NAME` (or fail to compile), so the
portability gate is not what catches a mistake here: the import check is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..config.model import BuildConfig

MACRO = re.compile(rb"\bTORCH_EXTENSION_NAME\b")
# Comments and the literals that may contain comment markers, in one pass (raw strings aside).
_LEXEMES = re.compile(rb'//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.DOTALL)
_RAW_STRING = re.compile(rb'\bu?8?[uUL]?R"')
_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*(?:include|include_next|import)\b[ \t]*([^\n]*)$', re.MULTILINE)
_INCLUDE_NAME = re.compile(rb'^(?:"([^"\n]+)"|<([^>\n]+)>)')
# What kb_add_section (cmake/kernel-builder.cmake) treats as a header; every other source is compiled.
HEADER_EXTENSIONS = frozenset({"h", "hh", "hpp", "hxx", "cuh", "inc", "inl", "ipp", "tcc"})
MAX_FILES = 20000  # files scanned per kernel before giving up (and giving every source the id)


def strip_comments(text: bytes) -> bytes:
    """`text` without C/C++ comments (string and character literals kept as they are)."""
    return _LEXEMES.sub(lambda m: m.group(0) if m.group(0)[:1] in (b'"', b"'") else b" ", text)


@dataclass
class _Scan:
    """What one file says: whether it names the macro, and what it includes."""

    uses_macro: bool
    includes: list[tuple[str, str]] = field(default_factory=list)  # (kind '<' or '"', name)
    # Whether every use of the macro is a registration macro's first argument (see above).
    registration_only: bool = False
    module_inits: int = 0  # REGISTER_EXTENSION( occurrences


# The registration macros of registration.h whose first argument may be the id at link time.
_LINK_TIME_USE = re.compile(rb"\b(?:TORCH_LIBRARY_EXPAND|TORCH_LIBRARY_IMPL_EXPAND|REGISTER_EXTENSION)\s*\(\s*TORCH_EXTENSION_NAME\s*[,)]")
_REGISTER_EXTENSION = re.compile(rb"\bREGISTER_EXTENSION\s*\(")
# Every call of those macros, whatever its first argument (another namespace must keep its meaning).
_REGISTRATION_CALL = re.compile(rb"\b(?:TORCH_LIBRARY_EXPAND|TORCH_LIBRARY_IMPL_EXPAND|REGISTER_EXTENSION)\s*\(")
# Redefining any of the names involved makes the uses mean something else.
_REDEFINES = re.compile(rb"^[ \t]*#[ \t]*(?:define|undef)[ \t]+(?:TORCH_EXTENSION_NAME|TORCH_LIBRARY_EXPAND|TORCH_LIBRARY_IMPL_EXPAND|"
                        rb"REGISTER_EXTENSION|KB_OPS_NAME_AT_LINK)\b", re.MULTILINE)
LINK_TIME_BINDING_EXTENSIONS = frozenset({"cpp", "cc", "cxx"})


def scan_text(text: bytes) -> _Scan:
    """Whether `text` names the macro outside comments, and its `#include`s."""
    if _RAW_STRING.search(text):
        return _Scan(uses_macro=True)
    code = strip_comments(text)
    uses = len(MACRO.findall(code))
    link_uses = len(_LINK_TIME_USE.findall(code))
    registration_only = uses == link_uses == len(_REGISTRATION_CALL.findall(code)) and not _REDEFINES.search(code)
    module_inits = len(_REGISTER_EXTENSION.findall(code))
    includes: list[tuple[str, str]] = []
    for match in _INCLUDE.finditer(code):
        name = _INCLUDE_NAME.match(match.group(1))
        if name is None:  # #include MACRO: the file cannot be known here
            return _Scan(uses_macro=True)
        quoted = name.group(1) is not None
        includes.append(('"' if quoted else "<", (name.group(1) or name.group(2)).decode(errors="replace").strip()))
    return _Scan(uses_macro=uses > 0, includes=includes, registration_only=registration_only, module_inits=module_inits)


class IdUseScanner:
    """Follows `#include`s through the kernel's own files; remembers every file it read."""

    def __init__(self, root: Path, include_dirs: list[Path]):
        self.root = root
        self.include_dirs = include_dirs
        self._scans: dict[Path, _Scan] = {}

    def _scan(self, path: Path) -> _Scan:
        if path not in self._scans:
            try:
                self._scans[path] = scan_text(path.read_bytes())
            except OSError:
                self._scans[path] = _Scan(uses_macro=True)  # unreadable: assume the worst
        return self._scans[path]

    def _candidates(self, including: Path, kind: str, name: str) -> list[Path]:
        """Every file the include may resolve to (all of them: which one wins does not matter)."""
        folders = ([including.parent] if kind == '"' else []) + self.include_dirs
        found = []
        for folder in folders:
            candidate = folder / name
            if candidate.is_file():
                found.append(candidate.resolve())
        return found

    def reached(self, source: Path) -> list[_Scan] | None:
        """The scans of `source` and of every file it may include from the kernel's folders
        (None when there are too many to follow)."""
        pending, seen, scans = [source.resolve()], set(), []
        while pending:
            path = pending.pop()
            if path in seen:
                continue
            seen.add(path)
            if len(self._scans) > MAX_FILES:
                return None
            scan = self._scan(path)
            scans.append(scan)
            for kind, name in scan.includes:
                pending += self._candidates(path, kind, name)
        return scans

    def uses_id(self, source: Path) -> bool:
        """Whether `source`, or a file it may include from the kernel's folders, names the macro."""
        scans = self.reached(source)
        return scans is None or any(scan.uses_macro for scan in scans)


def _scanner(config: BuildConfig) -> IdUseScanner:
    root = config.root
    folders = [root / entry for entry in (*config.framework.include, *(i for k in config.kernels for i in k.include))]
    include_dirs = [root, root / config.framework.python_root, *(f for f in folders if f.is_dir())]
    return IdUseScanner(root, include_dirs)


def ops_name_at_link(config: BuildConfig) -> bool:
    """Whether the bindings can get the ops namespace at link time (see the module docstring):
    C++ bindings ([torch] src) that, with the kernel headers they reach, use the macro only as
    the first argument of the registration macros, and define the module exactly once."""
    scanner = _scanner(config)
    module_inits = 0
    for entry in config.framework.src:
        extension = entry.rsplit(".", 1)[-1].lower()
        if extension in HEADER_EXTENSIONS:
            continue
        if extension not in LINK_TIME_BINDING_EXTENSIONS:
            return False
        scans = scanner.reached(config.root / entry)
        if scans is None or not all(scan.registration_only for scan in scans):
            return False
        module_inits += sum(scan.module_inits for scan in scans)
    return module_inits == 1


def id_sources(config: BuildConfig) -> list[str]:
    """The [kernel.*] sources (as build.toml lists them) that must be compiled with the id.

    The framework's binding sources ([torch] src) get it too unless it is given at link time
    (ops_name_at_link); they are not listed.
    """
    root = config.root
    scanner = _scanner(config)
    result = []
    for kernel in config.kernels:
        for entry in kernel.src:
            if entry.rsplit(".", 1)[-1].lower() in HEADER_EXTENSIONS:
                continue
            path = root / entry
            if path.is_file() and scanner.uses_id(path) and entry not in result:
                result.append(entry)
    return result
