"""The metadata.json of a variant (fields of the Hub kernel format, kebab-case keys)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from ..config.model import BuildConfig, KernelDependency
from ..standalone.metadata import compute_digest, version_tuple, write_metadata

__all__ = ["compute_digest", "kernels_minver", "metadata_template", "ops_name", "write_metadata"]

MINVER_FILE = Path(__file__).resolve().parents[1] / "data" / "kernels-minver.json"


def ops_name(config: BuildConfig, backend: str, unique_id: str) -> str:
    """`_<module>_<backend>_<id>`: the ops namespace, module id and extension file stem."""
    return f"_{config.general.python_name}_{backend}_{unique_id}"


def _kernel_dep(dep: KernelDependency) -> dict:
    entry: dict = {"repo-id": dep.repo_id}
    if dep.version is not None:
        entry["version"] = dep.version
    else:
        entry["revision"] = dep.revision
    return entry


@functools.cache
def _minver_table() -> dict:
    return json.loads(MINVER_FILE.read_text())


def kernels_minver(config: BuildConfig, backend: str) -> str:
    """The oldest `kernels` release (X.Y.Z) that loads this kernel's variant for `backend`,
    from the features it uses (builder/data/kernels-minver.json)."""
    table = _minver_table()
    needed = [table["baseline"]]
    g = config.general
    if g.kernel_depends_for(backend):
        needed.append(table["kernel-depends"])
    if config.framework.stable_abi_for(backend) is not None:
        needed.append(table["torch-stable-abi"])
    if backend in table["backends"]:
        needed.append(table["backends"][backend])
    needed += [table["python-depends"][dep] for dep in g.python_depends_for(backend) if dep in table["python-depends"]]
    return max(needed, key=version_tuple)


def metadata_template(config: BuildConfig, backend: str, provenance: dict, *, archs: list[str] | None = None) -> dict:
    """metadata.json without `id`, compiled `archs` and `digest` (added when installing)."""
    g = config.general
    data: dict = {"name": g.name, "version": g.version, "kernels-minver": kernels_minver(config, backend), "license": g.license}
    if g.upstream:
        data["upstream"] = g.upstream
    if g.source:
        data["source"] = g.source
    data["python-depends"] = list(dict.fromkeys(g.python_depends_for(backend)))
    data["kernel-depends"] = [_kernel_dep(d) for d in g.kernel_depends_for(backend)]
    data["backend"] = {"type": backend}
    if archs:
        data["backend"]["archs"] = sorted(set(archs))
    data["provenance"] = provenance
    return data


def noarch_archs(config: BuildConfig, backend: str) -> list[str] | None:
    """[torch-noarch] may declare the capabilities a Python-only kernel supports."""
    fw = config.framework
    if fw.kind != "torch-noarch":
        return None
    if backend == "cuda" and fw.cuda_capabilities:
        return list(fw.cuda_capabilities)
    if backend == "rocm" and fw.rocm_archs:
        return list(fw.rocm_archs)
    return None
