"""Assemble variant folders that need no compiler, and finish compiled ones.

- Python-only (noarch) variants: the kernel's Python package (files with the pyext
  extensions, subpackages kept), an `_ops.py` bound to this build's namespace, metadata.json.
- The optional legacy `<module>/` subpackage for loaders that predate the flat layout.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config.model import BuildConfig
from ..errors import UsageError
from ..render.project import noarch_metadata, render_legacy_init, render_noarch_ops
from ..standalone.package import PackageError, copy_package
from .metadata import ops_name, write_metadata


def copy_python_package(config: BuildConfig, destination: Path) -> None:
    """Copy torch-ext/<module>/ (files with the pyext extensions; links resolved) into
    `destination`, by the same rules as the CMake install of compiled variants."""
    try:
        copy_package(config.root / config.python_package_dir, config.root, config.framework.pyext, destination)
    except PackageError as exc:
        raise UsageError(f"{config.path}: {exc}") from None


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
