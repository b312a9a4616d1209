"""The portable-binaries layer: compat files, CMake module and post-link gate, on real builds.

Nothing here mocks ELF: every test compiles real shared objects (g++ in seconds; the CMake
projects of tests/data/portability in seconds to ~15 s each) and runs the real gate, which
reads them with pyelftools and calls the real kernel-abi-check. What each group proves:

- the data: the policy says what the product requires; the glibc 2.27 symbol list is sane; the
  shim defines exactly the wrapped symbols, all hidden, each forwarding to a glibc 2.27 symbol.
- the gate's rules, one small g++ build each: a plain build (shared libstdc++), a static
  libstdc++ build without shim or prelude (newer glibc symbols, named with the archive member
  they come from), an extra export, a missing libpthread.so.0, GLIBC_PRIVATE, non-abi3 Python
  symbols, a stripped binary, a whole tree with its report.
- the recipe (templates/cmake/portable.cmake in a CMake project laid out like a generated tree):
  the full recipe passes every rule and runs (iostreams, random_device, threads and mutexes,
  exceptions) inside a torch process; each KB_COMPAT_DISABLE part left out is caught by the
  gate, naming the offending symbol; a TORCH_LIBRARY extension against torch's CPU libraries
  passes and its ops work; a .cu kernel with dynamic cudart passes (prelude through nvcc's own
  -include).
"""

from __future__ import annotations

import filecmp
import fnmatch
import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from kernel_builder.checks import portability as gate

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "portability"
TEMPLATES = REPO / "templates"
COMPAT = TEMPLATES / "compat"
ARCH = platform.machine()
PY_INCLUDE = sysconfig.get_paths()["include"]

GXX, GCC, CMAKE, NINJA = (shutil.which(t) for t in ("g++", "gcc", "cmake", "ninja"))
needs_gcc = pytest.mark.skipif(not (GXX and GCC), reason="needs gcc and g++")
needs_cmake = pytest.mark.skipif(not (GXX and CMAKE), reason="needs cmake and g++")
linux_only = pytest.mark.skipif(sys.platform != "linux" or ARCH not in ("x86_64", "aarch64"),
                                reason="the portability layer targets Linux x86_64/aarch64")
pytestmark = [linux_only]


def _torch_dir() -> Path | None:
    spec = importlib.util.find_spec("torch")
    return Path(spec.origin).parent if spec and spec.origin else None


def _nvcc() -> Path | None:
    found = shutil.which("nvcc")
    candidates = [Path(found)] if found else []
    candidates += sorted(Path("/usr/local").glob("cuda*/bin/nvcc"), reverse=True)
    return next((p for p in candidates if p.is_file()), None)


TORCH_DIR = _torch_dir()
NVCC = _nvcc()
needs_torch = pytest.mark.skipif(TORCH_DIR is None, reason="needs torch installed")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="needs the CUDA toolkit (nvcc)")


# ---- helpers -------------------------------------------------------------------------------


def run(command: list, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed:\n{result.stdout[-3000:]}"
                             f"\n{result.stderr[-3000:]}")
    return result


def run_python(script: str, *args: object) -> str:
    """Run a script in a fresh interpreter (loading extensions must not touch pytest's)."""
    return run([sys.executable, "-c", textwrap.dedent(script), *args]).stdout


def wrap_symbols() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in (COMPAT / "wrap-symbols.txt").read_text().splitlines())
    return [line for line in lines if line]


def wrap_flags() -> list[str]:
    return [f"-Wl,--wrap={s}" for s in wrap_symbols()]


def rules(violations: list[gate.Violation]) -> set[tuple[str, str]]:
    return {(v.rule, v.symbol) for v in violations}


def find(violations: list[gate.Violation], rule: str, symbol: str) -> gate.Violation:
    matches = [v for v in violations if v.rule == rule and v.symbol == symbol]
    assert matches, f"no {rule} violation for {symbol} in:\n" + "\n".join(v.render() for v in violations)
    return matches[0]


def dynamic_tags(path: Path, tag: str) -> list:
    with path.open("rb") as handle:
        dynamic = next(s for s in ELFFile(handle).iter_sections() if isinstance(s, DynamicSection))
        return [t.entry.d_val for t in dynamic.iter_tags(tag)]


