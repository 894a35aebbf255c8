"""Detector plugins: an entry point in the group ``promptrack.detectors``, a plain callable passed
to track_video, and ``track-video --list-detectors``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import supervision as sv

from promptrack.pipeline import loop as loop_module
from promptrack.pipeline import track_video
from promptrack.pipeline.cli import run
from promptrack.pipeline.config import DetectorConfig
from promptrack.pipeline.detectors import as_detector, build_detector, list_detectors
from promptrack.pipeline.errors import ConfigError, PromptrackError
from promptrack.trackers.base import detections_from_masks

PLUGIN = '''
import numpy as np
import supervision as sv


def build(config, device):
    """Factory named by the entry point: returns a plain callable."""
    threshold = config.box_threshold

    def detect(frame, phrases):
        h, w = frame.shape[:2]
        return sv.Detections(xyxy=np.array([[0, 0, w / 2, h / 2]], np.float32),
                             confidence=np.array([max(threshold, 0.9)], np.float32),
                             data={"class_name": np.array([phrases[-1]], dtype=object)})
    return detect


def broken(config, device):
    raise RuntimeError("no GPU for me")
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A fake installed distribution on sys.path: module + dist-info with entry_points.txt."""
    (tmp_path / "promptrack_fake_plugin.py").write_text(PLUGIN)
    info = tmp_path / "promptrack_fake_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: promptrack-fake-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[promptrack.detectors]\nhalf-frame = promptrack_fake_plugin:build\n"
        "broken = promptrack_fake_plugin:broken\nmissing = promptrack_no_such_module:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_point_plugin_is_listed_and_built(plugin_path):
    listed = {d.name: d for d in list_detectors()}
    assert "half-frame" in listed and "promptrack-fake-plugin" in listed["half-frame"].needs
    det = build_detector(DetectorConfig(name="Half-Frame", box_threshold=0.2))
    assert det.name == "half-frame"
    found = det.detect(np.zeros((40, 60, 3), np.uint8), ["dog", "cat"])
    assert found.data["class_name"].tolist() == ["cat"] and found.class_id.tolist() == [1]
    np.testing.assert_allclose(found.xyxy, [[0, 0, 30, 20]])


def test_broken_plugins_are_one_line_errors(plugin_path):
    with pytest.raises(ConfigError, match="failed to start: RuntimeError: no GPU for me"):
        build_detector(DetectorConfig(name="broken"))
    with pytest.raises(ConfigError, match="failed to import"):
        build_detector(DetectorConfig(name="missing"))
    with pytest.raises(ConfigError, match="unknown detector 'nope'.*half-frame"):
        build_detector(DetectorConfig(name="nope"))


def test_callable_gets_class_names_filled_in():
    det = as_detector(lambda frame, phrases: sv.Detections(xyxy=np.zeros((2, 4)), class_id=np.array([1, 0])))
    found = det.detect(np.zeros((4, 4, 3), np.uint8), ["a", "b"])
    assert found.data["class_name"].tolist() == ["b", "a"] and found.confidence.tolist() == [1.0, 1.0]


def test_callable_results_are_checked():
    det = as_detector(lambda frame, phrases: [[0, 0, 1, 1]], name="bad")
    with pytest.raises(PromptrackError, match="bad returned list, not supervision.Detections"):
        det.detect(np.zeros((4, 4, 3), np.uint8), ["a"])
    det = as_detector(lambda frame, phrases: sv.Detections(xyxy=np.zeros((1, 4)), class_id=np.array([5])))
    with pytest.raises(PromptrackError, match="class_id outside"):
        det.detect(np.zeros((4, 4, 3), np.uint8), ["a", "b"])


class BoxMaskTracker:
    """A stand-in MaskTracker: each object's mask is its last box, unchanged from frame to frame."""

    def __init__(self) -> None:
        self.boxes: dict[int, np.ndarray] = {}
        self.shape = (0, 0)

    def step(self, index, frame):
        self.shape = frame.shape[:2]
        return self.current()

    def add(self, ids, boxes, *args, **kwargs):
        self.boxes.update({int(i): np.asarray(b, float) for i, b in zip(ids, boxes)})

    def reprompt(self, ids, boxes, *args, **kwargs):
        self.add(ids, boxes)

    def remove(self, ids):
        for i in ids:
            self.boxes.pop(int(i), None)

    def current(self):
        masks = np.zeros((len(self.boxes), *self.shape), bool)
        for k, (x1, y1, x2, y2) in enumerate(self.boxes.values()):
            masks[k, int(y1):int(y2), int(x1):int(x2)] = True
        return detections_from_masks(list(self.boxes), masks)

    @property
    def ids(self):
        return list(self.boxes)


def test_callable_detector_through_track_video(tmp_path, monkeypatch):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i in range(4):
        cv2.imwrite(str(frames_dir / f"{i:05d}.png"), np.full((48, 64, 3), 60 + i, np.uint8))
    calls = []

    def find_boat(frame, phrases):  # any callable frame, phrases -> supervision.Detections
        calls.append(frame.shape)
        return sv.Detections(xyxy=np.array([[8, 8, 40, 30]], np.float32), confidence=np.array([0.9], np.float32),
                             class_id=np.array([phrases.index("boat")]),
                             data={"class_name": np.array(["boat"], dtype=object)})

    monkeypatch.setattr(loop_module, "build_sam2_tracker", lambda config, device: BoxMaskTracker())
    result = track_video(frames_dir, "boat", tmp_path / "out", detector=find_boat, progress=False,
                         detect_every=2, output__video=False, device="cpu")
    assert calls == [(48, 64, 3)] * 2  # keyframes 0 and 2
    assert [(t["id"], t["label"]) for t in result.tracks] == [(1, "boat")]
    data = json.loads(result.outputs["json"].read_text())
    assert [o["label"] for f in data["frames"] for o in f["objects"]] == ["boat"] * 4
    assert data["models"]["detector"] == "find_boat"  # the callable, not the config's default


def test_list_detectors_cli(capsys):
    assert run(["--list-detectors"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names[:3] == ["grounding-dino", "mm-grounding-dino", "llmdet"]
    assert {"owlv2", "yolox", "dino-x", "grounding-dino-1.5-pro", "grounding-dino-1.6-pro"} <= set(names)
    dino_x = lines[names.index("dino-x")]
    assert "DDS_API_TOKEN" in dino_x
    assert "google/owlv2-base-patch16-ensemble" in lines[names.index("owlv2")]


def test_list_detectors_cli_shows_installed_plugins(plugin_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "promptrack.pipeline.cli", "--list-detectors"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("half-frame") and "promptrack-fake-plugin" in line for line in done.stdout.splitlines())


def test_input_and_prompt_are_still_required_without_list_detectors(capsys):
    with pytest.raises(SystemExit) as info:
        run([])
    assert info.value.code == 2
    assert "required: input, --prompt" in capsys.readouterr().err
