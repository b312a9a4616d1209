"""Locate C++ header dependencies named in `depends` (CUTLASS) on the build machine.

Lookup order: the CUTLASS_SRC_DIR environment variable (a CUTLASS checkout), then the
`nvidia-cutlass` Python wheel in the running interpreter (its headers live under
cutlass_library/source/). Standard library only: copied into generated build trees.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

# depends name -> CUTLASS release it was pinned to.
CUTLASS_VERSIONS = {
    "cutlass_2_10": "2.10.0",
    "cutlass_3_5": "3.5.1",
    "cutlass_3_6": "3.6.0",
    "cutlass_3_8": "3.8.0",
    "cutlass_3_9": "3.9.2",
    "cutlass_4_0": "4.0.0",
    "cutlass_4_4": "4.4.0",
    "cutlass_4_5": "4.5.2",
}


def _version_of(include_dir: Path) -> str | None:
    header = include_dir / "cutlass" / "version.h"
    if not header.is_file():
        return None
    text = header.read_text(errors="replace")
    parts = [re.search(rf"#define CUTLASS_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts) if all(parts) else None


def _candidates() -> list[tuple[str, Path]]:
    found = []
    if os.environ.get("CUTLASS_SRC_DIR"):
        found.append(("CUTLASS_SRC_DIR", Path(os.environ["CUTLASS_SRC_DIR"])))
    spec = importlib.util.find_spec("cutlass_library")
    if spec is not None and spec.submodule_search_locations:
        found.append(("the nvidia-cutlass wheel", Path(list(spec.submodule_search_locations)[0]) / "source"))
    return found


def find_cutlass(dependency: str) -> dict:
    """{found, include_dirs, version, origin, wanted, problem} for a cutlass_X_Y dependency."""
    wanted = CUTLASS_VERSIONS[dependency]
    for origin, root in _candidates():
        include = root / "include"
        version = _version_of(include)
        if version is None:
            continue
        dirs = [str(include)] + [str(p) for p in (root / "tools" / "util" / "include",) if p.is_dir()]
        result = {"found": True, "include_dirs": dirs, "version": version, "origin": origin, "wanted": wanted, "problem": None}
        if version.split(".")[:2] != wanted.split(".")[:2]:
            result["problem"] = f"{dependency} (CUTLASS {wanted}), but {origin} has CUTLASS {version}"
            if origin != "CUTLASS_SRC_DIR":  # an explicit checkout is the user's choice
                result["found"] = False
                continue
        return result
    return {
        "found": False,
        "include_dirs": [],
        "version": None,
        "origin": None,
        "wanted": wanted,
        "problem": f"{dependency} (CUTLASS {wanted}), which was not found: set CUTLASS_SRC_DIR to a CUTLASS {wanted} checkout, or install a matching nvidia-cutlass wheel",
    }
