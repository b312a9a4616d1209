"""Which of a kernel's variants one build asks for, and why a named one cannot be had.

Default: every required variant of the matrix that applies to the kernel (noarch ones
included). `--all` adds the optional build sets; `--variant` names variants exactly (required or
optional); `--torch` and `--backend-type` filter; `--latest` keeps only the newest torch per
backend (the fast CI loop).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from packaging.version import Version

from ..config.model import BuildConfig
from ..errors import UsageError
from ..standalone import naming
from .applicable import Variant, applicable_variants, exclusion_reason
from .matrix import BuildSet


@dataclass(frozen=True)
class Selection:
    names: tuple[str, ...] = ()
    torch: tuple[str, ...] = ()
    backend_types: tuple[str, ...] = ()
    latest: bool = False
    include_optional: bool = False

    @property
    def explicit(self) -> bool:
        return bool(self.names)


@dataclass(frozen=True)
class Selected:
    variants: list[Variant]
    skipped: dict[str, str]  # applicable variants left out, and why


def _torch_key(variant: Variant) -> Version:
    return Version(variant.torch or "0")


def select_variants(config: BuildConfig, matrix: tuple[BuildSet, ...], selection: Selection) -> Selected:
    """The variants `selection` asks for; UsageError (with reasons and suggestions) for names that do not exist."""
    every = applicable_variants(config, matrix, include_optional=True)
    by_name = {v.name: v for v in every}
    if selection.names:
        problems = [explain_unknown(config, matrix, name, list(by_name)) for name in selection.names if name not in by_name]
        if problems:
            raise UsageError("\n".join(problems))
        chosen = [by_name[n] for n in dict.fromkeys(selection.names)]
    else:
        chosen = [v for v in every if v.required or selection.include_optional]
    skipped = {v.name: "optional build set (use --all or --variant to build it)" for v in every if v not in chosen and not selection.names}

    def drop(variant: Variant, reason: str) -> bool:
        skipped[variant.name] = reason
        return False

    if selection.torch:
        wanted = {str(Version(t)) for t in selection.torch}
        chosen = [v for v in chosen if v.is_noarch or (v.torch and str(Version(v.torch)) in wanted)
                  or drop(v, f"torch {v.torch} not selected (--torch {', '.join(selection.torch)})")]
    if selection.backend_types:
        chosen = [v for v in chosen if v.backend in selection.backend_types or drop(v, f"backend {v.backend} not selected (--backend-type)")]
    if selection.latest:
        newest: dict[tuple, Version] = {}
        for v in chosen:
            group = (v.backend, v.kind, v.system)
            newest[group] = max(newest.get(group, Version("0")), _torch_key(v))
        chosen = [v for v in chosen if v.is_noarch or _torch_key(v) == newest[(v.backend, v.kind, v.system)]
                  or drop(v, f"not the newest torch for {v.backend} (--latest)")]
    return Selected(sorted(chosen, key=lambda v: v.name), skipped)


def explain_unknown(config: BuildConfig, matrix: tuple[BuildSet, ...], name: str, known: list[str]) -> str:
    """Why `name` is not one of this kernel's variants, with close names when there are any."""
    parsed = naming.parse_variant(name)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    shown = ", ".join(known[:6]) + (f", … ({len(known)} in all: kernel-builder list-variants --all)" if len(known) > 6 else "")
    hint = f" Did you mean {' or '.join(close)}?" if close else (f" Its variants: {shown}." if known else "")
    if parsed is None:
        return f"--variant {name}: not a variant name (e.g. torch213-cxx11-cpu-x86_64-linux, torch-stable-abi211-cu130-x86_64-linux, torch-cpu).{hint}"
    backend = parsed["backend"]
    if backend not in config.general.backends:
        return f"--variant {name}: backend {backend} is not in general.backends ({', '.join(config.general.backends)}) of {config.path}.{hint}"
    if parsed["kind"] == "noarch" and config.is_arch_backend(backend):
        return f"--variant {name}: {config.general.name} has compiled kernels for {backend}, so it gets arch variants, not {name}.{hint}"
    if parsed["kind"] != "noarch" and not config.is_arch_backend(backend):
        return f"--variant {name}: {config.general.name} has no compiled kernels for {backend}; it gets the Python-only variant torch-{backend}.{hint}"
    stable = config.framework.stable_abi_for(backend) if parsed["kind"] != "noarch" else None
    if parsed["kind"] == "torch" and stable is not None:
        return f"--variant {name}: {config.path} builds {backend} with the torch stable ABI ({stable}), so its variants are torch-stable-abi….{hint}"
    if parsed["kind"] == "torch-stable-abi" and stable is None:
        return f"--variant {name}: {config.path} does not use the torch stable ABI for {backend}.{hint}"
    # A well-formed name the matrix does not produce: say which part is unknown or excluded.
    flat_torch = name[len("torch"):].split("-")[0] if parsed["kind"] == "torch" else None
    sets = [s for s in matrix if s.backend == backend]
    if flat_torch is not None:
        torch_sets = [s for s in sets if naming.flat_version(s.torch) == flat_torch]
        if not torch_sets:
            versions = sorted({s.torch for s in matrix}, key=Version)
            return f"--variant {name}: torch {flat_torch[0]}.{flat_torch[1:]} is not in the variant matrix (torch {', '.join(versions)}).{hint}"
        sets = torch_sets
    compute_sets = [s for s in sets if naming.compute_tag(s.backend, s.version) == parsed["compute"]]
    if not compute_sets:
        computes = sorted({naming.compute_tag(s.backend, s.version) for s in sets})
        return f"--variant {name}: the matrix has no {parsed['compute']} build set{' for that torch' if flat_torch else ''} ({', '.join(computes) or 'none'}).{hint}"
    system_sets = [s for s in compute_sets if parsed["system"] in s.systems]
    if not system_sets:
        return f"--variant {name}: the {parsed['compute']} build sets are for {', '.join(sorted({y for s in compute_sets for y in s.systems}))}, not {parsed['system']}.{hint}"
    reasons = sorted({r for s in system_sets if (r := exclusion_reason(config, s))})
    if reasons:
        return f"--variant {name}: does not apply to {config.general.name}: {'; '.join(reasons)}.{hint}"
    return f"--variant {name}: not a variant of {config.general.name}.{hint}"
