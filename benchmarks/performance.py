#!/usr/bin/env python3
"""How long authors wait for kernel-builder, against the tools underneath (issue 13).

    python benchmarks/performance.py [--only P1,P3] [--runs 3] [--out performance-results]

Measures (A/B runs interleaved; medians over --runs; ratios A/B):

  P1  cold `kernel-builder build --host` / raw `cmake` (configure, build, install) of the same
      generated tree (create-pyproject), relu (2 TUs) and a generated 6-TU CPU kernel
  P2  cold `kernel-builder build --host` / torch.utils.cpp_extension.load of the same sources
      with the same compile flags (its own link: dynamic libstdc++)
  P3  no-op `kernel-builder build` (nothing changed) and ninja's own no-op
  P4  rebuild after: touching one TU (mtime only); editing one TU in git (after the first
      edit); editing one TU outside git (the id changes) -- against compiling that TU alone
      (its exact command from `ninja -t commands`)
  P5  cold build of a fresh copy (same path, and another path) with a warm compiler cache
      (ccache or sccache on PATH, a private cache) / without a cache; with the cache's hits
  P6  size of the module against cpp_extension's; peak memory (largest process, from
      wait4's rusage) of the cold builds; the matrix build of N variants against N builds one
      after another (benchmarks/matrix.py, needs the toolchains); on a machine with a CUDA
      GPU (torch.cuda.is_available()): the runtime of relu on a large tensor built by
      kernel-builder against the same source built by cpp_extension (CUDA events, medians),
      and its bandwidth against the device's measured device-to-device copy bandwidth

Sub-measures can be chosen alone: P6.size, P6.memory, P6.matrix, P6.gpu. Compiler caches are
switched off (empty CMAKE_<LANG>_COMPILER_LAUNCHER) everywhere but in P5. Every side uses the
same number of compile jobs (--jobs, default: the CPUs this process may use). Results go to
<out>/performance.json and <out>/performance.md. Standard library + kernel-builder only; the
GPU part also runs offline (kernel-builder build --host; cpp_extension needs no network).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NO_LAUNCHER = "-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER= -DCMAKE_CUDA_COMPILER_LAUNCHER="
MEASURES = ("P1", "P2", "P3", "P4", "P5", "P6.size", "P6.memory", "P6.matrix", "P6.gpu")

# ---------------------------------------------------------------------------------------------
# The kernels


SIX_BUILD_TOML = """\
[general]
name = "six"
version = 1
edition = 5
license = "Apache-2.0"
backends = ["cpu"]

[torch]
src = ["torch-ext/torch_binding.cpp", "torch-ext/torch_binding.h"]

[kernel.six_cpu]
backend = "cpu"
depends = ["torch"]
src = ["six_cpu/op1.cpp", "six_cpu/op2.cpp", "six_cpu/op3.cpp", "six_cpu/op4.cpp", "six_cpu/op5.cpp"]
"""

SIX_OP = """\
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "../torch-ext/torch_binding.h"

