"""The frame loop: source -> mask tracker -> (keyframe: detector -> associator) -> sinks.

One loop, read top to bottom in :meth:`TrackingPipeline.run`. Nothing in it holds the whole
video: frames stream in, finished frames stream out.
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections import deque
from typing import Callable, Sequence

import numpy as np
import supervision as sv
import torch
from tqdm.auto import tqdm

from ..trackers.association import AssociationParams, Associator
from ..trackers.cadence import DetectionCadence
from ..trackers.base import MaskTracker
from .config import Config
from .detectors import Detector, DetectorUnavailable, as_detector, build_detector
from .errors import PromptrackError
from .models import CHECKPOINT_ERRORS, checkpoint_error, resolve_file, sam2_spec
from .signals import shielded, stop_on_signals  # noqa: F401  (stop_on_signals: re-exported, it lived here)
from .sources import FrameSource

DetectorLike = Detector | Callable[[np.ndarray, Sequence[str]], sv.Detections]


def pick_device(name: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PromptrackError("--device cuda asked for, but no CUDA GPU is visible: use --device cpu")
    return name


def build_sam2_tracker(config: Config, device: str) -> MaskTracker:
    """The bounded-memory SAM 2 engine with weights resolved from ``config.tracker.sam2``."""
    from ..trackers.sam2_engine import SAM2Engine, load_sam2_model

    spec = sam2_spec(config.tracker.sam2)
    explicit = config.tracker.sam2 if spec.filename == config.tracker.sam2 else None
    checkpoint = resolve_file(spec.filename, spec.repo_id, explicit)
    try:
        model = load_sam2_model(spec.config, str(checkpoint), device, config.tracker.image_size)
    except CHECKPOINT_ERRORS as exc:
        raise checkpoint_error(checkpoint, exc) from None
    dtype = config.tracker.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if config.tracker.compile and device.startswith("cuda"):
        model.image_encoder.forward = torch.compile(model.image_encoder.forward, dynamic=False)
    return SAM2Engine(model, device=device, dtype=getattr(torch, dtype),
                      max_cond_frames=config.tracker.max_cond_frames, fill_hole_area=config.tracker.fill_hole_area)


class TrackingPipeline:
    """Detector + mask tracker + associator, run over any frame source into any sinks.

    Example:
        >>> pipeline = TrackingPipeline(load_config("fast"))           # doctest: +SKIP
        >>> pipeline.run(open_source("in.mp4"), ["car"], [JsonSink(...)])  # doctest: +SKIP
    """

    def __init__(self, config: Config, detector: DetectorLike | None = None,
                 tracker: MaskTracker | None = None) -> None:
        self.config = config
        self.device = pick_device(config.device)
        # Any callable (frame, phrases) -> Detections works; as_detector checks and completes its output.
        self.detector = as_detector(detector) if detector is not None else build_detector(config.detector, self.device)
        self.tracker = tracker if tracker is not None else build_sam2_tracker(config, self.device)
        a = config.association
        self.associator = Associator(AssociationParams.from_config(a))
        self.cadence = DetectionCadence(every=config.detect_every, on_lost=a.detect_on_lost,
                                        count_jump=a.detect_on_count_jump, min_gap=a.detect_min_gap)
        self.failed_keyframes = 0  # keyframes whose detector call failed (cloud detectors) and were skipped

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        return self.detector.detect(frame, phrases)

    def run(self, source: FrameSource, phrases: Sequence[str], sinks: Sequence, progress: bool = True,
            stop: threading.Event | None = None) -> int:
        """Track every frame of `source` until it ends or `stop` is set; returns frames written."""
        done = 0
        # Offline, a new object is also carried back over the last `lookback` frames, so frames are
        # held that long before the sinks see them. Memory: `lookback` frames, whatever the video length.
        lookback = max(0, self.config.tracker.lookback) if hasattr(self.tracker, "backfill") else 0
        pending: deque[list] = deque()  # [index, frame, detections], finished but not yet written
        bar = tqdm(total=len(source) or None, unit="frame", desc="tracking", disable=not progress, dynamic_ncols=True)
        try:
            for index, frame in source:
                if stop is not None and stop.is_set():
                    break
                detections = self.tracker.step(index, frame)
                masks = _masks_by_id(detections)
                # Optional appearance (SAM 2 features pooled per object / per box); None: position only.
                track_emb = self.tracker.track_embeddings() if hasattr(self.tracker, "track_embeddings") else None
                ended = self.associator.observe(index, masks, track_emb)  # ended + merged duplicates
                if ended:
                    self.tracker.remove(ended)
                    detections = self.tracker.current()
                    masks = _masks_by_id(detections)

                shown = sum(np.count_nonzero(m) >= self.config.association.min_mask_area for m in masks.values())
                keyframe = self.cadence(index - source.start, masks=shown, lost=len(self.associator.newly_lost))
                births: list[int] = []
                if keyframe:
                    births, changed = self._keyframe(index, frame, phrases, masks, track_emb)
                    if changed:
                        detections = self.tracker.current()

                finished = self._finish(detections, keyframe, phrases)
                finished.metadata["time"] = source.frame_time(index)  # from the frame's pts (VFR files)
                if births and lookback and pending:
                    self._backfill(births, list(pending)[-lookback:], phrases)
                pending.append([index, frame, finished])
                while len(pending) > lookback:
                    done += self._write(sinks, *pending.popleft())
                bar.update(1)
                bar.set_postfix(objects=len(finished), refresh=False)
        finally:
            # Held frames are finished frames: they are written even when the run stops early.
            while pending:
                done += self._write(sinks, *pending.popleft())
            bar.close()
        return done

    def _keyframe(self, index: int, frame: np.ndarray, phrases: Sequence[str], masks: dict[int, np.ndarray],
                  track_emb: dict | None) -> tuple[list[int], bool]:
        """Detect, associate and carry the plan out on the tracker; returns (born ids, changed)."""
        try:
            found = self.detect(frame, phrases)
        except DetectorUnavailable as exc:  # a transient failure skips this keyframe, not the run
            self.failed_keyframes += 1
            if self.failed_keyframes == 1:
                tqdm.write(f"warning: keyframe {index} skipped: {exc}", file=sys.stderr)
            return [], False
        det_emb = (self.tracker.box_embeddings(found.xyxy)
                   if len(found) and hasattr(self.tracker, "box_embeddings") else None)
        plan = self.associator.update(index, masks, found.xyxy, _confidence(found),
                                      list(found.data.get("class_name", [])), track_emb, det_emb)
        if plan.removals:
            self.tracker.remove(plan.removals)
        adds = plan.additions  # births and revivals of ids the tracker no longer holds
        if adds:
            prompt_masks = _birth_masks(found, adds) if found.mask is not None else None
            if prompt_masks is not None and _accepts_masks(self.tracker):
                self.tracker.add(list(adds), np.stack(list(adds.values())), masks=prompt_masks)
            else:
                self.tracker.add(list(adds), np.stack(list(adds.values())))
        if plan.reprompts:
            self.tracker.reprompt(list(plan.reprompts), np.stack(list(plan.reprompts.values())))
        return [b.track_id for b in plan.births], bool(plan)

    @staticmethod
    def _write(sinks: Sequence, index: int, frame: np.ndarray, detections: sv.Detections) -> int:
        with shielded():  # a signal never leaves one sink a frame ahead of another
            for sink in sinks:
                sink.write(index, frame, detections)
        return 1

    def _backfill(self, ids: list[int], held: list[list], phrases: Sequence[str]) -> None:
        """Add the masks of objects born now to the held (not yet written) frames before it."""
        filled = self.tracker.backfill(ids, [(index, frame) for index, frame, _ in held])
        for entry in held:
            index, _, detections = entry
            extra = filled.get(index)
            if extra is None or not len(extra):
                continue
            extra = self._finish(extra, detections.metadata.get("keyframe", False), phrases)
            if len(extra):
                entry[2] = _concat(detections, extra)

    def _finish(self, detections: sv.Detections, keyframe: bool, phrases: Sequence[str]) -> sv.Detections:
        """Keep objects with a visible mask; attach each track's label and score."""
        if len(detections):
            visible = detections.mask.reshape(len(detections), -1).sum(1) >= self.config.association.min_mask_area
            detections = detections[visible]
        tracks = [self.associator.tracks[int(i)] for i in detections.tracker_id] if len(detections) else []
        detections.confidence = np.array([t.score for t in tracks], dtype=np.float32)
        detections.class_id = np.array([list(phrases).index(t.label) if t.label in phrases else -1 for t in tracks],
                                       dtype=int)
        detections.data["class_name"] = np.array([t.label for t in tracks], dtype=object)
        detections.metadata["keyframe"] = keyframe
        return detections


