"""track-video on a live RTSP stream, as a user runs it: real loading code (fake hub: random-weight
Grounding DINO tiny and SAM 2.1 tiny at image_size 64), a real relay on loopback, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import av
import pytest

from conftest import run_cli
from live_helpers import free_port, publisher, rtsp_server  # noqa: F401 (fixtures)
from promptrack.pipeline.rle import decode_mask

# One detection (frame 0): random-weight Grounding DINO takes seconds a call on a busy 2-core machine.
LIVE = ["--set", "tracker.image_size=64", "--set", "live.segment_seconds=1", "--set", "live.stats_every=1",
        "--detect-every", "1000", "--set", "association.detect_on_lost=false",
        "--set", "association.detect_on_count_jump=0", "--device", "cpu"]


def wait_for(check, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"track-video exited early ({proc.returncode}): {proc.stderr.read()}")
        if check():
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"timed out; stderr: {proc.communicate()[1]}")


def lines_in(path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def test_cli_tracks_stream_then_sigterm_leaves_valid_files(publisher, hub_env, tmp_path):  # noqa: F811
    """SIGINT takes the same path (stop_on_signals); it is tested in-process in test_live.py."""
    _, url = publisher(fps=10)
    name = url.rsplit("/", 1)[-1]
    out = tmp_path / "o"
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "promptrack.pipeline.cli", url, "--prompt", "red car . dog",
                             "-o", str(out), *LIVE, "--set", f"live.view_port={port}"],
                            env=hub_env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        jsonl = out / f"{name}.tracks.jsonl"
        wait_for(lambda: lines_in(jsonl) >= 5 and (out / f"{name}.001.mp4").exists(), 150, proc)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        snapshot = urllib.request.urlopen(f"http://127.0.0.1:{port}/frame.jpg", timeout=10).read()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopped after" in stderr
    assert "live: in " in stderr and "latency p50" in stderr and "dropped" in stderr  # the stats line
    assert "/stream.mjpg" in page and snapshot[:2] == b"\xff\xd8"

    text = jsonl.read_text()
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert all(b["time"] > a["time"] for a, b in zip(records, records[1:]))
    assert all(b["source_frame"] > a["source_frame"] for a, b in zip(records, records[1:]))
    assert records[0]["keyframe"] and set(records[0]) == {"frame", "time", "wall", "source_frame", "keyframe",
                                                          "objects"}
    for record in records:
        for obj in record["objects"]:
            assert obj["id"] >= 1 and obj["label"] in ("red car", "dog") and len(obj["box"]) == 4
            assert decode_mask(obj["mask"]).shape == (120, 160)

    segments = sorted(out.glob(f"{name}.[0-9][0-9][0-9].mp4"))
    assert len(segments) >= 2
    decoded = 0
    for segment in segments:
        with av.open(str(segment)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)
            decoded += sum(1 for _ in container.decode(stream))
    assert decoded == len(records), "every processed frame is in a segment, the last one closed properly"
    session = json.loads((out / f"{name}.session.json").read_text())
    assert session["prompt"] == ["red car", "dog"] and session["models"]["tracker"] == "sam2.1-hiera-tiny"
    assert session["config"]["tracker"]["lookback"] == 0


@pytest.mark.parametrize("case", ["unreachable", "start_on_stream"])
def test_live_errors_are_one_line_exit_2(case, hub_env, tmp_path):
    """Checked before any model loads (a wrong URL fails at once); a busy view port: test_live.py."""
    args = [f"rtsp://127.0.0.1:{free_port()}/nothing", "-p", "red car", "-o", str(tmp_path), "--quiet", *LIVE,
            "--set", "live.open_timeout=3"]
    if case == "start_on_stream":
        args += ["--start", "5"]
    result = run_cli(args, hub_env, timeout=150)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("track-video: error:") and "Traceback" not in result.stderr
    expected = {"unreachable": "cannot open live source", "start_on_stream": "--max-frames"}[case]
    assert expected in lines[0]