// out = input * {k} + {k}, elementwise (one translation unit of the six-TU benchmark kernel).
void op{k}(at::Tensor &out, const at::Tensor &input) {{
  TORCH_CHECK(out.sizes() == input.sizes() && out.is_contiguous() && input.is_contiguous(), "op{k}: contiguous, same shape");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "op{k}", [&] {{
    scalar_t *dst = out.data_ptr<scalar_t>();
    const scalar_t *src = input.const_data_ptr<scalar_t>();
    at::parallel_for(0, input.numel(), 1 << 14, [&](int64_t begin, int64_t end) {{
      for (int64_t i = begin; i < end; ++i) dst[i] = src[i] * scalar_t({k}) + scalar_t({k});
    }});
  }});
}}
"""

SIX_HEADER = "#pragma once\n#include <ATen/core/Tensor.h>\n" + "".join(f"void op{k}(at::Tensor &out, const at::Tensor &input);\n" for k in range(1, 6))

SIX_BINDING = """\
#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, m) {
""" + "".join(f'  m.def("op{k}(Tensor! out, Tensor input) -> ()");\n  m.impl("op{k}", c10::DispatchKey::CPU, &op{k});\n' for k in range(1, 6)) + """\
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
"""

SIX_INIT = "from ._ops import ops\n\n__all__ = [\"ops\"]\n"


def write_six(folder: Path) -> Path:
    """The six-TU CPU kernel: a binding and five kernel sources, each including ATen."""
    files = {"build.toml": SIX_BUILD_TOML, "torch-ext/torch_binding.cpp": SIX_BINDING, "torch-ext/torch_binding.h": SIX_HEADER,
             "torch-ext/six/__init__.py": SIX_INIT, **{f"six_cpu/op{k}.cpp": SIX_OP.format(k=k) for k in range(1, 6)}}
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


@dataclass(frozen=True)
class Kernel:
    name: str
    module: str
    sources: tuple[str, ...]  # compiled, CPU
    edit_tu: str  # the kernel source P4 edits

    def copy_to(self, parent: Path) -> Path:
        target = parent / self.name
        if self.name == "relu":
            shutil.copytree(REPO / "examples" / "relu", target, ignore=shutil.ignore_patterns("build", "__pycache__", ".kernel-builder-generated.json"))
        else:
            write_six(target)
        return target


KERNELS = {
    "relu": Kernel("relu", "relu", ("torch-ext/torch_binding.cpp", "relu_cpu/relu_cpu.cpp"), "relu_cpu/relu_cpu.cpp"),
    "six": Kernel("six", "six", ("torch-ext/torch_binding.cpp", *(f"six_cpu/op{k}.cpp" for k in range(1, 6))), "six_cpu/op3.cpp"),
}

# ---------------------------------------------------------------------------------------------
# Running and timing


@dataclass
class Run:
    seconds: float
    max_rss_mb: float  # the largest process of the tree (wait4's rusage)
    output: str


def launcher_on(path: str) -> str | None:
    """The compiler cache kernel-builder picks with this PATH (backends/local.py)."""
    from kernel_builder.backends.local import COMPILER_LAUNCHERS

    return next((name for name in COMPILER_LAUNCHERS if shutil.which(name, path=path)), None)


def run(cmd: list, *, env: dict | None = None, cwd: Path | None = None, check: bool = True) -> Run:
    """Run `cmd`, timing it; the peak resident memory of its largest (reaped) process."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    if check and process.returncode != 0:
        sys.exit(f"failed ({process.returncode}): {shlex.join(map(str, cmd))}\n{text[-4000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, text)


def kb(*args: object, env: dict, cwd: Path | None = None) -> Run:
    return run([sys.executable, "-m", "kernel_builder", *args], env=env, cwd=cwd)


@dataclass
class Context:
    work: Path
    runs: int
    jobs: int
    env: dict  # no compiler cache
    results: dict = field(default_factory=dict)
    table: list = field(default_factory=list)  # markdown rows

    def fresh(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.work))

    def build(self, kernel: Path, *extra: str, env: dict | None = None) -> Run:
        """`kernel-builder build --host -v` (the stage times are read from its debug lines)."""
        return kb("build", "--host", kernel, "--cores", self.jobs, "-v", *extra, env=env or self.env)

    def row(self, measure: str, what: str, kernel: str, value: str, goal: str = "") -> None:
        self.table.append((measure, what, kernel, value, goal))
        print(f"  {measure:4} {kernel:5} {what}: {value}" + (f"   (goal {goal})" if goal else ""), flush=True)


