"""Resolve a toolchain spec into exact artifacts with uv (`uv pip compile --format pylock.toml`).

1. Pick the torch wheel: the newest patch release of the spec's torch that is built for its
   compute backend. For CUDA the wheel's CUDA version is read from its dependencies (the
   `cuda-toolkit` pin of torch >= 2.11, else the `nvidia-cuda-runtime` pin) and must match.
   For CPU a `+cpu` build is preferred; where the indexes hold none, the CUDA wheel of the same
   release is used (its CPU headers and libraries are the same; docs/matrix.md has the
   evidence), and the lock says so in `notes`.
2. Resolve torch with its runtime dependencies, the CUDA toolkit wheels of the exact
   `cuda-toolkit` release torch was built with (nvcc, cudart, cccl, crt, nvvm, culibos; the
   library headers torch's CUDA headers include come with torch's own dependencies), CMake,
   Ninja, and what the import check loads with (`kernels`, numpy, the kernel's python-depends).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import urllib.parse
from pathlib import Path

from packaging.version import InvalidVersion, Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import KernelBuilderError
from .indexes import IndexSettings, where_torch_is
from .lock import Artifact, LockedToolchain
from .spec import BUILDABLE_BACKENDS, ToolchainSpec, python_platform
from .uv import UvError, run_uv

log = logging.getLogger("kernel_builder")

TOOL_REQUIREMENTS = ("cmake>=3.26,<5", "ninja>=1.11")
# The import check loads each variant with the real loader, in the variant's own environment.
CHECK_REQUIREMENTS = ("kernels==0.17.2", "numpy")
CUDA_EXTRAS = ("nvcc", "cudart", "cccl", "crt", "nvvm", "culibos")
CUDA_PACKAGES = ("cuda-toolkit", "nvidia-cuda-nvcc", "nvidia-cuda-runtime", "nvidia-cuda-cccl", "nvidia-cuda-crt", "nvidia-nvvm", "nvidia-cuda-culibos")


class Unreachable(KernelBuilderError):
    """The configured indexes cannot provide this toolchain; the message says what is missing and where it is."""


def _pylock_packages(path: Path) -> list[dict]:
    with open(path, "rb") as handle:
        return list(tomllib.load(handle).get("packages", []))


def _find(packages: list[dict], name: str) -> dict | None:
    return next((p for p in packages if p["name"] == name), None)


def _major_minor(version: str) -> str:
    release = Version(version).release
    return f"{release[0]}.{release[1] if len(release) > 1 else 0}"


def torch_cuda_version(packages: list[dict]) -> tuple[str | None, str | None]:
    """(CUDA major.minor, cuda-toolkit release) of the torch wheel in a resolution; (None, None) for a CPU wheel."""
    toolkit = _find(packages, "cuda-toolkit")
    if toolkit is not None:
        return _major_minor(toolkit["version"]), toolkit["version"]
    for name in ("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu11"):
        runtime = _find(packages, name)
        if runtime is not None:
            return _major_minor(runtime["version"]), None
    return None, None


class Resolver:
    """Turns specs into locked toolchains, looking only where `indexes` says."""

    def __init__(self, indexes: IndexSettings):
        self.indexes = indexes

    def compile(self, requirements: list[str], spec: ToolchainSpec) -> list[dict]:
        """`uv pip compile` for the spec's Python and platform; the resolved packages."""
        with tempfile.TemporaryDirectory(prefix="kb-resolve-") as tmp:
            source, output = Path(tmp) / "requirements.in", Path(tmp) / "pylock.toml"
            source.write_text("\n".join(requirements) + "\n")
            run_uv(["pip", "compile", str(source), "-o", str(output), "--no-header", "--quiet", "--python-version", spec.python,
                    "--python-platform", python_platform(spec.system), *self.indexes.uv_arguments(spec.compute)], cwd=Path(tmp))
            return _pylock_packages(output)

    def _try(self, requirements: list[str], spec: ToolchainSpec) -> list[dict] | None:
        try:
            return self.compile(requirements, spec)
        except UvError as exc:
            log.debug("no resolution for %s: %s", requirements, str(exc).splitlines()[-1] if str(exc) else "")
            return None

    # -- step 1: the torch wheel
    def _torch_for_cuda(self, spec: ToolchainSpec) -> tuple[str, str | None]:
        excluded: list[str] = []
        for _ in range(4):
            packages = self._try([f"torch=={spec.torch}.*", *(f"torch!={v}" for v in excluded)], spec)
            if packages is None:
                break
            version = _find(packages, "torch")["version"]
            cuda, toolkit = torch_cuda_version(packages)
            if cuda is None:  # a CPU build sorts above the plain release (2.13.0+cpu > 2.13.0)
                excluded.append(version)
                continue
            if cuda != spec.backend_version:
                raise Unreachable(f"{spec.describe()} is not on the configured indexes ({self.indexes.describe()}): they offer torch {version}, "
                                  f"built for CUDA {cuda}; {where_torch_is(spec.torch, spec.compute)}")
            return version, toolkit
        raise Unreachable(f"{spec.describe()}: no torch {spec.torch} wheel for Python {spec.python} on the configured indexes "
                          f"({self.indexes.describe()}); {where_torch_is(spec.torch, spec.compute)}")

    def _torch_for_cpu(self, spec: ToolchainSpec) -> tuple[str, str | None, list[str]]:
        packages = self._try([f"torch=={spec.torch}.*"], spec)
        if packages is None:
            raise Unreachable(f"{spec.describe()}: no torch {spec.torch} wheel for Python {spec.python} on the configured indexes "
                              f"({self.indexes.describe()}); {where_torch_is(spec.torch, 'cpu')}")
        version = _find(packages, "torch")["version"]
        cuda, _ = torch_cuda_version(packages)
        if cuda is None:
            return version, None, []
        release = Version(version).release
        for patch in range(release[2] if len(release) > 2 else 0, -1, -1):
            candidate = f"{release[0]}.{release[1]}.{patch}+cpu"
            if self._try([f"torch=={candidate}"], spec) is not None:
                return candidate, None, []
        note = (f"no CPU build of torch {spec.torch} on the configured indexes ({self.indexes.describe()}); the CPU variant is built "
                f"against torch {version} (a CUDA {cuda} build: same CPU headers and libraries, see docs/matrix.md). "
                f"For the CPU wheel itself: {where_torch_is(spec.torch, 'cpu')}")
        return version, "cuda", [note]

    # -- step 2: everything
    def resolve(self, spec: ToolchainSpec) -> LockedToolchain:
        """The exact artifacts of `spec`; raises Unreachable naming what is missing and where it is."""
        if spec.backend not in BUILDABLE_BACKENDS:
            raise Unreachable(f"{spec.describe()}: toolchains from Python packages exist for {', '.join(BUILDABLE_BACKENDS)} only")
        notes: list[str] = []
        torch_backend = None
        if spec.backend == "cuda":
            torch_version, toolkit = self._torch_for_cuda(spec)
            extras = ",".join(CUDA_EXTRAS)
            cuda_requirement = f"cuda-toolkit[{extras}]=={toolkit}" if toolkit else f"cuda-toolkit[{extras}]=={spec.backend_version}.*"
            requirements = [f"torch=={torch_version}", cuda_requirement]
        else:
            torch_version, torch_backend, notes = self._torch_for_cpu(spec)
            requirements = [f"torch=={torch_version}"]
        requirements += [*TOOL_REQUIREMENTS, *CHECK_REQUIREMENTS, *spec.extras]
        packages = self._resolve_exactly(requirements, torch_version, spec)
        _, toolkit_release = torch_cuda_version(packages)
        artifacts = tuple(_artifact(p, spec) for p in packages)
        return LockedToolchain(spec=spec, torch_version=torch_version, artifacts=artifacts, cuda_toolkit=toolkit_release if spec.backend == "cuda" else None,
                               torch_backend=torch_backend, notes=tuple(notes), indexes=self.indexes.to_json())


    def _resolve_exactly(self, requirements: list[str], torch_version: str, spec: ToolchainSpec) -> list[dict]:
        """Resolve `requirements`, keeping the torch build chosen in step 1.

        `torch==2.13.0` also matches `2.13.0+cpu` (PEP 440 ignores local labels the specifier
        does not name), so other local builds the resolver prefers are excluded one by one.
        """
        excluded: list[str] = []
        for _ in range(4):
            try:
                packages = self.compile(requirements + [f"torch!={v}" for v in excluded], spec)
            except UvError as exc:
                raise Unreachable(f"{spec.describe()}: the toolchain does not resolve on the configured indexes ({self.indexes.describe()}):\n    "
                                  + str(exc).replace("\n", "\n    ")) from None
            chosen = _find(packages, "torch")["version"]
            if Version(chosen) == Version(torch_version):
                return packages
            excluded.append(chosen)
        raise Unreachable(f"{spec.describe()}: the resolver keeps choosing another torch build than {torch_version} ({', '.join(excluded)})")


def _role(name: str) -> str:
    if name == "torch":
        return "torch"
    if name in ("cmake", "ninja"):
        return "tool"
    if name in ("kernels", "numpy"):
        return "check"
    if any(name == p or name.startswith(p + "-cu") for p in CUDA_PACKAGES):
        return "cuda"
    return "runtime"


def _artifact(package: dict, spec: ToolchainSpec) -> Artifact:
    wheels = package.get("wheels") or []
    if not wheels:
        raise Unreachable(f"{spec.describe()}: {package['name']} {package.get('version')} has no wheel for {python_platform(spec.system)} "
                          "(toolchains are installed from wheels only)")
    wheel = wheels[0]
    url = wheel.get("url") or Path(wheel["path"]).resolve().as_uri()
    filename = wheel.get("name") or urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0])
    size = wheel.get("size")
    if size is None and url.startswith("file://"):
        local = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
        size = local.stat().st_size if local.is_file() else None
    try:
        version = str(Version(str(package["version"])))
    except InvalidVersion:
        version = str(package["version"])
    return Artifact(name=package["name"], version=version, filename=filename, url=url, sha256=wheel["hashes"]["sha256"], size=size, role=_role(package["name"]))
