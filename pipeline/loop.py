"""The frame loop: source -> mask tracker -> (keyframe: detector -> associator) -> sinks.

One loop for files and live streams, read top to bottom in :meth:`TrackingPipeline.run`.
Nothing in it holds the whole video: frames stream in, finished frames stream out.

It runs as three stages (``pipeline/stages.py``): a decoder thread reads frames ahead; the
tracking stage (SAM 2, detector, associator) runs in the caller's thread, the critical path; a
writer thread turns finished frames into files. On a keyframe the detector starts on the frame
in a thread of its own (its own CUDA stream on a GPU) *before* the tracker steps that frame, so
the two overlap; its answer is associated with the masks of that same frame, before the next
frame is tracked, so a keyframe's result is exact, not one frame late. Keyframes that only an
event reveals (a track lost, a jump in the mask count) are detected after the step, without
overlap.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import supervision as sv
import torch
from tqdm.auto import tqdm

from ..trackers.association import AssociationParams, Associator
from ..trackers.base import (AppearanceTracker, BackfillTracker, MaskFrameTracker, MaskTracker, mask_areas,
                             unpack_masks)
from ..trackers.cadence import DetectionCadence
from ..trackers.mask_frame import HostMasks, MaskFrame
from ..trackers.plan import apply_plan
from .checkpoints import check_file
from .config import Config
from .detectors import Detector, DetectorUnavailable, as_detector, build_detector
from .detectors.base import ExemplarDetector
from .errors import PromptError, PromptrackError
from .exemplars import VisualPrompt
from .held import HeldFrames, hold_limit
from .models import CHECKPOINT_ERRORS, SAM2_FIX, ModelFile, checkpoint_error, resolve_all, sam2_spec
from .progress import TrackingBar
from .sources import FrameSource
from .stages import Prefetcher, StageTimes, Writer

DetectorLike = Detector | Callable[[np.ndarray, Sequence[str]], sv.Detections]


def pick_device(name: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PromptrackError("--device cuda asked for, but no CUDA GPU is visible: use --device cpu")
    return name


def sam2_weights(config: Config) -> ModelFile:
    """The SAM 2 checkpoint ``config.tracker.sam2`` names (a size or a path), checked before it loads."""
    spec = sam2_spec(config.tracker.sam2)
    explicit = config.tracker.sam2 if spec.filename == config.tracker.sam2 else None
    name = Path(spec.filename).name if explicit else spec.filename
    return ModelFile(name, spec.repo_id, explicit, check=lambda path: check_file(path, "SAM 2 checkpoint", SAM2_FIX))


def find_weights(config: Config, detector: bool = True, tracker: bool = True) -> None:
    """Find and check every model file the run loads, before any loads: the missing ones in one message."""
    from .detectors import registry

    resolve_all([*(registry.weights(config.detector) if detector else []),
                 *([sam2_weights(config)] if tracker else [])])


def build_sam2_tracker(config: Config, device: str) -> MaskTracker:
    """The bounded-memory SAM 2 engine with weights resolved from ``config.tracker.sam2``."""
    from ..trackers.sam2_engine import SAM2Engine, load_sam2_model

    spec = sam2_spec(config.tracker.sam2)
    checkpoint, = resolve_all([sam2_weights(config)])
    try:
        model = load_sam2_model(spec.config, str(checkpoint), device, config.tracker.image_size)
    except CHECKPOINT_ERRORS as exc:
        raise checkpoint_error(checkpoint, exc) from None
    dtype = config.tracker.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return SAM2Engine(model, device=device, dtype=getattr(torch, dtype),
                      max_cond_frames=config.tracker.max_cond_frames, fill_hole_area=config.tracker.fill_hole_area,
                      # back-fill reads the look-back frames' image features from this cache (no re-encoding);
                      # it may wait a detection period for a newborn's verdict (TrackingPipeline._backfill_confirmed)
                      feature_cache=backfill_reach(config), compile=config.tracker.compile,
                      packed_masks=True)  # unpacked by the writer thread (TrackingPipeline.run), not here


def backfill_waits_for_verdict(config: Config) -> bool:
    """Is a newborn carried back only once confirmed? Yes when its verdict (``confirm_hits - 1``
    detection periods after its birth) comes while the frames before its birth are still held
    (``pipeline/held.py``); else it is carried back at birth."""
    lookback = max(0, config.tracker.lookback)
    verdict_after = (config.association.confirm_hits - 1) * max(1, config.detect_every)
    return verdict_after <= hold_limit(lookback, config.detect_every) - lookback


def backfill_reach(config: Config) -> int:
    """How far back from the current frame a back-fill may read: the look-back before a newborn's
    birth, plus the wait for its verdict where back-fill waits for it (0 when there is no look-back)."""
    lookback = max(0, config.tracker.lookback)
    if not lookback or not backfill_waits_for_verdict(config):
        return lookback
    return lookback + (config.association.confirm_hits - 1) * max(1, config.detect_every)


class TrackingPipeline:
    """Detector + mask tracker + associator, run over any frame source into any sinks.

    The tracker's optional abilities (back-fill, appearance) are resolved once here, from the
    protocols of ``trackers/base.py``. :meth:`request_keyframe` and :meth:`set_phrases` may be
    called from any thread while :meth:`run` runs (live mode: a new prompt is looked for at once).

    Example:
        >>> pipeline = TrackingPipeline(load_config("fast"))           # doctest: +SKIP
        >>> pipeline.run(open_source("in.mp4"), ["car"], [JsonSink(...)])  # doctest: +SKIP
        >>> pipeline.times.seconds                                     # doctest: +SKIP
        {'track': 3.1, 'detect': 0.4, ...}
    """

    def __init__(self, config: Config, detector: DetectorLike | None = None,
                 tracker: MaskTracker | None = None) -> None:
        self.config = config
        self.device = pick_device(config.device)
        find_weights(config, detector=detector is None, tracker=tracker is None)
        # Any callable (frame, phrases) -> Detections works; as_detector checks and completes its output.
        self.detector = as_detector(detector) if detector is not None else build_detector(config.detector, self.device)
        self.tracker = tracker if tracker is not None else build_sam2_tracker(config, self.device)
        self.backfiller = self.tracker if isinstance(self.tracker, BackfillTracker) else None
        self.appearance = self.tracker if isinstance(self.tracker, AppearanceTracker) else None
        # what the associator reads of the masks, measured where they are (else counted here, on the host)
        self.measurer = self.tracker if isinstance(self.tracker, MaskFrameTracker) else None
        a = config.association
        self.associator = Associator(AssociationParams.from_config(a))
        self.cadence = DetectionCadence(every=config.detect_every, on_lost=a.detect_on_lost,
                                        count_jump=a.detect_on_count_jump, min_gap=a.detect_min_gap)
        self.failed_keyframes = 0  # keyframes whose detector call failed (cloud detectors) and were skipped
        self.times = StageTimes()  # seconds per stage of the last run (bench/e2e.py reads it)
        self._lock = threading.Lock()
        self._prompt = VisualPrompt()  # phrases and examples (pipeline/exemplars.py)
        self._keyframe_requested = False
        self._detect_pool: ThreadPoolExecutor | None = None
        self._detect_stream = torch.cuda.Stream() if self.device.startswith("cuda") else None
        self._unfilled: dict[int, int] = {}  # newborn id -> its birth frame, until carried back or dropped
        self._backfill_waits = backfill_waits_for_verdict(config)

    # -- control, from any thread -------------------------------------------------------------
    def request_keyframe(self) -> None:
        """Run the detector on the next frame, whatever the cadence says."""
        with self._lock:
            self._keyframe_requested = True

    def set_phrases(self, phrases: Sequence[str] | VisualPrompt) -> None:
        """Look for these phrases (or phrases and examples) from the next keyframe on; tracks keep their ids
        and labels."""
        prompt = phrases if isinstance(phrases, VisualPrompt) else VisualPrompt(tuple(phrases))
        if prompt.examples and not isinstance(self.detector, ExemplarDetector):
            raise PromptError(f"detector {getattr(self.detector, 'name', '?')} does not take exemplars (it has no "
                              "detect_prompt): use --detector owlv2 / sam3 / dino-x")
        with self._lock:
            self._prompt = prompt

    @property
    def phrases(self) -> list[str]:
        """The labels looked for: the phrases, then the examples' labels."""
        with self._lock:
            return list(self._prompt.labels)

    def detect(self, frame: np.ndarray, phrases: Sequence[str] | VisualPrompt) -> sv.Detections:
        if not isinstance(phrases, VisualPrompt):
            return self.detector.detect(frame, phrases)
        if not phrases.examples:
            return self.detector.detect(frame, list(phrases.phrases))
        return self.detector.detect_prompt(frame, phrases)

    # -- the loop ------------------------------------------------------------------------------
    def run(self, source: FrameSource, phrases: Sequence[str] | VisualPrompt, sinks: Sequence,
            progress: bool = True, stop: threading.Event | None = None, prefetch: int = 4,
            write_behind: int = 8) -> int:
        """Track every frame of `source` until it ends or `stop` is set; returns frames written.

        `prefetch`: frames decoded ahead in a thread (0: read in this thread, as live mode does).
        `write_behind`: finished frames that may wait for the writer thread. When `stop` is set the
        loop ends after the frame in hand; held (look-back) frames are still written, the writer
        drains, and every sink has seen the same frames. A sink's error ends the run and is
        raised here.
        """
        self.set_phrases(phrases)
        self.times = StageTimes()
        self._unfilled = {}
        # Offline, finished frames are held `lookback` frames (longer while a new track awaits its
        # verdict) before the sinks see them: a new object is also carried back over them, and a
        # tentative track is written only once confirmed (pipeline/held.py). Live: lookback 0.
        lookback = max(0, self.config.tracker.lookback)
        pending = self._held_frames(lookback)  # [index, frame, detections], finished but not yet written
        # the bar also says, after the first frames, when a CPU run will be long
        bar = TrackingBar(len(source) or None, self.device, self.config.detect_every, disable=not progress)
        frames = Prefetcher(source, depth=prefetch)
        # a tracker may hand masks over packed: the writer thread unpacks them, off the tracking thread
        writer = Writer(sinks, depth=write_behind, prepare=lambda image, dets: unpack_masks(dets, np.shape(image)[:2]))
        start = source.start
        try:
            try:
                for index, frame in frames:
                    if stop is not None and stop.is_set():
                        break
                    finished, births = self._track(index, frame, index - start, source.frame_time(index))
                    if self.backfiller is not None and lookback:
                        self._backfill_confirmed(index, births, pending)
                    for entry in pending.push([index, frame, finished]):
                        writer.put(*entry)
                    bar.update(1)
                    bar.set_postfix(objects=len(finished), refresh=False)
            finally:
                frames.close()
                # Held frames are finished frames: they are written even when the run stops early
                # (not after a sink failed: its error is what the run raises).
                for entry in pending.flush():
                    if writer.failed:
                        break
                    writer.put(*entry)
        finally:
            try:
                writer.close()
            finally:
                bar.close()
                if self._detect_pool is not None:
                    self._detect_pool.shutdown(wait=True)
                    self._detect_pool = None
                self.times.add("decode_wait", frames.waited)
                self.times.add("write", writer.busy)
                self.times.add("write_wait", writer.blocked)
        return writer.written

    def _held_frames(self, lookback: int) -> HeldFrames[list]:
        """The holder of finished frames ``[index, frame, detections]`` (tentative tracks left out when written)."""

        def without(entry: list, hidden: set[int]) -> list:
            detections = entry[2]
            entry[2] = detections[~np.isin(detections.tracker_id, list(hidden))]
            return entry

        return HeldFrames(lookback, self.config.detect_every, self.associator,
                          ids=lambda entry: entry[2].tracker_id, without=without)

    def _track(self, index: int, frame: np.ndarray, offset: int, seconds: float) -> tuple[sv.Detections, list[int]]:
        """Step the tracker on one frame, detect and associate if it is a keyframe; the finished frame."""
        with self._lock:
            requested, self._keyframe_requested = self._keyframe_requested, False
            prompt = self._prompt
        phrases = list(prompt.labels)
        # A keyframe known in advance starts the detector now, beside the tracker's step.
        early = requested or self.cadence.scheduled(offset)
        answer = self._start_detect(frame, prompt) if early else None

        with self.times.timed("track"):
            detections = self.tracker.step(index, frame)
        with self.times.timed("associate"):
            masks = self._mask_frame(detections, frame)
            # Optional appearance (SAM 2 features pooled per object / per box); None: position only.
            track_emb = self.appearance.track_embeddings() if self.appearance is not None else None
            ended = self.associator.observe(index, masks, track_emb)  # ended + merged duplicates
            if ended:
                self.tracker.remove(ended)
                detections = self.tracker.current()
                masks = self._mask_frame(detections, frame)
            shown = int(np.count_nonzero(mask_areas(detections) >= self.config.association.min_mask_area))
            due = self.cadence(offset, masks=shown, lost=self.associator.lost_on_last_frame)
        keyframe = due or early
        births: list[int] = []
        if keyframe:
            if answer is None:
                answer = self._start_detect(frame, prompt)
            found = self._detections(index, answer)
            if found is not None:
                with self.times.timed("associate"):
                    births, changed = self._associate(index, masks, found, track_emb)
                    if changed:
                        detections = self.tracker.current()
        return self._finish(detections, keyframe, phrases, seconds), births

    def _mask_frame(self, detections: sv.Detections, frame: np.ndarray) -> MaskFrame:
        """The current masks as the associator reads them: the tracker's own measure, else counted on the host
        (packed masks of a tracker that does not measure them are unpacked here)."""
        if self.measurer is not None:
            return self.measurer.mask_frame()
        if not len(detections):
            return HostMasks({})
        masks = detections.mask if detections.mask is not None else unpack_masks(detections, frame.shape[:2]).mask
        return HostMasks({int(i): m for i, m in zip(detections.tracker_id, masks)})

    def _start_detect(self, frame: np.ndarray, phrases: VisualPrompt) -> Future:
        if self._detect_pool is None:
            self._detect_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptrack-detect")
        return self._detect_pool.submit(self._timed_detect, frame, phrases)

    def _timed_detect(self, frame: np.ndarray, phrases: VisualPrompt) -> sv.Detections:
        started = time.perf_counter()
        # On a GPU the detector queues its kernels on its own stream, beside SAM 2's.
        with torch.cuda.stream(self._detect_stream) if self._detect_stream is not None else nullcontext():
            found = self.detect(frame, phrases)
            if self._detect_stream is not None:
                self._detect_stream.synchronize()
        self.times.add("detect", time.perf_counter() - started)
        return found

    def _detections(self, index: int, answer: Future) -> sv.Detections | None:
        """The detector's answer for this keyframe; None when it could not answer (skipped)."""
        with self.times.timed("detect_wait"):
            try:
                return answer.result()
            except DetectorUnavailable as exc:  # a transient failure skips this keyframe, not the run
                self.failed_keyframes += 1
                if self.failed_keyframes == 1:
                    tqdm.write(f"warning: keyframe {index} skipped: {exc}", file=sys.stderr)
                return None

    def _associate(self, index: int, masks: MaskFrame, found: sv.Detections,
                   track_emb: dict | None) -> tuple[list[int], bool]:
        """Associate the keyframe's detections and carry the plan out; returns (born ids, changed)."""
        det_emb = self.appearance.box_embeddings(found.xyxy) if self.appearance is not None and len(found) else None
        plan = self.associator.update(index, masks, found.xyxy, _confidence(found),
                                      list(found.data.get("class_name", [])), track_emb, det_emb)
        changed = apply_plan(self.tracker, plan, found.mask)
        return [b.track_id for b in plan.births], changed

    def _backfill_confirmed(self, index: int, births: list[int], pending: HeldFrames[list]) -> None:
        """Carry newborns back over the held frames before their birth, once a keyframe confirms them.

        Back-fill costs one tracking step per look-back frame, and an open-set detector's false
        positives are dropped at the next keyframe: so a tentative newborn is carried back only
        once confirmed (the frames before its birth wait for the verdict, ``HeldFrames.wait_for``);
        one dropped first costs nothing. Where the verdict could come after those frames are
        written (a detection period over the hold's limit), newborns are carried back at birth.
        """
        lookback = pending.lookback
        for track_id in births:
            self._unfilled[track_id] = index
            pending.wait_for(track_id, lookback)
        due: dict[int, list[int]] = {}  # birth frame -> ids
        for track_id, born in list(self._unfilled.items()):
            if not self._backfill_waits or self.associator.confirmed(track_id):
                due.setdefault(born, []).append(track_id)
            elif self.associator.awaiting_verdict(track_id):
                continue
            del self._unfilled[track_id]  # carried back now, or dropped before any verdict
        for born, ids in due.items():
            held = [entry for entry in pending if born - lookback <= entry[0] < born]
            if held:
                with self.times.timed("backfill"):
                    self._backfill(ids, held, born)

    def _backfill(self, ids: list[int], held: list[list], born: int) -> None:
        """Add the masks of objects born on frame `born` to the held (not yet written) frames before it."""
        filled = self.backfiller.backfill(ids, [(index, frame) for index, frame, _ in held], start=born)
        for entry in held:
            index, _, detections = entry
            extra = filled.get(index)
            if extra is None or not len(extra):
                continue
            metadata = detections.metadata
            extra = self._finish(extra, metadata.get("keyframe", False), self.phrases, metadata.get("time"))
            if len(extra):
                entry[2] = _concat(detections, extra)

    def _finish(self, detections: sv.Detections, keyframe: bool, phrases: Sequence[str],
                seconds: float | None) -> sv.Detections:
        """Keep objects with a visible mask; attach each track's label and score (the associator's)."""
        if len(detections):
            detections = detections[mask_areas(detections) >= self.config.association.min_mask_area]
        if detections.tracker_id is None:  # an empty frame: still the same fields as any other
            detections.tracker_id = np.zeros(0, dtype=int)
        labels, scores = self.associator.label_frame(detections.tracker_id)
        detections.confidence = scores
        detections.class_id = np.array([phrases.index(label) if label in phrases else -1 for label in labels],
                                       dtype=int)
        detections.data["class_name"] = np.array(labels, dtype=object)
        detections.metadata["keyframe"] = keyframe
        if seconds is not None:
            detections.metadata["time"] = seconds
        return detections


def _concat(a: sv.Detections, b: sv.Detections) -> sv.Detections:
    """Two finished Detections of one frame as one (same fields; metadata of the first)."""
    if not len(a):
        b.metadata.update(a.metadata)
        return b
    keys = [k for k in a.data if k in b.data]
    merged = sv.Detections(  # masks unpacked or packed (data), as the tracker gives them
        xyxy=np.concatenate([a.xyxy, b.xyxy]),
        mask=np.concatenate([a.mask, b.mask]) if a.mask is not None and b.mask is not None else None,
        confidence=np.concatenate([a.confidence, b.confidence]), class_id=np.concatenate([a.class_id, b.class_id]),
        tracker_id=np.concatenate([a.tracker_id, b.tracker_id]),
        data={k: np.concatenate([a.data[k], b.data[k]]) for k in keys},
    )
    merged.metadata.update(a.metadata)
    return merged


def _confidence(detections: sv.Detections) -> np.ndarray:
    if detections.confidence is None:
        return np.ones(len(detections), dtype=np.float32)
    return detections.confidence