def stages(output: str) -> dict[str, float]:
    """Seconds per stage of one variant's build, from `-v` (configure, compile, install, checks, import)."""
    found = {m[1]: float(m[2]) for m in re.finditer(r"^debug: \S+: (\w[\w ]*?) took ([\d.]+) s$", output, re.M)}
    total = re.search(r" in ([\d.]+) s\.?$", output, re.M)
    if total:
        found["total (as reported)"] = float(total[1])
    return found


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def host_variant() -> str:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    backend = f"cu{torch.version.cuda.replace('.', '')}" if torch.version.cuda else "cpu"
    return f"torch{major}{minor}-cxx11-{backend}-{platform.machine()}-linux"


def variant_dir(kernel: Path) -> Path:
    return kernel / "build" / host_variant()


def cmake_folder(kernel: Path) -> Path:
    return kernel / "build" / ".kernel-builder" / "work" / host_variant() / "cmake-build"


def compiled_units(kernel: Path, since: float = 0.0) -> list[str]:
    """What ninja compiled in the last build that ran (none if no build ran after `since`)."""
    log = kernel / "build" / ".kernel-builder" / "logs" / f"{host_variant()}.log"
    if not log.is_file() or log.stat().st_mtime < since:
        return []
    return re.findall(r"Building (?:C|CXX|CUDA) object (\S+)", log.read_text())

# ---------------------------------------------------------------------------------------------
# P1: kernel-builder against raw CMake on the same generated tree


def raw_cmake(ctx: Context, kernel: Path, tree: Path) -> Run:
    """Configure, build and install the generated tree the way its header says."""
    build, prefix = tree.parent / "raw-build", tree.parent / "raw-install"
    start = time.monotonic()
    peak = 0.0
    for cmd in (["cmake", "-S", tree, "-B", build, "-G", "Ninja", f"-DPython3_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_TYPE=Release"],
                ["cmake", "--build", build, "-j", ctx.jobs],
                ["cmake", "--install", build, "--prefix", prefix]):
        peak = max(peak, run(cmd, env=ctx.env).max_rss_mb)
    return Run(time.monotonic() - start, peak, "")


def p1(ctx: Context, kernel: Kernel) -> None:
    a, b = [], []
    for _ in range(ctx.runs):
        side_a = kernel.copy_to(ctx.fresh("p1a"))
        run_a = ctx.build(side_a)
        a.append(run_a.seconds)
        side_b = kernel.copy_to(ctx.fresh("p1b"))
        tree = side_b.parent / "tree"
        kb("create-pyproject", side_b, tree, env=ctx.env)
        b.append(raw_cmake(ctx, side_b, tree).seconds)
        print(f"    P1 {kernel.name}: kernel-builder {a[-1]:.1f} s, raw cmake {b[-1]:.1f} s", flush=True)
    split = stages(run_a.output)
    ctx.results.setdefault("P1", {})[kernel.name] = {"kernel-builder": a, "raw-cmake": b, "ratio": med(a) / med(b), "stages": split}
    ctx.row("P1", "cold build / raw cmake of the same tree", kernel.name, f"{med(a) / med(b):.2f} ({med(a):.1f} s vs {med(b):.1f} s; +{med(a) - med(b):.1f} s)", "≤ 1.05 and ≤ 1 s")
    ctx.row("P1", "where a cold build's time goes (last run)", kernel.name, ", ".join(f"{k} {v:.2f} s" for k, v in split.items()))

# ---------------------------------------------------------------------------------------------
# P2: kernel-builder against torch.utils.cpp_extension


CPP_EXTENSION = """
import sys, json, torch
from torch.utils import cpp_extension
args = json.loads(sys.argv[1])
path = cpp_extension.load(name=args["name"], sources=args["sources"], extra_cflags=args["cflags"], extra_cuda_cflags=args.get("cuda_cflags"),
                          extra_include_paths=args["includes"], build_directory=args["build"], is_python_module=False, verbose=False)
"""


