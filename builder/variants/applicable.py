"""Which variants a kernel gets from a list of build sets.

1. A build set applies when its backend is listed in general.backends and it satisfies the
   kernel's bounds: [general.cuda] minver/maxver for CUDA sets, the framework's torch
   minver/maxver (compared on major.minor), and for the stable ABI a torch at least as new as
   the targeted version. TVM-FFI kernels use only sets paired with a TVM-FFI version.
2. Backends with compiled kernel sections give arch variants; listed backends without any give
   one Python-only `torch-<backend>` variant.
3. Sets that yield the same name (stable ABI, TVM-FFI, noarch) collapse into one variant built
   with the newest torch; it is required when any of its sets is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from packaging.version import Version

from ..config.model import BuildConfig
from ..standalone import naming
from .matrix import BuildSet

KINDS = ("torch", "torch-stable-abi", "tvm-ffi", "noarch")


@dataclass(frozen=True)
class Variant:
    """One output folder under build/: what it is built for and with which torch."""

    name: str
    kind: str
    backend: str
    system: str | None = None
    torch: str | None = None
    backend_version: str | None = None
    abi: str | None = None
    stable_abi: str | None = None
    tvm_ffi: str | None = None
    required: bool = False

    @property
    def compute(self) -> str:
        return naming.compute_tag(self.backend, self.backend_version)

    @property
    def is_noarch(self) -> bool:
        return self.kind == "noarch"

    def to_json(self) -> dict:
        data = asdict(self)
        data["compute"] = None if self.is_noarch else self.compute
        return data


def _major_minor(version: Version) -> Version:
    return Version(f"{version.major}.{version.minor}")


def exclusion_reason(config: BuildConfig, build_set: BuildSet) -> str | None:
    """Why `build_set` does not apply to this kernel, or None when it does."""
    general, framework = config.general, config.framework
    if build_set.backend not in general.backends:
        return f"backend {build_set.backend} is not in general.backends ({', '.join(general.backends)})"
    if build_set.backend == "cuda" and general.cuda is not None and build_set.version:
        cuda = build_set.backend_version
        if general.cuda.minver is not None and cuda < general.cuda.minver:
            return f"CUDA {cuda} is older than general.cuda.minver {general.cuda.minver}"
        if general.cuda.maxver is not None and cuda > general.cuda.maxver:
            return f"CUDA {cuda} is newer than general.cuda.maxver {general.cuda.maxver}"
    torch = _major_minor(build_set.torch_version)
    if framework.minver is not None and torch < _major_minor(framework.minver):
        return f"torch {torch} is older than {framework.kind}.minver {framework.minver}"
    if framework.maxver is not None and torch > _major_minor(framework.maxver):
        return f"torch {torch} is newer than {framework.kind}.maxver {framework.maxver}"
    if config.is_arch_backend(build_set.backend):
        if framework.kind == "tvm-ffi" and not build_set.tvm_ffi:
            return f"the torch {build_set.torch} {build_set.backend} set has no TVM-FFI version"
        target = framework.stable_abi_for(build_set.backend)
        if target is not None and torch < _major_minor(target):
            return f"torch {torch} is older than the stable-ABI target {target}"
    return None


def _variants_of_set(config: BuildConfig, build_set: BuildSet) -> list[Variant]:
    backend = build_set.backend
    common = dict(backend=backend, torch=build_set.torch, backend_version=build_set.version, required=build_set.required)
    if not config.is_arch_backend(backend):
        return [Variant(naming.noarch_variant(backend), "noarch", backend=backend, torch=build_set.torch, required=build_set.required)]
    compute = naming.compute_tag(backend, build_set.version)
    out = []
    for system in build_set.systems:
        if config.framework.kind == "tvm-ffi":
            name = naming.tvm_ffi_variant(build_set.tvm_ffi, compute, system)
            out.append(Variant(name, "tvm-ffi", system=system, tvm_ffi=build_set.tvm_ffi, **common))
            continue
        target = config.framework.stable_abi_for(backend)
        if target is not None:
            name = naming.stable_abi_variant(str(target), compute, system)
            out.append(Variant(name, "torch-stable-abi", system=system, stable_abi=str(target), **common))
            continue
        linux = system.endswith("-linux")
        for abi in build_set.abis if linux else (None,):
            name = naming.arch_variant(build_set.torch, compute, system, abi)
            out.append(Variant(name, "torch", system=system, abi=abi, **common))
    return out


def applicable_variants(config: BuildConfig, build_sets: tuple[BuildSet, ...] | list[BuildSet], *, include_optional: bool = True) -> list[Variant]:
    """The variants this kernel gets from `build_sets`, sorted by name."""
    chosen: dict[str, Variant] = {}
    for build_set in build_sets:
        if not include_optional and not build_set.required:
            continue
        if exclusion_reason(config, build_set) is not None:
            continue
        for variant in _variants_of_set(config, build_set):
            previous = chosen.get(variant.name)
            if previous is None:
                chosen[variant.name] = variant
                continue
            newest = variant if Version(variant.torch) > Version(previous.torch) else previous
            chosen[variant.name] = replace(newest, required=previous.required or variant.required)
    return sorted(chosen.values(), key=lambda v: v.name)

