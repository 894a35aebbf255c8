"""Associate keyframe detections with tracks: matches, births, re-prompts, losses, revivals, merges.

Pure logic on arrays (no model): what the mask tracker's masks measure on a frame (a
:class:`~.mask_frame.MaskFrame`: areas, boxes, overlaps, or simply boolean masks per track id), the
detector's boxes, scores and labels (and, optionally, appearance vectors) in, a :class:`Plan` out.
The pipeline carries the plan out on the mask tracker (add / reprompt / remove).

Rules:
- Matching is one-to-one (Hungarian) on a similarity mixing the mask-vs-box IoU and how much of
  the track's mask the box covers (a box around an object SAM 2 only half segments still
  matches it). Appearance, when given, breaks ties between overlapping tracks.
- A matched track whose mask agrees poorly with its box (IoU < ``reprompt_iou``) is re-prompted.
- A detection that matches no track but fits a *lost* one (position extrapolated from its last
  motion, size, label, and appearance when given) revives the old id: re-prompted when the mask
  tracker still holds it, re-added when it had been removed (a merged duplicate).
- A track whose mask no detection has matched for ``stale_keyframes`` keyframes may have jumped
  onto scenery or another object; a free detection that fits its last *detected* position claims
  it like a lost one (re-prompt), so the id goes back to its object.
- Any other detection scoring at least ``birth_score`` whose box is not mostly covered by live
  masks starts a new track; ids start at 1 and are never reused. With ``confirm_hits > 1`` it is
  tentative until that many detections matched it. Unmatched at a keyframe ``confirm_min_age``
  frames or more after its birth, it leaves the mask tracker (``Plan.removals``) but stays lost,
  so that a detection that fits it later revives the id; still unconfirmed after
  ``confirm_window`` frames, it was a false positive and ends.
- A track confirmed by fewer than ``unsupported_hits`` detections that no detection has matched
  for ``unsupported_keyframes`` keyframes in a row is SAM 2 holding scenery (a false positive
  that a chance overlap confirmed): it leaves the mask tracker and is kept lost, revivable.
- Otherwise a detector miss never ends a track. A track whose mask is empty is *lost*; lost for
  ``lost_ttl`` frames it *ends* (after that, the object gets a new id). While lost, SAM 2 keeps
  its memory and may find it again by itself.
- Two tracks whose masks overlap (IoU >= ``merge_iou``) for ``merge_frames`` frames in a row are
  one object: the older id stays (unless appearance says clearly that the mask is the younger
  one's: SAM 2 jumping onto an occluder), the other is removed from the mask tracker and kept
  lost, so it can still be revived.

Example:
    >>> import numpy as np
    >>> assoc = Associator(AssociationParams())
    >>> plan = assoc.update(0, {}, np.array([[10, 10, 50, 50]]), np.array([0.9]), ["car"])
    >>> plan.births
    [Birth(track_id=1, box=array([10., 10., 50., 50.]), label='car', score=0.9)]
    >>> mask = np.zeros((64, 64), bool); mask[10:50, 10:50] = True
    >>> assoc.observe(1, {1: mask})       # ids to remove from the mask tracker: none
    []
    >>> assoc.update(1, {1: mask}, np.array([[11, 10, 50, 51]]), np.array([0.8]), ["car"]).matches
    {1: 0}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .mask_frame import MaskFrame, as_mask_frame, mask_box_iou
from .tracks import Track, TrackState


@dataclass
class AssociationParams:
    match_iou: float = 0.3  # min mask-vs-box IoU for a match ...
    match_cover: float = 0.8  # ... or this share of the mask inside the box (with IoU >= match_iou / 2)
    cover_weight: float = 0.5  # match similarity = (1 - w) * IoU + w * coverage
    match_appearance: float = 0.3  # how much appearance (cosine) scales the match similarity
    birth_score: float = 0.4  # min detector score to start a new track
    birth_max_overlap: float = 0.5  # a box covered more than this by live masks is no birth
    birth_nms_iou: float = 0.7  # two births overlapping more than this are one object
    confirm_hits: int = 2  # detections needed to confirm a track (1: born active, no tentative state)
    confirm_window: int = 30  # frames a tentative track may wait for them before it is dropped ...
    confirm_misses: int = 1  # ... or keyframes at least `confirm_min_age` frames after its birth
    confirm_min_age: int = 10  # that it may go unmatched (a false positive is shown one interval, not two)
    unsupported_keyframes: int = 4  # a confirmed track with fewer than `unsupported_hits` detections, shown but
    unsupported_hits: int = 3  # matched at none of `unsupported_keyframes` keyframes in a row, leaves the mask
    # tracker (SAM 2 holding scenery a false positive started); kept lost, a detection can revive it; 0: off
    reprompt_iou: float = 0.5  # matched but IoU below this: re-prompt the track with the box
    min_mask_area: int = 16  # masks smaller than this (pixels) count as empty
    lost_ttl: int = 150  # frames a lost track may be re-found before it ends
    revive_score: float = 0.4  # min detector score to revive a lost id
    revive_min: float = 0.35  # min plausibility (0..1) of position x size x label to revive
    revive_distance: float = 1.0  # revival radius, in box diagonals around the predicted box ...
    revive_spread: float = 0.25  # ... growing by this many diagonals per sqrt(frame lost)
    revive_size_ratio: float = 2.5  # max area ratio between a lost track and its revival
    revive_label_penalty: float = 0.5  # plausibility factor when the labels differ
    revive_appearance: float = 0.7  # min cosine similarity to revive (when embeddings are given)
    stale_keyframes: int = 2  # a shown track no detection matched for this many keyframes in a row
    # may be claimed like a lost one (SAM 2 jumped onto scenery); 0: off
    merge_iou: float = 0.6  # two masks overlapping this much ...
    merge_frames: int = 5  # ... for this many frames in a row are one object
    merge_appearance_margin: float = 0.15  # keep the younger id only if it looks this much closer
    appearance_momentum: float = 0.8  # running appearance: weight of the past
    keep_ended: int = 1000  # ended tracks remembered (labels for reports); older ones are forgotten

    @classmethod
    def from_config(cls, config: object) -> "AssociationParams":
        """Params from a dataclass with (some of) the same field names, e.g. ``AssociationConfig``
        (its other fields, such as the keyframe cues, are the cadence's)."""
        given = {f.name: getattr(config, f.name) for f in fields(config)}
        return cls(**{f.name: given[f.name] for f in fields(cls) if f.name in given})


@dataclass
class Birth:
    track_id: int
    box: np.ndarray
    label: str
    score: float
    detection: int = field(default=-1, repr=False)  # index of the detection it starts from


@dataclass
class Revival:
    """Detection ``detection`` is lost track ``track_id`` again.

    ``readd``: the mask tracker no longer holds the id (it was removed as a duplicate), so the
    loop must ``add`` it with ``box``; otherwise the id is in :attr:`Plan.reprompts` too.
    """

    track_id: int
    box: np.ndarray
    detection: int
    readd: bool


@dataclass
class Merge:
    """Tracks ``keep`` and ``remove`` were one object from frame ``frame``; ``remove`` left the tracker."""

    keep: int
    remove: int
    frame: int


@dataclass
class Plan:
    """What the mask tracker must do on this frame: remove, then add, then re-prompt."""

    births: list[Birth] = field(default_factory=list)
    reprompts: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> box (drift, revivals)
    matches: dict[int, int] = field(default_factory=dict)  # track id -> detection index
    revivals: list[Revival] = field(default_factory=list)
    removals: list[int] = field(default_factory=list)  # ids to drop now (unconfirmed tentative tracks,
    # confirmed ones no detection matched for `unsupported_keyframes` keyframes: kept lost, revivable)

    @property
    def additions(self) -> dict[int, np.ndarray]:
        """Ids the mask tracker must ``add`` now, with their boxes: births, then re-added revivals."""
        adds = {b.track_id: b.box for b in self.births}
        adds.update({r.track_id: r.box for r in self.revivals if r.readd})
        return adds

    def __bool__(self) -> bool:
        """True when the mask tracker has anything to do."""
        return bool(self.births or self.reprompts or self.revivals or self.removals)


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


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    a, b = np.asarray(a, float).reshape(-1), np.asarray(b, float).reshape(-1)
    if a.shape != b.shape:
        return None
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else None


def _diag(box: np.ndarray) -> float:
    return float(np.hypot(box[2] - box[0], box[3] - box[1]))


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))


