"""Rules that span several keys of a build.toml, and the checks on the files it names."""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath

from ..errors import Problem
from ..standalone.package import PackageError, package_files
from . import rules
from .model import BACKEND_ONLY_KERNEL_KEYS, KERNEL_BACKENDS, BuildConfig, Framework, General, Kernel, KernelDependency

log = logging.getLogger("kernel_builder")

PYEXT_RE = re.compile(r"^[A-Za-z0-9_]+$")
# Kernel fields that hold a backend-only key, by TOML key.
_FIELD_OF_KEY = {
    "cuda-capabilities": "cuda_capabilities",
    "cuda-flags": "cuda_flags",
    "cuda-minver": "cuda_minver",
    "rocm-archs": "rocm_archs",
    "hip-flags": "hip_flags",
    "sycl-flags": "sycl_flags",
}


def validate_model(config: BuildConfig, file: str = "build.toml") -> list[Problem]:
    """Cross-key rules on a converted model (no file system access)."""
    problems = validate_general(config.general, file)
    problems += validate_framework(config.framework, config.general, bool(config.kernels), file)
    for kernel in config.kernels:
        problems += validate_kernel(kernel, config.general, config.framework.kind, file)
    return problems


def validate_general(general: General, file: str = "build.toml") -> list[Problem]:
    problems: list[Problem] = []
    rules.check_python_depends(general.python_depends, problems, "general.python-depends", "general")
    _check_kernel_depends(general.kernel_depends, "general.kernel-depends", problems)
    for scope in ("cuda", "xpu", "neuron", "tpu"):
        settings = general.backend_settings(scope)
        if settings is None:
            continue
        rules.check_python_depends(settings.python_depends, problems, f"general.{scope}.python-depends", scope)
        _check_kernel_depends(getattr(settings, "kernel_depends", ()), f"general.{scope}.kernel-depends", problems)
        if scope not in general.backends:
            log.warning("%s: [general.%s] is set but %s is not in general.backends; it has no effect", file, scope, scope)
    if general.cuda is not None:
        _check_bounds(general.cuda.minver, general.cuda.maxver, "general.cuda", problems)
    return problems


def validate_framework(framework: Framework, general: General | None, has_kernels: bool, file: str = "build.toml") -> list[Problem]:
    problems: list[Problem] = []
    _check_bounds(framework.minver, framework.maxver, framework.kind, problems)
    for i, ext in enumerate(framework.pyext):
        if not PYEXT_RE.fullmatch(ext):
            problems.append(Problem(f"{framework.kind}.pyext[{i}]", f"{ext!r} is not a file extension", "extensions without the dot, e.g. py, pyi, json"))
    if framework.kind == "torch-noarch":
        for i, cap in enumerate(framework.cuda_capabilities):
            rules.check_capability(cap, problems, f"torch-noarch.cuda-capabilities[{i}]")
        for i, arch in enumerate(framework.rocm_archs):
            rules.check_rocm_arch(arch, problems, f"torch-noarch.rocm-archs[{i}]")
    if framework.kind == "torch" and isinstance(framework.stable_abi, dict) and general is not None:
        for backend in framework.stable_abi:
            if backend not in general.backends:
                log.warning("%s: torch.stable-abi.%s is ignored: %s is not in general.backends", file, backend, backend)
    return problems


def validate_kernel(kernel: Kernel, general: General | None, framework_kind: str | None, file: str = "build.toml") -> list[Problem]:
    problems: list[Problem] = []
    path = f"kernel.{kernel.name}"
    if framework_kind == "torch-noarch":
        problems.append(Problem(path, "a [torch-noarch] kernel has no compiled sections", "remove it, or use [torch] for compiled kernels"))
    _check_kernel(kernel, general, problems, file)
    return problems


def _check_bounds(minver, maxver, path: str, problems: list[Problem]) -> None:
    if minver is not None and maxver is not None and minver > maxver:
        problems.append(Problem(f"{path}.minver", f"minver {minver} is greater than maxver {maxver}"))


def _check_kernel_depends(deps: tuple[KernelDependency, ...], path: str, problems: list[Problem]) -> None:
    for i, dep in enumerate(deps):
        if (dep.version is None) == (dep.revision is None):
            problems.append(Problem(f"{path}[{i}]", "give exactly one of `version` or `revision`", 'e.g. { repo-id = "kernels-community/relu", version = 1 }'))


