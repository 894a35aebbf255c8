"""Which ATen operators are kernel launches, which synchronise the host, which are casts.

The project's definition (issue 25): a kernel launch is an ATen operator that is neither a view
nor a metadata operator; an operator whose tensors all sit on the host runs on the CPU and is
no launch either. A host synchronisation is an operator whose result the host must read before it
can go on (``.item()`` and friends, ``nonzero``, boolean-mask indexing, ``unique``...).

Example:
    >>> import torch
    >>> is_launch(torch.ops.aten.view.default), is_launch(torch.ops.aten.add.Tensor)
    (False, True)
    >>> sync_kind(torch.ops.aten.nonzero.default, (torch.ones(2),))
    'nonzero'
"""

from __future__ import annotations

import torch

# Operators that only make a new view of existing memory or read/write metadata: no kernel.
METADATA = frozenset({
    "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "t", "transpose", "select", "slice",
    "expand", "unsqueeze", "squeeze", "as_strided", "alias", "detach", "empty", "empty_strided", "empty_like",
    "new_empty", "new_empty_strided", "lift_fresh", "lift", "split", "split_with_sizes", "unbind", "chunk",
    "narrow", "diagonal", "unfold", "view_as_real", "view_as_complex", "real", "imag", "_neg_view", "_conj",
    "conj", "movedim", "flatten", "unflatten", "set_", "resize_", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset", "is_same_size", "_local_scalar_dense", "expand_as", "view_as", "_nested_view_from_buffer",
})
# A read of a device scalar: a device -> host copy, not a kernel (counted as a sync).
SCALAR_READ = "_local_scalar_dense"
_SYNCS = {
    "nonzero": "nonzero", "argwhere": "nonzero", "masked_select": "boolean mask", "_unique": "unique",
    "_unique2": "unique", "unique_dim": "unique", "unique_consecutive": "unique", "equal": "equal",
    "bincount": "bincount", "is_nonzero": "bool()",
}


def name(func: torch._ops.OpOverload) -> str:
    """The operator's name without namespace and overload (``aten.add.Tensor`` -> ``add``)."""
    return func.overloadpacket.__name__


def is_view(func: torch._ops.OpOverload) -> bool:
    return func.is_view or name(func) in METADATA


def is_launch(func: torch._ops.OpOverload) -> bool:
    """A kernel launch on a device (the caller decides host vs device)."""
    return not is_view(func)


def _bool_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


def sync_kind(func: torch._ops.OpOverload, args: tuple, kwargs: dict | None = None) -> str | None:
    """Why this call waits for the device (None: it does not)."""
    op = name(func)
    if op in _SYNCS:
        return _SYNCS[op]
    if op in ("index", "index_put", "index_put_", "_index_put_impl_") and len(args) > 1 and _bool_index(args[1]):
        return "boolean mask"
    if op == "repeat_interleave" and isinstance(args[0], torch.Tensor) and args[0].dtype != torch.bool \
            and len(args) == 1 and (kwargs or {}).get("output_size") is None:
        return "repeat_interleave"
    return None


def cast_change(func: torch._ops.OpOverload, args: tuple, out) -> bool:
    """An explicit dtype conversion (``_to_copy`` to another dtype: ``.to(dtype)``, ``.float()``...)."""
    return (name(func) == "_to_copy" and isinstance(out, torch.Tensor) and isinstance(args[0], torch.Tensor)
            and out.dtype != args[0].dtype)


def nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()
