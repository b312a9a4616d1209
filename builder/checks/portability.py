"""Post-link portability gate for Linux extension binaries.

A portable extension (templates/cmake/portable.cmake) must load on any Linux with glibc >= 2.27
next to any torch build: it may need only glibc 2.27 symbols, must carry its own (static,
hidden) libstdc++, may depend only on an allow-list of libraries, exports only `PyInit_*`,
and uses only the Python limited API of 3.9. `check_binary` reads the dynamic section, the
dynamic symbols and their versions (.gnu.version / .gnu.version_r / .gnu.version_d, which
`strip` keeps) with pyelftools, applies the rules of builder/data/portability-policy.json, adds
the findings of the real kernel-abi-check, and names for each problem the object or archive
member it came from when given the extension's objects and/or the linker map.

Rules (Violation.rule):
  glibc-version      a GLIBC_x.y reference newer than the policy's glibc
  glibc-abilist      a GLIBC_* (symbol, version) pair the policy's glibc does not have
                     (same name, new version: fcntl64@GLIBC_2.2.5; GLIBC_PRIVATE; ...)
  glibc-provider     the pair exists, but on that glibc it lives in a library not in NEEDED
                     (pthread_once@GLIBC_2.2.5 needs libpthread.so.0 before glibc 2.34)
  forbidden-version  GLIBCXX_ / CXXABI_ references (a shared libstdc++)
  forbidden-needed   libstdc++.so in NEEDED
  needed-allowlist   any other NEEDED library outside the allow-list
  export             an exported symbol other than PyInit_*
  manylinux          kernel-abi-check's manylinux finding not already reported above
  python-abi         kernel-abi-check's Python limited-API finding
  abi-check-error    kernel-abi-check could not check the file (it rejects GLIBC_PRIVATE)
  unreadable         not an ELF shared object this gate can read
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
POLICY_FILE = DATA_DIR / "portability-policy.json"
MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}
MAX_ORIGINS = 4


# ---- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One broken rule; `render()` gives one line naming the binary, the problem and its origin."""

    rule: str
    symbol: str
    version: str
    detail: str
    origin: str = ""
    binary: str = ""

    def render(self) -> str:
        text = f"{self.binary}: {self.detail}" if self.binary else self.detail
        return f"{text} ({self.origin})" if self.origin else text


@dataclass(frozen=True)
class Policy:
    glibc_max: str
    glibc_abilists: tuple[tuple[str, Path], ...]  # (architecture, abilist file)
    forbidden_version_prefixes: tuple[str, ...]
    forbidden_needed: tuple[str, ...]
    needed_allowed: tuple[str, ...]
    exported_symbols: tuple[str, ...]
    python_abi: str
    manylinux: str

    def abilist_file(self, arch: str) -> Path | None:
        return dict(self.glibc_abilists).get(arch)


@dataclass(frozen=True)
class DynamicSymbol:
    name: str
    version: str  # "" when unversioned
    library: str  # for undefined symbols: the file the version is required from
    defined: bool
    exported: bool  # defined, global or weak, default or protected visibility
    weak: bool = False


@dataclass(frozen=True)
class ElfFacts:
    arch: str  # "x86_64", "aarch64" or the raw e_machine
    needed: tuple[str, ...]
    symbols: tuple[DynamicSymbol, ...]
    required_versions: tuple[tuple[str, str], ...]  # (library, version) from .gnu.version_r


@dataclass(frozen=True)
class Abilist:
    """The (symbol, version) pairs a glibc provides, with the libraries that provide each."""

    providers: Mapping[tuple[str, str], frozenset[str]]
    versions: frozenset[str]
    libraries: frozenset[str]


