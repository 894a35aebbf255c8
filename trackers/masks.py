"""Mask post-processing on the tracker's device, at SAM 2's low resolution, batched over objects.

The frame's masks take one path: low-res logits (N, 1, 256, 256) -> holes filled and specks
removed on that grid (:func:`fill_small_holes_lowres`) -> ONE batched bilinear upsampling to video
size -> threshold -> boxes and areas (:func:`boxes_and_areas`) and the pixels each pair of masks
shares (:func:`pairwise_overlap`), all on the device -> masks bit-packed (:func:`pack_bits`) into the
frame's one copy to the host (``sam2_step.frame_payload``). What the associator asks on a keyframe,
how much of each mask lies inside each detection box, is answered on the device too
(:func:`unpack_bits`, :func:`box_inside`; ``trackers/device_frame.py``).

Hole filling follows SAM 2's own ``fill_hole_area`` (``sam2.utils.misc.fill_holes_in_mask_scores``):
the area is counted on the low-res grid (256x256 for every SAM 2 size), background components of at
most that many cells get a small positive logit (0.1), and, as this project did before, foreground
specks of at most that many cells get a small negative one (-0.1) unless that would erase the
whole mask. SAM 2 labels components with a CUDA extension; here they are labelled with 8-connected
max-pooling (:func:`small_components`), exact for this question (see there) and on any device.
:func:`fill_small_holes` is the same rule on one boolean host mask (OpenCV), for callers holding numpy masks.

Example:
    >>> import torch
    >>> logits = -torch.ones(1, 1, 16, 16); logits[0, 0, 2:10, 2:10] = 1; logits[0, 0, 5, 5] = -1
    >>> filled = fill_small_holes_lowres(logits, max_area=2)
    >>> bool((filled[0, 0, 2:10, 2:10] > 0).all())
    True
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def small_components(binary: torch.Tensor, max_area: int) -> torch.Tensor:
    """Pixels of (N, H, W) bool `binary` whose 8-connected component has at most `max_area` pixels.

    Each pixel starts with its own label; `max_area` rounds of 3x3 max-pooling spread the largest
    label through each component. A component of at most `max_area` pixels spans at most
    `max_area - 1` steps, so it ends with one label held by all its pixels, and no pixel of it
    touches another label: it is "closed". A larger component may end with several labels, but a
    label region that is closed is a whole component, hence larger than `max_area`. So "region of
    at most `max_area` pixels and closed" is exact, with a fixed number of rounds (no host sync).
    """
    n, h, w = binary.shape
    fg = binary.unsqueeze(1)
    ids = torch.arange(1, h * w + 1, device=binary.device, dtype=torch.float32).view(1, 1, h, w)
    zero = torch.zeros((), device=binary.device)
    labels = torch.where(fg, ids, zero)  # float labels: max-pooling has no integer kernel on CUDA
    for _ in range(max(1, max_area)):
        labels = torch.where(fg, F.max_pool2d(labels, 3, stride=1, padding=1), zero)
    # a pixel is "open" if a foreground neighbour holds another label
    big = float(h * w + 1)
    highest = F.max_pool2d(labels, 3, stride=1, padding=1)
    lowest = big - F.max_pool2d(torch.where(fg, big - labels, zero), 3, stride=1, padding=1)
    is_open = fg & ((highest != labels) | (lowest != labels))
    flat = labels.view(n, -1).long()  # the labels as indices: the one conversion (index arithmetic, not precision)
    one = torch.ones((), device=binary.device)
    count = torch.zeros(n, h * w + 1, device=binary.device).scatter_add_(1, flat, torch.where(fg, one, zero).view(n, -1))
    opened = torch.zeros(n, h * w + 1, device=binary.device).scatter_add_(
        1, flat, torch.where(is_open, one, zero).view(n, -1))
    small = (count <= max_area) & (opened == 0)
    small[:, 0] = False  # background
    return small.gather(1, flat).view(n, h, w)


def fill_small_holes_lowres(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """(N, 1, h, w) mask logits with holes filled and specks removed, both up to `max_area` cells."""
    if max_area <= 0 or logits.numel() == 0:
        return logits
    fg = logits[:, 0] > 0
    holes = small_components(~fg, max_area)
    filled = fg | holes
    specks = small_components(filled, max_area)
    # keep a mask that is nothing but specks: dropping it would erase a small object entirely
    specks &= (filled & ~specks).flatten(1).any(1)[:, None, None]
    out = torch.where(holes, 0.1, logits[:, 0])  # a Python scalar takes the logits' dtype: no cast
    out = torch.where(specks, -0.1, out)
    return out.unsqueeze(1)


def upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) low-res logits -> (N, H, W) float32 logits at video size (one batched call)."""
    return F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def boxes_and_areas(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """xyxy boxes (N, 4) int64, as ``supervision.mask_to_xyxy`` (inclusive max; 0s for an empty mask),
    and pixel counts (N,) int64. Integers: the host makes them float32, no cast on the device."""
    n, h, w = masks.shape
    rows, cols = masks.any(2), masks.any(1)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ys, h).amin(1)
    y2 = torch.where(rows, ys, -1).amax(1)
    x1 = torch.where(cols, xs, w).amin(1)
    x2 = torch.where(cols, xs, -1).amax(1)
    boxes = torch.stack([x1, y1, x2, y2], 1)
    empty = ~rows.any(1)
    boxes = torch.where(empty[:, None], 0, boxes)
    return boxes, masks.flatten(1).sum(1)


