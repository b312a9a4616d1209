"""Runtime conformance of kernel-builder's portable binaries inside torch.

Every compiled variant links libstdc++ statically and hides it, keeps libgcc_s dynamic and goes
through a glibc shim and a force-included prelude (templates/cmake/portable.cmake, templates/
compat/). The portability gate checks the symbols after linking; this suite checks the BEHAVIOUR
at run time, in a process where torch has already loaded the shared libstdc++.so.6 — two C++
runtimes in one process.

The kernel tests/conformance/kernels/conformance is built once per module for the running
interpreter's torch (the CPU variant with a CPU torch, the CUDA variant with a CUDA torch), and
each probe runs in a fresh interpreter that loads it through `kernels.get_local_kernel`, so that
every probe sees a cold runtime and a crash fails one test only. A twin of the kernel (the same
sources under another name, so the same C++ symbols) is made on the fly to check that two such
extensions keep separate state in one process.

KERNEL_BUILDER_CONFORMANCE_KERNEL=<dir> reuses an already built copy of the kernel when it holds
a variant for the running torch (to save a CUDA build on a GPU machine).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kbtest_util import REPO

pytestmark = pytest.mark.slow

KERNEL_SOURCE = REPO / "tests" / "conformance" / "kernels" / "conformance"
PREBUILT_ENV = "KERNEL_BUILDER_CONFORMANCE_KERNEL"
RESULT_MARK = "@@conformance-result@@ "
INTRA_OP_THREADS = 4  # torch.set_num_threads in every probe: more than one worker even on 2 cores

# Mangled names in the C++ runtime's namespaces (std::, __gnu_cxx::, __cxxabiv1::, including
# vtables, typeinfo objects and their names) and the runtime's C entry points.
LIBSTDCXX_SYMBOL = re.compile(r"^(?:_Z(?:T[VIS])?(?:N[rVKRO]*)?(?:St|9__gnu_cxx|10__cxxabiv1)|__cxa_|__gxx_personality)")

GLIBC_CXA = {"__cxa_atexit", "__cxa_finalize", "__cxa_thread_atexit_impl"}



# ---------------------------------------------------------------------------------------------
# Building


@dataclass
class Built:
    kernel: Path  # the kernel directory (holding build.toml and build/)
    variant: Path  # build/<variant>/ for the running torch
    report: dict | None  # `kernel-builder build --json` output; None for a reused build
    seconds: float

    @property
    def library(self) -> Path:
        (so,) = self.variant.glob("*.so")
        return so

    @property
    def backend(self) -> str:
        return json.loads((self.variant / "metadata.json").read_text())["backend"]["type"]


def torch_variant_prefix() -> str:
    """`torch<XY>-cxx11-<compute>-`: the start of the variant name for the running torch."""
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    compute = "cu" + "".join(torch.version.cuda.split(".")[:2]) if torch.version.cuda else "cpu"
    return f"torch{major}{minor}-cxx11-{compute}-"


def cuda_arch_args() -> list[str]:
    """Build only for the visible GPU (unless KERNEL_BUILDER_CUDA_ARCHS says otherwise)."""
    if os.environ.get("KERNEL_BUILDER_CUDA_ARCHS"):
        return []
    try:
        import torch

        if torch.version.cuda and torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return ["--cuda-archs", f"{major}.{minor}"]
    except Exception:  # a CUDA torch without its runtime: let kernel-builder decide
        pass
    return []


def kb(*args: object, timeout: int = 1800) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter (the running one: it builds for this torch, --host)."""
    if args and args[0] == "build":
        args = ("build", "--host", *args[1:])
    return subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def copy_kernel(dest: Path) -> Path:
    target = dest / "conformance"
    shutil.copytree(KERNEL_SOURCE, target, ignore=shutil.ignore_patterns("build", "__pycache__", ".kernel-builder-generated.json"))
    return target


def make_twin(dest: Path) -> Path:
    """A copy of the kernel named conformance-twin: the same C++ sources and symbols, its own
    Python package (torch-ext/conformance_twin) and therefore its own ops namespace."""
    source = copy_kernel(dest / "twin-source")
    twin = dest / "conformance-twin"
    source.rename(twin)
    toml = (twin / "build.toml").read_text()
    for old, new in (('name = "conformance"', 'name = "conformance-twin"'), ('"kernel-builder-tests/conformance"', '"kernel-builder-tests/conformance-twin"')):
        assert toml.count(old) == 1, old
        toml = toml.replace(old, new)
    (twin / "build.toml").write_text(toml)
    (twin / "torch-ext" / "conformance").rename(twin / "torch-ext" / "conformance_twin")
    return twin


