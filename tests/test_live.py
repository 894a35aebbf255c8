"""Live mode from Python: a real RTSP server on loopback, a publisher process, LiveSession.

The detector and the mask tracker here are colour stubs (tests/live_helpers.py): these tests are
about the live loop (capture, reconnects, outputs, memory, prompts, the view), and the stubs make
ids deterministic. SAM 2 and Grounding DINO run live in tests/test_live_cli.py.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import time
import urllib.request
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import supervision as sv

from live_helpers import ColourTracker, colour_detector, free_port, publisher, rtsp_server  # noqa: F401 (fixtures)
from promptrack.pipeline import LiveSession
from promptrack.pipeline.config import LiveConfig, load_config
from promptrack.pipeline.errors import ConfigError, InputError
from promptrack.pipeline.live.capture import NewestFrame, av_input, is_live_uri, live_name
from promptrack.pipeline.live.stats import LiveStats, StatsReporter
from promptrack.pipeline.live.sinks import JsonLinesSink, SegmentedVideoSink

FAST = ["device=cpu", "detect_every=5", "live.stall_timeout=2", "live.reconnect_initial=0.2",
        "live.reconnect_max=1", "live.stats_every=0", "live.view_port=0"]


def session(url, tmp_path, prompt="red . green", extra=(), **kwargs) -> LiveSession:
    return LiveSession(url, prompt, output_dir=tmp_path, detector=colour_detector, tracker=ColourTracker(),
                       overrides=[*FAST, *extra], log=kwargs.pop("log", lambda line: None), **kwargs)


def watchdog(live: LiveSession, seconds: float) -> threading.Timer:
    """Stop a session that hangs, so a failing test fails instead of blocking the suite."""
    timer = threading.Timer(seconds, live.stop)
    timer.daemon = True
    timer.start()
    return timer


def ids_of(detections: sv.Detections) -> set[int]:
    return set(int(i) for i in detections.tracker_id) if len(detections) else set()


def check_segments(tmp_path, name: str) -> int:
    """Every segment is a complete H.264 mp4; returns the frames in all of them."""
    total = 0
    paths = sorted(tmp_path.glob(f"{name}.[0-9][0-9][0-9].mp4"))
    assert paths
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            total += sum(1 for _ in container.decode(stream))
    return total


def read_jsonl(path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


# -- units -----------------------------------------------------------------------------------
def test_live_uris_names_and_av_inputs():
    assert is_live_uri("rtsp://127.0.0.1:8554/cam") and is_live_uri("camera:0") and is_live_uri("udp://@:1234")
    assert not is_live_uri("clip.mp4") and not is_live_uri("/data/frames") and not is_live_uri("camera")
    assert live_name("rtsp://127.0.0.1:8554/cam") == "cam" and live_name("camera:1") == "camera1"
    assert live_name("http://127.0.0.1/live/stream.m3u8") == "stream"
    assert live_name("rtsp://127.0.0.1:8554/") == "127_0_0_1"
    live = LiveConfig(rtsp_transport="tcp", ffmpeg_options={"probesize": "32768"})
    assert av_input("camera:2", live) == ("/dev/video2", {"format": "v4l2", "options": {"probesize": "32768"}})
    url, kwargs = av_input("rtsp://127.0.0.1:8554/cam", live)
    assert kwargs["options"]["rtsp_transport"] == "tcp" and kwargs["options"]["probesize"] == "32768"
    assert "rtsp_transport" not in av_input("rtmp://127.0.0.1/live/x", live)[1]["options"]


def test_newest_frame_wins_and_counts_drops():
    slot = NewestFrame()
    for k in range(5):
        slot.put(k)
    assert slot.take(0.01) == 4 and slot.dropped == 4
    assert slot.take(0.01) is None


def test_stats_line_and_fixed_latency_window():
    stats = LiveStats(window=8)
    for k in range(1000):
        stats.processed(k / 1000, objects=3)
    assert len(stats._latency) == 8  # a fixed window, whatever the run's length
    p50, p95 = stats.latency()
    assert 0.99 < p50 < p95 < 1.0
    reporter = StatsReporter(stats, lambda: (2500, 1500, 1, True), every=5)
    line = reporter.line()
    for part in ("in ", "fps", "processed", "dropped 1500", "latency p50", "p95", "3 objects", "reconnects 1"):
        assert part in line


def test_live_config_is_checked():
    assert load_config("live").tracker.lookback == 0 and load_config("live").live.view_port > 0
    for bad in ("live.view_port=70000", "live.segment_seconds=0", "live.rtsp_transport=quic", "live.reconnect_max=0.1"):
        with pytest.raises(ConfigError):
            load_config("live", [bad])


def test_segments_and_jsonl_sinks_stay_valid(tmp_path):
    frame = np.zeros((48, 64, 3), np.uint8)
    box = sv.Detections(xyxy=np.array([[4, 4, 20, 20]], np.float32), mask=np.zeros((1, 48, 64), bool),
                        tracker_id=np.array([7]), confidence=np.array([0.8]), data={"class_name": np.array(["car"])})
    clock = {i: i * 0.1 for i in range(25)}  # 10 fps for 2.5 s -> segments of 1 s: 10 + 10 + 5 frames
    video = SegmentedVideoSink(tmp_path, "cam", 10.0, 64, 48, segment_seconds=1.0, clock=clock.__getitem__)
    stamps = {i: type("Stamp", (), {"time": 100 + i * 0.1, "wall": 1e9 + i, "seq": 2 * i})() for i in range(25)}
    jsonl = JsonLinesSink(tmp_path / "cam.tracks.jsonl", 10.0, stamps.get)
    for i in range(25):
        video.write(i, frame, box)
        jsonl.write(i, frame, box)
        assert (tmp_path / "cam.tracks.jsonl").read_text().count("\n") == i + 1  # flushed per line
    video.close()
    jsonl.close()
    for number, frames in enumerate((10, 10, 5)):
        with av.open(str(tmp_path / f"cam.{number:03d}.mp4")) as container:
            stream = container.streams.video[0]
            assert sum(1 for _ in container.decode(stream)) == frames
            assert stream.average_rate == Fraction(10)
    lines = read_jsonl(tmp_path / "cam.tracks.jsonl")
    assert lines[3]["time"] == 100.3 and lines[3]["source_frame"] == 6 and lines[3]["objects"][0]["id"] == 7
    assert set(lines[0]) == {"frame", "time", "wall", "source_frame", "keyframe", "objects"}


def test_keep_segments_deletes_the_oldest(tmp_path):
    frame = np.zeros((32, 32, 3), np.uint8)
    video = SegmentedVideoSink(tmp_path, "cam", 10.0, 32, 32, segment_seconds=0.5, clock=lambda i: i * 0.1, keep=2)
    for i in range(30):
        video.write(i, frame, sv.Detections.empty())
    video.close()
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["cam.004.mp4", "cam.005.mp4"]


def test_files_and_bad_urls_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="not a live source"):
        LiveSession(str(tmp_path / "clip.mp4"), "car", detector=colour_detector, tracker=ColourTracker())
    dead = f"rtsp://127.0.0.1:{free_port()}/nothing"
    with pytest.raises(InputError, match="cannot open live source") as err:
        session(dead, tmp_path, extra=["live.open_timeout=2"])
    assert "\n" not in str(err.value)


# -- against the RTSP server --------------------------------------------------------------------
def test_run_ends_cleanly_on_sigint_and_after_max_frames(publisher, tmp_path):
    """run() in the main thread, as the CLI calls it: SIGINT closes every file valid."""
    _, url = publisher(fps=25)
    live = session(url, tmp_path / "a", extra=["live.segment_seconds=1"])

    def interrupt():
        deadline = time.monotonic() + 30
        while live.stats.frames < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    ours = signal.signal(signal.SIGINT, lambda *_: None)  # a late SIGINT must never reach pytest
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        frames = live.run()
    finally:
        time.sleep(0.2)
        signal.signal(signal.SIGINT, ours)
    assert live.stopped and frames >= 30
    name = next((tmp_path / "a").glob("*.tracks.jsonl")).name.split(".")[0]
    assert len(read_jsonl(tmp_path / "a" / f"{name}.tracks.jsonl")) == frames
    assert check_segments(tmp_path / "a", name) == frames

    short = session(url, tmp_path / "b", extra=["max_frames=7"])
    assert short.run() == 7 and not short.stopped


def test_busy_view_port_is_one_line_error(publisher, tmp_path):
    import socket

    from promptrack.pipeline.errors import OutputError

    _, url = publisher(fps=25)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(OutputError, match="live.view_port=N") as err:
            session(url, tmp_path, extra=[f"live.view_port={holder.getsockname()[1]}"])
    assert "\n" not in str(err.value)


def test_session_tracks_stream_into_jsonl_and_segments(publisher, tmp_path):
    _, url = publisher(fps=25)
    live = session(url, tmp_path, extra=["live.segment_seconds=1"])
    guard = watchdog(live, 60)
    results = []
    for result in live:
        results.append((result.index, result.timestamp, result.source_index, ids_of(result.detections)))
        if result.index == 59:
            break
    guard.cancel()
    assert [r[0] for r in results] == list(range(60))
    assert all(b[1] > a[1] for a, b in zip(results, results[1:])), "source timestamps increase"
    assert results[-1][3] == {1, 2}
    name = next(tmp_path.glob("*.tracks.jsonl")).name.split(".")[0]
    lines = read_jsonl(tmp_path / f"{name}.tracks.jsonl")
    assert [line["frame"] for line in lines] == list(range(len(lines))) and len(lines) >= 60
    assert {o["id"] for o in lines[-1]["objects"]} == {1, 2}
    assert {o["label"] for o in lines[-1]["objects"]} == {"red", "green"}
    assert check_segments(tmp_path, name) == len(lines)
    info = json.loads((tmp_path / f"{name}.session.json").read_text())
    assert info["prompt"] == ["red", "green"] and info["source"]["width"] == 160


@pytest.mark.parametrize("fault", ["teardown", "crash"])
def test_feeder_killed_and_restarted_ids_continue(fault, publisher, rtsp_server, tmp_path):
    """teardown: the feeder gets SIGTERM (ends its RTSP session) and comes back 1.5 s later.
    crash: the feeder gets SIGKILL; the client sees a stall (no data for 2 s). This relay keeps a
    crashed feeder's path busy, so the relay restarts too (the client meets refused connections)."""
    pub, url = publisher(fps=25)
    logs: list[str] = []
    live = session(url, tmp_path, log=logs.append)
    guard = watchdog(live, 60)

    def come_back():
        if fault == "crash":
            rtsp_server.stop()
            rtsp_server.start()
        pub.start()

    before, after, restart = set(), set(), None
    for result in live:
        if live.capture.reconnects == 0:
            before |= ids_of(result.detections)
            if result.index == 40:
                pub.kill(signal.SIGTERM if fault == "teardown" else signal.SIGKILL)  # the feed dies mid-stream
                restart = threading.Timer(1.5 if fault == "teardown" else 3.0, come_back)
                restart.start()
        else:
            after |= ids_of(result.detections)
            if len(after) >= 2 and result.index >= 80:
                break
    guard.cancel()
    restart.join()
    assert live.capture.reconnects >= 1, logs
    assert any("reconnected" in line for line in logs) and any("dropped (" in line for line in logs)
    assert before == after == {1, 2}, (before, after)
    lines = read_jsonl(next(tmp_path.glob("*.tracks.jsonl")))
    assert [line["frame"] for line in lines] == list(range(len(lines))), "indices keep increasing across the gap"
    assert all(b["source_frame"] > a["source_frame"] for a, b in zip(lines, lines[1:]))


