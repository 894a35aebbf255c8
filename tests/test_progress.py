"""The one-line estimate before a long CPU run (pipeline/progress.py), with a fake clock."""

from __future__ import annotations

import io
import itertools

import cv2
import numpy as np
import pytest

from promptrack.pipeline import loop as loop_module
from promptrack.pipeline import progress, track_video
from promptrack.pipeline.progress import TrackingBar
from test_detectors_plugins import BoxMaskTracker


def run_bar(seconds_a_frame: float, total: int | None = 72, frames: int = 20, device: str = "cpu",
            disable: bool = False) -> str:
    ticks = itertools.count()
    terminal = io.StringIO()
    bar = TrackingBar(total, device, clock=lambda: next(ticks) * seconds_a_frame, file=terminal, disable=disable)
    for _ in range(frames):
        bar.update(1)
    bar.close()
    return terminal.getvalue()


def estimates(text: str) -> list[str]:
    return [line.strip("\r") for line in text.splitlines() if "a frame" in line]


def test_a_long_cpu_run_gets_one_estimate_after_the_first_frames():
    lines = estimates(run_bar(6.0))
    assert lines == ["~6 s a frame, ~7 min for 72 frames: --config fast or --max-frames for a quick look"]


def test_very_slow_frames_are_estimated_after_two_of_them():
    ticks = iter([0, 40, 80, 120, 160])
    terminal = io.StringIO()
    bar = TrackingBar(10, "cpu", clock=lambda: next(ticks), file=terminal)
    bar.update(1)
    assert estimates(terminal.getvalue()) == []  # one frame says nothing of the pace
    bar.update(1)
    assert estimates(terminal.getvalue()) == ["~40 s a frame, ~7 min for 10 frames: --config fast or "
                                              "--max-frames for a quick look"]
    bar.close()


def test_the_first_frame_stands_for_the_keyframes_and_the_others_for_the_rest():
    def run(detect_every):
        ticks = iter([0, 20, 21, 22, 23])  # a keyframe of 20 s (detector and warm-up), then 1 s a frame
        terminal = io.StringIO()
        bar = TrackingBar(72, "cpu", detect_every, clock=lambda: next(ticks), file=terminal)
        for _ in range(4):
            bar.update(1)
        bar.close()
        return estimates(terminal.getvalue())

    assert run(15) == []  # 5 keyframes * 20 s + 67 * 1 s: under 3 min, not worth a line
    assert run(5) == ["~5 s a frame, ~6 min for 72 frames: --config fast or --max-frames for a quick look"]  # 15 * 20 + 57


@pytest.mark.parametrize("case", [dict(seconds_a_frame=1.0),  # 72 s in all: short, nothing to say
                                  dict(seconds_a_frame=6.0, disable=True),  # --quiet / progress=False
                                  dict(seconds_a_frame=6.0, device="cuda"),  # a GPU run
                                  dict(seconds_a_frame=6.0, total=None)])  # a stream of unknown length
def test_no_estimate_for_short_quiet_gpu_or_endless_runs(case):
    assert estimates(run_bar(**case)) == []


def test_the_frame_loop_prints_it_once_for_a_slow_run(tmp_path, monkeypatch, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(40):
        cv2.imwrite(str(frames / f"{i:05d}.png"), np.full((32, 48, 3), 60, np.uint8))
    ticks = itertools.count()
    monkeypatch.setattr(progress, "CLOCK", lambda: next(ticks) * 5.0)  # 5 s a frame
    monkeypatch.setattr(loop_module, "build_sam2_tracker", lambda config, device: BoxMaskTracker())
    empty = lambda frame, phrases: loop_module.sv.Detections.empty()  # noqa: E731
    track_video(frames, "car", output_dir=None, detector=empty, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert estimates(err) == ["~5 s a frame, ~3 min for 40 frames: --config fast or --max-frames for a quick look"]
    track_video(frames, "car", output_dir=None, detector=empty, device="cpu", progress=False)
    assert estimates(capsys.readouterr().err) == []