def pack_bits(masks: torch.Tensor) -> torch.Tensor:
    """Bool masks (N, ...) -> (N, B) uint8, each row's pixels 8 a byte in ``numpy.unpackbits`` order
    (a row padded to whole bytes, so rows can be taken apart on the host without unpacking), on the device."""
    bits = masks.flatten(1)
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = torch.cat([bits, bits.new_zeros((bits.shape[0], pad))], 1)
    # 128, 64, ... 1 made on the device (an upload of the constant would be a copy every frame)
    weights = torch.pow(2, torch.arange(7, -1, -1, device=masks.device, dtype=torch.uint8))
    return torch.where(bits.view(bits.shape[0], -1, 8), weights, 0).sum(2, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, B) rows from :func:`pack_bits` -> (N, H, W) bool masks, on the device."""
    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = torch.bitwise_right_shift(packed[:, :, None], shifts).bitwise_and_(1).flatten(1)
    return bits[:, :size[0] * size[1]].view(-1, *size).bool()


def pairwise_overlap(masks: torch.Tensor) -> torch.Tensor:
    """Pixels common to each pair of bool masks (N, H, W): (N, N) float32, exact up to 2^24 pixels a mask.

    One matrix product of 0/1 values, accumulated in float32 (TF32 keeps 0 and 1 exact too)."""
    flat = masks.flatten(1).to(torch.float32)
    return flat @ flat.T


def box_inside(masks: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Pixels of each bool mask (N, H, W) inside each box range (M, 4 int64 ``x1, y1, x2, y2``, max
    exclusive, inside the frame): (N, M) float32. The box is separable, so it costs two products:
    the mask's columns inside each box's x-range, then the rows inside its y-range."""
    _, h, w = masks.shape
    xs = torch.arange(w, device=masks.device)[:, None]
    ys = torch.arange(h, device=masks.device)[:, None]
    cols = ((xs >= bounds[:, 0]) & (xs < bounds[:, 2])).to(torch.float32)  # (W, M)
    rows = ((ys >= bounds[:, 1]) & (ys < bounds[:, 3])).to(torch.float32)  # (H, M)
    per_row = masks.to(torch.float32) @ cols  # (N, H, M): each row's pixels inside each x-range
    return (per_row * rows).sum(1)


def _small_components_cv(binary: np.ndarray, max_area: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    small = np.zeros(count, dtype=bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] <= max_area
    return small[labels]


def fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """The same rule on one boolean host mask (HxW): holes filled, specks dropped, up to `max_area` pixels."""
    if max_area <= 0 or not mask.any():
        return mask
    filled = mask | _small_components_cv(~mask, max_area)
    kept = filled & ~_small_components_cv(filled, max_area)
    return kept if kept.any() else filled