def _concat(a: sv.Detections, b: sv.Detections) -> sv.Detections:
    """Two finished Detections of one frame as one (same fields; metadata of the first)."""
    if not len(a):
        b.metadata.update(a.metadata)
        return b
    merged = sv.Detections(
        xyxy=np.concatenate([a.xyxy, b.xyxy]), mask=np.concatenate([a.mask, b.mask]),
        confidence=np.concatenate([a.confidence, b.confidence]), class_id=np.concatenate([a.class_id, b.class_id]),
        tracker_id=np.concatenate([a.tracker_id, b.tracker_id]),
        data={"class_name": np.concatenate([a.data["class_name"], b.data["class_name"]])},
    )
    merged.metadata.update(a.metadata)
    return merged


def _birth_masks(found: sv.Detections, adds: dict[int, np.ndarray]) -> list[np.ndarray | None]:
    """The detector's mask for each added box (DINO-X returns masks): SAM 2 takes it as the prompt."""
    out = []
    for box in adds.values():
        rows = np.nonzero(np.all(np.isclose(found.xyxy, box, atol=1e-3), axis=1))[0]
        out.append(found.mask[rows[0]] if rows.size else None)
    return out


def _accepts_masks(tracker: MaskTracker) -> bool:
    return "masks" in inspect.signature(tracker.add).parameters


def _masks_by_id(detections: sv.Detections) -> dict[int, np.ndarray]:
    if not len(detections):
        return {}
    return {int(i): m for i, m in zip(detections.tracker_id, detections.mask)}


def _confidence(detections: sv.Detections) -> np.ndarray:
    if detections.confidence is None:
        return np.ones(len(detections), dtype=np.float32)
    return detections.confidence
