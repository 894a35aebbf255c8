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
from assocsim.runners import Output, product_config, run_promptrack, score  # noqa: E402
from assocsim.scenarios import build  # noqa: E402
from assocsim.sensors import SimDetector, SimMaskTracker  # noqa: E402


class Collect:
    def __init__(self):
        self.frames = []

    def write(self, index, frame, detections):
        self.frames.append((index, detections))

    def close(self):
        pass


def _pipeline_frames(case, config):
    from promptrack.pipeline.loop import TrackingPipeline

    pipeline = TrackingPipeline(config, detector=SimDetectorAdapter(SimDetector(case.scene, 0, case.detector)),
                                tracker=SimTrackerAdapter(SimMaskTracker(case.scene, 0, case.masks)))
    sink = Collect()
    assert pipeline.run(SimSource(case.scene), case.scene.labels, [sink], progress=False) == case.scene.frames
    assert [i for i, _ in sink.frames] == list(range(case.scene.frames))
    out = Output(frames=[{int(i): m for i, m in zip(d.tracker_id, d.mask)} if len(d) else {} for _, d in sink.frames])
    return pipeline, sink, out


def test_pipeline_loop_equals_the_benchmark_loop():
    from promptrack.pipeline.config import load_config

    case = build("sam2_jumps")
    config = load_config("default", overrides=["device=cpu"])  # the product's defaults, look-back included
    assert config.tracker.lookback > 0 and config.detect_every == product_config().detect_every
    pipeline, sink, out = _pipeline_frames(case, config)
    bench = run_promptrack(case, 0)  # the benchmark runs the product's defaults too
    assert [sorted(f) for f in out.frames] == [sorted(f) for f in bench.frames]
    assert score(case, out)["idf1"] == score(case, bench)["idf1"]
    # labels come from the track votes, on every frame
    for _, d in sink.frames:
        for i, name in zip(d.tracker_id, d.data["class_name"]):
            assert name == pipeline.associator.tracks[int(i)].label


def test_held_output_never_shows_a_track_that_was_never_confirmed():
    from promptrack.pipeline.config import load_config

    case = build("flaky_detector")  # false positives on many keyframes
    held = load_config("default", overrides=["device=cpu", "tracker.lookback=8"])
    live = load_config("default", overrides=["device=cpu", "tracker.lookback=0"])
    pipeline, _, out = _pipeline_frames(case, held)
    shown = {i for f in out.frames for i in f}
    assert shown and all(pipeline.associator.confirmed(i) for i in shown)
    # live (no look-back): a new track shows at once, so the false positives flash on screen
    pipeline, _, out_live = _pipeline_frames(case, live)
    flashed = {i for f in out_live.frames for i in f if not pipeline.associator.confirmed(i)}
    assert flashed
    assert score(case, out)["idf1"] > score(case, out_live)["idf1"]
