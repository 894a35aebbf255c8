"""SAM 2's memory attention for many objects at once, whatever frames each object remembers.

SAM 2 conditions the current frame on one object's memory: its spatial memories (``HW`` tokens
per remembered frame, with a temporal embedding) followed by its object pointers (each split into
``C // mem_dim`` tokens). Objects born or re-prompted on different frames remember different
frames, so their memories differ in length. This module lays every object's memory out the way
``SAM2Base._prepare_memory_conditioned_features`` does, pads them to the longest one (whole
spatial frames, so that RoPE's per-frame repetition of its frequencies still lines up; pointer
tokens after them) and runs the memory-attention layers once for the whole batch, with a key
padding mask. It calls the model's own weights; only the layer loop and the RoPE cross-attention
are re-written (SAM 2's have no mask argument).

With no padding the result is SAM 2's computation up to float rounding (RoPE is applied as a real
rotation in the working dtype instead of SAM 2's complex float32 round trip).

Example:
    >>> layout = select_memory(model, memory_cond, memory_non_cond, frame_idx=12)   # doctest: +SKIP
    >>> batch = MemoryBatch.build(model, [layout, other_layout], dtype=torch.float32)  # doctest: +SKIP
    >>> pix_feat = attention(curr, curr_pos, batch)          # (B, C, H, W)         # doctest: +SKIP
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from sam2.modeling.sam.transformer import RoPEAttention
from sam2.modeling.sam2_utils import get_1d_sine_pe, select_closest_cond_frames

Entry = dict[str, Any]  # one remembered frame: maskmem_features, maskmem_pos_enc, obj_ptr


@dataclass
class MemoryLayout:
    """What SAM 2 reads for one object on one frame: spatial memories and object pointers."""

    spatial: list[tuple[int, Entry]]  # (t_pos, entry): t_pos 0 for conditioning frames
    pointers: list[tuple[int, torch.Tensor]]  # (temporal offset, obj_ptr (1, C))


def select_memory(model: torch.nn.Module, cond: dict[int, Entry], non_cond: dict[int, Entry], frame_idx: int,
                  reverse: bool = False) -> MemoryLayout:
    """The frames SAM 2 attends to when it tracks (not prompts) one object on `frame_idx`.

    The same choice as ``SAM2Base._prepare_memory_conditioned_features`` in eval mode, for a
    video of unknown (unbounded) length.
    """
    selected, unselected = select_closest_cond_frames(frame_idx, cond, model.max_cond_frames_in_attn)
    spatial = [(0, out) for out in selected.values()]
    stride = model.memory_temporal_stride_for_eval
    for t_pos in range(1, model.num_maskmem):
        t_rel = model.num_maskmem - t_pos
        if t_rel == 1:
            prev = frame_idx + 1 if reverse else frame_idx - 1
        elif reverse:
            prev = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
        else:
            prev = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        out = non_cond.get(prev, unselected.get(prev))
        if out is not None and out["maskmem_features"] is not None:
            spatial.append((t_pos, out))

    pointers: list[tuple[int, torch.Tensor]] = []
    if model.use_obj_ptrs_in_encoder:
        sign = -1 if reverse else 1
        ptr_cond = selected
        if model.only_obj_ptrs_in_the_past_for_eval:
            ptr_cond = {t: out for t, out in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)}
        for t, out in ptr_cond.items():
            pos = (frame_idx - t) * sign if model.use_signed_tpos_enc_to_obj_ptrs else abs(frame_idx - t)
            pointers.append((pos, out["obj_ptr"]))
        for t_diff in range(1, model.max_obj_ptrs_in_encoder):
            t = frame_idx + t_diff if reverse else frame_idx - t_diff
            if t < 0:
                break
            out = non_cond.get(t, unselected.get(t))
            if out is not None:
                pointers.append((t_diff, out["obj_ptr"]))
    return MemoryLayout(spatial, pointers)


@dataclass
class MemoryBatch:
    """Padded memories of B objects: tokens, their position encodings and which ones are real."""

    memory: torch.Tensor  # (B, L, mem_dim)
    pos: torch.Tensor  # (B, L, mem_dim)
    valid: torch.Tensor | None  # (B, L) bool, None when nothing is padding
    frames: int  # spatial frames (padded): the first frames*HW tokens get RoPE
    pointer_tokens: int  # the last tokens: object pointers (padded), no RoPE

    @classmethod
    def build(cls, model: torch.nn.Module, layouts: list[MemoryLayout], dtype: torch.dtype,
              cache: dict | None = None) -> "MemoryBatch":
        """Pad and stack the memories of `layouts` (one per object).

        The index tensors (temporal slots, padding mask) depend only on the layouts' shapes, which
        repeat from frame to frame: with a `cache` dict they are built once per shape. The pointer
        offsets change every frame; they travel as one small non-blocking copy (no host sync).
        """
        device = model.maskmem_tpos_enc.device
        mem_dim, hidden = model.mem_dim, model.hidden_dim
        frames = max(len(layout.spatial) for layout in layouts)
        n_ptrs = max(len(layout.pointers) for layout in layouts)
        first = layouts[0].spatial[0][1]
        _, _, h, w = first["maskmem_features"].shape
        hw = h * w
        batch = len(layouts)
        split = hidden // mem_dim if mem_dim < hidden else 1  # a pointer becomes `split` tokens, as SAM 2 does
        key = (hw, tuple(tuple(t for t, _ in layout.spatial) for layout in layouts),
               tuple(len(layout.pointers) for layout in layouts))
        shapes = cache.get(key) if cache is not None else None
        if shapes is None:
            shapes = cls._shapes(model, layouts, frames, n_ptrs, hw, split, device)
            if cache is not None:
                if len(cache) >= 256:
                    cache.clear()
                cache[key] = shapes
        t_index, valid = shapes

        # Spatial memories: (B, F*HW, mem_dim); padded frames are zeros.
        zeros = first["maskmem_features"].new_zeros(first["maskmem_features"].shape)
        feats = [layout.spatial[f][1]["maskmem_features"] if f < len(layout.spatial) else zeros
                 for layout in layouts for f in range(frames)]
        spatial = torch.cat(feats).to(device=device, dtype=dtype)  # (B*F, mem_dim, h, w)
        spatial = spatial.flatten(2).transpose(1, 2).reshape(batch, frames * hw, mem_dim)
        # Their positions: the spatial encoding (the same for every frame) plus a temporal one.
        spatial_pos = first["maskmem_pos_enc"][-1].to(device=device, dtype=dtype).flatten(2).transpose(1, 2)
        tpos_table = model.maskmem_tpos_enc.view(model.num_maskmem, mem_dim).to(dtype)
        pos = (spatial_pos.unsqueeze(1) + tpos_table[t_index].unsqueeze(2)).reshape(batch, frames * hw, mem_dim)
        memory, memory_pos = [spatial], [pos]
        if n_ptrs:
            zero_ptr = torch.zeros((1, hidden), device=device, dtype=dtype)
            ptrs = torch.cat([(layout.pointers[p][1].to(dtype) if p < len(layout.pointers) else zero_ptr)
                              for layout in layouts for p in range(n_ptrs)])
            memory.append(ptrs.reshape(batch, n_ptrs * split, hidden // split))
            offsets = [layout.pointers[p][0] if p < len(layout.pointers) else 0
                       for layout in layouts for p in range(n_ptrs)]
            if model.add_tpos_enc_to_obj_ptrs:
                t_diff_max = model.max_obj_ptrs_in_encoder - 1
                tpos_dim = hidden if model.proj_tpos_enc_in_obj_ptrs else mem_dim
                sine = get_1d_sine_pe(_to_device(offsets, device) / t_diff_max, dim=tpos_dim)
                ptr_pos = model.obj_ptr_tpos_proj(sine.to(model.maskmem_tpos_enc.dtype)).to(dtype)
            else:
                ptr_pos = torch.zeros((len(offsets), mem_dim), device=device, dtype=dtype)
            memory_pos.append(ptr_pos.view(batch, n_ptrs, mem_dim).repeat_interleave(split, dim=1))
        return cls(torch.cat(memory, dim=1), torch.cat(memory_pos, dim=1), valid, frames, n_ptrs * split)

    @staticmethod
    def _shapes(model: torch.nn.Module, layouts: list[MemoryLayout], frames: int, n_ptrs: int, hw: int, split: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(temporal slot per padded frame (B, F), padding mask (B, L) or None when nothing is padded)."""
        t_index = _to_device([[model.num_maskmem - (layout.spatial[f][0] if f < len(layout.spatial) else 1) - 1
                               for f in range(frames)] for layout in layouts], device)
        if all(len(layout.spatial) == frames and len(layout.pointers) == n_ptrs for layout in layouts):
            return t_index, None
        valid = [_to_device([[f < len(layout.spatial) for f in range(frames)] for layout in layouts],
                            device).repeat_interleave(hw, dim=1)]
        if n_ptrs:
            valid.append(_to_device([[p < len(layout.pointers) for p in range(n_ptrs)] for layout in layouts],
                                    device).repeat_interleave(split, dim=1))
        return t_index, torch.cat(valid, dim=1)


