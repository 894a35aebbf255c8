"""SAM 2's memory attention for many objects at once: the layer loop and RoPE cross-attention.

SAM 2 conditions the current frame on one object's memory: its spatial memories (``HW`` tokens
per remembered frame, with a temporal embedding) followed by its object pointers (each split into
``C // mem_dim`` tokens, not rotated). :func:`memory_attention` runs SAM 2's memory-attention
layers on a batch of objects' memories (laid out by ``sam2_step.memory_tokens`` from the slots of
``sam2_bank``), with an optional key padding mask for slots not yet filled. It calls the model's
own weights; only the layer loop and the attention are re-written (SAM 2's have no mask argument
and see one object at a time).

Example:
    >>> query_rope = rotary_table(attention_module, hw=16, frames=1, extra=0,
    ...                           dtype=torch.float32, device=torch.device("cpu"))    # doctest: +SKIP
    >>> out = memory_attention(model.memory_attention, x, query_pos, memory, memory_pos, None,
    ...                        query_rope, memory_rope)                                # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sam2.modeling.sam.transformer import RoPEAttention

Rotary = tuple  # (cis complex, cos, sin), each (tokens, head_dim / 2); cos/sin None in float32


def rotary_grid(attention: torch.nn.Module, hw: int, device: torch.device) -> torch.Tensor:
    """RoPE's complex angles of the HW grid (HW, head_dim / 2), float32, on `device` (built once)."""
    if not isinstance(attention, RoPEAttention):
        raise TypeError("SAM 2 memory attention without rotary encoding is not supported")
    side = int(round(hw ** 0.5))
    return attention.compute_cis(end_x=side, end_y=side).to(device)


def rotary_table(grid: torch.Tensor, frames: int, extra: int, dtype: torch.dtype) -> Rotary:
    """RoPE's angles for `frames` repetitions of the `grid`, then `extra` tokens left unrotated.

    SAM 2 builds every memory-attention layer from one config, so the first layer's attention gives
    the table for all (``rope_k_repeat``: each memory frame repeats the grid's; object pointers are
    SAM 2's ``num_k_exclude_rope`` tokens). Complex in float32 (one complex product, as SAM 2 does),
    cos/sin in a half type (a real rotation in that type, no round trip through float32). Built from
    the grid on its device: a new memory layout costs no upload."""
    cis = grid.repeat(frames, 1) if frames != 1 else grid
    if extra:
        cis = torch.cat([cis, cis.new_ones((extra, cis.shape[1]))])
    if dtype == torch.float32:
        return cis, None, None
    return None, cis.real.to(dtype), cis.imag.to(dtype)


def memory_attention(module: torch.nn.Module, x: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor,
                     memory_pos: torch.Tensor, valid: torch.Tensor | None, query_rope: Rotary,
                     memory_rope: Rotary) -> torch.Tensor:
    """SAM 2's memory-attention layers, batch first: the frame's features x (1, HW, C), the same for
    every object, attend to each object's memory (B, L, mem_dim) -> (B, HW, C).

    The first layer's self-attention sees the frame alone, so it runs once for all objects (as if
    on B equal copies, at 1/B of the cost); the objects part where they meet their memories.
    `valid` (B, L) marks the real memory tokens (None: all); rotary tables as :func:`rotary_table`
    makes them. Pure tensor code, so ``torch.compile`` takes it whole.
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