# ---- loading policy data -----------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def load_policy(path: Path = POLICY_FILE) -> Policy:
    raw = json.loads(Path(path).read_text())
    base = Path(path).parent
    return Policy(
        glibc_max=raw["glibc_max"],
        glibc_abilists=tuple((arch, base / name) for arch, name in sorted(raw["glibc_abilists"].items())),
        forbidden_version_prefixes=tuple(raw["forbidden_version_prefixes"]),
        forbidden_needed=tuple(raw["forbidden_needed"]),
        needed_allowed=tuple(raw["needed_allowed"]),
        exported_symbols=tuple(raw["exported_symbols"]),
        python_abi=raw["python_abi"],
        manylinux=raw["manylinux"],
    )


def policy_for(manylinux: str | None = None, python_abi: str | None = None, base: Policy | None = None) -> Policy:
    """The default policy with another manylinux tag (`manylinux_2_N`) and/or Python ABI.

    The glibc ceiling follows the tag. The per-symbol glibc check needs the symbol list of
    that glibc; it ships for 2.27 only, so other ceilings check versions but not the list.
    """
    policy = base or load_policy()
    changes: dict = {}
    if manylinux is not None:
        match = re.fullmatch(r"manylinux_(\d+)_(\d+)", manylinux)
        if match is None:
            raise ValueError(f"{manylinux!r} is not a manylinux tag (manylinux_2_N, e.g. manylinux_2_27)")
        glibc_max = f"{match.group(1)}.{match.group(2)}"
        changes.update(manylinux=manylinux, glibc_max=glibc_max)
        if glibc_max != policy.glibc_max:
            changes["glibc_abilists"] = ()
    if python_abi is not None:
        if re.fullmatch(r"3\.\d+", python_abi) is None:
            raise ValueError(f"{python_abi!r} is not a Python version (3.N, e.g. 3.9)")
        changes["python_abi"] = python_abi
    return replace(policy, **changes)


@functools.lru_cache(maxsize=None)
def load_abilist(path: Path) -> Abilist:
    """Parse `<library> <symbol> <version>` lines (scripts/gen_glibc_abilist.py writes them)."""
    providers: dict[tuple[str, str], set[str]] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        library, symbol, version = line.split()
        providers.setdefault((symbol, version), set()).add(library)
    return Abilist(
        providers={key: frozenset(value) for key, value in providers.items()},
        versions=frozenset(version for _, version in providers),
        libraries=frozenset(lib for libs in providers.values() for lib in libs),
    )


def glibc_version(version: str) -> tuple[int, ...] | None:
    """(2, 34) for "GLIBC_2.34"; None for GLIBC_PRIVATE and other non-numeric names."""
    match = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


# ---- reading the ELF file ----------------------------------------------------------------------


def _section(elf: ELFFile, kind: type, sh_type: str | None = None):
    for section in elf.iter_sections():
        if isinstance(section, kind) and (sh_type is None or section["sh_type"] == sh_type):
            return section
    return None


def _required_versions(verneed: GNUVerNeedSection | None) -> dict[int, tuple[str, str]]:
    table: dict[int, tuple[str, str]] = {}
    if verneed is not None:
        for entry, auxiliaries in verneed.iter_versions():
            for aux in auxiliaries:
                table[aux["vna_other"]] = (entry.name, aux.name)
    return table


def _defined_versions(verdef: GNUVerDefSection | None) -> dict[int, str]:
    table: dict[int, str] = {}
    if verdef is not None:
        for entry, auxiliaries in verdef.iter_versions():
            table[entry["vd_ndx"]] = next(auxiliaries).name
    return table


def _dynamic_symbol(symbol, ndx, required, defined_names) -> DynamicSymbol | None:
    index = ndx & 0x7FFF if isinstance(ndx, int) else 0
    if symbol["st_shndx"] == "SHN_UNDEF":
        library, version = required.get(index, ("", ""))
        weak = symbol["st_info"]["bind"] == "STB_WEAK"
        return DynamicSymbol(symbol.name, version, library, defined=False, exported=False, weak=weak)
    version = defined_names.get(index, "")
    if symbol["st_shndx"] == "SHN_ABS" and version == symbol.name:
        return None  # the symbol a version definition creates, not code or data
    exported = (symbol["st_info"]["bind"] != "STB_LOCAL"
                and symbol["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED"))
    return DynamicSymbol(symbol.name, version, "", defined=True, exported=exported)