def find_variant(kernel: Path) -> Path | None:
    prefix = torch_variant_prefix()
    found = sorted(p for p in (kernel / "build").glob(prefix + "*") if (p / "metadata.json").is_file()) if (kernel / "build").is_dir() else []
    return found[0] if found else None


def build(kernel: Path) -> Built:
    start = time.monotonic()
    result = kb("build", kernel, "--json", *cuda_arch_args())
    seconds = time.monotonic() - start
    assert result.returncode == 0, f"kernel-builder build failed (exit {result.returncode}):\n{result.stderr}\n{result.stdout}"
    report = json.loads(result.stdout)
    variant = find_variant(kernel)
    assert variant is not None, f"no variant starting with {torch_variant_prefix()} in {kernel / 'build'}:\n{result.stdout}"
    print(f"\nbuilt {variant.name} in {seconds:.1f} s")
    return Built(kernel, variant, report, seconds)


@pytest.fixture(scope="module")
def conformance(tmp_path_factory) -> Built:
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        variant = find_variant(Path(prebuilt))
        if variant is not None:
            return Built(Path(prebuilt), variant, None, 0.0)
    return build(copy_kernel(tmp_path_factory.mktemp("conformance")))


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Built:
    return build(make_twin(tmp_path_factory.mktemp("twin")))


# ---------------------------------------------------------------------------------------------
# Running probes


@dataclass
class ProbeRun:
    value: Any  # what the body passed to emit()
    stdout: str
    stderr: str


def run_probe(body: str, *kernels: Built, timeout: int = 300, check: bool = True) -> ProbeRun | subprocess.CompletedProcess:
    """Run `body` in a fresh interpreter where `k` (and `k2`, ...) are the loaded kernels and
    `emit(value)` hands a JSON value back. With check=False, the CompletedProcess is returned."""
    paths = [str(b.kernel) for b in kernels]
    prologue = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        import torch, kernels

        torch.set_num_threads({INTRA_OP_THREADS})
        _loaded = [kernels.get_local_kernel(Path(p)) for p in {paths!r}]
        k = _loaded[0]
        k2 = _loaded[1] if len(_loaded) > 1 else None

        def emit(value):
            sys.stdout.flush()
            print({RESULT_MARK!r} + json.dumps(value), flush=True)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("LOCAL_KERNELS", None)
    env.pop("OMP_NUM_THREADS", None)
    result = subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(body)], capture_output=True, text=True, env=env, timeout=timeout)
    if not check:
        return result
    assert result.returncode == 0, f"probe exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    values = [line[len(RESULT_MARK):] for line in result.stdout.splitlines() if line.startswith(RESULT_MARK)]
    assert len(values) == 1, f"expected one result line\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return ProbeRun(json.loads(values[0]), result.stdout, result.stderr)


def probe(kernel: Built, body: str) -> Any:
    return run_probe(body, kernel).value


# ---------------------------------------------------------------------------------------------
# ELF helpers


def dynamic_symbols(library: Path) -> list[tuple[str, str, str]]:
    """(name, binding, section index) of every .dynsym entry."""
    from elftools.elf.elffile import ELFFile

    with open(library, "rb") as handle:
        dynsym = ELFFile(handle).get_section_by_name(".dynsym")
        return [(s.name, s["st_info"]["bind"], s["st_shndx"]) for s in dynsym.iter_symbols() if s.name]


def unique_symbols(library: Path) -> list[str]:
    """Symbols bound STB_GNU_UNIQUE (one copy per process) in .dynsym and .symtab."""
    from elftools.elf.elffile import ELFFile

    names = []
    with open(library, "rb") as handle:
        elf = ELFFile(handle)
        for section in (elf.get_section_by_name(".dynsym"), elf.get_section_by_name(".symtab")):
            if section is not None:
                names += [s.name for s in section.iter_symbols() if s["st_info"]["bind"] == "STB_GNU_UNIQUE"]
    return names


