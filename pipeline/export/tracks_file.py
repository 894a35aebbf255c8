"""Read a ``tracks.json`` (schema ``promptrack.tracks/1``) for export: checked, then frames, objects, categories.

A tracks file is user input (hand-edited, merged, cut short), so :meth:`TracksFile.load` checks
every entry before any exporter sees it: a damaged mask, box, object or frame entry is one
:class:`~..errors.InputError` line naming the file, the frame and the object. Masks are checked
without decoding them (pycocotools decodes a damaged RLE into garbage or out of bounds), so the
check is the same for every format and nothing is written when it fails.

Boxes: ``box`` in ``tracks.json`` is ``[x1, y1, x2, y2]`` with ``x2, y2`` the last column and row
the mask covers (inclusive, as ``supervision.mask_to_xyxy``), so a 1-px object has ``x1 == x2``.
Exports do not use it: every exported box is the mask's exact extent, ``[x, y, w, h]`` as
``pycocotools.mask.toBbox`` gives it (``w = x2 - x1 + 1``), computed on the RLE.

Example:
    >>> tracks = TracksFile.load("out/clip.tracks.json")            # doctest: +SKIP
    >>> frames = tracks.select(every=5, min_area=100)                # doctest: +SKIP
    >>> frames[0].index, [o.id for o in frames[0].objects]           # doctest: +SKIP
    (0, [1, 2])
"""

from __future__ import annotations

import json
import math
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
    """One object on one frame: its track id, label, score, box ``[x1, y1, x2, y2]`` (as in the
    JSON, inclusive max), compressed RLE mask, and the mask's exact box and pixel count."""

    id: int
    label: str
    score: float
    box: tuple[float, float, float, float]
    rle: dict[str, Any]
    area: int  # mask pixels
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)  # the mask's extent [x, y, w, h] (pycocotools toBbox)

    @property
    def xywh(self) -> list[int]:
        """The exact box ``[x, y, w, h]`` of the mask (a 1-px object is ``w = h = 1``)."""
        return list(self.bbox)

    @property
    def extent(self) -> tuple[int, int, int, int]:
        """The mask's extent as pixel edges ``[x1, y1, x2, y2]`` with ``x2 = x + w`` (exclusive)."""
        x, y, w, h = self.bbox
        return x, y, x + w, y + h

    def mask(self) -> np.ndarray:
        """The full-size boolean mask (decoded on demand: only one at a time is held)."""
        return decode_mask(self.rle)


@dataclass(frozen=True)
class FrameRecord:
    index: int  # frame number in the source video (0-based)
    keyframe: bool
    objects: list[TrackedObject] = field(default_factory=list)


class DamagedEntry(ValueError):
    """What is wrong with one entry (the reader adds the file, frame and object)."""


