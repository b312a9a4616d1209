"""What the build machine offers: the chosen Python with its torch, and the CUDA toolkit."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import UsageError
from ..standalone import naming
from ..standalone.archs import parse_nvcc_arch_list
from ..standalone.probe import torch_backends


@dataclass(frozen=True)
class TorchInstall:
    version: str  # full, e.g. 2.11.0+cu130
    short: str  # major.minor
    cuda: str | None
    hip: str | None
    cxx11_abi: bool
    dir: Path
    backends: tuple[tuple[str, str | None], ...]  # (backend, backend version)

    @property
    def abi(self) -> str:
        return "cxx11" if self.cxx11_abi else "cxx98"


@dataclass(frozen=True)
class CudaToolkit:
    root: Path
    nvcc: Path
    version: str  # major.minor
    known_archs: tuple[str, ...]


@dataclass(frozen=True)
class Host:
    python: Path
    python_version: str
    system: str  # e.g. x86_64-linux
    torch: TorchInstall | None
    nvidia_include_dirs: tuple[str, ...] = ()
    cuda: CudaToolkit | None = None
    cuda_problem: str | None = None  # why no usable toolkit was found
    modules: dict[str, bool] = field(default_factory=dict)  # importable top-level modules
    cmake: str = "cmake"
    ninja: str | None = None  # None: CMake finds ninja on PATH
    toolchain: str | None = None  # the locked toolchain's key, for a hermetic toolchain environment
    toolchain_dirs: tuple[str, ...] = ()  # put first on PATH for the build tools (toolchain bin folders)

    @property
    def hermetic(self) -> bool:
        """True for a toolchain environment: the host's CUDA_HOME and PATH toolkits are ignored."""
        return self.toolchain is not None


def probe_python(python: Path) -> dict:
    """Run the stdlib-only probe in `python` (it need not be the interpreter running us)."""
    script = resources.files("kernel_builder.standalone").joinpath("probe.py")
    with resources.as_file(script) as path:
        try:
            result = subprocess.run([str(python), str(path)], capture_output=True, text=True, timeout=120)
        except OSError as exc:
            raise UsageError(f"cannot run Python {python}: {exc}") from None
    if result.returncode != 0:
        raise UsageError(f"cannot inspect Python {python}:\n{result.stderr.strip()}")
    return json.loads(result.stdout)


def find_modules(python: Path, names: list[str]) -> dict[str, bool]:
    """Which of these top-level modules `python` can find (without importing them)."""
    code = "import importlib.util, json, sys; print(json.dumps({n: importlib.util.find_spec(n) is not None for n in sys.argv[1:]}))"
    result = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, timeout=60)
    return json.loads(result.stdout) if result.returncode == 0 else {n: False for n in names}


def _nvcc_candidates() -> list[Path]:
    found = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            found.append(Path(os.environ[var]) / "bin" / "nvcc")
    on_path = shutil.which("nvcc")
    if on_path:
        found.append(Path(on_path))
    return found


def find_cuda_toolkit() -> tuple[CudaToolkit | None, str | None]:
    """The CUDA toolkit from CUDA_HOME (or CUDA_PATH), else `nvcc` on PATH."""
    candidates = _nvcc_candidates()
    if not candidates:
        return None, "no CUDA toolkit found: set CUDA_HOME or put nvcc on PATH"
    nvcc = candidates[0]
    if not nvcc.is_file():
        return None, f"{nvcc} does not exist (from CUDA_HOME)"
    try:
        version_out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60).stdout
        archs_out = subprocess.run([str(nvcc), "--list-gpu-arch"], capture_output=True, text=True, timeout=60).stdout
    except OSError as exc:
        return None, f"cannot run {nvcc}: {exc}"
    match = re.search(r"release (\d+)\.(\d+)", version_out)
    if not match:
        return None, f"cannot read the version of {nvcc}"
    nvcc = nvcc.resolve()
    return CudaToolkit(root=nvcc.parent.parent, nvcc=nvcc, version=f"{match.group(1)}.{match.group(2)}", known_archs=tuple(parse_nvcc_arch_list(archs_out))), None


def _torch_install(torch_info: dict | None) -> TorchInstall | None:
    if not torch_info:
        return None
    return TorchInstall(
        version=torch_info["version"],
        short=torch_info["short"],
        cuda=torch_info["cuda"],
        hip=torch_info["hip"],
        cxx11_abi=torch_info["cxx11_abi"],
        dir=Path(torch_info["dir"]),
        backends=tuple(tuple(b) for b in torch_backends(torch_info)),
    )


def this_system() -> str:
    """The system this process runs on, e.g. x86_64-linux."""
    import platform

    return naming.host_system(platform.machine(), platform.system())


def host_from_environment(env) -> Host:
    """The build host of a toolchain environment (from its stamp: no subprocess)."""
    info = env.probe
    cuda = None
    if env.nvcc is not None:
        cuda = CudaToolkit(root=env.cuda_root, nvcc=env.nvcc, version=env.cuda_version, known_archs=env.cuda_known_archs)
    dirs = [str(env.python.parent)] + ([str(env.nvcc.parent)] if env.nvcc is not None else [])
    return Host(
        python=env.python,
        python_version=info["python"]["version"],
        system=naming.host_system(info["platform"]["machine"], info["platform"]["system"]),
        torch=_torch_install(info["torch"]),
        nvidia_include_dirs=tuple(info["nvidia"]["include_dirs"]),
        cuda=cuda,
        cuda_problem=None if cuda else "the toolchain has no CUDA toolkit",
        modules={"kernels": True, "tvm_ffi": False, "triton": False},
        cmake=str(env.cmake),
        ninja=str(env.ninja),
        toolchain=env.key,
        toolchain_dirs=tuple(dirs),
    )


def detect_host(python: Path | None = None, *, need_cuda: bool = True) -> Host:
    """Probe `python` (default: this interpreter) and, for a CUDA torch, the CUDA toolkit."""
    python = Path(python or sys.executable)
    info = probe_python(python)
    torch = _torch_install(info["torch"])
    system = naming.host_system(info["platform"]["machine"], info["platform"]["system"])
    cuda, problem = (None, None)
    if need_cuda and torch is not None and torch.cuda:
        cuda, problem = find_cuda_toolkit()
    return Host(
        python=python,
        python_version=info["python"]["version"],
        system=system,
        torch=torch,
        nvidia_include_dirs=tuple(info["nvidia"]["include_dirs"]),
        cuda=cuda,
        cuda_problem=problem,
        modules=find_modules(python, ["kernels", "tvm_ffi", "triton"]),
    )
