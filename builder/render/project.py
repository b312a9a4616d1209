"""Render the generated build tree of a kernel (create-pyproject).

Arch kernels ([torch]) get a CMake project that builds with plain `cmake` + `ninja` or with
pip, without kernel-builder installed: CMakeLists.txt, cmake/ helpers (including a copy of
the stdlib-only kbtools), the portability layer in compat/, setup.py, pyproject.toml,
torch-ext/registration.h and per-backend metadata templates. Python-only kernels
([torch-noarch]) get pyproject.toml and torch-ext/<module>/_ops.py.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from .. import __version__
from ..config.model import BuildConfig
from ..layout.metadata import metadata_template, noarch_archs, ops_name
from ..config.rules import python_dependencies
from .description import kernel_description
from .jinja import environment

GENERATED_TREE_STATIC = ("cmake", "compat")  # template folders copied as they are
STANDALONE_MODULES = ("__init__.py", "__main__.py", "archs.py", "cli.py", "cmakedata.py", "deps.py", "metadata.py", "naming.py", "package.py", "probe.py")


def _template_root():
    return resources.files("kernel_builder.templates")


def _static_files() -> dict[str, bytes]:
    """Template files copied verbatim: cmake helpers, the compat layer, registration.h."""
    files: dict[str, bytes] = {}
    root = _template_root()
    for folder in GENERATED_TREE_STATIC:
        base = root.joinpath(folder)
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir(), key=lambda e: e.name):
            if entry.is_file() and not entry.name.endswith(".j2"):
                files[f"{folder}/{entry.name}"] = entry.read_bytes()
    files["torch-ext/registration.h"] = root.joinpath("registration.h").read_bytes()
    files["torch-ext/kb-ops-name.cpp"] = root.joinpath("kb-ops-name.cpp").read_bytes()
    standalone = resources.files("kernel_builder.standalone")
    for name in STANDALONE_MODULES:
        files[f"cmake/kbtools/{name}"] = standalone.joinpath(name).read_bytes()
    return files


def pip_dependencies(config: BuildConfig, backends: tuple[str, ...]) -> list[str]:
    """pip requirement names: torch plus the kernel's python-depends for these backends."""
    table = python_dependencies()
    deps = ["torch"]
    for backend in backends:
        for name in config.general.python_depends_for(backend):
            scope = "general" if name in table["general"] else backend
            pip = table.get(scope, {}).get(name, {}).get("pip", name)
            if pip not in deps:
                deps.append(pip)
    return deps


def source_dir_relative(target: Path, kernel_dir: Path, *, as_given: bool = False) -> str:
    """The kernel directory as seen from the generated tree ('.' when they are the same).

    `as_given`: take both paths as they are, not resolved (the build gives the tools the kernel
    directory through a plain link when its real path has characters they cannot use)."""
    if as_given:
        return os.path.relpath(os.path.abspath(kernel_dir), os.path.abspath(target)).replace(os.sep, "/")
    return os.path.relpath(kernel_dir.resolve(), target.resolve()).replace(os.sep, "/")


def render_project(config: BuildConfig, unique_id: str, provenance: dict, target: Path, *, kernel_dir: Path | None = None) -> dict[str, bytes]:
    """Every generated file as {relative path: content}, for a tree written to `target`.

    `kernel_dir`: the kernel directory as the build tools see it (default: config.root)."""
    env = environment()
    fw = config.framework
    g = config.general
    rel = source_dir_relative(target, kernel_dir, as_given=True) if kernel_dir is not None else source_dir_relative(target, config.root)
    common = {
        "builder_version": __version__,
        "name": g.name,
        "python_name": g.python_name,
        "version": g.version,
        "license": g.license,
        "unique_id": unique_id,
        "source_dir_rel": rel,
        "python_root": fw.python_root,
    }
    files: dict[str, bytes] = {}
    if fw.kind == "torch-noarch":
        context = dict(common, noarch=True, dependencies=pip_dependencies(config, g.backends), package_data=[f"*.{e}" for e in fw.pyext if e != "py"])
        files["pyproject.toml"] = env.get_template("pyproject.toml.j2").render(context).encode()
        ops = env.get_template("noarch/_ops.py.j2").render(dict(common, backend=None))
        files[f"{config.python_package_dir}/_ops.py"] = ops.encode()
        return files

    arch_backends = list(config.arch_backends)
    default_ops_name = ops_name(config, arch_backends[0] if arch_backends else "cpu", unique_id)
    context = dict(
        common,
        noarch=False,
        default_ops_name=default_ops_name,
        dependencies=pip_dependencies(config, tuple(arch_backends)),
        package_data=[],
    )
    files.update(_static_files())
    files["cmake/kernel-description.cmake"] = kernel_description(config, unique_id=unique_id, source_dir_rel=rel).encode()
    files["CMakeLists.txt"] = env.get_template("CMakeLists.txt.j2").render(context).encode()
    files["setup.py"] = env.get_template("setup.py.j2").render(context).encode()
    files["pyproject.toml"] = env.get_template("pyproject.toml.j2").render(context).encode()
    for backend in arch_backends:
        meta = metadata_template(config, backend, provenance)
        files[f"cmake/metadata-{backend}.json"] = (json.dumps(meta, indent=2) + "\n").encode()
    return files


def render_noarch_ops(config: BuildConfig, backend: str | None, unique_id: str) -> str:
    """_ops.py of a Python-only variant (`backend` fixed) or source tree (None: probed at import)."""
    return environment().get_template("noarch/_ops.py.j2").render(python_name=config.general.python_name, backend=backend, unique_id=unique_id)


def render_legacy_init(config: BuildConfig, module_id: str) -> str:
    """`<variant>/<module>/__init__.py` for loaders that predate the flat layout."""
    return environment().get_template("noarch/legacy_init.py.j2").render(python_name=config.general.python_name, module_id=module_id)


def noarch_metadata(config: BuildConfig, backend: str, provenance: dict) -> dict:
    return metadata_template(config, backend, provenance, archs=noarch_archs(config, backend))
