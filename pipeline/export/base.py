"""The Exporter base class: one dataset format, registered by subclassing.

Adding a format is one file: subclass :class:`Exporter`, set ``name`` (and ``images``, the path
pattern of the frames it ships, when it ships any) and write :meth:`Exporter.write`.

Example:
    >>> class Boxes(Exporter):                                           # doctest: +SKIP
    ...     name, about, index = "boxes", "one text line per object", "boxes.txt"
    ...     def write(self, tracks, frames, images, stage):
    ...         stage.path("boxes.txt").write_text("...")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..errors import ConfigError
from .staging import Staging
from .tracks_file import FrameRecord, TracksFile


class Exporter(ABC):
    name: ClassVar[str]
    about: ClassVar[str]
    index: ClassVar[str]  # the file a reader opens (pattern of {stem}), written last
    # Where the format wants each frame's picture, relative to the output folder, as a pattern of
    # {stem} and {frame}; None: the format ships no pictures (and needs no source video).
    images: ClassVar[str | None] = None
    registry: ClassVar[dict[str, type[Exporter]]] = {}

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress  # show a bar over the frames where writing takes long (polygon tracing)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        Exporter.registry[cls.name] = cls

    @abstractmethod
    def write(self, tracks: TracksFile, frames: list[FrameRecord], images: dict[int, str], stage: Staging) -> None:
        """Write the annotation files for ``frames`` into ``stage`` (pictures are already there:
        ``images`` maps a frame number to its path relative to the output folder)."""


def exporter_for(name: str, progress: bool = False) -> Exporter:
    try:
        return Exporter.registry[name](progress=progress)
    except KeyError:
        raise ConfigError(f"unknown export format {name!r}: choose one of {', '.join(Exporter.registry)}") from None