def _check_kernel(kernel: Kernel, general: General | None, problems: list[Problem], file: str) -> None:
    path = f"kernel.{kernel.name}"
    if kernel.backend not in KERNEL_BACKENDS:
        problems.append(Problem(f"{path}.backend", f"unknown kernel backend {kernel.backend!r}", "allowed: " + ", ".join(KERNEL_BACKENDS)))
        return
    for toml_key, backend in BACKEND_ONLY_KERNEL_KEYS.items():
        value = getattr(kernel, _FIELD_OF_KEY[toml_key])
        if backend != kernel.backend and value not in (None, ()):
            problems.append(Problem(f"{path}.{toml_key}", f"not valid for a {kernel.backend} kernel", f"only {backend} kernels take {toml_key}"))
    rules.check_depends(kernel.depends, problems, f"{path}.depends")
    for i, dep in enumerate(kernel.depends):
        info = rules.kernel_dependencies().get(dep, {})
        allowed = info.get("backends")
        if allowed and kernel.backend not in allowed:
            problems.append(Problem(f"{path}.depends[{i}]", f"{dep} is not available for {kernel.backend} kernels", f"it is for: {', '.join(allowed)}"))
    for i, cap in enumerate(kernel.cuda_capabilities or ()):
        rules.check_capability(cap, problems, f"{path}.cuda-capabilities[{i}]")
    if kernel.cuda_capabilities == ():
        problems.append(Problem(f"{path}.cuda-capabilities", "empty list", "remove the key to use the toolkit's default list"))
    for i, arch in enumerate(kernel.rocm_archs or ()):
        rules.check_rocm_arch(arch, problems, f"{path}.rocm-archs[{i}]")
    if kernel.rocm_archs == ():
        problems.append(Problem(f"{path}.rocm-archs", "empty list", "remove the key to build for every supported architecture"))
    if not kernel.src:
        problems.append(Problem(f"{path}.src", "no source files listed"))
    if general is not None and kernel.backend not in general.backends:
        log.warning("%s: kernel.%s has backend %s, which is not in general.backends; it is never built", file, kernel.name, kernel.backend)


def _relative_path_problem(entry: str) -> str | None:
    """Reject absolute paths and `..` escapes before touching the file system."""
    if not entry:
        return "empty path"
    pure = PurePosixPath(entry)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:[\\/]", entry):
        return f"{entry!r} is an absolute path"
    depth = 0
    for part in pure.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return f"{entry!r} points outside the kernel directory"
    return None


def check_path(root: Path, entry: str, key: str, *, want_dir: bool) -> Problem | None:
    """One listed path: relative, inside the kernel directory (symlinks resolved), existing."""
    problem = _relative_path_problem(entry)
    rule = "paths are relative to the kernel directory and stay inside it"
    if problem:
        return Problem(key, problem, rule)
    target = root / entry
    try:
        resolved = target.resolve()
        if not resolved.is_relative_to(root.resolve()):
            return Problem(key, f"{entry!r} resolves to {resolved}, outside the kernel directory (through a symbolic link)", rule)
        if not target.exists():
            return Problem(key, f"{'directory' if want_dir else 'file'} {entry!r} does not exist")
        if want_dir and not target.is_dir():
            return Problem(key, f"{entry!r} is not a directory")
        if not want_dir and not target.is_file():
            return Problem(key, f"{entry!r} is not a file")
    except OSError as exc:  # a name too long, a folder that cannot be read
        return Problem(key, f"{entry!r} cannot be checked: {exc.strerror or exc}")
    except RuntimeError:  # pathlib's report of a symbolic link loop
        return Problem(key, f"{entry!r} is a symbolic link loop")
    return None


# (key path, entries, whether they are folders): one list of paths build.toml names.
PathList = tuple[str, tuple[str, ...], bool]


def listed_paths(framework: Framework | None, kernels: tuple[Kernel, ...]) -> list[PathList]:
    """The path lists of a converted model."""
    lists: list[PathList] = []
    if framework is not None:
        lists += [(f"{framework.kind}.src", framework.src, False), (f"{framework.kind}.include", framework.include, True)]
    for kernel in kernels:
        lists += [(f"kernel.{kernel.name}.src", kernel.src, False), (f"kernel.{kernel.name}.include", kernel.include, True)]
    return lists


def validate_files(config: BuildConfig) -> list[Problem]:
    """Every path build.toml lists must exist inside the kernel directory."""
    python = (config.framework.python_root, config.general.python_name, config.framework.pyext)
    return validate_paths(config.root, listed_paths(config.framework, config.kernels), python)


def validate_paths(root: Path | None, lists: list[PathList], python_package: tuple[str, str, tuple[str, ...]] | None) -> list[Problem]:
    """Checks on the paths build.toml lists, and on the Python package (root, module name,
    pyext): it must exist, be flat, and hold no symbolic link that leaves the kernel directory.

    Without `root` (schema-only), only what needs no file system is checked: relative paths
    that stay inside the kernel directory.
    """
    problems: list[Problem] = []
    for key, entries, want_dir in lists:
        for i, entry in enumerate(entries):
            if any(c in rules.PATH_FORBIDDEN or not c.isprintable() for c in entry):
                continue  # reported by rules.check_path_entries; not a path to look up
            if root is None:
                message = _relative_path_problem(entry)
                problem = Problem(f"{key}[{i}]", message, "paths are relative to the kernel directory and stay inside it") if message else None
            else:
                problem = check_path(root, entry, f"{key}[{i}]", want_dir=want_dir)
            if problem:
                problems.append(problem)

    if root is not None and python_package is not None:
        python_root, python_name, pyext = python_package
        package = f"{python_root}/{python_name}"
        init = check_path(root, f"{package}/__init__.py", "", want_dir=False)
        if init is not None:
            problems.append(Problem("", f"the Python package {package}/__init__.py does not exist", f"the kernel's Python code lives in {package}/"))
            return problems
        if (root / package / python_name).exists():
            problems.append(Problem("", f"{package}/{python_name} must not exist", "the package is flat: put its modules directly in " + package))
        try:
            package_files(root / package, root, pyext)
        except PackageError as exc:
            problems.append(Problem("", str(exc), "a variant ships copies of files inside the kernel directory, never links"))
    return problems
