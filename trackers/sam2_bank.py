"""Every object's SAM 2 memory in preallocated device buffers, with the bookkeeping on the host.

SAM 2 reads, per object and frame: its conditioning (prompted) frames, the memories of the last
``num_maskmem - 1`` frames, and the object pointers of the last ``max_obj_ptrs_in_encoder - 1``
frames. :class:`MemoryBank` keeps exactly that in fixed slots, one row per object:

- spatial slots ``[recent ring (num_maskmem - 1) | conditioning (max_cond)]`` of ``(HW, mem_dim)`` each;
- pointer slots ``[recent ring (max_obj_ptrs - 1) | conditioning (max_cond)]`` of ``(C,)`` each.

A frame's memory goes to ring slot ``frame % ring`` for every row at once (one in-place copy,
the slot travelling as a device index), a prompt to a conditioning slot of its row. Which frame
each slot holds lives in small host arrays; before a step they become the step's inputs
(:meth:`MemoryBank.slots`): per slot, its temporal-encoding row and whether it is read, per
pointer its temporal offset. Nothing about the layout is a Python value inside the step, so one
graph serves every frame of a bucket.

Rows are kept in the order objects were added, padded to a bucket (:func:`bucket`): the step's
shapes change only when the object count crosses a bucket or the conditioning slots in use grow.
The attention reads the recent slots and the conditioning slots in use (a contiguous view);
when every row's slots are all filled, no padding mask is needed.

Example:
    >>> bucket(1), bucket(9), bucket(13), bucket(16), bucket(100), bucket(129)
    (1, 10, 14, 16, 112, 160)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .transfer import upload

EMPTY = -(1 << 30)  # a slot that holds no frame (far from any frame index)


def bucket(count: int) -> int:
    """The padded row count for `count` objects: every count to 8, then 2^k x (1.25, 1.5, 1.75, 2),
    so padded rows never cost more than 25 % of the real ones (10, 12, 14, 16, 20, 24, 28, 32, 40, ...)."""
    if count <= 8:
        return max(count, 1)
    base = 8
    while base * 2 < count:
        base *= 2
    return next(base * quarters // 4 for quarters in (5, 6, 7, 8) if base * quarters // 4 >= count)


@dataclass
class SlotInputs:
    """A step's view of the bank, as host arrays (uploaded with the frame, one copy)."""

    tpos: np.ndarray  # (B, S) int64: row of maskmem_tpos_enc for each spatial slot read
    valid: np.ndarray  # (B, S + P) int64: 1 where the slot holds a memory SAM 2 reads (spatial, then pointers)
    offsets: np.ndarray  # (B, P) int64: temporal offset of each pointer slot read
    ring: int  # the recent spatial slot this frame's memory goes to
    ptr_ring: int  # the recent pointer slot this frame's pointer goes to
    full: bool  # every live row reads every slot: the attention needs no mask

    def packed(self) -> np.ndarray:
        """One int64 array: tpos, valid, offsets, then the two ring slots (see ``sam2_step.unpack_slots``)."""
        return np.concatenate([self.tpos.ravel(), self.valid.ravel(), self.offsets.ravel(),
                               np.array([self.ring, self.ptr_ring])]).astype(np.int64)


