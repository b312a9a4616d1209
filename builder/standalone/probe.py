"""Describe the torch installation of the running interpreter without importing torch.

Importing a CUDA torch wheel fails when its nvidia runtime wheels are missing, yet building
against it needs only its files. So everything is read from the installed files:
`torch/version.py` (version, CUDA/HIP/XPU versions), the include and library folders, and the
C++ ABI (always cxx11 from torch 2.7; older wheels are inspected).

Run as a script, it prints the description as JSON. Standard library only: this file is copied
into generated build trees and run with the Python that holds torch.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import platform
import re
import sys
import sysconfig
from pathlib import Path


def _literal_assignments(source: str) -> dict:
    """Module-level `name = <literal>` assignments (annotated or not) of a Python file."""
    values: dict = {}
    for node in ast.parse(source).body:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    pass
    return values


def _short(version: str | None) -> str | None:
    if not version:
        return None
    match = re.match(r"^(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _cxx11_abi(torch_dir: Path, version: str) -> bool:
    """Every Linux torch since 2.7 uses the C++11 ABI; older wheels say so in their files."""
    major_minor = tuple(int(p) for p in (_short(version) or "0.0").split("."))
    if major_minor >= (2, 7) or platform.system() != "Linux":
        return True
    config = torch_dir / "share" / "cmake" / "Torch" / "TorchConfig.cmake"
    if config.is_file():
        match = re.search(r"_GLIBCXX_USE_CXX11_ABI=([01])", config.read_text(errors="replace"))
        if match:
            return match.group(1) == "1"
    c10 = torch_dir / "lib" / "libc10.so"
    if c10.is_file():
        return b"B5cxx11" in c10.read_bytes()
    return True


def _nvidia_dirs(site: Path, leaf: str) -> list[str]:
    """Header or library folders of the `nvidia-*` wheels (cu12 and cu13 layouts)."""
    root = site / "nvidia"
    if not root.is_dir():
        return []
    found = {p for p in root.glob(f"*/{leaf}") if p.is_dir()}
    found |= {p for p in root.glob(f"*/*/{leaf}") if p.is_dir()}
    return sorted(str(p) for p in found)


def describe() -> dict:
    """Facts about this interpreter and its torch, as plain JSON-serialisable data."""
    info: dict = {
        "python": {
            "executable": sys.executable,
            "version": f"{sys.version_info.major}.{sys.version_info.minor}",
            "include": sysconfig.get_paths()["include"],
        },
        "platform": {"machine": platform.machine(), "system": platform.system()},
        "torch": None,
        "nvidia": {"include_dirs": [], "lib_dirs": []},
    }
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return info
    torch_dir = Path(list(spec.submodule_search_locations)[0])
    version_file = torch_dir / "version.py"
    if not version_file.is_file():
        return info
    values = _literal_assignments(version_file.read_text())
    version = str(values.get("__version__", ""))
    info["torch"] = {
        "version": version,
        "short": _short(version),
        "dir": str(torch_dir),
        "include_dirs": [str(torch_dir / "include"), str(torch_dir / "include" / "torch" / "csrc" / "api" / "include")],
        "lib_dir": str(torch_dir / "lib"),
        "cmake_prefix": str(torch_dir / "share" / "cmake"),
        "cuda": values.get("cuda"),
        "hip": values.get("hip"),
        "xpu": values.get("xpu"),
        "cxx11_abi": _cxx11_abi(torch_dir, version),
    }
    site = torch_dir.parent
    info["nvidia"] = {"include_dirs": _nvidia_dirs(site, "include"), "lib_dirs": _nvidia_dirs(site, "lib")}
    return info


def torch_backends(torch: dict) -> list[tuple[str, str | None]]:
    """The compute backends a torch build can build variants for, with the backend version.

    A CUDA, ROCm or XPU torch builds for that backend only; a CPU torch builds CPU variants,
    and on macOS Metal variants as well (MPS is part of the CPU wheel there).
    """
    if torch.get("cuda"):
        return [("cuda", _short(torch["cuda"]))]
    if torch.get("hip"):
        return [("rocm", _short(torch["hip"]))]
    if torch.get("xpu"):
        return [("xpu", str(torch["xpu"]))]
    if platform.system() == "Darwin":
        return [("cpu", None), ("metal", None)]
    return [("cpu", None)]


if __name__ == "__main__":
    json.dump(describe(), sys.stdout, indent=2)
    sys.stdout.write("\n")
