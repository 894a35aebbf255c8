"""YouTube-VIS (and OVIS) video instances: ``JPEGImages/<stem>/<frame>.jpg`` + ``instances.json``.

One video (``file_names`` in frame order, ``frame_indices`` their frame numbers in the source),
one annotation per track: ``segmentations``, ``bboxes`` (``[x, y, w, h]``) and ``areas`` with one
entry per video frame, ``null`` where the track is absent; the annotation ``id`` is the track
id. Masks are compressed RLE copied from ``tracks.json`` (exact). No maintained library writes
this format, so it is written here; ``ytvos``-style readers (pycocotools RLE) load it.

Example:
    >>> export_tracks("out/clip.tracks.json", "ytvis", "dataset")   # doctest: +SKIP
"""

from __future__ import annotations

import json

from supervision.dataset.formats.coco import classes_to_coco_categories

from .base import Exporter
from .staging import Staging
from .tracks_file import FrameRecord, TracksFile


class YtvisExporter(Exporter):
    name = "ytvis"
    about = "YouTube-VIS: JPEGImages/<stem>/ + instances.json (per-frame RLE per track)"
    images = "JPEGImages/{stem}/{frame:05d}.jpg"
    index = "instances.json"

    def write(self, tracks: TracksFile, frames: list[FrameRecord], images: dict[int, str], stage: Staging) -> None:
        categories = tracks.categories
        length = len(frames)
        by_track: dict[int, dict] = {}
        for position, frame in enumerate(frames):
            for obj in frame.objects:
                entry = by_track.get(obj.id)
                if entry is None:
                    label = tracks.track_label(obj.id)
                    entry = by_track[obj.id] = {
                        "id": obj.id, "video_id": 1, "category_id": categories.index(label) + 1, "iscrowd": 0,
                        "width": tracks.width, "height": tracks.height, "length": 1,
                        "segmentations": [None] * length, "bboxes": [None] * length, "areas": [None] * length,
                    }
                entry["segmentations"][position] = obj.rle
                entry["bboxes"][position] = obj.xywh
                entry["areas"][position] = obj.area
        video = {"id": 1, "name": tracks.stem, "width": tracks.width, "height": tracks.height, "length": length,
                 "file_names": [images[f.index].split("/", 1)[1] for f in frames],
                 "frame_indices": [f.index for f in frames]}
        document = {"info": {"description": f"promptrack export of {tracks.path.name}"}, "licenses": [],
                    "videos": [video], "categories": classes_to_coco_categories(categories),
                    "annotations": [by_track[i] for i in sorted(by_track)]}
        with open(stage.path(self.index), "w", encoding="utf-8") as out:
            json.dump(document, out, separators=(",", ":"))
