"""Live counters and the stats line: input fps, processed fps, dropped frames, latency p50/p95.

Latency is measured from the moment a frame was decoded to the moment its results were
written. It is kept in a window of fixed size, so memory does not grow with the run's length.

Example:
    >>> stats = LiveStats(window=4)
    >>> for ms in (10, 20, 30, 40, 50): stats.processed(ms / 1000, objects=2)
    >>> [round(v * 1000) for v in stats.latency()]
    [35, 48]
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from .logs import logger


class LiveStats:
    """Processed-frame counters and a fixed-size latency window; thread-safe."""

    def __init__(self, window: int = 256) -> None:
        self.frames = 0
        self.objects = 0
        self._latency: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def processed(self, latency: float, objects: int) -> None:
        with self._lock:
            self.frames += 1
            self.objects = objects
            self._latency.append(latency)

    def latency(self) -> tuple[float, float]:
        """(p50, p95) in seconds over the window; (nan, nan) before the first frame."""
        with self._lock:
            values = np.fromiter(self._latency, dtype=float, count=len(self._latency))
        if not len(values):
            return float("nan"), float("nan")
        return float(np.percentile(values, 50)), float(np.percentile(values, 95))


class StatsReporter:
    """A thread that writes one stats line every `every` seconds (to stderr by default).

    ``counters()`` returns (received, dropped, reconnects, connected) from the capture.
    """

    def __init__(self, stats: LiveStats, counters: Callable[[], tuple[int, int, int, bool]], every: float,
                 uri: str | None = None) -> None:
        self.stats = stats
        self.counters = counters
        self.every = every
        self.uri = uri  # the stream the lines are about (log records carry it)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="promptrack-stats", daemon=True)
        self._last = (time.monotonic(), 0, 0, 0)

    def start(self) -> "StatsReporter":
        if self.every > 0:
            self._last = (time.monotonic(), *self.counters()[:2], self.stats.frames)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)

    def line(self) -> str:
        """The stats since the previous line, e.g. ``live: in 25.0 fps | processed 7.9 fps | ...``."""
        now = time.monotonic()
        received, dropped, reconnects, connected = self.counters()
        frames = self.stats.frames
        then, received0, dropped0, frames0 = self._last
        self._last = (now, received, dropped, frames)
        span = max(now - then, 1e-6)
        p50, p95 = self.stats.latency()
        state = "" if connected else " | reconnecting"
        return (f"live: in {(received - received0) / span:.1f} fps | processed {(frames - frames0) / span:.1f} fps | "
                f"dropped {dropped} (+{dropped - dropped0}) | latency p50 {p50 * 1000:.0f} ms p95 {p95 * 1000:.0f} ms"
                f" | {self.stats.objects} objects | reconnects {reconnects}{state}")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            logger.info(self.line(), extra={"uri": self.uri})