def object_symbols(path: Path) -> dict[str, tuple[str, str, str]]:
    """name -> (section index, binding, visibility) from a relocatable object's .symtab."""
    with path.open("rb") as handle:
        symtab = next(s for s in ELFFile(handle).iter_sections()
                      if isinstance(s, SymbolTableSection) and s["sh_type"] == "SHT_SYMTAB")
        return {s.name: (s["st_shndx"], s["st_info"]["bind"], s["st_other"]["visibility"])
                for s in symtab.iter_symbols() if s.name}


def abilist_pairs() -> set[tuple[str, str]]:
    abilist = gate.load_abilist(gate.load_policy().abilist_file(ARCH))
    return set(abilist.providers)


# C++ code whose inline and libstdc++.a parts reach glibc > 2.27 on a new host.
LEAKY_CPP = """
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
static std::once_flag once;
extern "C" __attribute__((visibility("default"))) void* PyInit_leaky(void) {
  std::call_once(once, [] {});
  std::random_device device("arc4random");
  std::ostringstream out;
  out << device();
  std::thread([] {}).join();
  return out.str().empty() ? nullptr : &once;
}
"""


@pytest.fixture(scope="module")
def gxx_builds(tmp_path_factory) -> Path:
    """Small shared objects built straight with g++, one per rule (a few seconds in all)."""
    if not (GXX and GCC):
        pytest.skip("needs gcc and g++")
    out = tmp_path_factory.mktemp("gxx")
    (out / "leaky.cpp").write_text(LEAKY_CPP)
    run([GXX, "-O2", "-fPIC", "-fvisibility=hidden", "-c", "leaky.cpp", "-o", "leaky.o"], cwd=out)
    run([GCC, "-O2", "-fPIC", "-fvisibility=hidden", "-c", COMPAT / "glibc_shim.c", "-o", "shim.o"], cwd=out)
    # plain: the default g++ link, libstdc++ shared
    run([GXX, "-shared", "leaky.o", "-o", "plain.so"], cwd=out)
    # static: -static-libstdc++ and its symbols hidden, but no shim, no prelude
    run([GXX, "-shared", "-static-libstdc++", "-Wl,--exclude-libs,ALL", "-Wl,-Map=static.map",
         "leaky.o", "-o", "static.so"], cwd=out)
    # noneeded: shim and --wrap, but libpthread.so.0 not forced into NEEDED
    run([GXX, "-shared", "-static-libstdc++", "-Wl,--exclude-libs,ALL", "leaky.o", "shim.o",
         *wrap_flags(), "-o", "noneeded.so"], cwd=out)
    # extra: a second exported symbol, through a version script that lets it out
    (out / "extra.c").write_text(
        '__attribute__((visibility("default"))) int PyInit_extra(void) { return 1; }\n'
        '__attribute__((visibility("default"))) int kb_extra(void) { return 2; }\n')
    run([GCC, "-O2", "-fPIC", "-fvisibility=hidden", "-c", "extra.c", "-o", "extra.o"], cwd=out)
    (out / "leaky.map").write_text("{ global: PyInit_*; kb_extra; local: *; };\n")
    run([GCC, "-shared", "extra.o", "-Wl,--version-script=leaky.map", "-o", "extra.so"], cwd=out)
    run([GCC, "-shared", "extra.o", f"-Wl,--version-script={COMPAT / 'exports.map'}", "-o", "sealed.so"],
        cwd=out)
    # private: a GLIBC_PRIVATE reference (to the first such function this libc has)
    for name in ("__libc_alloca_cutoff", "_dl_catch_error", "__nss_database_lookup"):
        (out / "private.c").write_text(
            f"extern int {name}(void);\n"
            f'__asm__(".symver {name}, {name}@GLIBC_PRIVATE");\n'
            f'__attribute__((visibility("default"))) int PyInit_private(void) {{ return {name}(); }}\n')
        if subprocess.run([GCC, "-shared", "-fPIC", "-fvisibility=hidden", "private.c", "-o", "private.so"],
                          cwd=out, capture_output=True).returncode == 0:
            break
    # pyabi: Python API outside the 3.9 limited API
    (out / "pyabi.c").write_text(
        "extern const char *PyUnicode_AsUTF8(void *);\n"
        "extern void *PyFrame_GetCode(void *);\n"
        '__attribute__((visibility("default"))) void *PyInit_pyabi(void) {\n'
        "  PyFrame_GetCode(0);\n  return (void *)PyUnicode_AsUTF8(0);\n}\n")
    run([GCC, "-shared", "-fPIC", "-fvisibility=hidden", "pyabi.c", "-o", "pyabi.so"], cwd=out)
    return out


