"""How much of the machine one build uses: variants at once, compile jobs, nvcc threads.

Upstream's knobs, with upstream's meaning: `--max-jobs` is the number of variants built at the
same time, `--cores` the compile jobs of each. Unset, they are derived from the CPUs this
process may use (or MAX_JOBS, the total) and the memory available: each concurrent nvcc thread
is budgeted about 3 GiB (nvcc's peak on template-heavy kernels), so CUDA builds never run more
nvcc threads than memory allows. nvcc's own `--threads` (NVCC_THREADS) compiles the
architectures of one file in parallel; by default it is the number of architectures of the
largest section, capped at the jobs of the variant, and the jobs are divided by it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import UsageError

GIB = 1 << 30
NVCC_THREAD_MEMORY = 3 * GIB


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UsageError(f"{name}={value!r}: expected a positive whole number")
    return number


def env_int(name: str, environ: dict | None = None) -> int | None:
    """A positive integer environment variable (MAX_JOBS, NVCC_THREADS), validated; None when unset."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return _positive_int(name, value) if value else None


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (bytes), None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class ResourcePlan:
    max_jobs: int  # variants built at the same time
    cores: int  # compile jobs of each variant
    nvcc_threads: int | None  # None: decided per variant (its architecture count)
    memory: int | None
    cuda_jobs: int  # compile jobs of a CUDA variant after the memory budget
    how: str  # one line for -v

    def nvcc_for(self, archs: int) -> tuple[int, int]:
        """(ninja jobs, nvcc threads) for a CUDA variant whose largest section has `archs` architectures."""
        threads = self.nvcc_threads or max(1, min(archs, self.cuda_jobs))
        return max(1, self.cuda_jobs // threads), threads


def plan_resources(variants: int, *, has_cuda: bool, max_jobs: int | None = None, cores: int | None = None, environ: dict | None = None,
                   cpus: int | None = None, memory: int | None = -1) -> ResourcePlan:
    """The resource plan for building `variants` variants (see the module docstring)."""
    cpus = cpus or usable_cpus()
    memory = available_memory() if memory == -1 else memory
    total = env_int("MAX_JOBS", environ) or (cores * max_jobs if cores and max_jobs else cpus)
    nvcc_threads = env_int("NVCC_THREADS", environ)
    variants = max(1, variants)
    if max_jobs is None:
        max_jobs = max(1, min(variants, total if cores is None else max(1, total // cores)))
    if cores is None:
        cores = max(1, total // max_jobs)
    cuda_jobs = cores
    how = f"{max_jobs} variant(s) at a time × {cores} compile job(s) ({cpus} CPUs"
    if has_cuda and memory:
        budget = max(1, memory // NVCC_THREAD_MEMORY // max_jobs)
        cuda_jobs = max(1, min(cores, budget))
        how += f", {memory / GIB:.0f} GiB available: at most {budget} nvcc thread(s) per variant"
    how += ")"
    return ResourcePlan(max_jobs=max_jobs, cores=cores, nvcc_threads=nvcc_threads, memory=memory, cuda_jobs=cuda_jobs, how=how)
