"""Typed model of an edition-5 build.toml.

Each dataclass describes one TOML table. Field metadata carries the TOML key (kebab-case) and
an optional value check, so the converter in `parse.py` can report problems by key path. The
model is immutable: it is built once and read by every later stage of the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

from packaging.version import Version

from . import rules

# Every backend a kernel may be published for, and the subset that has compiled kernel sections.
GENERAL_BACKENDS = ("cann", "cpu", "cuda", "metal", "neuron", "rocm", "tpu", "xpu")
KERNEL_BACKENDS = ("cpu", "cuda", "metal", "rocm", "xpu")
FRAMEWORKS = ("torch", "torch-noarch", "tvm-ffi")
CURRENT_EDITION = 5

# Keys a [kernel.<name>] table accepts only for one backend.
BACKEND_ONLY_KERNEL_KEYS = {
    "cuda-capabilities": "cuda",
    "cuda-flags": "cuda",
    "cuda-minver": "cuda",
    "rocm-archs": "rocm",
    "hip-flags": "rocm",
    "sycl-flags": "xpu",
}


def key(name: str, *, check: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """A dataclass field bound to TOML key `name`; `check(value, problems, path)` validates it."""
    return field(metadata={"key": name, "check": check}, **kwargs)


@dataclass(frozen=True)
class KernelDependency:
    """Another Hub kernel this kernel needs at run time (exactly one of version/revision)."""

    repo_id: str = key("repo-id", check=rules.check_repo_id)
    version: int | None = key("version", default=None)
    revision: str | None = key("revision", default=None)


@dataclass(frozen=True)
class Hub:
    repo_id: str | None = key("repo-id", default=None, check=rules.check_repo_id)
    branch: str | None = key("branch", default=None)


@dataclass(frozen=True)
class CudaSettings:
    """[general.cuda]: CUDA toolkit bounds (inclusive) and CUDA-only dependencies."""

    minver: Version | None = key("minver", default=None)
    maxver: Version | None = key("maxver", default=None)
    python_depends: tuple[str, ...] = key("python-depends", default=())
    kernel_depends: tuple[KernelDependency, ...] = key("kernel-depends", default=())


@dataclass(frozen=True)
class BackendDepends:
    """[general.xpu] and [general.neuron]: dependencies that apply to one backend only."""

    python_depends: tuple[str, ...] = key("python-depends", default=())
    kernel_depends: tuple[KernelDependency, ...] = key("kernel-depends", default=())


@dataclass(frozen=True)
class TpuSettings:
    python_depends: tuple[str, ...] = key("python-depends", default=())


@dataclass(frozen=True)
class General:
    name: str = key("name", check=rules.check_kernel_name)
    version: int = key("version", check=rules.check_kernel_version)
    license: str = key("license")
    backends: tuple[str, ...] = key("backends", check=rules.check_backends)
    edition: int = key("edition", default=CURRENT_EDITION)
    upstream: str | None = key("upstream", default=None, check=rules.check_git_url)
    source: str | None = key("source", default=None, check=rules.check_git_url)
    python_depends: tuple[str, ...] = key("python-depends", default=())
    kernel_depends: tuple[KernelDependency, ...] = key("kernel-depends", default=())
    hub: Hub | None = key("hub", default=None)
    cuda: CudaSettings | None = key("cuda", default=None)
    xpu: BackendDepends | None = key("xpu", default=None)
    neuron: BackendDepends | None = key("neuron", default=None)
    tpu: TpuSettings | None = key("tpu", default=None)

    @property
    def python_name(self) -> str:
        """The Python module name: the kernel name with dashes turned into underscores."""
        return self.name.replace("-", "_")

    def backend_settings(self, backend: str) -> CudaSettings | BackendDepends | TpuSettings | None:
        return getattr(self, backend, None) if backend in ("cuda", "xpu", "neuron", "tpu") else None

    def python_depends_for(self, backend: str) -> tuple[str, ...]:
        """General python-depends followed by the backend's own, as metadata.json lists them."""
        extra = self.backend_settings(backend)
        return self.python_depends + (extra.python_depends if extra else ())

    def kernel_depends_for(self, backend: str) -> tuple[KernelDependency, ...]:
        extra = self.backend_settings(backend)
        return self.kernel_depends + (getattr(extra, "kernel_depends", ()) if extra else ())


StableAbi = Union[Version, dict[str, Version], None]


