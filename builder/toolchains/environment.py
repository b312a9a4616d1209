"""Cached toolchain environments: one virtual environment per locked toolchain, made by uv.

    <cache>/toolchains/<hash>/          the environment (python, torch, cmake, ninja, ...)
    <cache>/toolchains/<hash>/cuda/     the CUDA toolkit root assembled from the nvidia-* wheels
    <cache>/toolchains/<hash>/kernel-builder-toolchain.json    written last: the environment is complete

`<hash>` is the locked toolchain's content hash, so every kernel whose lock pins the same files
shares one environment, and a changed lock entry never reuses another's. Environments are made
under a file lock by one process at a time; one without its stamp is incomplete and made again.
The user's own Python environment is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ..errors import KernelBuilderError
from ..standalone.archs import parse_nvcc_arch_list
from .lock import LockedToolchain
from .store import ArtifactStore, cache_root
from .uv import run_uv

log = logging.getLogger("kernel_builder")
STAMP = "kernel-builder-toolchain.json"
LAST_USED = "last-used"
STAMP_VERSION = 1


class EnvironmentError_(KernelBuilderError):
    """A toolchain environment could not be made."""


def toolchains_root() -> Path:
    return cache_root() / "toolchains"


@dataclass(frozen=True)
class ToolchainEnvironment:
    """A ready environment: where its tools are (read from its stamp, no subprocess needed)."""

    dir: Path
    key: str
    hash: str
    python: Path
    python_version: str
    cmake: Path
    ninja: Path
    probe: dict  # what kernel_builder.standalone.probe says about the environment's torch
    cuda_root: Path | None = None
    nvcc: Path | None = None
    cuda_version: str | None = None
    cuda_known_archs: tuple[str, ...] = ()

    @classmethod
    def from_stamp(cls, directory: Path, stamp: dict) -> "ToolchainEnvironment":
        cuda = stamp.get("cuda") or {}
        return cls(
            dir=directory,
            key=stamp["key"],
            hash=stamp["hash"],
            python=Path(stamp["python"]),
            python_version=stamp["python-version"],
            cmake=Path(stamp["cmake"]),
            ninja=Path(stamp["ninja"]),
            probe=stamp["probe"],
            cuda_root=Path(cuda["root"]) if cuda else None,
            nvcc=Path(cuda["nvcc"]) if cuda else None,
            cuda_version=cuda.get("version"),
            cuda_known_archs=tuple(cuda.get("known-archs", ())),
        )


def environment_dir(toolchain: LockedToolchain, root: Path | None = None) -> Path:
    return (root or toolchains_root()) / toolchain.hash[:20]


def read_ready(toolchain: LockedToolchain, root: Path | None = None) -> ToolchainEnvironment | None:
    """The environment of `toolchain` if it is complete and matches the lock (file reads only)."""
    directory = environment_dir(toolchain, root)
    try:
        stamp = json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("stamp-version") != STAMP_VERSION or stamp.get("hash") != toolchain.hash or not Path(stamp.get("python", "")).exists():
        return None
    return ToolchainEnvironment.from_stamp(directory, stamp)


def _base_python(version: str) -> str:
    """The interpreter environments are made with: this one when the version matches."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    return sys.executable if version == running else version


def ensure_environment(toolchain: LockedToolchain, store: ArtifactStore, *, root: Path | None = None, on_stage=None) -> ToolchainEnvironment:
    """The ready environment of `toolchain`, made (fetch, install, assemble CUDA) if needed."""
    ready = read_ready(toolchain, root)
    if ready is not None:
        _touch(ready.dir)
        return ready
    directory = environment_dir(toolchain, root)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        ready = read_ready(toolchain, root)  # another process made it while we waited
        if ready is not None:
            _touch(ready.dir)
            return ready
        if on_stage:
            on_stage("fetch")
        with ThreadPoolExecutor(max_workers=4) as pool:
            files = list(pool.map(store.fetch, toolchain.artifacts))
        if on_stage:
            on_stage("install")
        if directory.exists():
            shutil.rmtree(directory)  # incomplete: made again from scratch
        start = time.monotonic()
        stamp = install_environment(toolchain, files, directory)
        _touch(directory)
        log.debug("made toolchain %s in %s (%.1f s)", toolchain.key, directory, time.monotonic() - start)
    return ToolchainEnvironment.from_stamp(directory, stamp)


def install_environment(toolchain: LockedToolchain, files: list[Path], directory: Path, *, python: str | None = None) -> dict:
    """Make the environment of `toolchain` at `directory` from its wheel `files` (no network); return its stamp.

    Used by the local engine (files from the artifact store) and by the Nix engine's toolchain
    derivation (files from fixed-output fetches). The stamp is written last.
    """
    try:
        stamp = _make(toolchain, directory, files, python)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    tmp = directory / (STAMP + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=2) + "\n")
    os.replace(tmp, directory / STAMP)
    return stamp


