"""``LiveSession``: track a live stream (RTSP, camera, any URL PyAV opens) from Python or the CLI.

The session is the file pipeline's loop (:meth:`TrackingPipeline.run`) fed by a
:class:`LiveSource`: the same tracker, associator and sinks, with nothing held back
(``tracker.lookback`` is 0) and the newest frame always taken. The tracker and the associator
live as long as the session, so a reconnect is only a pause: ids continue.

Example:
    >>> from promptrack.pipeline import LiveSession
    >>> session = LiveSession("rtsp://127.0.0.1:8554/cam", prompt="person . car", output_dir="out")  # doctest: +SKIP
    >>> for result in session:                                                    # doctest: +SKIP
    ...     print(result.index, result.timestamp, result.detections.tracker_id)
    ...     if result.index == 100:
    ...         session.set_prompt("person . dog")   # new phrases from the next frame; tracks kept
    ...     if result.index == 200:                  # and by example: a box drawn on this frame
    ...         session.set_prompt("person", exemplars=[Exemplar.from_array(result.frame, (40, 60, 120, 150),
    ...                                                                      label="pallet")])
    ...     if result.index == 500:
    ...         session.stop()
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import supervision as sv

from ..api import _model_names, prepare_output_dir
from ..config import Config, config_to_dict, load_config
from ..errors import InputError, mask_password
from ..exemplars import Exemplar, VisualPrompt, prompt_record, resolve
from ..loop import DetectorLike, TrackingPipeline
from ..outputs import Outputs, open_sinks
from ..safe_files import SafeFile
from ..signals import stop_on_signals
from ..prompts import parse_prompt
from ..sinks import SCHEMA
from .capture import LiveCapture, is_live_uri, live_name
from .logs import forward, logger
from .server import MjpegServer
from .source import FrameStamp, LiveSource
from .outputs import LiveLayout
from .stats import LiveStats, StatsReporter


@dataclass
class LiveResult:
    """One processed frame of a live stream."""

    index: int  # processed-frame number: 0, 1, 2, ... (continues across reconnects)
    timestamp: float  # source timestamp in seconds (the stream's clock)
    wall_time: float  # unix time the frame was decoded
    source_index: int  # capture number: a gap between two results is frames dropped
    latency: float  # seconds from decoding to the results being written
    frame: np.ndarray  # the RGB frame
    detections: sv.Detections  # masks, boxes, tracker_id, class_name, confidence

    @property
    def keyframe(self) -> bool:
        return bool(self.detections.metadata.get("keyframe", False))


class _Tail:
    """The last sink: latency into the stats, and the result to a Python consumer (if any)."""

    def __init__(self, stats: LiveStats, stamps, results: queue.Queue | None, stop: threading.Event) -> None:
        self.stats, self.stamps, self.results, self.stop = stats, stamps, results, stop

    def write(self, index: int, frame: np.ndarray, detections: sv.Detections) -> None:
        stamp: FrameStamp = self.stamps[index]
        latency = time.monotonic() - stamp.mono
        self.stats.processed(latency, objects=len(detections))
        if self.results is None:
            return
        result = LiveResult(index, stamp.time, stamp.wall, stamp.seq, latency, frame, detections)
        while not self.stop.is_set():  # a slow consumer slows the loop; the capture drops the difference
            try:
                self.results.put(result, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        pass


_END = object()


class LiveSession:
    """Track objects matching a text prompt in a live stream, with persistent ids.

    Args:
        url: ``rtsp://...``, ``rtmp://...``, ``http(s)://...``, ``udp://...``, ``camera:0`` (``/dev/video0``).
        prompt: "person . car", "person, car" or a list of phrases (None or "" with exemplars only).
        output_dir: where ``<name>.tracks.jsonl``, ``<name>.NNN.mp4`` segments (and ``.mot.txt``) go;
            None writes no files.
        config: a :class:`Config`, a preset name or a YAML path (default: the ``live`` preset).
        overrides: dotted ``key=value`` strings, e.g. ``["live.view_port=8765"]``.
        detector, tracker: as for :class:`TrackingPipeline` (built from the config when None).
        log: where status lines go (default: stderr); they are ``promptrack.live`` log records.
        log_level: the least level shown (``logging.WARNING``: drops, reconnects and errors only).
        exemplars: prompts by example with their pixels (``Exemplar.from_image``, ``Exemplar.from_array``):
            a live stream cannot go back to a frame number.
        options: config values by dotted name with ``__``, e.g. ``live__segment_seconds=30``.

    Iterate for :class:`LiveResult` objects (the loop runs in a thread; breaking out stops it), or
    call :meth:`run` to block until :meth:`stop`, SIGINT/SIGTERM or ``max_frames``.
    """

    def __init__(self, url: str, prompt: str | Sequence[str] | None, output_dir: str | os.PathLike | None = None,
                 config: Config | str | None = None, overrides: Sequence[str] = (),
                 detector: DetectorLike | None = None, tracker: Any = None,
                 log: Callable[[str], None] | None = None, log_level: int = logging.INFO,
                 exemplars: Sequence[Exemplar] = (), **options: Any) -> None:
        self.url = str(url)
        if not is_live_uri(self.url):
            raise InputError(f"{mask_password(self.url)} is not a live source (rtsp://..., camera:0, ...): "
                             f"track files with track_video()")
        self.exemplars: list[Exemplar] = list(exemplars)  # replaced by set_prompt, as are the phrases
        self.phrases: list[str] = list(parse_prompt(prompt)) if prompt or not self.exemplars else []
        if not isinstance(config, Config):
            config = load_config(config or "live", overrides, **options)
        elif overrides or options:
            raise ValueError("pass overrides with a preset name, not with a Config object")
        if config.start or config.end is not None:
            raise InputError("--start/--end do not apply to a live stream: use --max-frames to stop after N frames")
        # Live: nothing is held back for look-back re-tracking (it would add latency and memory).
        self.config = replace(config, tracker=replace(config.tracker, lookback=0))
        if detector is None and self.exemplars:  # a detector without the ability fails before anything starts
            from ..detectors.registry import check_exemplars

            check_exemplars(self.config.detector, self.exemplars)
        self._visual: VisualPrompt = resolve(self.exemplars, self.phrases)
        self.name = live_name(self.url)
        self._log_handler = forward(log or (lambda line: print(line, file=sys.stderr, flush=True)), log_level,
                                    uri=self.url)
        self.output_dir = prepare_output_dir(output_dir) if output_dir is not None else None
        self.outputs: dict[str, Path] = {}
        self.stats = LiveStats(self.config.live.latency_window)
        self.processed = 0
        self.view: MjpegServer | None = None
        self._stop = threading.Event()
        self._started = False
        # The stream and the view port are checked before the models load: a typo fails at once.
        # (Frames that arrive while the models load are simply dropped: the newest one wins.)
        live = self.config.live
        try:
            self.capture = LiveCapture(self.url, live).start()
        except BaseException:
            logger.removeHandler(self._log_handler)
            raise
        try:
            if live.view_port:
                title = f"promptrack live: {mask_password(self.url)}"
                self.view = MjpegServer(live.view_port, live.view_host, title=title).start()
            self.pipeline = TrackingPipeline(self.config, detector=detector, tracker=tracker)
            self._custom_detector = detector
        except BaseException:
            self._release()
            raise

    # -- control -------------------------------------------------------------------------
    def set_prompt(self, prompt: str | Sequence[str] | None, exemplars: Sequence[Exemplar] = ()) -> None:
        """Look for new phrases (and exemplars, replacing the earlier ones) from the next frame on; existing
        tracks keep their ids and labels."""
        exemplars = list(exemplars)
        phrases = list(parse_prompt(prompt)) if prompt or not exemplars else []
        visual = resolve(exemplars, phrases)  # an example's query is computed once, on the next keyframe
        self.pipeline.set_phrases(visual)  # thread-safe: read by the loop on the next keyframe
        self.phrases, self.exemplars, self._visual = phrases, exemplars, visual
        self.pipeline.request_keyframe()  # ... which is the next frame
        self._write_session_file()

    def stop(self) -> None:
        """End the run after the frame in hand; every output is closed valid."""
        self._stop.set()
        if not self._started:  # never ran: let the stream and the view go now
            self._release()

    def _release(self) -> None:
        if self.view is not None:
            self.view.close()
        self.capture.stop()
        logger.removeHandler(self._log_handler)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def view_url(self) -> str | None:
        return self.view.url if self.view is not None else None

    # -- running -------------------------------------------------------------------------
    def run(self) -> int:
        """Track until :meth:`stop`, SIGINT/SIGTERM (main thread) or ``max_frames``; returns frames processed."""
        with stop_on_signals(self._stop):
            try:
                return self._run(None)
            except KeyboardInterrupt:  # a second Ctrl-C: outputs were closed by _run's finally
                self._stop.set()
                return self.processed

    def __iter__(self) -> Iterator[LiveResult]:
        results: queue.Queue = queue.Queue(maxsize=2)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self._run(results)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
                failure.append(exc)
            finally:
                while True:
                    try:
                        results.put(_END, timeout=0.1)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            break

        worker = threading.Thread(target=work, name="promptrack-live", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    item = results.get(timeout=0.5)
                except queue.Empty:
                    if not worker.is_alive():
                        break
                    continue
                if item is _END:
                    break
                yield item
        finally:
            self.stop()
            while worker.is_alive():  # let the loop finish its frame and close every file
                try:
                    results.get(timeout=0.1)
                except queue.Empty:
                    pass
            worker.join()
        if failure:
            raise failure[0]

    def __enter__(self) -> "LiveSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self, results: queue.Queue | None) -> int:
        if self._started:
            raise RuntimeError("a LiveSession runs once: create a new one")
        self._started = True
        live = self.config.live
        outputs = None
        reporter = None
        try:
            source = LiveSource(self.capture, self._stop, max_frames=self.config.max_frames)
            outputs = self._open_sinks(source)
            sinks = outputs.sinks + [_Tail(self.stats, source.stamps, results, self._stop)]
            info = source.info
            logger.info(f"live: {info.uri} {info.width}x{info.height} at {info.fps:g} fps"
                        + (f"; view at {self.view.url}" if self.view else "")
                        + (f"; writing {self.output_dir}" if self.output_dir else ""), extra={"uri": self.url})
            capture = self.capture
            reporter = StatsReporter(self.stats, lambda: (capture.received, capture.dropped, capture.reconnects,
                                                          capture.connected), live.stats_every, self.url).start()
            # prefetch=0: the capture thread already reads ahead, newest frame first; more would add latency.
            self.processed = self.pipeline.run(source, self._visual, sinks, progress=False, stop=self._stop,
                                               prefetch=0)
            return self.processed
        finally:
            if reporter is not None:
                reporter.stop()
            if outputs is not None:
                try:
                    outputs.close()
                except Exception as exc:  # noqa: BLE001 - every sink was closed; say which failed
                    logger.warning(f"live: closing the outputs failed: {exc}", extra={"uri": self.url})
            self._release()

    def _open_sinks(self, source: LiveSource) -> Outputs:
        if self.output_dir is not None:
            self._write_session_file(source.info)
        layout = LiveLayout(stamps=source.stamps.get, clock=lambda index: source.stamps[index].mono, view=self.view)
        prompt = prompt_record(self.phrases, self.exemplars)
        outputs = open_sinks(self.config, self.output_dir, source.info, prompt,
                             _model_names(self.config, self._custom_detector), name=self.name, layout=layout)
        self.outputs.update(outputs.paths)
        return outputs

    def _write_session_file(self, info=None) -> None:
        """``<name>.session.json``: what the JSONL lines do not repeat (source, prompt, models, config)."""
        if self.output_dir is None:
            return
        info = info or (self.capture.info if self.capture is not None else None)
        if info is None:
            return
        path = self.output_dir / f"{self.name}.session.json"
        body = {"schema": SCHEMA, "mode": "live",
                "source": {"uri": info.uri, "fps": info.fps, "width": info.width, "height": info.height},
                "prompt": prompt_record(self.phrases, self.exemplars),
                "models": _model_names(self.config, self._custom_detector),
                "config": config_to_dict(self.config), "tracks": f"{self.name}.tracks.jsonl",
                "segments": f"{self.name}.NNN.mp4", "updated": round(time.time(), 3)}
        with SafeFile(path, "w") as out:  # a unique side file, replaced atomically
            out.file.write(json.dumps(body, indent=1) + "\n")
        self.outputs["session"] = path
