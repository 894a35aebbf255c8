"""track-video batch: job planning, resumability, and real runs on a local Ray cluster (CPU, fake hub)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from conftest import moving_boxes_frames, require_module, write_video
from promptrack.pipeline.batch.jobs import VideoJob, completed_run, plan_jobs
from promptrack.pipeline.config import load_config
from promptrack.pipeline.errors import InputError, PromptError

# Tiny settings: 64 px SAM 2, only the random detector's surest boxes, one keyframe; tracks born
# confirmed (with one keyframe no second detection could confirm them, and offline a tentative
# track is not written).
TINY = ["tracker.image_size=64", "detector.box_threshold=0.9999", "association.detect_on_lost=false",
        "detect_every=100", "association.confirm_hits=1"]
PROMPT = "red car . dog"


def tiny_config():
    return load_config("default", TINY)


# ---------------------------------------------------------------- planning (no models, no Ray)

def test_inputs_globs_folders_and_manifests_become_jobs_with_unique_stems(tmp_path):
    for name in ("a/clip.mp4", "b/clip.mp4", "b/other.mov", "b/notes.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "list.txt").write_text("# my videos\nb/other.mov\n\n" + str(tmp_path / "a/clip.mp4") + "\n")
    (tmp_path / "list.csv").write_text("path,prompt\nb/other.mov,Dog . cat\na/clip.mp4,\n")

    jobs = plan_jobs([str(tmp_path / "*/clip.mp4"), str(tmp_path / "b")], "person", tmp_path / "out")
    assert [(Path(j.source).relative_to(tmp_path).as_posix(), j.stem) for j in jobs] == [
        ("a/clip.mp4", "clip"), ("b/clip.mp4", "clip-2"), ("b/other.mov", "other")]  # b/clip.mp4 once
    assert all(Path(j.source).is_absolute() and j.phrases == ("person",) for j in jobs)

    (tmp_path / "b/link.mp4").symlink_to(tmp_path / "a/clip.mp4")  # a link is a video with its own name
    assert [j.stem for j in plan_jobs([tmp_path / "a/clip.mp4", tmp_path / "b/link.mp4"], "car", "out")] == [
        "clip", "link"]

    jobs = plan_jobs(tmp_path / "list.txt", "person", "out")  # relative lines: from the manifest's folder
    assert [j.source for j in jobs] == [str(tmp_path / "b/other.mov"), str(tmp_path / "a/clip.mp4")]

    jobs = plan_jobs(str(tmp_path / "list.csv"), "person", "out")  # an empty prompt cell takes --prompt
    assert [j.phrases for j in jobs] == [("dog", "cat"), ("person",)]
    with pytest.raises(InputError, match="no prompt for .*clip.mp4"):
        plan_jobs(str(tmp_path / "list.csv"), None, "out")


@pytest.mark.parametrize("inputs, error, match", [
    (["nothing/*.mp4"], InputError, "no video files or frame folders match"),
    (["missing.mp4"], InputError, "input not found: missing.mp4"),
    (["rtsp://cam:8554/x"], InputError, "is a stream"),
    ([], InputError, "no videos to track"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, inputs, error, match, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match):
        plan_jobs(inputs, "person", "out")


def test_empty_prompt_is_refused(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(PromptError):
        plan_jobs(str(tmp_path / "a.mp4"), " . ", "out")


def test_complete_means_json_of_this_source_and_prompt_with_every_frame_and_the_video(tmp_path):
    video = write_video(tmp_path / "clip.mp4", moving_boxes_frames(5))
    job = VideoJob(str(video), ("car",), "clip")
    config, out = tiny_config(), tmp_path / "out"
    out.mkdir()
    paths = job.outputs(out, config)
    record = {"frame": 0, "time": 0.0, "keyframe": True, "objects": []}

    def write_json(frames=5, uri=str(video), prompt=("car",)):
        paths["json"].write_text(json.dumps({"schema": "promptrack.tracks/1", "prompt": list(prompt),
                                             "source": {"uri": uri, "frames": frames}, "tracks": [{"id": 1}],
                                             "frames": [record] * frames}))

    assert completed_run(job, out, config) is None  # nothing yet
    write_json()
    assert completed_run(job, out, config) is None  # the annotated video is missing
    paths["video"].write_bytes(b"x")
    assert completed_run(job, out, config) == {"frames": 5, "tracks": 1}
    assert completed_run(job, out, load_config("default", TINY + ["max_frames=3"])) is None  # 3 asked, 5 done
    assert completed_run(job, out, load_config("default", TINY + ["output.mot=true"])) is None  # no MOT file
    write_json(frames=4)
    assert completed_run(job, out, config) is None  # a frame short
    write_json(prompt=("dog",))
    assert completed_run(job, out, config) is None  # another prompt
    write_json(uri="/elsewhere/clip.mp4")
    assert completed_run(job, out, config) is None  # another video with the same stem
    paths["json"].write_text('{"schema": "promptrack.tracks/1", "frames": [')
    assert completed_run(job, out, config) is None  # cut short


def test_worker_plan_fills_the_cluster():
    from promptrack.pipeline.batch import BatchError, WorkerPlan

    config = tiny_config()
    assert WorkerPlan.for_cluster({"CPU": 16.0, "GPU": 2.0}, config, 100, gpus_per_worker=0.5) == WorkerPlan(4, 4.0, 0.5)
    assert WorkerPlan.for_cluster({"CPU": 16.0, "GPU": 2.0}, config, 100) == WorkerPlan(2, 4.0, 1.0)
    assert WorkerPlan.for_cluster({"CPU": 16.0}, config, 100) == WorkerPlan(4, 4.0, 0.0)
    assert WorkerPlan.for_cluster({"CPU": 2.0}, config, 100, workers=4) == WorkerPlan(4, 0.5, 0.0)
    assert WorkerPlan.for_cluster({"CPU": 8.0}, config, 1, workers=4).workers == 1  # never more than videos
    with pytest.raises(BatchError, match="no GPU"):
        WorkerPlan.for_cluster({"CPU": 8.0}, config, 4, gpus_per_worker=0.5)


def test_batch_parser_maps_every_track_video_option():
    """A new track-video option must reach batch too: it is a config value or one batch reads itself."""
    from promptrack.pipeline.batch.cli import RUN_OPTIONS, build_batch_parser, config_values
    from promptrack.pipeline.cli import build_parser

    single = vars(build_parser().parse_args([]))
    batch = build_batch_parser().parse_args(["--detect-every", "3", "--mot", "--no-video", "--workers", "2"])
    assert set(single) <= set(vars(batch))
    values = config_values(batch)
    assert values["detect_every"] == 3 and values["output__mot"] is True and values["output__video"] is False
    mapped = {"device", "detect_every", "start", "end", "max_frames", "sam2", "box_threshold", "text_threshold",
              "mot", "no_video", "detector", "export"}
    assert set(single) == RUN_OPTIONS | mapped, "map the new option in batch/cli.config_values"


def test_batch_help_offers_no_live_stream_which_batch_refuses():
    from promptrack.pipeline.batch.cli import build_batch_parser
    from promptrack.pipeline.cli import build_parser

    batch, single = (" ".join(p.format_help().split()) for p in (build_batch_parser(), build_parser()))
    assert "rtsp://" in single and "camera:0" in single and "live for streams" in single
    assert "rtsp://" not in batch and "camera:0" not in batch and "live for streams" not in batch
    assert "not a live stream" in batch
    with pytest.raises(InputError, match="is a stream"):  # as the help says
        plan_jobs(["rtsp://cam:8554/x"], "person", "out")


def test_cli_bad_arguments_exit_2_with_one_line(tmp_path):
    cli = [sys.executable, "-m", "promptrack.pipeline.cli", "batch"]
    out = subprocess.run([*cli, str(tmp_path / "*.mp4"), "--prompt", "car", "-o", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no video files" in out.stderr
    out = subprocess.run([*cli, "--prompt", "car"], capture_output=True, text=True)
    assert out.returncode == 2 and "give the videos" in out.stderr


# ---------------------------------------------------------------- one worker, in process

def test_a_worker_reuses_its_models_and_starts_each_video_afresh(fake_hub, tmp_path):
    from promptrack.pipeline.batch.worker import VideoWorker

    video = write_video(tmp_path / "clip.mp4", moving_boxes_frames(5))
    worker = VideoWorker(tiny_config(), tmp_path)
    assert worker.ready()["error"] is None
    runs = []
    for stem in ("first", "second"):
        result = worker.track(VideoJob(str(video), ("red car", "dog"), stem))
        assert result["status"] == "done" and result["frames"] == 5, result
        runs.append(json.loads((tmp_path / f"{stem}.tracks.json").read_text()))
    # Same video, same worker: the second run starts from a clean tracker and associator (ids from 1).
    assert runs[0]["tracks"] and runs[0]["tracks"] == runs[1]["tracks"] and runs[0]["frames"] == runs[1]["frames"]
    assert not list(tmp_path.glob(".*.part"))  # side files took their final names


def test_a_video_that_fails_midway_leaves_its_earlier_outputs_and_no_side_files(fake_hub, tmp_path, monkeypatch):
    from promptrack.pipeline.batch.worker import TrackingPipeline, VideoWorker

    video = write_video(tmp_path / "clip.mp4", moving_boxes_frames(5))
    (tmp_path / "clip.tracks.json").write_text('{"earlier": "complete"}')
    (tmp_path / "clip.annotated.mp4").write_bytes(b"earlier video")
    worker = VideoWorker(tiny_config(), tmp_path)
    real_run = TrackingPipeline.run

    def run_then_fail(self, stream, phrases, sinks, **kwargs):  # frames reach every sink, then the model fails
        real_run(self, stream, phrases, sinks, **kwargs)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    monkeypatch.setattr(TrackingPipeline, "run", run_then_fail)
    result = worker.track(VideoJob(str(video), ("red car",), "clip"))
    assert result["status"] == "failed" and "illegal memory access" in result["error"]
    assert (tmp_path / "clip.tracks.json").read_text() == '{"earlier": "complete"}'
    assert (tmp_path / "clip.annotated.mp4").read_bytes() == b"earlier video"
    assert not list(tmp_path.glob(".*.part"))  # each sink discarded its own side file


# ---------------------------------------------------------------- a real local Ray cluster

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """$PROMPTRACK_MODEL_DIR of the Ray workers: empty (models come from the fake hub) until a test puts a file in."""
    return tmp_path_factory.mktemp("model-dir")


@pytest.fixture(scope="module")
def ray_cluster(fake_hub, model_dir):
    """One small local Ray cluster (2 CPUs) for every Ray test here; workers inherit HF_HOME (fake hub)
    and $PROMPTRACK_MODEL_DIR (`model_dir`)."""
    ray = require_module("ray")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # the shared 2 cores may be busy
    os.environ["PROMPTRACK_MODEL_DIR"] = str(model_dir)
    try:
        ray.init(num_cpus=2, object_store_memory=80 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    finally:
        del os.environ["PROMPTRACK_MODEL_DIR"]  # only the workers see it
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for i in range(4):
        write_video(folder / f"clip{i}.mp4", moving_boxes_frames(4 + i))
    (folder / "broken.mp4").write_bytes(os.urandom(4096))  # corrupt: not a video at all
    return folder


def check_outputs(out: Path, stem: str, frames: int) -> dict:
    data = json.loads((out / f"{stem}.tracks.json").read_text())
    assert data["source"]["frames"] == frames and len(data["frames"]) == frames
    assert [f["frame"] for f in data["frames"]] == list(range(frames))
    with av.open(str(out / f"{stem}.annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames
    return data


def test_four_clips_and_a_corrupt_file_on_two_workers_then_a_rerun_skips_them(ray_cluster, clips, tmp_path):
    from promptrack.pipeline.batch import track_videos

    out = tmp_path / "out"
    summary = track_videos(str(clips / "*.mp4"), PROMPT, output_dir=out, workers=2, overrides=TINY, progress=False)
    by_stem = {v.stem: v for v in summary.videos}
    assert summary.workers == 2 and not summary.ok
    assert [v.stem for v in summary.failed] == ["broken"]
    assert "broken.mp4" in by_stem["broken"].error and "\n" not in by_stem["broken"].error
    for i in range(4):
        video = by_stem[f"clip{i}"]
        assert video.status == "done" and video.frames == 4 + i and video.attempts == 1
        data = check_outputs(out, f"clip{i}", 4 + i)
        assert len(data["tracks"]) == video.tracks and data["prompt"] == ["red car", "dog"]
    assert len({by_stem[f"clip{i}"].worker for i in range(4)}) == 2  # both workers took videos
    assert not list(out.glob(".*.part")) and not (out / "broken.tracks.json").exists()
    written = json.loads((out / "batch_summary.json").read_text())
    assert written["counts"] == {"done": 4, "skipped": 0, "failed": 1, "not run": 0}
    assert {v["stem"]: v["status"] for v in written["videos"]}["broken"] == "failed"

    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("clip*")}
    again = track_videos([str(clips / f"clip{i}.mp4") for i in range(4)], PROMPT, output_dir=out, workers=2,
                         overrides=TINY, progress=False)
    assert again.ok and again.counts()["skipped"] == 4
    assert again.workers == 0  # nothing left to do: no worker was started, no model loaded
    assert [v.frames for v in again.videos] == [4, 5, 6, 7]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("clip*")} == mtimes  # untouched

    # The same from the command line: skipped clips, the corrupt file fails again, exit code 1.
    cli = subprocess.run([sys.executable, "-m", "promptrack.pipeline.cli", "batch", str(clips / "*.mp4"),
                          "--prompt", PROMPT, "-o", str(out), "--workers", "1", "--quiet", "--export", "mot",
                          *[a for s in TINY for a in ("--set", s)]],
                         capture_output=True, text=True, timeout=600)
    assert cli.returncode == 1, cli.stderr
    assert f"track-video batch: failed: {clips / 'broken.mp4'}: {by_stem['broken'].error}" in cli.stderr
    # --export makes ONE dataset of every finished video, skipped ones included; the failed one is not in it.
    for i in range(4):
        lines = (out / "dataset.mot" / f"clip{i}.txt").read_text().splitlines()
        assert {int(line.split(",")[0]) for line in lines} <= set(range(1, 5 + i))
    assert not (out / "dataset.mot" / "broken.txt").exists() and not (out / "broken.mot").exists()


def test_track_videos_takes_a_detector_name_as_track_video_does(ray_cluster, model_dir, assets, tmp_path):
    from promptrack.pipeline.batch import track_videos

    shutil.copy(assets / "models" / "yolox_nano.onnx", model_dir / "yolox_nano.onnx")  # where "yolox" looks
    clip = write_video(tmp_path / "clip.mp4", moving_boxes_frames(4))
    summary = track_videos(clip, "car", output_dir=tmp_path / "out", workers=1, overrides=TINY, detector="yolox",
                           progress=False)
    assert summary.ok, [(v.stem, v.error) for v in summary.videos]
    assert check_outputs(tmp_path / "out", "clip", 4)["models"]["detector"] == "yolox_nano"


def test_rays_messages_about_workers_go_to_stderr_not_into_the_results(ray_cluster, capsys):
    from promptrack.pipeline.batch.run import ray_cluster as connected

    message = {"lines": ["A worker died or was killed while executing a task by an unexpected system error."],
               "pid": "raylet", "is_err": False}  # as Ray's driver gets it from the cluster, for stdout
    with connected() as ray:
        ray._private.worker.print_to_stdstream(message, ignore_prefix=False)
    captured = capsys.readouterr()
    assert "A worker died" in captured.err and "A worker died" not in captured.out


def _pid_writing(path_part: str, out: Path) -> int | None:
    """The process that holds a file of `out` whose name contains `path_part` open."""
    import psutil

    for proc in psutil.process_iter(["pid"]):
        try:
            if any(path_part in f.path and f.path.startswith(str(out)) for f in proc.open_files()):
                return proc.pid
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def test_a_worker_killed_mid_video_has_its_video_redone_elsewhere(ray_cluster, tmp_path):
    from promptrack.pipeline.batch import track_videos

    long = write_video(tmp_path / "long.mp4", moving_boxes_frames(30))
    short = write_video(tmp_path / "short.mp4", moving_boxes_frames(3))
    out = tmp_path / "out"
    result = {}
    run = threading.Thread(target=lambda: result.setdefault("summary", track_videos(
        [long, short], PROMPT, output_dir=out, workers=2, overrides=TINY, progress=False)))
    run.start()
    killed = None
    while run.is_alive() and killed is None:
        # JsonSink's side file (one line a frame) is .<final name>.<pid>.<random>.part
        frames_part = next(iter(out.glob(".long.tracks.json.*.part")), None) if out.is_dir() else None
        if frames_part is not None and len(frames_part.read_text().splitlines()) >= 2:
            killed = _pid_writing(".long.tracks.json.", out)
            if killed is not None:
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    run.join(timeout=600)
    assert killed is not None, "the long video finished before its worker could be killed"
    summary = result["summary"]
    by_stem = {v.stem: v for v in summary.videos}
    assert summary.ok, [(v.stem, v.error) for v in summary.videos]
    assert by_stem["long"].attempts == 2 and not by_stem["long"].worker.endswith(f":{killed}")
    check_outputs(out, "long", 30)
    check_outputs(out, "short", 3)
    assert not list(out.glob(".*.part"))  # the killed worker's side files went with the retry
