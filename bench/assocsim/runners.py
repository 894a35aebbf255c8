"""The two compared methods, run on a simulated scene, and their scoring.

- ``run_promptrack``: the frame loop of ``pipeline/loop.py`` in miniature, configured as the
  product's ``configs/default.yaml`` (``product_config``): every frame the mask tracker steps and
  the associator observes; on keyframes (``DetectionCadence``) the detector runs, the associator
  plans, and ``trackers.plan.apply_plan`` (the loop's own function) carries the plan out on the
  mask tracker; finished frames go through ``pipeline.held.HeldFrames`` (the loop's own holder:
  look-back, tentative tracks written only once confirmed).
- ``run_gsam2_rule``: Grounded-SAM-2's continuous-id demo rule: a keyframe every 20 frames; each
  detection is segmented (box prompt) and takes the id of the *first* tracked mask it overlaps
  at mask IoU > 0.8, else a brand-new id; then the video state is reset and only this keyframe's
  detections are tracked on (tracks unseen at a keyframe are dropped).

Both read the same detector (same answer on the same frame) and the same mask-tracker model.

Example:
    >>> from assocsim.scenarios import build
    >>> case = build("control_easy")
    >>> out = run_gsam2_rule(case, seed=0)
    >>> bool(score(case, out)["idf1"] >= 0.5)
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from promptrack.pipeline.config import Config, load_config
from promptrack.pipeline.held import HeldFrames
from promptrack.trackers.association import AssociationParams, Associator
from promptrack.trackers.cadence import DetectionCadence
from promptrack.trackers.plan import apply_plan

from .metrics import evaluate
from .scenarios import Case
from .sensors import SimDetector, SimMaskTracker

MIN_AREA = 16  # as association.min_mask_area: smaller masks are not drawn


@dataclass
class Output:
    frames: list[dict[int, np.ndarray]] = field(default_factory=list)  # per frame: id -> mask
    detector_calls: int = 0
    merges: int = 0
    revivals: int = 0


def _shown(masks: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    return {i: m for i, m in masks.items() if np.count_nonzero(m) >= MIN_AREA}


def product_config(overrides: Sequence[str] = ()) -> Config:
    """promptrack as users get it: ``configs/default.yaml`` (cadence, look-back, association), plus `overrides`."""
    return load_config("default", overrides=list(overrides))


def run_promptrack(case: Case, seed: int = 0, params: AssociationParams | None = None,
                   cadence: DetectionCadence | None = None, appearance: bool = True,
                   config: Config | None = None) -> Output:
    """The loop of ``pipeline/loop.py`` on a simulated scene, configured as `config` (default: the product's).

    `params` / `cadence` replace the config's association parameters / detection cadence. Frames
    are held ``tracker.lookback`` frames as offline runs do (``pipeline/held.py``: tentative tracks
    are written only once confirmed). The simulated mask tracker cannot track backwards, so there
    is no back-fill of newborn objects (the pipeline's SAM 2 engine has one).
    """
    config = config or product_config()
    scene = case.scene
    detector = SimDetector(scene, seed, case.detector)
    tracker = SimMaskTracker(scene, seed, case.masks)
    assoc = Associator(params or AssociationParams.from_config(config.association))
    a = config.association
    cadence = cadence or DetectionCadence(every=config.detect_every, on_lost=a.detect_on_lost,
                                          count_jump=a.detect_on_count_jump, min_gap=a.detect_min_gap)
    held: HeldFrames[dict[int, np.ndarray]] = HeldFrames(
        config.tracker.lookback, cadence.every, assoc, ids=list,
        without=lambda masks, hidden: {i: m for i, m in masks.items() if i not in hidden})
    out = Output()
    for t in range(scene.frames):
        masks = tracker.step(t)
        track_emb = tracker.track_embeddings() if appearance else None
        ended = assoc.observe(t, masks, track_emb)
        if ended:
            tracker.remove(ended)
            masks = tracker.current()
        shown = sum(1 for m in masks.values() if np.count_nonzero(m) >= MIN_AREA)
        if cadence(t, shown, assoc.lost_on_last_frame):
            boxes, scores, labels = detector.detect(t)
            det_emb = tracker.box_embeddings(boxes) if appearance and len(boxes) else None
            plan = assoc.update(t, masks, boxes, scores, labels, track_emb, det_emb)
            apply_plan(tracker, plan)  # the loop's own function (trackers/plan.py)
            masks = tracker.current()
            out.revivals += len(plan.revivals)
        out.frames += held.push(_shown(masks))  # the loop's own holder (pipeline/held.py)
    out.frames += held.flush()
    out.detector_calls = detector.calls
    out.merges = len(assoc.merges)
    return out


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a | b)
    return float(inter / union) if union else 0.0


def run_gsam2_rule(case: Case, seed: int = 0, every: int = 20, iou_threshold: float = 0.8) -> Output:
    scene = case.scene
    detector = SimDetector(scene, seed, case.detector)
    tracker = SimMaskTracker(scene, seed, case.masks)
    objects_count = 0
    out = Output()
    for t in range(scene.frames):
        masks = tracker.step(t)
        if t % every == 0:
            boxes, _, _ = detector.detect(t)
            previous = {i: m for i, m in masks.items() if m.any()}
            new: dict[int, object] = {}
            for box in boxes:
                obj = tracker.prompt(box)
                mask = tracker.render(obj)
                if not mask.any():
                    continue
                flag = next((i for i, m in previous.items() if _mask_iou(mask, m) > iou_threshold), None)
                if flag is None:
                    objects_count += 1
                    flag = objects_count
                new[flag] = obj  # as the demo: a later detection with the same id overwrites
            tracker.reset()
            tracker.adopt(list(new), list(new.values()))
            masks = tracker.current()
        out.frames.append(_shown(masks))
    out.detector_calls = detector.calls
    return out


def score(case: Case, out: Output) -> dict[str, float]:
    """HOTA / IDF1 / ID switches / fragmentations of `out` against the scene's ground truth."""
    frames = []
    for t, pred in enumerate(out.frames):
        gt = case.scene.ground_truth(t)
        g_ids, t_ids = list(gt), list(pred)
        if g_ids and t_ids:
            g = np.stack([gt[i].reshape(-1) for i in g_ids]).astype(np.float32)
            p = np.stack([pred[i].reshape(-1) for i in t_ids]).astype(np.float32)
            inter = g @ p.T
            union = g.sum(1)[:, None] + p.sum(1)[None, :] - inter
            sim = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        else:
            sim = np.zeros((len(g_ids), len(t_ids)))
        frames.append((g_ids, t_ids, sim))
    return evaluate(frames)


def mask_agreement(case: Case, seed: int = 0, every: int = 20) -> np.ndarray:
    """Mask IoU between SAM 2-like propagated masks and fresh box prompts, fully visible objects.

    The calibration of the mask tracker's noise: each object is prompted from its true box, carried
    `every` frames, and compared with a fresh prompt from its true box there. Real SAM 2 agrees
    with itself at roughly 0.85-0.95 on easy objects; the rule's 0.8 threshold sits in that tail.
    """
    scene = case.scene
    tracker = SimMaskTracker(scene, seed, case.masks)
    ious = []
    for t in range(scene.frames):
        masks = tracker.step(t)
        if t % every:
            continue
        view = scene.view(t)
        boxes, ids, fresh = [], [], []
        for i, actor in enumerate(scene.actors):
            box = _true_box(view.visible[i])
            if not actor.label or box is None or view.visibility[i] < 0.9:
                continue
            obj = tracker.prompt(box)
            if obj.actor != i:
                continue
            if i in masks and masks[i].any():
                ious.append(_mask_iou(tracker.render(obj), masks[i]))
            ids.append(i)
            fresh.append(obj)
        tracker.reset()
        tracker.adopt(ids, fresh)
    return np.array(ious)


def _true_box(mask: np.ndarray) -> np.ndarray | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return None if not len(rows) else np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], float)
