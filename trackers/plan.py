"""Carry an associator's :class:`~promptrack.trackers.association.Plan` out on a mask tracker.

One function, used by the frame loop (``pipeline/loop.py``) and by the association benchmark
(``bench/assocsim``), so what the benchmark measures is what the pipeline does. The order is
the plan's: remove, then add (births and re-added revivals), then re-prompt.

A birth or revival carries the index of the detection it comes from, so when the detector gave
masks (DINO-X, SAM 3) the tracker is prompted with that detection's mask, found by index.

Example:
    >>> import numpy as np
    >>> from promptrack.trackers.association import Associator
    >>> class Log:  # any MaskTracker; this one only records the calls
    ...     calls = []
    ...     def add(self, ids, boxes, masks=None): self.calls.append(("add", list(ids), masks))
    ...     def reprompt(self, ids, boxes): self.calls.append(("reprompt", list(ids)))
    ...     def remove(self, ids): self.calls.append(("remove", list(ids)))
    >>> plan = Associator().update(0, {}, np.array([[0, 0, 8, 8], [20, 20, 30, 30]]), np.array([0.9, 0.8]), ["a", "b"])
    >>> detector_masks = np.zeros((2, 32, 32), bool); detector_masks[1, 25, 25] = True
    >>> apply_plan(Log(), plan, detector_masks), Log.calls[0][:2], bool(Log.calls[0][2][1][25, 25])
    (True, ('add', [1, 2]), True)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .association import Plan
from .base import MaskTracker


def additions(plan: Plan) -> list[tuple[int, np.ndarray, int]]:
    """``(track id, box, detection index)`` of every id the tracker must add: births, then re-added revivals."""
    adds = [(b.track_id, b.box, b.detection) for b in plan.births]
    adds += [(r.track_id, r.box, r.detection) for r in plan.revivals if r.readd]
    return adds


def apply_plan(tracker: MaskTracker, plan: Plan, detector_masks: Sequence[np.ndarray] | None = None) -> bool:
    """Remove, add and re-prompt on ``tracker`` as ``plan`` says; True when the tracker changed.

    ``detector_masks``: the keyframe detector's masks (one per detection, source size), when it
    returns masks; an added object is then prompted with its detection's mask instead of its box.
    """
    if plan.removals:
        tracker.remove(list(plan.removals))
    adds = additions(plan)
    if adds:
        ids = [track_id for track_id, _, _ in adds]
        boxes = np.stack([np.asarray(box, dtype=float) for _, box, _ in adds])
        if detector_masks is not None:
            masks = [detector_masks[d] if 0 <= d < len(detector_masks) else None for _, _, d in adds]
            tracker.add(ids, boxes, masks=masks)
        else:
            tracker.add(ids, boxes)
    if plan.reprompts:
        tracker.reprompt(list(plan.reprompts), np.stack([np.asarray(b, dtype=float) for b in plan.reprompts.values()]))
    return bool(plan)
