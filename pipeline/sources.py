"""Frame sources: a video file (decord first, PyAV fallback) or a folder of frames.

A source is opened once (it checks the input and reads its size, fps and frame count), then
iterated as a stream of ``(index, rgb_frame)``: frames are decoded one at a time, never all at
once, so memory does not grow with the video's length. ``frame_time(index)`` is a frame's
presentation time in seconds, from the file's timestamps (variable frame rate files included).

What a source promises, whatever the file:
- frames come out upright, as a player shows them (rotation metadata of phone videos is applied)
  and all of the size in ``info`` (a frame folder's odd-sized images are resized to the first);
- a frame that cannot be decoded (corrupt bytes) is skipped with a warning, and counted in
  ``skipped``; a file that ends early (truncated) ends the stream there with a warning; a file
  where nothing decodes any more (many damaged frames in a row) stops with :class:`InputError`.

Example:
    >>> source = open_source("input.mp4", start=10, max_frames=100)   # doctest: +SKIP
    >>> source.info.fps, source.info.width                            # doctest: +SKIP
    (25.0, 1920)
    >>> for index, frame in source: ...                               # doctest: +SKIP
    >>> source.frame_time(10)                                         # doctest: +SKIP
    0.4
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

import numpy as np

from .codecs import pick_decoder
from .errors import InputError, display_path

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
FOLDER_FPS = 25.0  # a frame folder carries no rate; this is the one written to outputs
MAX_BAD_RUN = 50  # this many undecodable packets in a row: the file is broken from here on
TIMES_KEPT = 4096  # frame times remembered (decoder read-ahead + look-back fit easily)


@dataclass
class SourceInfo:
    uri: str
    fps: float
    width: int  # as displayed (rotation applied)
    height: int
    frames: int | None  # total in the source (None: unknown)
    rotation: int = 0  # degrees counter-clockwise the decoded pictures are turned to be upright
    codec: str = ""  # the video stream's codec ("h264", "hevc"...; "" for frame folders and streams)

    @property
    def stem(self) -> str:
        return Path(self.uri.rstrip("/")).stem or "stream"


@runtime_checkable
class FrameSource(Protocol):
    """What the frame loop reads: ``for index, frame in source`` plus each frame's time."""

    info: SourceInfo
    start: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]: ...

    def frame_time(self, index: int) -> float:
        """Presentation time of frame `index` in seconds (once it has been read)."""
        ...


