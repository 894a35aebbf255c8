"""YOLO segmentation: ``images/<split>/<stem>_<frame>.jpg``, ``labels/<split>/<stem>_<frame>.txt``, ``data.yaml``.

Each label line is ``class x1 y1 x2 y2 ...``, the object's outline normalised to [0, 1], one line
per object; ``data.yaml`` names the classes (one index per name over the whole dataset) and points
``train``/``val`` at ``images/train`` and ``images/val`` (``val`` at ``images/train`` when no video
is held out: give ``--val 0.2``). Ultralytics trains on it as it is (``yolo segment train
data=dataset/data.yaml``); supervision reads it back with ``sv.DetectionDataset.from_yolo``. YOLO
has no place for track ids.

Outlines run through the centres of the mask's boundary pixels (:mod:`.polygons`), which is what a
rasteriser that draws the outline (``cv2.fillPoly``: Ultralytics, supervision) turns back into the
mask. Each point is written a quarter pixel past the pixel's corner, so that readers that cut the
coordinate to a whole pixel (Ultralytics: ``int32``) and readers that round it (supervision) land on
the same pixel. Pieces of a mask are joined into one polygon by the shortest seams; those readers
draw a seam as a line across its gap, so a mask in two pieces gains that gap's pixels.

Why not ``sv.DetectionDataset.as_yolo``: it writes one line per connected piece of a mask, so an
object whose mask is in two pieces would come back as two objects; it would also need every
frame's masks in memory. Each line is formatted by supervision's ``object_to_yolo``.

Example:
    >>> export_tracks("out/clip.tracks.json", "yolo-seg", "dataset")   # doctest: +SKIP
    >>> sv.DetectionDataset.from_yolo("dataset/images/train", "dataset/labels/train", "dataset/data.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
import yaml
from supervision.dataset.formats.yolo import object_to_yolo
from tqdm.auto import tqdm

from .base import Exporter
from .dataset import Dataset
from .polygons import mask_to_polygon
from .staging import Staging

NUDGE = 0.25  # pixels past the corner: int() and round() of the coordinate both give the pixel


class YoloSegExporter(Exporter):
    name = "yolo-seg"
    about = "YOLO segmentation: images/<split>/ + labels/<split>/ (one polygon line per object) + data.yaml"
    images = "images/{split}/{stem}_{frame:06d}.jpg"
    index = "data.yaml"

    def write(self, dataset: Dataset, stage: Staging) -> None:
        videos = [v for v in dataset.videos if v.fresh or v.wanted]  # labels of the others are in place
        for frame, video in tqdm([(f, v) for v in videos for f in v.frames], desc="tracing polygons", unit="frame",
                                 disable=not self.progress):
            shape = (video.tracks.height, video.tracks.width)
            lines = []
            for obj in frame.objects:
                polygon = mask_to_polygon(obj.mask(), outline="centres") + NUDGE
                if len(polygon) < 3:  # a 1- or 2-pixel object: 3 points, or readers take the line for a box
                    polygon = np.concatenate([polygon, np.repeat(polygon[-1:], 3 - len(polygon), axis=0)])
                lines.append(object_to_yolo(np.array(obj.extent, float), dataset.category_id(obj.label) - 1, shape,
                                            polygon=polygon))
            image = PurePosixPath(video.images[frame.index])
            label = PurePosixPath("labels", *image.parts[1:]).with_suffix(".txt")
            stage.path(str(label)).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        splits = dataset.splits
        data = {"train": "images/train", "val": "images/val" if "val" in splits else "images/train",
                "nc": len(dataset.categories), "names": dataset.categories}
        stage.path(self.index).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
