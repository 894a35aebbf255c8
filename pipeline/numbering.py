"""Written ids: 1, 2, 3, ... in order of first appearance, whatever ids the associator used.

The associator numbers every track it starts, including tentative ones that the next keyframe
drops as false positives (``pipeline/held.py`` leaves those out of the output), so the ids a
file run writes would have gaps (the first written id could be #12). :class:`WrittenIds` runs
first on each finished frame, in the writer stage, and gives every id its written number once:
the JSON, the annotated video's ``#id`` tags, the MOT text, ``result.tracks`` and
``result.frames`` all show the same numbers, since every sink sees the frame after it. Within a
frame, older tracks (smaller associator ids) are numbered first. A live run keeps the
associator's ids (its outputs are read while the run goes on; nothing is held back there).

Example:
    >>> import numpy as np, supervision as sv
    >>> ids = WrittenIds()
    >>> frame = sv.Detections(xyxy=np.zeros((2, 4)), tracker_id=np.array([12, 7]))
    >>> ids.write(0, None, frame); frame.tracker_id.tolist()
    [2, 1]
    >>> later = sv.Detections(xyxy=np.zeros((2, 4)), tracker_id=np.array([12, 30]))
    >>> ids.write(1, None, later); later.tracker_id.tolist(), ids.mapping
    ([2, 3], {7: 1, 12: 2, 30: 3})
"""

from __future__ import annotations

import numpy as np
import supervision as sv


class WrittenIds:
    """A sink that renumbers each frame's ``tracker_id`` in place (one map for the whole run).

    It must come before every other sink of the run (:func:`~promptrack.pipeline.outputs.open_sinks`
    puts it first): the frame handed to the sinks belongs to the writer stage, and the sinks after
    this one read the written numbers from it.
    """

    def __init__(self) -> None:
        self.mapping: dict[int, int] = {}  # associator id -> written id

    def write(self, index: int, frame: np.ndarray | None, detections: sv.Detections) -> None:
        ids = detections.tracker_id
        if ids is None or not len(ids):
            return
        for track_id in sorted({int(i) for i in ids} - self.mapping.keys()):
            self.mapping[track_id] = len(self.mapping) + 1
        detections.tracker_id = np.array([self.mapping[int(i)] for i in ids], dtype=int)

    def close(self) -> None:
        pass
