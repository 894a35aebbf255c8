"""One batch worker: loads the models once, then tracks video after video into its outputs.

:class:`VideoWorker` is a plain class; ``pipeline/batch/run.py`` runs it as a Ray actor (one per
worker), and it runs in-process as well (tests, debugging). Each video gets a fresh
:class:`TrackingPipeline` (new associator, ids from 1) around the detector and SAM 2 weights
loaded once.

A video's outputs are the sinks a single run opens (:func:`~promptrack.pipeline.outputs.open_sinks`):
each is written under a hidden side name (:mod:`~promptrack.pipeline.safe_files`) and takes its
final name only when every frame is done, the annotated video (and MOT text) first, the JSON last
(:meth:`~promptrack.pipeline.outputs.Outputs.close`). So a ``<stem>.tracks.json`` in place means
the video is complete, and a worker killed mid-video leaves no output that looks finished.

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
from typing import Any

import torch

from ...trackers.base import RestartableTracker

from ..api import _model_names
from .jobs import VideoJob
from ..config import Config
from ..detectors import build_detector
from ..errors import InputError, PromptrackError
from ..loop import TrackingPipeline, build_sam2_tracker, find_weights, pick_device
from ..outputs import open_sinks
from ..quiet import library_output
from ..sources import open_source



def fresh_tracker(pristine: Any) -> Any:
    """A new mask tracker in the state `pristine` is in (never stepped), sharing its weights.

    A tracker that can start over says so (``RestartableTracker.fresh``); any other is copied with
    ``copy.deepcopy``, its torch modules and tensors pre-seeded in the memo, so only the per-video
    state is copied and every video starts clean without reading the weights again.
    """
    if isinstance(pristine, RestartableTracker):
        return pristine.fresh()
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
            find_weights(config)  # every missing model file in one message
            with library_output(progress=False):  # a worker shows no library bars or advisories
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
        stream = open_source(job.source, start=config.start, end=config.end, max_frames=config.max_frames,
                             decoder=config.input.video_decoder)
        expected = len(stream)
        pipeline = TrackingPipeline(config, detector=self.detector, tracker=fresh_tracker(self.pristine))
        outputs = open_sinks(config, self.output_dir, stream.info, job.phrases, _model_names(config), name=job.stem)
        try:
            written = pipeline.run(stream, list(job.phrases), outputs.sinks, progress=False)
            if written != expected:
                raise InputError(f"{job.source}: only {written} of {expected} frames could be read")
        except BaseException:
            outputs.discard()  # nothing of this video takes a final name
            outputs.close()
            raise
        outputs.close()  # video and MOT text in place first, the JSON last
        result["tracks"] = len(outputs.table.table())
        result["frames"] = written
        result["failed_keyframes"] = pipeline.failed_keyframes


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
