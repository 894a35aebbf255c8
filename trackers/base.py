"""The MaskTracker protocol: what the pipeline needs from a mask propagator.

A mask tracker carries object masks from frame to frame. It knows nothing of labels or of the
detector: it only holds integer ids, and returns ``supervision.Detections`` with ``mask``,
``xyxy`` and ``tracker_id`` for every object it holds on the current frame.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import supervision as sv


@runtime_checkable
class MaskTracker(Protocol):
    def step(self, index: int, frame: np.ndarray) -> sv.Detections:
        """Take the next frame (RGB, HxWx3 uint8) and return every held object's mask on it."""

    def add(self, ids: Sequence[int], boxes: np.ndarray) -> None:
        """Start objects on the current frame from boxes (N,4 xyxy, source pixels).

        A tracker may also accept ``masks=`` (one HxW bool mask or None per box), used instead
        of the box where the detector gave one (DINO-X)."""

    def reprompt(self, ids: Sequence[int], boxes: np.ndarray) -> None:
        """Correct objects on the current frame with new boxes; the others are untouched."""

    def remove(self, ids: Sequence[int]) -> None:
        """Forget objects entirely (their memory is freed)."""

    def current(self) -> sv.Detections:
        """Masks of every held object on the current frame, after any add/reprompt/remove."""

    @property
    def ids(self) -> list[int]:
        """Ids of the objects held, in the order they were added."""


@runtime_checkable
class BackfillTracker(MaskTracker, Protocol):
    """A mask tracker that can also carry objects born on the current frame back in time."""

    def backfill(self, ids: Sequence[int], frames: Sequence[tuple[int, np.ndarray]]) -> dict[int, sv.Detections]:
        """Masks of `ids` on earlier `frames` ((index, RGB frame) pairs), keyed by frame index."""


def detections_from_masks(ids: Sequence[int], masks: np.ndarray) -> sv.Detections:
    """Build Detections (mask, xyxy from the mask, tracker_id) from boolean masks (N,H,W)."""
    masks = np.asarray(masks, dtype=bool)
    if len(ids) == 0:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32),
        mask=masks,
        tracker_id=np.asarray(ids, dtype=int),
    )