class BaseSource:
    """Iterable of (index, RGB frame) over [start, end) of a source, at most max_frames.

    Subclasses yield from ``_frames()`` and call ``_stamp(index, seconds)`` with each frame's
    time; ``frame_time`` answers from the recent ones (bounded memory), else ``index / fps``.
    """

    def __init__(self, info: SourceInfo, start: int = 0, end: int | None = None, max_frames: int | None = None):
        self.info = info
        self.start = start
        stop = info.frames if info.frames is not None else None
        if end is not None:
            stop = end if stop is None else min(stop, end)
        if max_frames is not None:
            stop = start + max_frames if stop is None else min(stop, start + max_frames)
        self.stop = stop
        self.skipped = 0  # undecodable frames skipped
        self._times: OrderedDict[int, float] = OrderedDict()
        if info.frames is not None and start >= info.frames:
            raise InputError(f"--start {start} is past the end of {display_path(info.uri)} ({info.frames} frames)")

    def __len__(self) -> int:
        return max(0, (self.stop if self.stop is not None else self.start) - self.start)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        produced = 0
        last = self.start - 1
        for index, frame in self._frames():
            if self.stop is not None and index >= self.stop:
                break
            produced += 1
            last = index
            yield index, frame
        if not produced:
            raise InputError(f"--start {self.start} is past the end of {display_path(self.info.uri)}: "
                             "no frames to process")
        if self.skipped:
            log.warning("%s: %d damaged frame(s) could not be decoded and were skipped",
                        display_path(self.info.uri), self.skipped)
        wanted = self.stop if self.stop is not None else None
        if wanted is not None and last + 1 + self.skipped < wanted and self.info.frames is not None:
            log.warning("%s ended after frame %d of %d (truncated or damaged file): the outputs cover the "
                        "frames read", display_path(self.info.uri), last, self.info.frames)

    def frame_time(self, index: int) -> float:
        """Presentation time of frame `index` in seconds: its timestamp in the file (variable frame
        rates included) once the frame was read, else index / fps."""
        seconds = self._times.get(index)
        if seconds is None:
            return index / self.info.fps if self.info.fps else 0.0
        return seconds

    def _stamp(self, index: int, seconds: float) -> None:
        self._times[index] = seconds
        while len(self._times) > TIMES_KEPT:
            self._times.popitem(last=False)

    def _upright(self, image: np.ndarray) -> np.ndarray:
        turns = (self.info.rotation // 90) % 4
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError


class PyAVSource(BaseSource):
    """Decodes packet by packet, so one damaged packet costs one frame, not the rest of the file.

    `decoder` names the FFmpeg decoder (e.g. ``h264_cuvid``, chosen by
    :func:`~promptrack.pipeline.codecs.pick_decoder`); None: the stream's own software decoder.
    Frames come out as the same RGB arrays either way.
    """

    def __init__(self, info: SourceInfo, decoder: str | None = None, **window) -> None:
        self.decoder = decoder
        super().__init__(info, **window)

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        yield from _decode_pyav(self, self.start, self.decoder)


def _named_decoder(name: str, stream):
    """An FFmpeg decoder chosen by name for `stream` (its extradata: SPS/PPS for H.264 and HEVC)."""
    import av

    context = av.CodecContext.create(name, "r")
    context.extradata = stream.codec_context.extradata
    context.width, context.height = stream.codec_context.width, stream.codec_context.height
    return context


def _decoder_open_error(path: str, name: str) -> str | None:
    """None when decoder `name` opens on the first video stream of `path`, else why not (one line)."""
    import av

    try:
        with av.open(path) as container:
            _named_decoder(name, container.streams.video[0]).open()
    except Exception as exc:  # noqa: BLE001 - any failure to open means "not usable here"
        text = str(exc).strip().splitlines()
        return text[0][:160] if text else type(exc).__name__
    return None


def _decode_pyav(source: BaseSource, first: int, decoder: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Frames `first`, `first` + 1, ... of the file, decoded from its beginning with PyAV (with the
    FFmpeg decoder named `decoder`, or the stream's own)."""
    import av

    index, bad_run, origin = 0, 0, None
    try:
        with av.open(source.info.uri) as container:
            stream = container.streams.video[0]
            if decoder is None:
                stream.thread_type = "AUTO"
                decode = stream.decode
            else:  # the demuxer's packets (the final empty one drains the decoder) go to the named one
                decode = _named_decoder(decoder, stream).decode
            for packet in container.demux(stream):
                try:
                    frames = decode(packet)
                except av.FFmpegError:
                    bad_run += 1
                    source.skipped += 1
                    if bad_run >= MAX_BAD_RUN:
                        raise InputError(f"cannot decode {display_path(source.info.uri)} after frame {index - 1}: "
                                         f"{bad_run} damaged frames in a row; the outputs cover the frames "
                                         "before it") from None
                    continue
                for frame in frames:
                    bad_run = 0
                    seconds = float(frame.time) if frame.time is not None else None
                    if seconds is not None:
                        origin = seconds if origin is None else origin
                    if index >= first:
                        if seconds is not None:
                            source._stamp(index, seconds - origin)
                        yield index, source._upright(frame.to_ndarray(format="rgb24"))
                    index += 1
    except av.FFmpegError as exc:  # the container itself is unreadable from here (truncated)
        log.warning("%s: cannot read on after frame %d (%s)", display_path(source.info.uri), index - 1,
                    type(exc).__name__)


class _NotDecordable(Exception):
    """decord gave a frame of another shape than the file's: PyAV takes over."""


class DecordSource(BaseSource):
    """decord (fast); on a decode error it hands over to PyAV at that frame. Rotated files go to
    PyAV from the start (decord's own rotation gives frames of the wrong shape for some sizes)."""

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import decord
        import decord.logging

        decord.logging.set_level(decord.logging.QUIET)  # its FFmpeg's own lines would tear the one-line errors
        index = self.start
        try:
            reader = decord.VideoReader(self.info.uri, ctx=decord.cpu(0), num_threads=1)
            if self.start:
                reader.seek_accurate(self.start)
            origin = float(reader.get_frame_timestamp(0)[0])
            for index in range(self.start, len(reader)):
                frame = reader.next().asnumpy()
                if frame.shape != (self.info.height, self.info.width, 3):
                    raise _NotDecordable
                self._stamp(index, float(reader.get_frame_timestamp(index)[0]) - origin)
                yield index, frame
        except (decord.DECORDError, RuntimeError, StopIteration, UnicodeError, _NotDecordable):
            # decord gives up on the first damaged packet; PyAV skips it and goes on.
            yield from _decode_pyav(self, index)


class FolderSource(BaseSource):
    """Images in name order; one of another size is resized to the first image's size (warned once)."""

    def __init__(self, info: SourceInfo, files: list[Path], **kwargs):
        self.files = files
        self.resized = 0
        super().__init__(info, **kwargs)

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        size = (self.info.height, self.info.width)
        for index in range(self.start, len(self.files)):
            image = _imread_bytes(self.files[index])
            if image is None:
                self.skipped += 1
                log.warning("skipped %s: not a readable image", display_path(self.files[index]))
                continue
            if image.shape[:2] != size:
                self.resized += 1
                if self.resized == 1:
                    log.warning("%s is %dx%d, not %dx%d like the first frame: frames of another size are resized",
                                display_path(self.files[index]), image.shape[1], image.shape[0], size[1], size[0])
                image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            self._stamp(index, index / self.info.fps)
            yield index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _imread_bytes(path: Path) -> np.ndarray | None:
    """An image as BGR; read as bytes, since cv2.imread cannot open every file name (not UTF-8 ones)."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def _probe_video(path: Path) -> SourceInfo:
    """Open with PyAV (safe on any bytes) and read size, rate and length; check one frame decodes."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{display_path(path)} has no video frames (no video stream): give a video file "
                                 "(mp4, mov, mkv, avi) or a frame folder")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            first = _first_frame(container, stream)
            if first is None:
                raise InputError(f"{display_path(path)} has no video frames: the file is empty or truncated")
            frames = stream.frames or None
            # Phones store portrait video as landscape pictures plus a rotation to apply on display.
            rotation = int(round((getattr(first, "rotation", 0) or 0) / 90.0)) * 90 % 360
            width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
            return SourceInfo(str(path), fps, width, height, frames, rotation, stream.codec_context.name)
    except av.FFmpegError as exc:
        raise InputError(f"cannot read {display_path(path)} as a video ({type(exc).__name__}): check the file is a "
                         "valid video") from None


def _first_frame(container, stream):
    """The first frame that decodes (damaged packets before it are passed over), or None."""
    import av

    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        if frames:
            return frames[0]
    return None


def _count_frames(path: Path) -> int:
    """Exact frame count when the container does not store one (demuxes, no decoding)."""
    import av

    with av.open(str(path)) as container:
        return sum(1 for packet in container.demux(video=0) if packet.size)


def open_source(uri: str | os.PathLike, start: int = 0, end: int | None = None,
                max_frames: int | None = None, backend: str = "auto", decoder: str = "cpu") -> FrameSource:
    """Open a video file or frame folder as a stream. Raises :class:`InputError` on bad input.

    `decoder` is ``input.video_decoder``: ``cpu`` (decord, else PyAV), ``auto`` (NVIDIA CUVID for
    H.264/HEVC where it opens, else ``cpu``) or ``cuvid`` (:class:`CodecError` when it cannot).
    """
    path = Path(uri)
    if not path.exists():
        raise InputError(f"input not found: {display_path(uri)}")
    window = {"start": start, "end": end, "max_frames": max_frames}
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{display_path(uri)} holds no frames: put .jpg or .png images in it")
        first = _imread_bytes(files[0])
        if first is None:
            raise InputError(f"cannot read frame {display_path(files[0])}: not an image")
        info = SourceInfo(str(path), FOLDER_FPS, first.shape[1], first.shape[0], len(files))
        return FolderSource(info, files, **window)
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {display_path(uri)}: permission denied")
    info = _probe_video(path)
    if info.frames is None:
        info.frames = _count_frames(path)
    if decoder != "cpu":
        hardware = pick_decoder(decoder, info.codec, opens=lambda name: _decoder_open_error(str(path), name), uri=uri)
        if hardware is not None:
            return PyAVSource(info, decoder=hardware, **window)
    if backend == "decord" or (backend == "auto" and not info.rotation):
        try:
            import decord  # noqa: F401

            return DecordSource(info, **window)
        except ImportError:
            if backend == "decord":
                raise InputError("decord is not installed: pip install decord, or use the PyAV backend") from None
    return PyAVSource(info, **window)
