"""Associate keyframe detections with tracks: matches, births, re-prompts, losses, deaths.

Pure logic on arrays (no model): the mask tracker's boolean masks per track id, the detector's
boxes, scores and labels in, a :class:`Plan` out. The pipeline carries the plan out on the mask
tracker (add / reprompt / remove).

Rules:
- Matching is one-to-one (Hungarian) on the IoU between a track's mask and a detection box.
- An unmatched detection scoring at least ``birth_score`` whose box is not mostly covered by
  live masks starts a new track; ids start at 1 and are never reused.
- A detector miss never ends a track. A track whose mask is empty is *lost*; lost for more than
  ``lost_ttl`` frames it *ends*. While lost, SAM 2 keeps its memory and may find it again.
- A matched track whose mask agrees poorly with its box (IoU < ``reprompt_iou``) is re-prompted.

Example:
    >>> import numpy as np
    >>> assoc = Associator(AssociationParams())
    >>> plan = assoc.update(0, {}, np.array([[10, 10, 50, 50]]), np.array([0.9]), ["car"])
    >>> plan.births
    [Birth(track_id=1, box=array([10., 10., 50., 50.]), label='car', score=0.9)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .tracks import Track, TrackState


@dataclass
class AssociationParams:
    match_iou: float = 0.3
    birth_score: float = 0.4
    birth_max_overlap: float = 0.5
    reprompt_iou: float = 0.5
    min_mask_area: int = 16
    lost_ttl: int = 150
    birth_nms_iou: float = 0.7  # two births overlapping more than this are one object


@dataclass
class Birth:
    track_id: int
    box: np.ndarray
    label: str
    score: float


@dataclass
class Plan:
    """What the mask tracker must do on this frame."""

    births: list[Birth] = field(default_factory=list)
    reprompts: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> box
    matches: dict[int, int] = field(default_factory=dict)  # track id -> detection index


def mask_box_iou(masks: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and coverage between boolean masks (N,H,W) and boxes (M,4) as filled rectangles.

    Returns ``(iou, inside)``, both (N,M): ``inside[i, j]`` is the number of mask-i pixels in
    box j. Uses a summed-area table per mask, so each pair costs O(1).
    """
    n, m = len(masks), len(boxes)
    iou = np.zeros((n, m))
    inside = np.zeros((n, m))
    if n == 0 or m == 0:
        return iou, inside
    h, w = masks.shape[1:]
    b = np.round(np.asarray(boxes, dtype=float)).astype(int)
    x1, x2 = np.clip(b[:, 0], 0, w), np.clip(b[:, 2], 0, w)
    y1, y2 = np.clip(b[:, 1], 0, h), np.clip(b[:, 3], 0, h)
    box_area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    for i, mask in enumerate(masks):
        sat = np.zeros((h + 1, w + 1), dtype=np.int64)
        sat[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
        inside[i] = sat[y2, x2] - sat[y1, x2] - sat[y2, x1] + sat[y1, x1]
        union = mask.sum() + box_area - inside[i]
        iou[i] = np.where(union > 0, inside[i] / np.maximum(union, 1), 0.0)
    return iou, inside


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes (N,4) and (M,4) in xyxy."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


class Associator:
    """Owns the track table and turns each keyframe's detections into a :class:`Plan`."""

    def __init__(self, params: AssociationParams | None = None) -> None:
        self.params = params or AssociationParams()
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def live_tracks(self) -> list[Track]:
        return [t for t in self.tracks.values() if t.is_live]

    def observe(self, frame: int, masks: Mapping[int, np.ndarray]) -> list[int]:
        """Update states from the mask tracker's output on any frame; return ids that ended.

        ``masks`` maps every id the mask tracker holds to its boolean mask on this frame.
        """
        ended = []
        for track in self.live_tracks():
            mask = masks.get(track.track_id)
            if mask is not None and mask.sum() >= self.params.min_mask_area:
                track.state = TrackState.ACTIVE
                track.last_seen = frame
            else:
                track.state = TrackState.LOST
                if frame - max(track.last_seen, track.born) > self.params.lost_ttl:
                    track.state = TrackState.ENDED
                    ended.append(track.track_id)
        return ended

    def update(
        self,
        frame: int,
        masks: Mapping[int, np.ndarray],
        boxes: np.ndarray,
        scores: np.ndarray,
        labels: Sequence[str],
    ) -> Plan:
        """Match a keyframe's detections to the tracks whose masks are given; plan the rest."""
        p = self.params
        plan = Plan()
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        scores = np.asarray(scores, dtype=float).reshape(-1)
        active = [
            t.track_id
            for t in self.live_tracks()
            if t.track_id in masks and masks[t.track_id].sum() >= p.min_mask_area
        ]
        if active:
            stack = np.stack([masks[i] for i in active])
            iou, inside = mask_box_iou(stack, boxes)
        else:
            iou = inside = np.zeros((0, len(boxes)))
        if iou.size:
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] < p.match_iou:
                    continue
                track = self.tracks[active[r]]
                track.vote(labels[c], scores[c])
                plan.matches[track.track_id] = int(c)
                if iou[r, c] < p.reprompt_iou:
                    plan.reprompts[track.track_id] = boxes[c].copy()
        matched = set(plan.matches.values())

        # Births: unmatched, confident, and not already covered by the live masks.
        if len(active):
            union = stack.any(0)
            _, covered = mask_box_iou(union[None], boxes)
            covered = covered[0]
        else:
            covered = np.zeros(len(boxes))
        box_area = np.maximum((boxes[:, 2:] - boxes[:, :2]).clip(0).prod(-1), 1.0)
        accepted: list[np.ndarray] = []
        for c in np.argsort(-scores, kind="stable"):
            if c in matched or scores[c] < p.birth_score:
                continue
            if covered[c] / box_area[c] > p.birth_max_overlap:
                continue
            if accepted and box_iou(boxes[c], np.stack(accepted)).max() > p.birth_nms_iou:
                continue
            accepted.append(boxes[c])
            track = Track(track_id=self._next_id, born=frame, last_seen=frame)
            self._next_id += 1
            track.vote(labels[c], scores[c])
            self.tracks[track.track_id] = track
            plan.births.append(Birth(track.track_id, boxes[c].copy(), labels[c], float(scores[c])))
        return plan
