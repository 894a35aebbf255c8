"""A live stream as a :class:`FrameSource`: the frame loop pulls the newest captured frame.

Indices count processed frames (0, 1, 2, ...) and keep increasing across reconnects, so the
tracker and the associator simply see a stream that paused. Each index's source timestamp,
wall-clock time and capture number are kept for the sinks in a small ring (``FrameStamps``):
a fixed number of entries, whatever the run's length.

Example:
    >>> source = LiveSource(LiveCapture(url, LiveConfig()).start(), stop)   # doctest: +SKIP
    >>> for index, frame in source: source.stamps[index].time               # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..sources import FrameSource
from .capture import LiveCapture


@dataclass(frozen=True)
class FrameStamp:
    """When a processed frame was captured."""

    time: float  # source timestamp in seconds (the stream's clock; restarts with the stream)
    wall: float  # unix time when decoded
    mono: float  # time.monotonic() when decoded
    seq: int  # capture number over the session: gaps between processed frames are drops


class FrameStamps:
    """Index -> :class:`FrameStamp` for the last `size` frames (older ones are forgotten)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[int, FrameStamp] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, index: int, stamp: FrameStamp) -> None:
        with self._lock:
            self._items[index] = stamp
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, index: int) -> FrameStamp | None:
        with self._lock:
            return self._items.get(index)

    def __getitem__(self, index: int) -> FrameStamp:
        stamp = self.get(index)
        if stamp is None:
            raise KeyError(index)
        return stamp


class LiveSource(FrameSource):
    """Newest frames of a started :class:`LiveCapture` until `stop` is set (or `max_frames` done)."""

    def __init__(self, capture: LiveCapture, stop: threading.Event, max_frames: int | None = None) -> None:
        super().__init__(capture.info, start=0, max_frames=max_frames)
        self.capture = capture
        self.halt = stop
        self.stamps = FrameStamps()
        self._first_mono: float | None = None

    def __len__(self) -> int:
        return self.stop or 0  # unknown length: progress shows a count, not a bar

    def frame_time(self, index: int) -> float:
        """The stream's timestamp of processed frame `index` (seconds)."""
        stamp = self.stamps.get(index)
        return stamp.time if stamp is not None else 0.0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        index = 0
        height, width = self.info.height, self.info.width
        while not self.halt.is_set() and (self.stop is None or index < self.stop):
            captured = self.capture.take(timeout=0.1)  # short waits: stop is noticed while the stream is down
            if captured is None:
                continue
            frame = captured.rgb()
            if frame.shape[:2] != (height, width):  # the camera came back at another size: keep ours
                import cv2

                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            if self._first_mono is None:
                self._first_mono = captured.mono
            time = captured.time if captured.time is not None else captured.mono - self._first_mono
            self.stamps.add(index, FrameStamp(float(time), captured.wall, captured.mono, captured.seq))
            yield index, frame
            index += 1
