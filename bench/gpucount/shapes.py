"""Shape-only execution: operators run on the meta device, results are uninitialised tensors.

For counting FLOPs at full size on a small CPU: every shape, and so every FLOP and every
launch of a code path that does not branch on values, is the real one, but no arithmetic is
done. Views still run for real (they alias their input), small results are computed for real
(their values may steer Python code: indices, counts) unless the values they read are out of
range (then uninitialised too), and an operator without a meta kernel runs for real on whatever
values its inputs hold.

Example:
    >>> import torch
    >>> out = run_shapes_only(torch.ops.aten.mm.default, (torch.empty(512, 256), torch.empty(256, 128)), {})
    >>> tuple(out.shape)
    (512, 128)
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten, tree_map

SMALL = 1 << 16  # results up to this many elements are computed for real


def _meta(x):
    return x.to("meta") if isinstance(x, torch.Tensor) else x


def _materialise(x):
    if isinstance(x, torch.Tensor):
        return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype)
    return x


def run_shapes_only(func, args: tuple, kwargs: dict):
    """`func`'s result with the right shapes, strides and dtypes, computed only where cheap."""
    try:
        meta_out = func(*tree_map(_meta, args), **tree_map(_meta, kwargs))
    except Exception:  # no meta kernel, or data-dependent shapes: the real thing
        return func(*args, **kwargs)
    outs = [x for x in tree_flatten(meta_out)[0] if isinstance(x, torch.Tensor)]
    if sum(x.numel() for x in outs) <= SMALL:
        try:
            return func(*args, **kwargs)
        except (RuntimeError, IndexError):  # values no real run would hold (an index never computed)
            pass
    if func._schema.is_mutable:  # in place: the (unchanged) input is the result
        return args[0]
    return tree_map(_materialise, meta_out)
