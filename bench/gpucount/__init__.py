"""GPU cost counted on the CPU: kernel launches, host syncs, transfers, dtype casts and FLOPs.

One idea per module: ``aten`` (which operators launch, sync, cast), ``autocast`` (CUDA autocast's
rules, emulated), ``placement`` (host vs device tensors), ``flops``, ``shapes`` (shape-only
execution) and ``counter`` (the modes and :func:`count`). ``bench/gpu_counts.py`` uses it.

Example:
    >>> import torch
    >>> with count() as counter:
    ...     with counter.section("step"):
    ...         total = torch.ones(8, 8, device="cpu").t().sum()
    >>> counter.tallies[-1].launches    # ones + sum; the transpose is a view
    2
"""

from .counter import Counter, Sync, Tally, count

__all__ = ["Counter", "Sync", "Tally", "count"]
