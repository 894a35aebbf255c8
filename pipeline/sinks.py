"""Sinks: where finished frames go. Each sees only finished frames: ``write(index, frame,
detections)`` then ``close()``. ``close`` is safe to call after an interruption: what was
written up to then stays valid (a playable video, a JSON that parses).

Detections carry ``tracker_id``, ``mask``, ``xyxy``, ``confidence``, ``data["class_name"]``,
``metadata["keyframe"]`` and ``metadata["time"]`` (seconds, the source's presentation time). A
frame's masks are RLE-encoded once (:func:`frame_rles`, cached in ``data["rle"]``) and shared by
every sink that writes RLE; the frame loop's writer stage encodes them before the sinks run.

Example:
    >>> sink = JsonSink("out/clip.tracks.json", info, prompt=["car"], models={}, config={})  # doctest: +SKIP
    >>> sink.write(0, frame, detections); sink.close()                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import supervision as sv

from ..trackers.tracks import LabelVotes
from .annotate import FrameAnnotator
from .codecs import SOFTWARE_ENCODER, VideoEncoder, encoder_options
from .errors import CodecError, OutputError, display_path
from .rle import decode_mask
from .safe_files import FULL_DISK_ERRNOS as _FULL, SafeFile, output_error, remove_stale_side_files
from .sources import SourceInfo

SCHEMA = "promptrack.tracks/1"
RLE_KEY = "rle"  # Detections.data key of the masks' COCO RLEs, encoded once a frame


def frame_rles(detections: sv.Detections) -> list[dict]:
    """COCO RLE of each mask (``{"size", "counts"}``), encoded once in one pycocotools call and
    cached in ``detections.data["rle"]`` for every later sink."""
    if detections.mask is None or not len(detections):
        return []
    cached = detections.data.get(RLE_KEY)
    if cached is not None and len(cached) == len(detections):
        return list(cached)
    from pycocotools import mask as mask_utils

    coded = mask_utils.encode(np.asfortranarray(detections.mask.transpose(1, 2, 0).astype(np.uint8)))
    rles = [{"size": [int(x) for x in r["size"]], "counts": r["counts"].decode("ascii")} for r in coded]
    store = np.empty(len(rles), dtype=object)
    store[:] = rles
    detections.data[RLE_KEY] = store
    return rles


class Sink(Protocol):
    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None: ...

    def close(self) -> None: ...


def _labels(detections: sv.Detections) -> list[str]:
    names = detections.data.get("class_name") if detections.data else None
    return [str(n) for n in names] if names is not None else [""] * len(detections)


def _scores(detections: sv.Detections) -> np.ndarray:
    return detections.confidence if detections.confidence is not None else np.zeros(len(detections))


class AnnotatedVideoSink:
    """H.264 video (PyAV) of the frames with masks, boxes and ``#id label`` drawn.

    The encoder is `encoder` (:func:`~promptrack.pipeline.codecs.pick_encoder`: NVENC or libx264),
    by default libx264 at `crf`. The colour of an object is fixed by its id. Odd frame sizes are
    padded by one pixel (H.264 in yuv420p needs even sizes). The video is written under a unique
    side name and takes its final name in ``close()`` only, so a killed run never destroys an
    earlier complete video.
    """

    _FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

    def __init__(self, path: str | Path, fps: float, width: int, height: int, crf: int = 20,
                 mask_opacity: float = 0.45, encoder: VideoEncoder | None = None) -> None:
        import av

        encoder = encoder or VideoEncoder(SOFTWARE_ENCODER, encoder_options(SOFTWARE_ENCODER, crf))
        self.encoder = encoder

        self.path = Path(path)
        self.size = (height, width)
        remove_stale_side_files(self.path.parent, self.path.name)
        self.output = SafeFile(self.path, "w+b")
        try:
            # The muxer writes into the file we created exclusively: no path is opened twice.
            muxer = self._FORMATS.get(self.path.suffix.lower(), "mp4")
            self.container = av.open(self.output.file, mode="w", format=muxer)
        except (OSError, av.FFmpegError) as exc:
            self.output.discard()
            raise OutputError(f"cannot write {display_path(self.path)}: {exc}") from None
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream(encoder.codec, rate=rate)
        self.stream.width = width + width % 2
        self.stream.height = height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = dict(encoder.options)
        self.stream.codec_context.time_base = 1 / rate
        if encoder.hardware:
            self._open_hardware()
        self._pts = 0
        self.annotator = FrameAnnotator(mask_opacity)
        self._closed = False

    def _open_hardware(self) -> None:
        """Open a GPU encoder now, not at the first frame: it can still fail here (no free NVENC
        session, a busy or lost GPU), and that is one line before any work is done."""
        import av

        try:
            self.container.start_encoding()
        except (OSError, av.FFmpegError) as exc:
            self.discard()
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise CodecError(f"cannot open the {self.encoder.codec} encoder for {display_path(self.path)} "
                             f"({reason}): set output.video_encoder=libx264 to encode on the CPU") from None

    def annotate(self, frame: np.ndarray, detections: sv.Detections) -> np.ndarray:
        """The frame (RGB) with detections drawn, in BGR as the encoder takes it."""
        return self.annotator.annotate(frame, detections)

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        import av

        image = self.annotate(frame, detections)
        if image.shape[:2] != (self.stream.height, self.stream.width):
            image = np.pad(image, ((0, self.stream.height - image.shape[0]), (0, self.stream.width - image.shape[1]),
                                   (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        video_frame.pts = self._pts
        self._pts += 1
        try:
            for packet in self.stream.encode(video_frame):
                self.container.mux(packet)
        except OSError as exc:  # a full disk while writing: one line, as at close (the run drops its files)
            if exc.errno in _FULL:
                raise output_error(self.path, exc) from None
            raise

    def close(self) -> None:
        """Finish the video (playable up to the last frame written) and give it its final name."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
        except BaseException as exc:  # a full disk: the side file goes, an earlier video stays
            self.output.discard()
            if isinstance(exc, OSError) and exc.errno in _FULL:
                raise output_error(self.path, exc) from None
            if isinstance(exc, Exception):  # the muxer broke on an earlier failed write
                reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                raise OutputError(f"cannot finish {display_path(self.path)}: {reason}") from None
            raise
        self.output.commit()

    def discard(self) -> None:
        """Drop the unfinished video (the final name keeps what it had)."""
        self._closed = True
        try:
            self.container.close()
        except Exception:  # the muxer may already be broken (full disk); the side file goes anyway
            pass
        self.output.discard()