def read_elf(path: Path) -> ElfFacts:
    """NEEDED, dynamic symbols with versions, and required versions of one ELF file."""
    with Path(path).open("rb") as handle:
        elf = ELFFile(handle)
        dynsym = _section(elf, SymbolTableSection, "SHT_DYNSYM")
        if dynsym is None:
            raise ELFError("no dynamic symbol table section (not a shared object, or section headers stripped)")
        dynamic = _section(elf, DynamicSection)
        versym = _section(elf, GNUVerSymSection)
        required = _required_versions(_section(elf, GNUVerNeedSection))
        defined_names = _defined_versions(_section(elf, GNUVerDefSection))
        symbols = []
        for index, symbol in enumerate(dynsym.iter_symbols()):
            if index == 0 or not symbol.name:
                continue
            ndx = versym.get_symbol(index)["ndx"] if versym is not None else 1
            entry = _dynamic_symbol(symbol, ndx, required, defined_names)
            if entry is not None:
                symbols.append(entry)
        needed = tuple(tag.needed for tag in dynamic.iter_tags("DT_NEEDED")) if dynamic else ()
        return ElfFacts(
            arch=MACHINES.get(elf["e_machine"], str(elf["e_machine"])),
            needed=needed,
            symbols=tuple(symbols),
            required_versions=tuple(sorted(set(required.values()))),
        )


# ---- rules -------------------------------------------------------------------------------------


def _glibc_symbol_rule(sym: DynamicSymbol, needed: tuple[str, ...], policy: Policy,
                       abilist: Abilist | None) -> Violation | None:
    ref = f"{sym.name}@{sym.version}"
    number = glibc_version(sym.version)
    if number is not None and number > glibc_version(f"GLIBC_{policy.glibc_max}"):
        return Violation("glibc-version", sym.name, sym.version,
                         f"symbol {ref} is newer than glibc {policy.glibc_max}")
    if abilist is None:
        return None
    providers = abilist.providers.get((sym.name, sym.version))
    if not providers:
        what = "does not exist in" if number is not None else "is not in the public ABI of"
        return Violation("glibc-abilist", sym.name, sym.version,
                         f"symbol {ref} {what} glibc {policy.glibc_max}")
    if sym.library not in providers and not providers & set(needed):
        return Violation("glibc-provider", sym.name, sym.version,
                         f"symbol {ref} comes from {' or '.join(sorted(providers))} in glibc "
                         f"{policy.glibc_max}, which is not in NEEDED")
    return None


def glibc_rules(facts: ElfFacts, policy: Policy, abilist: Abilist | None) -> list[Violation]:
    """Every undefined GLIBC_* reference must exist in the policy's glibc, in a NEEDED library."""
    found = []
    referenced = set()
    for sym in facts.symbols:
        if sym.defined or not sym.version.startswith("GLIBC_"):
            continue
        referenced.add(sym.version)
        violation = _glibc_symbol_rule(sym, facts.needed, policy, abilist)
        if violation is not None:
            found.append(violation)
    # Versions required without any symbol (e.g. GLIBC_ABI_DT_RELR from -z pack-relative-relocs).
    for library, version in facts.required_versions:
        if not version.startswith("GLIBC_") or version in referenced:
            continue
        number = glibc_version(version)
        too_new = number is not None and number > glibc_version(f"GLIBC_{policy.glibc_max}")
        unknown = abilist is not None and version not in abilist.versions
        if too_new or unknown:
            found.append(Violation("glibc-version" if too_new else "glibc-abilist", "", version,
                                   f"requires version {version} of {library}, which glibc "
                                   f"{policy.glibc_max} does not have"))
    return found