# ---- the data --------------------------------------------------------------------------------


def test_policy_states_the_product_requirement():
    policy = gate.load_policy()
    raw = json.loads(gate.POLICY_FILE.read_text())
    assert policy.glibc_max == "2.27"
    assert policy.manylinux == "manylinux_2_27" and policy.python_abi == "3.9"
    assert policy.exported_symbols == ("^PyInit_",)
    assert set(policy.forbidden_version_prefixes) == {"GLIBCXX_", "CXXABI_"}
    assert policy.forbidden_needed == ("libstdc++.so*",)
    for arch in ("x86_64", "aarch64"):
        assert policy.abilist_file(arch).is_file()
    allowed = lambda lib: any(fnmatch.fnmatch(lib, p) for p in raw["needed_allowed"])  # noqa: E731
    for lib in ("libc.so.6", "libpthread.so.0", "libdl.so.2", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
                "libc10.so", "libtorch_cpu.so", "libtorch.so", "libc10_cuda.so", "libcudart.so.13",
                "libcublasLt.so.13", "libcuda.so.1", "libamdhip64.so.6"):
        assert allowed(lib), lib
    assert not allowed("libstdc++.so.6") and not allowed("libpython3.11.so.1.0")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_abilist_is_glibc_2_27(arch):
    path = gate.load_policy().abilist_file(arch)
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert lines == sorted(lines) and len(lines) == len(set(lines))
    assert all(len(line.split()) == 3 for line in lines)
    abilist = gate.load_abilist(path)
    loader = "ld-linux-x86-64.so.2" if arch == "x86_64" else "ld-linux-aarch64.so.1"
    assert {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", loader} <= abilist.libraries
    base = "GLIBC_2.2.5" if arch == "x86_64" else "GLIBC_2.17"
    assert abilist.providers[("pthread_once", base)] == {"libpthread.so.0"}
    assert "libdl.so.2" in abilist.providers[("dlopen", base)]
    assert ("getentropy", "GLIBC_2.25") in abilist.providers
    assert not any(name in ("arc4random", "fcntl64", "__libc_single_threaded") for name, _ in abilist.providers)
    numbers = [gate.glibc_version(v) for v in abilist.versions]
    assert max(n for n in numbers if n) == (2, 27)


@needs_gcc
@pytest.mark.parametrize("compiler", ["gcc", "g++"])
def test_shim_defines_exactly_the_wrapped_symbols_hidden(tmp_path, compiler):
    """Both ways the CMake module may compile it; every forwarder targets a glibc 2.27 symbol."""
    tool = GCC if compiler == "gcc" else GXX
    language = ["-x", "c"] if compiler == "gcc" else ["-x", "c++", "-std=c++20", "-include",
                                                     COMPAT / "compat_prelude.h"]
    obj = tmp_path / "shim.o"
    run([tool, *language, "-O2", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror",
         "-c", COMPAT / "glibc_shim.c", "-o", obj])
    symbols = object_symbols(obj)
    wrapped = {n[len("__wrap_"):] for n, (ndx, _, _) in symbols.items()
               if n.startswith("__wrap_") and ndx != "SHN_UNDEF"}
    listed = wrap_symbols()
    assert len(listed) == len(set(listed))
    assert wrapped == set(listed)
    defined = {n: s for n, s in symbols.items() if s[0] != "SHN_UNDEF" and s[1] != "STB_LOCAL"}
    assert set(defined) == {f"__wrap_{s}" for s in listed} | {"__libc_single_threaded"}
    assert {vis for _, _, vis in defined.values()} == {"STV_HIDDEN"}
    versioned = {tuple(n.split("@", 1)) for n, (ndx, _, _) in symbols.items() if "@" in n and ndx == "SHN_UNDEF"}
    assert len(versioned) > 100
    assert versioned <= abilist_pairs(), versioned - abilist_pairs()


# ---- the gate's rules on small g++ builds ------------------------------------------------------


def test_plain_build_with_shared_libstdcxx_fails(gxx_builds):
    found = gate.check_binary(gxx_builds / "plain.so", objects=[gxx_builds / "leaky.o"])
    needed = [v for v in found if v.rule == "forbidden-needed"]
    assert len(needed) == 1 and "libstdc++.so.6" in needed[0].detail
    cxx = [v for v in found if v.rule == "forbidden-version"]
    assert any(v.version.startswith("GLIBCXX_") for v in cxx)
    assert all(v.origin == "referenced by: leaky.o" for v in cxx)
    once = find(found, "glibc-version", "pthread_once")  # inline std::call_once
    assert once.render() == ("plain.so: symbol pthread_once@GLIBC_2.34 is newer than glibc 2.27 "
                             "(referenced by: leaky.o)")


def test_static_libstdcxx_without_shim_names_new_glibc_symbols_and_origins(gxx_builds):
    so = gxx_builds / "static.so"
    found = gate.check_binary(so, objects=[gxx_builds / "leaky.o"], link_map=gxx_builds / "static.map")
    assert not {v.rule for v in found} & {"forbidden-needed", "forbidden-version"}
    versions = {v.symbol: v.version for v in found if v.rule == "glibc-version"}
    assert versions["__libc_single_threaded"] == "GLIBC_2.32"
    assert versions["pthread_once"] == "GLIBC_2.34" and versions["pthread_create"] == "GLIBC_2.34"
    assert versions["arc4random"] == "GLIBC_2.36"
    assert find(found, "glibc-version", "arc4random").render() == (
        "static.so: symbol arc4random@GLIBC_2.36 is newer than glibc 2.27 "
        "(referenced by: libstdc++.a(random.o))")
    assert "libstdc++.a(thread.o)" in find(found, "glibc-version", "pthread_create").origin
    assert "leaky.o" in find(found, "glibc-version", "pthread_once").origin
    # kernel-abi-check sees the same symbols; the gate reports each once.
    assert {item.symbol for item in gate.abi_check_rules(so, gate.load_policy(), gate.read_elf(so))} \
        >= {"arc4random", "pthread_once", "__libc_single_threaded"}
    assert not [v for v in found if v.rule == "manylinux"]


def test_stripped_binary_gives_the_same_findings(gxx_builds, tmp_path):
    strip = shutil.which("strip")
    if strip is None:
        pytest.skip("needs strip")
    stripped = tmp_path / "static.so"
    shutil.copy(gxx_builds / "static.so", stripped)
    run([strip, "--strip-all", stripped])
    key = lambda vs: sorted((v.rule, v.symbol, v.version) for v in vs)  # noqa: E731
    assert key(gate.check_binary(stripped)) == key(gate.check_binary(gxx_builds / "static.so"))


def test_missing_libpthread_in_needed_is_caught(gxx_builds):
    """With the shim the versions are old enough, but on glibc 2.27 they live in libpthread.so.0."""
    found = gate.check_binary(gxx_builds / "noneeded.so", objects=[gxx_builds / "shim.o"])
    assert {v.rule for v in found} - {"export"} == {"glibc-provider"}  # no version script here
    once = find(found, "glibc-provider", "pthread_once")
    assert once.version == ("GLIBC_2.2.5" if ARCH == "x86_64" else "GLIBC_2.17")
    assert "comes from libpthread.so.0" in once.detail and once.origin == "referenced by: shim.o"


def test_extra_export_fails_and_exports_map_hides_it(gxx_builds):
    found = gate.check_binary(gxx_builds / "extra.so", objects=[gxx_builds / "extra.o"])
    assert rules(found) == {("export", "kb_extra")}
    assert found[0].render() == ("extra.so: exports kb_extra; only symbols matching ^PyInit_ may be "
                                 "exported (defined in: extra.o)")
    assert gate.check_binary(gxx_builds / "sealed.so") == []


def test_glibc_private_is_rejected(gxx_builds):
    if not (gxx_builds / "private.so").is_file():
        pytest.skip("could not link a GLIBC_PRIVATE reference against this libc")
    found = gate.check_binary(gxx_builds / "private.so")
    private = [v for v in found if v.rule == "glibc-abilist"]
    assert len(private) == 1 and private[0].version == "GLIBC_PRIVATE"
    assert "is not in the public ABI of glibc 2.27" in private[0].detail
    assert "abi-check-error" in {v.rule for v in found}  # kernel-abi-check cannot parse it


def test_python_api_outside_abi3_3_9_is_caught(gxx_builds):
    found = gate.check_binary(gxx_builds / "pyabi.so")
    assert rules(found) == {("python-abi", "PyUnicode_AsUTF8"), ("python-abi", "PyFrame_GetCode")}
    assert "not in the Python limited API" in find(found, "python-abi", "PyUnicode_AsUTF8").detail


def test_check_tree_and_report(gxx_builds, tmp_path):
    tree = tmp_path / "build" / "torch-ext"
    (tree / "sub").mkdir(parents=True)
    shutil.copy(gxx_builds / "sealed.so", tree / "_ok.abi3.so")
    shutil.copy(gxx_builds / "plain.so", tree / "sub" / "_bad.abi3.so")
    (tree / "notes.txt").write_text("not a binary")
    (tree / "bogus.so").write_text("not ELF either")  # skipped when walking folders...
    results = gate.check_tree([tree])
    assert list(results) == [tree / "_ok.abi3.so", tree / "sub" / "_bad.abi3.so"]
    assert results[tree / "_ok.abi3.so"] == [] and results[tree / "sub" / "_bad.abi3.so"]
    report = gate.format_report(results)
    assert report.splitlines()[0] == f"ok    {tree / '_ok.abi3.so'}"
    assert f"FAIL  {tree / 'sub' / '_bad.abi3.so'}" in report
    assert "_bad.abi3.so: NEEDED libstdc++.so.6" in report
    assert report.splitlines()[-1].startswith("1 of 2 binaries are not portable")
    # ...but reported when named directly.
    unreadable = gate.check_tree([tree / "bogus.so"])[tree / "bogus.so"]
    assert [v.rule for v in unreadable] == ["unreadable"]


# ---- the recipe: portable.cmake in a CMake project ---------------------------------------------


@dataclass(frozen=True)
class Build:
    so: Path
    link_map: Path
    objects: list[Path]
    seconds: float

    def check(self) -> list[gate.Violation]:
        return gate.check_binary(self.so, objects=self.objects, link_map=self.link_map)


def cmake_build(root: Path, kind: str, module: str, disable: tuple[str, ...] = (),
                extra: tuple[str, ...] = ()) -> Build:
    """Lay the project out as create-pyproject does (cmake/ and compat/ side by side), build it."""
    src, build = root / "src", root / "build"
    shutil.copytree(DATA, src)
    shutil.copytree(TEMPLATES / "cmake", src / "cmake")
    shutil.copytree(COMPAT, src / "compat")
    generator = ["-G", "Ninja"] if NINJA else []
    start = time.monotonic()
    run([CMAKE, "-S", src, "-B", build, *generator, "-DCMAKE_BUILD_TYPE=Release",
         f"-DKB_PROBE_KIND={kind}", f"-DKB_MODULE_NAME={module}", f"-DPYTHON_INCLUDE_DIR={PY_INCLUDE}",
         f"-DTORCH_DIR={TORCH_DIR or ''}", f"-DKB_COMPAT_DISABLE={';'.join(disable)}", *extra])
    run([CMAKE, "--build", build])
    objects = sorted(build.glob("CMakeFiles/ext.dir/**/*.o"))
    return Build(build / f"{module}.abi3.so", build / "ext.map", objects, time.monotonic() - start)


def shared_libstdcxx(build: Build) -> bool:
    """Whether the compiler CMake chose can link libstdc++ dynamically at all."""
    cache = (build.so.parent / "CMakeCache.txt").read_text()
    compiler = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", cache, re.M).group(1)
    found = run([compiler, "-print-file-name=libstdc++.so"]).stdout.strip()
    return Path(found).is_absolute() and Path(found).exists()


PROBE_RUN = """
    import importlib.util, os, sys
    if sys.argv[2] == "torch":
        import torch  # libstdc++.so.6 is in the process before the extension
    spec = importlib.util.spec_from_file_location("_kb_probe", sys.argv[1])
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    print(probe.streams(42))
    print(probe.randoms(), probe.threads(8, 20000), probe.file_size(sys.argv[1]) == os.path.getsize(sys.argv[1]))
    print(round(probe.exp(1.5), 9), probe.half_sum(1.5, 2.25), probe.fd_flags(0) >= 0)
    try:
        probe.fail("boom")
    except RuntimeError as error:
        print("RuntimeError:", error)
"""

PROBE_OK = ["x=42 y=3.5 hex=ff", "4 160000 True", "9.174036106 3.75 True", "RuntimeError: boom"]


@pytest.fixture(scope="module")
def probe_builds(tmp_path_factory):
    """The plain C++ probe, built on demand with parts of the recipe disabled (~5 s each)."""
    if not (GXX and CMAKE):
        pytest.skip("needs cmake and g++")
    builds: dict[tuple[str, ...], Build] = {}

    def get(*disable: str) -> Build:
        if disable not in builds:
            root = tmp_path_factory.mktemp("probe-" + ("-".join(disable) or "full"))
            builds[disable] = cmake_build(root, "probe", "_kb_probe", disable)
        return builds[disable]

    return get


@pytest.mark.slow
def test_full_recipe_passes_every_rule(probe_builds):
    build = probe_builds()
    assert build.check() == []
    so = build.so
    policy = gate.load_policy()
    import kernel_abi_check

    assert kernel_abi_check.ObjectFile(str(so)).check_manylinux(policy.manylinux) == []
    assert kernel_abi_check.ObjectFile(str(so)).check_python_abi("3.9") == []
    facts = gate.read_elf(so)
    assert [s.name for s in facts.symbols if s.exported] == ["PyInit__kb_probe"]
    assert not any(lib.startswith("libstdc++") for lib in facts.needed)
    assert {"libpthread.so.0", "libdl.so.2"} <= set(facts.needed)
    assert dynamic_tags(so, "DT_RPATH") == [] and dynamic_tags(so, "DT_RUNPATH") == []
    glibc = [gate.glibc_version(s.version) for s in facts.symbols if s.version.startswith("GLIBC_")]
    assert max(glibc) <= (2, 27)
    gcc = {s.version for s in facts.symbols if s.version.startswith("GCC_")}
    assert gcc <= {"GCC_3.0", "GCC_3.3", "GCC_4.2.0"}  # the unwinder, from libgcc_s.so.1
    assert build.link_map.is_file() and "libstdc++.a(" in build.link_map.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("process", ["plain", "torch"])
def test_full_recipe_runs(probe_builds, process):
    if process == "torch" and TORCH_DIR is None:
        pytest.skip("needs torch")
    output = run_python(PROBE_RUN, probe_builds().so, process).splitlines()
    assert output == PROBE_OK


# Each part left out, and a symbol the gate must then name (rule, symbol, part of the origin).
DISABLED_PARTS = {
    "prelude": [("glibc-version", "pthread_cond_clockwait", "probe.cpp.o"),
                ("glibc-version", "pthread_mutex_clocklock", "probe.cpp.o"),
                ("glibc-version", "pthread_rwlock_clockrdlock", "probe.cpp.o")],
    "shim": [("glibc-version", "arc4random", "libstdc++.a(random.o)"),
             ("glibc-version", "__libc_single_threaded", "probe.cpp.o"),
             ("glibc-version", "pthread_once", "libstdc++.a("),
             ("glibc-version", "pthread_create", "libstdc++.a(thread.o)"),
             ("glibc-version", "pthread_mutex_trylock", "probe.cpp.o"),
             ("glibc-version", "stat", "libstdc++.a("),
             ("glibc-version", "exp", "probe.cpp.o")],
    "static-libstdc++": [("forbidden-needed", "", ""),
                         ("forbidden-version", "_ZNSt13random_device9_M_getvalEv", "probe.cpp.o")],
    "version-script": [("export", "_ZTSSt19_Sp_make_shared_tag", "probe.cpp.o")],
    "libgcc-helpers": [("manylinux", "__extendhfsf2", "probe.cpp.o")],
}


@pytest.mark.slow
@pytest.mark.parametrize("part", sorted(DISABLED_PARTS))
def test_each_disabled_part_is_caught(probe_builds, part):
    if part == "libgcc-helpers" and ARCH != "x86_64":
        pytest.skip("_Float16 helpers are x86_64-specific here")
    build = probe_builds(part)
    if part == "static-libstdc++" and not shared_libstdcxx(build):
        pytest.skip("this C++ compiler has no shared libstdc++: it always links it statically")
    found = build.check()
    assert found, f"KB_COMPAT_DISABLE={part} passed the gate"
    for rule, symbol, origin in DISABLED_PARTS[part]:
        violation = find(found, rule, symbol)
        assert origin in violation.origin, violation.render()
    if part == "version-script":  # the extension's own weak template instantiations
        assert {v.rule for v in found} == {"export"}
        assert all("probe.cpp.o" in v.origin for v in found)


@pytest.mark.slow
def test_exclude_libs_alone_changes_nothing_the_version_script_hides(probe_builds):
    """--exclude-libs,ALL is a second seal: with the version script the binary is identical."""
    alone = probe_builds("exclude-libs")
    assert alone.check() == []
    assert filecmp.cmp(alone.so, probe_builds().so, shallow=False)


@pytest.mark.slow
@needs_torch
def test_without_exclude_libs_and_version_script_iostreams_break_in_torch(probe_builds):
    """The failure the gate exists for: libstdc++.a exported, half-bound to torch's libstdc++."""
    build = probe_builds("exclude-libs", "version-script")
    found = build.check()
    assert {v.rule for v in found} == {"export"} and len(found) > 1000
    assert find(found, "export", "_ZNSt6locale5facet11_S_c_localeE").origin == \
        "defined in: libstdc++.a(locale.o)"
    # g++ 12 / glibc 2.36: the ostringstream stops after its first insertion ("x=");
    # g++ 13 / glibc 2.39: the process crashes.
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE_RUN), str(build.so), "torch"],
                            capture_output=True, text=True)
    assert result.returncode != 0 or result.stdout.splitlines()[0] == "x=", result.stdout