def _to_device(values: list, device: torch.device) -> torch.Tensor:
    """A small host list as a tensor on `device`; on CUDA through pinned memory, without a host sync."""
    tensor = torch.tensor(values)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class MaskedMemoryAttention:
    """SAM 2's ``MemoryAttention`` forward over padded per-object memories, one call for the batch.

    Holds the module's weights in the working dtype (cast once, not per layer and frame) and the
    rotary tables per feature size. ``calls`` counts forwards (tests check that a frame costs one).
    With ``compile=True`` the layer loop runs through ``torch.compile`` with dynamic shapes: one
    compiled graph serves every object count and memory length (sizes 1 and 2+ and padded or not
    are compiled apart, so a video compiles at most four times).
    """

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype, compile: bool = False) -> None:
        weights_dtype = next(module.parameters()).dtype
        # bf16: a copy of the (small) module in bf16 once, instead of casting per layer and frame.
        self.module = module if weights_dtype == dtype else copy.deepcopy(module).to(dtype)
        self.dtype = dtype
        self.calls = 0
        self._forward = compiled_memory_attention() if compile else memory_attention
        self._rope: dict[tuple, Rotary] = {}

    def __call__(self, curr: torch.Tensor, curr_pos: torch.Tensor, batch: MemoryBatch) -> torch.Tensor:
        """curr, curr_pos: (HW, 1, C) current-frame features -> (HW, B, C) memory-conditioned ones."""
        self.calls += 1
        x = curr.to(self.dtype).transpose(0, 1)  # batch first
        query_pos = curr_pos.to(self.dtype).transpose(0, 1)
        hw = x.shape[1]
        out = self._forward(self.module, x, query_pos, batch.memory.to(self.dtype), batch.pos.to(self.dtype),
                            batch.valid, self._rotary(hw, 1, 0, x.device),
                            self._rotary(hw, batch.frames, batch.pointer_tokens, x.device))
        return out.transpose(0, 1)

    def _rotary(self, hw: int, frames: int, extra: int, device: torch.device) -> Rotary:
        """RoPE's angles for `frames` repetitions of the HW grid, then `extra` tokens left as they are.

        SAM 2 builds every memory-attention layer from one config, so the first layer's attention
        gives the table for all (``rope_k_repeat``: each memory frame repeats the grid's). Kept: the
        grid's table per size, and the table of the last memory layout only (at 1024 px one is tens
        of MB; the layout stays the same from frame to frame once objects are a few frames old)."""
        key = (hw, frames, extra, device)
        if key in self._rope:
            return self._rope[key]
        grid = self._rope.get((hw, 1, 0, device))
        if grid is None:
            attn = self.module.layers[0].self_attn
            if not isinstance(attn, RoPEAttention):
                raise TypeError("SAM 2 memory attention without rotary encoding is not supported")
            side = int(round(hw ** 0.5))
            grid = self._table(attn.compute_cis(end_x=side, end_y=side).to(device))  # (HW, head_dim/2)
            self._rope[(hw, 1, 0, device)] = grid
        if (frames, extra) == (1, 0):
            return grid
        cis = grid[0].repeat(frames, 1)
        if extra:  # object pointers: no rotation (SAM 2's num_k_exclude_rope)
            cis = torch.cat([cis, cis.new_ones((extra, cis.shape[1]))])
        for old in [k for k in self._rope if k[1:3] != (1, 0)]:
            del self._rope[old]
        self._rope[key] = self._table(cis, keep_complex=False)
        return self._rope[key]

    def _table(self, cis: torch.Tensor, keep_complex: bool = True) -> Rotary:
        """The angles in the form `_rotate` uses for this dtype: complex in float32, cos/sin in a half
        type (where the complex form is kept only for the grid, to build layouts from)."""
        if self.dtype == torch.float32:
            return cis, None, None
        return (cis if keep_complex else None), cis.real.to(self.dtype), cis.imag.to(self.dtype)


