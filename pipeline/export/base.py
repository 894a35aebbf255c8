"""The Exporter base class: one dataset format, registered by subclassing.

Adding a format is one file: subclass :class:`Exporter`, set ``name``, ``index`` (and ``images``,
the path pattern of the frames it ships, when it ships any; ``merges = False`` when a file of
the format holds one video only) and write :meth:`Exporter.write`, which gets the whole
:class:`~.dataset.Dataset`: its videos (checked tracks, exported frames, picture paths, split,
video id) and its categories (one id per name across videos).

Example:
    >>> class Boxes(Exporter):                                           # doctest: +SKIP
    ...     name, about, index = "boxes", "one text line per object", "boxes.txt"
    ...     def write(self, dataset, stage):
    ...         lines = [f"{v.tracks.stem} {f.index} {o.id} {o.xywh}" for v in dataset.videos
    ...                  for f in v.frames for o in f.objects]
    ...         stage.path("boxes.txt").write_text("\\n".join(lines))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from ..errors import ConfigError
from .staging import Staging

if TYPE_CHECKING:
    from .dataset import Dataset


class Exporter(ABC):
    name: ClassVar[str]
    about: ClassVar[str]
    # The file a reader opens, as a pattern of {stem} (the first video's) and {split} ("train").
    index: ClassVar[str]
    # Where the format wants each frame's picture, relative to the output folder, as a pattern of
    # {split}, {stem} and {frame}; None: the format ships no pictures (and needs no source video).
    images: ClassVar[str | None] = None
    # Whether one dataset of the format holds many videos (export of many tracks files, batch --export).
    merges: ClassVar[bool] = True
    registry: ClassVar[dict[str, type[Exporter]]] = {}

    def __init__(self, progress: bool = False) -> None:
        self.progress = progress  # show a bar over the frames where writing takes long (polygon tracing)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        Exporter.registry[cls.name] = cls

    @abstractmethod
    def write(self, dataset: Dataset, stage: Staging) -> None:
        """Write the annotation files of ``dataset`` into ``stage`` (the pictures are already there:
        each video's ``images`` maps a frame number to its path relative to the output folder)."""


def exporter_for(name: str, progress: bool = False) -> Exporter:
    try:
        return Exporter.registry[name](progress=progress)
    except KeyError:
        raise ConfigError(f"unknown export format {name!r}: choose one of {', '.join(Exporter.registry)}") from None