# ---- a TORCH_LIBRARY extension against torch's CPU libraries -------------------------------------


TORCH_RUN = """
    import importlib.util, sys
    import torch
    name, path, how = "_kb_torch_probe", sys.argv[1], sys.argv[2]
    if how == "importlib":
        spec = importlib.util.spec_from_file_location(name, path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    else:
        torch.ops.load_library(path)
    ops = getattr(torch.ops, name)
    x = torch.randn(10000)
    print(torch.equal(ops.relu(x), torch.relu(x)))
    print(ops.streams(42), "|", ops.parallel_streams(1000), ops.randoms(), ops.threads(8, 20000))
    print(round(ops.exp_log(1.5), 9), ops.catch_torch_error())
    for call in (lambda: ops.fail("boom from the extension"), lambda: ops.relu(x.double())):
        try:
            call()
        except RuntimeError as error:
            print("RuntimeError:", str(error).splitlines()[0])
"""

TORCH_OK = ["True", "x=42 y=3.5 hex=ff | 1000 4 160000", "6.924036106 caught c10::Error",
            "RuntimeError: boom from the extension", "RuntimeError: relu: expected float32, got Double"]


@pytest.fixture(scope="module")
def torch_build(tmp_path_factory) -> Build:
    if not (GXX and CMAKE) or TORCH_DIR is None:
        pytest.skip("needs cmake, g++ and torch")
    return cmake_build(tmp_path_factory.mktemp("torch-ext"), "torch", "_kb_torch_probe")


