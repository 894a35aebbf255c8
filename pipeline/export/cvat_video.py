"""CVAT for video 1.1: ``annotations.xml`` with one ``<track>`` per track id.

Each track holds a ``<polygon>`` on every exported frame where the object is (its mask traced as
one polygon, :mod:`.polygons`), and an ``outside="1"`` polygon on the first exported frame where
it is gone: after its last frame, or in a gap (CVAT would otherwise carry the shape on). Frame
numbers are the source video's: create the CVAT task from the same video (all frames), then
Actions > Upload annotations > "CVAT for video 1.1". With ``--every N`` every exported shape is a
keyframe and CVAT interpolates between them. No maintained library writes this format, so it is
written here (``xml.etree``).

Example:
    >>> export_tracks("out/clip.tracks.json", "cvat-video", "cvat")   # doctest: +SKIP
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import numpy as np
from tqdm.auto import tqdm

from .base import Exporter
from .polygons import mask_to_polygon
from .staging import Staging
from .tracks_file import FrameRecord, TracksFile, TrackedObject


def _points(obj: TrackedObject) -> str:
    polygon = mask_to_polygon(obj.mask())
    if polygon is None:  # a sliver too thin to trace: its box is the outline
        x1, y1, x2, y2 = obj.box
        polygon = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    return ";".join(f"{x:.2f},{y:.2f}" for x, y in polygon)


def _text(parent: ET.Element, tag: str, text: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = str(text)
    return element


class CvatVideoExporter(Exporter):
    name = "cvat-video"
    about = "CVAT for video 1.1 XML: one track per id, a polygon per frame, outside where absent"
    index = "annotations.xml"

    def write(self, tracks: TracksFile, frames: list[FrameRecord], images: dict[int, str], stage: Staging) -> None:
        root = ET.Element("annotations")
        _text(root, "version", "1.1")
        task = ET.SubElement(ET.SubElement(root, "meta"), "task")
        first, last = (tracks.frames[0].index, tracks.frames[-1].index) if tracks.frames else (0, 0)
        for tag, value in (("name", tracks.stem), ("size", last - first + 1), ("mode", "interpolation"),
                           ("overlap", 0), ("start_frame", first), ("stop_frame", last)):
            _text(task, tag, value)
        labels = ET.SubElement(task, "labels")
        for name in tracks.categories:
            label = ET.SubElement(labels, "label")
            _text(label, "name", name)
            _text(label, "type", "polygon")
            ET.SubElement(label, "attributes")
        size = ET.SubElement(task, "original_size")
        _text(size, "width", tracks.width)
        _text(size, "height", tracks.height)
        _text(root.find("meta"), "dumped", datetime.now(timezone.utc).isoformat(timespec="seconds"))

        elements: dict[int, ET.Element] = {}  # track id -> <track>, made on its first frame
        shown: dict[int, str] = {}  # track id -> points of its last visible shape, while visible
        for frame in tqdm(frames, desc="tracing polygons", unit="frame", disable=not self.progress):
            here = {obj.id: obj for obj in frame.objects}
            for track_id in [i for i in shown if i not in here]:  # gone: mark it outside on this frame
                self._shape(elements[track_id], frame.index, shown.pop(track_id), outside=True)
            for track_id, obj in here.items():
                if track_id not in elements:
                    elements[track_id] = ET.SubElement(root, "track", id=str(track_id),
                                                       label=tracks.track_label(track_id), source="auto")
                shown[track_id] = _points(obj)
                self._shape(elements[track_id], frame.index, shown[track_id], outside=False)
        ET.indent(root, space="  ")
        ET.ElementTree(root).write(stage.path(self.index), encoding="utf-8", xml_declaration=True)

    @staticmethod
    def _shape(track: ET.Element, frame: int, points: str, outside: bool) -> None:
        ET.SubElement(track, "polygon", frame=str(frame), outside="1" if outside else "0", occluded="0",
                      keyframe="1", points=points, z_order="0")
