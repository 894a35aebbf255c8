"""Faults as a new user meets them on the command line: one line on stderr, exit 2 (130 for
interrupts), never a traceback; outputs that exist are valid; no side file stays behind.

Runs use the fake hub (random SAM 2 weights), the shared YOLOX-Nano and tiny inputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import moving_boxes_frames, run_cli, tiny_disk_at, write_video
from test_faults_files import rotate_in_metadata

FAST = ["--set", "tracker.image_size=64", "--detect-every", "2"]


def yolox(assets: Path) -> list[str]:
    return ["--detector", str(assets / "models" / "yolox_nano.onnx")]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def side_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def frames_in(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_rotated_video_with_a_name_that_is_not_utf8(assets, hub_env, tmp_path):
    name = os.fsdecode(b"t\xe9l\xe9phone.mp4")
    video = rotate_in_metadata(write_video(tmp_path / name, moving_boxes_frames(5, height=48, width=64)))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "promptrack.pipeline.cli", video, "-p", "person", "-o", out,
                             *yolox(assets), *FAST], env=hub_env, capture_output=True)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr
    assert b"t\\xe9l\\xe9phone.tracks.json" in result.stdout  # shown, not crashed on
    stem = os.fsdecode(b"t\xe9l\xe9phone")
    data = json.loads((out / f"{stem}.tracks.json").read_text())
    assert (data["source"]["width"], data["source"]["height"]) == (48, 64)  # as displayed: portrait
    assert data["source"]["uri"].endswith("t\\xe9l\\xe9phone.mp4")
    assert frames_in(out / f"{stem}.annotated.mp4") == len(data["frames"]) == 5
    assert side_files(out) == []


@pytest.mark.parametrize("text", ["detect_every: [1, 2\n",
                                  'detect_every: !!python/object/apply:os.system ["touch {marker}"]\n'])
def test_malformed_or_unsafe_yaml_is_one_line_naming_the_file(text, synthetic_video, hub_env, tmp_path):
    marker = tmp_path / "pwned"
    config = tmp_path / "mine.yaml"
    config.write_text(text.format(marker=marker))
    result = run_cli([str(synthetic_video), "-p", "car", "--config", str(config), "-o", str(tmp_path / "o")], hub_env)
    assert result.returncode == 2
    assert "mine.yaml" in one_line(result.stderr)
    assert not marker.exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("kind", ["pickle payload", "text"])
def test_sam2_file_that_is_not_a_checkpoint_is_refused_in_one_line(kind, assets, synthetic_video, hub_env, tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "sam2.1_hiera_tiny.pt"
    if kind == "text":
        checkpoint.write_text("not a checkpoint\n")
    else:
        import torch

        torch.save({"model": _Payload(marker)}, checkpoint)  # what a booby-trapped download looks like
    result = run_cli([str(synthetic_video), "-p", "person", "--sam2", str(checkpoint), "-o", str(tmp_path / "o"),
                      *yolox(assets), *FAST], hub_env)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "sam2.1_hiera_tiny.pt" in line and "SAM 2 checkpoint" in line
    assert not marker.exists()  # weights-only loading: the payload never ran


def test_closed_stdout_ends_quietly(hub_env):
    proc = subprocess.Popen([sys.executable, "-m", "promptrack.pipeline.cli", "--list-detectors"], env=hub_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader (| head -0) is gone before anything is printed
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert stderr == ""


def _patched_cli(tmp_path: Path, patch: str) -> Path:
    """A track-video entry point with a slow step patched in, for signals at a known moment."""
    script = tmp_path / "cli.py"
    script.write_text("import sys, time\n" + textwrap.dedent(patch)
                      + "from promptrack.pipeline.cli import main\nsys.argv[0] = 'track-video'\nmain()\n")
    return script


def _wait_for(proc: subprocess.Popen, word: str) -> None:
    timer = threading.Timer(300, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if word in line:
                return
    finally:
        timer.cancel()
    pytest.fail(f"never printed {word!r}")


@pytest.mark.usefixtures("stop_signals_handled")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_while_models_load_is_one_line_exit_130(sig, assets, synthetic_video, hub_env, tmp_path):
    script = _patched_cli(tmp_path, """
        import promptrack.pipeline.api as api
        class Slow(api.TrackingPipeline):
            def __init__(self, *args, **kwargs):
                print("loading", flush=True)
                time.sleep(60)
        api.TrackingPipeline = Slow
    """)
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, str(script), str(synthetic_video), "-p", "person", "-o", str(out),
                             *yolox(assets), *FAST, "--quiet"], env=hub_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(proc, "loading")
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert one_line(stderr) == "track-video: interrupted"
    assert side_files(out) == []


@pytest.mark.usefixtures("stop_signals_handled")
def test_signals_while_files_close_leave_both_valid_and_agreeing(assets, synthetic_video, hub_env, tmp_path):
    script = _patched_cli(tmp_path, """
        import promptrack.pipeline.sinks as sinks
        close = sinks.JsonSink.close
        def slow_close(self):
            print("closing", flush=True)
            time.sleep(3)
            close(self)
        sinks.JsonSink.close = slow_close
    """)
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, str(script), str(synthetic_video), "-p", "person", "-o", str(out),
                             "--max-frames", "4", *yolox(assets), *FAST, "--quiet"], env=hub_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(proc, "closing")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):  # a user who insists
        proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    data = json.loads((out / "boxes.tracks.json").read_text())
    assert data["source"]["frames"] == len(data["frames"]) == 4
    assert frames_in(out / "boxes.annotated.mp4") == 4
    assert side_files(out) == []


@pytest.fixture
def tiny_disk(tmp_path):
    with tiny_disk_at(tmp_path / "disk", "48k") as mount:
        yield mount


def test_full_disk_is_one_line_exit_2_and_no_half_files(assets, hub_env, tmp_path, tiny_disk):
    video = write_video(tmp_path / "big.mp4", moving_boxes_frames(30, height=240, width=320))
    result = run_cli([str(video), "-p", "person", "-o", str(tiny_disk), *yolox(assets), *FAST, "--quiet"], hub_env)
    assert result.returncode == 2
    assert "disk full" in one_line(result.stderr)
    assert sorted(p.name for p in tiny_disk.iterdir()) == []  # nothing half-written, no side file


# ---- the cloud token and stream passwords ----------------------------------------------------

class _Recorder(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Token")))
        target = self.server.redirect_to
        if target and self.path.startswith("/v2/"):
            self.send_response(302)
            self.send_header("Location", target + "/landed")
            self.end_headers()
            return
        body = json.dumps({"code": 0, "msg": "ok", "data": {"status": "running"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _server(redirect_to: str | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen, server.redirect_to = [], redirect_to
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def test_cloud_token_is_never_sent_to_another_host_on_redirect():
    from promptrack.pipeline.detectors.dds_cloud import DDSCloudDetector

    elsewhere = _server()
    api = _server(redirect_to=f"http://127.0.0.1:{elsewhere.server_port}")
    home = _server()
    home.redirect_to = f"http://127.0.0.1:{home.server_port}"  # a redirect that stays on the API host
    try:
        for server in (api, home):
            detector = DDSCloudDetector(token="secret-token", api_url=f"http://127.0.0.1:{server.server_port}",
                                        timeout=2.0, retries=0)
            detector._call("GET", "/v2/task_status/1")
        assert api.seen == [("/v2/task_status/1", "secret-token")]
        assert elsewhere.seen == [("/landed", None)]  # followed, without the token
        assert home.seen == [("/v2/task_status/1", "secret-token"), ("/landed", "secret-token")]
    finally:
        for server in (api, elsewhere, home):
            server.shutdown()
            server.server_close()


def test_stream_password_is_masked_in_errors():
    from promptrack.pipeline.config import LiveConfig
    from promptrack.pipeline.errors import InputError
    from promptrack.pipeline.live.capture import LiveCapture

    capture = LiveCapture("rtsp://admin:hunter2@127.0.0.1:9/cam", LiveConfig(open_timeout=1.0))
    with pytest.raises(InputError) as caught:
        capture.start()
    assert "admin:***@127.0.0.1:9/cam" in str(caught.value) and "hunter2" not in str(caught.value)


def test_stream_password_is_masked_in_reconnect_lines_and_session_file(tmp_path, monkeypatch):
    """The reconnect lines and the source URI (what ``<name>.session.json`` stores) are masked."""
    from promptrack.pipeline.config import LiveConfig
    from promptrack.pipeline.live import capture as capture_module

    url = "rtsp://admin:hunter2@127.0.0.1:9/cam"
    frame = av.VideoFrame.from_ndarray(moving_boxes_frames(1, 48, 64)[0], format="rgb24")

    class Dropping:  # a stream that opens, then drops at once, so the reconnect lines come out
        streams = type("S", (), {"video": [type("V", (), {"average_rate": 10, "guessed_rate": 10})()]})()

        def decode(self, *args, **kwargs):
            raise OSError(f"connection to {url} reset")

        def close(self):
            pass

    opened = []

    def fake_open(self):
        opened.append(1)
        if len(opened) > 1:
            raise OSError(f"{url}: connection refused")
        return Dropping(), frame

    monkeypatch.setattr(capture_module.LiveCapture, "_open", fake_open)
    monkeypatch.setattr(capture_module, "_rate", lambda container: 10.0)
    from promptrack.pipeline.live.logs import forward, logger

    lines = []
    handler = forward(lines.append, uri=url)  # the stream's log lines (drops, reconnects), as a session shows them
    live = LiveConfig(reconnect_initial=0.01, reconnect_max=0.02)
    capture = capture_module.LiveCapture(url, live).start()
    try:
        deadline = __import__("time").monotonic() + 10
        while len(opened) < 3 and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.02)
    finally:
        capture.stop(wait=2)
        logger.removeHandler(handler)
    assert capture.info.uri == "rtsp://admin:***@127.0.0.1:9/cam"
    assert lines and all("hunter2" not in line for line in lines)
    assert any("admin:***@" in line for line in lines)


def test_file_damaged_from_the_middle_stops_in_one_line_with_valid_outputs(assets, hub_env, tmp_path):
    video = write_video(tmp_path / "half.mp4", moving_boxes_frames(90, height=48, width=64))
    data = bytearray(video.read_bytes())
    index = data.find(b"moov") - 4  # the sample table stays: the demuxer still finds every packet
    start = 48 + (index - 48) * 4 // 10
    data[start:index] = np.random.default_rng(0).integers(0, 256, index - start, dtype=np.uint8).tobytes()
    video.write_bytes(bytes(data))
    out = tmp_path / "o"
    result = run_cli([str(video), "-p", "person", "-o", str(out), *yolox(assets), *FAST, "--quiet"], hub_env)
    assert result.returncode == 2
    assert "damaged frames in a row" in one_line(result.stderr)
    data = json.loads((out / "half.tracks.json").read_text())  # valid up to the last finished frame
    assert 10 <= data["source"]["frames"] == len(data["frames"]) < 90
    assert frames_in(out / "half.annotated.mp4") == len(data["frames"])
    assert side_files(out) == []


def test_variable_frame_rate_times_in_the_json_are_the_source_timestamps(assets, hub_env, tmp_path):
    from test_faults_files import write_vfr

    times = [0.0, 0.1, 0.15, 0.9, 1.0, 1.05, 2.0]
    video = write_vfr(tmp_path / "vfr.mp4", times)
    out = tmp_path / "o"
    result = run_cli([str(video), "-p", "person", "-o", str(out), "--no-video", *yolox(assets), *FAST, "--quiet"],
                     hub_env)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "vfr.tracks.json").read_text())
    assert [f["time"] for f in data["frames"]] == pytest.approx(times, abs=1e-3)