@pytest.mark.slow
def test_torch_extension_passes_the_gate(torch_build):
    assert torch_build.check() == []
    facts = gate.read_elf(torch_build.so)
    assert {"libc10.so", "libtorch_cpu.so"} <= set(facts.needed)
    assert [s.name for s in facts.symbols if s.exported] == ["PyInit__kb_torch_probe"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["importlib", "load_library"])
def test_torch_extension_runs_in_torch(torch_build, how):
    assert run_python(TORCH_RUN, torch_build.so, how).splitlines() == TORCH_OK


# ---- a CUDA kernel with dynamic cudart -----------------------------------------------------------


@pytest.fixture(scope="module")
def cuda_builds(tmp_path_factory):
    if not (GXX and CMAKE) or NVCC is None:
        pytest.skip("needs cmake, g++ and nvcc")
    builds: dict[tuple[str, ...], Build] = {}

    def get(*disable: str) -> Build:
        if disable not in builds:
            root = tmp_path_factory.mktemp("cuda-" + ("-".join(disable) or "full"))
            builds[disable] = cmake_build(root, "cuda", "_kb_cuda_probe", disable,
                                          (f"-DCMAKE_CUDA_COMPILER={NVCC}", "-DCMAKE_CUDA_ARCHITECTURES=75"))
        return builds[disable]

    return get