def our_cxx_flags() -> list[str]:
    """The compile flags kernel-builder's CMake gives a C++ TU (besides includes, maps and the prelude)."""
    import torch

    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    std = "c++20" if (major, minor) >= (2, 12) else "c++17"
    return ["-O3", "-DNDEBUG", f"-std={std}", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fno-gnu-unique", "-DPy_LIMITED_API=0x03090000"]


def cpp_extension_build(ctx: Context, kernel_dir: Path, kernel: Kernel, folder: Path, *, cuda: dict | None = None) -> tuple[Run, Path]:
    """Build the kernel's sources with cpp_extension.load in a fresh interpreter; (run, module)."""
    includes = folder / "include"
    includes.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "templates" / "registration.h", includes / "registration.h")
    name = f"{kernel.module}_cppext"
    build = folder / "build"
    build.mkdir(parents=True, exist_ok=True)
    args = {"name": name, "build": str(build), "includes": [str(includes)],
            "sources": [str(kernel_dir / s) for s in (cuda or {}).get("sources", kernel.sources)],
            "cflags": our_cxx_flags() + [f"-D{(cuda or {}).get('backend', 'CPU')}_KERNEL"], "cuda_cflags": (cuda or {}).get("cuda_cflags")}
    env = dict(ctx.env, MAX_JOBS=str(ctx.jobs))
    result = run([sys.executable, "-c", CPP_EXTENSION, json.dumps(args)], env=env)
    return result, build / f"{name}.so"


def p2(ctx: Context, kernel: Kernel) -> None:
    a, b, sizes = [], [], {}
    for _ in range(ctx.runs):
        side_a = kernel.copy_to(ctx.fresh("p2a"))
        run_a = ctx.build(side_a)
        a.append(run_a.seconds)
        folder = ctx.fresh("p2b")
        side_b = kernel.copy_to(folder)
        run_b, module = cpp_extension_build(ctx, side_b, kernel, folder)
        b.append(run_b.seconds)
        sizes = {"kernel-builder": next(variant_dir(side_a).glob("*.so")).stat().st_size, "cpp_extension": module.stat().st_size}
        ctx.results.setdefault("P6.memory", {}).setdefault(kernel.name, {"kernel-builder": [], "cpp_extension": []})
        ctx.results["P6.memory"][kernel.name]["kernel-builder"].append(run_a.max_rss_mb)
        ctx.results["P6.memory"][kernel.name]["cpp_extension"].append(run_b.max_rss_mb)
        print(f"    P2 {kernel.name}: kernel-builder {a[-1]:.1f} s, cpp_extension {b[-1]:.1f} s", flush=True)
    ctx.results.setdefault("P2", {})[kernel.name] = {"kernel-builder": a, "cpp_extension": b, "ratio": med(a) / med(b), "so-bytes": sizes}
    ctx.row("P2", "cold build / cpp_extension (same sources, flags)", kernel.name, f"{med(a) / med(b):.2f} ({med(a):.1f} s vs {med(b):.1f} s)", "≤ 0.9")

# ---------------------------------------------------------------------------------------------
# P3: no-op


def p3(ctx: Context, kernel: Kernel) -> None:
    folder = kernel.copy_to(ctx.fresh("p3"))
    ctx.build(folder)
    ours = [ctx.build(folder).seconds for _ in range(max(ctx.runs, 5))]
    ninja = [run(["cmake", "--build", cmake_folder(folder)], env=ctx.env).seconds for _ in range(max(ctx.runs, 5))]
    ctx.results.setdefault("P3", {})[kernel.name] = {"kernel-builder": ours, "cmake --build": ninja}
    ctx.row("P3", "no-op build", kernel.name, f"{med(ours):.2f} s (`cmake --build` alone: {med(ninja):.2f} s)", "≤ 0.5 s")

# ---------------------------------------------------------------------------------------------
# P4: edits


def alone(ctx: Context, kernel_dir: Path, source: str) -> float:
    """Compiling `source` by itself: its exact command, from ninja, in the build folder."""
    folder = cmake_folder(kernel_dir)
    target = next(p for p in re.findall(r"^build (\S+\.o):", (folder / "build.ninja").read_text(), re.M) if p.endswith(source + ".o"))
    command = run(["ninja", "-C", folder, "-t", "commands", target], env=ctx.env).output.strip().splitlines()[-1]
    return run(["sh", "-c", command], env=ctx.env, cwd=folder).seconds