class MemoryBank:
    """Device ring buffers of every object's memory, rows in the order objects were added.

    Args:
        num_maskmem: SAM 2's memory frames (the current one included): the spatial ring holds the
            ``num_maskmem - 1`` before it.
        max_ptrs: ``max_obj_ptrs_in_encoder``: the pointer ring holds the ``max_ptrs - 1`` before it.
        max_cond: conditioning frames kept per object (the nearest ones stay).
        tokens, mem_dim, hidden: spatial tokens per frame (HW), memory channels, pointer channels.
        signed_offsets: SAM 2's ``use_signed_tpos_enc_to_obj_ptrs``.
    """

    def __init__(self, num_maskmem: int, max_ptrs: int, max_cond: int, tokens: int, mem_dim: int, hidden: int,
                 device: torch.device, feature_dtype: torch.dtype, pointer_dtype: torch.dtype,
                 signed_offsets: bool = True) -> None:
        self.num_maskmem = num_maskmem
        self.ring = num_maskmem - 1
        self.ptr_ring = max_ptrs - 1
        self.max_cond = max_cond
        self.tokens, self.mem_dim, self.hidden = tokens, mem_dim, hidden
        self.device = device
        self.feature_dtype, self.pointer_dtype = feature_dtype, pointer_dtype
        self.signed_offsets = signed_offsets
        self.ids: list[int] = []
        self.capacity = 0
        # host: the frame each slot holds (EMPTY when none)
        self.recent = np.zeros((0, self.ring), np.int64)
        self.recent_ptr = np.zeros((0, self.ptr_ring), np.int64)
        self.cond = np.zeros((0, max_cond), np.int64)
        # device
        self.features = torch.zeros((0, self.ring + max_cond, tokens, mem_dim), dtype=feature_dtype, device=device)
        self.pointers = torch.zeros((0, self.ptr_ring + max_cond, hidden), dtype=pointer_dtype, device=device)

    # ------------------------------------------------------------------ rows
    def __len__(self) -> int:
        return len(self.ids)

    def row(self, obj_id: int) -> int:
        return self.ids.index(obj_id)

    def rows(self, ids: Sequence[int]) -> list[int]:
        where = {obj_id: r for r, obj_id in enumerate(self.ids)}
        return [where[int(i)] for i in ids]

    def add(self, ids: Sequence[int]) -> list[int]:
        """Rows for new objects, after the others; their slots hold nothing yet."""
        first = len(self.ids)
        self.ids.extend(int(i) for i in ids)
        self._reserve(bucket(len(self.ids)))
        new = list(range(first, len(self.ids)))
        self.recent[new] = EMPTY
        self.recent_ptr[new] = EMPTY
        self.cond[new] = EMPTY
        return new

    def remove(self, ids: Sequence[int]) -> None:
        """Forget objects; the rows after them move up (rare: on keyframes), order kept."""
        gone = {int(i) for i in ids}
        keep = [r for r, obj_id in enumerate(self.ids) if obj_id not in gone]
        if len(keep) == len(self.ids):
            return
        self.ids = [self.ids[r] for r in keep]
        n = len(keep)
        if n and keep != list(range(n)):
            index = upload(np.array(keep, dtype=np.int64), self.device)  # rare: a removal, not a per-frame cost
            self.features[:n] = self.features.index_select(0, index)
            self.pointers[:n] = self.pointers.index_select(0, index)
        for table in (self.recent, self.recent_ptr, self.cond):
            table[:n] = table[keep]
            table[n:] = EMPTY

    def _reserve(self, rows: int) -> None:
        if rows <= self.capacity:
            return
        grow = rows - self.capacity
        self.features = torch.cat([self.features, self.features.new_zeros((grow, *self.features.shape[1:]))])
        self.pointers = torch.cat([self.pointers, self.pointers.new_zeros((grow, *self.pointers.shape[1:]))])
        self.recent = np.concatenate([self.recent, np.full((grow, self.ring), EMPTY, np.int64)])
        self.recent_ptr = np.concatenate([self.recent_ptr, np.full((grow, self.ptr_ring), EMPTY, np.int64)])
        self.cond = np.concatenate([self.cond, np.full((grow, self.max_cond), EMPTY, np.int64)])
        self.capacity = rows

    # ------------------------------------------------------------------ what a step reads
    def conditioning_in_use(self) -> int:
        """Conditioning slots the step reads: the most any live row holds (at least 1)."""
        n = len(self.ids)
        return max(1, int((self.cond[:n] != EMPTY).sum(1).max())) if n else 1

    def layout(self) -> tuple[int, int]:
        """(rows, conditioning slots in use): what the step's shapes depend on."""
        return bucket(len(self.ids)), self.conditioning_in_use()

    def views(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The buffers the step reads: (B, S, HW, mem_dim) spatial and (B, P, C) pointer slots (views)."""
        rows, cond = self.layout()
        return self.features[:rows, :self.ring + cond], self.pointers[:rows, :self.ptr_ring + cond]

    def slots(self, index: int, reverse: bool = False) -> SlotInputs:
        """The step's slot inputs for tracking every row onto frame `index` (forward or in reverse)."""
        rows, cond_used = self.layout()
        n = len(self.ids)
        sign = -1 if reverse else 1
        recent = self.recent[:rows]
        d_recent = sign * (index - recent)  # how many frames before `index` (in the direction of travel)
        recent_ok = (recent != EMPTY) & (d_recent >= 1) & (d_recent <= self.ring)
        cond = self.cond[:rows, :cond_used]
        cond_ok = cond != EMPTY
        if not reverse:
            cond_ok &= cond <= index  # SAM 2 reads only past prompts' pointers (and there are no others forward)
        spatial_ok = np.concatenate([recent_ok, cond_ok], axis=1)
        tpos = np.concatenate([np.clip(d_recent - 1, 0, self.num_maskmem - 1),
                               np.full(cond.shape, self.num_maskmem - 1)], axis=1)

        ptr = self.recent_ptr[:rows]
        d_ptr = sign * (index - ptr)
        ptr_ok = (ptr != EMPTY) & (d_ptr >= 1) & (d_ptr <= self.ptr_ring)
        cond_offset = (index - cond) * sign if self.signed_offsets else np.abs(index - cond)
        offsets = np.concatenate([np.where(ptr_ok, d_ptr, 0), np.where(cond_ok, cond_offset, 0)], axis=1)
        pointer_ok = np.concatenate([ptr_ok, cond_ok], axis=1)

        valid = np.concatenate([spatial_ok, pointer_ok], axis=1)
        full = bool(valid[:n].all())
        valid[n:] = True  # padding rows read whatever their slots hold (never all-masked: no NaN); dropped after
        return SlotInputs(tpos=tpos.astype(np.int64), valid=valid.astype(np.int64), offsets=offsets.astype(np.int64),
                          ring=index % self.ring, ptr_ring=index % self.ptr_ring, full=full)

    # ------------------------------------------------------------------ writes
    def write_tracked(self, index: int, features: torch.Tensor, pointers: torch.Tensor,
                      ring: torch.Tensor, ptr_ring: torch.Tensor) -> None:
        """Frame `index`'s memory of every row (the step's B rows; features (B, mem_dim, h, w)) into the
        recent rings, in place. `ring` / `ptr_ring`: the slots as device tensors (they came with the frame)."""
        rows = features.shape[0]
        tokens = features.flatten(2).transpose(1, 2).to(self.feature_dtype)  # (B, HW, mem_dim)
        self.features[:rows].index_copy_(1, ring.view(1), tokens.unsqueeze(1))
        self.pointers[:rows].index_copy_(1, ptr_ring.view(1), pointers.to(self.pointer_dtype).unsqueeze(1))
        n = len(self.ids)
        self.recent[:n, index % self.ring] = index
        self.recent_ptr[:n, index % self.ptr_ring] = index

    def assign_conditioning(self, rows: Sequence[int], index: int) -> list[int]:
        """Conditioning slots for rows prompted on frame `index` (the farthest prompt goes when full).

        The frame no longer counts as a tracked one for them (SAM 2 reads it as a prompt only)."""
        slots = [self._cond_slot(r, index) for r in rows]
        for r in rows:
            self.recent[r][self.recent[r] == index] = EMPTY
            self.recent_ptr[r][self.recent_ptr[r] == index] = EMPTY
        return slots

    def write_prompted(self, rows: torch.Tensor, slots: torch.Tensor, features: torch.Tensor,
                       pointers: torch.Tensor) -> None:
        """Prompted rows' memories into the conditioning slots :meth:`assign_conditioning` gave (device indices)."""
        self.features[rows, self.ring + slots] = features.flatten(2).transpose(1, 2).to(self.feature_dtype)
        self.pointers[rows, self.ptr_ring + slots] = pointers.to(self.pointer_dtype)

    def spawn(self, rows: Sequence[int], frame: int) -> "MemoryBank":
        """A bank of the given rows holding only their prompt on `frame` (back-fill tracks in reverse from it)."""
        other = MemoryBank(self.num_maskmem, self.ptr_ring + 1, self.max_cond, self.tokens, self.mem_dim, self.hidden,
                           self.device, self.feature_dtype, self.pointer_dtype, self.signed_offsets)
        other.add([self.ids[r] for r in rows])
        slots = [int(np.flatnonzero(self.cond[r] == frame)[0]) for r in rows]
        where = upload(np.array([list(rows), slots], dtype=np.int64), self.device)
        n = len(rows)
        other.features[:n, other.ring] = self.features[where[0], self.ring + where[1]]
        other.pointers[:n, other.ptr_ring] = self.pointers[where[0], self.ptr_ring + where[1]]
        other.cond[:n, 0] = frame
        return other

    def _cond_slot(self, row: int, index: int) -> int:
        held = self.cond[row]
        same = np.flatnonzero(held == index)
        if len(same):
            return int(same[0])
        free = np.flatnonzero(held == EMPTY)
        if len(free):
            slot = int(free[0])
        else:  # full: the farthest prompt goes (ties: the older), as SAM 2 keeps the nearest
            slot = int(max(range(self.max_cond), key=lambda s: (abs(index - held[s]), -held[s])))
        held[slot] = index
        return slot

    # ------------------------------------------------------------------ inspection
    def held(self, obj_id: int) -> dict[str, list[int]]:
        """Frames one object's slots hold: {"cond": [...], "recent": [...], "pointers": [...]} (sorted)."""
        r = self.row(obj_id)
        return {name: sorted(int(t) for t in table[r] if t != EMPTY)
                for name, table in (("cond", self.cond), ("recent", self.recent), ("pointers", self.recent_ptr))}
