"""The local engine's matrix planner: which selected variants this machine can build, and with
which locked toolchain.

A variant is unreachable here when it is for another system, for a backend whose toolchain is
not on the Python package indexes (ROCm, XPU, Metal), for torch < 2.7 (seed-era ABI pairs) or
TVM-FFI, or when the configured indexes cannot provide its toolchain (resolution says which
artifact is missing and where it is). Resolution results, failures included, are recorded in
the kernel's lock so that a second build resolves nothing.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field, replace

from packaging.version import Version

from ..config.model import BuildConfig
from ..errors import UsageError
from ..render.project import pip_dependencies
from ..toolchains import IndexSettings, LockedToolchain, LockFile, ToolchainSpec
from ..toolchains.lock import VariantEntry
from ..toolchains.lock import build_toml_digest
from ..toolchains.spec import BUILDABLE_BACKENDS
from ..variants import BuildSet, Variant, applicable_variants

log = logging.getLogger("kernel_builder")

NOT_FROM_PYPI = {
    "rocm": "a ROCm toolchain (hipcc and a ROCm torch), which the local engine cannot make from Python packages",
    "xpu": "the oneAPI SYCL compiler and an XPU torch, which the local engine cannot make from Python packages",
    "metal": "macOS with Xcode's Metal toolchain",
    "tpu": "a TPU torch build",
    "neuron": "the Neuron SDK",
    "cann": "the Ascend CANN toolkit",
}


def running_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def machine_reason(config: BuildConfig, variant: Variant, system: str) -> str | None:
    """Why this machine cannot build `variant` at all (before any resolution), or None."""
    if variant.is_noarch:
        return None
    if variant.system != system:
        return f"must be built on an {variant.system} machine (this one is {system})"
    if variant.kind == "tvm-ffi":
        return "TVM-FFI variants are not built by the local engine yet (they need apache-tvm-ffi and its CMake support)"
    if variant.backend not in BUILDABLE_BACKENDS:
        return f"needs {NOT_FROM_PYPI.get(variant.backend, variant.backend)}"
    if variant.torch and Version(variant.torch) < Version("2.7"):
        return f"torch {variant.torch} (seed-era C++98/C++11 ABI pairs) is not built by the local engine; toolchains start at torch 2.7"
    return None


@dataclass
class MatrixJob:
    variant: Variant
    toolchain: LockedToolchain


@dataclass
class MatrixPlan:
    jobs: list[MatrixJob]
    unreachable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    resolved: int = 0  # toolchains resolved in this run (0 on a second build)


def toolchain_spec(config: BuildConfig, variant: Variant, system: str, python: str) -> ToolchainSpec:
    extras = tuple(sorted(d for d in pip_dependencies(config, (variant.backend,)) if d != "torch"))
    return ToolchainSpec(torch=variant.torch, backend=variant.backend, backend_version=variant.backend_version, python=python, system=system, extras=extras)


def check_toolchain_spec(config: BuildConfig, matrix: tuple[BuildSet, ...], system: str, python: str) -> ToolchainSpec:
    """The toolchain Python-only variants are import-checked with: the newest required torch, CPU."""
    newest = max((s.torch for s in matrix if s.required and s.backend == "cpu" and system in s.systems), key=Version, default=None)
    if newest is None:
        newest = max((s.torch for s in matrix if s.required), key=Version)
    extras = tuple(sorted(d for d in pip_dependencies(config, config.general.backends) if d != "torch"))
    return ToolchainSpec(torch=newest, backend="cpu", backend_version=None, python=python, system=system, extras=extras)


class ToolchainLocker:
    """Finds each variant's toolchain in the lock, resolving (and recording) what is missing."""

    def __init__(self, lock: LockFile, indexes: IndexSettings, *, frozen: bool = False, upgrade: bool = False):
        self.lock, self.indexes, self.frozen, self.upgrade = lock, indexes, frozen, upgrade
        self.resolved = 0
        self._resolver = None
        self._fresh: dict[str, LockedToolchain | str] = {}  # spec key -> toolchain or failure, this run

    def _resolve(self, spec: ToolchainSpec) -> LockedToolchain | str:
        if spec.key not in self._fresh:
            from ..toolchains.resolve import Resolver, Unreachable

            if self._resolver is None:
                self._resolver = Resolver(self.indexes)
            log.info("resolving the toolchain %s", spec.key)
            try:
                self._fresh[spec.key] = self._resolver.resolve(spec)
            except Unreachable as exc:
                self._fresh[spec.key] = str(exc)
            self.resolved += 1
        return self._fresh[spec.key]

    def toolchain(self, variant: Variant, spec: ToolchainSpec) -> LockedToolchain | str:
        """The locked toolchain for `variant`, or the reason there is none."""
        python = spec.python
        if not self.upgrade:
            locked = self.lock.toolchain_for(variant.name, python)
            if locked is not None and locked.spec == spec:
                return locked
            recorded = self.lock.toolchains.get(spec.key)
            if recorded is not None and recorded.spec == spec:
                self.lock.record_toolchain(variant.name, variant.required, variant.backend, recorded)
                return recorded
            reason = self.lock.unreachable_reason(variant.name, python, self.indexes.fingerprint)
            if reason is not None:
                return reason
        if self.frozen:
            return f"no toolchain for Python {python} in {self.lock.path.name}, and --frozen forbids resolving one"
        result = self._resolve(spec)
        if isinstance(result, LockedToolchain):
            self.lock.record_toolchain(variant.name, variant.required, variant.backend, result)
        else:
            self.lock.record_unreachable(variant.name, variant.required, variant.backend, python, result, self.indexes.fingerprint)
        return result


def plan_matrix(config: BuildConfig, variants: list[Variant], matrix: tuple[BuildSet, ...], locker: ToolchainLocker, *, system: str,
                python: str | None = None) -> MatrixPlan:
    """Jobs for the selected `variants` this machine can build; the rest with their reasons."""
    python = python or running_python()
    plan = MatrixPlan(jobs=[])
    lock = locker.lock
    lock.build_toml_sha256 = build_toml_digest(config.root)
    # The lock lists every variant the kernel gets (so Nix and other machines see the whole set).
    every = applicable_variants(config, matrix, include_optional=True)
    lock.forget_variants_except({v.name for v in every})
    for variant in every:  # also those no toolchain is resolved for here (other systems, ROCm, ...)
        entry = lock.variants.get(variant.name)
        lock.variants[variant.name] = replace(entry, required=variant.required, backend=variant.backend) if entry else VariantEntry(variant.required, variant.backend)
    check_spec = None
    for variant in variants:
        reason = machine_reason(config, variant, system)
        if reason is not None:
            plan.unreachable[variant.name] = reason
            continue
        if variant.is_noarch:
            check_spec = check_spec or check_toolchain_spec(config, matrix, system, python)
            spec = check_spec
        else:
            spec = toolchain_spec(config, variant, system, python)
        result = locker.toolchain(variant, spec)
        if isinstance(result, str):
            plan.unreachable[variant.name] = result
            continue
        plan.notes += [n for n in result.notes if n not in plan.notes]
        plan.jobs.append(MatrixJob(variant, result))
    plan.resolved = locker.resolved
    return plan


def require_buildable(plan: MatrixPlan, explicit: bool) -> None:
    """An explicitly named variant that cannot be built is an error (exit 2), with its reason."""
    if explicit and plan.unreachable:
        lines = [f"{name}: {reason}" for name, reason in sorted(plan.unreachable.items())]
        raise UsageError("cannot build the requested variants on this machine:\n  " + "\n  ".join(lines))
