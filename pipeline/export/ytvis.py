"""YouTube-VIS (and OVIS) video instances: ``JPEGImages/<stem>/<frame>.jpg`` + ``instances_<split>.json``.

One entry in ``videos`` per video (``file_names`` in frame order, ``frame_indices`` their frame
numbers in the source), one annotation per track: ``segmentations``, ``bboxes`` (``[x, y, w, h]``,
the mask's exact extent) and ``areas`` with one entry per video frame, ``null`` where the track is
absent; ``id`` is unique over the dataset and ``track_id`` is the track's id in its video. Masks
are compressed RLE copied from ``tracks.json`` (exact). No maintained library writes this format,
so it is written here; ``ytvos``-style readers (pycocotools RLE) load it, and VIS trainers
(Mask2Former, MinVIS, IDOL) register it as (``JPEGImages``, ``instances_train.json``).

Example:
    >>> export_tracks("out/clip.tracks.json", "ytvis", "dataset")   # doctest: +SKIP
"""

from __future__ import annotations

import json

from supervision.dataset.formats.coco import classes_to_coco_categories

from .base import Exporter
from .dataset import Dataset
from .staging import Staging


class YtvisExporter(Exporter):
    name = "ytvis"
    about = "YouTube-VIS: JPEGImages/<stem>/ + instances_<split>.json (per-frame RLE per track)"
    images = "JPEGImages/{stem}/{frame:05d}.jpg"
    index = "instances_{split}.json"

    def write(self, dataset: Dataset, stage: Staging) -> None:
        annotation_id = 0
        for split in dataset.splits:
            videos, annotations = [], []
            for video in dataset.in_split(split):
                tracks, length = video.tracks, len(video.frames)
                by_track: dict[int, dict] = {}
                for position, frame in enumerate(video.frames):
                    for obj in frame.objects:
                        entry = by_track.get(obj.id)
                        if entry is None:
                            entry = by_track[obj.id] = {
                                "video_id": video.video_id, "track_id": obj.id,
                                "category_id": dataset.category_id(tracks.track_label(obj.id)), "iscrowd": 0,
                                "width": tracks.width, "height": tracks.height, "length": 0,
                                "segmentations": [None] * length, "bboxes": [None] * length, "areas": [None] * length,
                            }
                        entry["segmentations"][position] = obj.rle
                        entry["bboxes"][position] = obj.xywh
                        entry["areas"][position] = obj.area
                        entry["length"] += 1
                for track_id in sorted(by_track):
                    annotation_id += 1
                    annotations.append({"id": annotation_id, **by_track[track_id]})
                videos.append({"id": video.video_id, "name": tracks.stem, "width": tracks.width,
                               "height": tracks.height, "length": length,
                               "file_names": [video.images[f.index].split("/", 1)[1] for f in video.frames],
                               "frame_indices": [f.index for f in video.frames]})
            document = {"info": {"description": "promptrack export"}, "licenses": [], "videos": videos,
                        "categories": classes_to_coco_categories(dataset.categories), "annotations": annotations}
            with open(stage.path(self.index.format(split=split)), "w", encoding="utf-8") as out:
                json.dump(document, out, separators=(",", ":"))