def edit(path: Path, n: int) -> None:
    """A content change (the compile inputs differ; no compiler cache is in use here)."""
    path.write_text(path.read_text() + f"\n// benchmark edit {n}\n")


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false", *args], cwd=folder, check=True, capture_output=True)


def p4(ctx: Context, kernel: Kernel) -> None:
    rows: dict[str, dict] = {}
    # touch: content unchanged, so the stamp says the variant is up to date.
    folder = kernel.copy_to(ctx.fresh("p4t"))
    ctx.build(folder)
    touched, units = [], []
    for _ in range(ctx.runs):
        os.utime(folder / kernel.edit_tu)
        since = time.time()
        touched.append(ctx.build(folder).seconds)
        units = compiled_units(folder, since)
    rows["touch"] = {"rebuild": touched, "units": units}
    for where in ("in git", "outside git"):
        folder = kernel.copy_to(ctx.fresh("p4g" if where == "in git" else "p4o"))
        if where == "in git":
            git(folder, "init", "-q")
            git(folder, "add", ".")
            git(folder, "commit", "-q", "-m", "bench")
        ctx.build(folder)
        edit(folder / kernel.edit_tu, 0)
        ctx.build(folder)  # in git: the first edit after the commit adds _dirty to the id
        rebuilds, singles, units, split = [], [], [], {}
        for n in range(1, ctx.runs + 1):
            edit(folder / kernel.edit_tu, n)
            rebuild = ctx.build(folder)
            rebuilds.append(rebuild.seconds)
            split = stages(rebuild.output)
            units = compiled_units(folder)
            singles.append(alone(ctx, folder, kernel.edit_tu))
        rows[where] = {"rebuild": rebuilds, "tu-alone": singles, "units": units, "stages": split}
    ctx.results.setdefault("P4", {})[kernel.name] = rows
    ctx.row("P4", "touch one TU → rebuild", kernel.name, f"{med(rows['touch']['rebuild']):.2f} s, compiles {len(rows['touch']['units'])} TU (up to date: content unchanged)")
    for where in ("in git", "outside git"):
        r = rows[where]
        names = ", ".join(Path(u).name.removesuffix(".o") for u in r["units"])
        ctx.row("P4", f"edit one TU {where} → rebuild / that TU alone", kernel.name,
                f"{med(r['rebuild']) / med(r['tu-alone']):.2f} ({med(r['rebuild']):.1f} s vs {med(r['tu-alone']):.1f} s; +{med(r['rebuild']) - med(r['tu-alone']):.1f} s; compiles {names})",
                "≤ that TU + 1 s")
        ctx.row("P4", f"where the rebuild's time goes ({where}, last run)", kernel.name, ", ".join(f"{k} {v:.2f} s" for k, v in r["stages"].items()))

# ---------------------------------------------------------------------------------------------
# P5: compiler cache