class Associator:
    """Owns the track table; :meth:`observe` every frame, :meth:`update` on keyframes.

    Appearance is optional everywhere: ``track_embeddings`` maps a track id to an L2-normalised
    vector pooled from SAM 2 features under its mask on this frame; ``detection_embeddings``
    (N, D) holds one per detection box. Without them, association uses position, size and label
    only.
    """

    def __init__(self, params: AssociationParams | None = None) -> None:
        self.params = params or AssociationParams()
        self.tracks: dict[int, Track] = {}  # live and lost tracks, and the last `keep_ended` ended ones
        self.merges: list[Merge] = []  # every merge so far (the removed ids stay revivable)
        self.newly_lost: list[int] = []  # ids whose mask vanished on the last observed frame
        self._next_id = 1
        self._overlap: dict[tuple[int, int], int] = {}  # (older, younger) -> frames in a row
        self._shape: tuple[int, int] | None = None  # image (H, W), learnt from the masks

    def live_tracks(self) -> list[Track]:
        return [t for t in self.tracks.values() if t.is_live]

    def lost_tracks(self) -> list[Track]:
        return [t for t in self.tracks.values() if t.state is TrackState.LOST]

    def label_frame(self, ids: Sequence[int]) -> tuple[list[str], np.ndarray]:
        """The label (vote winner) and score of each track id, in order: what a finished frame shows."""
        tracks = [self.tracks[int(i)] for i in ids]
        return [t.label for t in tracks], np.array([t.score for t in tracks], dtype=np.float32)

    def confirmed(self, track_id: int) -> bool:
        """Has a detection confirmed the track (``confirm_hits`` in all)? A held frame shows only
        confirmed tracks (``pipeline/held.py``); an id no longer remembered counts as confirmed."""
        track = self.tracks.get(int(track_id))
        return track is None or track.detections >= self.params.confirm_hits

    def awaiting_verdict(self, track_id: int) -> bool:
        """Is the track tentative and shown, so that a coming keyframe confirms or drops it?"""
        track = self.tracks.get(int(track_id))
        return track is not None and track.state is TrackState.TENTATIVE

    @property
    def lost_on_last_frame(self) -> int:
        """How many tracks lost their mask on the last observed frame (a cue for an extra keyframe)."""
        return len(self.newly_lost)

    # -- every frame -----------------------------------------------------------------------
    def observe(
        self,
        frame: int,
        masks: MaskFrame | Mapping[int, np.ndarray],
        track_embeddings: Mapping[int, np.ndarray] | None = None,
    ) -> list[int]:
        """Update states from the mask tracker's output on any frame.

        ``masks`` covers every id the mask tracker holds on this frame: a :class:`MaskFrame`, or
        boolean masks by id. Returns the ids the mask tracker must remove now: tracks that ended
        (lost for ``lost_ttl`` frames, or tentative and vanished) and duplicates merged into an
        older track (see :attr:`merges`).
        """
        p = self.params
        masks = as_mask_frame(masks)
        removed: list[int] = []
        self.newly_lost = []
        # Only the last `keep_ended` ended tracks are remembered (for reports of their labels):
        # memory stays flat over hours whatever the number of ids.
        ended = [i for i, t in self.tracks.items() if not t.is_live]  # oldest ids first
        for i in ended[: max(len(ended) - p.keep_ended, 0)]:
            del self.tracks[i]
        held = set(masks.ids)
        if held:
            self._shape = masks.shape
        visible: dict[int, tuple[np.ndarray, float]] = {}  # id -> (box, area)
        for track in self.live_tracks():
            if not track.held:
                if frame - (track.lost_since if track.lost_since is not None else frame) >= p.lost_ttl:
                    track.state = TrackState.ENDED  # already out of the mask tracker
                continue
            area = float(masks.area(track.track_id)) if track.track_id in held else 0.0
            if area >= p.min_mask_area:
                if track.state is TrackState.LOST:  # SAM 2 found it again by itself
                    track.state = self._shown_state(track)
                    track.lost_since = None
                box = masks.box(track.track_id)
                visible[track.track_id] = (box, area)
                track.see(frame, box, area)
            else:
                if track.state is not TrackState.LOST:
                    track.state = TrackState.LOST
                    track.lost_since = frame
                    self.newly_lost.append(track.track_id)
                unconfirmed = track.detections < p.confirm_hits and frame - track.born > p.confirm_window
                if frame - track.lost_since >= p.lost_ttl or unconfirmed:
                    track.state = TrackState.ENDED
                    removed.append(track.track_id)
        removed += self._merge_duplicates(frame, masks, visible, track_embeddings)
        return removed

    def _merge_duplicates(
        self,
        frame: int,
        masks: MaskFrame,
        visible: dict[int, tuple[np.ndarray, float]],
        track_embeddings: Mapping[int, np.ndarray] | None,
    ) -> list[int]:
        p = self.params
        ids = sorted(visible)
        streaks: dict[tuple[int, int], int] = {}
        if len(ids) > 1:
            boxes = np.stack([visible[i][0] for i in ids])
            near = box_iou(boxes, boxes)
            for a in range(len(ids)):
                for b in range(a + 1, len(ids)):
                    if near[a, b] <= 0:  # boxes apart: masks cannot overlap (cheap prefilter)
                        continue
                    inter = float(masks.overlap(ids[a], ids[b]))
                    union = visible[ids[a]][1] + visible[ids[b]][1] - inter
                    if union > 0 and inter / union >= p.merge_iou:
                        pair = (ids[a], ids[b])
                        streaks[pair] = self._overlap.get(pair, 0) + 1
        self._overlap = streaks
        removed: list[int] = []
        for (older, younger), run in sorted(streaks.items()):
            if run < p.merge_frames or older in removed or younger in removed:
                continue
            keep, drop = older, younger
            current = None if track_embeddings is None else track_embeddings.get(older)
            if current is None and track_embeddings is not None:
                current = track_embeddings.get(younger)
            c_old = _cosine(self.tracks[older].embedding, current)
            c_young = _cosine(self.tracks[younger].embedding, current)
            if c_old is not None and c_young is not None and c_young > c_old + p.merge_appearance_margin:
                keep, drop = younger, older  # the older one jumped onto the younger's object
            track = self.tracks[drop]
            track.state, track.held, track.merged_into = TrackState.LOST, False, keep
            track.lost_since = frame
            self.merges.append(Merge(keep, drop, frame))
            removed.append(drop)
        return removed

    # -- keyframes ---------------------------------------------------------------------------
    def update(
        self,
        frame: int,
        masks: MaskFrame | Mapping[int, np.ndarray],
        boxes: np.ndarray,
        scores: np.ndarray,
        labels: Sequence[str],
        track_embeddings: Mapping[int, np.ndarray] | None = None,
        detection_embeddings: np.ndarray | None = None,
    ) -> Plan:
        """Match a keyframe's detections to the tracks whose masks are given; plan the rest."""
        p = self.params
        masks = as_mask_frame(masks)
        plan = Plan()
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        scores = np.asarray(scores, dtype=float).reshape(-1)
        labels = list(labels)
        held = set(masks.ids)
        shown = [
            t.track_id
            for t in self.live_tracks()
            if t.has_mask and t.track_id in held and masks.area(t.track_id) >= p.min_mask_area
        ]
        # pixels of each shown mask inside each box, and of each box under any shown mask
        measured = bool(shown) and len(boxes) > 0
        inside, covered = masks.box_cover(boxes, shown) if measured else (None, np.zeros(len(boxes)))

        # 1. Matches: one-to-one on IoU mixed with coverage, scaled by appearance when known.
        if inside is not None:
            area = np.array([masks.area(i) for i in shown], dtype=float)[:, None]
            iou = mask_box_iou(inside, area, boxes, masks.shape)
            cover = inside / np.maximum(area, 1)
            sim = (1 - p.cover_weight) * iou + p.cover_weight * cover
            ok = (iou >= p.match_iou) | ((cover >= p.match_cover) & (iou >= p.match_iou / 2))
            if detection_embeddings is not None:
                for r, tid in enumerate(shown):
                    e = (track_embeddings or {}).get(tid)
                    e = self.tracks[tid].embedding if e is None else e
                    for c in range(len(boxes)):
                        cos = _cosine(e, detection_embeddings[c])
                        if cos is not None:
                            sim[r, c] *= 1 - p.match_appearance + p.match_appearance * max(cos, 0.0)
            sim = np.where(ok, sim, 0.0)
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] <= 0:
                    continue
                track = self.tracks[shown[r]]
                track.vote(labels[c], scores[c])
                track.confirm(frame, boxes[c])
                self._remember(track, track_embeddings, detection_embeddings, c)
                plan.matches[track.track_id] = int(c)
                track.state = self._shown_state(track)
                if iou[r, c] < p.reprompt_iou:
                    plan.reprompts[track.track_id] = boxes[c].copy()
        matched = set(plan.matches.values())

        # 2. Tentative tracks that a later keyframe did not confirm were false positives; a confirmed
        # track no detection has vouched for in a long while is SAM 2 holding scenery (or an object
        # the detector stopped seeing): out of the mask tracker, kept lost, revivable.
        for tid in shown:
            track = self.tracks[tid]
            if tid in plan.matches or frame <= track.born:
                continue
            track.missed += 1
            age = frame - track.born
            if track.state is TrackState.TENTATIVE:
                if age > p.confirm_window:
                    track.state = TrackState.ENDED
                    plan.removals.append(tid)
                elif track.missed >= p.confirm_misses and age >= p.confirm_min_age:
                    # Hidden now (a false positive is shown one keyframe interval, not two) but kept
                    # lost: were it a real object the detector missed once, its next detection revives
                    # the id instead of starting another one.
                    track.state, track.held, track.lost_since = TrackState.LOST, False, frame
                    plan.removals.append(tid)
            elif (p.unsupported_keyframes and track.missed >= p.unsupported_keyframes
                  and track.detections < p.unsupported_hits):
                track.state, track.held, track.lost_since = TrackState.LOST, False, frame
                plan.removals.append(tid)

        # Share of each box already covered by live masks: such a box is a part of a known object.
        box_area = np.maximum((boxes[:, 2:] - boxes[:, :2]).clip(0).prod(-1), 1.0)
        free = [
            c for c in range(len(boxes))
            if c not in matched and covered[c] / box_area[c] <= p.birth_max_overlap
        ]

        # 3. Revivals: a free detection that fits a lost track brings its id back.
        revived = self._revive(frame, boxes, scores, labels, free, detection_embeddings, plan)

        # 4. Births: confident, free, not a revival, not a duplicate of another birth.
        accepted: list[np.ndarray] = []
        for c in np.argsort(-scores, kind="stable"):
            if c not in free or c in revived or scores[c] < p.birth_score:
                continue
            if accepted and box_iou(boxes[c], np.stack(accepted)).max() > p.birth_nms_iou:
                continue
            accepted.append(boxes[c])
            track = Track(track_id=self._next_id, born=frame)
            track.see(frame, boxes[c], _area(boxes[c]))
            track.confirm(frame, boxes[c])
            if detection_embeddings is not None:
                track.remember(detection_embeddings[c], 0.0)
            self._next_id += 1
            track.vote(labels[c], scores[c])
            track.state = self._shown_state(track)
            self.tracks[track.track_id] = track
            plan.births.append(Birth(track.track_id, boxes[c].copy(), labels[c], float(scores[c]), int(c)))
        return plan

    def _at_border(self, box: np.ndarray, margin: float = 2.0) -> bool:
        if self._shape is None:
            return False
        h, w = self._shape
        return bool(box[0] <= margin or box[1] <= margin or box[2] >= w - margin or box[3] >= h - margin)

    def _shown_state(self, track: Track) -> TrackState:
        """The state of a track with a mask: active once enough detections confirmed it."""
        return TrackState.ACTIVE if track.detections >= self.params.confirm_hits else TrackState.TENTATIVE

    def _remember(self, track: Track, track_embeddings: Mapping[int, np.ndarray] | None,
                  detection_embeddings: np.ndarray | None, c: int) -> None:
        # Appearance is learnt only from views a detection vouched for: a mask that jumped onto
        # scenery or an occluder must not teach the track what it looks like. The box's vector
        # first: revivals compare the memory with box vectors, like with like.
        e = None if detection_embeddings is None else detection_embeddings[c]
        if e is None and track_embeddings is not None:
            e = track_embeddings.get(track.track_id)
        if e is not None:
            track.remember(e, self.params.appearance_momentum)

    def revival_score(self, track: Track, frame: int, box: np.ndarray, label: str,
                      embedding: np.ndarray | None = None) -> float:
        """How plausible it is (0..1) that `box` is lost (or stale) `track` again; 0 when it cannot be.

        Position: distance from where the track's last motion would have taken it (a stale
        track: from its last matched detection), within a radius that grows with the time since.
        Size: area ratio. Label: a mismatch costs ``revive_label_penalty``. Appearance (when
        both sides have one): a hard gate at ``revive_appearance``, then it weighs half, and the
        position radius doubles.
        """
        p = self.params
        if track.state is TrackState.LOST:
            ref, since = track.box, track.last_seen
            predicted = track.predict_box(frame, max_frames=10)
        else:  # stale: its mask is not to be trusted, its last detection is
            ref, since = track.anchor, track.anchor_frame
            predicted = ref
        if ref is None:
            return 0.0
        dt = max(frame - since, 0)
        diag = max(_diag(ref), 1.0)
        radius = diag * (p.revive_distance + p.revive_spread * np.sqrt(dt))
        cos = _cosine(track.embedding, embedding)
        if cos is not None:
            radius *= 2  # appearance carries identity: allow re-entry farther away
        s_pos = max(0.0, 1.0 - float(np.linalg.norm(_centre(box) - _centre(predicted))) / radius)
        # Its size before it got hidden or left (its last masks were shrinking slivers).
        ref_area = max(_area(ref), track.peak)
        ratio = abs(np.log(max(_area(box), 1.0) / max(ref_area, 1.0)))
        s_size = max(0.0, 1.0 - ratio / np.log(p.revive_size_ratio))
        if _area(box) < ref_area and self._at_border(box):
            s_size = 1.0  # coming back in through the image border: only part of it shows yet
        s_label = 1.0 if not track.label or label == track.label else p.revive_label_penalty
        geometry = s_pos * np.sqrt(s_size) * s_label
        if cos is None:
            return float(geometry)
        if cos < p.revive_appearance or geometry <= 0:
            return 0.0
        s_app = (cos - p.revive_appearance) / max(1.0 - p.revive_appearance, 1e-6)
        return float(0.5 * np.sqrt(geometry) + 0.5 * (0.5 + 0.5 * s_app))

    def _revive(self, frame: int, boxes: np.ndarray, scores: np.ndarray, labels: list[str],
                free: list[int], detection_embeddings: np.ndarray | None, plan: Plan) -> set[int]:
        p = self.params
        lost = self.lost_tracks()
        if p.stale_keyframes > 0:
            lost += [t for t in self.live_tracks()
                     if t.has_mask and t.missed >= p.stale_keyframes and t.track_id not in plan.matches]
        cands = [c for c in free if scores[c] >= p.revive_score]
        if not lost or not cands:
            return set()
        score = np.zeros((len(lost), len(cands)))
        for r, track in enumerate(lost):
            for k, c in enumerate(cands):
                e = None if detection_embeddings is None else detection_embeddings[c]
                score[r, k] = self.revival_score(track, frame, boxes[c], labels[c], e)
        rows, cols = linear_sum_assignment(-score)
        revived = set()
        for r, k in zip(rows, cols):
            if score[r, k] < p.revive_min:
                continue
            track, c = lost[r], cands[k]
            readd = not track.held
            track.held, track.lost_since, track.merged_into = True, None, None
            track.see(frame, boxes[c], _area(boxes[c]))
            track.velocity, track.moves = np.zeros(2), 0  # the old motion says nothing after a gap
            track.vote(labels[c], scores[c])
            track.state = self._shown_state(track)
            track.confirm(frame, boxes[c])
            if detection_embeddings is not None:
                track.remember(detection_embeddings[c], self.params.appearance_momentum)
            plan.matches[track.track_id] = c
            plan.revivals.append(Revival(track.track_id, boxes[c].copy(), c, readd))
            if not readd:
                plan.reprompts[track.track_id] = boxes[c].copy()
            revived.add(c)
        return revived
