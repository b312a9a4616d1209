"""GPU architecture selection: which CUDA capabilities / ROCm targets a kernel section is built for.

CUDA rules:
- Each toolkit version has a default target list (what a release build covers) and a set of
  capabilities nvcc can compile at all (`nvcc --list-gpu-arch`, or the table below).
- A section's requested capabilities (default: the toolkit's default list) are matched against
  the targets with a *loose* intersection: for every target T, take the highest requested
  S <= T of the same major (SASS only runs forward within a major); a requested `S+PTX` may
  serve a target of a later major and keeps its `+PTX`. An arch-specific request `X.Ya`/`X.Yf`
  is kept as written when X.Y is a target, and then covers that target alone.
- A requested capability the toolkit cannot compile is never selected.
- An empty result is an error that names the section and both lists.
- A development build may restrict the targets (e.g. to 9.0) with an override list.

ROCm: exact intersection with a fixed universe of targets (empty -> error; unspecified -> all).

Standard library only: this file is copied into generated build trees, where CMake runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CAP_RE = re.compile(r"^([0-9]+)\.([0-9]+)([af]?)(\+PTX)?$")

# Capabilities nvcc can compile, per toolkit (major, minor); the newest entry <= the toolkit applies.
KNOWN_CUDA_ARCHS = {
    (11, 8): "3.5 3.7 5.0 5.2 5.3 6.0 6.1 6.2 7.0 7.2 7.5 8.0 8.6 8.7 8.9 9.0",
    (12, 0): "5.0 5.2 5.3 6.0 6.1 6.2 7.0 7.2 7.5 8.0 8.6 8.7 8.9 9.0",
    (12, 8): "5.0 5.2 5.3 6.0 6.1 6.2 7.0 7.2 7.5 8.0 8.6 8.7 8.9 9.0 10.0 10.1 12.0",
    (12, 9): "5.0 5.2 5.3 6.0 6.1 6.2 7.0 7.2 7.5 8.0 8.6 8.7 8.9 9.0 10.0 10.1 10.3 12.0 12.1",
    (13, 0): "7.5 8.0 8.6 8.7 8.8 8.9 9.0 10.0 10.3 11.0 12.0 12.1",
}
# What a release build targets by default, per toolkit; the last entry also embeds PTX.
DEFAULT_CUDA_ARCHS = {
    (11, 8): "7.0 7.2 7.5 8.0 8.6 8.7 8.9 9.0+PTX",
    (12, 8): "7.0 7.2 7.5 8.0 8.6 8.7 8.9 9.0 10.0 10.1 12.0+PTX",
    # 10.3 (B300) joined the CUDA >= 13 list upstream with nvcc 13's sm_103 (kernels#783).
    (13, 0): "7.5 8.0 8.6 8.7 8.9 9.0 10.0 10.3 11.0 12.0 12.1+PTX",
}
ROCM_ARCHS = "gfx906 gfx908 gfx90a gfx942 gfx950 gfx1030 gfx1100 gfx1101 gfx1200 gfx1201".split()


class ArchError(ValueError):
    """No architecture is left for a section: the message names the section and both lists."""


@dataclass(frozen=True, order=True)
class Capability:
    major: int
    minor: int
    suffix: str = ""  # "", "a" (arch-specific) or "f" (family-specific)
    ptx: bool = False

    @classmethod
    def parse(cls, text: str) -> "Capability":
        match = _CAP_RE.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a CUDA capability (e.g. 9.0, 9.0a, 10.0f, 8.0+PTX)")
        return cls(int(match.group(1)), int(match.group(2)), match.group(3), bool(match.group(4)))

    @property
    def base(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}{self.suffix}{'+PTX' if self.ptx else ''}"

    @property
    def sm(self) -> str:
        """The nvcc spelling without `sm_`/`compute_`: 90, 90a, 100f."""
        return f"{self.major}{self.minor}{self.suffix}"


def version_key(version: str) -> tuple[int, int]:
    """'13.0' -> (13, 0); a single component gets minor 0."""
    parts = [int(p) for p in str(version).split(".")[:2]]
    return (parts[0], parts[1] if len(parts) > 1 else 0)


def _for_toolkit(table: dict, version: str) -> str:
    key = version_key(version)
    eligible = [k for k in table if k <= key]
    return table[max(eligible)] if eligible else table[min(table)]


def default_cuda_archs(toolkit: str) -> list[str]:
    """The release target list for a CUDA toolkit version."""
    return _for_toolkit(DEFAULT_CUDA_ARCHS, toolkit).split()


def known_cuda_archs(toolkit: str) -> list[str]:
    """Capabilities nvcc of this version can compile (from the table)."""
    return _for_toolkit(KNOWN_CUDA_ARCHS, toolkit).split()


def parse_nvcc_arch_list(output: str) -> list[str]:
    """Capabilities from `nvcc --list-gpu-arch` output (compute_75 ... lines)."""
    found = sorted({(int(m.group(1)[:-1]), int(m.group(1)[-1])) for m in re.finditer(r"compute_(\d+)\b", output)})
    return [f"{major}.{minor}" for major, minor in found]


def _natural(caps: set[Capability]) -> list[Capability]:
    return sorted(caps, key=lambda c: (c.major, c.minor, c.suffix, c.ptx))


def select_cuda_archs(
    section: str,
    toolkit: str,
    requested: list[str] | None,
    known: list[str] | None = None,
    targets: list[str] | None = None,
) -> list[str]:
    """The capabilities to compile `section` for, or ArchError when none is left.

    `requested`: the section's cuda-capabilities (None: the toolkit default list).
    `known`: what nvcc can compile (None: from the table). `targets`: a development override
    of the target list (None: the toolkit default list).
    """
    default = default_cuda_archs(toolkit)
    known_set = {Capability.parse(k).base for k in (known or known_cuda_archs(toolkit))}
    target_list = targets if targets else default
    target_caps = [Capability.parse(t) for t in target_list]
    target_bases = [t.base for t in target_caps if t.base in known_set]
    wanted = [Capability.parse(r) for r in (requested if requested is not None else default)]

    selected: set[Capability] = set()
    consumed: set[tuple[int, int]] = set()
    for cap in wanted:
        if cap.suffix and cap.base in target_bases:
            selected.add(cap)
            consumed.add(cap.base)
    plain = [c for c in wanted if not c.suffix and c.base in known_set]
    for base in target_bases:
        if base in consumed:
            continue
        candidates = [c for c in plain if c.base <= base and (c.major == base[0] or c.ptx)]
        if candidates:
            best = max(c.base for c in candidates)
            # Keep +PTX when any request for that base asked for it.
            selected.add(Capability(best[0], best[1], "", any(c.ptx for c in candidates if c.base == best)))
    result = _natural(selected)
    if not result:
        shown_targets = [t for t in target_list if Capability.parse(t).base in known_set]
        raise ArchError(
            f"CUDA kernel {section}: empty set of capabilities after intersection "
            f"(kernel: {' '.join(str(c) for c in wanted)}; supported: {' '.join(shown_targets) or 'none'}"
            f"{'' if not targets else ' (restricted by --cuda-archs ' + ' '.join(targets) + ')'}; CUDA {toolkit})"
        )
    return [str(c) for c in result]


def cuda_gencode_flags(archs: list[str]) -> list[str]:
    """nvcc -gencode flags: SASS for every arch, plus PTX for `+PTX` entries."""
    flags: list[str] = []
    for text in archs:
        cap = Capability.parse(text)
        flags.append(f"-gencode=arch=compute_{cap.sm},code=sm_{cap.sm}")
        if cap.ptx:
            flags.append(f"-gencode=arch=compute_{cap.sm},code=compute_{cap.sm}")
    return flags


def select_rocm_archs(section: str, requested: list[str] | None) -> list[str]:
    """Exact intersection with the supported ROCm targets (None: all of them)."""
    if requested is None:
        return list(ROCM_ARCHS)
    result = [a for a in ROCM_ARCHS if a in requested]
    if not result:
        raise ArchError(
            f"ROCm kernel {section}: empty set of architectures after intersection "
            f"(kernel: {' '.join(requested)}; supported: {' '.join(ROCM_ARCHS)})"
        )
    return result


def metadata_archs(archs: list[str]) -> list[str]:
    """The `backend.archs` list of metadata.json: sorted union, as strings."""
    return sorted(set(archs))