Rotary = tuple  # (cis complex, cos, sin), each (tokens, head_dim / 2); cos/sin None in float32


def memory_attention(module: torch.nn.Module, x: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor,
                     memory_pos: torch.Tensor, valid: torch.Tensor | None, query_rope: Rotary,
                     memory_rope: Rotary) -> torch.Tensor:
    """SAM 2's memory-attention layers, batch first: the frame's features x (1, HW, C), the same for
    every object, attend to each object's memory (B, L, mem_dim) -> (B, HW, C).

    The first layer's self-attention sees the frame alone, so it runs once for all objects (as if
    on B equal copies, at 1/B of the cost); the objects part where they meet their memories.
    `valid` (B, L) marks the real memory tokens (None: all); rotary tables as
    ``MaskedMemoryAttention._rotary`` makes them. Pure tensor code, so ``torch.compile`` takes it whole.
    """
    if module.pos_enc_at_input:
        x = x + 0.1 * query_pos
    mask = None if valid is None else valid[:, None, None, :]
    for layer in module.layers:
        # self-attention over the current frame
        y = layer.norm1(x)
        qk = y + query_pos if layer.pos_enc_at_attn else y
        x = x + _attention(layer.self_attn, qk, qk, y, query_rope, query_rope, None)
        x = x.expand(memory.shape[0], -1, -1)  # one row per object from here on (a view after the first layer)
        # cross-attention to the memory
        y = layer.norm2(x)
        q = y + query_pos if layer.pos_enc_at_cross_attn_queries else y
        k = memory + memory_pos if layer.pos_enc_at_cross_attn_keys else memory
        x = x + _attention(layer.cross_attn_image, q, k, memory, query_rope, memory_rope, mask)
        # feed-forward
        x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
    return module.norm(x)


