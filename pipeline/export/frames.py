"""Cut the frames a dataset needs out of the source video, as JPEG files.

The video is decoded once, front to back, over the span of the wanted frames only; one frame is
held at a time.

Example:
    >>> extract_frames("clip.mp4", {0: Path("img/0.jpg"), 5: Path("img/5.jpg")}, size=(960, 540))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
from tqdm.auto import tqdm

from ..errors import InputError, OutputError
from ..sources import open_source

JPEG_QUALITY = 95


def _check_size(source: str | os.PathLike, width: int, height: int, size: tuple[int, int]) -> None:
    if (width, height) != tuple(size):
        raise InputError(f"{source} is {width}x{height} but the tracks were made on "
                         f"{size[0]}x{size[1]} frames: pass the video the tracks came from with --source")


def check_source(source: str | os.PathLike, size: tuple[int, int]) -> None:
    """Fail before anything is written when ``source`` cannot be opened or is not ``size`` (width, height)."""
    info = open_source(source).info  # metadata only: nothing is decoded
    _check_size(source, info.width, info.height, size)


def extract_frames(source: str | os.PathLike, wanted: dict[int, Path], size: tuple[int, int],
                   progress: bool = False) -> None:
    """Write frame ``i`` of ``source`` to ``wanted[i]`` for every key; ``size`` is the (width, height)
    the tracks were made at, checked so that masks and pictures agree."""
    if not wanted:
        return
    stream = open_source(source, start=min(wanted), end=max(wanted) + 1)
    _check_size(source, stream.info.width, stream.info.height, size)
    written: set[int] = set()
    with tqdm(total=len(wanted), desc="extracting frames", unit="frame", disable=not progress) as bar:
        for index, frame in stream:
            path = wanted.get(index)
            if path is None:
                continue
            if not cv2.imwrite(str(path), frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise OutputError(f"cannot write {path}: check the output folder")
            written.add(index)
            bar.update()
    if len(written) < len(wanted):
        raise InputError(f"{source} ends before frame {min(set(wanted) - written)} of the tracks: "
                         "pass the video the tracks came from with --source")
