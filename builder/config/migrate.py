"""Convert every older build.toml format into an equivalent edition-5 document.

Formats handled (oldest first):
- seed era: `[torch] name/pysrc/pyroot`, `version = "0.0.1"` strings, kernel `capabilities`;
- `[kernel.X] language = cuda|cuda-hipify|metal` with `universal` kernels;
- backend-tagged kernels with `general.universal`, `general.cuda-minver/maxver`;
- `general.backends` without a license/version or framework (no framework = torch-noarch);
- edition 4 (no `edition` key), which only gains `edition = 5`.

Migration works on plain dicts and returns notes for what the user should know; the result is
then parsed and validated like any edition-5 file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, Problem
from . import rules
from .model import CURRENT_EDITION, FRAMEWORKS, KERNEL_BACKENDS

DEFAULT_LICENSE = "Apache-2.0"
RENAMED_DEPENDS = {"cutlass_sycl": "sycl_tla"}
LANGUAGE_BACKEND = {"cuda": "cuda", "cuda-hipify": "cuda", "metal": "metal"}
GENERAL_ORDER = ["name", "version", "edition", "license", "backends", "upstream", "source", "python-depends", "kernel-depends", "hub", "cuda", "xpu", "neuron", "tpu"]
KERNEL_ORDER = ["backend", "depends", "src", "include", "cxx-flags", "cuda-capabilities", "cuda-flags", "cuda-minver", "rocm-archs", "hip-flags", "sycl-flags"]


@dataclass
class Migration:
    """The edition-5 document and what changed that the user should know about."""

    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    source_format: str = ""


def legacy_reasons(data: dict) -> list[str]:
    """Why a document without `edition` is older than edition 4 (empty list: it is edition 4)."""
    general = data.get("general", {}) if isinstance(data.get("general"), dict) else {}
    torch = data.get("torch", {}) if isinstance(data.get("torch"), dict) else {}
    reasons = []
    for key in ("name", "pysrc", "pyroot", "universal"):
        if key in torch:
            reasons.append(f"torch.{key}")
    for key in ("universal", "cuda-minver", "cuda-maxver"):
        if key in general:
            reasons.append(f"general.{key}")
    if "backends" not in general:
        reasons.append("no general.backends")
    if not isinstance(general.get("version"), int) or isinstance(general.get("version"), bool):
        reasons.append("no integer general.version")
    if "license" not in general:
        reasons.append("no general.license")
    if not any(name in data for name in FRAMEWORKS):
        reasons.append("no framework table")
    kernels = data.get("kernel", {})
    if isinstance(kernels, dict):
        for name, table in kernels.items():
            if not isinstance(table, dict):
                continue
            for key in ("capabilities", "language"):
                if key in table:
                    reasons.append(f"kernel.{name}.{key}")
            if "backend" not in table and table:
                reasons.append(f"kernel.{name} has no backend")
            depends = table.get("depends")
            for dep in depends if isinstance(depends, list) else []:
                if isinstance(dep, str) and dep in RENAMED_DEPENDS:
                    reasons.append(f"kernel.{name}.depends: {dep} (now {RENAMED_DEPENDS[dep]})")
    return reasons


def _type_name(value: Any) -> str:
    from .parse import describe

    return describe(value)


def legacy_shape_problems(data: dict) -> list[Problem]:
    """What the conversion of an older document needs to have the right type; everything else
    is carried over and checked by the edition-5 validation afterwards."""
    from .parse import join

    problems: list[Problem] = []

    def expect(table: dict, path: str, key: str, kind: type, what: str, items: type | None = None) -> None:
        if key not in table:
            return
        value = table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if ok and items is not None:
            ok = all(isinstance(item, items) for item in value)
        if not ok:
            problems.append(Problem(join(path, key), f"expected {what}, got {_type_name(value)}", "update-build reads this key to convert the file"))

    general = data["general"]
    expect(general, "general", "name", str, "a string")
    expect(general, "general", "version", (int, str), "an integer or a version string")
    expect(general, "general", "universal", bool, "a boolean")
    expect(general, "general", "cuda", dict, "a table")
    expect(general, "general", "python-depends", list, "an array of strings", str)
    torch = data.get("torch")
    if torch is not None and not isinstance(torch, dict):
        problems.append(Problem("torch", f"expected a table, got {_type_name(torch)}"))
    elif isinstance(torch, dict):
        for key, kind, what, items in (("name", str, "a string", None), ("universal", bool, "a boolean", None), ("pysrc", list, "an array of strings", str),
                                       ("pyroot", str, "a string", None)):
            expect(torch, "torch", key, kind, what, items)
    kernels = data.get("kernel")
    if kernels is not None and not isinstance(kernels, dict):
        problems.append(Problem("kernel", f"expected a table, got {_type_name(kernels)}"))
    elif isinstance(kernels, dict):
        for name, table in kernels.items():
            path = join("kernel", name)
            if not isinstance(table, dict):
                problems.append(Problem(path, f"expected a table, got {_type_name(table)}"))
                continue
            expect(table, path, "language", str, "a string")
            expect(table, path, "backend", str, "a string")
            expect(table, path, "depends", list, "an array of strings", str)
    return problems


def edition5_only_keys(data: dict) -> list[str]:
    """Keys that exist only in edition 5, found in a document without `edition`."""
    general = data.get("general", {})
    found = []
    if "kernel-depends" in general:
        found.append("general.kernel-depends")
    for scope in ("cuda", "xpu", "neuron"):
        if isinstance(general.get(scope), dict) and "kernel-depends" in general[scope]:
            found.append(f"general.{scope}.kernel-depends")
    if "tpu" in general:
        found.append("general.tpu")
    torch = data.get("torch")
    if isinstance(torch, dict) and isinstance(torch.get("stable-abi"), dict):
        found.append("torch.stable-abi")
    return found


def _ordered(table: dict, order: list[str]) -> dict:
    known = {k: table[k] for k in order if k in table}
    return known | {k: v for k, v in table.items() if k not in known}


def _kernel_name(raw: str) -> str:
    return raw.strip().lower().replace("_", "-")


def _version(raw: Any, notes: list[str]) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if raw is None:
        notes.append("general.version was missing: set to 1")
        return 1
    if isinstance(raw, str):
        major = raw.split(".")[0]
        if major.isdigit() and len(major) <= 9:
            notes.append(f"general.version {raw!r} became {int(major)} (edition 5 keeps only the major API version)")
            return int(major)
    return raw  # left for validation to report


def migrate(data: dict, *, license: str | None = None, file: str = "build.toml") -> Migration:
    """Turn any supported build.toml document into an edition-5 document."""
    data = copy.deepcopy(data)
    general = data.get("general")
    if not isinstance(general, dict):
        raise ConfigError(file, [Problem("general", "missing [general] table")])
    edition = general.get("edition")
    if edition == CURRENT_EDITION:
        return Migration(data, [], "edition 5")
    if edition is not None:
        raise ConfigError(file, [Problem("general.edition", f"unsupported edition {edition!r}", "update-build converts files without an edition into edition 5")])

    reasons = legacy_reasons(data)
    if reasons:
        shape = legacy_shape_problems(data)
        if shape:
            raise ConfigError(file, shape)
    notes: list[str] = []
    result = _migrate_legacy(data, notes, license, file) if reasons else _migrate_edition4(data)
    return Migration(result, notes, "legacy (" + "; ".join(reasons) + ")" if reasons else "edition 4")


def _migrate_edition4(data: dict) -> dict:
    out = dict(data)
    out["general"] = _ordered(dict(data["general"], edition=CURRENT_EDITION), GENERAL_ORDER)
    return _ordered(out, ["general", *FRAMEWORKS, "kernel"])


def _move_backend_python_depends(general: dict, notes: list[str]) -> None:
    """Older formats listed backend-only Python dependencies (nvidia-cutlass-dsl) in [general];
    edition 5 keeps them in [general.<backend>]."""
    deps = general.get("python-depends")
    if not isinstance(deps, list):
        return
    scopes = rules.python_dependencies()
    keep = []
    for dep in deps:
        owners = [s for s, names in scopes.items() if s != "general" and dep in names]
        if dep in scopes.get("general", {}) or len(owners) != 1:
            keep.append(dep)  # general, or unknown: left for validation to report
            continue
        scope = general.setdefault(owners[0], {})
        if isinstance(scope, dict):
            scope.setdefault("python-depends", [])
            if dep not in scope["python-depends"]:
                scope["python-depends"].append(dep)
            notes.append(f"python dependency {dep!r} moved from [general] to [general.{owners[0]}]")
        else:
            keep.append(dep)
    if keep:
        general["python-depends"] = keep
    else:
        del general["python-depends"]


def _migrate_legacy(data: dict, notes: list[str], license: str | None, file: str = "build.toml") -> dict:
    general = dict(data["general"])
    torch = dict(data.get("torch", {})) if isinstance(data.get("torch"), dict) else None
    kernels_in = data.get("kernel", {}) if isinstance(data.get("kernel"), dict) else {}

    # Name: the seed era kept it in [torch]; underscores were allowed then.
    raw_name = general.pop("name", None) or (torch or {}).get("name")
    if raw_name is None:
        raise ConfigError(file, [Problem("general.name", "missing required key", "update-build needs the kernel name")])
    name = _kernel_name(str(raw_name))
    if name != raw_name:
        notes.append(f"name {raw_name!r} became {name!r} (names use dashes); the Python module is still {name.replace('-', '_')!r}")

    universal = bool(general.pop("universal", False)) or bool((torch or {}).get("universal", False))

    kernels: dict[str, dict] = {}
    for kname, table in kernels_in.items():
        table = dict(table)
        language = table.pop("language", None)
        backend = table.get("backend") or LANGUAGE_BACKEND.get(language or "cuda")
        if backend is None:
            raise ConfigError(file, [Problem(f"kernel.{kname}.language", f"unknown language {language!r}", "cuda, cuda-hipify or metal")])
        table["backend"] = backend
        if "capabilities" in table:
            table["cuda-capabilities"] = table.pop("capabilities")
        table["depends"] = [RENAMED_DEPENDS.get(d, d) for d in table.get("depends", ["torch"])]
        if language == "cuda-hipify":
            rocm = {k: v for k, v in table.items() if k not in ("cuda-capabilities", "cuda-flags", "cuda-minver")}
            rocm["backend"] = "rocm"
            twin = f"{kname}_rocm"
            if twin in kernels_in:
                raise ConfigError(file, [Problem(f"kernel.{kname}.language", f"cuda-hipify needs to create kernel.{twin}, which already exists", "rename one of them")])
            table.pop("rocm-archs", None)
            table.pop("hip-flags", None)
            kernels[kname] = _ordered(table, KERNEL_ORDER)
            kernels[twin] = _ordered(rocm, KERNEL_ORDER)
            notes.append(f"kernel.{kname} (language cuda-hipify) became a cuda kernel and a rocm kernel kernel.{twin}")
        else:
            kernels[kname] = _ordered(table, KERNEL_ORDER)

    backends = general.pop("backends", None)
    if backends is None:
        if universal or not kernels:
            backends = list(KERNEL_BACKENDS)
        else:
            used = {k["backend"] for k in kernels.values()}
            backends = [b for b in KERNEL_BACKENDS if b in used]
        notes.append("general.backends was inferred: " + ", ".join(backends))

    cuda = dict(general.pop("cuda", {}) or {})
    for old, new in (("cuda-minver", "minver"), ("cuda-maxver", "maxver")):
        if old in general:
            cuda[new] = general.pop(old)

    out_general: dict[str, Any] = {
        "name": name,
        "version": _version(general.pop("version", None), notes),
        "edition": CURRENT_EDITION,
    }
    if "license" in general:
        out_general["license"] = general.pop("license")
    else:
        out_general["license"] = license or DEFAULT_LICENSE
        if license is None:
            notes.append(f"general.license was missing: set to {DEFAULT_LICENSE}; check that this is the kernel's license (or pass --license)")
    out_general["backends"] = backends
    out_general.update(general)  # upstream, source, python-depends, hub, xpu, neuron ...
    if cuda:
        out_general["cuda"] = cuda
    _move_backend_python_depends(out_general, notes)

    out: dict[str, Any] = {"general": _ordered(out_general, GENERAL_ORDER)}
    if universal or not any(n in data for n in FRAMEWORKS):
        noarch = {}
        if torch and "pyext" in torch:
            noarch["pyext"] = torch["pyext"]
        out["torch-noarch"] = noarch
        if kernels:
            notes.append("the kernel is universal (Python only): its [kernel.*] sections were dropped")
            kernels = {}
    elif torch is not None:
        pyroot = torch.pop("pyroot", None)
        pysrc = torch.pop("pysrc", None)
        torch.pop("name", None)
        torch.pop("universal", None)
        module = name.replace("-", "_")
        if pyroot or pysrc:
            where = pyroot or ", ".join(pysrc)
            notes.append(f"Python sources ({where}) must move to torch-ext/{module}/: edition 5 reads the package from there")
        out["torch"] = _ordered(torch, ["src", "include", "pyext", "minver", "maxver", "cxx-flags", "stable-abi"])
    for fw in ("torch-noarch", "tvm-ffi"):
        if fw in data and fw not in out:
            out[fw] = data[fw]
    if kernels:
        out["kernel"] = kernels
    # Tables no format knows are kept, so that validation reports them instead of losing them.
    for key, value in data.items():
        if key not in ("general", "kernel", *FRAMEWORKS) and key not in out:
            out[key] = value
    return out