def rle_counts(counts: str) -> np.ndarray:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``, vectorised),
    without trusting it: raises :class:`DamagedEntry` on characters outside the code.

    >>> rle_counts("P13700000`1").tolist()
    [32, 3, 7, 3, 7, 3, 7, 3, 55]
    """
    codes = np.frombuffer(counts.encode("ascii", "replace"), dtype=np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return codes
    if (codes < 0).any() or (codes > 63).any():
        raise DamagedEntry("its mask's RLE does not decode (characters outside the COCO code)")
    if codes[-1] & 0x20:
        raise DamagedEntry("its mask's RLE does not decode (cut short)")
    ends = np.flatnonzero((codes & 0x20) == 0)  # the last character of each number
    starts = np.concatenate([[0], ends[:-1] + 1])
    position = np.arange(codes.size) - np.repeat(starts, ends - starts + 1)
    if position.max() > 12:  # more than 60 bits: not a run length pycocotools could have written
        raise DamagedEntry("its mask's RLE does not decode (a number out of range)")
    values = np.add.reduceat((codes & 0x1F) << (5 * position), starts)
    negative = (codes[ends] & 0x10) != 0  # sign bit of the last 5-bit group
    values = np.where(negative, values - (1 << (5 * (ends - starts + 1))), values)
    # counts[i] += counts[i - 2] for i > 2 (delta coding of runs of the same value)
    result = values.copy()
    for parity in (1, 0):
        first = 3 if parity == 1 else 4
        if result.size > first:
            result[first - 2::2] = np.cumsum(values[first - 2::2])
    return result


def _check_mask(mask: Any, width: int, height: int) -> dict[str, Any]:
    """The object's mask as compressed RLE ``{"size", "counts": str}``, checked against the frame size."""
    if mask is None:
        raise DamagedEntry("it has no mask")
    if not isinstance(mask, dict) or "size" not in mask or "counts" not in mask:
        raise DamagedEntry("its mask is not an RLE {size, counts}")
    size = mask["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise DamagedEntry(f"its mask size {size!r} is not [height, width]")
    if size != [height, width]:
        raise DamagedEntry(f"its mask is {size[1]}x{size[0]} but the source is {width}x{height}")
    counts = mask["counts"]
    if isinstance(counts, list):  # uncompressed RLE (hand-written): check, then compress
        if not all(isinstance(v, int) and v >= 0 for v in counts) or sum(counts) != width * height:
            raise DamagedEntry(f"its mask's run lengths do not add up to {width}x{height} pixels")
        coded = mask_utils.frPyObjects({"size": size, "counts": counts}, height, width)
        return {"size": size, "counts": coded["counts"].decode("ascii")}
    if not isinstance(counts, str):
        raise DamagedEntry("its mask's counts are neither an RLE string nor a list of run lengths")
    runs = rle_counts(counts)
    # pycocotools writes a first run of 0 or more and every later run of 1 or more
    if (runs[:1] < 0).any() or (runs[1:] <= 0).any():
        raise DamagedEntry("its mask's RLE does not decode (a run of zero or negative length)")
    if int(runs.sum()) != width * height:
        raise DamagedEntry(f"its mask's RLE does not decode to {width}x{height} pixels")
    return {"size": size, "counts": counts}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_object(o: Any, width: int, height: int, seen: set[int]) -> TrackedObject:
    if not isinstance(o, dict):
        raise DamagedEntry("the entry is not an object {id, label, box, mask}")
    track_id = o.get("id")
    if not isinstance(track_id, int) or isinstance(track_id, bool) or track_id < 0:
        raise DamagedEntry(f"its id {track_id!r} is not a whole number")
    if track_id in seen:
        raise DamagedEntry("the id appears twice on the frame")
    seen.add(track_id)
    label = o.get("label")
    if not isinstance(label, str) or not label.strip():
        raise DamagedEntry("it has no label")
    score = o.get("score", 1.0)
    if not _number(score):
        raise DamagedEntry(f"its score {score!r} is not a number")
    box = o.get("box")
    if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
        raise DamagedEntry(f"its box {box!r} is not [x1, y1, x2, y2]")
    if box[0] > box[2] or box[1] > box[3]:
        raise DamagedEntry(f"its box {box!r} has x2 < x1 or y2 < y1")
    rle = _check_mask(o.get("mask"), width, height)
    coded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    area = int(mask_utils.area(coded))  # counted on the RLE, no decoding
    bbox = tuple(int(v) for v in mask_utils.toBbox(coded)) if area else (0, 0, 0, 0)
    return TrackedObject(track_id, label, float(score), tuple(float(v) for v in box), rle, area, bbox)


class TracksFile:
    """A parsed and checked ``tracks.json``; :meth:`load` says what is wrong in one line."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.source: dict[str, Any] = data["source"]
        # The prompt's phrases, and the labels of its exemplars ({"exemplar": {..., "label": ...}}).
        self.prompt: list[str] = [p if isinstance(p, str) else str(p["exemplar"]["label"])
                                  for p in data.get("prompt") or []]
        self.tracks: list[dict[str, Any]] = list(data.get("tracks") or [])
        self.frames = self._check_frames(data["frames"])

    def _check_frames(self, frames: Any) -> list[FrameRecord]:
        width, height = self.width, self.height
        if not isinstance(frames, list):
            raise DamagedEntry("'frames' is not a list")
        records, last = [], -1
        for position, f in enumerate(frames):
            where = f"frame entry {position}"
            if not isinstance(f, dict) or not isinstance(f.get("frame"), int) or isinstance(f.get("frame"), bool):
                raise DamagedEntry(f"{where}: it has no frame number")
            index = f["frame"]
            where = f"frame {index}"
            if index <= last:
                raise DamagedEntry(f"{where}: frame numbers must increase (it follows frame {last})")
            last = index
            objects = f.get("objects")
            if not isinstance(objects, list):
                raise DamagedEntry(f"{where}: it has no 'objects' list")
            seen: set[int] = set()
            checked = []
            for k, o in enumerate(objects):
                try:
                    checked.append(_check_object(o, width, height, seen))
                except DamagedEntry as exc:
                    name = o.get("id") if isinstance(o, dict) and isinstance(o.get("id"), int) else f"#{k}"
                    raise DamagedEntry(f"{where}, object {name}: {exc}") from None
            records.append(FrameRecord(index, bool(f.get("keyframe", False)), checked))
        return records

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
        source = data.get("source")
        if not (isinstance(source, dict) and all(isinstance(source.get(k), int) and source[k] > 0
                                                 for k in ("width", "height"))):
            raise InputError(f"{path}: 'source' has no width and height: fix it, or re-run track-video")
        if "frames" not in data:
            raise InputError(f"{path}: it has no 'frames': fix it, or re-run track-video")
        try:
            return cls(path, data)
        except DamagedEntry as exc:
            raise InputError(f"{path}: {exc}: fix or remove that entry, or re-run track-video") from None

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
        for label in [str(t.get("label")) for t in self.tracks if isinstance(t, dict) and t.get("label")] + [
                o.label for f in self.frames for o in f.objects]:
            if label not in names:
                names.append(label)
        return names

    def track_label(self, track_id: int) -> str:
        """The track's final label (``tracks[]``), else its label on its first frame."""
        for track in self.tracks:
            if isinstance(track, dict) and track.get("id") == track_id and track.get("label"):
                return str(track["label"])
        for frame in self.frames:
            for obj in frame.objects:
                if obj.id == track_id:
                    return obj.label
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
