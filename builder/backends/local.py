"""The local backend: build the variants this machine's torch can build, with CMake + Ninja.

Planning (`plan_local`) happens before anything is written: it decides which variants the
chosen Python's torch can build (its own compute backend, plus the kernel's Python-only
backends), checks bounds, the CUDA toolkit, GPU architectures and header dependencies, and
raises a UsageError naming every reason when something cannot be built.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping

from ..config.model import BuildConfig
from ..errors import BuildError, UsageError, named_os_errors
from ..process import Cancellation, run_logged
from ..layout.install import BuildDir
from ..layout.metadata import ops_name
from ..render.project import render_project
from ..render.tree import write_tree
from ..standalone import archs
from ..variants import BuildSet, Variant, applicable_variants, exclusion_reason
from .host import Host
from .toolpaths import require_plain, seen_by_tools, tool_root

NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]\s")
BACKEND_TOOLCHAIN = {
    "cuda": "a CUDA build of torch and the matching CUDA toolkit",
    "rocm": "a ROCm build of torch and the ROCm toolchain (hipcc)",
    "xpu": "an XPU build of torch and the oneAPI SYCL compiler",
    "metal": "macOS with Xcode's Metal toolchain",
    "cpu": "a CPU build of torch",
}


@dataclass(frozen=True)
class Job:
    """One variant to produce."""

    variant: Variant
    unique_id: str
    compiled: bool
    cuda_archs: dict[str, list[str]] = field(default_factory=dict)  # section -> capabilities
    cuda_targets: tuple[str, ...] = ()


@dataclass
class Plan:
    jobs: list[Job]
    skipped: dict[str, str]  # backend -> why this machine cannot build it


@dataclass(frozen=True)
class BuildEnvironment:
    """The environment variables a build reads, validated."""

    max_jobs: int | None  # MAX_JOBS: compile jobs per variant
    nvcc_threads: int  # NVCC_THREADS: nvcc threads per job (CMake reads it too)
    cmake_args: tuple[str, ...]  # CMAKE_ARGS: extra CMake arguments, split like a shell
    # KERNEL_BUILDER_COMPILER_CACHE: "auto" (the first of COMPILER_LAUNCHERS on PATH), "off", or one of them
    compiler_cache: str = "auto"


def build_environment(environ: Mapping[str, str] = os.environ) -> BuildEnvironment:
    """Parse MAX_JOBS, NVCC_THREADS and CMAKE_ARGS; UsageError naming the variable otherwise."""

    def positive(name: str) -> int | None:
        text = environ.get(name, "").strip()
        if not text:
            return None
        if not text.isascii() or not text.isdigit() or len(text) > 6 or int(text) < 1:
            raise UsageError(f"{name}={text!r}: expected a positive whole number, e.g. {name}=4")
        return int(text)

    try:
        cmake_args = tuple(shlex.split(environ.get("CMAKE_ARGS", "")))
    except ValueError as exc:
        raise UsageError(f"CMAKE_ARGS={environ.get('CMAKE_ARGS')!r}: {exc} (it is split like a shell command line)") from None
    cache = environ.get("KERNEL_BUILDER_COMPILER_CACHE", "").strip().lower() or "auto"
    cache = "off" if cache in ("0", "no", "false", "none") else cache
    if cache not in ("auto", "off", *COMPILER_LAUNCHERS):
        raise UsageError(f"KERNEL_BUILDER_COMPILER_CACHE={environ.get('KERNEL_BUILDER_COMPILER_CACHE')!r}: expected auto, off, "
                         + ", ".join(COMPILER_LAUNCHERS))
    return BuildEnvironment(positive("MAX_JOBS"), positive("NVCC_THREADS") or 1, cmake_args, cache)


def parse_cuda_archs(text: str | None) -> tuple[str, ...]:
    """`--cuda-archs "9.0, 8.0"` -> ("9.0", "8.0"), validated."""
    if not text:
        return ()
    items = tuple(t for t in re.split(r"[\s,;]+", text.strip()) if t)
    for item in items:
        try:
            archs.Capability.parse(item)
        except ValueError as exc:
            raise UsageError(f"--cuda-archs: {exc}") from None
    return items


def _host_build_set(host: Host, backend: str, version: str | None) -> BuildSet:
    torch = host.torch
    return BuildSet(torch=torch.short, backend=backend, version=version, systems=(host.system,), required=True, abis=(torch.abi,))


def _select_archs(config: BuildConfig, host: Host, targets: tuple[str, ...]) -> tuple[dict[str, list[str]], list[str]]:
    selected, errors = {}, []
    toolkit = host.cuda
    for kernel in config.kernels_for("cuda"):
        if kernel.cuda_minver is not None and archs.version_key(toolkit.version) < archs.version_key(str(kernel.cuda_minver)):
            continue
        try:
            requested = list(kernel.cuda_capabilities) if kernel.cuda_capabilities else None
            selected[kernel.name] = archs.select_cuda_archs(kernel.name, toolkit.version, requested, list(toolkit.known_archs) or None, list(targets) or None)
        except archs.ArchError as exc:
            errors.append(str(exc))
    return selected, errors


def _missing_dependencies(config: BuildConfig, host: Host, backend: str) -> list[str]:
    """Header dependencies of this backend's sections that cannot be found (run in host Python)."""
    problems = []
    tool = resources.files("kernel_builder.standalone")
    with resources.as_file(tool) as tool_dir:
        for kernel in config.kernels_for(backend):
            for dep in kernel.depends:
                if not dep.startswith("cutlass_"):
                    continue
                result = subprocess.run([str(host.python), str(tool_dir), "find-dependency", "--name", dep, "--section", kernel.name], capture_output=True, text=True)
                if result.returncode != 0:
                    problems.append(result.stderr.strip())
    return problems


