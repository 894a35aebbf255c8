"""Sinks for live runs: JSON Lines, the annotated video in segments, the MJPEG live view.

Like every sink they see finished frames (``write(index, frame, detections)``, ``close()``) and
hold nothing per frame: a live run may go on for days. Each is valid at any moment: a JSONL line
is flushed as soon as it is written, a segment is a complete mp4 once the next one starts (and
the current one is closed by ``close()`` on Ctrl-C/SIGTERM).

``stamps`` is a lookup ``index -> FrameStamp`` (source timestamp, wall-clock time, capture number)
kept by the live source for its recent frames.

Example:
    >>> jsonl = JsonLinesSink("out/cam.tracks.jsonl", fps=25.0, stamps=source.stamps)   # doctest: +SKIP
    >>> video = SegmentedVideoSink("out", "cam", 25.0, 640, 480, segment_seconds=60,
    ...                            clock=lambda i: source.stamps[i].mono)               # doctest: +SKIP
    >>> for sink in (jsonl, video): sink.write(0, frame, detections)                    # doctest: +SKIP
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import supervision as sv

from ..annotate import FrameAnnotator
from ..codecs import VideoEncoder
from ..errors import OutputError
from ..sinks import AnnotatedVideoSink, frame_record

StampLookup = Callable[[int], Any]  # index -> FrameStamp | None (see live/source.py)


class JsonLinesSink:
    """``<name>.tracks.jsonl``: one JSON object per processed frame, each line flushed when written.

    A line is a frame of the ``promptrack.tracks/1`` schema (``frame``, ``time``, ``keyframe``,
    ``objects``) where ``time`` is the source timestamp, plus ``wall`` (unix time the frame was
    decoded) and ``source_frame`` (capture number: a gap between two lines is frames dropped).
    """

    def __init__(self, path: str | Path, fps: float, stamps: StampLookup | None = None) -> None:
        self.path = Path(path)
        self.fps = fps
        self.stamps = stamps
        # Written live (readers tail it), so no side file; but never through a link planted at its
        # name (O_NOFOLLOW), which would overwrite whatever file the link points to.
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            self._file = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as exc:
            reason = "it is a symbolic link: remove it" if exc.errno == errno.ELOOP else exc.strerror
            raise OutputError(f"cannot write {self.path}: {reason}") from None

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        record = frame_record(index, self.fps, detections)
        stamp = self.stamps(index) if self.stamps is not None else None
        if stamp is not None:
            objects = record.pop("objects")
            record.update(time=round(stamp.time, 4), wall=round(stamp.wall, 3), source_frame=stamp.seq,
                          objects=objects)
        # One write of one whole line, then flush: a reader (tail -f) never sees half a frame.
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _TimedSegment(AnnotatedVideoSink):
    """An AnnotatedVideoSink whose frames are placed by time: a live run drops frames, and the
    video should still play at the pace things happened (variable frame rate)."""

    def write_at(self, seconds: float, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        rate = float(1 / self.stream.codec_context.time_base)  # frames per second, as the encoder counts
        self._pts = max(self._pts, int(round(seconds * rate)))  # never backwards; AnnotatedVideoSink adds 1
        self.write(index, frame, detections)


class SegmentedVideoSink:
    """Annotated H.264 video in segments ``<name>.000.mp4``, ``<name>.001.mp4``, ..., each playable alone.

    A segment covers `segment_seconds` of the `clock` (seconds, e.g. ``time.monotonic()`` at
    capture), so a pause in the stream does not stretch one file. With `keep` > 0 only the newest
    `keep` segments stay on disk. ``on_segment(path)`` is called for each finished segment. Every
    segment is written by `encoder` (:func:`~promptrack.pipeline.codecs.pick_encoder`, chosen once).
    """

    def __init__(self, folder: str | Path, name: str, fps: float, width: int, height: int, segment_seconds: float,
                 clock: Callable[[int], float], crf: int = 23, mask_opacity: float = 0.45, keep: int = 0,
                 on_segment: Callable[[Path], None] | None = None, encoder: VideoEncoder | None = None) -> None:
        self.folder, self.name = Path(folder), name
        self.encoder = encoder  # chosen once for every segment (None: libx264 at `crf`)
        self.fps, self.width, self.height = fps, width, height
        self.segment_seconds, self.clock, self.keep = segment_seconds, clock, keep
        self.crf, self.mask_opacity, self.on_segment = crf, mask_opacity, on_segment
        self.count = 0  # segments started
        self._segment: _TimedSegment | None = None
        self._t0 = 0.0

    def path(self, number: int) -> Path:
        return self.folder / f"{self.name}.{number:03d}.mp4"

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        t = self.clock(index)
        if self._segment is None or t - self._t0 >= self.segment_seconds:
            self._next(t)
        self._segment.write_at(t - self._t0, index, frame, detections)

    def close(self) -> None:
        self._finish()

    def _next(self, t: float) -> None:
        self._finish()
        self._segment = _TimedSegment(self.path(self.count), self.fps, self.width, self.height, self.crf,
                                      self.mask_opacity, encoder=self.encoder)
        self._t0 = t
        self.count += 1
        if self.keep > 0 and self.count > self.keep:
            self.path(self.count - 1 - self.keep).unlink(missing_ok=True)

    def _finish(self) -> None:
        if self._segment is not None:
            segment, self._segment = self._segment, None
            segment.close()
            if self.on_segment is not None:
                self.on_segment(segment.path)


class MjpegViewSink:
    """Annotated frames to an :class:`~promptrack.pipeline.live.server.MjpegServer` as JPEGs.

    Frames are drawn and encoded only while someone watches, at most `max_fps` a second.
    """

    def __init__(self, server: Any, max_fps: float = 10.0, quality: int = 80, mask_opacity: float = 0.45) -> None:
        self.server = server
        self.min_gap = 1.0 / max_fps
        self.quality = quality
        self.annotator = FrameAnnotator(mask_opacity)  # the video file's drawing
        self._last = float("-inf")

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        import time

        import cv2

        now = time.monotonic()
        if not self.server.wanted or now - self._last < self.min_gap:
            return
        self._last = now
        image = self.annotator.annotate(frame, detections)  # BGR, as cv2 wants it
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            self.server.publish(jpeg.tobytes())

    def close(self) -> None:
        pass  # the server outlives the sink; the session closes it
