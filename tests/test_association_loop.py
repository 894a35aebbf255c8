"""The real frame loop (pipeline/loop.py) driven by the simulated sensors of the benchmark.

Checks the wiring of the association plan (removals, additions, revivals, re-prompts, merges,
cadence, appearance) and that the benchmark's miniature loop measures what the pipeline does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from assocsim.adapters import SimDetectorAdapter, SimSource, SimTrackerAdapter  # noqa: E402
from assocsim.runners import Output, run_promptrack, score  # noqa: E402
from assocsim.scenarios import build  # noqa: E402
from assocsim.sensors import SimDetector, SimMaskTracker  # noqa: E402


class Collect:
    def __init__(self):
        self.frames = []

    def write(self, index, frame, detections):
        self.frames.append((index, detections))

    def close(self):
        pass


def test_pipeline_loop_equals_the_benchmark_loop():
    from promptrack.pipeline.config import load_config
    from promptrack.pipeline.loop import TrackingPipeline
    from promptrack.trackers.association import AssociationParams

    case = build("sam2_jumps")
    config = load_config("default", overrides=["detect_every=20", "device=cpu"])
    pipeline = TrackingPipeline(config, detector=SimDetectorAdapter(SimDetector(case.scene, 0, case.detector)),
                                tracker=SimTrackerAdapter(SimMaskTracker(case.scene, 0, case.masks)))
    sink = Collect()
    assert pipeline.run(SimSource(case.scene), case.scene.labels, [sink], progress=False) == case.scene.frames

    out = Output(frames=[{int(i): m for i, m in zip(d.tracker_id, d.mask)} if len(d) else {} for _, d in sink.frames])
    bench = run_promptrack(case, 0, params=AssociationParams.from_config(config.association))
    assert [sorted(f) for f in out.frames] == [sorted(f) for f in bench.frames]
    assert score(case, out)["idf1"] == score(case, bench)["idf1"]
    # labels come from the track votes, on every frame
    for _, d in sink.frames:
        for i, name in zip(d.tracker_id, d.data["class_name"]):
            assert name == pipeline.associator.tracks[int(i)].label
