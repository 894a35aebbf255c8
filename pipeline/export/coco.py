"""COCO instances: ``images/<stem>_<frame>.jpg`` + ``annotations.json``.

One image per exported frame, one annotation per object: its mask as compressed RLE (copied from
``tracks.json``: exact, nothing re-traced), ``bbox`` ``[x, y, w, h]``, ``area`` (mask pixels),
``iscrowd: 0``, the category (1-based, in prompt order) and the track id in
``attributes.track_id`` (where CVAT's COCO import and export keep it). Images also carry
``frame_index``, their frame number in the source video. pycocotools, supervision
(``sv.DetectionDataset.from_coco``) and CVAT read it.

Why not ``sv.DetectionDataset.as_coco``: it cannot carry a track id (its annotation keys are
fixed), it writes RLE only as ``iscrowd: 1`` (crowd regions, which COCO evaluation ignores) and
re-encodes every mask from a full-size array, and it needs every frame's masks in memory at once.
The categories follow supervision's own (``classes_to_coco_categories``).

Example:
    >>> export_tracks("out/clip.tracks.json", "coco", "dataset")   # doctest: +SKIP
    >>> sv.DetectionDataset.from_coco("dataset/images", "dataset/annotations.json")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from supervision.dataset.formats.coco import classes_to_coco_categories

from .base import Exporter
from .staging import Staging
from .tracks_file import FrameRecord, TracksFile


class CocoExporter(Exporter):
    name = "coco"
    about = "COCO instances: images/ + annotations.json (RLE masks, boxes, attributes.track_id)"
    images = "images/{stem}_{frame:06d}.jpg"
    index = "annotations.json"

    def write(self, tracks: TracksFile, frames: list[FrameRecord], images: dict[int, str], stage: Staging) -> None:
        categories = tracks.categories
        coco_images, annotations = [], []
        for image_id, frame in enumerate(frames, start=1):
            coco_images.append({"id": image_id, "file_name": Path(images[frame.index]).name, "width": tracks.width,
                                "height": tracks.height, "frame_index": frame.index})
            for obj in frame.objects:
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": categories.index(obj.label) + 1,
                    "bbox": obj.xywh, "area": obj.area, "segmentation": obj.rle, "iscrowd": 0,
                    "attributes": {"track_id": obj.id, "occluded": False},
                })
        document = {
            "info": {"description": f"promptrack export of {tracks.path.name}", "video": str(tracks.source.get("uri"))},
            "licenses": [],
            "categories": classes_to_coco_categories(categories),
            "images": coco_images,
            "annotations": annotations,
        }
        with open(stage.path(self.index), "w", encoding="utf-8") as out:
            json.dump(document, out, separators=(",", ":"))
