"""Live capture: a PyAV reader thread that reconnects on its own and keeps only the newest frame.

The tracker is slower than most cameras. Queueing every frame would make latency (and memory)
grow without bound, so the reader holds one frame: a new frame replaces the one not yet taken,
and the replaced one is counted as dropped. A stream that ends, errors or stalls (no data for
``stall_timeout`` seconds) is reopened with exponential backoff; the frame counter keeps going,
so the consumer never notices more than a pause.

Example:
    >>> capture = LiveCapture("rtsp://127.0.0.1:8554/cam", LiveConfig()).start()   # doctest: +SKIP
    >>> frame = capture.take(timeout=1.0)        # newest CapturedFrame, or None   # doctest: +SKIP
    >>> frame.rgb().shape, capture.dropped                                         # doctest: +SKIP
    ((480, 640, 3), 12)
    >>> capture.stop()                                                             # doctest: +SKIP
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..config import LiveConfig
from ..errors import InputError, mask_password
from ..sources import SourceInfo
from .logs import logger

DEFAULT_FPS = 25.0  # written to outputs when a stream announces no rate
_CAMERA = re.compile(r"^camera:(\d+|/dev/\S+)$")


def is_live_uri(uri: str) -> bool:
    """A stream (``scheme://...``) or a local camera (``camera:0``), as opposed to a file or folder."""
    text = str(uri)
    return bool(_CAMERA.match(text)) or bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text))


def av_input(uri: str, live: LiveConfig) -> tuple[str, dict[str, Any]]:
    """What to pass to ``av.open`` for `uri`: ``camera:N`` is ``/dev/videoN`` through v4l2.

    >>> av_input("camera:0", LiveConfig())
    ('/dev/video0', {'format': 'v4l2', 'options': {}})
    >>> av_input("rtsp://127.0.0.1:8554/cam", LiveConfig())[1]["options"]["rtsp_transport"]
    'udp'
    """
    options = {str(k): str(v) for k, v in (live.ffmpeg_options or {}).items()}
    camera = _CAMERA.match(uri)
    if camera:
        device = camera.group(1)
        return (f"/dev/video{device}" if device.isdigit() else device), {"format": "v4l2", "options": options}
    if urlparse(uri).scheme.lower() in ("rtsp", "rtsps"):
        options.setdefault("rtsp_transport", live.rtsp_transport)
    # No demuxer-side buffering: a frame is handed on as soon as it is decoded.
    options.setdefault("fflags", "nobuffer")
    return uri, {"options": options}


def live_name(uri: str) -> str:
    """File stem for a stream's outputs: the last path part, else the host (``camera:0`` -> ``camera0``).

    >>> live_name("rtsp://10.0.0.5:8554/front-door"), live_name("camera:0"), live_name("udp://@:1234")
    ('front-door', 'camera0', 'stream')
    """
    camera = _CAMERA.match(uri)
    if camera:
        raw = "camera" + camera.group(1).rsplit("/", 1)[-1].replace("video", "")
    else:
        parsed = urlparse(uri)
        part = parsed.path.rstrip("/").rsplit("/", 1)[-1]
        raw = part.rsplit(".", 1)[0] if "." in part else part
        raw = raw or (parsed.hostname or "")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("_")
    return name or "stream"


@dataclass
class CapturedFrame:
    """One decoded frame, converted to RGB only when the tracker takes it (dropped ones never are)."""

    frame: Any  # av.VideoFrame
    seq: int  # frames decoded since the capture started, over every connection
    time: float | None  # the stream's own timestamp in seconds (restarts when the stream does)
    wall: float  # time.time() when decoded
    mono: float  # time.monotonic() when decoded: latency is measured from here

    def rgb(self) -> np.ndarray:
        return self.frame.to_ndarray(format="rgb24")