def p5(ctx: Context, kernel: Kernel) -> None:
    launcher = launcher_on(ctx.env["PATH"])
    if launcher is None:
        ctx.row("P5", "fresh copy, warm compiler cache", kernel.name, "no ccache/sccache on PATH: not measured")
        return
    cache = ctx.fresh("p5cache")
    env = {k: v for k, v in ctx.env.items() if not k.startswith(("CCACHE_", "SCCACHE_")) and k != "CMAKE_ARGS"}
    (cache / "ccache.conf").write_text("")
    env.update(CCACHE_DIR=str(cache / "ccache"), CCACHE_CONFIGPATH=str(cache / "ccache.conf"),
               SCCACHE_DIR=str(cache / "sccache"), SCCACHE_SERVER_PORT="4391", SCCACHE_IDLE_TIMEOUT="0")

    def stats() -> dict:
        if launcher == "ccache":
            text = run(["ccache", "--print-stats"], env=env).output
            values = {k: int(v) for k, v in re.findall(r"^(\w+)\t(\d+)$", text, re.M)}
            return {"hits": values.get("direct_cache_hit", 0) + values.get("preprocessed_cache_hit", 0), "misses": values.get("cache_miss", 0)}
        text = run(["sccache", "--show-stats", "--stats-format", "json"], env=env).output
        data = json.loads(text[text.index("{"):])["stats"]
        count = lambda key: sum(data.get(key, {}).get("counts", {}).values()) if isinstance(data.get(key), dict) else 0
        return {"hits": count("cache_hits"), "misses": count("cache_misses")}

    def zero() -> None:
        run([launcher, "--zero-stats"], env=env)

    try:
        warm = kernel.copy_to(ctx.fresh("p5warm"))
        zero()
        ctx.build(warm, env=env)
        rows: dict[str, dict] = {}
        for where in ("same path", "another path"):
            cached, cold, hits = [], [], []
            for _ in range(ctx.runs):
                if where == "same path":
                    shutil.rmtree(warm)  # a fresh copy where the first one was
                    folder = kernel.copy_to(warm.parent)
                else:
                    folder = kernel.copy_to(ctx.fresh("p5other") / "deeper")
                zero()
                cached.append(ctx.build(folder, env=env).seconds)
                hits.append(stats())
                plain = kernel.copy_to(ctx.fresh("p5cold"))
                cold.append(ctx.build(plain).seconds)
            rows[where] = {"warm-cache": cached, "no-cache": cold, "stats": hits}
            ratio = med(cached) / med(cold)
            ctx.row("P5", f"fresh copy at {where}: warm {launcher} / no cache", kernel.name,
                    f"{ratio:.2f} ({med(cached):.1f} s vs {med(cold):.1f} s; hits {hits[-1]['hits']}, misses {hits[-1]['misses']})", "≤ 0.2")
        ctx.results.setdefault("P5", {})[kernel.name] = {"launcher": launcher, **rows}
    finally:
        if launcher == "sccache":
            run(["sccache", "--stop-server"], env=env, check=False)

# ---------------------------------------------------------------------------------------------
# P6: size, memory, matrix, GPU runtime


def p6_size(ctx: Context, kernel: Kernel) -> None:
    sizes = ctx.results.get("P2", {}).get(kernel.name, {}).get("so-bytes")
    if not sizes:
        folder = kernel.copy_to(ctx.fresh("p6s"))
        ctx.build(folder)
        side = ctx.fresh("p6c")
        _, module = cpp_extension_build(ctx, kernel.copy_to(side), kernel, side)
        sizes = {"kernel-builder": next(variant_dir(folder).glob("*.so")).stat().st_size, "cpp_extension": module.stat().st_size}
    ctx.results.setdefault("P6.size", {})[kernel.name] = sizes
    ctx.row("P6", ".so size: kernel-builder / cpp_extension", kernel.name,
            f"{sizes['kernel-builder'] / 1e6:.2f} MB vs {sizes['cpp_extension'] / 1e6:.3f} MB (static libstdc++, see docs/portability.md)")


def p6_memory(ctx: Context, kernel: Kernel) -> None:
    memory = ctx.results.get("P6.memory", {}).get(kernel.name)
    if not memory:
        memory = {"kernel-builder": [ctx.build(kernel.copy_to(ctx.fresh("p6m"))).max_rss_mb]}
        side = ctx.fresh("p6mc")
        memory["cpp_extension"] = [cpp_extension_build(ctx, kernel.copy_to(side), kernel, side)[0].max_rss_mb]
        ctx.results.setdefault("P6.memory", {})[kernel.name] = memory
    ctx.row("P6", "peak memory of a cold build (largest process)", kernel.name,
            f"{max(memory['kernel-builder']):.0f} MB vs cpp_extension {max(memory['cpp_extension']):.0f} MB")