@dataclass(frozen=True)
class TorchFramework:
    """[torch]: an ahead-of-time compiled Torch extension."""

    src: tuple[str, ...] = key("src", default=(), check=rules.check_path_entries)
    include: tuple[str, ...] = key("include", default=(), check=rules.check_path_entries)
    pyext: tuple[str, ...] = key("pyext", default=("py", "pyi"))
    minver: Version | None = key("minver", default=None)
    maxver: Version | None = key("maxver", default=None)
    cxx_flags: tuple[str, ...] = key("cxx-flags", default=(), check=rules.check_flags)
    # One version for every backend, or a per-backend table; parsed by parse.parse_stable_abi.
    stable_abi: StableAbi = key("stable-abi", default=None)

    kind = "torch"
    python_root = "torch-ext"

    def stable_abi_for(self, backend: str) -> Version | None:
        """The torch stable-ABI target version for `backend`, or None for the regular ABI."""
        if isinstance(self.stable_abi, dict):
            return self.stable_abi.get(backend)
        return self.stable_abi


@dataclass(frozen=True)
class NoarchFramework:
    """[torch-noarch]: Python-only kernels (Triton, plain PyTorch)."""

    pyext: tuple[str, ...] = key("pyext", default=("py", "pyi"))
    cuda_capabilities: tuple[str, ...] = key("cuda-capabilities", default=())
    rocm_archs: tuple[str, ...] = key("rocm-archs", default=())

    kind = "torch-noarch"
    python_root = "torch-ext"
    src: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    cxx_flags: tuple[str, ...] = ()
    minver = None
    maxver = None

    def stable_abi_for(self, backend: str) -> Version | None:
        return None


@dataclass(frozen=True)
class TvmFfiFramework:
    """[tvm-ffi]: an ahead-of-time compiled TVM-FFI extension."""

    src: tuple[str, ...] = key("src", check=rules.check_path_entries)
    include: tuple[str, ...] = key("include", default=(), check=rules.check_path_entries)
    pyext: tuple[str, ...] = key("pyext", default=("py", "pyi"))
    cxx_flags: tuple[str, ...] = key("cxx-flags", default=(), check=rules.check_flags)

    kind = "tvm-ffi"
    python_root = "tvm-ffi-ext"
    minver = None
    maxver = None

    def stable_abi_for(self, backend: str) -> Version | None:
        return None


Framework = Union[TorchFramework, NoarchFramework, TvmFfiFramework]


@dataclass(frozen=True)
class Kernel:
    """[kernel.<name>]: one compiled component for one backend."""

    name: str
    backend: str = key("backend")
    depends: tuple[str, ...] = key("depends")
    src: tuple[str, ...] = key("src", check=rules.check_path_entries)
    include: tuple[str, ...] = key("include", default=(), check=rules.check_path_entries)
    cxx_flags: tuple[str, ...] = key("cxx-flags", default=(), check=rules.check_flags)
    cuda_capabilities: tuple[str, ...] | None = key("cuda-capabilities", default=None)
    cuda_flags: tuple[str, ...] = key("cuda-flags", default=(), check=rules.check_flags)
    cuda_minver: Version | None = key("cuda-minver", default=None)
    rocm_archs: tuple[str, ...] | None = key("rocm-archs", default=None)
    hip_flags: tuple[str, ...] = key("hip-flags", default=(), check=rules.check_flags)
    sycl_flags: tuple[str, ...] = key("sycl-flags", default=(), check=rules.check_flags)


@dataclass(frozen=True)
class BuildConfig:
    """A whole build.toml, upgraded to edition 5."""

    general: General
    framework: Framework
    kernels: tuple[Kernel, ...] = ()
    # Where it was read from (None for a model built in memory) and the edition it was written in.
    path: Path | None = field(default=None, compare=False)
    source_edition: int = field(default=CURRENT_EDITION, compare=False)

    @property
    def root(self) -> Path:
        """The kernel directory (the folder holding build.toml)."""
        if self.path is None:
            raise ValueError("this configuration was not read from a file")
        return self.path.parent

    @property
    def python_package_dir(self) -> str:
        """Relative path of the kernel's Python package, e.g. torch-ext/relu."""
        return f"{self.framework.python_root}/{self.general.python_name}"

    def kernels_for(self, backend: str) -> tuple[Kernel, ...]:
        return tuple(k for k in self.kernels if k.backend == backend)

    def is_arch_backend(self, backend: str) -> bool:
        """True when `backend` compiles code; other listed backends become noarch variants."""
        return self.framework.kind != "torch-noarch" and any(k.backend == backend for k in self.kernels)

    @property
    def arch_backends(self) -> tuple[str, ...]:
        return tuple(b for b in self.general.backends if self.is_arch_backend(b))

    @property
    def noarch_backends(self) -> tuple[str, ...]:
        return tuple(b for b in self.general.backends if not self.is_arch_backend(b))
