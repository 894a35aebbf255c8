"""RoI Align in plain torch, for SAM 3's box prompts where torchvision is not installed.

transformers' SAM 3 geometry encoder pools each prompt box with ``torchvision.ops.roi_align``
and nothing else of torchvision. torchvision is no dependency of promptrack (its wheels pin one
torch build each), so :func:`provide_for_sam3` gives that module this function, with the same
semantics (``aligned=False``, ``spatial_scale=1``, ``sampling_ratio=-1``: an adaptive number of
bilinear samples per bin, averaged), only where torchvision is absent.

Bilinear sampling is separable, so one box's samples are ``Wy @ features @ Wx.T``: two small
weight matrices instead of a gather per sample.

Example:
    >>> import torch
    >>> features = torch.arange(16.).view(1, 1, 4, 4)
    >>> roi_align(features, [torch.tensor([[0., 0., 2., 2.]])], 1).item()
    5.0
"""

from __future__ import annotations

import math
import types
from typing import Sequence

import torch


def _weights(coords: torch.Tensor, size: int) -> torch.Tensor:
    """(samples, size) bilinear weights of 1-D sample positions, torchvision's border rules."""
    valid = (coords >= -1.0) & (coords <= size)
    c = coords.clamp(min=0)
    low = c.floor().long()
    top = low >= size - 1
    low = torch.where(top, torch.full_like(low, size - 1), low)
    high = torch.where(top, low, low + 1)
    c = torch.where(top, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    w = torch.zeros(len(coords), size, dtype=coords.dtype, device=coords.device)
    rows = torch.arange(len(coords), device=coords.device)
    w.index_put_((rows, low), 1 - frac, accumulate=True)
    w.index_put_((rows, high), frac, accumulate=True)
    return w * valid[:, None]


def roi_align(features: torch.Tensor, boxes: Sequence[torch.Tensor],
              output_size: int | tuple[int, int]) -> torch.Tensor:
    """Pooled features (K, C, ph, pw) of ``boxes[b]`` (K_b, 4) x1, y1, x2, y2 on ``features[b]`` (B, C, H, W)."""
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    _, channels, height, width = features.shape
    out = []
    for b, rois in enumerate(boxes):
        for x1, y1, x2, y2 in rois.float().tolist():
            roi_w, roi_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
            gh, gw = math.ceil(roi_h / ph), math.ceil(roi_w / pw)
            ys = y1 + (torch.arange(ph * gh, dtype=torch.float32, device=features.device) + 0.5) * (roi_h / ph / gh)
            xs = x1 + (torch.arange(pw * gw, dtype=torch.float32, device=features.device) + 0.5) * (roi_w / pw / gw)
            wy, wx = _weights(ys, height), _weights(xs, width)
            samples = torch.einsum("yh,chw,xw->cyx", wy, features[b].float(), wx)
            out.append(samples.view(channels, ph, gh, pw, gw).mean((2, 4)))
    if not out:
        return features.new_zeros(0, channels, ph, pw)
    return torch.stack(out).to(features.dtype)


def provide_for_sam3() -> None:
    """Give transformers' SAM 3 module this ``roi_align`` when torchvision is not installed."""
    from transformers.models.sam3 import modeling_sam3

    if getattr(modeling_sam3, "torchvision", None) is None:
        modeling_sam3.torchvision = types.SimpleNamespace(ops=types.SimpleNamespace(roi_align=roi_align))
