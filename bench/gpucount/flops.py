"""Floating-point operations of one ATen call, attention included.

Matrix products and convolutions come from ``torch.utils.flop_counter``'s formulas. That
counter misses scaled-dot-product attention on the CPU (the CPU kernels are not in its
registry), so attention is counted here from the shapes: two matrix products,
``2*B*H*Lq*Lk*Dqk + 2*B*H*Lq*Lk*Dv`` (= 4*B*H*Lq*Lk*D when the head sizes agree).

Example:
    >>> import torch
    >>> q = torch.empty(2, 8, 64, 32); k = v = torch.empty(2, 8, 128, 32)
    >>> sdpa_flops(q, k, v) == 4 * 2 * 8 * 64 * 128 * 32
    True
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import flop_registry


def op_flops(func: torch._ops.OpOverload, args: tuple, kwargs: dict, out) -> int:
    """FLOPs of `func` by flop_counter's formula (0 for operators it has none for)."""
    formula = flop_registry.get(func.overloadpacket)
    if formula is None:
        return 0
    return int(formula(*args, **kwargs, out_val=out))


def sdpa_flops(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> int:
    """FLOPs of softmax(q k^T) v for (..., Lq, D) queries and (..., Lk, D) keys and values."""
    batch = math.prod(query.shape[:-2])
    lq, dqk = query.shape[-2:]
    lk, dv = key.shape[-2], value.shape[-1]
    return 2 * batch * lq * lk * dqk + 2 * batch * lq * lk * dv
