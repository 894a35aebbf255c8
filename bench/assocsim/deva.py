"""DEVA's text-prompted rule (Cheng et al. 2023, "Tracking Anything with Decoupled Video Segmentation").

In its online text mode DEVA runs the detector (Grounded-SAM: boxes, then a mask per box) every
``detection_every`` = 5 frames and propagates masks in between. On a detection frame each
detected segment takes the first propagated object it overlaps at mask IoU > 0.5 (greedy, in
detection order, each object once: ``merge_by_iou`` in DEVA's ``segment_merging.py``); a
matched segment is merged into the object (its id stays), an unmatched segment becomes a new
object, and an object that no segment matched counts a missed detection: after
``max_missed_detection_count`` = 10 in a row it is deleted. Nothing remembers a deleted object,
so an object that comes back gets a new id. DEVA's output is one segmentation (a pixel belongs
to one object; smaller objects are painted over larger ones).

Here the segment of a box is what the shared mask tracker's box prompt gives (DEVA's SAM), and
merging it is re-prompting the object with the box (the new segment replaces the propagated
one rather than joining it).

Example:
    >>> from assocsim.scenarios import build
    >>> from assocsim.runners import score
    >>> case = build("control_easy")
    >>> out = run_deva_rule(case, seed=0)
    >>> out.detector_calls, bool(score(case, out)["idf1"] > 0.9)
    (60, True)
"""

from __future__ import annotations

import numpy as np

from .runners import Output, _shown
from .scenarios import Case
from .sensors import SimDetector, SimMaskTracker


def mask_iou_matrix(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Pairwise IoU of two lists of boolean masks of one shape."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    x = np.stack([m.reshape(-1) for m in a]).astype(np.float32)
    y = np.stack([m.reshape(-1) for m in b]).astype(np.float32)
    inter = x @ y.T
    union = x.sum(1)[:, None] + y.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def one_segmentation(masks: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Overlapping masks as one label map: larger objects painted first, smaller ones over them."""
    owner = None
    for i in sorted(masks, key=lambda i: -np.count_nonzero(masks[i])):
        if owner is None:
            owner = np.zeros(masks[i].shape, int)
        owner[masks[i]] = i
    return {i: owner == i for i in masks} if owner is not None else {}


def run_deva_rule(case: Case, seed: int = 0, detection_every: int = 5, match_iou: float = 0.5,
                  max_missed: int = 10) -> Output:
    scene = case.scene
    detector = SimDetector(scene, seed, case.detector)
    tracker = SimMaskTracker(scene, seed, case.masks)
    missed: dict[int, int] = {}
    next_id = 1
    out = Output()
    for t in range(scene.frames):
        masks = tracker.step(t)
        if t % detection_every == 0:
            boxes, _, _ = detector.detect(t)
            segments = [tracker.prompt(b) for b in boxes]
            seg_masks = [tracker.render(o) for o in segments]
            keep = [k for k, m in enumerate(seg_masks) if m.any()]
            ids = list(masks)
            iou = mask_iou_matrix([masks[i] for i in ids], [seg_masks[k] for k in keep])
            matched_tracks, matched_segs = set(), set()
            for c, k in enumerate(keep):  # greedy, as DEVA: the first free object over the bar
                r = next((r for r in range(len(ids)) if ids[r] not in matched_tracks and iou[r, c] > match_iou), None)
                if r is not None:
                    tracker.adopt([ids[r]], [segments[k]])  # the detected segment replaces the mask
                    missed[ids[r]] = 0
                    matched_tracks.add(ids[r])
                    matched_segs.add(k)
            for i in ids:
                if i not in matched_tracks:
                    missed[i] = missed.get(i, 0) + 1
                    if missed[i] >= max_missed:
                        tracker.remove([i])
                        del missed[i]
            for k in keep:
                if k not in matched_segs:
                    tracker.adopt([next_id], [segments[k]])
                    missed[next_id] = 0
                    next_id += 1
            masks = tracker.current()
        out.frames.append(_shown(one_segmentation(masks)))
    out.detector_calls = detector.calls
    return out
