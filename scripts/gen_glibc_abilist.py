#!/usr/bin/env python3
"""Write builder/data/glibc-<version>-<arch>.abilist: every (library, symbol, version) glibc provides.

The post-link portability gate (kernel_builder.checks.portability) checks that every versioned
glibc symbol an extension needs exists in the target glibc. CI reads only the committed data
files; this script regenerates them from a public source, the `ziglang` wheel on PyPI: zig ships
the symbol lists of every glibc release and, when asked to link for `<arch>-linux-gnu.<version>`,
writes stub libraries (libc.so.6, libm.so.6, libpthread.so.0, ...) whose dynamic symbols and
version definitions are exactly those of that glibc. The stubs are read with pyelftools.

    python -m venv /tmp/zig && /tmp/zig/bin/pip install ziglang pyelftools   # ~410 MB installed
    /tmp/zig/bin/python scripts/gen_glibc_abilist.py                         # x86_64 and aarch64
    /tmp/zig/bin/python scripts/gen_glibc_abilist.py --glibc 2.28 --arch x86_64

(ziglang 0.17.1 was used for the committed files; each target takes about 30 s the first time.)
Output format, one entry per line, sorted, '#' lines are comments:

    <library soname> <symbol> <version>        e.g.  libpthread.so.0 pthread_once GLIBC_2.2.5

A symbol that glibc keeps in several versions (pthread_cond_wait: GLIBC_2.2.5 and GLIBC_2.3.2)
has one line per version; the default version is not marked. zig has no stubs for libanl.so.1
(getaddrinfo_a & co.), so those few symbols are missing. Cross-check done for the committed x86_64
file: every (symbol, version <= 2.27) pair that Debian 12's glibc 2.36 defines in libc, libm,
libpthread, libdl, librt, libresolv and libutil is listed, except libanl's four gai_* functions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "builder" / "data"
MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}


def build_stubs(arch: str, glibc: str, workdir: Path) -> list[Path]:
    """Let zig link a trivial program for the target; return the stub libraries it wrote."""
    (workdir / "t.c").write_text("int main(void) { return 0; }\n")
    cache = workdir / "zig-cache"
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(cache), ZIG_LOCAL_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "ziglang", "cc", "-target", f"{arch}-linux-gnu.{glibc}",
               "t.c", "-o", "t", "-lpthread", "-ldl", "-lm", "-lrt"]
    subprocess.run(command, cwd=workdir, env=env, check=True)
    stubs = sorted(p for p in cache.glob("o/*/*.so*") if p.is_file())
    if not any(p.name == "libc.so.6" for p in stubs):
        raise SystemExit(f"zig wrote no libc.so.6 stub under {cache}")
    return stubs


def _soname(elf: ELFFile, path: Path) -> str:
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags("DT_SONAME"):
                return tag.soname
    return path.name


def _version_names(elf: ELFFile) -> dict[int, str]:
    names: dict[int, str] = {}
    for section in elf.iter_sections():
        if isinstance(section, GNUVerDefSection):
            for verdef, auxiliaries in section.iter_versions():
                names[verdef["vd_ndx"]] = next(auxiliaries).name
    return names


def read_stub(path: Path, arch: str) -> set[tuple[str, str, str]]:
    """(soname, symbol, version) for every defined, versioned dynamic symbol of one stub."""
    with path.open("rb") as handle:
        elf = ELFFile(handle)
        if elf["e_machine"] != MACHINES[arch]:
            raise SystemExit(f"{path}: machine {elf['e_machine']}, expected {MACHINES[arch]}")
        soname = _soname(elf, path)
        names = _version_names(elf)
        dynsym = next(s for s in elf.iter_sections() if isinstance(s, SymbolTableSection)
                      and s["sh_type"] == "SHT_DYNSYM")
        versym = next(s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection))
        entries = set()
        for index, symbol in enumerate(dynsym.iter_symbols()):
            if not symbol.name or symbol["st_shndx"] == "SHN_UNDEF":
                continue
            ndx = versym.get_symbol(index)["ndx"]
            if not isinstance(ndx, int):
                continue
            version = names.get(ndx & 0x7FFF)
            if version and version != symbol.name:  # skip the version-definition symbols
                entries.add((soname, symbol.name, version))
        return entries


def render(entries: set[tuple[str, str, str]], arch: str, glibc: str) -> str:
    try:
        zig = metadata.version("ziglang")
    except metadata.PackageNotFoundError:
        zig = "unknown"
    libraries = sorted({soname for soname, _, _ in entries})
    header = [
        f"# glibc {glibc} dynamic symbols for {arch}-linux-gnu: <library> <symbol> <version>",
        f"# Generated by scripts/gen_glibc_abilist.py from the stub libraries of the ziglang {zig}",
        "# wheel (PyPI). Do not edit by hand; regenerate with the script.",
        f"# Libraries: {' '.join(libraries)}",
    ]
    body = [" ".join(entry) for entry in sorted(entries)]
    return "\n".join(header + body) + "\n"


def generate(arch: str, glibc: str, out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="kb-abilist-") as tmp:
        entries: set[tuple[str, str, str]] = set()
        for stub in build_stubs(arch, glibc, Path(tmp)):
            entries |= read_stub(stub, arch)
    target = out_dir / f"glibc-{glibc}-{arch}.abilist"
    target.write_text(render(entries, arch, glibc))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--glibc", default="2.27", help="glibc version (default 2.27)")
    parser.add_argument("--arch", action="append", choices=sorted(MACHINES),
                        help="architecture (repeatable; default: x86_64 and aarch64)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    for arch in args.arch or sorted(MACHINES):
        path = generate(arch, args.glibc, args.out)
        count = sum(1 for line in path.read_text().splitlines() if not line.startswith("#"))
        print(f"{path}: {count} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