def plan_local(config: BuildConfig, host: Host, *, variant: str | None = None, unique_id: str, cuda_targets: tuple[str, ...] = ()) -> Plan:
    """Decide what this machine builds; raise UsageError (with every reason) if it cannot."""
    torch = host.torch
    if torch is None:
        raise UsageError(f"torch is not installed for {host.python}: install it there, or pass --python <an interpreter with torch>")
    build_environment()  # bad MAX_JOBS / NVCC_THREADS / CMAKE_ARGS: refused before anything is written
    require_plain(host.python, "the Python")
    require_plain(torch.dir, "torch at")
    if config.framework.kind == "tvm-ffi":
        raise UsageError("[tvm-ffi] kernels cannot be built by the local backend yet (it needs apache-tvm-ffi and TVM-FFI CMake support)")

    jobs: list[Job] = []
    skipped: dict[str, str] = {}
    problems: list[str] = []
    host_backends = dict(torch.backends)
    for backend in config.arch_backends:
        if backend not in host_backends:
            skipped[backend] = f"needs {BACKEND_TOOLCHAIN.get(backend, backend)}; {host.python} has torch {torch.version}"
            continue
        build_set = _host_build_set(host, backend, host_backends[backend])
        reason = exclusion_reason(config, build_set)
        if reason:
            skipped[backend] = reason
            continue
        (target,) = applicable_variants(config, [build_set])
        if variant and target.name != variant:
            continue
        job = Job(target, unique_id, compiled=True, cuda_targets=cuda_targets)
        if backend == "cuda":
            if host.cuda is None:
                problems.append(f"cuda: {host.cuda_problem}")
                continue
            torch_cuda = host_backends["cuda"]
            if host.cuda.version != torch_cuda:
                problems.append(f"cuda: the CUDA toolkit at {host.cuda.root} is {host.cuda.version}, but torch {torch.version} was built for CUDA {torch_cuda}; point CUDA_HOME at a CUDA {torch_cuda} toolkit")
                continue
            selected, errors = _select_archs(config, host, cuda_targets)
            problems += errors
            job = Job(target, unique_id, compiled=True, cuda_archs=selected, cuda_targets=cuda_targets)
        problems += _missing_dependencies(config, host, backend)
        jobs.append(job)

    for backend in config.noarch_backends:
        build_set = BuildSet(torch=torch.short, backend=backend, systems=(host.system,), required=True)
        reason = exclusion_reason(config, build_set)
        if reason:
            skipped[backend] = reason
            continue
        (target,) = applicable_variants(config, [build_set])
        if not variant or target.name == variant:
            jobs.append(Job(target, unique_id, compiled=False))

    if problems:
        raise UsageError("cannot build " + config.general.name + ":\n  " + "\n  ".join(problems))
    if not jobs:
        reasons = "\n  ".join(f"{b}: {r}" for b, r in skipped.items()) or "no backends"
        if variant:
            raise UsageError(f"variant {variant} cannot be built here.\n  {reasons}")
        raise UsageError(f"nothing of {config.general.name} can be built on this machine (backends: {', '.join(config.general.backends)}):\n  {reasons}")
    for tool in ("cmake", "ninja"):
        if any(j.compiled for j in jobs) and shutil.which(tool) is None:
            raise UsageError(f"{tool} is not installed (pip install cmake ninja, or your system's packages)")
    return Plan(jobs, skipped)