CUDA_RUN = """
    import ctypes, importlib.util, sys
    ctypes.CDLL(sys.argv[2], mode=ctypes.RTLD_GLOBAL)  # no RPATH: the loader must find cudart
    spec = importlib.util.spec_from_file_location("_kb_cuda_probe", sys.argv[1])
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    try:
        print("sum", probe.add_one(1000))
    except RuntimeError as error:  # the no-GPU path: an exception from nvcc-compiled host code
        print("RuntimeError:", error)
"""


@pytest.mark.slow
@needs_nvcc
def test_cuda_extension_with_dynamic_cudart_passes_and_loads(cuda_builds):
    build = cuda_builds()
    assert build.check() == []
    facts = gate.read_elf(build.so)
    assert any(re.fullmatch(r"libcudart\.so\.\d+", lib) for lib in facts.needed)
    cu_object = next(o for o in build.objects if o.name == "cuda_probe.cu.o")
    undefined = {n for n, (ndx, _, _) in object_symbols(cu_object).items() if ndx == "SHN_UNDEF"}
    assert "pthread_cond_timedwait" in undefined and "pthread_cond_clockwait" not in undefined
    cache = (build.so.parent / "CMakeCache.txt").read_text()
    cudart = Path(re.search(r"^CUDA_cudart_LIBRARY:FILEPATH=(.+)$", cache, re.M).group(1)).resolve()
    output = run_python(CUDA_RUN, build.so, cudart).strip()
    assert output == "sum 1000.0" or output.startswith("RuntimeError: cudaGetDeviceCount: "), output