def _attention(attn: torch.nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_rope: Rotary,
               k_rope: Rotary, mask: torch.Tensor | None) -> torch.Tensor:
    heads = attn.num_heads
    q = attn.q_proj(q).unflatten(-1, (heads, -1)).transpose(1, 2)  # (B, h, N, d)
    k = attn.k_proj(k).unflatten(-1, (heads, -1)).transpose(1, 2)
    v = attn.v_proj(v).unflatten(-1, (heads, -1)).transpose(1, 2)
    out = F.scaled_dot_product_attention(_rotate(q, q_rope), _rotate(k, k_rope), v, attn_mask=mask)
    return attn.out_proj(out.transpose(1, 2).flatten(2))


def _rotate(x: torch.Tensor, rope: Rotary) -> torch.Tensor:
    """RoPE: each consecutive pair of channels turned by its angle. In float32 as SAM 2 does it (one
    complex product, the fastest on a CPU); in a half type as a real rotation in that type (no round
    trip through float32 per layer)."""
    cis, cos, sin = rope
    if x.dtype == torch.float32:
        return torch.view_as_real(torch.view_as_complex(x.unflatten(-1, (-1, 2))) * cis).flatten(-2)
    pairs = x.unflatten(-1, (-1, 2))
    real, imag = pairs[..., 0], pairs[..., 1]
    return torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1).flatten(-2)


@functools.cache
def compiled_memory_attention():
    """`memory_attention` through ``torch.compile``, once per process: every engine shares its graphs."""
    return torch.compile(memory_attention, dynamic=True)
