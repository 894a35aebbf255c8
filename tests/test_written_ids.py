"""Written ids are 1..N in order of first appearance, the same in the JSON, the MOT text and the
result, however many tentative tracks the associator numbered and dropped (pipeline/numbering.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import supervision as sv

from promptrack.pipeline import loop as loop_module
from promptrack.pipeline import track_video
from promptrack.pipeline.cli import tracks_line
from promptrack.pipeline.numbering import WrittenIds
from promptrack.pipeline.outputs import open_sinks
from promptrack.pipeline.config import load_config
from promptrack.pipeline.live.outputs import LiveLayout
from promptrack.pipeline.sources import SourceInfo
from test_detectors_plugins import BoxMaskTracker

BOATS = [[2, 2, 14, 14], [70, 2, 90, 14]]  # false positives, seen on frame 0 only
CAR = [20, 20, 50, 40]  # seen on every keyframe
BUS = [60, 30, 90, 46]  # appears on frame 6


def scripted_detector(frame: np.ndarray, phrases):
    """Reads the frame's index off its pixels: boats (higher scores, so numbered first) on frame 0 only."""
    index = int(frame[0, 0, 0]) - 10
    boxes, labels = [*BOATS, CAR] if index == 0 else [CAR], ["boat", "boat", "car"] if index == 0 else ["car"]
    if index >= 6:
        boxes, labels = [*boxes, BUS], [*labels, "bus"]
    scores = [0.95 if label == "boat" else 0.9 for label in labels]
    return sv.Detections(xyxy=np.array(boxes, np.float32), confidence=np.array(scores, np.float32),
                         class_id=np.array([phrases.index(label) for label in labels]),
                         data={"class_name": np.array(labels, dtype=object)})


def test_a_run_that_dropped_tentative_tracks_writes_ids_1_to_n_everywhere(tmp_path, monkeypatch):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(14):
        cv2.imwrite(str(frames / f"{i:05d}.png"), np.full((48, 96, 3), 10 + i, np.uint8))
    monkeypatch.setattr(loop_module, "build_sam2_tracker", lambda config, device: BoxMaskTracker())
    result = track_video(frames, "car . boat . bus", tmp_path / "out", detector=scripted_detector, progress=False,
                         device="cpu", detect_every=2, output__video=True, output__mot=True,
                         association__confirm_hits=2, tracker__lookback=4)
    # The associator numbered the two boats 1 and 2 and dropped them unconfirmed; the car was 3.
    assert [(t["id"], t["label"], t["first_frame"]) for t in result.tracks] == [(1, "car", 0), (2, "bus", 6)]
    data = json.loads(result.outputs["json"].read_text())
    assert [(t["id"], t["label"]) for t in data["tracks"]] == [(1, "car"), (2, "bus")]
    json_ids = [(f["frame"], o["id"], o["label"]) for f in data["frames"] for o in f["objects"]]
    assert {(i, label) for _, i, label in json_ids} == {(1, "car"), (2, "bus")}
    mot = [line.split(",") for line in result.outputs["mot"].read_text().splitlines()]
    assert sorted((int(r[0]) - 1, int(r[1])) for r in mot) == sorted((f, i) for f, i, _ in json_ids)
    frames_ids = [(index, int(i)) for index, d in zip(result.frame_indices, result.frames) for i in d.tracker_id]
    assert sorted(frames_ids) == sorted((f, i) for f, i, _ in json_ids)
    assert tracks_line(result.tracks) == "2 tracks: #1 car, #2 bus"


def test_numbering_follows_first_appearance_and_is_one_map_for_the_run():
    ids = WrittenIds()
    seen = []
    for frame_ids in ([], [9, 4], [4, 17], [23, 9]):
        d = sv.Detections(xyxy=np.zeros((len(frame_ids), 4)), tracker_id=np.array(frame_ids, dtype=int))
        ids.write(0, None, d)
        seen.append(d.tracker_id.tolist())
    assert seen == [[], [2, 1], [1, 3], [4, 2]]


def test_file_runs_renumber_and_live_runs_keep_their_ids(tmp_path):
    info = SourceInfo("clip.mp4", 10.0, 64, 48, 3)
    config = load_config("default", ["output.video=false"])
    files = open_sinks(config, tmp_path, info, ["car"], models={})
    live = open_sinks(config, None, info, ["car"], models={}, layout=LiveLayout(stamps=lambda i: None,
                                                                                clock=lambda i: 0.0))
    assert isinstance(files.sinks[0], WrittenIds)
    assert not any(isinstance(s, WrittenIds) for s in live.sinks)
    files.discard()


def test_the_summary_line_has_no_dangling_colon():
    assert tracks_line([]) == "0 tracks"
    assert tracks_line([{"id": 1, "label": "car"}]) == "1 track: #1 car"
    many = [{"id": i, "label": "car"} for i in range(1, 23)]
    assert tracks_line(many, shown=2) == "22 tracks: #1 car, #2 car, ..."
