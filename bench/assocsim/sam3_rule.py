"""SAM 3's video heuristics (Carion et al. 2025, "SAM 3: Segment Anything with Concepts", video inference).

The detector runs on every frame; its masks are matched to the tracker's propagated masklets:
- matching: one-to-one (Hungarian) on mask IoU, at least ``match_iou``;
- a detection matching no masklet and overlapping none (IoU below ``match_iou`` with all) and
  scoring at least ``new_score`` starts a new masklet;
- hot-start: a new masklet is confirmed only if detections matched it on at least half of its
  first ``hotstart`` = 15 frames; otherwise it is removed and never output (SAM 3 delays its
  output by those frames, so a confirmed masklet is shown from its first frame);
- a masklet no detection matched for ``max_unmatched`` = 30 frames in a row is removed;
- periodic re-prompting: every ``recondition_every`` = 16 frames a masklet is re-conditioned on
  its matched detection (its mask replaced by the detection's) when that scores at least
  ``recondition_score``;
- duplicates: two masklets whose masks overlap at IoU >= ``duplicate_iou`` are one object; the
  younger is removed.

Nothing remembers a removed masklet: an object that comes back gets a new id.

Example:
    >>> from assocsim.scenarios import build
    >>> from assocsim.runners import score
    >>> case = build("control_easy")
    >>> out = run_sam3_rule(case, seed=0)
    >>> out.detector_calls, bool(score(case, out)["idf1"] > 0.9)
    (300, True)
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.optimize import linear_sum_assignment

from .deva import mask_iou_matrix
from .runners import Output, _shown
from .scenarios import Case
from .sensors import SimDetector, SimMaskTracker


@dataclass
class _Masklet:
    born: int
    hits: int = 0  # frames a detection matched it
    unmatched: int = 0  # frames in a row no detection matched it
    confirmed: bool = False


def run_sam3_rule(case: Case, seed: int = 0, match_iou: float = 0.5, new_score: float = 0.5, hotstart: int = 15,
                  max_unmatched: int = 30, recondition_every: int = 16, recondition_score: float = 0.6,
                  duplicate_iou: float = 0.7) -> Output:
    scene = case.scene
    detector = SimDetector(scene, seed, case.detector)
    tracker = SimMaskTracker(scene, seed, case.masks)
    masklets: dict[int, _Masklet] = {}
    never_shown: set[int] = set()  # removed during their hot-start: SAM 3 never outputs them
    next_id = 1
    out = Output()
    for t in range(scene.frames):
        masks = tracker.step(t)
        boxes, scores, _ = detector.detect(t)
        segments = [tracker.prompt(b) for b in boxes]
        seg_masks = [tracker.render(o) for o in segments]
        keep = [k for k, m in enumerate(seg_masks) if m.any()]
        ids = list(masks)
        iou = mask_iou_matrix([masks[i] for i in ids], [seg_masks[k] for k in keep])
        matched: dict[int, int] = {}
        if iou.size:
            rows, cols = linear_sum_assignment(-iou)
            matched = {ids[r]: keep[c] for r, c in zip(rows, cols) if iou[r, c] >= match_iou}
        dropped = []
        for i in ids:
            m = masklets[i]
            if i in matched:
                m.hits, m.unmatched = m.hits + 1, 0
                k = matched[i]
                if t % recondition_every == 0 and scores[k] >= recondition_score:
                    tracker.adopt([i], [segments[k]])
            else:
                m.unmatched += 1
            age = t - m.born + 1
            if not m.confirmed and age >= hotstart:
                m.confirmed = m.hits * 2 >= age
                if not m.confirmed:
                    never_shown.add(i)
                    dropped.append(i)
                    continue
            if m.unmatched >= max_unmatched:
                dropped.append(i)
        taken = set(matched.values())
        for c, k in enumerate(keep):
            overlaps = iou[:, c].max() if len(ids) else 0.0
            if k in taken or scores[k] < new_score or overlaps >= match_iou:
                continue
            tracker.adopt([next_id], [segments[k]])
            masklets[next_id] = _Masklet(born=t, hits=1)
            next_id += 1
        # Duplicates: the younger of two overlapping masklets goes.
        current = {i: m for i, m in tracker.current().items() if i not in dropped}
        order = sorted(current)
        overlap = mask_iou_matrix([current[i] for i in order], [current[i] for i in order])
        for a in range(len(order)):
            for b in range(a + 1, len(order)):
                if overlap[a, b] >= duplicate_iou and order[a] not in dropped and order[b] not in dropped:
                    dropped.append(order[b])
                    if not masklets[order[b]].confirmed:
                        never_shown.add(order[b])
        tracker.remove(dropped)
        for i in dropped:
            masklets.pop(i, None)
        out.frames.append(_shown(tracker.current()))
    for i, m in masklets.items():  # the video ended during their hot-start: judged on what there was
        if not m.confirmed and m.hits * 2 < scene.frames - m.born:
            never_shown.add(i)
    for frame in out.frames:  # the delayed output: hot-start failures never appear
        for i in never_shown & set(frame):
            del frame[i]
    out.detector_calls = detector.calls
    return out
