"""MOTChallenge text: ``<stem>.txt``, ``frame,id,x,y,w,h,score,-1,-1,-1`` with 1-based frames.

The same lines ``track-video --mot`` writes during a run (the line is :class:`MotSink`'s), for
the exported frames and objects only; TrackEval and py-motmetrics read it. Labels and masks are
not part of the format.

Example:
    >>> export_tracks("out/clip.tracks.json", "mot", "mot")   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import supervision as sv

from ..sinks import MotSink
from .base import Exporter
from .staging import Staging
from .tracks_file import FrameRecord, TracksFile


class MotExporter(Exporter):
    name = "mot"
    about = "MOTChallenge text: <stem>.txt, frame,id,x,y,w,h,score,-1,-1,-1 (1-based frames)"
    index = "{stem}.txt"

    def write(self, tracks: TracksFile, frames: list[FrameRecord], images: dict[int, str], stage: Staging) -> None:
        sink = MotSink(stage.path(self.index.format(stem=tracks.stem)))
        try:
            for frame in frames:
                objects = frame.objects
                sink.write(frame.index, None, sv.Detections(
                    xyxy=np.array([o.box for o in objects], dtype=float).reshape(-1, 4),
                    confidence=np.array([o.score for o in objects], dtype=float),
                    tracker_id=np.array([o.id for o in objects], dtype=int)))
        finally:
            sink.close()
