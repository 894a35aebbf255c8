"""detector= takes the same values in track_video and track_videos: a name, a model folder, an
.onnx path or a DetectorConfig, read as --detector reads them (the Ray run: tests/test_batch.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from promptrack.pipeline import loop as loop_module
from promptrack.pipeline import track_video
from promptrack.pipeline.config import load_config
from test_detectors_plugins import BoxMaskTracker


def test_detector_values_are_read_as_the_cli_reads_them_and_objects_stay_with_track_video(tmp_path):
    from promptrack.pipeline.api import with_detector
    from promptrack.pipeline.batch import track_videos
    from promptrack.pipeline.config import DetectorConfig
    from promptrack.pipeline.errors import ConfigError

    base = load_config("default", ["detector.box_threshold=0.5"])
    config, own = with_detector(base, "yolox")
    assert (config.detector.name, config.detector.model, config.detector.box_threshold, own) == ("yolox", None, 0.5, None)
    onnx = tmp_path / "mine.onnx"
    onnx.write_bytes(b"")
    config, _ = with_detector(base, onnx)
    assert (config.detector.name, config.detector.model) == ("yolox", str(onnx))
    chosen = DetectorConfig(name="owlv2", box_threshold=0.1)
    assert with_detector(base, chosen) == (replace(base, detector=chosen), None)

    def mine(frame, phrases):
        return None
    assert with_detector(base, mine) == (base, mine)  # track_video runs it as it is
    with pytest.raises(ConfigError, match="unknown detector 'yolo-nine'"):
        with_detector(base, "yolo-nine")
    with pytest.raises(ConfigError, match="builds the detector on every worker"):
        track_videos(str(tmp_path / "*.mp4"), "car", output_dir=tmp_path / "out", detector=mine)


def test_track_video_runs_a_detector_named_by_name(assets, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTRACK_MODEL_DIR", str(assets / "models"))  # where "yolox" finds yolox_nano.onnx
    monkeypatch.setattr(loop_module, "build_sam2_tracker", lambda config, device: BoxMaskTracker())
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:05d}.png"), np.full((48, 64, 3), 60, np.uint8))
    result = track_video(frames, "car", tmp_path / "out", detector="yolox", progress=False, device="cpu",
                         output__video=False)
    assert len(result.frames) == 2
    assert json.loads(result.outputs["json"].read_text())["models"]["detector"] == "yolox_nano"
