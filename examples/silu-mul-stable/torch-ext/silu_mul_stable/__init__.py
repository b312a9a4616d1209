"""silu_and_mul(x, out=None): the SwiGLU gate, built on the torch stable ABI."""

from typing import Optional

import torch

from ._ops import add_op_namespace_prefix, ops


def silu_and_mul(x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """silu(x[..., :d]) * x[..., d:] where x's last dimension is 2 * d."""
    if out is None:
        out = torch.empty(x.shape[:-1] + (x.shape[-1] // 2,), dtype=x.dtype, device=x.device)
    ops.silu_and_mul(out, x.contiguous())
    return out


@torch.library.register_fake(add_op_namespace_prefix("silu_and_mul"))
def _silu_and_mul_fake(out: torch.Tensor, x: torch.Tensor) -> None:
    return None


__all__ = ["silu_and_mul"]
