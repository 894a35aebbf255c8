"""One batch worker: loads the models once, then tracks video after video into its outputs.

:class:`VideoWorker` is a plain class; ``pipeline/batch.py`` runs it as a Ray actor (one per
worker), and it runs in-process as well (tests, debugging). Each video gets a fresh
:class:`TrackingPipeline` (new associator, ids from 1) around the detector and SAM 2 weights
loaded once.

A video's outputs are written under temporary names (``.<stem>.tracks.partial.json``...) and put
in place only when every frame is done: the annotated video (and MOT text) first, the JSON last.
So a ``<stem>.tracks.json`` in place means the video is complete, and a worker killed mid-video
leaves no output that looks finished.

Example:
    >>> worker = VideoWorker(load_config("fast"), "out")                       # doctest: +SKIP
    >>> worker.track(VideoJob("/data/a.mp4", ("person",), "a"))["status"]       # doctest: +SKIP
    'done'
"""

from __future__ import annotations

import copy
import os
import socket
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .api import _model_names
from .batch_jobs import VideoJob
from .config import Config, config_to_dict
from .detectors import build_detector
from .errors import InputError, PromptrackError
from .loop import TrackingPipeline, build_sam2_tracker, pick_device
from .sinks import AnnotatedVideoSink, JsonSink, MotSink
from .sources import SourceInfo, open_source


def partial_path(path: Path) -> Path:
    """Where an output is written until its video is complete: hidden, same folder, same suffix."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class VideoOutputs:
    """The sinks of one video (annotated video, MOT text, JSON), written under temporary names.

    ``commit()`` puts them in place, JSON last; ``discard()`` removes them.
    """

    def __init__(self, paths: dict[str, Path], info: SourceInfo, phrases: Sequence[str], config: Config) -> None:
        self.paths = paths
        self.partial = {kind: partial_path(path) for kind, path in paths.items()}
        out = config.output
        self.json = JsonSink(self.partial["json"], info, phrases, _model_names(config), config_to_dict(config))
        self.video = (AnnotatedVideoSink(self.partial["video"], info.fps, info.width, info.height, out.crf,
                                         out.mask_opacity) if "video" in paths else None)
        self.mot = MotSink(self.partial["mot"]) if "mot" in paths else None

    @property
    def sinks(self) -> list:
        return [s for s in (self.video, self.mot, self.json) if s is not None]

    def commit(self) -> int:
        """Close and put every output in place, the JSON last; returns the number of tracks."""
        for kind in ("video", "mot", "json"):
            if kind in self.paths:
                {"video": self.video, "mot": self.mot, "json": self.json}[kind].close()
                os.replace(self.partial[kind], self.paths[kind])
        return len(self.json.stats.table())

    def discard(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # a half-written file is removed anyway
                pass
        for path in self.partial.values():
            path.unlink(missing_ok=True)


def fresh_tracker(pristine: Any) -> Any:
    """A new mask tracker in the state `pristine` is in (never stepped), sharing its weights.

    ``copy.deepcopy`` with the tracker's torch modules and tensors pre-seeded in its memo copies
    only the per-video state, so every video starts clean without reading the weights again.
    """
    shared = {id(v): v for v in vars(pristine).values() if isinstance(v, (torch.nn.Module, torch.Tensor))}
    return copy.deepcopy(pristine, shared)


class VideoWorker:
    """Loads the detector and SAM 2 once (in ``__init__``); ``track(job)`` runs one video.

    Loading errors are kept, not raised, so a Ray actor stays up to report them through
    :meth:`ready`, as one line.
    """

    def __init__(self, config: Config, output_dir: str | os.PathLike) -> None:
        self.config = config
        self.output_dir = Path(output_dir)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.device = "?"
        self.error: str | None = None
        try:
            self.device = pick_device(config.device)
            self.detector = build_detector(config.detector, self.device)
            self.pristine = build_sam2_tracker(config, self.device)
        except PromptrackError as exc:
            self.error = str(exc)
        except Exception as exc:  # reported as one line by the driver; the batch cannot start
            self.error = f"cannot load the models: {_one_line(exc)}"

    def ready(self) -> dict[str, Any]:
        """Who this worker is, where it runs, and the loading error (None when it can track)."""
        return {"worker": self.name, "device": self.device, "error": self.error}

    def track(self, job: VideoJob) -> dict[str, Any]:
        """Track one video into its outputs; a failure is returned (status "failed"), never raised."""
        started = time.perf_counter()
        result: dict[str, Any] = {"worker": self.name, "device": self.device, "frames": 0, "tracks": 0,
                                  "failed_keyframes": 0, "error": None}
        try:
            if self.error is not None:
                raise PromptrackError(self.error)
            self._track(job, result)
            result["status"] = "done"
        except PromptrackError as exc:
            result.update(status="failed", error=str(exc))
        except Exception as exc:  # one bad video (a decoder crash, a model error) fails alone
            result.update(status="failed", error=_one_line(exc))
        result["seconds"] = round(time.perf_counter() - started, 3)
        return result

    def _track(self, job: VideoJob, result: dict[str, Any]) -> None:
        config = self.config
        stream = open_source(job.source, start=config.start, end=config.end, max_frames=config.max_frames)
        expected = len(stream)
        pipeline = TrackingPipeline(config, detector=self.detector, tracker=fresh_tracker(self.pristine))
        outputs = VideoOutputs(job.outputs(self.output_dir, config), stream.info, job.phrases, config)
        try:
            written = pipeline.run(stream, list(job.phrases), outputs.sinks, progress=False)
            if written != expected:
                raise InputError(f"{job.source}: only {written} of {expected} frames could be read")
            result["tracks"] = outputs.commit()
        except BaseException:
            outputs.discard()
            raise
        result["frames"] = written
        result["failed_keyframes"] = pipeline.failed_keyframes


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