def cxx_runtime_rules(facts: ElfFacts, policy: Policy) -> list[Violation]:
    """No shared libstdc++: neither in NEEDED nor through GLIBCXX_/CXXABI_ symbol versions."""
    found = [
        Violation("forbidden-needed", "", "", f"NEEDED {lib}: the C++ runtime must be linked "
                  "statically (-static-libstdc++)")
        for lib in facts.needed if any(fnmatch.fnmatch(lib, p) for p in policy.forbidden_needed)
    ]
    for sym in facts.symbols:
        prefix = next((p for p in policy.forbidden_version_prefixes if sym.version.startswith(p)), None)
        if prefix is not None and not sym.defined:
            found.append(Violation("forbidden-version", sym.name, sym.version,
                                   f"symbol {sym.name}@{sym.version} needs a shared libstdc++ "
                                   f"({prefix.rstrip('_')} version)"))
        elif not sym.defined and not sym.weak and not sym.version and _is_cxx_runtime_symbol(sym.name):
            found.append(Violation("cxx-runtime-binding", sym.name, "",
                                   f"C++ runtime symbol {sym.name} is left for another library to "
                                   "provide (e.g. torch's libstdc++ copy); it must come from the "
                                   "static libstdc++"))
    return found


# std::, __gnu_cxx:: and __cxxabiv1:: entities (functions, vtables, typeinfo, names), and the
# C++ ABI entry points; glibc's own __cxa_* functions are not C++ runtime.
_CXX_RUNTIME_RE = re.compile(r"^_Z(?:T[VIS])?(?:N[rVKRO]*)?(?:St|9__gnu_cxx|10__cxxabiv1)|^__cxa_|^__gxx_personality")
_GLIBC_CXA = frozenset({"__cxa_atexit", "__cxa_finalize", "__cxa_thread_atexit_impl"})


def _is_cxx_runtime_symbol(name: str) -> bool:
    return name not in _GLIBC_CXA and _CXX_RUNTIME_RE.match(name) is not None


def needed_rules(facts: ElfFacts, policy: Policy) -> list[Violation]:
    """NEEDED libraries must match the allow-list (forbidden ones are reported by their own rule)."""
    def matches(lib: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatch(lib, p) for p in patterns)

    return [
        Violation("needed-allowlist", "", "", f"NEEDED {lib} is not an allowed dependency")
        for lib in facts.needed
        if not matches(lib, policy.needed_allowed) and not matches(lib, policy.forbidden_needed)
    ]


def export_rules(facts: ElfFacts, policy: Policy) -> list[Violation]:
    """Only symbols matching the policy's patterns (PyInit_*) may be exported."""
    allowed = [re.compile(p) for p in policy.exported_symbols]
    patterns = " or ".join(policy.exported_symbols)
    return [
        Violation("export", sym.name, sym.version,
                  f"exports {sym.name}; only symbols matching {patterns} may be exported")
        for sym in facts.symbols
        if sym.exported and not any(p.search(sym.name) for p in allowed)
    ]


def abi_check_rules(path: Path, policy: Policy, facts: ElfFacts) -> list[Violation]:
    """kernel-abi-check's manylinux and Python limited-API findings."""
    import kernel_abi_check

    obj = kernel_abi_check.ObjectFile(str(path))
    # kernel-abi-check shortens versions (GCC_12.0.0 -> "12"): show the one in the file.
    exact = {(s.name, s.version.split("_", 1)[0]): s.version for s in facts.symbols
             if not s.defined and s.version}
    found = []
    for item in obj.check_manylinux(policy.manylinux):
        version = exact.get((item.name, item.dep), f"{item.dep}_{item.version}")
        found.append(Violation("manylinux", item.name, version,
                               f"symbol {item.name}@{version} is not allowed by "
                               f"{policy.manylinux} (kernel-abi-check)"))
    for item in obj.check_python_abi(policy.python_abi):
        added = getattr(item, "version_added", None)
        if added:
            detail = f"uses {item.name}, in the limited API only since Python {added} (abi3 {policy.python_abi})"
        else:
            detail = f"uses {item.name}, which is not in the Python limited API (abi3)"
        found.append(Violation("python-abi", item.name, added or "", detail + " (kernel-abi-check)"))
    return found


