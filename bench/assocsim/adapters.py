"""The simulated sensors behind the pipeline's own interfaces (MaskTracker, detector callable).

With these, ``promptrack.pipeline.loop.TrackingPipeline`` itself runs on a simulated scene: the
test that the benchmark's miniature loop (``runners.run_promptrack``) is the real one.

Example:
    >>> from assocsim.scenarios import build
    >>> case = build("control_easy")
    >>> tracker = SimTrackerAdapter(SimMaskTracker(case.scene))
    >>> len(tracker.step(0, None))
    0
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import supervision as sv

from .scene import Scene
from .sensors import SimDetector, SimMaskTracker


def _detections(masks: dict[int, np.ndarray]) -> sv.Detections:
    if not masks:
        return sv.Detections.empty()
    stack = np.stack(list(masks.values()))
    return sv.Detections(xyxy=sv.mask_to_xyxy(stack).astype(np.float32), mask=stack,
                         tracker_id=np.array(list(masks), dtype=int))


class SimTrackerAdapter:
    """A :class:`SimMaskTracker` as a ``MaskTracker`` (supervision Detections in and out)."""

    def __init__(self, tracker: SimMaskTracker) -> None:
        self.sim = tracker

    @property
    def ids(self) -> list[int]:
        return self.sim.ids

    def step(self, index: int, frame: np.ndarray) -> sv.Detections:
        return _detections(self.sim.step(index))

    def add(self, ids: Sequence[int], boxes: np.ndarray) -> None:
        self.sim.add(ids, boxes)

    def reprompt(self, ids: Sequence[int], boxes: np.ndarray) -> None:
        self.sim.reprompt(ids, boxes)

    def remove(self, ids: Sequence[int]) -> None:
        self.sim.remove(ids)

    def current(self) -> sv.Detections:
        return _detections(self.sim.current())

    def track_embeddings(self) -> dict[int, np.ndarray]:
        return self.sim.track_embeddings()

    def box_embeddings(self, boxes: np.ndarray) -> np.ndarray:
        return self.sim.box_embeddings(boxes)


class SimDetectorAdapter:
    """A :class:`SimDetector` as a detector callable; the frame it gets is the frame index."""

    def __init__(self, detector: SimDetector) -> None:
        self.sim = detector

    def __call__(self, frame, phrases: Sequence[str]) -> sv.Detections:
        boxes, scores, labels = self.sim.detect(int(frame))
        if not len(boxes):
            return sv.Detections.empty()
        return sv.Detections(xyxy=boxes.astype(np.float32), confidence=scores.astype(np.float32),
                             class_id=np.array([list(phrases).index(x) for x in labels], dtype=int),
                             data={"class_name": np.array(labels, dtype=object)})


class SimSource:
    """Frame source of a scene: yields ``(index, index)``; the sensors look the frame up."""

    start = 0

    def __init__(self, scene: Scene) -> None:
        self.scene = scene

    def __len__(self) -> int:
        return self.scene.frames

    def frame_time(self, index: int) -> float:
        return index / 25.0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for t in range(self.scene.frames):
            yield t, t