class NewestFrame:
    """A one-slot mailbox: ``put`` replaces a frame nobody took (counted in ``dropped``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: CapturedFrame | None = None
        self.dropped = 0

    def put(self, item: CapturedFrame) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout: float) -> CapturedFrame | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item


class LiveCapture:
    """Decode a live source in a thread; reconnect with exponential backoff; keep the newest frame.

    :meth:`start` opens the stream once in the caller's thread, so a wrong URL or a missing camera
    is a one-line :class:`InputError` at once. After that, every failure is retried forever
    (``reconnect_initial`` doubling up to ``reconnect_max`` seconds) until :meth:`stop`.
    """

    def __init__(self, uri: str, live: LiveConfig) -> None:
        self.uri = uri
        self.shown = mask_password(uri)  # what messages and files show: the password masked
        self.live = live
        self.info: SourceInfo | None = None
        self.received = 0  # frames decoded, all connections
        self.reconnects = 0  # successful reopenings after a drop
        self.connected = False
        self._slot = NewestFrame()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_frame = time.monotonic()

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    def start(self) -> "LiveCapture":
        try:
            container, first = self._open()
        except Exception as exc:  # noqa: BLE001 - every FFmpeg/OS failure becomes one line for the user
            raise InputError(f"cannot open live source {self.shown}: {_reason(exc)}; check the URL, that the "
                             f"stream is up, and live.rtsp_transport (udp/tcp)") from None
        fps = _rate(container)
        self.info = SourceInfo(self.shown, fps, first.width, first.height, None)
        self._deliver(first)
        self._thread = threading.Thread(target=self._run, args=(container,), name="promptrack-capture", daemon=True)
        self._thread.start()
        return self

    def take(self, timeout: float = 0.2) -> CapturedFrame | None:
        """The newest frame not yet taken; None when none came within `timeout` seconds."""
        return self._slot.take(timeout)

    def stop(self, wait: float | None = None) -> None:
        """Ask the reader to end; waits at most `wait` seconds (default: the stall timeout + 1 s)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.live.stall_timeout + 1.0 if wait is None else wait)

    # -- the reader thread ----------------------------------------------------------------
    def _open(self):
        import av

        url, kwargs = av_input(self.uri, self.live)
        # (open, read) timeouts: PyAV interrupts a blocked read after `stall_timeout` s without data.
        container = av.open(url, timeout=(self.live.open_timeout, self.live.stall_timeout), **kwargs)
        try:
            if not container.streams.video:
                raise InputError("it has no video stream")
            first = next(container.decode(video=0), None)
            if first is None:
                raise InputError("the stream ended before its first frame")
        except BaseException:
            container.close()
            raise
        self.connected = True
        return container, first

    def _run(self, container) -> None:
        delay = self.live.reconnect_initial
        while not self._stop.is_set():
            try:
                for frame in container.decode(video=0):
                    self._deliver(frame)
                    delay = self.live.reconnect_initial  # frames flow again: the next failure starts over
                    if self._stop.is_set():
                        break
                # PyAV ends the iteration quietly when its read timeout interrupts a silent stream.
                silent = time.monotonic() - self._last_frame
                reason = f"stalled: no data for {silent:.0f} s" if silent >= self.live.stall_timeout else "stream ended"
            except Exception as exc:  # noqa: BLE001 - a live source may fail in any way; we reconnect
                reason = _reason(exc)
            finally:
                self.connected = False
                _close(container)
            if self._stop.is_set():
                break
            logger.warning(f"live: {self.shown} dropped ({reason}); reconnecting", extra={"uri": self.uri})
            container = None
            while container is None and not self._stop.wait(delay):
                try:
                    container, first = self._open()
                except Exception as exc:  # noqa: BLE001
                    logger.warning(f"live: reconnect to {self.shown} failed ({_reason(exc)}); next try in "
                                   f"{min(delay * 2, self.live.reconnect_max):g} s", extra={"uri": self.uri})
                    delay = min(delay * 2, self.live.reconnect_max)
                    continue
                self.reconnects += 1
                logger.warning(f"live: {self.shown} reconnected", extra={"uri": self.uri})
                self._deliver(first)
            if container is None:
                break

    def _deliver(self, frame) -> None:
        self._last_frame = time.monotonic()
        self._slot.put(CapturedFrame(frame, self.received, frame.time, time.time(), self._last_frame))
        self.received += 1


def _rate(container) -> float:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    return fps if 0 < fps <= 240 else DEFAULT_FPS  # RTSP often announces 90000 (the clock), not the rate


def _close(container) -> None:
    if container is None:
        return
    try:
        container.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail; nothing is left to save
        pass


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return mask_password(text)[:160]  # FFmpeg's messages name the URL, password and all
