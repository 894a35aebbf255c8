"""open_sinks / Outputs: the JSON closes last and only after the video finished, so a
``<stem>.tracks.json`` in place always means its video is complete; a run that cannot start or
finish leaves an earlier JSON of the same name whole."""

import json

import numpy as np
import pytest
import supervision as sv

from promptrack.pipeline import codecs
from promptrack.pipeline.config import load_config
from promptrack.pipeline.errors import CodecError, OutputError
from promptrack.pipeline.outputs import open_sinks
from promptrack.pipeline.sources import SourceInfo

INFO = SourceInfo("clip.mp4", 10.0, 64, 48, 3)


def frame_detections():
    mask = np.zeros((1, 48, 64), bool)
    mask[0, 10:20, 10:30] = True
    return sv.Detections(xyxy=np.array([[10.0, 10.0, 30.0, 20.0]]), mask=mask, confidence=np.array([0.9]),
                         tracker_id=np.array([1]), data={"class_name": np.array(["car"])})


def write_frames(outputs, count=3):
    frame = np.zeros((48, 64, 3), np.uint8)
    for index in range(count):
        for sink in outputs.sinks:
            sink.write(index, frame, frame_detections())


def side_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_close_order_is_video_then_mot_then_json(tmp_path):
    outputs = open_sinks(load_config("default", ["output.mot=true"]), tmp_path, INFO, ["car"], models={})
    assert set(outputs.files) == {"json", "video", "mot"} == set(outputs.paths)
    closed = []
    for kind, sink in outputs.files.items():
        def close(original=sink.close, kind=kind):
            closed.append((kind, sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))))
            original()
        sink.close = close
    write_frames(outputs)
    outputs.close()
    assert [kind for kind, _ in closed] == ["video", "mot", "json"]
    # When the JSON closes, the video and MOT text already have their final names.
    assert closed[-1][1] == ["clip.annotated.mp4", "clip.mot.txt"]
    assert json.loads((tmp_path / "clip.tracks.json").read_text())["source"]["frames"] == 3
    assert side_files(tmp_path) == []


def test_a_video_that_cannot_finish_leaves_the_earlier_json_whole(tmp_path):
    earlier = '{"earlier": "complete run"}'
    (tmp_path / "clip.tracks.json").write_text(earlier)
    outputs = open_sinks(load_config("default"), tmp_path, INFO, ["car"], models={})
    write_frames(outputs)
    video = outputs.files["video"]

    def broken_close():  # what a full disk at the muxer's trailer does: side file gone, one-line error
        video.discard()
        raise OutputError("disk full while writing clip.annotated.mp4")
    video.close = broken_close
    with pytest.raises(OutputError, match="disk full"):
        outputs.close()
    assert (tmp_path / "clip.tracks.json").read_text() == earlier  # no JSON for a video that is not there
    assert not (tmp_path / "clip.annotated.mp4").exists() and side_files(tmp_path) == []


def test_sinks_that_cannot_all_open_leave_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(codecs, "codec_exists", lambda name, mode="w": True)
    monkeypatch.setattr(codecs, "encoder_open_error", lambda name, width=0, height=0: "no CUDA-capable device")
    earlier = '{"earlier": "complete run"}'
    (tmp_path / "clip.tracks.json").write_text(earlier)
    config = load_config("default", ["output.video_encoder=h264_nvenc", "output.mot=true"])
    with pytest.raises(CodecError, match="output.video_encoder=auto"):
        open_sinks(config, tmp_path, INFO, ["car"], models={})  # the JSON sink opened before the video failed
    assert (tmp_path / "clip.tracks.json").read_text() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.tracks.json"]
