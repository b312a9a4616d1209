#!/usr/bin/env python3
"""The matrix build against building the same variants one after another by hand.

A: `kernel-builder build` of a fresh copy of a kernel (the matrix: every reachable required
   variant, in parallel, each in its toolchain environment).
B: the same variants built the way an author would without the matrix: one environment per
   torch (the same toolchain environments, so both sides compile with identical tools), and
   `kernel-builder build --host --python <that environment's python>` with CUDA_HOME at its CUDA
   toolkit and its bin/ (cmake, ninja) first on PATH, one variant after another, in a fresh copy.

Both sides start from a fresh copy (cold build folders) with the toolchains already made (the
first, untimed, run of A makes them). No compiler cache on either side (CMAKE_ARGS clears the
launchers), so both compile everything. Runs are interleaved A/B; medians and the ratio A/B are
reported. Standard library + kernel-builder only.

    python benchmarks/matrix.py [--kernel examples/relu] [--runs 3] [--cuda-archs 9.0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def kb(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "kernel_builder", *map(str, args)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"kernel-builder {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return result


def fresh_copy(kernel: Path, parent: Path, lock: Path | None) -> Path:
    target = Path(tempfile.mkdtemp(dir=parent)) / kernel.name
    shutil.copytree(kernel, target, ignore=shutil.ignore_patterns("build", "__pycache__"))
    if lock is not None:
        shutil.copy2(lock, target / lock.name)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", type=Path, default=REPO / "examples" / "relu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cuda-archs", default="9.0", help="CUDA capabilities for both sides (default 9.0)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "KERNEL_BUILDER_CUDA_ARCHS", "CMAKE_ARGS")}
    env["CMAKE_ARGS"] = "-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER= -DCMAKE_CUDA_COMPILER_LAUNCHER="
    work = Path(tempfile.mkdtemp(prefix="kb-bench-matrix-"))
    try:
        # Warm-up (untimed): resolve the lock and make the toolchain environments.
        warm = fresh_copy(args.kernel, work, None)
        report = json.loads(kb("build", warm, "--cuda-archs", args.cuda_archs, "--json", env=env).stdout)
        lock = warm / "kernel-builder.lock.json"
        variants = [v["variant"] for v in report["variants"]]
        from kernel_builder.toolchains import LockFile
        from kernel_builder.toolchains.environment import read_ready

        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        lock_file = LockFile.load(warm)
        by_hand = []
        for name in variants:
            toolchain = lock_file.toolchain_for(name, python)
            if toolchain.torch_backend is not None:  # a CPU variant from a CUDA wheel: --host cannot build it
                print(f"  leaving out {name}: built against another backend's torch wheel, which --host cannot do")
                continue
            by_hand.append((name, read_ready(toolchain)))
        selection = [arg for name, _ in by_hand for arg in ("--variant", name)]
        print(f"{args.kernel.name}: {len(by_hand)} variants: {', '.join(name for name, _ in by_hand)}")

        times: dict[str, list[float]] = {"matrix": [], "one after another": []}
        for run in range(args.runs):
            for side in ("matrix", "one after another"):
                kernel = fresh_copy(args.kernel, work, lock)
                start = time.monotonic()
                if side == "matrix":
                    kb("build", kernel, *selection, "--cuda-archs", args.cuda_archs, "--quiet", env=env)
                else:
                    for name, environment in by_hand:
                        side_env = dict(env)
                        # The toolchain's own cmake and ninja (torch 2.12+ needs CMake >= 3.27 for CUDA20).
                        side_env["PATH"] = os.pathsep.join([str(Path(environment.python).parent), env.get("PATH", "")])
                        if environment.cuda_root is not None:
                            side_env["CUDA_HOME"] = str(environment.cuda_root)
                        kb("build", kernel, "--python", environment.python, "--variant", name, "--cuda-archs", args.cuda_archs, "--quiet", env=side_env)
                took = time.monotonic() - start
                times[side].append(took)
                print(f"  run {run + 1}: {side:18} {took:7.1f} s")
                shutil.rmtree(kernel.parent)
        a, b = statistics.median(times["matrix"]), statistics.median(times["one after another"])
        print(f"\nmedian matrix build: {a:.1f} s; median one after another: {b:.1f} s; ratio matrix / by hand = {a / b:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
