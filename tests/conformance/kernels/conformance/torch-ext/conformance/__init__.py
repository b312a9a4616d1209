"""Runtime conformance probes for kernel-builder's portable binaries (used by its test suite).

Every op in `ops` is one probe; most return a JSON object, which `probe` decodes.
"""

import json

import torch

from ._ops import ops


def probe(name: str, *args):
    """Call the probe op `name` and decode the JSON object it returns."""
    return json.loads(getattr(ops, name)(*args))


def fill_(out: torch.Tensor, value: float) -> torch.Tensor:
    """out[:] = value (contiguous float32, CPU or CUDA); returns out."""
    ops.fill_(out, value)
    return out


__all__ = ["fill_", "ops", "probe"]