def p6_matrix(ctx: Context) -> None:
    result = run([sys.executable, str(REPO / "benchmarks" / "matrix.py"), "--runs", str(ctx.runs)], env=dict(os.environ), check=False)
    match = re.search(r"median matrix build: ([\d.]+) s; median one after another: ([\d.]+) s; ratio matrix / by hand = ([\d.]+)", result.output)
    variants = re.search(r"^\S+: (\d+) variants", result.output, re.M)
    if match is None:
        tail = result.output.strip().splitlines()[-1:] or ["no output"]
        ctx.row("P6", "matrix build / one after another", "relu", f"not measured: {tail[0][:160]}")
        return
    ctx.results["P6.matrix"] = {"matrix": float(match[1]), "one-after-another": float(match[2]), "ratio": float(match[3]), "variants": int(variants[1]) if variants else None}
    ctx.row("P6", f"matrix build of {variants[1] if variants else 'N'} variants / one after another", "relu", f"{match[3]} ({match[1]} s vs {match[2]} s)")


GPU_RUN = r"""
import json, statistics, sys
from pathlib import Path
import torch

import kernels

kernel_dir, theirs, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
reps, rounds = int(sys.argv[4]), int(sys.argv[5])
ours = kernels.get_local_kernel(kernel_dir)  # the variant of this torch: the CUDA one
torch.ops.load_library(theirs)
cpp = getattr(torch.ops, name).relu

n = 1 << 28  # 256 Mi floats: 1 GiB in, 1 GiB out
x = torch.randn(n, device="cuda")
out = torch.empty_like(x)
assert torch.equal(ours.relu(x, out), torch.relu(x))
cpp(out, x); assert torch.equal(out, torch.relu(x))

def timed(fn):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn(); torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start.record(); fn(); end.record(); end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times

sides = {"kernel-builder": lambda: ours.relu(x, out), "cpp_extension": lambda: cpp(out, x), "copy": lambda: out.copy_(x)}
samples = {k: [] for k in sides}
for _ in range(rounds):  # interleaved
    for key, fn in sides.items():
        samples[key] += timed(fn)
medians = {k: statistics.median(v) for k, v in samples.items()}
moved = 2 * n * x.element_size()
print(json.dumps({"device": torch.cuda.get_device_name(), "bytes-moved": moved, "median-seconds": medians,
                  "ratio": medians["kernel-builder"] / medians["cpp_extension"],
                  "bandwidth-GBps": {k: moved / v / 1e9 for k, v in medians.items()}}))
"""


def p6_gpu(ctx: Context) -> None:
    try:
        import torch

        available = torch.cuda.is_available()
    except Exception:  # a CUDA torch without its runtime libraries
        available = False
    if not available:
        ctx.row("P6", "GPU runtime: kernel-builder / cpp_extension (relu, 1 GiB)", "relu", "no CUDA GPU here: run on a GPU machine")
        return
    major, minor = torch.cuda.get_device_capability()
    arch = f"{major}.{minor}"
    env = {k: v for k, v in ctx.env.items() if k != "KERNEL_BUILDER_CUDA_ARCHS"}
    folder = KERNELS["relu"].copy_to(ctx.fresh("p6gpu"))
    kb("build", "--host", folder, "--cuda-archs", arch, "--cores", ctx.jobs, "--quiet", env=env)
    side = ctx.fresh("p6gpuc")
    relu = KERNELS["relu"].copy_to(side)
    cap = f"{major}{minor}"
    cuda = {"backend": "CUDA", "sources": ("torch-ext/torch_binding.cpp", "relu_cuda/relu.cu"),
            "cuda_cflags": ["-O3", "-DNDEBUG", "--expt-relaxed-constexpr", "--expt-extended-lambda", "-DCUDA_KERNEL", "-DUSE_CUDA=1",
                            f"-gencode=arch=compute_{cap},code=sm_{cap}", "-Xfatbin=-compress-all"]}
    _, module = cpp_extension_build(ctx, relu, KERNELS["relu"], side, cuda=cuda)
    result = run([sys.executable, "-c", GPU_RUN, folder, module, "relu_cppext", "50", str(max(ctx.runs, 5))], env=env)
    data = json.loads(result.output.strip().splitlines()[-1])
    ctx.results["P6.gpu"] = data
    bw = data["bandwidth-GBps"]
    ctx.row("P6", f"GPU runtime of relu on 1 GiB ({data['device']}): kernel-builder / cpp_extension", "relu", f"{data['ratio']:.3f}", "1.00 ± 0.02")
    ctx.row("P6", "achieved bandwidth / device-to-device copy", "relu",
            f"{bw['kernel-builder']:.0f} GB/s vs copy {bw['copy']:.0f} GB/s ({bw['kernel-builder'] / bw['copy']:.0%}); cpp_extension {bw['cpp_extension']:.0f} GB/s")

