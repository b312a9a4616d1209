"""What a variant needs from its toolchain, independent of where the files come from."""

from __future__ import annotations

from dataclasses import dataclass

from ..standalone import naming

# Compute backends the local engine can build on Linux from Python-index packages.
BUILDABLE_BACKENDS = ("cpu", "cuda")


@dataclass(frozen=True)
class ToolchainSpec:
    """One torch release × compute backend × Python × system (+ the kernel's Python deps).

    Two variants with the same spec share one toolchain environment: a stable-ABI variant and
    a regular one of the same torch, or (where no CPU wheel exists) a CPU variant and the CUDA
    variant whose wheel it is built with.
    """

    torch: str  # major.minor, as in the matrix ("2.13")
    backend: str  # "cpu" | "cuda"
    backend_version: str | None  # "13.0" for CUDA, None for CPU
    python: str  # "3.11"
    system: str  # "x86_64-linux"
    extras: tuple[str, ...] = ()  # pip names of the kernel's python-depends (for the import check)

    @property
    def compute(self) -> str:
        return naming.compute_tag(self.backend, self.backend_version)

    @property
    def key(self) -> str:
        """The name of this toolchain in lock files, e.g. `torch2.13-cu130-py3.11-x86_64-linux`."""
        key = f"torch{self.torch}-{self.compute}-py{self.python}-{self.system}"
        return key + "".join(f"+{extra}" for extra in self.extras)

    def describe(self) -> str:
        backend = "CPU" if self.backend == "cpu" else f"{self.backend.upper()} {self.backend_version}"
        return f"torch {self.torch} for {backend} (Python {self.python}, {self.system})"

    def to_json(self) -> dict:
        return {
            "torch": self.torch,
            "backend": self.backend,
            "backend-version": self.backend_version,
            "python": self.python,
            "system": self.system,
            "extras": list(self.extras),
        }

    @classmethod
    def from_json(cls, data: dict) -> "ToolchainSpec":
        return cls(
            torch=str(data["torch"]),
            backend=str(data["backend"]),
            backend_version=data.get("backend-version"),
            python=str(data["python"]),
            system=str(data["system"]),
            extras=tuple(data.get("extras", ())),
        )


def python_platform(system: str) -> str:
    """uv's `--python-platform` for a Nix-style system (wheels for that platform only)."""
    cpu, os_name = naming.split_system(system)
    if os_name != "linux":
        raise ValueError(f"toolchains from Python packages are only made for Linux, not {system}")
    # torch's Linux wheels are manylinux_2_28; older tags are compatible with this target.
    return f"{cpu}-manylinux_2_28"
