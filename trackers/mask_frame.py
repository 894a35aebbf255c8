"""What the associator reads of a frame's masks: areas, tight boxes, pairwise overlaps, box coverage.

The associator never needs the pixels themselves, only these numbers, so a tracker on a GPU can
compute them where its masks are and send the few bytes (``SAM2Engine.mask_frame``), while its masks
stay packed until the writer thread unpacks them. :class:`MaskFrame` is that contract;
:class:`HostMasks` fulfils it from boolean numpy masks (any tracker, and the tests).

Every count is a pixel count at video size; boxes are xyxy with an exclusive max (the box of a
single pixel at (x, y) is ``[x, y, x+1, y+1]``); detection boxes are rounded and clipped to the
frame the same way everywhere (:func:`box_bounds`).

Example:
    >>> import numpy as np
    >>> a = np.zeros((8, 8), bool); a[0:4, 0:4] = True
    >>> b = np.zeros((8, 8), bool); b[2:6, 2:6] = True
    >>> frame = HostMasks({1: a, 2: b})
    >>> frame.area(1), frame.box(2).tolist(), frame.overlap(1, 2)
    (16, [2.0, 2.0, 6.0, 6.0], 4)
    >>> inside, covered = frame.box_cover(np.array([[0, 0, 4, 2]]), [1, 2])
    >>> inside.tolist(), covered.tolist()
    ([[8.0], [0.0]], [8.0])
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class MaskFrame(Protocol):
    """One frame's masks, as the associator reads them (every id the mask tracker holds)."""

    @property
    def ids(self) -> list[int]:
        """The ids held on this frame."""

    @property
    def shape(self) -> tuple[int, int] | None:
        """(H, W) of the video, None when no mask was ever seen."""

    def area(self, track_id: int) -> int:
        """Pixels of the id's mask (0 for an id not held)."""

    def box(self, track_id: int) -> np.ndarray:
        """Tight xyxy box of the id's mask, exclusive max, float (zeros when empty)."""

    def overlap(self, a: int, b: int) -> int:
        """Pixels in both masks."""

    def box_cover(self, boxes: np.ndarray, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """For boxes (M, 4 xyxy, rounded and clipped by :func:`box_bounds`) and masks `ids`:
        ``inside`` (len(ids), M), pixels of each mask inside each box, and ``covered`` (M,), pixels
        of each box inside the union of those masks."""


def box_bounds(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boxes (M, 4 xyxy float) as the integer pixel ranges they cover on an (H, W) frame: rounded,
    clipped to it, (M, 4) int64 ``x1, y1, x2, y2`` with ``x2``/``y2`` exclusive."""
    h, w = shape
    b = np.round(np.asarray(boxes, dtype=float).reshape(-1, 4)).astype(np.int64)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    return b


def mask_box_iou(inside: np.ndarray, mask_areas: np.ndarray, boxes: np.ndarray, shape: tuple[int, int]
                 ) -> np.ndarray:
    """Mask-vs-box IoU (N, M), boxes as filled rectangles, from the pixels of each mask inside each box
    (``MaskFrame.box_cover``), the masks' areas (N,) and the boxes (M, 4 xyxy) on a frame of `shape`."""
    bounds = box_bounds(boxes, shape)
    box_areas = np.maximum(bounds[:, 2] - bounds[:, 0], 0) * np.maximum(bounds[:, 3] - bounds[:, 1], 0)
    union = np.asarray(mask_areas, float).reshape(-1, 1) + box_areas.reshape(1, -1) - inside
    return np.where(union > 0, inside / np.maximum(union, 1), 0.0)


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight xyxy box of a boolean mask (exclusive max), zeros when empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return np.zeros(4)
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=float)


def _inside(masks: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Pixels of each mask (N,H,W) inside each box range (M,4 from :func:`box_bounds`): (N, M)."""
    n, (h, w) = len(masks), masks.shape[1:]
    inside = np.zeros((n, len(bounds)))
    x1, y1, x2, y2 = bounds.T
    for i, mask in enumerate(masks):
        sat = np.zeros((h + 1, w + 1), dtype=np.int64)
        sat[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
        inside[i] = sat[y2, x2] - sat[y1, x2] - sat[y2, x1] + sat[y1, x1]
    return inside


class HostMasks:
    """:class:`MaskFrame` from boolean numpy masks keyed by id (every count taken once, when first asked)."""

    def __init__(self, masks: Mapping[int, np.ndarray]) -> None:
        self._masks = {int(i): np.asarray(m, dtype=bool) for i, m in masks.items()}
        self._areas: dict[int, int] = {}
        self._boxes: dict[int, np.ndarray] = {}

    @property
    def ids(self) -> list[int]:
        return list(self._masks)

    @property
    def shape(self) -> tuple[int, int] | None:
        first = next(iter(self._masks.values()), None)
        return None if first is None else tuple(first.shape[:2])

    def area(self, track_id: int) -> int:
        if track_id not in self._areas:
            mask = self._masks.get(track_id)
            self._areas[track_id] = int(np.count_nonzero(mask)) if mask is not None else 0
        return self._areas[track_id]

    def box(self, track_id: int) -> np.ndarray:
        if track_id not in self._boxes:
            mask = self._masks.get(track_id)
            self._boxes[track_id] = mask_to_box(mask) if mask is not None else np.zeros(4)
        return self._boxes[track_id]

    def overlap(self, a: int, b: int) -> int:
        # Only the two boxes' intersection can hold common pixels.
        box_a, box_b = self.box(a), self.box(b)
        x1, y1 = int(max(box_a[0], box_b[0])), int(max(box_a[1], box_b[1]))
        x2, y2 = int(min(box_a[2], box_b[2])), int(min(box_a[3], box_b[3]))
        if x2 <= x1 or y2 <= y1:
            return 0
        return int(np.count_nonzero(self._masks[a][y1:y2, x1:x2] & self._masks[b][y1:y2, x1:x2]))

    def box_cover(self, boxes: np.ndarray, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        if not len(ids) or not len(boxes):
            return np.zeros((len(ids), len(boxes))), np.zeros(len(boxes))
        stack = np.stack([self._masks[int(i)] for i in ids])
        bounds = box_bounds(boxes, stack.shape[1:])
        return _inside(stack, bounds), _inside(stack.any(0)[None], bounds)[0]


def as_mask_frame(masks: MaskFrame | Mapping[int, np.ndarray]) -> MaskFrame:
    """A :class:`MaskFrame` as given, or :class:`HostMasks` of an id -> boolean mask mapping."""
    return masks if isinstance(masks, MaskFrame) else HostMasks(masks)
