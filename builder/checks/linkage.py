"""After linking: every symbol an extension leaves undefined must be provided by a library it
loads, and the extension must define its Python entry point.

An extension is linked without `-Wl,--no-undefined` (it must not link libpython), so a source
file left out of `src`, or a library left out of the link, shows only when the module is
imported (`undefined symbol: _Z20check_scale_add_args…`). This check finds it before install,
with pyelftools, from the module's dynamic symbols:

- a versioned reference (`memcpy@GLIBC_2.14`, `cudaMalloc@libcudart.so.13`) was bound to its
  library by the linker; the portability gate judges its version;
- a weak reference may stay undefined;
- the Python C API (`Py*`, `_Py*`) comes from the interpreter; the gate checks that it is the
  limited API;
- every other symbol must be defined (and exported) by a library of the module's NEEDED
  closure: found by name in the variant's torch lib dir, the NVIDIA wheels next to torch,
  the extra library dirs given (e.g. the CUDA toolkit's) or the system's library dirs, and
  looked up through each library's hash table (libtorch_cpu has ~75 000 dynamic symbols);
- `PyInit_<stem>` must be defined and exported: it is what `from . import <stem>` calls
  (registration.h's `REGISTER_EXTENSION(TORCH_EXTENSION_NAME)` defines it).

Names are shown demangled (cxxfilt, i.e. the C++ runtime's own demangler) next to the mangled
name that the loader would print.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.hash import ELFHashSection, GNUHashSection
from elftools.elf.sections import SymbolTableSection

from .portability import Violation, is_elf, describe_origin, link_inputs, read_elf

INTERPRETER_SYMBOLS = re.compile(r"^_?Py")  # the Python C API, provided by the interpreter
MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
MAX_LIBRARIES_SHOWN = 6


def demangle(name: str) -> str:
    """The C++ spelling of a mangled name (the name itself when it is not a C++ name)."""
    if not name.startswith("_Z"):
        return name
    try:
        import cxxfilt

        return cxxfilt.demangle(name)
    except Exception:  # an unusual name, or no C++ runtime to ask: show it as it is
        return name


@dataclass(frozen=True)
class _Library:
    path: Path
    needed: tuple[str, ...]


@functools.lru_cache(maxsize=128)
def _open_library(path: Path, mtime: float) -> _Library:
    with path.open("rb") as handle:
        elf = ELFFile(handle)
        dynamic = next((s for s in elf.iter_sections() if isinstance(s, DynamicSection)), None)
        needed = tuple(tag.needed for tag in dynamic.iter_tags("DT_NEEDED")) if dynamic is not None else ()
    return _Library(path, needed)


@functools.lru_cache(maxsize=128)
def _defined_among(path: Path, mtime: float, symbols: frozenset[str]) -> frozenset[str]:
    """Those of `symbols` that the shared library at `path` defines and exports (one open of
    the file, one hash-table lookup per symbol)."""
    def exported(sym) -> bool:
        return (sym is not None and sym["st_shndx"] != "SHN_UNDEF"
                and sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE")
                and sym["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED"))

    try:
        with path.open("rb") as handle:
            elf = ELFFile(handle)
            table = next((s for s in elf.iter_sections() if isinstance(s, (GNUHashSection, ELFHashSection))), None)
            if table is not None:
                return frozenset(name for name in symbols if exported(table.get_symbol(name)))
            # No hash table (unusual): scan the dynamic symbols.
            dynsym = next((s for s in elf.iter_sections() if isinstance(s, SymbolTableSection) and s["sh_type"] == "SHT_DYNSYM"), None)
            if dynsym is None:
                return frozenset()
            return frozenset(sym.name for sym in dynsym.iter_symbols() if sym.name in symbols and exported(sym))
    except (ELFError, OSError, ValueError):  # a library we cannot read provides nothing we can see
        return frozenset()


def library_dirs(torch_lib_dir: Path | None, extra: Iterable[Path] = (), arch: str = "x86_64") -> list[Path]:
    """Where the libraries a module loads are looked for, in order: torch's lib dir, the
    NVIDIA wheels beside torch (site-packages/nvidia/*/lib), `extra`, the system's dirs."""
    dirs: list[Path] = []
    if torch_lib_dir is not None:
        torch_lib_dir = Path(torch_lib_dir)
        dirs.append(torch_lib_dir)
        site_packages = torch_lib_dir.parent.parent
        dirs += sorted(p for p in site_packages.glob("nvidia/*/lib") if p.is_dir())
    dirs += [Path(p) for p in extra]
    triple = MULTIARCH.get(arch, f"{arch}-linux-gnu")
    dirs += [Path(p) for p in (f"/lib/{triple}", f"/usr/lib/{triple}", "/lib64", "/usr/lib64", "/lib", "/usr/lib")]
    return [d for d in dict.fromkeys(dirs) if d.is_dir()]


def _locate(name: str, dirs: Sequence[Path]) -> Path | None:
    """A NEEDED name in the first dir that has it; `libcuda.so.1` also as `libcuda.so` (the
    toolkit's link stubs are named without the version)."""
    candidates = [name]
    unversioned = re.sub(r"(\.so)(\.\d+)+$", r"\1", name)
    if unversioned != name:
        candidates.append(unversioned)
    for candidate in candidates:
        for folder in dirs:
            path = folder / candidate
            if path.is_file() and is_elf(path):  # libc.so, for one, is a linker script
                return path.resolve()
    return None


def needed_closure(needed: Iterable[str], dirs: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """(libraries found, NEEDED names not found) for `needed` and, breadth first, their own NEEDED."""
    found: list[Path] = []
    missing: list[str] = []
    queue = list(needed)
    seen: set[str] = set()
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        path = _locate(name, dirs)
        if path is None:
            missing.append(name)
            continue
        if path in found:
            continue
        found.append(path)
        try:
            queue += _open_library(path, path.stat().st_mtime).needed
        except (ELFError, OSError, ValueError):
            continue
    return found, missing


def _undefined_message(symbol: str, searched: list[Path], missing: list[str]) -> str:
    shown = demangle(symbol)
    what = f"{shown} ({symbol})" if shown != symbol else symbol
    names = [p.name for p in searched]
    libraries = ", ".join(names[:MAX_LIBRARIES_SHOWN]) + (f" and {len(names) - MAX_LIBRARIES_SHOWN} more" if len(names) > MAX_LIBRARIES_SHOWN else "")
    text = (f"undefined symbol {what} is defined neither in the module nor in a library it loads ({libraries or 'none'}): "
            "a source file that defines it is missing from `src` in build.toml, or the library that provides it is not linked")
    if missing:
        text += f" (not found to look in: {', '.join(missing)})"
    return text


def check_linkage(binary: Path, torch_lib_dir: Path | None, *, module_name: str | None = None, extra_library_dirs: Iterable[Path] = (),
                  objects: list[Path] | None = None, link_map: Path | None = None) -> list[Violation]:
    """Undefined symbols no loaded library provides, and a missing `PyInit_<module_name>`.

    `torch_lib_dir`: the torch/lib folder of the torch the variant is built for (its libraries
    and, through it, the NVIDIA wheels beside it are searched). `module_name`: the module the
    binary is imported as (default: the file name up to the first dot). `objects`/`link_map`
    only say which object references a missing symbol.
    """
    binary = Path(binary)
    try:
        facts = read_elf(binary)
    except (ELFError, OSError, ValueError) as error:
        return [Violation("unreadable", "", "", f"cannot check: {error}", binary=binary.name)]
    module = module_name or binary.name.split(".")[0]
    violations: list[Violation] = []

    entry = f"PyInit_{module}"
    if not any(s.defined and s.exported and s.name == entry for s in facts.symbols):
        others = sorted(s.name for s in facts.symbols if s.defined and s.exported and s.name.startswith("PyInit_"))
        detail = (f"defines no {entry}, so `from . import {module}` cannot load it: end the binding source with "
                  "REGISTER_EXTENSION(TORCH_EXTENSION_NAME) from registration.h")
        if others:
            detail += f" (it defines {', '.join(others)}: REGISTER_EXTENSION must be given TORCH_EXTENSION_NAME)"
        violations.append(Violation("missing-entry-point", entry, "", detail))

    unresolved = [s.name for s in facts.symbols
                  if not s.defined and not s.weak and not s.version and not INTERPRETER_SYMBOLS.match(s.name)]
    if unresolved:
        dirs = library_dirs(torch_lib_dir, extra_library_dirs, facts.arch)
        libraries, missing = needed_closure(facts.needed, dirs)
        left = frozenset(unresolved)
        for library in libraries:
            if not left:
                break
            left -= _defined_among(library, library.stat().st_mtime, left)
        for symbol in sorted(left):
            violations.append(Violation("undefined-symbol", symbol, "", _undefined_message(symbol, libraries, missing)))

    inputs = link_inputs(objects, link_map) if objects or link_map else None
    return [Violation(v.rule, v.symbol, v.version, v.detail, origin=describe_origin(v, inputs) if inputs and v.rule == "undefined-symbol" else "",
                      binary=binary.name) for v in violations]
