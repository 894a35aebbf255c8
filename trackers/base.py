"""What the pipeline needs from a mask propagator: the MaskTracker protocol and its optional abilities.

A mask tracker carries object masks from frame to frame. It knows nothing of labels or of the
detector: it only holds integer ids, and returns ``supervision.Detections`` with ``mask``,
``xyxy``, ``tracker_id`` and ``data["area"]`` (mask pixel counts) for every object it holds on
the current frame. A tracker may leave ``mask`` None and hand the masks over bit-packed instead,
one row of bytes per object in ``data["packed_mask"]`` (a GPU tracker: unpacking costs the host
milliseconds a frame); :func:`unpack_masks` fills ``mask`` from them where the pixels are needed
(the pipeline does it in its writer thread).

Optional abilities are small protocols, checked once when the pipeline is built (never probed in
the frame loop):

- :class:`BackfillTracker`: carry objects born now back over earlier, not yet written frames;
- :class:`AppearanceTracker`: appearance vectors per track and per detection box, for re-identification;
- :class:`DeviceMaskTracker`: the current frame's masks as a tensor on the tracker's device, so a
  consumer (a GPU painter) can use them without a host round trip;
- :class:`MaskFrameTracker`: what the associator reads of the current masks (areas, boxes,
  overlaps, coverage of detection boxes) measured where the masks are (``trackers/mask_frame.py``);
- :class:`RestartableTracker`: a new tracker in the state of a new one, sharing the weights (a
  batch worker starts every video afresh without loading the model again).

Example:
    >>> import numpy as np
    >>> masks = np.zeros((2, 4, 6), bool); masks[0, 1:3, 1:4] = True; masks[1, 0, 0] = True
    >>> dets = detections_from_masks([7, 9], masks)
    >>> dets.tracker_id.tolist(), mask_areas(dets).tolist()
    ([7, 9], [6, 1])
    >>> packed = np.packbits(masks.reshape(2, -1), axis=1)   # what a GPU tracker downloads
    >>> lazy = detections_from_masks([7, 9], packed=packed, xyxy=dets.xyxy, areas=mask_areas(dets))
    >>> lazy.mask is None, bool((unpack_masks(lazy, (4, 6)).mask == masks).all())
    (True, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np
import supervision as sv

from .mask_frame import MaskFrame

if TYPE_CHECKING:  # the protocols name torch only in a type; pure-logic users need not import it
    import torch

AREA_KEY = "area"  # Detections.data key of the mask pixel counts, computed once a frame
PACKED_KEY = "packed_mask"  # Detections.data key of bit-packed masks (N, bytes a row), when `mask` is None


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
class MaskFrameTracker(Protocol):
    """A mask tracker that measures its current masks itself, for the associator, without host masks."""

    def mask_frame(self) -> MaskFrame:
        """Areas, boxes, pairwise overlaps and box coverage of ``current()``'s masks (``trackers/mask_frame.py``)."""


@runtime_checkable
class RestartableTracker(Protocol):
    """A mask tracker that can start over cheaply: same weights, no objects, no frames seen."""

    def fresh(self) -> MaskTracker:
        """A new tracker in the state this one was in when built, sharing its weights."""


def mask_areas(detections: sv.Detections) -> np.ndarray:
    """Pixel count of each mask: ``data["area"]`` when the tracker set it, else counted (once) and stored."""
    areas = detections.data.get(AREA_KEY)
    if areas is not None and len(areas) == len(detections):
        return np.asarray(areas)
    if not len(detections) or detections.mask is None:
        return np.zeros(len(detections), dtype=np.int64)
    areas = detections.mask.reshape(len(detections), -1).sum(1).astype(np.int64)
    detections.data[AREA_KEY] = areas
    return areas


def detections_from_masks(ids: Sequence[int], masks: np.ndarray | None = None, xyxy: np.ndarray | None = None,
                          areas: np.ndarray | None = None, packed: np.ndarray | None = None) -> sv.Detections:
    """Detections (mask, xyxy, tracker_id, data["area"]) from boolean masks (N,H,W).

    ``xyxy`` and ``areas`` may come precomputed (a GPU tracker computes them on the device). Given
    ``packed`` masks instead ((N, B) uint8, each row ``numpy.packbits`` of one mask, padded to whole
    bytes), ``mask`` stays None and the rows go to ``data["packed_mask"]``; ``xyxy`` and ``areas``
    are then required."""
    if len(ids) == 0:
        return sv.Detections.empty()
    data = {}
    if packed is not None:
        if xyxy is None or areas is None:
            raise ValueError("packed masks need their boxes and areas")
        data[PACKED_KEY] = np.asarray(packed, dtype=np.uint8)
    else:
        masks = np.asarray(masks, dtype=bool)
        xyxy = sv.mask_to_xyxy(masks) if xyxy is None else xyxy
        areas = masks.reshape(len(masks), -1).sum(1) if areas is None else areas
    data[AREA_KEY] = np.asarray(areas, dtype=np.int64)
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4),
        mask=None if packed is not None else masks,
        tracker_id=np.asarray(ids, dtype=int),
        data=data,
    )


def unpack_masks(detections: sv.Detections, size: tuple[int, int]) -> sv.Detections:
    """Fill ``mask`` (N, H, W bool) from ``data["packed_mask"]`` for frames of `size` (H, W); in place,
    returned. Detections that carry their masks already are returned as they are."""
    packed = detections.data.pop(PACKED_KEY, None)
    if packed is not None and detections.mask is None:
        detections.mask = unpack_rows(packed, size)
    return detections


def unpack_rows(packed: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, B) uint8 rows, each a mask's pixels ``numpy.packbits``-ed (padded to whole bytes) -> (N, H, W) bool."""
    h, w = size
    return np.unpackbits(packed, axis=1, count=h * w).reshape(len(packed), h, w).view(bool)
