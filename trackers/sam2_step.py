"""The SAM 2 frame step as pure functions of tensors: static shapes, no host sync, no dtype casts.

:func:`frame_step` is one frame for every object at once: the image encoder, the memory attention
of each object over its memory slots (``sam2_bank``), the mask decoder, the memory encoder and the
low-resolution post-processing, ending in ONE byte buffer of results for the host. Everything it
reads about the memory layout arrives as tensors (which slots are read, their temporal rows, the
pointers' offsets, the ring slots to write), uploaded with the frame in one copy; the only Python
values are shapes (the object bucket, the conditioning slots in use, the video size) and whether a
padding mask is needed, so ``torch.compile(fullgraph=True)`` takes it whole and a CUDA graph can
replay it. :func:`prompt_boxes` and :func:`prompt_masks` prompt a batch of objects on the frame.

The weights are held in the working dtype once (``StepModel``): no autocast, so no per-frame weight
casts; the frame is turned into the working dtype by the arithmetic that normalises it.

SAM 2's own modules (``image_encoder.trunk``, the neck's convolutions, ``sam_prompt_encoder``,
``sam_mask_decoder``, ``memory_encoder``'s layers, ``obj_ptr_proj``...) do the work; what is written
here is the glue SAM 2 writes with Python values (memory selection, the heads' selection of the
best mask, the memory encoder's constant position encoding), as tensor code.

Example:
    >>> step = StepModel(model, torch.float32, video_hw=(480, 640))               # doctest: +SKIP
    >>> feats = encode(step, frame_tensor)                                         # doctest: +SKIP
    >>> out = track(step, feats, memory, pointers, slots_tensor, masked=False)     # doctest: +SKIP
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from . import masks as postprocess
from .base import unpack_rows
from .sam2_memory import Rotary, memory_attention, rotary_grid, rotary_table

# SAM 2 normalises images with the ImageNet statistics.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
NO_OBJ_SCORE = -1024.0  # sam2_base.NO_OBJ_SCORE: logits of an object that is not there


class Tracked(NamedTuple):
    """What a step gives back, on the device. Rows are the bucket's (padding rows included)."""

    logits: torch.Tensor  # (B, 1, h, w) low-res mask logits (working dtype)
    scores: torch.Tensor  # (B, 1) object score logits
    features: torch.Tensor  # (B, mem_dim, h', w') the frame's new spatial memory
    pointers: torch.Tensor  # (B, C) the frame's object pointers
    conditioned: torch.Tensor  # (B, C, h', w') memory-conditioned features (a re-prompt on this frame reuses them)
    payload: torch.Tensor | None  # uint8: packed masks, boxes, areas, overlaps, appearance (FramePayload); None
    # after a prompt (the engine post-processes the frame once, after all of its prompts)


