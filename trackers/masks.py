"""Mask post-processing that needs no CUDA extension.

SAM 2's own hole filling calls its optional CUDA extension (``sam2._C``); this does the same job
with OpenCV on the final boolean masks, on any device.

Example:
    >>> import numpy as np
    >>> m = np.ones((20, 20), bool); m[9:11, 9:11] = False
    >>> bool(fill_small_holes(m, max_area=8).all())
    True
"""

from __future__ import annotations

import cv2
import numpy as np


def _small_components(binary: np.ndarray, max_area: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    small = np.zeros(count, dtype=bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] <= max_area
    return small[labels]


def fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """Fill background holes and drop foreground specks of at most `max_area` pixels."""
    if max_area <= 0 or not mask.any():
        return mask
    filled = mask | _small_components(~mask, max_area)
    # Keep a mask that is nothing but specks: dropping it would erase a small object entirely.
    kept = filled & ~_small_components(filled, max_area)
    return kept if kept.any() else filled
