"""Export tracks.json files as training datasets: COCO, YOLO-seg, YouTube-VIS, CVAT video, MOT.

    track-video export out/clip.tracks.json --format coco -o dataset [--every N] [--min-area A] [--source clip.mp4]
    track-video export out/*.tracks.json --format coco -o dataset --val 0.2     # one dataset from many videos

Formats (one file each, registered by subclassing :class:`Exporter`):

==============  ============================================================================
``coco``        ``images/<split>/`` + ``annotations/instances_<split>.json``: polygons (default) or RLE
``yolo-seg``    ``images/<split>/`` + ``labels/<split>/`` (one polygon line per object) + ``data.yaml``
``ytvis``       ``JPEGImages/<stem>/`` + ``instances_<split>.json``: per-frame RLE per track
``cvat-video``  ``annotations.xml``: CVAT for video 1.1, one track per id (one video per file)
``mot``         ``<stem>.txt``: MOTChallenge results ``frame,id,x,y,w,h,score,-1,-1,-1``
``mot-gt``      ``<stem>/gt/gt.txt`` + ``<stem>/seqinfo.ini``: MOTChallenge ground truth
==============  ============================================================================

Every exported box is the mask's exact extent (pycocotools ``toBbox``; see :mod:`.tracks_file`).
Formats with pictures extract the frames (JPEG) from the source video named in the JSON
(``source.uri``) or given as ``source``. Every tracks file is checked before anything is written,
and nothing half-written is ever left under a final name (:mod:`.staging`). Many tracks files make
one dataset (:mod:`.dataset`: categories by name, unique ids, a split by video, resumable).

Example:
    >>> from promptrack.pipeline.export import export_tracks
    >>> result = export_tracks("out/clip.tracks.json", "yolo-seg", "dataset", every=5)  # doctest: +SKIP
    >>> result.index                                                                   # doctest: +SKIP
    PosixPath('dataset/data.yaml')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from typing import Sequence, Union

from ..errors import ConfigError, OutputError
from . import coco, cvat_video, mot, ytvis, yolo_seg  # noqa: F401  (each registers its format)
from .base import Exporter, exporter_for
from .dataset import MANIFEST, MASK_FORMATS, Dataset, ExportOptions, manifest_of, plan
from .frames import extract_frames
from .staging import Staging
from .tracks_file import TracksFile

PathLike = Union[str, os.PathLike]

FORMATS = tuple(Exporter.registry)


@dataclass
class ExportResult:
    """What an export wrote: ``index`` is the file a reader opens."""

    format: str
    output_dir: Path
    index: Path
    frames: int  # frames exported (images written, when the format has images)
    objects: int  # object instances exported
    files: list[Path] = field(default_factory=list)  # the files this export wrote (none when up to date)
    videos: int = 1  # videos in the dataset


def default_output_dir(json_path: str | os.PathLike, format: str) -> Path:
    """``out/clip.tracks.json`` -> ``out/clip.<format>/`` (what ``--export`` on a run uses)."""
    tracks = Path(json_path)
    stem = tracks.name[: -len(".tracks.json")] if tracks.name.endswith(".tracks.json") else tracks.stem
    return tracks.with_name(f"{stem}.{format}")


def export_tracks(json_path: PathLike | Sequence[PathLike], format: str, output_dir: PathLike | None = None,
                  every: int = 1, min_area: int = 0, source: PathLike | Sequence[PathLike | None] | None = None,
                  progress: bool = False, mask_format: str = "polygon", val: float = 0.0,
                  seed: int = 0) -> ExportResult:
    """Write ``json_path`` (one ``tracks.json``, or several: one dataset) as a ``format`` dataset into ``output_dir``.

    Args:
        json_path: the ``<stem>.tracks.json`` of a run, or a list of them (one dataset of many videos).
        format: one of :data:`FORMATS`: ``coco``, ``yolo-seg``, ``ytvis``, ``cvat-video``, ``mot``, ``mot-gt``.
        output_dir: the dataset folder (default for one file: ``<stem>.<format>/`` beside the JSON). A
            dataset already there (its ``promptrack-export.json``) is added to: its videos are kept.
        every: export every N-th frame of each JSON, from its first.
        min_area: leave out objects whose mask has fewer pixels (empty masks are always left out).
        source: the video (or frame folder) to cut frames from, one per tracks file; default: each
            JSON's ``source.uri``.
        progress: show progress bars (frame extraction, polygon tracing).
        mask_format: COCO masks as ``polygon`` (what Detectron2, MMDetection and Ultralytics'
            converter take without settings) or ``rle`` (compressed RLE, exact and compact).
        val: the fraction of videos in the ``val`` split (whole videos, drawn with ``seed``).
        seed: the seed of that draw.

    Raises:
        PromptrackError: one-line, user-facing: a damaged tracks file (file, frame, object), no source
            video, an unwritable folder. Nothing is written then.
    """
    paths = [json_path] if isinstance(json_path, (str, os.PathLike)) else list(json_path)
    if not paths:
        raise ConfigError("give at least one tracks file to export")
    sources = [source] * len(paths) if source is None or isinstance(source, (str, os.PathLike)) else list(source)
    if len(sources) != len(paths):
        raise ConfigError(f"{len(sources)} sources for {len(paths)} tracks files: give one per file")
    if source is not None and isinstance(source, (str, os.PathLike)) and len(paths) > 1:
        raise ConfigError("--source names the video of one tracks file: export the files one by one, "
                          "or let each JSON's source.uri name its video")
    if output_dir is None and len(paths) > 1:
        raise ConfigError("a dataset of several tracks files needs a folder: give it with -o")
    exporter = exporter_for(format, progress=progress)
    out = Path(output_dir) if output_dir is not None else default_output_dir(paths[0], format)
    dataset = plan(paths, exporter, out, ExportOptions(every, min_area, mask_format, val, seed), sources)
    index = out / exporter.index.format(stem=dataset.videos[0].tracks.stem, split="train")
    result = ExportResult(format=format, output_dir=out, index=index, frames=sum(len(v.frames) for v in dataset.videos),
                          objects=sum(v.objects for v in dataset.videos), videos=len(dataset.videos))
    if dataset.up_to_date:
        return result
    with Staging(out) as stage:
        try:
            for video in dataset.videos:
                if video.wanted:
                    extract_frames(video.source, {i: stage.path(rel) for i, rel in video.wanted.items()},
                                   (video.tracks.width, video.tracks.height), progress=progress)
            exporter.write(dataset, stage)
            if exporter.merges:  # last: a dataset whose manifest is in place is complete
                stage.path(MANIFEST).write_text(json.dumps(manifest_of(dataset), indent=1), encoding="utf-8")
            result.files = stage.publish()
        except OSError as exc:
            raise OutputError(f"cannot write the dataset into {out}: {exc.strerror or exc}; choose another with -o") from None
    return result


__all__ = ["FORMATS", "MASK_FORMATS", "Dataset", "ExportOptions", "ExportResult", "Exporter", "TracksFile",
           "default_output_dir", "export_tracks"]
