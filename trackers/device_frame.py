"""A :class:`~.mask_frame.MaskFrame` whose masks stay on the device: the associator's questions answered there.

A GPU tracker downloads, with each frame's results, every mask's area and box and the pixels each
pair of masks shares (a few bytes an object): all the associator reads on an ordinary frame. On a
keyframe it also asks how much of each mask lies inside each detection box; that is computed from
the packed masks still on the device (:func:`~.masks.unpack_bits`, :func:`~.masks.box_inside`), with
one small upload and one small download. No mask is unpacked on the host for the associator.

Example:
    >>> import numpy as np, torch
    >>> from promptrack.trackers.masks import pack_bits, pairwise_overlap
    >>> masks = torch.zeros(2, 8, 8, dtype=torch.bool); masks[0, :4, :4] = True; masks[1, 2:6, 2:6] = True
    >>> frame = DeviceMasks([1, 2], areas=np.array([16, 16]), boxes=np.array([[0, 0, 3, 3], [2, 2, 5, 5]]),
    ...                     overlaps=pairwise_overlap(masks).numpy(), packed=pack_bits(masks), size=(8, 8))
    >>> frame.overlap(1, 2), frame.box(2).tolist()
    (4, [2.0, 2.0, 6.0, 6.0])
    >>> inside, covered = frame.box_cover(np.array([[0, 0, 4, 2]]), [1, 2])
    >>> inside.tolist(), covered.tolist()
    ([[8.0], [0.0]], [8.0])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .mask_frame import box_bounds
from .masks import box_inside, unpack_bits
from .transfer import download, upload_packed


class DeviceMasks:
    """:class:`~.mask_frame.MaskFrame` of masks held bit-packed on a device.

    Args:
        ids: the ids, in the rows' order.
        areas: (N,) pixels of each mask.
        boxes: (N, 4) tight boxes with an *inclusive* max, as ``supervision.mask_to_xyxy`` (zeros: empty).
        overlaps: (N, N) pixels shared by each pair (:func:`~.masks.pairwise_overlap`), or more rows.
        packed: (N, B) or more rows of :func:`~.masks.pack_bits` on the device.
        size: (H, W) of the masks.
    """

    def __init__(self, ids: Sequence[int], areas: np.ndarray, boxes: np.ndarray, overlaps: np.ndarray,
                 packed: torch.Tensor, size: tuple[int, int]) -> None:
        self._rows = {int(i): r for r, i in enumerate(ids)}
        self._areas = np.asarray(areas)
        self._boxes = np.asarray(boxes, dtype=float)
        self._overlaps = np.asarray(overlaps)
        self._packed = packed
        self._size = (int(size[0]), int(size[1]))

    @property
    def ids(self) -> list[int]:
        return list(self._rows)

    @property
    def shape(self) -> tuple[int, int] | None:
        return self._size if self._rows else None

    def area(self, track_id: int) -> int:
        row = self._rows.get(int(track_id))
        return 0 if row is None else int(self._areas[row])

    def box(self, track_id: int) -> np.ndarray:
        row = self._rows.get(int(track_id))
        if row is None or not self._areas[row]:
            return np.zeros(4)
        return self._boxes[row] + (0.0, 0.0, 1.0, 1.0)  # inclusive max -> exclusive

    def overlap(self, a: int, b: int) -> int:
        return int(self._overlaps[self._rows[int(a)], self._rows[int(b)]])

    def box_cover(self, boxes: np.ndarray, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        if not len(ids) or not len(boxes):
            return np.zeros((len(ids), len(boxes))), np.zeros(len(boxes))
        rows = np.array([self._rows[int(i)] for i in ids], dtype=np.int64)
        rows_t, bounds_t = upload_packed([rows, box_bounds(boxes, self._size)], self._packed.device)
        with torch.inference_mode():
            masks = unpack_bits(self._packed.index_select(0, rows_t), self._size)
            both = torch.cat([masks, masks.any(0, keepdim=True)])  # the masks, then their union
            counts = download(box_inside(both, bounds_t)).astype(np.float64)
        return counts[:-1], counts[-1]