def plan_toolchain_job(config: BuildConfig, variant: Variant, host: Host, *, unique_id: str, cuda_targets: tuple[str, ...] = ()) -> Job:
    """The job of one matrix variant, built in its toolchain environment `host`.

    The torch of a toolchain may be a CUDA build used for a CPU variant (where no CPU wheel
    exists): CMake is then told the backend (-DKB_BACKEND=cpu) and links torch's CPU libraries only.
    """
    if variant.is_noarch:
        return Job(variant, unique_id, compiled=False)
    problems: list[str] = []
    selected: dict[str, list[str]] = {}
    if variant.backend == "cuda":
        if host.cuda is None:
            raise UsageError(f"{variant.name}: {host.cuda_problem}")
        selected, problems = _select_archs(config, host, cuda_targets)
    problems += _missing_dependencies(config, host, variant.backend)
    if problems:
        raise UsageError(f"cannot build {variant.name}:\n  " + "\n  ".join(problems))
    return Job(variant, unique_id, compiled=True, cuda_archs=selected, cuda_targets=cuda_targets)


def parallel_jobs(cores: int | None) -> int:
    """Compile jobs for one variant: `cores` as planned (builder/resources.py), else MAX_JOBS,
    else the CPUs we may use, divided by NVCC_THREADS."""
    if cores:
        return cores
    environment = build_environment()
    if environment.max_jobs:
        jobs = environment.max_jobs
    else:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, jobs // environment.nvcc_threads)


def _drop_stale_cache(binary: Path, tree: Path) -> None:
    """A CMake build folder only works for the source folder it was made for; after the kernel
    directory was moved or copied, start that folder afresh (one full rebuild)."""
    cache = binary / "CMakeCache.txt"
    if not cache.is_file():
        return
    match = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", cache.read_text(errors="replace"), re.MULTILINE)
    if match is None or Path(match.group(1)).resolve() != tree.resolve():
        shutil.rmtree(binary)


CONFIGURE_ARGS = "kernel-builder-configure.json"


def _prepare_build_folder(binary: Path, configure: list[str]) -> bool:
    """Whether CMake's configure step must run; resets the build folder when it must start afresh.

    - Arguments changed (other than the unique id, which changes with every edit outside git
      and is meant to be updated in place): start afresh, since a cache variable set by an
      earlier CMAKE_ARGS would otherwise stay set after it is removed.
    - Same arguments as the last successful configure: skip it. `cmake --build` still
      re-runs it by itself when a CMake input (the generated tree) changed.
    """
    import json

    args = configure[1:]
    stable = [a for a in args if not a.startswith("-DKB_UNIQUE_ID=")]
    record = binary / CONFIGURE_ARGS
    try:
        previous = json.loads(record.read_text())
    except (OSError, ValueError):
        previous = None
    if isinstance(previous, dict) and previous.get("stable") != stable and binary.is_dir():
        shutil.rmtree(binary)
    elif isinstance(previous, dict) and previous.get("args") == args and previous.get("ok") and (binary / "CMakeCache.txt").is_file():
        return False
    binary.mkdir(parents=True, exist_ok=True)
    with named_os_errors(record):
        record.write_text(json.dumps({"stable": stable, "args": args, "ok": False}))
    return True


def _configured(binary: Path, configure: list[str]) -> None:
    import json

    args = configure[1:]
    record = binary / CONFIGURE_ARGS
    with named_os_errors(record):
        record.write_text(json.dumps({"stable": [a for a in args if not a.startswith("-DKB_UNIQUE_ID=")], "args": args, "ok": True}))