class TrackTable:
    """Per-id summary of the frames written: first/last frame, label (score-weighted votes of
    the per-frame labels, :class:`~promptrack.trackers.tracks.LabelVotes`) and mean score.

    A sink of its own, so the table does not depend on which other outputs a run keeps.
    """

    def __init__(self) -> None:
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.ballots: dict[int, LabelVotes] = {}
        self.score_sum: dict[int, float] = {}

    def add(self, index: int, track_id: int, label: str, score: float) -> None:
        self.first.setdefault(track_id, index)
        self.last[track_id] = index
        self.ballots.setdefault(track_id, LabelVotes()).add(label, max(score, 1e-6))
        self.score_sum[track_id] = self.score_sum.get(track_id, 0.0) + score

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        ids = detections.tracker_id if detections.tracker_id is not None else []
        for track_id, label, score in zip(ids, _labels(detections), _scores(detections)):
            self.add(index, int(track_id), label, float(score))

    def close(self) -> None:
        pass

    def label(self, track_id: int) -> str:
        return self.ballots[track_id].label

    def table(self) -> list[dict[str, Any]]:
        return [
            {"id": i, "label": self.label(i), "score": round(self.score_sum[i] / self.ballots[i].count, 4),
             "first_frame": self.first[i], "last_frame": self.last[i]}
            for i in sorted(self.first)
        ]


def frame_record(index: int, fps: float, detections: sv.Detections) -> dict[str, Any]:
    """One frame of the JSON schema: objects with id, label, score, box and RLE mask.

    ``time`` is ``metadata["time"]`` (the source's presentation time) when the loop set it, else
    ``index / fps``."""
    objects = []
    ids = detections.tracker_id if detections.tracker_id is not None else np.zeros(len(detections), int)
    rles = frame_rles(detections)
    for k, (track_id, label, score) in enumerate(zip(ids, _labels(detections), _scores(detections))):
        obj = {"id": int(track_id), "label": label, "score": round(float(score), 4),
               "box": [round(float(v), 2) for v in detections.xyxy[k]]}
        if rles:
            obj["mask"] = rles[k]
        objects.append(obj)
    metadata = detections.metadata or {}
    time = metadata.get("time")
    if time is None:
        time = index / fps if fps else 0.0
    return {"frame": int(index), "time": round(float(time), 4), "keyframe": bool(metadata.get("keyframe", False)),
            "objects": objects}


