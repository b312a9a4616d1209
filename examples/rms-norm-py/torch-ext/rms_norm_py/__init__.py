"""rms_norm(x, weight, eps=None): root-mean-square normalisation as a registered custom op.

The op is registered in this build's own namespace (add_op_namespace_prefix), so several
builds can be loaded in one process. `defaults.json` ships as package data (pyext).
"""

import json
from pathlib import Path
from typing import Optional

import torch

from ._ops import add_op_namespace_prefix, ops

DEFAULT_EPS: float = json.loads((Path(__file__).parent / "defaults.json").read_text())["eps"]


@torch.library.custom_op(add_op_namespace_prefix("rms_norm"), mutates_args=())
def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    variance = x.float().pow(2).mean(dim=-1, keepdim=True)
    return (x.float() * torch.rsqrt(variance + eps)).to(x.dtype) * weight


@_rms_norm.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.empty_like(x)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: Optional[float] = None) -> torch.Tensor:
    """x / sqrt(mean(x^2, last dim) + eps) * weight."""
    return _rms_norm(x, weight, DEFAULT_EPS if eps is None else eps)


__all__ = ["DEFAULT_EPS", "ops", "rms_norm"]
