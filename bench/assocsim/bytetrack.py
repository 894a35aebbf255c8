"""ByteTrack on boxes (Zhang et al. 2022), as roboflow ``trackers`` implements it, then a mask per box.

The box tracker users compare with: the same detector on every frame, ``ByteTrackTracker``
(Kalman filter, two-stage matching: confident boxes first, then the weak ones against the
tracks left), and each tracked box segmented by a box prompt on that frame (what "ByteTrack +
SAM" gives). Its thresholds sit on this detector's score scale (scores ~0.5-0.9): confident
at 0.5, new tracks from 0.5, a lost track kept 30 frames.

Our repository has a ``trackers/`` folder (imported as ``promptrack.trackers``): when the
repository root is on ``sys.path`` (pytest run from there), a plain ``import trackers`` would
find that folder, so :func:`roboflow_trackers` looks past it.

Example:
    >>> from assocsim.scenarios import build
    >>> from assocsim.runners import score
    >>> case = build("control_easy")
    >>> out = run_bytetrack(case, seed=0)
    >>> out.detector_calls, bool(score(case, out)["idf1"] > 0.9)
    (300, True)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import supervision as sv

from .runners import Output, _shown
from .scenarios import Case
from .sensors import SimDetector, SimMaskTracker

ROOT = Path(__file__).resolve().parents[2]


def roboflow_trackers() -> ModuleType:
    """The installed roboflow ``trackers`` package (not this repository's ``trackers/`` folder)."""
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    try:
        module = importlib.import_module("trackers")
    finally:
        sys.path[:] = saved
    if Path(module.__file__).resolve().parent == ROOT / "trackers":
        raise ImportError("`trackers` resolved to this repository's folder: pip install trackers==2.6.1")
    return module


def run_bytetrack(case: Case, seed: int = 0, high: float = 0.5, activation: float = 0.5, buffer: int = 30) -> Output:
    scene = case.scene
    detector = SimDetector(scene, seed, case.detector)
    segmenter = SimMaskTracker(scene, seed, case.masks)  # holds nothing: it only segments boxes
    tracker = roboflow_trackers().ByteTrackTracker(
        lost_track_buffer=buffer, frame_rate=30.0, track_activation_threshold=activation,
        high_conf_det_threshold=high, minimum_consecutive_frames=2)
    labels_all = scene.labels
    out = Output()
    for t in range(scene.frames):
        segmenter.step(t)
        boxes, scores, labels = detector.detect(t)
        detections = sv.Detections(xyxy=boxes.astype(np.float32).reshape(-1, 4), confidence=scores.astype(np.float32),
                                   class_id=np.array([labels_all.index(x) for x in labels], dtype=int))
        tracked = tracker.update(detections)
        masks = {}
        for box, tid in zip(tracked.xyxy, tracked.tracker_id):
            if tid >= 0:
                masks[int(tid)] = segmenter.render(segmenter.prompt(box))
        out.frames.append(_shown(masks))
    out.detector_calls = detector.calls
    return out
