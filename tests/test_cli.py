"""track-video end to end, as a user runs it: real loading code on the fake hub, real videos."""

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import av
import pytest

from conftest import run_cli
from promptrack.pipeline.rle import decode_mask

SMALL = ["--set", "tracker.image_size=256", "--quiet"]


def check_tracks_json(path, frames, width, height):
    data = json.loads(path.read_text())
    assert data["schema"] == "promptrack.tracks/1"
    assert data["source"]["frames"] == frames and len(data["frames"]) == frames
    assert (data["source"]["width"], data["source"]["height"]) == (width, height)
    assert set(data["models"]) == {"detector", "tracker"} and data["config"]["tracker"]["image_size"] == 256
    table = {t["id"]: t for t in data["tracks"]}
    seen = {}
    for record in data["frames"]:
        assert set(record) == {"frame", "time", "keyframe", "objects"}
        ids = [o["id"] for o in record["objects"]]
        assert len(ids) == len(set(ids))
        for obj in record["objects"]:
            assert obj["id"] in table and obj["label"] == table[obj["id"]]["label"]
            x1, y1, x2, y2 = obj["box"]
            assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
            assert decode_mask(obj["mask"]).shape == (height, width)
            seen.setdefault(obj["id"], []).append(record["frame"])
    assert set(seen) == set(table)
    for track_id, frames_seen in seen.items():
        assert (table[track_id]["first_frame"], table[track_id]["last_frame"]) == (min(frames_seen), max(frames_seen))
    assert all(i >= 1 for i in table)
    return data


def check_video(path, frames, fps, width, height):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == Fraction(fps).limit_denominator(1001)
        decoded = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
    assert decoded == frames


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "promptrack.pipeline.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--prompt", "--config", "--set", "--detector", "--sam2", "--device", "--detect-every",
                   "--box-threshold", "--text-threshold", "--start", "--end", "--max-frames", "--mot",
                   "--no-video", "--quiet"):
        assert option in out.stdout


def test_grounding_dino_default_on_synthetic_video(synthetic_video, hub_env, tmp_path):
    result = run_cli([str(synthetic_video), "--prompt", "red car . dog", "-o", str(tmp_path), "--mot",
                      "--detect-every", "5", *SMALL], hub_env)
    assert result.returncode == 0, result.stderr
    data = check_tracks_json(tmp_path / "boxes.tracks.json", 24, 160, 120)
    assert data["prompt"] == ["red car", "dog"]
    assert data["models"] == {"detector": "grounding-dino-tiny", "tracker": "sam2.1-hiera-tiny"}
    assert [f["keyframe"] for f in data["frames"]][:6] == [True, False, False, False, False, True]
    check_video(tmp_path / "boxes.annotated.mp4", 24, 10.0, 160, 120)
    mot = (tmp_path / "boxes.mot.txt").read_text().splitlines()
    assert len(mot) == sum(len(f["objects"]) for f in data["frames"])
    if mot:
        assert len(mot[0].split(",")) == 10 and int(mot[0].split(",")[0]) >= 1


def test_yolox_tracks_people_in_real_video(assets, hub_env, tmp_path):
    video = assets / "videos" / "bedroom.mp4"
    model = assets / "models" / "yolox_nano.onnx"
    result = run_cli([str(video), "--prompt", "person", "--detector", str(model), "-o", str(tmp_path),
                      "--max-frames", "12", "--detect-every", "6", *SMALL,
                      # born confirmed: the fake SAM 2's random-weight masks match no later box, so a
                      # second detection could not confirm a track (offline, tentative tracks are not written)
                      "--set", "association.confirm_hits=1"], hub_env)
    assert result.returncode == 0, result.stderr
    data = check_tracks_json(tmp_path / "bedroom.tracks.json", 12, 960, 540)
    people = [t for t in data["tracks"] if t["label"] == "person"]
    assert people and all(t["score"] > 0.35 for t in people)
    assert data["frames"][0]["objects"], "people found on the first keyframe start tracks"
    with av.open(str(video)) as source:  # 24 fps in ../shared/assets, 30 in SAM 2's own file (make assets)
        fps = source.streams.video[0].average_rate
    check_video(tmp_path / "bedroom.annotated.mp4", 12, fps, 960, 540)


