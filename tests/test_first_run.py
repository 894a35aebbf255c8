"""What a new user meets first: ``--help`` without loading models, and weights with the network down.

Each case runs in a subprocess, because huggingface_hub reads its environment (endpoint,
offline mode) once, at import.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

HELP_IMPORTS = """
import sys
from promptrack.pipeline import cli
try:
    cli.run(["--help"])
except SystemExit:
    pass
print("HEAVY:", sorted(m for m in ("torch", "sam2", "supervision", "transformers", "cv2") if m in sys.modules))
"""

RESOLVE = """
from promptrack.pipeline.errors import ModelNotFoundError
from promptrack.pipeline.models import resolve_file, resolve_folder
for call in (lambda: resolve_file("sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny"),
             lambda: resolve_folder("IDEA-Research/grounding-dino-tiny")):
    try:
        print("FOUND:", call())
    except ModelNotFoundError as exc:
        print("ERROR:", exc)
"""


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it fails at once, like a network that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_help_loads_no_model_library():
    done = _python(HELP_IMPORTS, {**os.environ, "PYTHONUNBUFFERED": "1"})
    assert "usage: track-video" in done.stdout
    assert "HEAVY: []" in done.stdout, done.stdout[-500:]


def test_network_down_is_one_line_per_model_and_no_retries(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    done = _python(RESOLVE, env)
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 2, done.stdout + done.stderr
    for line in errors:
        assert "hub is unreachable" in line and "PROMPTRACK_MODEL_DIR" in line
    assert "sam2.1_hiera_tiny.pt" in errors[0] and "IDEA-Research/grounding-dino-tiny" in errors[1]
    # The hub's own retry loop (five warnings, ~25 s of back-off) is never entered.
    assert "Retrying" not in done.stderr and "thrown while requesting" not in done.stderr, done.stderr


def test_cached_weights_need_no_network(fake_hub):
    # Online mode, but the hub cannot be reached: cached weights are used without asking it.
    env = {**os.environ, "HF_HOME": str(fake_hub), "HF_HUB_OFFLINE": "0",
           "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    done = _python(RESOLVE, env)
    found = [line for line in done.stdout.splitlines() if line.startswith("FOUND:")]
    assert len(found) == 2, done.stdout + done.stderr
    assert "models--facebook--sam2.1-hiera-tiny" in found[0]
    assert "models--IDEA-Research--grounding-dino-tiny" in found[1]
    assert done.stderr.strip() == "", done.stderr


def test_cached_weights_load_silently(fake_hub, synthetic_video, tmp_path):
    # A run whose weights are cached shows the tracking bar and the results, nothing about models.
    from conftest import run_cli

    env = {**os.environ, "HF_HOME": str(fake_hub), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = run_cli([str(synthetic_video), "-p", "person", "-o", str(tmp_path), "--max-frames", "2", "--no-video",
                    "--set", "tracker.image_size=256"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tracking" in done.stderr  # the progress bar of the long work stays
    for noise in ("Loading weights", "[transformers]", "Fetching", "Downloading", "Warning", "warn"):
        assert noise not in done.stderr, done.stderr[-2000:]