# ---------------------------------------------------------------------------------------------


def machine() -> dict:
    import torch

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "absent"

    return {"cpus": len(os.sched_getaffinity(0)), "load-average": os.getloadavg(), "python": platform.python_version(), "torch": torch.__version__,
            "cxx": version(["c++", "--version"]), "cmake": version(["cmake", "--version"]), "launcher": launcher_on(os.environ.get("PATH", "")),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_report(ctx: Context, out: Path, info: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info["load-average-end"] = os.getloadavg()
    (out / "performance.json").write_text(json.dumps({"machine": info, "runs": ctx.runs, "jobs": ctx.jobs, "results": ctx.results}, indent=2) + "\n")
    lines = [f"Measured {info['date']}: {info['cpus']} CPUs, load average {info['load-average'][0]:.1f} → {info['load-average-end'][0]:.1f}, "
             f"torch {info['torch']}, {info['cxx']}; medians of {ctx.runs} interleaved runs, {ctx.jobs} compile jobs.", "",
             "| measure | what | kernel | result | goal |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {w} | {k} | {v} | {g} |" for m, w, k, v, g in ctx.table]
    (out / "performance.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {out / 'performance.json'} and {out / 'performance.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated measures: P1..P6, or P6.size, P6.memory, P6.matrix, P6.gpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kernels", default="relu,six", help="relu, six (comma-separated)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--out", type=Path, default=Path("performance-results"))
    args = parser.parse_args()
    chosen = [m.strip() for m in args.only.split(",") if m.strip()] or ["P1", "P2", "P3", "P4", "P5", "P6"]
    wanted = {m for m in MEASURES if any(m == c or m.startswith(c + ".") for c in chosen)}
    unknown = [c for c in chosen if not any(m == c or m.startswith(c + ".") for m in MEASURES)]
    if unknown:
        parser.error(f"--only: unknown measure(s) {', '.join(unknown)} (known: {', '.join(MEASURES)})")
    kernels = [KERNELS[name] for name in args.kernels.split(",")]

    env = {k: v for k, v in os.environ.items() if k not in ("KERNEL_BUILDER_CUDA_ARCHS", "CMAKE_ARGS")}
    env["CMAKE_ARGS"] = NO_LAUNCHER
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="kb-bench-perf-"))
    ctx = Context(work, args.runs, args.jobs, env)
    print(f"kernel-builder performance: {', '.join(sorted(wanted))} on {', '.join(k.name for k in kernels)}; {args.runs} runs, {args.jobs} jobs; work in {work}")
    try:
        for kernel in kernels:
            for measure, function in (("P1", p1), ("P2", p2), ("P3", p3), ("P4", p4), ("P5", p5), ("P6.size", p6_size), ("P6.memory", p6_memory)):
                if measure in wanted:
                    function(ctx, kernel)
        if "P6.matrix" in wanted:
            p6_matrix(ctx)
        if "P6.gpu" in wanted:
            p6_gpu(ctx)
    finally:
        write_report(ctx, args.out, info)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
