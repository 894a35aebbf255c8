"""Export a run's ``tracks.json`` as a training dataset: COCO, YOLO-seg, YouTube-VIS, CVAT video, MOT.

    track-video export out/clip.tracks.json --format coco -o dataset [--every N] [--min-area A] [--source clip.mp4]

Formats (one file each, registered by subclassing :class:`Exporter`):

=============  ============================================================================
``coco``       ``images/`` + ``annotations.json``: RLE masks, boxes, ``attributes.track_id``
``yolo-seg``   ``images/`` + ``labels/`` (one polygon line per object) + ``data.yaml``
``ytvis``      ``JPEGImages/<stem>/`` + ``instances.json``: per-frame RLE per track
``cvat-video`` ``annotations.xml``: CVAT for video 1.1, one track per id
``mot``        ``<stem>.txt``: MOTChallenge ``frame,id,x,y,w,h,score,-1,-1,-1``
=============  ============================================================================

Formats with pictures extract the frames (JPEG) from the source video named in the JSON
(``source.uri``) or given as ``source``. Nothing half-written is ever left under a final name
(:mod:`.staging`).

Example:
    >>> from promptrack.pipeline.export import export_tracks
    >>> result = export_tracks("out/clip.tracks.json", "yolo-seg", "dataset", every=5)  # doctest: +SKIP
    >>> result.index                                                                   # doctest: +SKIP
    PosixPath('dataset/data.yaml')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError
from . import coco, cvat_video, mot, ytvis, yolo_seg  # noqa: F401  (each registers its format)
from .base import Exporter, exporter_for
from .frames import extract_frames
from .staging import Staging
from .tracks_file import TracksFile

FORMATS = tuple(Exporter.registry)


@dataclass
class ExportResult:
    """What an export wrote: ``index`` is the file a reader opens."""

    format: str
    output_dir: Path
    index: Path
    frames: int  # frames exported (images written, when the format has images)
    objects: int  # object instances exported
    files: list[Path] = field(default_factory=list)


def default_output_dir(json_path: str | os.PathLike, format: str) -> Path:
    """``out/clip.tracks.json`` -> ``out/clip.<format>/`` (what ``--export`` on a run uses)."""
    tracks = Path(json_path)
    stem = tracks.name[: -len(".tracks.json")] if tracks.name.endswith(".tracks.json") else tracks.stem
    return tracks.with_name(f"{stem}.{format}")


def export_tracks(json_path: str | os.PathLike, format: str, output_dir: str | os.PathLike | None = None,
                  every: int = 1, min_area: int = 0, source: str | os.PathLike | None = None,
                  progress: bool = False) -> ExportResult:
    """Write ``json_path`` (a ``tracks.json``) as a ``format`` dataset into ``output_dir``.

    Args:
        json_path: the ``<stem>.tracks.json`` of a run.
        format: one of :data:`FORMATS`: ``coco``, ``yolo-seg``, ``ytvis``, ``cvat-video``, ``mot``.
        output_dir: the dataset folder (default: ``<stem>.<format>/`` beside the JSON).
        every: export every N-th frame of the JSON, from its first.
        min_area: leave out objects whose mask has fewer pixels (empty masks are always left out).
        source: the video (or frame folder) to cut frames from; default: the JSON's ``source.uri``.
        progress: show progress bars (frame extraction, polygon tracing).

    Raises:
        PromptrackError: one-line, user-facing: not a tracks file, no source video, unwritable folder.
    """
    exporter = exporter_for(format, progress=progress)
    tracks = TracksFile.load(json_path)
    frames = tracks.select(every=every, min_area=min_area)
    video = tracks.source_video(source) if exporter.images else None  # fail before writing anything
    out = Path(output_dir) if output_dir is not None else default_output_dir(json_path, format)
    with Staging(out) as stage:
        try:
            images: dict[int, str] = {}
            if exporter.images:
                images = {f.index: exporter.images.format(stem=tracks.stem, frame=f.index) for f in frames}
                extract_frames(video, {i: stage.path(rel) for i, rel in images.items()},
                               (tracks.width, tracks.height), progress=progress)
            exporter.write(tracks, frames, images, stage)
            files = stage.publish()
        except OSError as exc:
            raise OutputError(f"cannot write the dataset into {out}: {exc.strerror or exc}; choose another with -o") from None
    return ExportResult(format=format, output_dir=out, index=out / exporter.index.format(stem=tracks.stem),
                        frames=len(frames), objects=sum(len(f.objects) for f in frames), files=files)


__all__ = ["FORMATS", "ExportResult", "Exporter", "TracksFile", "default_output_dir", "export_tracks"]