class StepModel:
    """SAM 2's modules in the working dtype, and the constants of a video size, built once.

    Args:
        model: the SAM 2 model (``SAM2Base``); left untouched (a copy is cast when `dtype` differs).
        dtype: the working dtype (bf16 on CUDA, float32 on the CPU).
        video_hw: the frames' size: post-processing upsamples to it.
        fill_hole_area: holes/specks filled up to this many low-res cells (0: off).
    """

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype, video_hw: tuple[int, int],
                 fill_hole_area: int = 0) -> None:
        weights = next(model.parameters()).dtype
        self.model = model if weights == dtype else copy.deepcopy(model).to(dtype)
        m = self.model
        m.sam_prompt_encoder.pe_layer.float()  # point coordinates are encoded in float32 (prompts only)
        if int(m.memory_temporal_stride_for_eval) != 1:
            raise NotImplementedError("SAM 2 with memory_temporal_stride_for_eval != 1 is not supported")
        self.dtype = dtype
        self.video_hw = tuple(int(x) for x in video_hw)
        self.fill_hole_area = int(fill_hole_area)
        self.image_size = int(m.image_size)
        self.hidden, self.mem_dim = int(m.hidden_dim), int(m.mem_dim)
        self.split = self.hidden // self.mem_dim if self.mem_dim < self.hidden else 1
        device = m.maskmem_tpos_enc.device
        with torch.inference_mode():
            # image normalisation as one multiply-add that also turns uint8 into the working dtype
            std = torch.tensor(_STD, device=device).view(3, 1, 1)
            self.pixel_scale = (1.0 / (255.0 * std)).to(dtype)
            self.pixel_shift = (torch.tensor(_MEAN, device=device).view(3, 1, 1) / std).to(dtype)
            # the prompt encoder's answers that never change: no prompt at all, the dense image PE
            pe = m.sam_prompt_encoder
            self.image_pe = pe.get_dense_pe().to(dtype)
            self.no_prompt_sparse = pe.not_a_point_embed.weight.view(1, 1, -1).expand(1, 2, -1).to(dtype)
            h, w = pe.image_embedding_size
            self.no_mask_dense = pe.no_mask_embed.weight.view(1, -1, 1, 1).expand(1, -1, h, w).to(dtype)
            self.box_labels = torch.tensor([[2, 3]], dtype=torch.int32, device=device)  # box corners
            # the pointers' temporal encoding: sin/cos frequencies (get_1d_sine_pe's), built once
            tpos_dim = self.hidden if m.proj_tpos_enc_in_obj_ptrs else self.mem_dim
            half = torch.arange(tpos_dim // 2, dtype=torch.float32, device=device)
            freq = 10000 ** (2 * (half // 2) / (tpos_dim // 2))
            # offset / t_diff_max / freq as ONE multiply of the int offsets (which promotes them: no cast)
            self.ptr_angle = (1.0 / (max(1, m.max_obj_ptrs_in_encoder - 1) * freq)).to(dtype)
            self.tpos_table = m.maskmem_tpos_enc.view(m.num_maskmem, self.mem_dim)
        self.query_pos: torch.Tensor | None = None  # (1, HW, C): set from the first frame's sizes
        self.memory_pos: torch.Tensor | None = None  # (HW, mem_dim): the memory's spatial encoding
        self._grid: torch.Tensor | None = None  # RoPE's complex angles of the feature grid
        self._resize: tuple | None = None  # (size, rows, cols) resizing matrices (half types)
        self._rope: dict = {}

    @torch.inference_mode()
    def prepare(self, feats: list[torch.Tensor]) -> None:
        """Build the constants that depend on the feature sizes (once, from the first frame's features)."""
        if self.query_pos is not None:
            return
        m = self.model
        top = feats[-1]
        self.query_pos = m.image_encoder.neck.position_encoding(top).to(self.dtype).flatten(2).transpose(1, 2)
        probe = m.memory_encoder.out_proj(m.memory_encoder.pix_feat_proj(top))
        self.memory_pos = m.memory_encoder.position_encoding(probe).to(self.dtype)[0].flatten(1).T.contiguous()

    def resize_matrices(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Antialiased bilinear resizing of an h x w image to the input size as (S, h) and (w, S)
        matrices in the working dtype: F.interpolate's weights, read off identity images once per size."""
        if self._resize is None or self._resize[0] != (h, w):
            size = self.image_size
            rows = F.interpolate(torch.eye(h)[None, None], size=(size, h), mode="bilinear", antialias=True,
                                 align_corners=False)[0, 0]
            cols = F.interpolate(torch.eye(w)[None, None], size=(w, size), mode="bilinear", antialias=True,
                                 align_corners=False)[0, 0]
            device = self.pixel_scale.device
            self._resize = ((h, w), rows.to(device, self.dtype), cols.to(device, self.dtype))
        return self._resize[1], self._resize[2]

    def rope(self, frames: int, pointer_tokens: int) -> tuple[Rotary, Rotary]:
        """Rotary tables: the query grid's, and the memory's (`frames` grids, then pointer tokens unrotated).

        Inputs of the step, kept for the grid and the last memory layout only (tens of MB at 1024 px)."""
        hw = self.query_pos.shape[1]
        if self._grid is None or self._grid.shape[0] != hw:
            self._grid = rotary_grid(self.model.memory_attention.layers[0].self_attn, hw, self.query_pos.device)
            self._rope = {"grid": rotary_table(self._grid, 1, 0, self.dtype)}
        key = (frames, pointer_tokens)
        if key not in self._rope:
            self._rope = {"grid": self._rope["grid"], key: rotary_table(self._grid, frames, pointer_tokens, self.dtype)}
        return self._rope["grid"], self._rope[key]


# ---------------------------------------------------------------------- the image
def encode(step: StepModel, frame: torch.Tensor) -> list[torch.Tensor]:
    """A frame (H, W, 3) uint8 on the device -> SAM 2's feature maps, (1, C_l, H_l, W_l) per level."""
    m = step.model
    image = frame.permute(2, 0, 1) * step.pixel_scale - step.pixel_shift  # uint8 -> working dtype, normalised
    # bilinear (antialiased) is linear with weights summing to one: resizing after normalising is the same
    if image.shape[-2:] == (step.image_size, step.image_size):
        image = image[None]
    elif step.dtype == torch.float32:
        image = F.interpolate(image[None], size=(step.image_size, step.image_size), mode="bilinear",
                              antialias=True, align_corners=False)
    else:  # the same resize as two matrix products in the working dtype (no antialiased kernel for half types)
        rows, cols = step.resize_matrices(*image.shape[-2:])
        image = (rows @ image @ cols)[None]
    encoder = m.image_encoder
    feats = _fpn(encoder.neck, encoder.trunk(image))
    if encoder.scalp > 0:
        feats = feats[: -encoder.scalp]
    if m.use_high_res_features_in_sam:
        feats[0] = m.sam_mask_decoder.conv_s0(feats[0])
        feats[1] = m.sam_mask_decoder.conv_s1(feats[1])
    return feats[-m.num_feature_levels:]


def _fpn(neck: torch.nn.Module, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """SAM 2's FPN neck without its position encodings (constants here) and in the working dtype
    (SAM 2 upsamples in float32; with its nearest-neighbour top-down path the values are the same)."""
    n = len(neck.convs) - 1
    out: list[torch.Tensor] = [None] * len(neck.convs)  # type: ignore[list-item]
    previous = None
    for i in range(n, -1, -1):
        lateral = neck.convs[n - i](xs[i])
        if i in neck.fpn_top_down_levels and previous is not None:
            nearest = neck.fpn_interp_model == "nearest"
            top_down = F.interpolate(previous, scale_factor=2.0, mode=neck.fpn_interp_model,
                                     align_corners=None if nearest else False, antialias=False)
            previous = lateral + top_down
            if neck.fuse_type == "avg":
                previous = previous / 2
        else:
            previous = lateral
        out[i] = previous
    return out


# ---------------------------------------------------------------------- tracking
def repeat_each(x: torch.Tensor, times: int) -> torch.Tensor:
    """(B, N, ...) -> (B, N * times, ...), each entry `times` times in a row (``repeat_interleave``
    with a count known on the host: an expand and one copy, never a device-side size)."""
    return x.unsqueeze(2).expand(x.shape[0], x.shape[1], times, *x.shape[2:]).reshape(
        x.shape[0], x.shape[1] * times, *x.shape[2:])


def unpack_slots(step: StepModel, packed: torch.Tensor, rows: int, spatial: int, pointers: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``SlotInputs.packed()`` on the device -> (tpos (B,S), valid (B,S+P) bool, offsets (B,P), ring, ptr_ring)."""
    a = rows * spatial
    b = a + rows * (spatial + pointers)
    c = b + rows * pointers
    tpos = packed[:a].view(rows, spatial)
    valid = packed[a:b].view(rows, spatial + pointers) > 0
    offsets = packed[b:c].view(rows, pointers)
    return tpos, valid, offsets, packed[c:c + 1], packed[c + 1:c + 2]


def memory_tokens(step: StepModel, features: torch.Tensor, pointers: torch.Tensor, tpos: torch.Tensor,
                  offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Memory tokens and their positions as SAM 2 lays them out: (B, S*HW + P*split, mem_dim) each.

    Spatial slots carry the memory's spatial encoding plus the temporal row of their slot; pointers
    are split into ``C // mem_dim`` tokens each and carry the projected sine encoding of their offset."""
    m = step.model
    rows, slots, hw, mem_dim = features.shape
    memory = [features.reshape(rows, slots * hw, mem_dim)]
    pos = [(step.memory_pos + step.tpos_table[tpos].unsqueeze(2)).reshape(rows, slots * hw, mem_dim)]
    n_ptr = pointers.shape[1]
    memory.append(pointers.reshape(rows, n_ptr * step.split, mem_dim))
    if m.add_tpos_enc_to_obj_ptrs:
        angles = offsets.unsqueeze(-1) * step.ptr_angle
        sine = torch.cat([angles.sin(), angles.cos()], dim=-1)
        ptr_pos = m.obj_ptr_tpos_proj(sine)
    else:
        ptr_pos = pointers.new_zeros((rows, n_ptr, mem_dim))
    pos.append(repeat_each(ptr_pos, step.split))
    return torch.cat(memory, dim=1), torch.cat(pos, dim=1)


def track(step: StepModel, feats: list[torch.Tensor], features: torch.Tensor, pointers: torch.Tensor,
          slots: torch.Tensor, masked: bool, query_rope: Rotary, memory_rope: Rotary) -> Tracked:
    """Every row of the memory buffers tracked onto the frame of `feats`: one batched SAM 2 forward.

    features (B, S, HW, mem_dim) and pointers (B, P, C): the slots read (views of the bank);
    slots: the packed slot inputs (``SlotInputs.packed()`` uploaded); masked: whether some slot is
    empty (fill-up), so the attention takes a padding mask; else none (SDPA's fastest kernels)."""
    m = step.model
    rows, n_spatial, hw, _ = features.shape
    n_ptr = pointers.shape[1]
    tpos, valid, offsets, _, _ = unpack_slots(step, slots, rows, n_spatial, n_ptr)
    memory, memory_pos = memory_tokens(step, features, pointers, tpos, offsets)
    mask = None
    if masked:
        mask = torch.cat([repeat_each(valid[:, :n_spatial], hw), repeat_each(valid[:, n_spatial:], step.split)], dim=1)
    top = feats[-1]
    _, channels, h, w = top.shape
    x = top.flatten(2).transpose(1, 2)  # (1, HW, C): the frame, the same for every object
    conditioned = memory_attention(m.memory_attention, x, step.query_pos, memory, memory_pos, mask,
                                   query_rope, memory_rope)
    conditioned = conditioned.transpose(1, 2).reshape(rows, channels, h, w)
    high_res = [f.expand(rows, -1, -1, -1) for f in feats[:-1]] or None
    logits, high, pointer, scores = _heads(step, conditioned, step.no_prompt_sparse.expand(rows, -1, -1),
                                           step.no_mask_dense.expand(rows, -1, -1, -1), high_res,
                                           multimask=m._use_multimask(False, None))
    new_features = _encode_memory(step, top, high, scores, binarize=False)
    return Tracked(logits, scores, new_features, pointer, conditioned, frame_payload(step, logits, top))


def _heads(step: StepModel, pix_feat: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor,
           high_res: list[torch.Tensor] | None, multimask: bool):
    """SAM 2's ``_forward_sam_heads`` after the prompt encoder: (low-res logits, high-res logits,
    object pointers, object score logits), the best of the multimask outputs picked on the device."""
    m = step.model
    multi, ious, tokens, scores = m.sam_mask_decoder(
        image_embeddings=pix_feat, image_pe=step.image_pe, sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense, multimask_output=multimask, repeat_image=False, high_res_features=high_res)
    appearing = scores > 0
    if m.pred_obj_scores:
        multi = torch.where(appearing[:, :, None, None], multi, NO_OBJ_SCORE)
    if multimask:
        best = ious.argmax(dim=-1)
        logits = multi.gather(1, best.view(-1, 1, 1, 1).expand(-1, 1, *multi.shape[-2:]))
        token = tokens.gather(1, best.view(-1, 1, 1).expand(-1, 1, tokens.shape[-1]))[:, 0] \
            if tokens.shape[1] > 1 else tokens[:, 0]
    else:
        logits, token = multi, tokens[:, 0]
    high = F.interpolate(logits, size=(step.image_size, step.image_size), mode="bilinear", align_corners=False)
    pointer = m.obj_ptr_proj(token)
    if m.pred_obj_scores:
        if m.soft_no_obj_ptr:
            weight = scores.sigmoid()
            if m.fixed_no_obj_ptr:
                pointer = weight * pointer
            pointer = pointer + (1 - weight) * m.no_obj_ptr
        elif m.fixed_no_obj_ptr:  # a 0/1 weight w: w * pointer + (1 - w) * no_obj_ptr
            pointer = torch.where(appearing, pointer, m.no_obj_ptr)
        else:  # pointer + (1 - w) * no_obj_ptr
            pointer = torch.where(appearing, pointer, pointer + m.no_obj_ptr)
    return logits, high, pointer, scores


def _encode_memory(step: StepModel, top: torch.Tensor, high: torch.Tensor, scores: torch.Tensor,
                   binarize: bool) -> torch.Tensor:
    """SAM 2's ``_encode_new_memory``: the frame's features fused with each object's mask -> (B, mem_dim, h, w).

    The frame's projection is computed once for all objects (it does not depend on the mask)."""
    m = step.model
    encoder = m.memory_encoder
    if binarize:  # a mask from a box prompt enters the memory as 0/1, as SAM 2 does (prompts only)
        mask = (high > 0).to(high.dtype)
    else:
        mask = torch.sigmoid(high)
    if m.sigmoid_scale_for_mem_enc != 1.0:
        mask = mask * m.sigmoid_scale_for_mem_enc
    if m.sigmoid_bias_for_mem_enc != 0.0:
        mask = mask + m.sigmoid_bias_for_mem_enc
    x = encoder.pix_feat_proj(top) + encoder.mask_downsampler(mask)
    x = encoder.out_proj(encoder.fuser(x))
    if m.no_obj_embed_spatial is not None:
        x = torch.where((scores > 0)[:, :, None, None], x, x + m.no_obj_embed_spatial[..., None, None])
    return x


# ---------------------------------------------------------------------- prompting
def prompt_boxes(step: StepModel, feats: list[torch.Tensor], pix_feat: torch.Tensor, boxes: torch.Tensor,
                 previous: torch.Tensor | None, corrected: torch.Tensor | None) -> Tracked:
    """Objects prompted with boxes (N, 4 xyxy in SAM 2 input pixels) on the frame of `feats`, as one batch.

    pix_feat (N, C, h, w): each object's features (memory-conditioned for a correction, the frame's
    plus SAM 2's no-memory embedding for a new object); previous (N, 1, h4, w4): current mask logits,
    the mask prompt of the rows where `corrected` (N,) is true (a correction), or None for none."""
    m = step.model
    rows = boxes.shape[0]
    points = boxes.view(rows, 2, 2)
    labels = step.box_labels.expand(rows, -1)
    sparse, _ = m.sam_prompt_encoder(points=(points, labels), boxes=None, masks=None)
    dense = step.no_mask_dense.expand(rows, -1, -1, -1)
    if previous is not None:
        dense = torch.where(corrected[:, None, None, None], m.sam_prompt_encoder.mask_downscaling(previous), dense)
    high_res = [f.expand(rows, -1, -1, -1) for f in feats[:-1]] or None
    logits, high, pointer, scores = _heads(step, pix_feat, sparse.to(step.dtype), dense, high_res,
                                           multimask=m._use_multimask(True, {"point_labels": labels}))
    features = _encode_memory(step, feats[-1], high, scores, binarize=m.binarize_mask_from_pts_for_mem_enc)
    return Tracked(logits, scores, features, pointer, pix_feat, None)


def prompt_masks(step: StepModel, feats: list[torch.Tensor], masks: torch.Tensor) -> Tracked:
    """New objects prompted with masks (N, H, W bool, video size) on the frame of `feats`: SAM 2 takes
    the mask as the output (``_use_mask_as_output``) and the object pointer from the decoder."""
    m = step.model
    rows = masks.shape[0]
    size = step.image_size
    resized = F.interpolate(masks[:, None].to(torch.float32), size=(size, size), mode="bilinear",
                            align_corners=False, antialias=True)
    # in float32 (antialiased resizing has no half-type kernel everywhere), then the working dtype:
    # prompts only, these casts are not a frame's
    high = torch.where(resized >= 0.5, 10.0, -10.0)  # sigmoid(-10) ~ 0: SAM 2's out_scale and out_bias
    low = F.interpolate(high, size=(size // 4, size // 4), mode="bilinear", align_corners=False, antialias=True)
    binary = (resized >= 0.5).to(step.dtype)
    high, low = high.to(step.dtype), low.to(step.dtype)
    top = feats[-1]
    pix_feat = (top + m.no_mem_embed.view(1, -1, 1, 1)).expand(rows, -1, -1, -1)
    _, dense = m.sam_prompt_encoder(points=None, boxes=None, masks=m.mask_downsample(binary))
    high_res = [f.expand(rows, -1, -1, -1) for f in feats[:-1]] or None
    _, _, pointer, _ = _heads(step, pix_feat, step.no_prompt_sparse.expand(rows, -1, -1), dense, high_res,
                              multimask=False)
    appearing = binary.flatten(1).amax(dim=1, keepdim=True) > 0
    scores = appearing.to(step.dtype) * 20.0 - 10.0
    if m.pred_obj_scores:
        pointer = torch.where(appearing, pointer, m.no_obj_ptr if m.fixed_no_obj_ptr else pointer + m.no_obj_ptr)
    features = _encode_memory(step, top, high, scores, binarize=False)
    return Tracked(low, scores, features, pointer, pix_feat, None)


# ---------------------------------------------------------------------- results for the host
def frame_payload(step: StepModel, logits: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """The frame's results for the host as ONE uint8 buffer (one copy): low-res logits -> holes/specks ->
    one upsampling to video size -> bit-packed masks, boxes, areas, the pixels each pair of masks
    shares (what the associator reads instead of the masks); and each object's appearance (the
    frame's top-level features averaged under its mask, L2-normalised; ``AppearanceTracker``), with
    whether its mask covers any feature cell. Layout: :class:`FramePayload`."""
    low = postprocess.fill_small_holes_lowres(logits, step.fill_hole_area)
    masks = F.interpolate(low, size=step.video_hw, mode="bilinear", align_corners=False)[:, 0] > 0
    boxes, areas = postprocess.boxes_and_areas(masks)
    grid = F.interpolate(logits, size=top.shape[-2:], mode="bilinear", align_corners=False)[:, 0] > 0
    cells = grid.flatten(1).sum(1)
    vectors = F.normalize((top * grid[:, None]).sum((2, 3)) / cells.clamp(min=1)[:, None], dim=1)
    return torch.cat([postprocess.pack_bits(masks).flatten(), boxes.view(torch.uint8).flatten(),
                      areas.view(torch.uint8).flatten(), postprocess.pairwise_overlap(masks).view(torch.uint8).flatten(),
                      (cells > 0).view(torch.uint8), vectors.contiguous().view(torch.uint8).flatten()])


@dataclass
class FramePayload:
    """The host side of :func:`frame_payload`, split without copying; masks stay packed until unpacked."""

    data: np.ndarray  # uint8
    rows: int
    video_hw: tuple[int, int]
    dtype: torch.dtype  # the working dtype of the appearance vectors
    channels: int

    @property
    def row_bytes(self) -> int:
        """Bytes of one packed mask (its pixels, 8 a byte, padded to a whole byte)."""
        h, w = self.video_hw
        return (h * w + 7) // 8

    def packed(self, n: int) -> np.ndarray:
        """The first `n` rows' packed masks, (n, row_bytes) uint8 (``numpy.unpackbits`` per row)."""
        return self.data[:self.rows * self.row_bytes].reshape(self.rows, self.row_bytes)[:n]

    def masks(self, n: int) -> np.ndarray:
        """The first `n` rows' masks, (n, H, W) bool."""
        return unpack_rows(self.packed(n), self.video_hw)

    def boxes_areas(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """((n, 4) xyxy float32 boxes, max inclusive as ``supervision.mask_to_xyxy``, (n,) int64 areas)."""
        at = self._after_masks
        boxes = self.data[at:at + 32 * self.rows].view(np.int64).reshape(self.rows, 4)[:n].astype(np.float32)
        areas = self.data[at + 32 * self.rows:at + 40 * self.rows].view(np.int64)[:n]
        return boxes, areas

    def overlaps(self, n: int) -> np.ndarray:
        """(n, n) float32: pixels each pair of the first `n` masks shares (the diagonal: their areas)."""
        at = self._after_masks + 40 * self.rows
        return self.data[at:at + 4 * self.rows ** 2].view(np.float32).reshape(self.rows, self.rows)[:n, :n]

    def appearance(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """((n, C) float32 L2-normalised vectors, (n,) whether each mask covers any feature cell)."""
        at = self._after_masks + 40 * self.rows + 4 * self.rows ** 2
        seen = self.data[at:at + self.rows].view(bool)[:n]
        raw = self.data[at + self.rows:]
        if self.dtype == torch.bfloat16:  # bf16 is the high half of a float32
            vectors = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            vectors = raw.view({torch.float32: np.float32, torch.float16: np.float16}[self.dtype]).astype(np.float32)
        return vectors.reshape(self.rows, self.channels)[:n], seen

    @property
    def _after_masks(self) -> int:
        return self.rows * self.row_bytes