RULES = ("unreadable", "forbidden-needed", "needed-allowlist", "glibc-version", "glibc-abilist",
         "glibc-provider", "forbidden-version", "export", "manylinux", "python-abi", "abi-check-error")


def _sort_key(violation: Violation) -> tuple:
    rank = RULES.index(violation.rule) if violation.rule in RULES else len(RULES)
    return (rank, violation.symbol, violation.version, violation.detail)


def _without_duplicates(own: list[Violation], extra: list[Violation]) -> list[Violation]:
    seen = {(v.symbol, v.version) for v in own}
    return own + [v for v in extra if (v.symbol, v.version) not in seen]


# ---- origins: which object or archive member a symbol came from --------------------------------


@dataclass(frozen=True)
class LinkInputs:
    """What went into the link: object files and archive members (archive, member name)."""

    objects: tuple[Path, ...] = ()
    members: tuple[tuple[Path, str], ...] = ()


def parse_link_map(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(object files loaded, archive members included) as written in a GNU ld -Map file."""
    objects = [m.group(1) for m in re.finditer(r"^LOAD (\S+\.o(?:bj)?)$", text, re.M)]
    head = text.split("\nDiscarded input sections", 1)[0]
    members = [(m.group(1), m.group(2)) for m in re.finditer(r"^(\S[^(\n]*\.a)\(([^)\n]+)\)", head, re.M)]
    return objects, list(dict.fromkeys(members))


def _resolve(name: str, base: Path) -> Path | None:
    """A path from the map: absolute, or relative to the map's folder or one of its parents."""
    path = Path(name)
    if path.is_absolute():
        return path if path.exists() else None
    for folder in (base, *base.parents):
        if (folder / path).exists():
            return folder / path
    return None


def link_inputs(objects: Iterable[Path] | None, link_map: Path | None) -> LinkInputs:
    found = [Path(p) for p in objects or ()]
    members: list[tuple[Path, str]] = []
    if link_map is not None and Path(link_map).is_file():
        loaded, included = parse_link_map(Path(link_map).read_text(errors="replace"))
        base = Path(link_map).resolve().parent
        found += [p for p in (_resolve(name, base) for name in loaded) if p is not None]
        for archive, member in included:
            path = _resolve(archive, base)
            if path is not None:
                members.append((path, member))
    return LinkInputs(tuple(dict.fromkeys(p.resolve() for p in found)), tuple(members))


@functools.lru_cache(maxsize=256)
def _object_symbols(path: Path, mtime: float) -> tuple[frozenset[str], frozenset[str]]:
    """(undefined, defined global) symbol names of one relocatable object, '@VERSION' removed."""
    undefined, defined = set(), set()
    with path.open("rb") as handle:
        symtab = _section(ELFFile(handle), SymbolTableSection, "SHT_SYMTAB")
        for symbol in symtab.iter_symbols() if symtab is not None else ():
            name = symbol.name.split("@", 1)[0]
            if not name or symbol["st_info"]["bind"] == "STB_LOCAL":
                continue
            (undefined if symbol["st_shndx"] == "SHN_UNDEF" else defined).add(name)
    return frozenset(undefined), frozenset(defined)


@functools.lru_cache(maxsize=64)
def _archive_symbols(archive: Path, mtime: float) -> Mapping[str, tuple[frozenset[str], frozenset[str]]]:
    """member -> (undefined, defined) global symbol names, from `nm -A -g` on the archive."""
    nm = shutil.which("nm")
    if nm is None:
        return {}
    result = subprocess.run([nm, "-A", "-g", str(archive)], capture_output=True, text=True, check=False)
    table: dict[str, tuple[set[str], set[str]]] = {}
    prefix = f"{archive}:"
    for line in result.stdout.splitlines():
        if not line.startswith(prefix):
            continue
        member, _, rest = line[len(prefix):].partition(":")
        fields = rest.split()
        if len(fields) < 2:
            continue
        kind, name = fields[-2], fields[-1].split("@", 1)[0]
        undefined, defined = table.setdefault(member, (set(), set()))
        (undefined if kind in ("U", "w", "v") and len(fields) == 2 else defined).add(name)
    return {m: (frozenset(u), frozenset(d)) for m, (u, d) in table.items()}


def find_origins(inputs: LinkInputs, symbol: str, *, defined: bool) -> list[str]:
    """Names of the objects / archive members that reference (or define) `symbol`."""
    side = 1 if defined else 0
    names = []
    for path in inputs.objects:
        if path.is_file() and symbol in _object_symbols(path, path.stat().st_mtime)[side]:
            names.append(path.name)
    for archive, member in inputs.members:
        table = _archive_symbols(archive, archive.stat().st_mtime)
        if symbol in table.get(member, (frozenset(), frozenset()))[side]:
            names.append(f"{archive.name}({member})")
    return list(dict.fromkeys(names))


def describe_origin(violation: Violation, inputs: LinkInputs) -> str:
    if not violation.symbol:
        return ""
    defined = violation.rule == "export"
    names = find_origins(inputs, violation.symbol, defined=defined)
    if not names:
        return ""
    shown = ", ".join(names[:MAX_ORIGINS])
    if len(names) > MAX_ORIGINS:
        shown += f", and {len(names) - MAX_ORIGINS} more"
    return f"{'defined in' if defined else 'referenced by'}: {shown}"


# ---- entry points ------------------------------------------------------------------------------


def check_binary(path: Path, policy: Policy | None = None, *, objects: list[Path] | None = None,
                 link_map: Path | None = None) -> list[Violation]:
    """All portability violations of one binary; empty when it passes.

    `objects` (the extension's own .o files) and `link_map` (its GNU ld -Map output) are only
    used to say where each offending symbol came from.
    """
    path = Path(path)
    policy = policy or load_policy()
    try:
        facts = read_elf(path)
    except (ELFError, OSError, ValueError) as error:
        return [Violation("unreadable", "", "", f"cannot check: {error}", binary=path.name)]
    try:
        extra = abi_check_rules(path, policy, facts)
    except (OSError, ValueError) as error:  # e.g. it cannot parse GLIBC_PRIVATE
        extra = [Violation("abi-check-error", "", "", f"kernel-abi-check failed: {error}")]
    abilist_file = policy.abilist_file(facts.arch)
    abilist = load_abilist(abilist_file) if abilist_file is not None else None
    own = (glibc_rules(facts, policy, abilist) + cxx_runtime_rules(facts, policy)
           + needed_rules(facts, policy) + export_rules(facts, policy))
    violations = sorted(_without_duplicates(own, extra), key=_sort_key)
    inputs = link_inputs(objects, link_map) if objects or link_map else None
    return [
        replace(v, binary=path.name, origin=describe_origin(v, inputs) if inputs else "")
        for v in violations
    ]


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def binaries_under(paths: Iterable[Path]) -> list[Path]:
    """The files given plus every ELF `*.so` under the folders given, sorted, no duplicates."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.so") if p.is_file() and is_elf(p))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def check_tree(paths: Iterable[Path], policy: Policy | None = None) -> dict[Path, list[Violation]]:
    """check_binary for every binary given or found under the given folders."""
    return {path: check_binary(path, policy) for path in binaries_under(paths)}


def format_report(results: Mapping[Path, list[Violation]]) -> str:
    """A readable report: one line per binary, its violations indented, and a summary line."""
    lines = []
    for path, violations in results.items():
        if not violations:
            lines.append(f"ok    {path}")
            continue
        lines.append(f"FAIL  {path}: {len(violations)} violation{'s' if len(violations) != 1 else ''}")
        lines += [f"      {v.render()}" for v in violations]
    failed = sum(1 for v in results.values() if v)
    total = sum(len(v) for v in results.values())
    if failed:
        lines.append(f"{failed} of {len(results)} binaries are not portable ({total} violations)")
    else:
        lines.append(f"all {len(results)} binaries are portable")
    return "\n".join(lines)
