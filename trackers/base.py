"""What the pipeline needs from a mask propagator: the MaskTracker protocol and its optional abilities.

A mask tracker carries object masks from frame to frame. It knows nothing of labels or of the
detector: it only holds integer ids, and returns ``supervision.Detections`` with ``mask``,
``xyxy``, ``tracker_id`` and ``data["area"]`` (mask pixel counts) for every object it holds on
the current frame.

Optional abilities are small protocols, checked once when the pipeline is built (never probed in
the frame loop):

- :class:`BackfillTracker`: carry objects born now back over earlier, not yet written frames;
- :class:`AppearanceTracker`: appearance vectors per track and per detection box, for re-identification;
- :class:`DeviceMaskTracker`: the current frame's masks as a tensor on the tracker's device, so a
  consumer (a GPU painter) can use them without a host round trip;
- :class:`RestartableTracker`: a new tracker in the state of a new one, sharing the weights (a
  batch worker starts every video afresh without loading the model again).

Example:
    >>> import numpy as np
    >>> masks = np.zeros((2, 4, 6), bool); masks[0, 1:3, 1:4] = True; masks[1, 0, 0] = True
    >>> dets = detections_from_masks([7, 9], masks)
    >>> dets.tracker_id.tolist(), mask_areas(dets).tolist()
    ([7, 9], [6, 1])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np
import supervision as sv

if TYPE_CHECKING:  # the protocols name torch only in a type; pure-logic users need not import it
    import torch

AREA_KEY = "area"  # Detections.data key of the mask pixel counts, computed once a frame


@runtime_checkable
class MaskTracker(Protocol):
    def step(self, index: int, frame: np.ndarray) -> sv.Detections:
        """Take the next frame (RGB, HxWx3 uint8) and return every held object's mask on it.

        The returned Detections (and ``current()``'s) belong to the caller: the pipeline's writer
        thread reads them frames later, so a tracker must not reuse or mutate their arrays."""

    def add(self, ids: Sequence[int], boxes: np.ndarray, masks: Sequence[np.ndarray | None] | None = None) -> None:
        """Start objects on the current frame from boxes (N,4 xyxy, source pixels).

        Where ``masks`` gives a mask (HxW bool, source size) for an object, the tracker is
        prompted with it instead of the box (detectors such as DINO-X and SAM 3 return masks)."""

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
class BackfillTracker(Protocol):
    """A mask tracker that can also carry objects back in time from the frame they were born on."""

    def backfill(self, ids: Sequence[int], frames: Sequence[tuple[int, np.ndarray]],
                 start: int | None = None) -> dict[int, sv.Detections]:
        """Masks of `ids`, born on frame `start` (None: the current frame), on earlier `frames`
        ((index, RGB frame) pairs), keyed by frame index."""


@runtime_checkable
class AppearanceTracker(Protocol):
    """A mask tracker that can describe what its objects and candidate boxes look like."""

    def track_embeddings(self) -> dict[int, np.ndarray]:
        """L2-normalised appearance vector per held object with a visible mask on the current frame."""

    def box_embeddings(self, boxes: np.ndarray) -> np.ndarray:
        """L2-normalised appearance vector per box (N,4 xyxy source pixels) on the current frame: (N, D)."""


@runtime_checkable
class DeviceMaskTracker(Protocol):
    """A mask tracker whose current masks can stay on its device (GPU) for a consumer that runs there."""

    def device_masks(self) -> "torch.Tensor":
        """(N, H, W) bool masks at video size on the tracker's device, in ``current().tracker_id`` order."""


@runtime_checkable
class RestartableTracker(Protocol):
    """A mask tracker that can start over cheaply: same weights, no objects, no frames seen."""

    def fresh(self) -> MaskTracker:
        """A new tracker in the state this one was in when built, sharing its weights."""


def mask_areas(detections: sv.Detections) -> np.ndarray:
    """Pixel count of each mask: ``data["area"]`` when the tracker set it, else counted (once) and stored."""
    if not len(detections) or detections.mask is None:
        return np.zeros(len(detections), dtype=np.int64)
    areas = detections.data.get(AREA_KEY)
    if areas is None or len(areas) != len(detections):
        areas = detections.mask.reshape(len(detections), -1).sum(1).astype(np.int64)
        detections.data[AREA_KEY] = areas
    return np.asarray(areas)


def detections_from_masks(ids: Sequence[int], masks: np.ndarray, xyxy: np.ndarray | None = None,
                          areas: np.ndarray | None = None) -> sv.Detections:
    """Detections (mask, xyxy, tracker_id, data["area"]) from boolean masks (N,H,W).

    ``xyxy`` and ``areas`` may come precomputed (a GPU tracker computes them on the device)."""
    masks = np.asarray(masks, dtype=bool)
    if len(ids) == 0:
        return sv.Detections.empty()
    if xyxy is None:
        xyxy = sv.mask_to_xyxy(masks)
    if areas is None:
        areas = masks.reshape(len(masks), -1).sum(1)
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4),
        mask=masks,
        tracker_id=np.asarray(ids, dtype=int),
        data={AREA_KEY: np.asarray(areas, dtype=np.int64)},
    )