# The first one on PATH wraps every compile. ccache first: it rewrites the paths under its base
# folder in every argument (-ffile-prefix-map included), so a copy of a kernel at another path
# hits; sccache 0.16 hashes those arguments as they are and reads its base folders only when its
# server starts (docs/performance.md).
COMPILER_LAUNCHERS = ("ccache", "sccache")
# The variable that makes each launcher's cache keys relative to a base folder.
LAUNCHER_BASE_DIR = {"ccache": "CCACHE_BASEDIR", "sccache": "SCCACHE_BASEDIRS"}


def compiler_launcher(environ: Mapping[str, str] = os.environ) -> str | None:
    """The compiler cache on PATH that builds use (docs/performance.md), or None.

    KERNEL_BUILDER_COMPILER_CACHE picks one or turns it off: the Nix engine's builds do, since
    nothing outside the store may feed a derivation (a cache shared with the host would)."""
    choice = build_environment(environ).compiler_cache
    if choice == "off":
        return None
    candidates = COMPILER_LAUNCHERS if choice == "auto" else (choice,)
    return next((name for name in candidates if shutil.which(name, path=environ.get("PATH"))), None)


def launcher_environment(launcher: str | None, kernel_root: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The launcher's base folder: the kernel directory as the tools see it, unless the user set one.

    Every path the compile commands hold that changes with the kernel's location lies under
    it (the sources, the generated tree, the build folder, and the -ffile-prefix-map options
    naming them), so a copy of the kernel at another path finds the same cache entries. The
    objects are the same too: those paths are mapped out of them (kb_map_build_paths).
    """
    variable = LAUNCHER_BASE_DIR.get(launcher or "")
    if variable is None or environ.get(variable):
        return {}
    if os.path.realpath(kernel_root) != str(kernel_root):
        # Through a link (the alias of toolpaths.py, or a linked folder on the way), the
        # compiles' working folder is the real path while their paths name the link: ccache
        # would make them relative across the two ("../../../../../../link/src.cpp"), which no
        # path map covers and which would differ from folder to folder. Absolute paths are
        # mapped; such a kernel gets cache hits at its own path only.
        return {}
    return {variable: str(kernel_root)}


def _tool_environment(host: Host, launcher_env: Mapping[str, str] | None = None) -> dict:
    """The environment of the build tools: this process's, made hermetic for a toolchain
    environment (its own bin folders first on PATH, CUDA_HOME its assembled toolkit), plus
    the compiler launcher's settings."""
    env = dict(os.environ)
    env.update(launcher_env or {})
    env.pop("KERNEL_BUILDER_CUDA_ARCHS", None)  # passed explicitly
    if host.hermetic:
        for var in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT", "CUDAToolkit_ROOT", "CUDACXX", "NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS"):
            env.pop(var, None)
        if host.cuda is not None:
            env["CUDA_HOME"] = str(host.cuda.root)
        env["PATH"] = os.pathsep.join([*host.toolchain_dirs, env.get("PATH", "")])
    return env


def build_compiled(config: BuildConfig, job: Job, host: Host, build_dir: BuildDir, staging: Path, log: Path, *, provenance: dict, cores: int | None,
                   report: Callable[..., None], cancel: Cancellation | None = None, nvcc_threads: int | None = None) -> Path:
    """Render the CMake tree, configure, compile and install one variant into `staging`."""
    name = job.variant.name
    # CMake, Ninja and ld get the kernel directory through a plain path (see toolpaths.py).
    root = tool_root(config.root)
    work = seen_by_tools(build_dir.work_dir(name), config.root, root)
    install_prefix = seen_by_tools(staging, config.root, root)
    tree, binary = work / "tree", work / "cmake-build"
    _drop_stale_cache(binary, tree)
    write_tree(tree, render_project(config, job.unique_id, provenance, tree, kernel_dir=root), force=True)

    report(name, "configure")
    configure = [
        host.cmake, "-S", str(tree), "-B", str(binary), "-G", "Ninja",
        f"-DPython3_EXECUTABLE={host.python}",
        f"-DKB_UNIQUE_ID={job.unique_id}",
        f"-DKB_EXPECTED_VARIANT={name}",
        f"-DKB_BACKEND={job.variant.backend}",
        f"-DKB_CUDA_ARCHS={';'.join(job.cuda_targets)}",
        "-DCMAKE_BUILD_TYPE=Release",
    ]
    if host.ninja:
        configure.append(f"-DCMAKE_MAKE_PROGRAM={host.ninja}")
    if job.variant.backend == "cuda" and host.cuda is not None:
        configure.append(f"-DCMAKE_CUDA_COMPILER={host.cuda.nvcc}")
        if host.hermetic:
            configure.append(f"-DCUDAToolkit_ROOT={host.cuda.root}")
        if nvcc_threads:
            configure.append(f"-DNVCC_THREADS={nvcc_threads}")
    launcher = compiler_launcher()
    if launcher:
        configure += [f"-DCMAKE_{lang}_COMPILER_LAUNCHER={launcher}" for lang in ("C", "CXX", "CUDA")]
    configure += build_environment().cmake_args  # extra CMake arguments, last so they win
    env = _tool_environment(host, launcher_environment(launcher, root))
    try:
        if _prepare_build_folder(binary, configure):
            run_logged(configure, log, env=env, cancel=cancel)
            _configured(binary, configure)
    except BuildError:
        # A failed configure must not poison the next one: CMake would keep what it cached
        # (a wrong compiler, a failed check) even after the cause is gone.
        (binary / "CMakeCache.txt").unlink(missing_ok=True)
        (binary / CONFIGURE_ARGS).unlink(missing_ok=True)
        raise

    def on_line(line: str) -> None:
        match = NINJA_PROGRESS.match(line)
        if match:
            report(name, "compile", int(match.group(1)), int(match.group(2)))

    report(name, "compile")
    run_logged([host.cmake, "--build", str(binary), "--", "-j", str(parallel_jobs(cores))], log, env=env, on_line=on_line, cancel=cancel)
    report(name, "install")
    run_logged([host.cmake, "--install", str(binary), "--prefix", str(install_prefix)], log, env=env, cancel=cancel)
    variant = staging / name
    if not (variant / "metadata.json").is_file():
        raise BuildError(f"the install step did not produce {name}/", log)
    prune_stale_outputs(binary, ops_name(config, job.variant.backend, job.unique_id))
    return variant


# The CMake target that builds the extension (CMakeLists.txt.j2). Its name does not change
# with the unique id; the module it writes is <ops name>.abi3.so (its OUTPUT_NAME).
EXTENSION_TARGET = "kb_extension"


def _current_build_folder(build_dir: BuildDir, variant: str, ops: str | None) -> Path | None:
    """The variant's CMake build folder, if it built the extension `ops` (when given) last."""
    binary = build_dir.state / "work" / variant / "cmake-build"
    if not binary.is_dir() or (ops and not any(binary.glob(f"{glob.escape(ops)}.*"))):
        return None
    return binary


def object_files(build_dir: BuildDir, variant: str, target: str | None = None) -> list[Path]:
    """The compiled objects of a variant's extension, the module `target` (its ops name) when
    given (to say which object references a bad symbol)."""
    binary = _current_build_folder(build_dir, variant, target)
    if binary is None:
        return []
    return sorted((binary / "CMakeFiles" / f"{EXTENSION_TARGET}.dir").rglob("*.o"))


def link_map(build_dir: BuildDir, variant: str, target: str | None = None) -> Path | None:
    """The linker's map of the variant's extension (the module `target`, when given)."""
    binary = _current_build_folder(build_dir, variant, target)
    path = binary / f"{EXTENSION_TARGET}.map" if binary is not None else None
    return path if path is not None and path.is_file() else None


def prune_stale_outputs(binary: Path, ops: str) -> None:
    """Drop what earlier builds left in the CMake build folder: modules of other ops names, and
    the object folders and link maps of targets named after an id (before the stable target),
    so that it does not grow with every new unique id."""
    for entry in (binary / "CMakeFiles").glob("_*.dir") if (binary / "CMakeFiles").is_dir() else ():
        shutil.rmtree(entry, ignore_errors=True)
    for entry in binary.glob("_*"):
        if entry.is_file() and entry.name.split(".", 1)[0] != ops and entry.suffix in (".so", ".map", ".dylib", ".pyd"):
            entry.unlink(missing_ok=True)