def needed(library: Path) -> list[str]:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with open(library, "rb") as handle:
        for section in ELFFile(handle).iter_sections():
            if isinstance(section, DynamicSection):
                return [tag.needed for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
    return []


def undefined_runtime_symbols(library: Path) -> list[str]:
    """Strong undefined dynamic symbols of the C++ runtime: each binds at run time to whichever
    library exports it (torch, libstdc++.so.6), not to the extension's static copy. (Weak ones
    never pull an archive member, by design; __cxa_atexit & co. are glibc's.)"""
    return sorted(
        name
        for name, bind, shndx in dynamic_symbols(library)
        if shndx == "SHN_UNDEF" and bind == "STB_GLOBAL" and LIBSTDCXX_SYMBOL.match(name) and name not in GLIBC_CXA
    )


# ---------------------------------------------------------------------------------------------
# The build


def test_build_passes_kernel_builder_checks(conformance):
    assert conformance.variant.name.startswith(torch_variant_prefix())
    if conformance.report is not None:
        report = conformance.report
        assert report["ok"], report
        (variant,) = [v for v in report["variants"] if v["variant"] == conformance.variant.name]
        assert variant["status"] == "built" and variant["error"] is None
        assert variant["warnings"] == []
        assert Path(variant["log"]).read_text().rstrip().endswith("checks: all passed")
    result = kb("check-builds", conformance.kernel, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok   {conformance.variant.name}" in result.stdout


def test_binary_exports_nothing_but_pyinit_and_has_no_unique_symbols(conformance):
    library = conformance.library
    exported = [name for name, bind, shndx in dynamic_symbols(library) if shndx != "SHN_UNDEF" and bind != "STB_LOCAL"]
    assert exported and all(name.startswith("PyInit_") for name in exported), exported
    # STB_GNU_UNIQUE would merge the twin's statics with ours (and pin the library in memory).
    assert unique_symbols(library) == []
    assert not [n for n in needed(library) if n.startswith("libstdc++")]


def test_no_cxx_runtime_symbol_binds_outside_the_extension(conformance):
    """Every std:: symbol the extension uses must come from its own static libstdc++.

    Found by this suite: with libstdc++.a after torch's libraries on the link line, std::
    members that torch >= 2.12 exports bound to torch's runtime and istringstream crashed.
    """
    assert undefined_runtime_symbols(conformance.library) == []


# ---------------------------------------------------------------------------------------------
# Exceptions across the boundary


def test_torch_check_failure_is_a_runtime_error_with_its_message(conformance):
    value = probe(
        conformance,
        """
        result = {"ok": k.ops.check_positive(21)}
        try:
            k.ops.check_positive(-3)
        except RuntimeError as e:
            result["error"] = [type(e).__name__, str(e)]
        emit(result)
        """,
    )
    assert value["ok"] == 42
    kind, message = value["error"]
    assert kind == "RuntimeError"
    assert message.startswith("conformance.check_positive: x must be positive, got -3")


def test_cxx_exceptions_from_the_extension_reach_python_as_their_types(conformance):
    value = probe(
        conformance,
        """
        result = {}
        for kind in ["runtime_error", "out_of_range", "invalid_argument", "custom", "c10_value_error", "c10_index_error"]:
            try:
                k.ops.throw_std(kind, "conformance message: " + kind)
                result[kind] = ["no exception", ""]
            except Exception as e:
                result[kind] = [type(e).__name__, str(e)]
        emit(result)
        """,
    )
    expected = {
        "runtime_error": "RuntimeError",
        "out_of_range": "IndexError",
        "invalid_argument": "ValueError",
        "custom": "RuntimeError",  # a std::exception subclass torch has never seen
        "c10_value_error": "ValueError",
        "c10_index_error": "IndexError",
    }
    assert {kind: v[0] for kind, v in value.items()} == expected
    for kind, (_, message) in value.items():
        assert message.startswith("conformance message: " + kind), (kind, message)


def test_libtorch_error_is_caught_in_the_extension(conformance):
    value = probe(conformance, "emit(k.probe('catch_torch_error'))")
    shapes = "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"
    assert value["caught_as_c10_error"] and value["c10_error"].startswith(shapes)
    assert value["c10_msg"] == shapes
    assert value["caught_as_std_exception"] and value["std_exception"].startswith(shapes)
    assert value["dynamic_cast_to_c10_error"]
    assert value["rethrown_exception_ptr"]
    assert value["index_error"].startswith("select(): index 7 out of range")
    assert value["torch_exceptions_caught"] == 4


def test_exceptions_thrown_and_caught_inside_the_extension(conformance):
    value = probe(conformance, "emit(k.probe('exceptions_inside'))")
    assert value == {
        "custom": "unwinding",
        "uncaught_delta_during_unwind": 1,
        "uncaught_delta_after": 0,
        "rethrow": "inner",
        "exception_ptr_other_thread": "stored",
        "nested": "outer<-cause",
    }


def test_exception_in_parallel_for_worker_is_rethrown_to_the_caller(conformance):
    value = probe(conformance, "emit({kind: k.probe('parallel_for_throw', 1000, kind) for kind in ['std', 'custom', 'torch']})")
    caught = {"std": "std::runtime_error", "custom": "ConformanceError", "torch": "c10::Error"}
    text = {"std": "std::runtime_error", "custom": "ConformanceError", "torch": "TORCH_CHECK"}
    for kind, result in value.items():
        assert result["num_threads"] == INTRA_OP_THREADS
        assert result["chunks"] > 1, f"parallel_for did not split the range: {result}"
        assert not result["thrower_is_caller"], f"the body threw on the calling thread: {result}"
        assert result["caught_as"] == caught[kind], result
        assert result["message"].startswith(f"conformance: {text[kind]} in parallel_for at 999"), result


def test_many_threads_throwing_at_once(conformance):
    value = probe(conformance, "emit(k.ops.concurrent_throws(8, 600))")
    assert value == 8 * 600


def test_uncaught_exceptions_counter_drifts_between_the_two_runtimes(conformance):
    """A known limitation (docs: glibc-compat "Remaining risks"), recorded so that a change is
    noticed: the extension's own std::uncaught_exceptions() goes up by one for every exception
    it throws that torch catches, and down by one for every torch exception it catches; an
    exception thrown and caught by the same runtime leaves it alone. Extension code must not
    rely on std::uncaught_exceptions()."""
    value = probe(
        conformance,
        """
        counts = [k.ops.uncaught_exceptions()]
        for _ in range(3):
            try:
                k.ops.throw_std("runtime_error", "x")
            except RuntimeError:
                pass
        counts.append(k.ops.uncaught_exceptions())
        caught = k.probe("catch_torch_error")["torch_exceptions_caught"]
        counts.append(k.ops.uncaught_exceptions())
        for _ in range(2):
            try:
                k.ops.check_positive(-1)  # TORCH_CHECK throws from libc10, torch catches
            except RuntimeError:
                pass
        counts.append(k.ops.uncaught_exceptions())
        emit({"counts": counts, "torch_caught": caught})
        """,
    )
    caught = value["torch_caught"]
    assert value["counts"] == [0, 3, 3 - caught, 3 - caught]


# ---------------------------------------------------------------------------------------------
# Threads


@pytest.mark.parametrize("pin,iters", [("", 50000), ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); ", 5000)],
                         ids=["all-cores", "one-core"])
def test_mutex_excludes_and_the_unlocked_control_overlaps(conformance, pin, iters):
    # One core and short runs: each thread would finish inside its time slice and the control
    # would never meet another thread (it failed so on a CI machine) unless it yields inside.
    value = probe(conformance, pin + f"emit(k.probe('mutex_probe', 8, {iters}))")
    assert value["locked_max_occupancy"] == 1
    assert value["locked_overlaps"] == 0
    assert value["locked_counter"] == value["expected"] == 8 * iters
    # The control proves the detector can see a missing lock.
    assert value["control_overlaps"] > 0 and value["control_max_occupancy"] > 1, value


def test_condition_variable_handoff(conformance):
    value = probe(conformance, "emit(k.probe('condvar_probe', 5000))")
    assert value == {"received": 5000, "sum": 5000 * 5001 // 2, "expected_sum": 5000 * 5001 // 2, "in_order": True}


def test_call_once_runs_once_and_publishes(conformance):
    value = probe(conformance, "emit(k.probe('call_once_probe', 8))")
    assert value == {"calls": 1, "saw_value": 8, "threads": 8}


def test_timed_waits(conformance):
    """Steady-clock timed waits: the prelude makes libstdc++ use pthread_cond_timedwait /
    pthread_mutex_timedlock / pthread_rwlock_timedrdlock (the shim forwards the last two)."""
    ms = 60
    value = probe(conformance, f"emit(k.probe('timed_wait_probe', {ms}))")
    requested = ms * 1000
    slack = 1000  # the system_clock-based fallback may wake up to 1 ms early by the steady clock
    generous = requested + 5_000_000  # a loaded CI machine
    assert value["cv_wait_for_result"] is False and requested <= value["cv_wait_for_us"] < generous
    assert value["cv_wait_until_result"] is False and requested <= value["cv_wait_until_us"] < generous
    assert value["cv_notified_result"] is True and value["cv_notified_us"] < 40 * requested
    assert value["timed_mutex_busy_result"] is False and requested - slack <= value["timed_mutex_busy_us"] < generous
    assert value["timed_mutex_free_result"] is True
    assert value["shared_mutex_busy_result"] is False and requested - slack <= value["shared_mutex_busy_us"] < generous
    assert value["shared_mutex_free_result"] is True
    assert requested <= value["sleep_for_us"] < generous


def test_async_future_and_thread_local(conformance):
    value = probe(conformance, "emit(k.probe('async_probe', 4))")
    assert value == {"future_exception": "from std::async", "thread_local_values": [1000, 1001, 1002, 1003], "main_thread_local": 0, "promise": "promised"}


# ---------------------------------------------------------------------------------------------
# Streams, random_device, regex, to_chars


def test_ostringstream_formatting(conformance):
    value = probe(conformance, "emit(k.probe('format_probe'))")
    assert value["formatted"] == "int=42 neg=-7 big=1234567890123 dbl=3.5 pi=3.141592654 sci=1.235e+04 fixed=0.67 hex=0xff w=[****42] bool=true"
    assert value["many_length"] == len("".join(f"{i * 0.25:g}," for i in range(1000)))
    assert value["to_string"] == "-12,0.500000"


def test_istringstream_parsing(conformance):
    result = run_probe("emit(k.probe('istringstream_probe'))", conformance, check=False)
    if result.returncode != 0:
        pytest.fail(f"probe exited with {result.returncode}\n{result.stdout}\n{result.stderr}")
    line = [line for line in result.stdout.splitlines() if line.startswith(RESULT_MARK)][0]
    value = json.loads(line[len(RESULT_MARK):])
    assert value == {"lvalue": "17|2.5|word|-300|ok", "rvalue": "17|2.5|word|-300|ok"}


def test_file_round_trip(conformance, tmp_path):
    path = tmp_path / "roundtrip.txt"
    value = probe(conformance, f"emit(k.probe('file_roundtrip', {str(path)!r}, 200))")
    expected = "".join(f"line {i}: {i * i} {'%.17g' % (i / 7.0)}\n" for i in range(200))
    assert path.read_text() == expected
    assert value == {"write_ok": True, "read": 200, "exact": 200, "bytes": len(expected)}


def test_streams_and_random_device_cold_from_parallel_workers(conformance, tmp_path):
    """The first use of iostreams, locale facets and random_device in the process happens on
    torch's intra-op worker threads, all at once."""
    value = probe(conformance, f"emit(k.probe('parallel_streams', {str(tmp_path)!r}, 256))")
    assert value["failures"] == []
    assert value["ok"] == value["tasks"] == 256
    assert value["threads"] == INTRA_OP_THREADS
    assert value["distinct_random"] > 200
    assert len(list(tmp_path.glob("task-*.txt"))) == 256


def test_cout_and_cerr_reach_the_process_streams(conformance):
    """The extension's own std::cout/std::cerr/std::clog (separate objects from torch's) write
    through C stdio, also while its uncaught_exceptions() count is off (see the drift test)."""
    result = run_probe(
        """
        try:
            k.ops.throw_std("runtime_error", "x")
        except RuntimeError:
            pass
        k.ops.print_streams("conformance hello")
        emit(k.ops.uncaught_exceptions())
        """,
        conformance,
    )
    assert result.value == 1
    assert "cout: conformance hello\n" in result.stdout
    assert "cerr: conformance hello\n" in result.stderr
    assert "clog: conformance hello\n" in result.stderr


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def test_random_device_tokens(conformance):
    value = probe(conformance, "emit(k.probe('random_device_probe', 16))")
    print("random_device tokens:", {token: result["ok"] for token, result in value.items()})
    for token in ("default", "/dev/urandom", "getentropy"):
        assert value[token]["ok"], (token, value[token])
    # arc4random goes through the shim's reimplementation (glibc 2.27 has none).
    assert value["arc4random"]["ok"] or "unsupported token" in value["arc4random"]["error"], value["arc4random"]
    if platform.machine() == "x86_64":
        flags = cpu_flags()
        for token in ("rdrand", "rdseed"):
            if token in flags:
                assert value[token]["ok"], (token, value[token])
    for token, result in value.items():
        if result["ok"]:
            assert result["distinct"] > 1, f"{token}: 16 draws, all equal"
    assert not value["no-such-token"]["ok"] and "unsupported token" in value["no-such-token"]["error"]


def test_regex(conformance):
    value = probe(conformance, "emit(k.probe('regex_probe'))")
    assert value == {
        "matched": True,
        "groups": ["key", "42", "Value", "7"],
        "replaced": "a<1>b<22>c<333>d",
        "icase": True,
        "posix_class": True,
        "collate": True,
        "split": ["one", "two", "three", "four"],
        "bad_pattern": "error_paren",
    }


def to_chars_values() -> list[float]:
    rng = random.Random(20261122)
    values = [0.0, -0.0, 0.1, 1.0, -1.5, 1e16, 1e22, 1e23, 123456789012345680.0, 2**53 + 0.0, 1 / 3, 2 / 3, 5e-324, 2.2250738585072014e-308,
              1.7976931348623157e308, 9007199254740993.0, 0.30000000000000004, 100.0, 1e-7, 123.456, math.pi, math.e]
    values += [rng.uniform(-1e6, 1e6) for _ in range(200)]
    while len(values) < 600:  # arbitrary bit patterns: every exponent range, subnormals included
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(value):
            values.append(value)
    return values + [math.inf, -math.inf, math.nan]


def test_to_chars_is_shortest_round_trip_like_python_repr(conformance):
    values = to_chars_values()
    value = probe(conformance, f"emit([k.ops.info(), k.ops.to_chars_probe(json.loads({json.dumps(values)!r}))])")
    info, text = json.loads(value[0]), value[1].split(" ")
    import torch

    major, minor = (int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    assert info["cplusplus"] >= (202002 if (major, minor) >= (2, 12) else 201703), info
    assert len(text) == len(values)
    for number, pair in zip(values, text):
        plain, scientific = pair.split("|")
        if not math.isfinite(number):
            assert plain == scientific == repr(number)
            continue
        # The scientific form has the digits of the shortest round trip, as Python's repr: the
        # two are the same decimal number.
        assert Decimal(scientific) == Decimal(repr(number)), (repr(number), scientific)
        # The unformatted one is the shorter of fixed and scientific, and round-trips too.
        assert float(plain) == number and len(plain) <= len(scientific), (repr(number), plain, scientific)
        assert plain.startswith("-") == scientific.startswith("-") == (math.copysign(1.0, number) < 0), (repr(number), pair)


# ---------------------------------------------------------------------------------------------
# Per-library state


def test_counters_count(conformance):
    value = probe(conformance, "emit([k.ops.bump() for _ in range(3)])")
    assert value == [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]


def test_twin_kernels_keep_separate_state(conformance, twin):
    """Same C++ symbols (a global, a function-local static, a class static, a template static)
    in two extensions of one process: each must count on its own."""
    value = run_probe(
        """
        a, b = k, k2
        first = [a.ops.bump() for _ in range(3)]
        second = [b.ops.bump() for _ in range(5)]
        again = a.ops.bump()
        emit({
            "a": [list(x) for x in first] + [list(again)],
            "b": [list(x) for x in second],
            "names": [a.ops.name, b.ops.name],
            "namespaces": [hasattr(torch.ops, a.ops.name), hasattr(torch.ops, b.ops.name)],
            "modules": [a.__name__, b.__name__],
        })
        """,
        conformance,
        twin,
    ).value
    assert value["a"] == [[1] * 4, [2] * 4, [3] * 4, [4] * 4]
    assert value["b"] == [[n] * 4 for n in range(1, 6)]
    a_name, b_name = value["names"]
    assert a_name.startswith("_conformance_") and b_name.startswith("_conformance_twin_") and a_name != b_name
    assert value["namespaces"] == [True, True]
    assert value["modules"][0] != value["modules"][1]
    assert unique_symbols(twin.library) == []


def test_fill_cpu(conformance):
    if conformance.backend != "cpu":
        pytest.skip("the CUDA variant's fill_ is checked by test_cuda_variant")
    value = probe(
        conformance,
        """
        x = torch.zeros(100_000)
        k.fill_(x, 2.5)
        try:
            k.fill_(torch.zeros(4, dtype=torch.float64), 1.0)
            error = ""
        except RuntimeError as e:
            error = str(e)
        emit([bool((x == 2.5).all()), error])
        """,
    )
    assert value[0] is True
    assert value[1].startswith("conformance.fill_: expected a float32 tensor, got Double")


# ---------------------------------------------------------------------------------------------
# CUDA


@pytest.mark.gpu
def test_cuda_variant(conformance):
    """The CUDA variant (built for the running CUDA torch): a CUDA kernel, errors from
    nvcc-compiled code, and the host probes again with a CUDA context in the process."""
    assert conformance.backend == "cuda", conformance.variant
    value = probe(
        conformance,
        """
        out = {"info": json.loads(k.ops.info())}
        x = torch.zeros(1 << 20, device="cuda")
        k.fill_(x, 1.5)
        torch.cuda.synchronize()
        out["filled"] = bool((x == 1.5).all().item())
        try:
            k.fill_(torch.zeros(4, device="cuda", dtype=torch.float64), 1.0)
            out["dtype_error"] = ""
        except RuntimeError as e:
            out["dtype_error"] = str(e)
        out["bad_launch_inside"] = k.ops.cuda_bad_launch(True)
        try:
            k.ops.cuda_bad_launch(False)
            out["bad_launch_escapes"] = ["no exception", ""]
        except RuntimeError as e:
            out["bad_launch_escapes"] = [type(e).__name__, str(e)]
        y = torch.zeros(1000, device="cuda")
        k.fill_(y, -2.0)
        out["fill_after_error"] = bool((y == -2.0).all().item())
        try:
            k.ops.check_positive(-1)
        except RuntimeError as e:
            out["torch_check"] = str(e)
        out["torch_error"] = k.probe("catch_torch_error")["c10_msg"]
        out["parallel_for"] = k.probe("parallel_for_throw", 1000, "std")
        out["throws"] = k.ops.concurrent_throws(8, 300)
        out["mutex"] = k.probe("mutex_probe", 8, 50000)
        out["timed"] = k.probe("timed_wait_probe", 30)
        out["random"] = k.probe("random_device_probe", 16)["default"]
        out["format"] = k.probe("format_probe")["formatted"]
        emit(out)
        """,
    )
    assert value["info"]["backend"] == "cuda"
    assert value["filled"] is True
    assert value["dtype_error"].startswith("conformance.fill_: expected a float32 tensor, got Double")
    # The launch error's wording depends on the CUDA runtime: CUDA 13 reports an impossible block
    # size as cudaErrorInvalidValue ("invalid argument"), older runtimes as
    # cudaErrorInvalidConfiguration ("invalid configuration argument").
    launch_error = re.compile(r"CUDA error: invalid (configuration )?argument")
    assert launch_error.search(value["bad_launch_inside"]), value["bad_launch_inside"]
    # Caught by `except RuntimeError`; torch >= 2.11 raises its subclass AcceleratorError.
    assert value["bad_launch_escapes"][0] in ("RuntimeError", "AcceleratorError") and launch_error.search(value["bad_launch_escapes"][1]), value["bad_launch_escapes"]
    assert value["fill_after_error"] is True
    assert value["torch_check"].startswith("conformance.check_positive: x must be positive, got -1")
    assert value["torch_error"] == "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"
    assert value["parallel_for"]["caught_as"] == "std::runtime_error" and not value["parallel_for"]["thrower_is_caller"]
    assert value["throws"] == 8 * 300
    assert value["mutex"]["locked_max_occupancy"] == 1 and value["mutex"]["locked_counter"] == 8 * 50000
    assert value["mutex"]["control_overlaps"] > 0
    assert value["timed"]["cv_wait_for_result"] is False and value["timed"]["cv_wait_for_us"] >= 30_000
    assert value["timed"]["timed_mutex_busy_result"] is False and value["timed"]["timed_mutex_free_result"] is True
    assert value["random"]["ok"] and value["random"]["distinct"] > 1
    assert value["format"].startswith("int=42 neg=-7")
