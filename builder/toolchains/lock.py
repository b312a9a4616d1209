"""The toolchain lock: `kernel-builder.lock.json` in the kernel directory.

Resolved once (by `kernel-builder lock`, or by the first `build` that needs a toolchain), read
by every later build, by other machines and by the Nix engine, which turns each artifact into a
fixed-output fetch. Commit it, like flake.lock or uv.lock.

    {
      "lock-version": 1,
      "generated-by": "kernel-builder 0.2.0",
      "build-toml-sha256": "...",          # the build.toml the variants below were computed from
      "variants": {                         # every variant the matrix gives this kernel
        "torch213-cxx11-cu130-x86_64-linux": {
          "required": true, "backend": "cuda",
          "toolchains": {"3.11": "torch2.13-cu130-py3.11-x86_64-linux"},   # per Python version
          "unreachable": {"3.11": "why this machine's indexes have no toolchain"}   # instead
        }
      },
      "toolchains": {
        "torch2.13-cu130-py3.11-x86_64-linux": {
          "spec": {"torch": "2.13", "backend": "cuda", "backend-version": "13.0", ...},
          "torch-version": "2.13.0", "cuda-toolkit": "13.0.3",
          "indexes": {...}, "notes": [...],
          "artifacts": [{"name": "torch", "version": "2.13.0", "filename": "...whl",
                         "url": "https://...", "sha256": "...", "size": 526574961, "role": "torch"}, ...]
        }
      }
    }

A toolchain's hash (the name of its cached environment) covers its spec and every artifact's
sha256, so a changed lock entry never reuses an environment made from another.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from .spec import ToolchainSpec

LOCK_NAME = "kernel-builder.lock.json"
LOCK_VERSION = 1
ROLES = ("torch", "cuda", "tool", "check", "runtime")


@dataclass(frozen=True)
class Artifact:
    """One wheel of a toolchain, pinned by content."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str
    size: int | None = None
    role: str = "runtime"  # torch | cuda (toolkit) | tool (cmake, ninja) | check (import check) | runtime

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "filename": self.filename, "url": self.url, "sha256": self.sha256, "size": self.size, "role": self.role}

    @classmethod
    def from_json(cls, data: dict) -> "Artifact":
        return cls(name=data["name"], version=data["version"], filename=data["filename"], url=data["url"], sha256=data["sha256"], size=data.get("size"),
                   role=data.get("role", "runtime"))


