"""COCO instances: ``images/<split>/<stem>_<frame>.jpg`` + ``annotations/instances_<split>.json``.

The layout Detectron2, MMDetection and datumaro find by themselves. One image per exported
frame, one annotation per object: ``bbox`` ``[x, y, w, h]`` the mask's exact extent (pycocotools'
``toBbox``: a 1-px object is 1 x 1), ``area`` its pixels, ``iscrowd: 0``, its category (one id per
name over the whole dataset) and its track id in ``attributes.track_id`` (where CVAT's COCO import
keeps it); images carry ``video_id`` and ``frame_index`` (their frame number in the source).

Masks (``--mask-format``):

- ``polygon`` (default): one polygon per piece of the mask along its pixels' edges, holes joined
  to their piece by zero-width seams (COCO readers take the union of an object's polygons, so a
  hole cannot be a polygon of its own). pycocotools rasterises it back to the mask exactly. The
  default because it is what trainers take without settings: Detectron2
  (``INPUT.MASK_FORMAT: polygon``), MMDetection (``poly2mask=False`` ignores RLE objects), and
  Ultralytics' ``convert_coco`` read polygons only.
- ``rle``: compressed RLE copied from ``tracks.json`` (exact, compact, nothing traced), with
  ``iscrowd: 0``; for pycocotools, supervision, MMDetection with ``poly2mask=True`` and Detectron2
  with ``INPUT.MASK_FORMAT: bitmask``.

Why not ``sv.DetectionDataset.as_coco``: it cannot carry a track id (its annotation keys are
fixed), it writes RLE only as ``iscrowd: 1`` (crowd regions, which COCO evaluation ignores) and
needs every frame's masks in memory at once. The categories follow supervision's own
(``classes_to_coco_categories``).

Example:
    >>> export_tracks("out/clip.tracks.json", "coco", "dataset")   # doctest: +SKIP
    >>> COCO("dataset/annotations/instances_train.json")           # doctest: +SKIP
    >>> sv.DetectionDataset.from_coco("dataset/images/train", "dataset/annotations/instances_train.json")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from supervision.dataset.formats.coco import classes_to_coco_categories
from tqdm.auto import tqdm

from .base import Exporter
from .dataset import Dataset
from .polygons import mask_to_polygons
from .staging import Staging
from .tracks_file import TrackedObject


def _segmentation(obj: TrackedObject, mask_format: str) -> list[list[float]] | dict:
    if mask_format == "rle":
        return obj.rle
    return [[round(float(v), 1) for v in polygon.ravel()] for polygon in mask_to_polygons(obj.mask())]


class CocoExporter(Exporter):
    name = "coco"
    about = "COCO instances: images/<split>/ + annotations/instances_<split>.json (polygons or RLE, exact boxes)"
    images = "images/{split}/{stem}_{frame:06d}.jpg"
    index = "annotations/instances_{split}.json"

    def write(self, dataset: Dataset, stage: Staging) -> None:
        image_id = annotation_id = 0
        bar = tqdm(total=sum(len(v.frames) for v in dataset.videos), desc="writing COCO", unit="frame",
                   disable=not self.progress or dataset.options.mask_format != "polygon")
        for split in dataset.splits:
            coco_images, annotations = [], []
            for video in dataset.in_split(split):
                for frame in video.frames:
                    image_id += 1
                    coco_images.append({"id": image_id, "file_name": Path(video.images[frame.index]).name,
                                        "width": video.tracks.width, "height": video.tracks.height,
                                        "video_id": video.video_id, "frame_index": frame.index})
                    for obj in frame.objects:
                        annotation_id += 1
                        annotations.append({
                            "id": annotation_id, "image_id": image_id, "category_id": dataset.category_id(obj.label),
                            "bbox": obj.xywh, "area": obj.area,
                            "segmentation": _segmentation(obj, dataset.options.mask_format), "iscrowd": 0,
                            "attributes": {"track_id": obj.id, "occluded": False},
                        })
                    bar.update()
            document = {
                "info": {"description": "promptrack export",
                         "videos": [{"id": v.video_id, "name": v.tracks.stem, "uri": str(v.tracks.source.get("uri"))}
                                    for v in dataset.in_split(split)]},
                "licenses": [],
                "categories": classes_to_coco_categories(dataset.categories),
                "images": coco_images,
                "annotations": annotations,
            }
            with open(stage.path(self.index.format(split=split)), "w", encoding="utf-8") as out:
                json.dump(document, out, separators=(",", ":"))
        bar.close()
