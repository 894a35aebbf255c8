"""CVAT for video 1.1: ``annotations.xml`` with one ``<track>`` per track id (one video per file).

Each track holds a ``<polygon>`` on every exported frame where the object is: its mask's outline
along the pixels' edges (:mod:`.polygons`: CVAT's coordinates are continuous, so the outline's
extent is the mask's exact box), pieces and holes joined by zero-width seams. CVAT interpolates a
track from one keyframe to the next and carries its last shape on to the end of the task, so every
track ends with an ``outside="1"`` shape on the frame after its last one in the JSON (with
``--every N`` too, not on the next exported frame): in a gap, after it ends, and after the last
frame of a run cut short, when the source video has that frame. Every
shape is a keyframe (``keyframe="1"``: each is the tracked mask on that frame, not an
interpolation); CVAT writes ``keyframe="0"`` only for the in-between shapes it interpolated itself,
which a file it reads need not hold.

Frame numbers are the source video's: create the CVAT task from the same video (all frames), then
Actions > Upload annotations > "CVAT for video 1.1". With ``--every N`` CVAT interpolates between
the exported shapes. No maintained library writes this format, so it is written here (``xml.etree``).

Example:
    >>> export_tracks("out/clip.tracks.json", "cvat-video", "cvat")   # doctest: +SKIP
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from tqdm.auto import tqdm

from ..errors import PromptrackError
from ..sources import open_source
from .base import Exporter
from .dataset import Dataset, Video
from .polygons import mask_to_polygon
from .staging import Staging
from .tracks_file import TrackedObject


def _points(obj: TrackedObject) -> str:
    return ";".join(f"{x:.1f},{y:.1f}" for x, y in mask_to_polygon(obj.mask(), outline="edges"))


def _text(parent: ET.Element, tag: str, text: object) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = str(text)
    return element


def source_length(video: Video) -> int | None:
    """Frames in the source video (None when it cannot be found or does not say)."""
    try:
        return open_source(video.tracks.source_video(video.source_hint)).info.frames  # metadata only, nothing decoded
    except (PromptrackError, OSError):
        return None


class CvatVideoExporter(Exporter):
    name = "cvat-video"
    about = "CVAT for video 1.1 XML: one track per id, a polygon per frame, outside after each track's end"
    index = "annotations.xml"
    merges = False

    def write(self, dataset: Dataset, stage: Staging) -> None:
        (video,) = dataset.videos
        tracks, frames = video.tracks, video.frames
        length = source_length(video)
        last = tracks.frames[-1].index if tracks.frames else 0
        stop = length - 1 if length else last
        root = ET.Element("annotations")
        _text(root, "version", "1.1")
        meta = ET.SubElement(root, "meta")
        task = ET.SubElement(meta, "task")
        for tag, value in (("name", tracks.stem), ("size", stop + 1), ("mode", "interpolation"),
                           ("overlap", 0), ("start_frame", 0), ("stop_frame", stop)):
            _text(task, tag, value)
        labels = ET.SubElement(task, "labels")
        for name in dataset.categories:
            label = ET.SubElement(labels, "label")
            _text(label, "name", name)
            _text(label, "type", "polygon")
            ET.SubElement(label, "attributes")
        size = ET.SubElement(task, "original_size")
        _text(size, "width", tracks.width)
        _text(size, "height", tracks.height)
        _text(meta, "dumped", datetime.now(timezone.utc).isoformat(timespec="seconds"))

        # Where each track is, on every frame of the JSON (not only the exported ones): with --every N
        # a track ends on the frame after its true last one, not on the next exported frame.
        every_frame = tracks.select(every=1, min_area=dataset.options.min_area)
        order = [f.index for f in every_frame]
        position = {index: k for k, index in enumerate(order)}
        present = {index: {o.id for o in f.objects} for index, f in zip(order, every_frame)}

        def gone_after(track_id: int, seen: int, until: int | None) -> int:
            """The frame after the last one of the track's run of presence from frame ``seen``."""
            k = position[seen]
            while k + 1 < len(order) and (until is None or order[k + 1] < until) and track_id in present[order[k + 1]]:
                k += 1
            return order[k] + 1

        elements: dict[int, ET.Element] = {}  # track id -> <track>, made on its first frame
        shown: dict[int, tuple[int, str]] = {}  # track id -> (frame, points) of its last visible shape, while visible
        for frame in tqdm(frames, desc="tracing polygons", unit="frame", disable=not self.progress):
            here = {obj.id: obj for obj in frame.objects}
            for track_id in [i for i in shown if i not in here]:  # gone: outside on the frame after its last one
                seen, points = shown.pop(track_id)
                self._shape(elements[track_id], gone_after(track_id, seen, frame.index), points, outside=True)
            for track_id, obj in here.items():
                if track_id not in elements:
                    elements[track_id] = ET.SubElement(root, "track", id=str(track_id),
                                                       label=tracks.track_label(track_id), source="auto")
                shown[track_id] = (frame.index, _points(obj))
                self._shape(elements[track_id], frame.index, shown[track_id][1], outside=False)
        for track_id, (seen, points) in shown.items():  # visible at the end of the export (a run cut short)
            end = gone_after(track_id, seen, None)
            if end <= stop:  # only where the video has that frame
                self._shape(elements[track_id], end, points, outside=True)
        ET.indent(root, space="  ")
        ET.ElementTree(root).write(stage.path(self.index), encoding="utf-8", xml_declaration=True)

    @staticmethod
    def _shape(track: ET.Element, frame: int, points: str, outside: bool) -> None:
        ET.SubElement(track, "polygon", frame=str(frame), keyframe="1", outside="1" if outside else "0",
                      occluded="0", points=points, z_order="0")
