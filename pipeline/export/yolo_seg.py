"""YOLO segmentation: ``images/<stem>_<frame>.jpg``, ``labels/<stem>_<frame>.txt``, ``data.yaml``.

Each label line is ``class x1 y1 x2 y2 ...``, the object's outline normalised to [0, 1], one line
per object; ``data.yaml`` names the classes (prompt order) and points ``train``/``val`` at
``images`` (Ultralytics-style trainers read it; split it before real training). supervision
reads it back with ``sv.DetectionDataset.from_yolo``. YOLO has no place for track ids.

Why not ``sv.DetectionDataset.as_yolo``: it writes one line per connected piece of a mask, so an
object whose mask is in two pieces would come back as two objects; here the pieces are joined
into one polygon (:mod:`.polygons`, built on supervision's own tracing), and each line is
formatted by supervision's ``object_to_yolo``. It would also need every frame's masks in memory.

Example:
    >>> export_tracks("out/clip.tracks.json", "yolo-seg", "dataset")   # doctest: +SKIP
    >>> sv.DetectionDataset.from_yolo("dataset/images", "dataset/labels", "dataset/data.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm
import yaml
from supervision.dataset.formats.yolo import object_to_yolo

from .base import Exporter
from .polygons import mask_to_polygon
from .staging import Staging
from .tracks_file import FrameRecord, TracksFile


class YoloSegExporter(Exporter):
    name = "yolo-seg"
    about = "YOLO segmentation: images/ + labels/ (one polygon line per object) + data.yaml"
    images = "images/{stem}_{frame:06d}.jpg"
    index = "data.yaml"

    def write(self, tracks: TracksFile, frames: list[FrameRecord], images: dict[int, str], stage: Staging) -> None:
        categories = tracks.categories
        shape = (tracks.height, tracks.width)
        for frame in tqdm(frames, desc="tracing polygons", unit="frame", disable=not self.progress):
            lines = []
            for obj in frame.objects:
                polygon = mask_to_polygon(obj.mask())
                if polygon is None:  # a sliver too thin to trace: its box is the outline
                    x1, y1, x2, y2 = obj.box
                    polygon = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
                lines.append(object_to_yolo(np.array(obj.box), categories.index(obj.label), shape, polygon=polygon))
            label = Path(images[frame.index]).with_suffix(".txt").name
            stage.path(f"labels/{label}").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        data = {"train": "images", "val": "images", "nc": len(categories), "names": categories}
        stage.path(self.index).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