def test_set_prompt_keeps_existing_tracks(publisher, tmp_path):
    _, url = publisher(fps=25)
    live = session(url, tmp_path, prompt="red")
    guard = watchdog(live, 60)
    labels: dict[int, set] = {}
    changed_at = None
    for result in live:
        for i, name in zip(result.detections.tracker_id, result.detections.data.get("class_name", [])):
            labels.setdefault(int(i), set()).add(str(name))
        if result.index == 20:
            assert set(labels) == {1}
            live.set_prompt("red . green")
            changed_at = result.index
        if changed_at is not None and result.index >= changed_at + 20:
            last = ids_of(result.detections)
            break
    guard.cancel()
    assert last == {1, 2} and labels == {1: {"red"}, 2: {"green"}}
    name = next(tmp_path.glob("*.session.json")).name.split(".")[0]
    assert json.loads((tmp_path / f"{name}.session.json").read_text())["prompt"] == ["red", "green"]


def test_mjpeg_view_serves_page_and_jpeg_parts(publisher, tmp_path):
    _, url = publisher(fps=25)
    port = free_port()
    live = session(url, tmp_path, extra=[f"live.view_port={port}"])
    guard = watchdog(live, 60)
    got: dict = {}

    def watch():
        base = f"http://127.0.0.1:{port}"
        got["page"] = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        with urllib.request.urlopen(base + "/stream.mjpg", timeout=10) as stream:
            got["type"] = stream.headers["Content-Type"]
            boundary = stream.readline()
            headers = {}
            while (line := stream.readline().strip()):
                key, value = line.decode().split(":", 1)
                headers[key.strip().lower()] = value.strip()
            got["part_type"] = headers["content-type"]
            got["jpeg"] = stream.read(int(headers["content-length"]))
            got["boundary"] = boundary
        got["snapshot"] = urllib.request.urlopen(base + "/frame.jpg", timeout=10).read()

    viewer = None
    for result in live:
        if viewer is None and live.view_url:
            assert live.view_url == f"http://127.0.0.1:{port}/"
            viewer = threading.Thread(target=watch, daemon=True)
            viewer.start()
        if viewer is not None and not viewer.is_alive():
            break
    guard.cancel()
    assert '<img src=\'/stream.mjpg\'' in got["page"]
    assert got["type"].startswith("multipart/x-mixed-replace") and got["boundary"].startswith(b"--")
    assert got["part_type"] == "image/jpeg" and got["jpeg"][:2] == b"\xff\xd8" and got["jpeg"][-2:] == b"\xff\xd9"
    image = cv2.imdecode(np.frombuffer(got["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3)
    assert got["snapshot"][:2] == b"\xff\xd8"


def test_soak_2000_streamed_frames_memory_stays_flat(publisher, tmp_path):
    """Capture, loop, associator, sinks, stats and the view over >= 2000 streamed frames: RSS flat.

    The colour-stub tracker stands in for SAM 2 (whose bounded memory has its own tests in
    test_sam2_engine.py): this soak is about everything around it.
    """
    import psutil

    _, url = publisher(fps=100)
    port = free_port()
    live = session(url, tmp_path, extra=["live.segment_seconds=2", f"live.view_port={port}", "live.latency_window=64"])
    guard = watchdog(live, 120)
    process = psutil.Process()
    warm = None

    def watch():  # a viewer connected the whole time: the view's path is in the soak too
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=10) as stream:
                while stream.read(65536):
                    pass
        except OSError:
            pass

    for result in live:
        if result.index == 5:
            threading.Thread(target=watch, daemon=True).start()
        if warm is None and result.index >= 300:
            gc.collect()
            warm = process.memory_info().rss
        if live.capture.received >= 2100:
            break
    guard.cancel()
    gc.collect()
    end = process.memory_info().rss
    print(f"soak: {live.capture.received} streamed, {live.stats.frames} processed, {live.capture.dropped} dropped, "
          f"RSS {warm / 2**20:.0f} -> {end / 2**20:.0f} MiB")
    assert live.capture.received >= 2000 and warm is not None
    assert end <= warm * 1.10, f"RSS grew from {warm / 2**20:.0f} MiB to {end / 2**20:.0f} MiB"
    lines = (next(tmp_path.glob("*.tracks.jsonl"))).read_text().count("\n")
    assert lines >= 1000 and lines == live.stats.frames
