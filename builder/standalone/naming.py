"""Build-variant names, as the `kernels` loader parses them.

  torch<MM>-cxx11-<compute>-<cpu>-linux          regular torch ABI on Linux (cxx98 for old sets)
  torch<MM>-<compute>-<cpu>-<os>                 macOS and Windows (no C++ ABI tag)
  torch-stable-abi<MM>-<compute>-<cpu>-<os>      torch stable ABI, MM = the targeted version
  tvm-ffi<MM>-<compute>-<cpu>-<os>               TVM-FFI extensions
  torch-<backend>                                Python-only (noarch) variants

Standard library only: this file is copied into generated build trees.
"""

from __future__ import annotations

CPU_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
OS_ALIASES = {"linux": "linux", "darwin": "darwin", "windows": "windows"}


def flat_version(version: str) -> str:
    """'2.13' -> '213', '13.0' -> '130', '13' -> '130' (a single component is padded with 0)."""
    parts = str(version).split(".")
    if len(parts) == 1:
        parts.append("0")
    return parts[0] + parts[1]


def compute_tag(backend: str, version: str | None) -> str:
    """The compute part of a name: cu130, rocm71, xpu20253, or the backend name (cpu, metal)."""
    if backend == "cuda":
        return "cu" + flat_version(version or "")
    if backend == "rocm":
        return "rocm" + flat_version(version or "")
    if backend == "xpu":
        return "xpu" + flat_version(version or "")
    return backend


def split_system(system: str) -> tuple[str, str]:
    """'x86_64-linux' -> ('x86_64', 'linux'), normalising CPU and OS spellings."""
    cpu, _, os_name = system.partition("-")
    cpu = CPU_ALIASES.get(cpu.lower())
    os_name = OS_ALIASES.get(os_name.lower())
    if cpu is None or os_name is None:
        raise ValueError(f"unsupported system {system!r}: expected <x86_64|aarch64>-<linux|darwin|windows>")
    return cpu, os_name


def arch_variant(torch: str, compute: str, system: str, abi: str | None = "cxx11") -> str:
    """Name of a regular-ABI torch variant."""
    cpu, os_name = split_system(system)
    tag = f"torch{flat_version(torch)}"
    if os_name == "linux":
        return f"{tag}-{abi or 'cxx11'}-{compute}-{cpu}-{os_name}"
    return f"{tag}-{compute}-{cpu}-{os_name}"


def stable_abi_variant(target: str, compute: str, system: str) -> str:
    cpu, os_name = split_system(system)
    return f"torch-stable-abi{flat_version(target)}-{compute}-{cpu}-{os_name}"


def tvm_ffi_variant(tvm_ffi: str, compute: str, system: str) -> str:
    cpu, os_name = split_system(system)
    return f"tvm-ffi{flat_version(tvm_ffi)}-{compute}-{cpu}-{os_name}"


def noarch_variant(backend: str) -> str:
    return f"torch-{backend}"


def host_system(machine: str, platform_system: str) -> str:
    """The system string for `platform.machine()` / `platform.system()` values."""
    cpu = CPU_ALIASES.get(machine.lower())
    os_name = OS_ALIASES.get(platform_system.lower())
    if cpu is None or os_name is None:
        raise ValueError(f"unsupported host {machine}-{platform_system}")
    return f"{cpu}-{os_name}"


_COMPUTE_BACKENDS = (("cu", "cuda"), ("rocm", "rocm"), ("xpu", "xpu"), ("cann", "cann"))


def _backend_of_compute(compute: str) -> str | None:
    if compute in ("cpu", "metal", "tpu", "neuron"):
        return compute
    for prefix, backend in _COMPUTE_BACKENDS:
        if compute.startswith(prefix) and compute[len(prefix):].isdigit():
            return backend
    return None


def parse_variant(name: str) -> dict | None:
    """Split a variant name into {kind, backend, compute, system?}; None if it is not one."""
    parts = name.split("-")
    if len(parts) == 2 and parts[0] == "torch" and parts[1] in ("cpu", "cuda", "metal", "rocm", "xpu", "tpu", "neuron", "cann", "universal"):
        return {"kind": "noarch", "backend": parts[1], "compute": None, "system": None}
    if parts[:2] == ["torch", "stable"] and len(parts) == 6 and parts[2].startswith("abi"):
        kind, compute, rest = "torch-stable-abi", parts[3], parts[4:]
    elif parts[0].startswith("tvm") and len(parts) == 5 and parts[1].startswith("ffi"):
        kind, compute, rest = "tvm-ffi", parts[2], parts[3:]
    elif parts[0].startswith("torch") and parts[0][5:].isdigit() and len(parts) in (4, 5):
        kind = "torch"
        if len(parts) == 5:
            if parts[1] not in ("cxx11", "cxx98"):
                return None
            compute, rest = parts[2], parts[3:]
        else:
            compute, rest = parts[1], parts[2:]
    else:
        return None
    backend = _backend_of_compute(compute)
    if backend is None or rest[0] not in CPU_ALIASES.values() or rest[1] not in OS_ALIASES.values():
        return None
    return {"kind": kind, "backend": backend, "compute": compute, "system": f"{rest[0]}-{rest[1]}"}