def test_no_video_and_start_end(synthetic_video, hub_env, tmp_path):
    result = run_cli([str(synthetic_video), "-p", "dog", "-o", str(tmp_path), "--no-video", "--start", "4",
                      "--end", "10", *SMALL], hub_env)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "boxes.tracks.json").read_text())
    assert [f["frame"] for f in data["frames"]] == list(range(4, 10))
    assert data["frames"][0]["time"] == 0.4
    assert not (tmp_path / "boxes.annotated.mp4").exists()


def _zero_frame_video(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


@pytest.mark.parametrize("case", ["missing", "text_mp4", "zero_frames", "empty_prompt", "unwritable", "start_past_end",
                                  "bad_override", "not_coco_for_yolox"])
def test_bad_input_is_one_line_exit_2(case, synthetic_video, hub_env, tmp_path):
    args = [str(synthetic_video), "-p", "car", "-o", str(tmp_path / "out"), *SMALL]
    if case == "missing":
        args[0] = str(tmp_path / "nope.mp4")
    elif case == "text_mp4":
        (tmp_path / "notes.mp4").write_text("not a video")
        args[0] = str(tmp_path / "notes.mp4")
    elif case == "zero_frames":
        args[0] = str(_zero_frame_video(tmp_path / "zero.mp4"))
    elif case == "empty_prompt":
        args[2] = " . "
    elif case == "unwritable":
        (tmp_path / "file").write_text("a file, not a folder")
        args[4] = str(tmp_path / "file" / "out")
    elif case == "start_past_end":
        args += ["--start", "500"]
    elif case == "bad_override":
        args += ["--set", "tracker.size=3"]
    elif case == "not_coco_for_yolox":
        args[2] = "unicorn"
        args += ["--detector", "yolox", "--set", "detector.model=" + str(tmp_path / "y.onnx")]
    result = run_cli(args, hub_env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("track-video: error:"), result.stderr
    assert "Traceback" not in result.stderr


def test_not_coco_phrase_for_yolox_names_the_phrase(assets, synthetic_video, hub_env, tmp_path):
    result = run_cli([str(synthetic_video), "-p", "person . unicorn", "-o", str(tmp_path), "--detector",
                      str(assets / "models" / "yolox_nano.onnx"), *SMALL], hub_env)
    assert result.returncode == 2
    assert "'unicorn'" in result.stderr and "grounding-dino" in result.stderr


def test_offline_without_models_names_file_repo_and_env(synthetic_video, tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("PROMPTRACK_MODEL_DIR", None)
    result = run_cli([str(synthetic_video), "-p", "car", "-o", str(tmp_path / "o"), "--quiet"], env)
    assert result.returncode == 2
    message = result.stderr.strip()  # both missing files in one message, with the layout (test_model_files.py)
    assert message.count("track-video: error:") == 1 and "Traceback" not in message
    first = message.splitlines()[0]
    assert "IDEA-Research/grounding-dino-tiny" in first and "sam2.1_hiera_tiny.pt" in first
    assert "PROMPTRACK_MODEL_DIR" in first


@pytest.mark.usefixtures("stop_signals_handled")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_leaves_playable_video_and_parsable_json(sig, assets, hub_env, tmp_path):
    video = assets / "videos" / "bedroom.mp4"
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "promptrack.pipeline.cli", str(video), "-p", "person",
                             "--detector", str(assets / "models" / "yolox_nano.onnx"), "-o", str(out),
                             "--set", "tracker.image_size=256"], env=hub_env, stderr=subprocess.PIPE, text=True)
    def frames_streamed() -> int:  # the JSON's frames stream to a side file unique to the run
        parts = list(out.glob(".bedroom.tracks.json.*.part")) if out.is_dir() else []
        counts = []
        for part in parts:
            try:
                counts.append(part.read_text().count("\n"))
            except FileNotFoundError:  # finished and renamed meanwhile
                pass
        return max(counts, default=0)

    deadline = time.time() + 300
    while time.time() < deadline and frames_streamed() < 3:
        time.sleep(0.2)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    data = json.loads((out / "bedroom.tracks.json").read_text())
    frames = data["source"]["frames"]
    assert 3 <= frames < 200 and len(data["frames"]) == frames
    with av.open(str(out / "bedroom.annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no side file left


def test_out_of_gpu_memory_is_one_line_with_the_fix(synthetic_video, monkeypatch, capsys, tmp_path):
    import torch

    from promptrack.pipeline import api, cli

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(api, "track_video", exhausted)
    code = cli.run([str(synthetic_video), "--prompt", "car", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("track-video: error: out of GPU memory") and "--sam2 tiny" in err[0]