@dataclass(frozen=True)
class LockedToolchain:
    """A resolved toolchain: exactly which files make it."""

    spec: ToolchainSpec
    torch_version: str  # the full torch version, e.g. 2.13.0+cpu
    artifacts: tuple[Artifact, ...]
    cuda_toolkit: str | None = None  # the cuda-toolkit release, e.g. 13.0.3
    torch_backend: str | None = None  # what the torch wheel was built for, when it differs (a CPU variant from a CUDA wheel)
    notes: tuple[str, ...] = ()
    indexes: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def hash(self) -> str:
        """Content hash: spec + every artifact's sha256 (names the cached environment)."""
        payload = {"spec": self.spec.to_json(), "artifacts": sorted(a.sha256 for a in self.artifacts)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    @property
    def download_size(self) -> int:
        return sum(a.size or 0 for a in self.artifacts)

    def to_json(self) -> dict:
        data = {"spec": self.spec.to_json(), "torch-version": self.torch_version, "cuda-toolkit": self.cuda_toolkit}
        if self.torch_backend:
            data["torch-backend"] = self.torch_backend
        data.update({"notes": list(self.notes), "indexes": self.indexes, "hash": self.hash, "artifacts": [a.to_json() for a in self.artifacts]})
        return data

    @classmethod
    def from_json(cls, data: dict) -> "LockedToolchain":
        return cls(
            spec=ToolchainSpec.from_json(data["spec"]),
            torch_version=data["torch-version"],
            artifacts=tuple(Artifact.from_json(a) for a in data["artifacts"]),
            cuda_toolkit=data.get("cuda-toolkit"),
            torch_backend=data.get("torch-backend"),
            notes=tuple(data.get("notes", ())),
            indexes=dict(data.get("indexes", {})),
        )


@dataclass(frozen=True)
class VariantEntry:
    """What the lock says about one variant of the kernel."""

    required: bool
    backend: str
    toolchains: dict[str, str] = field(default_factory=dict)  # Python version -> toolchain key
    unreachable: dict[str, str] = field(default_factory=dict)  # Python version -> reason
    indexes: dict[str, str] = field(default_factory=dict)  # Python version -> index fingerprint of an unreachable result

    def to_json(self) -> dict:
        data: dict = {"required": self.required, "backend": self.backend, "toolchains": dict(sorted(self.toolchains.items()))}
        if self.unreachable:
            data["unreachable"] = dict(sorted(self.unreachable.items()))
            data["indexes"] = dict(sorted(self.indexes.items()))
        return data

    @classmethod
    def from_json(cls, data: dict) -> "VariantEntry":
        return cls(required=bool(data.get("required")), backend=str(data.get("backend", "")), toolchains=dict(data.get("toolchains", {})),
                   unreachable=dict(data.get("unreachable", {})), indexes=dict(data.get("indexes", {})))


class LockFile:
    """The lock of one kernel; changed in memory, written atomically by `save()`."""

    def __init__(self, path: Path, *, variants: dict[str, VariantEntry] | None = None, toolchains: dict[str, LockedToolchain] | None = None,
                 build_toml_sha256: str | None = None):
        self.path = Path(path)
        self.variants: dict[str, VariantEntry] = dict(variants or {})
        self.toolchains: dict[str, LockedToolchain] = dict(toolchains or {})
        self.build_toml_sha256 = build_toml_sha256
        self._saved = self._serialise()

    @classmethod
    def load(cls, kernel_dir: Path) -> "LockFile":
        """The kernel's lock (an empty one when the file does not exist yet)."""
        path = Path(kernel_dir) / LOCK_NAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the toolchain lock: {exc}") from None
        try:
            data = json.loads(text)
            if data.get("lock-version") != LOCK_VERSION:
                raise ValueError(f"lock-version {data.get('lock-version')!r} is not {LOCK_VERSION}; delete the file to resolve again")
            lock = cls(
                path,
                variants={k: VariantEntry.from_json(v) for k, v in data.get("variants", {}).items()},
                toolchains={k: LockedToolchain.from_json(v) for k, v in data.get("toolchains", {}).items()},
                build_toml_sha256=data.get("build-toml-sha256"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{path}: not a valid kernel-builder lock ({exc}); delete it or run `kernel-builder lock --upgrade`") from None
        for key, toolchain in lock.toolchains.items():
            if toolchain.key != key:
                raise UsageError(f"{path}: toolchains.{key}: its spec names {toolchain.key}; the lock was edited by hand")
        lock._saved = lock._serialise()
        return lock

    def _serialise(self) -> str:
        data = {
            "lock-version": LOCK_VERSION,
            "generated-by": f"kernel-builder {__version__}",
            "build-toml-sha256": self.build_toml_sha256,
            "variants": {name: entry.to_json() for name, entry in sorted(self.variants.items())},
            "toolchains": {key: tc.to_json() for key, tc in sorted(self.toolchains.items())},
        }
        return json.dumps(data, indent=2) + "\n"

    @property
    def changed(self) -> bool:
        return self._serialise() != self._saved

    def save(self) -> bool:
        """Write the lock if it changed (atomically); True when written."""
        text = self._serialise()
        if text == self._saved:
            return False
        fd, tmp = tempfile.mkstemp(prefix=f".{LOCK_NAME}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._saved = text
        return True

    # -- queries and updates
    def toolchain_for(self, variant: str, python: str) -> LockedToolchain | None:
        entry = self.variants.get(variant)
        key = entry.toolchains.get(python) if entry else None
        return self.toolchains.get(key) if key else None

    def record_toolchain(self, variant: str, required: bool, backend: str, toolchain: LockedToolchain) -> None:
        self.toolchains[toolchain.key] = toolchain
        entry = self.variants.get(variant, VariantEntry(required, backend))
        self.variants[variant] = replace(entry, required=required, backend=backend, toolchains={**entry.toolchains, toolchain.spec.python: toolchain.key},
                                         unreachable={k: v for k, v in entry.unreachable.items() if k != toolchain.spec.python},
                                         indexes={k: v for k, v in entry.indexes.items() if k != toolchain.spec.python})

    def record_unreachable(self, variant: str, required: bool, backend: str, python: str, reason: str, fingerprint: str) -> None:
        entry = self.variants.get(variant, VariantEntry(required, backend))
        self.variants[variant] = replace(entry, required=required, backend=backend, toolchains={k: v for k, v in entry.toolchains.items() if k != python},
                                         unreachable={**entry.unreachable, python: reason}, indexes={**entry.indexes, python: fingerprint})

    def unreachable_reason(self, variant: str, python: str, fingerprint: str) -> str | None:
        """A recorded resolution failure, if it was made with the same indexes."""
        entry = self.variants.get(variant)
        if entry and python in entry.unreachable and entry.indexes.get(python) == fingerprint:
            return entry.unreachable[python]
        return None

    def forget_variants_except(self, names: set[str]) -> None:
        """Drop variants the kernel no longer gets, and toolchains nothing refers to."""
        self.variants = {n: e for n, e in self.variants.items() if n in names}
        used = {key for e in self.variants.values() for key in e.toolchains.values()}
        self.toolchains = {k: t for k, t in self.toolchains.items() if k in used}


def build_toml_digest(kernel_dir: Path) -> str:
    return hashlib.sha256((Path(kernel_dir) / "build.toml").read_bytes()).hexdigest()
