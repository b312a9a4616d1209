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
