"""Checks on a built variant folder: name, metadata.json, digest, extension and Python code.

Used by `kernel-builder build` before a variant is installed and by `check-builds`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import rules
from ..standalone.metadata import MINVER_RE, compute_digest
from ..standalone.naming import parse_variant
from .python_code import format_registration_report, scan_package

EXTENSION_SUFFIXES = (".so", ".pyd", ".dylib")
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FULL_COMMIT_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
METADATA_BACKENDS = ("cpu", "cuda", "rocm", "xpu", "metal", "cann", "neuron", "tpu")


@dataclass(frozen=True)
class Finding:
    """One problem in a variant; warnings do not fail a check."""

    where: str
    message: str
    warning: bool = False

    def render(self) -> str:
        return f"{self.where}: {'warning: ' if self.warning else ''}{self.message}"


def discover_variants(directory: Path) -> tuple[Path, list[Path]]:
    """Variant folders under the first of DIR/result, DIR/build, DIR that has any.

    A folder holding metadata.json itself is taken as a single variant.
    """
    directory = Path(directory)
    if (directory / "metadata.json").is_file():
        return directory.parent, [directory]
    for base in (directory / "result", directory / "build", directory):
        if not base.is_dir():
            continue
        found = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "metadata.json").is_file())
        if found:
            return base, found
    return directory, []


def require_variants(directory: Path) -> tuple[Path, list[Path]]:
    """discover_variants, or a UsageError when there is none."""
    from ..errors import UsageError

    base, variants = discover_variants(directory)
    if not variants:
        raise UsageError(f"no build variants found in {directory} (looked in result/, build/ and the folder itself)")
    return base, variants


def allowed_imports(python_depends: list[str] | tuple[str, ...]) -> frozenset[str]:
    """Import names of the declared python-depends (e.g. einops), which kernel code may import."""
    table = rules.python_dependencies()
    names = set()
    for scope in table.values():
        for dep, info in scope.items():
            if dep in python_depends:
                names.add(info.get("import", dep))
    return frozenset(names)


def _check_metadata(variant: Path, where: str) -> tuple[dict | None, list[Finding]]:
    path = variant / "metadata.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, [Finding(where, f"metadata.json cannot be read: {exc}")]
    findings = []
    if not isinstance(data, dict):
        return None, [Finding(where, "metadata.json is not a JSON object")]
    for key, kind in (("name", str), ("id", str), ("version", int), ("license", str), ("python-depends", list), ("backend", dict)):
        if not isinstance(data.get(key), kind) or (kind is int and isinstance(data.get(key), bool)):
            findings.append(Finding(where, f"metadata.json: `{key}` is missing or not a {kind.__name__}"))
    if findings:
        return None, findings
    if not rules.NAME_RE.fullmatch(data["name"]):
        findings.append(Finding(where, f"metadata.json: name {data['name']!r} is not a valid kernel name"))
    if not ID_RE.fullmatch(data["id"]):
        findings.append(Finding(where, f"metadata.json: id {data['id']!r} is not a valid module name"))
    if data["version"] < 0:
        findings.append(Finding(where, "metadata.json: version is negative"))
    if data["backend"].get("type") not in METADATA_BACKENDS:
        findings.append(Finding(where, f"metadata.json: backend.type {data['backend'].get('type')!r} is unknown"))
    minver = data.get("kernels-minver")
    if minver is not None and not (isinstance(minver, str) and MINVER_RE.match(minver)):
        findings.append(Finding(where, f"metadata.json: kernels-minver {minver!r} is not a three-part version (X.Y.Z); the loader refuses it"))
    provenance = data.get("provenance")
    for part in ("kernel-builder", "kernel"):
        commit = provenance.get(part, {}).get("commit") if isinstance(provenance, dict) and isinstance(provenance.get(part), dict) else None
        if commit is not None and not (isinstance(commit, str) and FULL_COMMIT_RE.match(commit)):
            findings.append(Finding(where, f"metadata.json: provenance.{part}.commit {commit!r} is not a full commit id (40 or 64 hex digits); the loader refuses it"))
    known = {dep for scope in rules.python_dependencies().values() for dep in scope}
    for dep in data["python-depends"]:
        if dep not in known:
            findings.append(Finding(where, f"metadata.json: python-depends {dep!r} is not allowed by the loader"))
    digest = data.get("digest")
    if not isinstance(digest, dict):
        findings.append(Finding(where, "metadata.json has no digest (run `kernel-builder hash`)"))
    else:
        actual = compute_digest(variant)
        if digest.get("algorithm") != "sha256" or digest.get("files") != actual["files"]:
            expected = digest.get("files", {})
            changed = sorted(set(expected) ^ set(actual["files"]) | {k for k in expected if k in actual["files"] and expected[k] != actual["files"][k]})
            findings.append(Finding(where, "digest does not match the files: " + (", ".join(changed[:8]) or "algorithm")))
    return data, findings


def check_variant(variant: Path, *, base: Path | None = None, extra_imports: frozenset[str] = frozenset(),
                  code_warnings: bool = True) -> list[Finding]:
    """Every layout rule for one variant folder.

    `extra_imports`: modules the Python code may import besides the declared python-depends
    (`--allow-import`). `code_warnings=False` leaves out the Python code's warnings (a build
    has reported them for the source package already).
    """
    variant = Path(variant)
    where = str(variant.relative_to(base)) if base and variant.is_relative_to(base) else str(variant)
    parsed = parse_variant(variant.name)
    findings: list[Finding] = []
    if parsed is None:
        findings.append(Finding(where, "the folder name is not a build variant name (e.g. torch213-cxx11-cpu-x86_64-linux, torch-cpu)"))
    data, meta_findings = _check_metadata(variant, where)
    findings += meta_findings
    if data is None:
        return findings
    python_name = data["name"].replace("-", "_")
    if parsed is not None and parsed["backend"] != data["backend"].get("type") and parsed["backend"] != "universal":
        findings.append(Finding(where, f"metadata.json: backend.type {data['backend'].get('type')!r} does not match the variant ({parsed['backend']})"))
    if not (variant / "__init__.py").is_file() and not (variant / python_name / "__init__.py").is_file():
        findings.append(Finding(where, "no __init__.py: the kernel's Python package is missing"))
    extensions = sorted(p for p in variant.iterdir() if p.is_file() and p.name.endswith(EXTENSION_SUFFIXES))
    if parsed is not None and parsed["kind"] == "noarch":
        for ext in extensions:
            findings.append(Finding(where, f"{ext.name}: a Python-only (noarch) variant must not contain compiled code; it would load on any torch"))
    elif parsed is not None:
        stems = [p.name.split(".")[0] for p in extensions]
        if data["id"] not in stems:
            findings.append(Finding(where, f"no extension named {data['id']}.abi3.so (metadata id); found: {', '.join(p.name for p in extensions) or 'none'}"))
        ops = variant / "_ops.py"
        if not ops.is_file():
            findings.append(Finding(where, "no _ops.py"))
        elif data["id"] not in ops.read_text(errors="replace"):
            findings.append(Finding(where, f"_ops.py does not use the ops namespace {data['id']}"))
    code = scan_package(variant, python_name, allowed_imports(data["python-depends"]) | extra_imports)
    if not code_warnings:
        code = [f for f in code if not f.warning]
    registrations = [f for f in code if f.rule == "registration"]
    if registrations:
        findings.append(Finding(where, format_registration_report(registrations, variant)))
    for f in code:
        if f.rule != "registration":
            findings.append(Finding(where, f.render(variant), warning=f.warning))
    return findings
