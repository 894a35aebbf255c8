"""Live-mode test helpers: a real RTSP server on loopback, a publisher process, colour stubs.

The server is Debian's ``rtsp-server-perl`` (a relay: publishers ANNOUNCE/RECORD on the source
port, readers DESCRIBE/PLAY on the client port; UDP only). Every process started here is tied
to a fixture finalizer, so it dies with the test. Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from conftest import missing

HERE = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def rtsp_server_binary() -> str:
    """Path of rtsp-server-perl; missing is a failure when CI=true, else a skip."""
    found = shutil.which("rtsp-server-perl")
    if found:
        return found
    missing("rtsp-server-perl not installed: apt-get install -y --no-install-recommends rtsp-server-perl")


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class RtspServer:
    """rtsp-server-perl on loopback with free ports; ``publish_url(path)`` / ``read_url(path)``."""

    def __init__(self, log: Path) -> None:
        self.client_port, self.source_port = free_port(), free_port()
        self._log = open(log, "w")
        self.start()

    def start(self) -> None:
        """Start (or restart, on the same ports) the relay."""
        rtp = 2 * random.randrange(10000, 16000)  # RTP ports for publishers (even: RTP, odd: RTCP)
        self.proc = subprocess.Popen(
            [rtsp_server_binary(), "-c", str(self.client_port), "-s", str(self.source_port),
             "--client_listen_address", LOOPBACK, "--source_listen_address", LOOPBACK, "--rtp_start_port", str(rtp)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait_port(self.client_port, self.proc)
        _wait_port(self.source_port, self.proc)

    def publish_url(self, path: str) -> str:
        return f"rtsp://{LOOPBACK}:{self.source_port}/{path}"

    def read_url(self, path: str) -> str:
        return f"rtsp://{LOOPBACK}:{self.client_port}/{path}"

    def stop(self) -> None:
        _end(self.proc)

    def close(self) -> None:
        _end(self.proc)
        self._log.close()


class Publisher:
    """tests/rtsp_publisher.py in a subprocess; ``kill()`` and ``start()`` again to drop the feed."""

    def __init__(self, url: str, fps: float = 25.0, frames: int = 0, size: str = "160x120") -> None:
        self.args = [sys.executable, str(HERE / "rtsp_publisher.py"), url, "--fps", str(fps), "--frames", str(frames),
                     "--size", size]
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Publisher":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # "publishing" once the first frame went out
        if "publishing" not in line:
            self.kill()
            raise RuntimeError("the RTSP publisher did not start")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL: the feed dies like a crash; SIGTERM: it ends its RTSP session first."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc.stdout.close()
            self.proc = None


# -- fixtures (import them into a test module to use them) -----------------------------------------
@pytest.fixture(scope="module")
def rtsp_server(tmp_path_factory):
    server = RtspServer(tmp_path_factory.mktemp("rtsp") / "server.log")
    yield server
    server.close()


@pytest.fixture
def publisher(rtsp_server, request):
    """A looping synthetic stream at rtsp://127.0.0.1:PORT/<test name>, killed with the test."""
    made: list[Publisher] = []

    def start(fps: float = 25.0, frames: int = 0) -> tuple[Publisher, str]:
        path = request.node.name.replace("[", "_").replace("]", "")
        pub = Publisher(rtsp_server.publish_url(path), fps=fps, frames=frames).start()
        made.append(pub)
        return pub, rtsp_server.read_url(path)

    yield start
    for pub in made:
        pub.kill()


# -- colour stubs: a detector and a mask tracker that know red and green boxes ------------------
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60)}


def colour_mask(frame: np.ndarray, rgb, tolerance: int = 90) -> np.ndarray:
    return np.abs(frame.astype(np.int16) - np.array(rgb, dtype=np.int16)).sum(-1) < tolerance


def colour_detector(frame: np.ndarray, phrases) -> sv.Detections:
    """Boxes of the red/green blobs for phrases that name those colours (class_id = phrase index)."""
    boxes, ids, names = [], [], []
    for k, phrase in enumerate(phrases):
        for name, rgb in COLOURS.items():
            mask = colour_mask(frame, rgb)
            if name in phrase and mask.sum() > 50:
                boxes.append(sv.mask_to_xyxy(mask[None])[0])
                ids.append(k)
                names.append(phrase)
    if not boxes:
        return sv.Detections.empty()
    return sv.Detections(xyxy=np.array(boxes, dtype=np.float32), confidence=np.full(len(boxes), 0.9, np.float32),
                         class_id=np.array(ids), data={"class_name": np.array(names)})


class ColourTracker:
    """A MaskTracker stub: an object is the colour under its box when added; its mask is that colour.

    Fast and deterministic, so tests of the live loop (reconnects, memory, prompts) do not depend
    on SAM 2 with random weights.
    """

    def __init__(self) -> None:
        self._colour: dict[int, np.ndarray] = {}
        self._frame: np.ndarray | None = None

    @property
    def ids(self) -> list[int]:
        return list(self._colour)

    def step(self, index: int, frame: np.ndarray) -> sv.Detections:
        self._frame = frame
        return self.current()

    def add(self, ids, boxes, masks=None) -> None:
        for i, box in zip(ids, boxes):
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            patch = self._frame[max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)].reshape(-1, 3)
            self._colour[int(i)] = np.median(patch, axis=0)

    def reprompt(self, ids, boxes) -> None:
        self.add(ids, boxes)

    def remove(self, ids) -> None:
        for i in ids:
            self._colour.pop(int(i), None)

    def current(self) -> sv.Detections:
        from promptrack.trackers.base import detections_from_masks

        if not self._colour:
            return sv.Detections.empty()
        masks = np.stack([colour_mask(self._frame, c) for c in self._colour.values()])
        return detections_from_masks(list(self._colour), masks)
