"""MOTChallenge text: tracker results (``mot``) and ground truth (``mot-gt``), one sequence per video.

- ``mot``: ``<stem>.txt`` with ``frame,id,x,y,w,h,score,-1,-1,-1``, the lines ``track-video --mot``
  writes during a run, for the exported frames and objects: what TrackEval and py-motmetrics read
  as a tracker's results (TrackEval: ``TRACKERS_FOLDER/<tracker>/data/<seq>.txt``).
- ``mot-gt``: the MOTChallenge ground-truth layout, ``<stem>/gt/gt.txt`` with
  ``frame,id,x,y,w,h,1,1,1`` (considered, class 1, fully visible), ``<stem>/seqinfo.ini`` (name,
  frame rate, length, size) and ``seqmaps/<split>.txt`` listing the sequences; TrackEval reads it
  as ground truth with ``GT_FOLDER=DATASET SKIP_SPLIT_FOL=True SEQMAP_FILE=DATASET/seqmaps/train.txt``.
  Pictures (``img1/``) are not written: evaluation does not read them.

Frames are numbered as MOTChallenge does, from 1: MOT frame ``n`` is source frame ``n - 1`` (the
JSON's ``frame`` plus one), in both files and whatever ``--start`` the run had, so a run from
``--start 100`` begins at MOT frame 101 (``seqLength`` covers it). Boxes are the masks' exact
extents. Labels and masks are not part of the format; every object is class 1.

Example:
    >>> export_tracks("out/clip.tracks.json", "mot-gt", "gt")   # doctest: +SKIP
    >>> export_tracks("out/clip.tracks.json", "mot", "results/promptrack/data")   # doctest: +SKIP
"""

from __future__ import annotations

from .base import Exporter
from .dataset import Dataset, Video
from .staging import Staging


def _lines(video: Video, tail: str | None) -> str:
    rows = []
    for frame in video.frames:
        for obj in frame.objects:
            x, y, w, h = obj.xywh
            end = tail if tail is not None else f"{obj.score:.4f},-1,-1,-1"
            rows.append(f"{frame.index + 1},{obj.id},{x},{y},{w},{h},{end}\n")
    return "".join(rows)


class MotExporter(Exporter):
    name = "mot"
    about = "MOTChallenge results: <stem>.txt, frame,id,x,y,w,h,score,-1,-1,-1 (frame = source frame + 1)"
    index = "{stem}.txt"

    def write(self, dataset: Dataset, stage: Staging) -> None:
        for video in dataset.videos:
            stage.path(self.index.format(stem=video.tracks.stem)).write_text(_lines(video, None), encoding="utf-8")


class MotGtExporter(Exporter):
    name = "mot-gt"
    about = "MOTChallenge ground truth: <stem>/gt/gt.txt (frame,id,x,y,w,h,1,1,1) + <stem>/seqinfo.ini + seqmaps/"
    index = "seqmaps/{split}.txt"

    def write(self, dataset: Dataset, stage: Staging) -> None:
        for video in dataset.videos:
            tracks, stem = video.tracks, video.tracks.stem
            stage.path(f"{stem}/gt/gt.txt").write_text(_lines(video, "1,1,1"), encoding="utf-8")
            last = tracks.frames[-1].index if tracks.frames else 0
            info = {"name": stem, "imDir": "img1", "frameRate": round(tracks.fps, 3), "seqLength": last + 1,
                    "imWidth": tracks.width, "imHeight": tracks.height, "imExt": ".jpg"}
            stage.path(f"{stem}/seqinfo.ini").write_text(
                "[Sequence]\n" + "".join(f"{k}={v}\n" for k, v in info.items()), encoding="utf-8")
        for split in dataset.splits:
            names = "".join(f"{v.tracks.stem}\n" for v in dataset.in_split(split))
            stage.path(self.index.format(split=split)).write_text("name\n" + names, encoding="utf-8")
