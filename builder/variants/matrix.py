"""The variant matrix: build sets read from nix/build-matrix.json (the file Nix reads too)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from packaging.version import Version

from ..errors import UsageError

MATRIX_RESOURCE = ("kernel_builder.nix", "build-matrix.json")
SET_KEYS = {"torch", "backend", "version", "systems", "required", "abis", "tvmFfi", "note"}
VERSIONED_BACKENDS = ("cuda", "rocm", "xpu")


@dataclass(frozen=True)
class BuildSet:
    """One torch release × one compute backend (and its version) on some systems."""

    torch: str
    backend: str
    version: str | None = None
    systems: tuple[str, ...] = ("x86_64-linux",)
    required: bool = False
    abis: tuple[str, ...] = ("cxx11",)
    tvm_ffi: str | None = None

    @property
    def torch_version(self) -> Version:
        return Version(self.torch)

    @property
    def backend_version(self) -> Version | None:
        return Version(self.version) if self.version else None


def parse_matrix(data: dict, source: str = "build-matrix.json") -> tuple[BuildSet, ...]:
    """Build sets from the decoded matrix document; a malformed entry is a UsageError."""
    from ..config.model import GENERAL_BACKENDS

    sets = []
    for i, entry in enumerate(data.get("buildSets", [])):
        where = f"{source}: buildSets[{i}]"
        unknown = set(entry) - SET_KEYS
        if unknown:
            raise UsageError(f"{where}: unknown keys {sorted(unknown)}")
        if entry.get("backend") not in GENERAL_BACKENDS:
            raise UsageError(f"{where}: unknown backend {entry.get('backend')!r}")
        if entry["backend"] in VERSIONED_BACKENDS and not entry.get("version"):
            raise UsageError(f"{where}: a {entry['backend']} set needs a version")
        sets.append(
            BuildSet(
                torch=str(entry["torch"]),
                backend=entry["backend"],
                version=entry.get("version"),
                systems=tuple(entry.get("systems", ["x86_64-linux"])),
                required=bool(entry.get("required", False)),
                abis=tuple(entry.get("abis", ["cxx11"])),
                tvm_ffi=entry.get("tvmFfi"),
            )
        )
    return tuple(sets)


@cache
def _default_matrix() -> tuple[BuildSet, ...]:
    text = resources.files(MATRIX_RESOURCE[0]).joinpath(MATRIX_RESOURCE[1]).read_text()
    return parse_matrix(json.loads(text))


def load_matrix(path: Path | None = None) -> tuple[BuildSet, ...]:
    """The build sets of `path`, or of the matrix shipped with kernel-builder."""
    if path is None:
        return _default_matrix()
    return parse_matrix(json.loads(Path(path).read_text()), str(path))
