"""Frame sources: a video file (decord first, PyAV fallback) or a folder of frames.

A source is opened once (it checks the input and reads its size, fps and frame count), then
iterated as a stream of ``(index, rgb_frame)``: frames are decoded one at a time, never all at
once, so memory does not grow with the video's length.

Example:
    >>> source = open_source("input.mp4", start=10, max_frames=100)   # doctest: +SKIP
    >>> source.info.fps, source.info.width                            # doctest: +SKIP
    (25.0, 1920)
    >>> for index, frame in source: ...                               # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
FOLDER_FPS = 25.0  # a frame folder carries no rate; this is the one written to outputs


@dataclass
class SourceInfo:
    uri: str
    fps: float
    width: int
    height: int
    frames: int | None  # total in the source (None: unknown)

    @property
    def stem(self) -> str:
        return Path(self.uri.rstrip("/")).stem or "stream"


class FrameSource:
    """Iterable of (index, RGB frame) over [start, end) of a source, at most max_frames."""

    def __init__(self, info: SourceInfo, start: int = 0, end: int | None = None, max_frames: int | None = None):
        self.info = info
        self.start = start
        stop = info.frames if info.frames is not None else None
        if end is not None:
            stop = end if stop is None else min(stop, end)
        if max_frames is not None:
            stop = start + max_frames if stop is None else min(stop, start + max_frames)
        self.stop = stop
        if info.frames is not None and start >= info.frames:
            raise InputError(f"--start {start} is past the end of {info.uri} ({info.frames} frames)")

    def __len__(self) -> int:
        return max(0, (self.stop if self.stop is not None else self.start) - self.start)

    def frame_time(self, index: int) -> float:
        """Presentation time of frame `index` in seconds (here: index / fps)."""
        return index / self.info.fps if self.info.fps else 0.0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        produced = False
        for index, frame in self._frames():
            if self.stop is not None and index >= self.stop:
                break
            produced = True
            yield index, frame
        if not produced:
            raise InputError(f"--start {self.start} is past the end of {self.info.uri}: no frames to process")

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError


class PyAVSource(FrameSource):
    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import av

        try:
            with av.open(self.info.uri) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for index, frame in enumerate(container.decode(stream)):
                    if index >= self.start:
                        yield index, frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise InputError(f"cannot decode {self.info.uri} mid-file: {exc}") from None


class DecordSource(FrameSource):
    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import decord

        try:
            reader = decord.VideoReader(self.info.uri, ctx=decord.cpu(0), num_threads=1)
            if self.start:
                reader.seek_accurate(self.start)
            for index in range(self.start, len(reader)):
                yield index, reader.next().asnumpy()
        except (decord.DECORDError, RuntimeError) as exc:
            raise InputError(f"cannot decode {self.info.uri} mid-file: {str(exc).splitlines()[0]}") from None


class FolderSource(FrameSource):
    def __init__(self, info: SourceInfo, files: list[Path], **kwargs):
        self.files = files
        super().__init__(info, **kwargs)

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        for index in range(self.start, len(self.files)):
            image = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
            if image is None:
                raise InputError(f"cannot read frame {self.files[index]}: not an image")
            yield index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _probe_video(path: Path) -> SourceInfo:
    """Open with PyAV (safe on any bytes) and read size, rate and length; check one frame decodes."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path} has no video frames (no video stream): give a video file (mp4, mov, mkv, avi) or a frame folder")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            first = next(iter(container.decode(stream)), None)
            if first is None:
                raise InputError(f"{path} has no video frames: the file is empty or truncated")
            frames = stream.frames or None
            return SourceInfo(str(path), fps, first.width, first.height, frames)
    except av.FFmpegError as exc:
        raise InputError(f"cannot read {path} as a video ({type(exc).__name__}): check the file is a valid video") from None


def _count_frames(path: Path) -> int:
    """Exact frame count when the container does not store one (demuxes, no decoding)."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def open_source(uri: str | os.PathLike, start: int = 0, end: int | None = None,
                max_frames: int | None = None, backend: str = "auto") -> FrameSource:
    """Open a video file or frame folder as a stream. Raises :class:`InputError` on bad input."""
    path = Path(uri)
    if not path.exists():
        raise InputError(f"input not found: {uri}")
    window = {"start": start, "end": end, "max_frames": max_frames}
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{uri} holds no frames: put .jpg or .png images in it")
        import cv2

        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise InputError(f"cannot read frame {files[0]}: not an image")
        info = SourceInfo(str(path), FOLDER_FPS, first.shape[1], first.shape[0], len(files))
        return FolderSource(info, files, **window)
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {uri}: permission denied")
    info = _probe_video(path)
    if info.frames is None:
        info.frames = _count_frames(path)
    if backend in ("auto", "decord"):
        try:
            import decord  # noqa: F401

            return DecordSource(info, **window)
        except ImportError:
            if backend == "decord":
                raise InputError("decord is not installed: pip install decord, or use the PyAV backend") from None
    return PyAVSource(info, **window)
