"""One dataset from one or many tracks files: videos, splits, categories, ids, and resuming.

:func:`plan` reads and checks every tracks file before anything is written, then lays the
dataset out:

- categories by name across videos: one id per name (1-based), in order of first appearance
  (each video's prompt order), so two videos prompted differently share the ids of the names
  they share;
- videos numbered 1, 2, ... in the order they joined; image and annotation ids are counted over
  the whole dataset by the exporters, so none collide;
- a split by video (``val``: the fraction of videos in ``val``, drawn with ``seed``): one video's
  frames are never in both splits;
- resuming: the dataset folder keeps a manifest (``promptrack-export.json``, written last) of its
  videos, their splits and ids, and the export settings. Exporting more tracks files into the
  same folder (a batch that tracked more videos) keeps every video there with its split and ids,
  adds the new ones (their split chosen so the whole keeps the ``val`` fraction), cuts pictures
  only for frames not there yet, and rewrites the annotation files over all videos. The tracks
  files the manifest lists must still be where they were.

Example:
    >>> dataset = plan(["a.tracks.json", "b.tracks.json"], exporter_for("coco"), Path("ds"), ExportOptions(val=0.5))  # doctest: +SKIP
    >>> [(v.tracks.stem, v.split, v.video_id) for v in dataset.videos]   # doctest: +SKIP
    [('a', 'train', 1), ('b', 'val', 2)]
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, InputError
from .base import Exporter
from .frames import check_source
from .tracks_file import FrameRecord, TracksFile

MANIFEST = "promptrack-export.json"
MANIFEST_SCHEMA = "promptrack.export/1"
SPLITS = ("train", "val")
MASK_FORMATS = ("polygon", "rle")


@dataclass(frozen=True)
class ExportOptions:
    """Settings of a dataset; a dataset is resumed only with the settings it was made with."""

    every: int = 1
    min_area: int = 0
    mask_format: str = "polygon"  # COCO: polygon (every trainer's default) or rle (exact, compact)
    val: float = 0.0  # fraction of videos in the val split
    seed: int = 0

    def check(self) -> None:
        if self.every < 1:
            raise InputError(f"--every must be 1 or more, got {self.every}")
        if self.min_area < 0:
            raise InputError(f"--min-area must be 0 or more, got {self.min_area}")
        if self.mask_format not in MASK_FORMATS:
            raise ConfigError(f"--mask-format must be one of {', '.join(MASK_FORMATS)}, got {self.mask_format!r}")
        if not 0.0 <= self.val < 1.0:
            raise ConfigError(f"--val is the fraction of videos for validation, from 0 to below 1; got {self.val}")


@dataclass
class Video:
    """One video of the dataset: its checked tracks, the frames exported, where their pictures go."""

    tracks: TracksFile
    video_id: int
    split: str
    frames: list[FrameRecord]
    images: dict[int, str] = field(default_factory=dict)  # frame number -> picture path in the dataset
    wanted: dict[int, str] = field(default_factory=dict)  # the pictures still to cut (new or changed)
    source: Path | None = None  # the video to cut them from (None: nothing to cut)
    source_hint: Any = None  # the source the caller named (--source), for formats that read the video's length
    fresh: bool = True  # new in this export, or its tracks file changed since

    @property
    def objects(self) -> int:
        return sum(len(f.objects) for f in self.frames)


@dataclass
class Dataset:
    """Every video of the dataset and its categories; what an :class:`Exporter` writes."""

    videos: list[Video]
    categories: list[str]
    options: ExportOptions
    format: str
    up_to_date: bool = False  # nothing new since the manifest was written

    def category_id(self, name: str) -> int:
        """The 1-based id of a category name (COCO, YTVIS); YOLO class indices are this minus 1."""
        return self.categories.index(name) + 1

    @property
    def splits(self) -> list[str]:
        """The splits with videos, train first (train is always there, even when empty)."""
        return [s for s in SPLITS if s == "train" or any(v.split == s for v in self.videos)]

    def in_split(self, split: str) -> list[Video]:
        return [v for v in self.videos if v.split == split]


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _draw(seed: int, stem: str) -> str:
    return hashlib.sha256(f"{seed}:{stem}".encode()).hexdigest()


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is damaged ({type(exc).__name__}): export into another folder with -o") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise InputError(f"{path} is not a promptrack export manifest: export into another folder with -o")
    return manifest


def manifest_of(dataset: Dataset) -> dict[str, Any]:
    return {"schema": MANIFEST_SCHEMA, "format": dataset.format, "options": asdict(dataset.options),
            "categories": dataset.categories,
            "videos": [{"stem": v.tracks.stem, "tracks": str(v.tracks.path.resolve()),
                        "fingerprint": _fingerprint(v.tracks.path), "split": v.split, "id": v.video_id}
                       for v in dataset.videos]}


def _choose_splits(old: list[str], new_stems: list[str], val: float, seed: int) -> dict[str, str]:
    """Splits for the new videos: the whole keeps round(val * n) videos in val (at least one when
    val > 0, never all of them), drawn by a seeded hash of the stem; old videos keep theirs.

    >>> _choose_splits([], ["a", "b", "c", "d", "e"], 0.2, seed=0)
    {'a': 'train', 'b': 'train', 'c': 'train', 'd': 'val', 'e': 'train'}
    >>> _choose_splits(["train"], ["x"], 0.5, seed=0)   # the whole keeps half in val
    {'x': 'val'}
    >>> _choose_splits([], ["only"], 0.5, seed=0)       # one video stays in train
    {'only': 'train'}
    """
    total = len(old) + len(new_stems)
    target = max(round(val * total), 1 if val > 0 else 0)
    target = min(target, total - 1)  # train always keeps a video
    need = max(0, target - old.count("val"))
    ordered = sorted(new_stems, key=lambda s: _draw(seed, s))
    chosen = set(ordered[:need])
    return {s: "val" if s in chosen else "train" for s in new_stems}


def plan(paths: Sequence[str | os.PathLike], exporter: Exporter, out: Path, options: ExportOptions,
         sources: Sequence[str | os.PathLike | None] | None = None) -> Dataset:
    """Read and check every tracks file (and the dataset already in ``out``), then lay the dataset out.

    Raises:
        PromptrackError: one line: a damaged tracks file (file, frame, object), two videos of the
            same name, a format that holds one video given several, a dataset made with other settings.
    """
    options.check()
    sources = list(sources) if sources is not None else [None] * len(paths)
    given: dict[Path, tuple[TracksFile, Any]] = {}
    for path, source in zip(paths, sources):
        tracks = TracksFile.load(path)
        given.setdefault(tracks.path.resolve(), (tracks, source))
    if not exporter.merges and len(given) > 1:
        mergers = ", ".join(n for n, e in Exporter.registry.items() if e.merges)
        raise ConfigError(f"{exporter.name} holds one video: export each tracks file on its own "
                          f"(formats that hold many: {mergers})")
    manifest = read_manifest(out) if exporter.merges else None
    old: list[dict[str, Any]] = []
    categories: list[str] = []
    if manifest is not None:
        if manifest.get("format") != exporter.name or manifest.get("options") != asdict(options):
            made = manifest.get("options") if isinstance(manifest.get("options"), dict) else {}
            flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in made.items())
            raise ConfigError(f"{out} holds a {manifest.get('format')} dataset made with --format "
                              f"{manifest.get('format')} {flags}: export with those settings to add to it, "
                              "or into another folder with -o")
        old = list(manifest.get("videos") or [])
        categories = list(manifest.get("categories") or [])

    videos: list[Video] = []
    stems: dict[str, Path] = {}

    def add(tracks: TracksFile, video_id: int, split: str, fresh: bool, source: Any) -> None:
        if tracks.stem in stems and stems[tracks.stem] != tracks.path.resolve():
            raise InputError(f"two tracks files are named {tracks.stem}: {stems[tracks.stem]} and {tracks.path}: "
                             "their pictures would share names; rename one")
        stems[tracks.stem] = tracks.path.resolve()
        video = Video(tracks, video_id, split, tracks.select(options.every, options.min_area), fresh=fresh,
                      source_hint=source)
        if exporter.images:
            video.images = {f.index: exporter.images.format(split=split, stem=tracks.stem, frame=f.index)
                            for f in video.frames}
            video.wanted = {i: rel for i, rel in video.images.items() if fresh or not (out / rel).exists()}
            if video.wanted:  # fails before anything is written
                video.source = tracks.source_video(source)
                check_source(video.source, (tracks.width, tracks.height))
        videos.append(video)

    for entry in old:
        path = Path(entry["tracks"])
        if path in given:
            tracks, source = given.pop(path)
        else:
            if not path.exists():
                raise InputError(f"{out} holds video {entry['stem']} from {path}, which is gone: put it back, "
                                 "or export into another folder with -o")
            tracks, source = TracksFile.load(path), None
        add(tracks, int(entry["id"]), str(entry["split"]), _fingerprint(path) != entry.get("fingerprint"), source)
    new = list(given.values())
    splits = _choose_splits([str(e["split"]) for e in old], [t.stem for t, _ in new], options.val, options.seed)
    next_id = max([int(e["id"]) for e in old], default=0) + 1
    for offset, (tracks, source) in enumerate(new):
        add(tracks, next_id + offset, splits[tracks.stem], True, source)
    for video in videos:
        for name in video.tracks.categories:
            if name not in categories:
                categories.append(name)
    dataset = Dataset(videos, categories, options, exporter.name)
    dataset.up_to_date = (manifest is not None and not new and not any(v.fresh or v.wanted for v in videos))
    return dataset
