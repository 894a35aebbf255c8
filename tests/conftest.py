"""Shared fixtures: the fake hub (random-weight models), synthetic videos, the shared assets."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Tests never touch the network: huggingface_hub reads these once, at import, so set them before
# anything imports it. The fake hub is written into this HF_HOME.
HF_HOME = Path(tempfile.mkdtemp(prefix="promptrack-hf-"))
os.environ["HF_HOME"] = str(HF_HOME)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("PROMPTRACK_MODEL_DIR", None)


def missing(message: str) -> None:
    """Something a test needs is not here: a failure in CI (CI=true), elsewhere a skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: this is a failure, not a skip)")
    pytest.skip(message)


def require_assets() -> Path:
    """The assets folder (promptrack.assets.locate: the download folder, then ../shared/assets);
    missing in CI is a failure, elsewhere a skip."""
    from promptrack.assets import AssetError, locate

    try:
        return locate()
    except AssetError as exc:
        missing(str(exc))


def require_module(name: str):
    """Import a test-only module; missing in CI is a failure, elsewhere a skip."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"{name} not installed: run make setup")


@contextlib.contextmanager
def tiny_disk_at(folder: Path, size: str):
    """A real full-able filesystem: a tmpfs of `size` (e.g. "48k") mounted at `folder` (needs root,
    as CI has: missing in CI is a failure, elsewhere a skip)."""
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        missing("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _keep_going(signum, frame) -> None:
    """A stop signal the test run itself had ignored: still nothing happens to the run."""


@pytest.fixture
def stop_signals_handled():
    """SIGINT, SIGTERM and SIGHUP handled (not ignored) during the test, whatever the test run inherited.

    ``nohup`` starts the run with SIGHUP ignored, and a shell starts a background job (``cmd &``
    in a script) with SIGINT ignored. The code under test rightly keeps an ignored signal ignored
    (``pipeline/signals.py``), and a child process inherits an ignored signal; so a test that
    sends one of them sets a handler first. Ours does nothing (for this process the signal stays
    harmless), but it is a handler: the code under test watches the signal, and a child process
    starts with the default action, as from a terminal (Python then raises KeyboardInterrupt on SIGINT).
    """
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_IGN:
            previous[sig] = signal.signal(sig, _keep_going)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def assets() -> Path:
    return require_assets()


@pytest.fixture(scope="session")
def fake_hub() -> Path:
    """HF_HOME with random-weight SAM 2.1 tiny and Grounding DINO tiny in the real cache layout."""
    from fake_hub import write_fake_hub

    return write_fake_hub(HF_HOME)


@pytest.fixture
def hub_env(fake_hub) -> dict:
    """Environment for subprocesses: the hub resolves offline to the fake one."""
    return {**os.environ, "HF_HOME": str(fake_hub), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def moving_boxes_frames(count: int, height: int = 120, width: int = 160) -> list[np.ndarray]:
    """Two coloured rectangles moving in opposite directions over a textured background."""
    rng = np.random.default_rng(0)
    background = (rng.integers(40, 90, size=(height, width, 3))).astype(np.uint8)
    frames = []
    for t in range(count):
        frame = background.copy()
        x = 10 + 3 * t
        frame[30:70, x % (width - 40): x % (width - 40) + 30] = (220, 40, 40)
        x2 = width - 50 - 2 * t
        frame[60:100, max(x2, 0): max(x2, 0) + 35] = (40, 200, 60)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0, options: dict | None = None) -> Path:
    """H.264 (PyAV) of RGB `frames`; `options` are x264 options, e.g. {"g": "5"} for a keyframe every 5."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = dict(options or {})
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def synthetic_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "boxes.mp4", moving_boxes_frames(24))


def run_cli(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run track-video as a user would (a subprocess), capturing output."""
    return subprocess.run([sys.executable, "-m", "promptrack.pipeline.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
