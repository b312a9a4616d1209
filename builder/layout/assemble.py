"""Assemble variant folders that need no compiler, and finish compiled ones.

- Python-only (noarch) variants: the kernel's Python package (files with the pyext
  extensions, subpackages kept), an `_ops.py` bound to this build's namespace, metadata.json.
- The optional legacy `<module>/` subpackage for loaders that predate the flat layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..config.model import BuildConfig
from ..render.project import noarch_metadata, render_legacy_init, render_noarch_ops
from .metadata import ops_name, write_metadata


def copy_python_package(config: BuildConfig, destination: Path) -> None:
    """Copy torch-ext/<module>/ (only files with the pyext extensions) into `destination`."""
    source = config.root / config.python_package_dir
    extensions = tuple(f".{e}" for e in config.framework.pyext)
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or not path.name.endswith(extensions):
            continue
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def assemble_noarch(config: BuildConfig, backend: str, unique_id: str, provenance: dict, staging: Path, variant_name: str) -> Path:
    """Build the `torch-<backend>` variant folder inside `staging`; return it."""
    variant = staging / variant_name
    variant.mkdir(parents=True)
    copy_python_package(config, variant)
    (variant / "_ops.py").write_text(render_noarch_ops(config, backend, unique_id))
    metadata = noarch_metadata(config, backend, provenance)
    metadata["id"] = ops_name(config, backend, unique_id)
    write_metadata(variant, metadata)
    return variant


def add_legacy_subpackage(config: BuildConfig, variant: Path) -> None:
    """Add <variant>/<module>/__init__.py (loads the flat package) and refresh the digest."""
    metadata = json.loads((variant / "metadata.json").read_text())
    package = variant / config.general.python_name
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text(render_legacy_init(config, metadata["id"]))
    metadata.pop("digest", None)
    write_metadata(variant, metadata)