@pytest.mark.slow
@needs_nvcc
def test_cuda_prelude_goes_through_nvcc_include(cuda_builds):
    found = cuda_builds("prelude").check()
    assert "cuda_probe.cu.o" in find(found, "glibc-version", "pthread_cond_clockwait").origin


def test_cxx_runtime_symbol_left_for_another_library_is_caught(tmp_path):
    """A std:: reference without a version would bind to whichever runtime is loaded first
    (torch's): the gate must name it even though no GLIBCXX version shows it."""
    source = tmp_path / "unbound.cpp"
    source.write_text('#include <string>\nextern "C" __attribute__((visibility("default"))) unsigned long f(const char *s) { return std::string(s).size(); }\n')
    binary = tmp_path / "unbound.so"
    # Link against nothing C++: the std::string members stay undefined and unversioned.
    subprocess.run(["g++", "-shared", "-fPIC", "-O1", "-nodefaultlibs", "-o", str(binary), str(source), "-lc", "-lgcc_s"], check=True)
    found = [v for v in gate.check_binary(binary) if v.rule == "cxx-runtime-binding"]
    assert found, "an unversioned std:: reference must be reported"
    assert all(v.symbol.startswith(("_ZNSt", "_ZNKSt", "_ZSt", "__cxa_", "__gxx_personality")) for v in found)
    assert "must come from the static libstdc++" in found[0].render()
