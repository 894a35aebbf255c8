"""When to run the detector: every N frames, plus extra looks when the scene changes.

The detector is the slow part of a keyframe, so it runs on a fixed grid (``every`` frames) and,
in between, only when SAM 2 signals that something happened: a track's mask vanished (an
occlusion or an exit; the object may be re-found or something new may have appeared) or the
number of masks jumped. ``min_gap`` keeps a burst of such events from costing a detection on
every frame.

Example:
    >>> cadence = DetectionCadence(every=10, min_gap=3)
    >>> [f for f in range(12) if cadence(f, masks=2, lost=1 if f == 4 else 0)]
    [0, 4, 10]
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DetectionCadence:
    every: int = 10  # regular keyframes: frames 0, every, 2*every, ... (counted from the first frame)
    on_lost: bool = True  # extra detection when a track's mask vanishes
    count_jump: int = 2  # extra detection when the number of masks changes by at least this (0: off)
    min_gap: int = 3  # at least this many frames between an extra detection and the previous one

    def __post_init__(self) -> None:
        self._last: int | None = None
        self._masks: int | None = None

    def scheduled(self, frame: int) -> bool:
        """Is `frame` on the regular grid? Known before the frame is tracked, so the detector can
        start on it while the tracker steps."""
        return frame % max(self.every, 1) == 0

    def __call__(self, frame: int, masks: int, lost: int = 0) -> bool:
        """Is `frame` a keyframe? `masks`: non-empty masks now; `lost`: tracks lost on this frame.

        `frame` counts from the first processed frame. Call once per frame, in order.
        """
        previous, self._masks = self._masks, masks
        due = self.scheduled(frame)
        if not due and (self._last is None or frame - self._last >= self.min_gap):
            jumped = previous is not None and self.count_jump > 0 and abs(masks - previous) >= self.count_jump
            due = (self.on_lost and lost > 0) or jumped
        if due:
            self._last = frame
        return due