class JsonSink:
    """``<stem>.tracks.json`` (schema ``promptrack.tracks/1``).

    Frames stream to a side file as they come (memory stays flat); ``close()`` writes the final
    JSON atomically, with each object's label set to its track's final (vote-winning) label, so
    ``tracks[].label`` and the per-frame labels agree.
    """

    def __init__(self, path: str | Path, info: SourceInfo, prompt: Sequence[str], models: dict, config: dict) -> None:
        self.path = Path(path)
        self.header = {"schema": SCHEMA,
                       "source": {"uri": display_path(info.uri), "fps": info.fps, "width": info.width,
                                  "height": info.height,
                                  "frames": 0},
                       "prompt": list(prompt), "models": models, "config": config}
        self.fps = info.fps
        self.stats = TrackTable()
        self.frames_written = 0
        remove_stale_side_files(self.path.parent, self.path.name)
        # Frames stream to a unique side file; the final JSON is written beside it in close().
        self._frames = SafeFile(self.path, "w+")
        self.part = self._frames.side
        self._closed = False

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        record = frame_record(index, self.fps, detections)
        for obj in record["objects"]:
            self.stats.add(index, obj["id"], obj["label"], obj["score"])
        line = json.dumps(record, separators=(",", ":")) + "\n"
        try:
            self._frames.file.write(line)
        except OSError as exc:
            self.discard()
            raise output_error(self.path, exc) from None
        self.frames_written += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        header = dict(self.header)
        header["source"] = dict(header["source"], frames=self.frames_written)
        header["tracks"] = self.stats.table()
        final_label = {t["id"]: t["label"] for t in header["tracks"]}
        frames = self._frames.file
        out = None
        try:
            frames.flush()
            frames.seek(0)
            out = SafeFile(self.path, "w")  # the final JSON, complete before it takes its name
            body = json.dumps(header, indent=1)
            out.file.write(body[: body.rstrip().rfind("}")].rstrip() + ',\n "frames": [\n')
            for n, line in enumerate(frames):
                record = json.loads(line)
                for obj in record["objects"]:
                    obj["label"] = final_label.get(obj["id"], obj["label"])
                out.file.write(("" if n == 0 else ",\n") + json.dumps(record, separators=(",", ":")))
            out.file.write("\n ]\n}\n")
            out.commit()
        except OSError as exc:  # a full disk: no half-written JSON under the final name
            raise output_error(self.path, exc) from None
        finally:
            if out is not None:
                out.discard()  # no-op once committed
            self._frames.discard()

    def discard(self) -> None:
        """Drop what was written (the final name keeps what it had)."""
        self._closed = True
        self._frames.discard()


class MotSink:
    """MOTChallenge text: ``frame,id,x,y,w,h,score,-1,-1,-1`` with 1-based frames."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        remove_stale_side_files(self.path.parent, self.path.name)
        self.output = SafeFile(self.path, "w")
        self._file = self.output.file

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        ids = detections.tracker_id if detections.tracker_id is not None else []
        for (x1, y1, x2, y2), track_id, score in zip(detections.xyxy, ids, _scores(detections)):
            self._file.write(f"{index + 1},{int(track_id)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                             f"{float(score):.4f},-1,-1,-1\n")

    def close(self) -> None:
        """Give the file its final name (its lines cover every frame written)."""
        self.output.commit()

    def discard(self) -> None:
        self.output.discard()


class ResultSink:
    """Keeps every frame's detections in memory for Python users, masks RLE-compressed.

    ``frames[i]`` decodes frame i back into ``supervision.Detections`` with full masks.
    """

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.stats = TrackTable()
        self._records: list[tuple[sv.Detections, list[dict]]] = []

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        self.stats.write(index, frame, detections)
        rles = frame_rles(detections)
        data = {k: v for k, v in detections.data.items() if k != RLE_KEY}
        light = sv.Detections(xyxy=detections.xyxy.copy(), confidence=detections.confidence,
                              class_id=detections.class_id, tracker_id=detections.tracker_id,
                              data=data, metadata=dict(detections.metadata or {}))
        self.indices.append(index)
        self._records.append((light, rles))

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, i: int) -> sv.Detections:
        light, rles = self._records[i]
        if not rles:
            return light
        return sv.Detections(xyxy=light.xyxy, mask=np.stack([decode_mask(r) for r in rles]),
                             confidence=light.confidence, class_id=light.class_id, tracker_id=light.tracker_id,
                             data=light.data, metadata=light.metadata)
