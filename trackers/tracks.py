"""The track model: one persistent object, its state, its label votes and what it looked like.

Example:
    >>> t = Track(track_id=1, born=0)
    >>> t.vote("car", 0.9); t.vote("truck", 0.3); t.vote("car", 0.5)
    >>> t.label, round(t.score, 2)
    ('car', 0.7)
    >>> t.see(0, np.array([0.0, 0.0, 10.0, 10.0])); t.see(2, np.array([4.0, 0.0, 14.0, 10.0]))
    >>> t.predict_box(4).round(1).tolist()  # moving right by ~2 px/frame
    [8.0, 0.0, 18.0, 10.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class LabelVotes:
    """Score-weighted label votes: the label with the largest summed score wins (ties: by name).

    The one vote count of the project: a :class:`Track` votes with it on each detection, and the
    output's track table (``pipeline/sinks.py``) with it on each written frame. It works on the
    dicts it is given (no copy), so a track keeps its votes in its own fields.

    Example:
        >>> ballot = LabelVotes(); ballot.add("car", 0.9); ballot.add("truck", 0.3); ballot.add("car", 0.5)
        >>> ballot.label, round(ballot.score, 2), ballot.count
        ('car', 0.7, 3)
    """

    def __init__(self, votes: dict[str, float] | None = None, hits: dict[str, int] | None = None) -> None:
        self.votes = votes if votes is not None else {}  # label -> summed score
        self.hits = hits if hits is not None else {}  # label -> number of votes

    def add(self, label: str, score: float) -> None:
        self.votes[label] = self.votes.get(label, 0.0) + float(score)
        self.hits[label] = self.hits.get(label, 0) + 1

    @property
    def count(self) -> int:
        return sum(self.hits.values())

    @property
    def label(self) -> str:
        """The winning label ("" before any vote): a one-frame flip does not change it."""
        if not self.votes:
            return ""
        return max(self.votes.items(), key=lambda kv: (kv[1], kv[0]))[0]

    @property
    def score(self) -> float:
        """Mean score of the votes for the winning label."""
        label = self.label
        return self.votes[label] / self.hits[label] if label else 0.0


class TrackState(str, Enum):
    TENTATIVE = "tentative"  # born from one detection; confirmed by the next one, else dropped
    ACTIVE = "active"  # SAM 2 holds a non-empty mask for it
    LOST = "lost"  # its mask vanished (occlusion, exit); it may come back
    ENDED = "ended"  # lost for too long (or never confirmed); id retired, never reused


@dataclass
class Track:
    """One object with an id that never changes and is never reused."""

    track_id: int
    born: int  # frame it was created on
    state: TrackState = TrackState.ACTIVE
    last_seen: int = -1  # last frame with a non-empty mask
    votes: dict[str, float] = field(default_factory=dict)  # label -> summed detector score
    hits: dict[str, int] = field(default_factory=dict)  # label -> number of detections
    box: np.ndarray | None = None  # xyxy of the mask on `last_seen`
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # box-centre px/frame, smoothed
    moves: int = 0  # velocity measurements so far (the first one is taken as is)
    area: float = 0.0  # running mask area (pixels), smoothed
    peak: float = 0.0  # slowly fading maximum of its box area: its size before it got hidden or left
    embedding: np.ndarray | None = None  # smoothed L2-normalised appearance, when SAM 2 gives one
    lost_since: int | None = None  # first frame of the current loss
    anchor: np.ndarray | None = None  # box of the last detection that matched (or started) it
    anchor_frame: int = -1
    missed: int = 0  # keyframes in a row its mask was shown but no detection matched it
    held: bool = True  # False once removed from the mask tracker (merged away): revival re-adds it
    merged_into: int | None = None  # the older id this duplicate was merged into

    @property
    def ballot(self) -> LabelVotes:
        """The track's label votes (over its own ``votes`` / ``hits``)."""
        return LabelVotes(self.votes, self.hits)

    def vote(self, label: str, score: float) -> None:
        """Count a detection of this track as `label` with confidence `score`."""
        self.ballot.add(label, score)

    @property
    def detections(self) -> int:
        """How many detections matched (or started) this track."""
        return self.ballot.count

    @property
    def label(self) -> str:
        """The label with the largest summed score: a one-frame flip does not change it."""
        return self.ballot.label

    @property
    def score(self) -> float:
        """Mean detector score of the detections that voted for the current label."""
        return self.ballot.score

    @property
    def is_live(self) -> bool:
        return self.state is not TrackState.ENDED

    @property
    def has_mask(self) -> bool:
        """Tentative or active: SAM 2 shows it on the current frame."""
        return self.state in (TrackState.TENTATIVE, TrackState.ACTIVE)

    def see(self, frame: int, box: np.ndarray, area: float | None = None, momentum: float = 0.7) -> None:
        """Record the mask's box on `frame`; keeps a smoothed centre velocity for re-finding."""
        box = np.asarray(box, dtype=float)
        if self.box is not None and frame > self.last_seen >= 0:
            step = (_centre(box) - _centre(self.box)) / (frame - self.last_seen)
            if np.linalg.norm(step) > 0.5 * np.hypot(*(box[2:] - box[:2])):
                # Faster than half its size per frame: the mask jumped (to another object), not moved.
                self.velocity, self.moves = np.zeros(2), 0
            else:
                self.velocity = step if not self.moves else momentum * self.velocity + (1 - momentum) * step
                self.moves += 1
        if area is not None:
            self.area = area if self.area <= 0 else momentum * self.area + (1 - momentum) * area
        self.peak = max(float(np.prod((box[2:] - box[:2]).clip(0))), 0.99 * self.peak)
        self.box = box
        self.last_seen = frame

    def confirm(self, frame: int, box: np.ndarray) -> None:
        """A detection matched this track on `frame`: its mask is on the right object there."""
        self.anchor, self.anchor_frame, self.missed = np.asarray(box, dtype=float).copy(), frame, 0

    def remember(self, embedding: np.ndarray, momentum: float = 0.8) -> None:
        """Blend an L2-normalised appearance vector into the track's running appearance."""
        e = np.asarray(embedding, dtype=float).reshape(-1)
        if self.embedding is not None and self.embedding.shape == e.shape:
            e = momentum * self.embedding + (1 - momentum) * e
        norm = np.linalg.norm(e)
        self.embedding = e / norm if norm > 0 else e

    def predict_box(self, frame: int, max_frames: int = 30) -> np.ndarray | None:
        """Where the box would be on `frame` at the last velocity (extrapolated at most `max_frames`)."""
        if self.box is None:
            return None
        dt = min(max(frame - self.last_seen, 0), max_frames)
        shift = self.velocity * dt
        return self.box + np.array([shift[0], shift[1], shift[0], shift[1]])


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
