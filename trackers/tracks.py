"""The track model: one persistent object, its state, and its label votes.

Example:
    >>> t = Track(track_id=1, born=0)
    >>> t.vote("car", 0.9); t.vote("truck", 0.3); t.vote("car", 0.5)
    >>> t.label, round(t.score, 2)
    ('car', 0.7)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class TrackState(str, Enum):
    ACTIVE = "active"  # SAM 2 holds a non-empty mask for it
    LOST = "lost"  # its mask vanished (occlusion, exit); it may come back
    ENDED = "ended"  # lost for too long; removed from the mask tracker, id retired


@dataclass
class Track:
    """One object with an id that never changes and is never reused."""

    track_id: int
    born: int  # frame it was created on
    state: TrackState = TrackState.ACTIVE
    last_seen: int = -1  # last frame with a non-empty mask
    votes: dict[str, float] = field(default_factory=dict)  # label -> summed detector score
    hits: dict[str, int] = field(default_factory=dict)  # label -> number of detections

    def vote(self, label: str, score: float) -> None:
        """Count a detection of this track as `label` with confidence `score`."""
        self.votes[label] = self.votes.get(label, 0.0) + float(score)
        self.hits[label] = self.hits.get(label, 0) + 1

    @property
    def label(self) -> str:
        """The label with the largest summed score: a one-frame flip does not change it."""
        if not self.votes:
            return ""
        return max(self.votes.items(), key=lambda kv: (kv[1], kv[0]))[0]

    @property
    def score(self) -> float:
        """Mean detector score of the detections that voted for the current label."""
        label = self.label
        return self.votes[label] / self.hits[label] if label else 0.0

    @property
    def is_live(self) -> bool:
        return self.state is not TrackState.ENDED
