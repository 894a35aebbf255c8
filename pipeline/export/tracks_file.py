"""Read a ``tracks.json`` (schema ``promptrack.tracks/1``) for export: frames, objects, categories.

Example:
    >>> tracks = TracksFile.load("out/clip.tracks.json")            # doctest: +SKIP
    >>> frames = tracks.select(every=5, min_area=100)                # doctest: +SKIP
    >>> frames[0].index, [o.id for o in frames[0].objects]           # doctest: +SKIP
    (0, [1, 2])
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ..errors import InputError
from ..rle import decode_mask

SCHEMA = "promptrack.tracks/1"  # the one schema this reader understands (written by pipeline/sinks.py)


@dataclass(frozen=True)
class TrackedObject:
    """One object on one frame: its track id, label, score, box ``[x1, y1, x2, y2]`` and RLE mask."""

    id: int
    label: str
    score: float
    box: tuple[float, float, float, float]
    rle: dict[str, Any] | None
    area: int  # mask pixels (box area when the object has no mask)

    @property
    def xywh(self) -> list[float]:
        x1, y1, x2, y2 = self.box
        return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]

    def mask(self) -> np.ndarray:
        """The full-size boolean mask (decoded on demand: only one at a time is held)."""
        return decode_mask(self.rle)


@dataclass(frozen=True)
class FrameRecord:
    index: int  # frame number in the source video (0-based)
    keyframe: bool
    objects: list[TrackedObject] = field(default_factory=list)


def _area(rle: dict[str, Any] | None, box: tuple[float, float, float, float]) -> int:
    if rle is None:
        return int(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))
    counts = rle["counts"]
    coded = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return int(mask_utils.area(coded))  # counted on the RLE, no decoding


class TracksFile:
    """A parsed ``tracks.json``; :meth:`load` checks the schema and says what is wrong in one line."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.source: dict[str, Any] = data["source"]
        # The prompt's phrases, and the labels of its exemplars ({"exemplar": {..., "label": ...}}).
        self.prompt: list[str] = [p if isinstance(p, str) else str(p["exemplar"]["label"])
                                  for p in data.get("prompt") or []]
        self.tracks: list[dict[str, Any]] = list(data.get("tracks") or [])
        self.frames = [
            FrameRecord(int(f["frame"]), bool(f.get("keyframe", False)), [
                TrackedObject(int(o["id"]), str(o["label"]), float(o.get("score", 1.0)),
                              tuple(float(v) for v in o["box"]), o.get("mask"),
                              _area(o.get("mask"), tuple(float(v) for v in o["box"])))
                for o in f["objects"]])
            for f in data["frames"]
        ]

    @classmethod
    def load(cls, path: str | os.PathLike) -> TracksFile:
        path = Path(path)
        hint = "give the <stem>.tracks.json that track-video wrote"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"tracks file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read {path} as JSON ({type(exc).__name__}): {hint}") from None
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema != SCHEMA:
            raise InputError(f"{path} is not a promptrack tracks file (schema {schema!r}, expected {SCHEMA!r}): {hint}")
        try:
            return cls(path, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path} is a damaged tracks file ({type(exc).__name__}: {exc}): {hint}") from None

    @property
    def width(self) -> int:
        return int(self.source["width"])

    @property
    def height(self) -> int:
        return int(self.source["height"])

    @property
    def fps(self) -> float:
        return float(self.source.get("fps") or 25.0)

    @property
    def stem(self) -> str:
        """The clip's name: ``clip`` for ``clip.tracks.json``."""
        name = self.path.name
        return name[: -len(".tracks.json")] if name.endswith(".tracks.json") else self.path.stem

    @property
    def categories(self) -> list[str]:
        """The prompt's phrases in order, then any other label the tracks carry (none is dropped)."""
        names = list(dict.fromkeys(self.prompt))
        for label in [t["label"] for t in self.tracks] + [o.label for f in self.frames for o in f.objects]:
            if label not in names:
                names.append(label)
        return names

    def track_label(self, track_id: int) -> str:
        for track in self.tracks:
            if int(track["id"]) == track_id:
                return str(track["label"])
        raise KeyError(track_id)

    def select(self, every: int = 1, min_area: int = 0) -> list[FrameRecord]:
        """Every ``every``-th frame from the first, each keeping the objects of at least ``min_area``
        mask pixels; empty masks are always left out (there is nothing to label)."""
        if every < 1:
            raise InputError(f"--every must be 1 or more, got {every}")
        return [FrameRecord(f.index, f.keyframe, [o for o in f.objects if o.area > 0 and o.area >= min_area])
                for f in self.frames[::every]]

    def source_video(self, override: str | os.PathLike | None = None) -> Path:
        """The video (or frame folder) the tracks were made on, for extracting frames.

        ``override`` (``--source``) wins; else ``source.uri`` as written, then beside the JSON.
        """
        if override is not None:
            candidates = [Path(override)]
        else:
            uri = Path(str(self.source.get("uri", "")))
            candidates = [uri] if uri.is_absolute() else [uri, self.path.parent / uri, self.path.parent / uri.name]
        for candidate in candidates:
            if str(candidate) and candidate.exists():
                return candidate
        raise InputError(f"source video {candidates[0]} not found (needed to extract the frames): "
                         "pass the video the tracks were made on with --source")