def read_environment(directory: Path) -> ToolchainEnvironment:
    """A ready environment at `directory`, whatever made it (its stamp says what it is)."""
    try:
        stamp = json.loads((Path(directory) / STAMP).read_text())
    except (OSError, ValueError) as exc:
        raise EnvironmentError_(f"{directory} is not a kernel-builder toolchain environment ({exc})") from None
    return ToolchainEnvironment.from_stamp(Path(directory), stamp)


def _touch(directory: Path) -> None:
    try:
        (directory / LAST_USED).touch()
    except OSError:
        pass  # a read-only cache still works


def _make(toolchain: LockedToolchain, directory: Path, files: list[Path], python: str | None = None) -> dict:
    spec = toolchain.spec
    run_uv(["venv", str(directory), "--python", python or _base_python(spec.python), "--no-project", "--quiet"])
    python = directory / "bin" / "python"
    run_uv(["pip", "install", "--python", str(python), "--offline", "--no-index", "--no-deps", "--quiet", *map(str, files)])
    from ..backends.host import probe_python

    probe = probe_python(python)
    torch = probe.get("torch")
    if not torch or torch["version"].split("+")[0] != toolchain.torch_version.split("+")[0]:
        raise EnvironmentError_(f"{directory}: torch {toolchain.torch_version} did not install (found {torch and torch['version']})")
    site = Path(torch["dir"]).parent
    stamp = {
        "stamp-version": STAMP_VERSION,
        "key": toolchain.key,
        "hash": toolchain.hash,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": str(python),
        "python-version": probe["python"]["version"],
        "torch-version": torch["version"],
        "cmake": str(_tool(site, "cmake")),
        "ninja": str(_tool(site, "ninja")),
        "probe": probe,
        "artifacts": sorted(a.sha256 for a in toolchain.artifacts),
        "cuda": None,
    }
    if spec.backend == "cuda":
        stamp["cuda"] = _assemble_cuda(site, directory / "cuda", spec.backend_version)
    return stamp


def _tool(site: Path, name: str) -> Path:
    """The real cmake/ninja binary of the PyPI wheel (not its Python entry-point script)."""
    for candidate in (site / name / "data" / "bin" / name, site.parent.parent.parent / "bin" / name):
        if candidate.is_file():
            return candidate
    raise EnvironmentError_(f"{name} is missing from the toolchain environment ({site})")


def _assemble_cuda(site: Path, root: Path, expected: str | None) -> dict:
    """One CUDA toolkit root from the nvidia-* wheels, as CMake and nvcc expect it.

    The wheels spread the toolkit over site-packages/nvidia/<package>/ (CUDA 12: cuda_nvcc,
    cuda_runtime, cuda_cccl, ...; CUDA 13: mostly one shared cu13/). Their bin/, include/,
    lib/ and nvvm/ trees are merged with hard links (nvcc finds its configuration next to its
    own path, so links to files, not to folders), plus lib64 -> lib.
    """
    nvidia = site / "nvidia"
    sources = sorted(p for p in nvidia.iterdir() if p.is_dir() and any((p / d).is_dir() for d in ("bin", "include", "lib", "nvvm"))) if nvidia.is_dir() else []
    for source in sources:
        for part in ("bin", "include", "lib", "nvvm"):
            tree = source / part
            if not tree.is_dir():
                continue
            for path in tree.rglob("*"):
                target = root / part / path.relative_to(tree)
                if path.is_dir() and not path.is_symlink():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if target.exists() or target.is_symlink():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if path.is_symlink():
                    target.symlink_to(os.readlink(path))
                else:
                    try:
                        os.link(path, target)
                    except OSError:
                        shutil.copy2(path, target)
    (root / "lib").mkdir(parents=True, exist_ok=True)
    if not (root / "lib64").exists():
        (root / "lib64").symlink_to("lib")
    # Unversioned names the linker looks for (the wheels ship only libcudart.so.13 and friends).
    for versioned in (root / "lib").glob("lib*.so.*"):
        plain = versioned.parent / (versioned.name.split(".so.")[0] + ".so")
        if not plain.exists():
            plain.symlink_to(versioned.name)
    nvcc = root / "bin" / "nvcc"
    if not nvcc.is_file():
        raise EnvironmentError_(f"the CUDA toolkit wheels gave no nvcc ({nvidia})")
    version_text = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=120).stdout
    archs_text = subprocess.run([str(nvcc), "--list-gpu-arch"], capture_output=True, text=True, timeout=120).stdout
    import re

    match = re.search(r"release (\d+)\.(\d+)", version_text)
    if not match:
        raise EnvironmentError_(f"{nvcc} does not report its version:\n{version_text}")
    version = f"{match.group(1)}.{match.group(2)}"
    if expected and version != expected:
        raise EnvironmentError_(f"the CUDA toolkit wheels gave nvcc {version}, the toolchain needs CUDA {expected}")
    return {"root": str(root), "nvcc": str(nvcc), "version": version, "known-archs": parse_nvcc_arch_list(archs_text)}
