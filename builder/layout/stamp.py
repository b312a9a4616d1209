"""Up-to-date stamps: a variant whose inputs did not change is not rebuilt, re-checked or re-imported.

    build/.kernel-builder/stamps/<variant>.json

A stamp holds a fingerprint of everything that reaches the variant, and the size and mtime of
every file of the variant as installed. When both still match, the build skips that variant
entirely: no rendering, no CMake, no gate, no import check, no subprocess at all. Inputs:

- kernel-builder itself (its version and the size and mtime of its package files, templates included);
- build.toml and every file it builds from (content hashes: touching a file is not a change);
- the kernel's git HEAD and index (the unique id and provenance depend on them), read from
  .git without running git;
- the toolchain (the locked toolchain's hash, or the host Python's torch and compilers for --host);
- the build options, and the environment variables that reach the compilers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .. import __version__

STAMPS = "stamps"
COMPILER_VARIABLES = ("CMAKE_ARGS", "CC", "CXX", "CUDACXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "CUDAFLAGS", "NVCC_APPEND_FLAGS",
                      "NVCC_PREPEND_FLAGS", "KERNEL_BUILDER_CUDA_ARCHS", "CUTLASS_SRC_DIR")


def _stat_key(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


_BUILDER_ID: str | None = None


def builder_identity() -> str:
    """kernel-builder's version and the sizes/mtimes of its files (an edited template counts)."""
    global _BUILDER_ID
    if _BUILDER_ID is None:
        import kernel_builder
        import kernel_builder.templates as templates

        digest = hashlib.sha256(__version__.encode())
        for package in (Path(kernel_builder.__file__).parent, Path(templates.__file__).parent):
            for root, dirs, files in os.walk(package):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(files):
                    if not name.endswith(".pyc"):
                        digest.update(_stat_key(Path(root) / name).encode())
        _BUILDER_ID = digest.hexdigest()
    return _BUILDER_ID


def _git_dir(directory: Path) -> tuple[Path, Path] | None:
    """(git dir, common dir) of the repository holding `directory`, read from the file system."""
    for folder in (directory, *directory.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot, dot
        if dot.is_file():
            text = dot.read_text(errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            git_dir = (folder / text[len("gitdir:"):].strip()).resolve()
            common = git_dir
            if (git_dir / "commondir").is_file():
                common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
            return git_dir, common
    return None


def git_fingerprint(directory: Path) -> str:
    """HEAD's commit and the index's stat: what the unique id and provenance depend on besides content."""
    found = _git_dir(directory.resolve())
    if found is None:
        return "no-git"
    git_dir, common = found
    try:
        head = (git_dir / "HEAD").read_text().strip()
        commit = head
        if head.startswith("ref:"):
            ref = head[4:].strip()
            for base in (git_dir, common):
                if (base / ref).is_file():
                    commit = (base / ref).read_text().strip()
                    break
            else:
                packed = common / "packed-refs"
                lines = packed.read_text().splitlines() if packed.is_file() else []
                commit = next((line.split()[0] for line in lines if line.endswith(" " + ref)), f"unborn:{ref}")
    except OSError:
        return "git-unreadable"
    return f"{commit}|{_stat_key(git_dir / 'index')}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _compilers() -> list[str]:
    keys = []
    for tool in ("cc", "c++", "gcc", "g++"):
        found = shutil.which(tool)
        keys.append(f"{tool}={_stat_key(Path(os.path.realpath(found))) if found else 'none'}")
    return keys


def fingerprint(config, *, toolchain: str, options: dict) -> str:
    """The fingerprint of every input of a variant (see the module docstring)."""
    from ..provenance import source_files

    digest = hashlib.sha256()
    parts = [builder_identity(), toolchain, json.dumps(options, sort_keys=True, default=str), git_fingerprint(config.root)]
    parts += [f"{v}={os.environ.get(v, '')}" for v in COMPILER_VARIABLES]
    parts += _compilers()
    for part in parts:
        digest.update(part.encode() + b"\0")
    root = config.root
    for path in source_files(config):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + _file_digest(path).encode())
    return digest.hexdigest()


def _tree_state(variant: Path) -> dict[str, list[int]]:
    state = {}
    for root, dirs, files in os.walk(variant):
        dirs.sort()
        for name in files:
            path = Path(root) / name
            st = path.stat()
            state[path.relative_to(variant).as_posix()] = [st.st_size, st.st_mtime_ns]
    return state


def stamp_path(state_dir: Path, variant: str) -> Path:
    return state_dir / STAMPS / f"{variant}.json"


def is_up_to_date(state_dir: Path, variant_dir: Path, print_: str) -> bool:
    """True when the installed variant matches its stamp and the stamp's fingerprint is `print_`."""
    try:
        stamp = json.loads(stamp_path(state_dir, variant_dir.name).read_text())
        return stamp.get("fingerprint") == print_ and stamp.get("files") == _tree_state(variant_dir)
    except (OSError, ValueError):
        return False


def write_stamp(state_dir: Path, variant_dir: Path, print_: str) -> None:
    path = stamp_path(state_dir, variant_dir.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": print_, "files": _tree_state(variant_dir)}))
    os.replace(tmp, path)


def forget(state_dir: Path, variant: str) -> None:
    stamp_path(state_dir, variant).unlink(missing_ok=True)
