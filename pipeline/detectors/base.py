"""The Detector protocol and helpers shared by every detector family.

A detector finds boxes for text phrases on one RGB frame. It knows nothing of tracks.

    detect(frame_rgb, phrases) -> supervision.Detections
        xyxy        (N,4) float, source pixels
        confidence  (N,)
        class_id    (N,) index into `phrases`
        data["class_name"]  (N,) the phrase of each box
        mask        (N,H,W) bool, frame size, optional (DINO-X): SAM 2 takes it as a mask prompt

Optional: ``detect_batch(frames, phrases) -> list[sv.Detections]`` for several frames at once
(:func:`detect_batch` falls back to a loop).

Optional ability, prompts by example (:class:`ExemplarDetector`, declared in the family's
``DetectorSpec.exemplars``): ``detect_prompt(frame, prompt)`` with a
:class:`~promptrack.pipeline.exemplars.VisualPrompt` (phrases and example boxes with their
pixels); class ids index ``prompt.labels``. The detector computes each example's query once (the
prompt object is the cache key) and reuses it on every keyframe.

What ``detect`` may raise:
    :class:`DetectorUnavailable`  this frame could not be detected (network, rate limit, server
                                  error after retries). Transient: skip the keyframe, keep going.
    any other :class:`PromptrackError`  fatal (bad token, exhausted quota, bad prompt): stop.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import supervision as sv

from ..errors import PromptError, PromptrackError

PROMPT_FREE = "<prompt_free>"  # the prompt that asks DINO-X for every object it knows

class DetectorUnavailable(PromptrackError):
    """A keyframe could not be detected, for a reason that may pass (network, 429, 5xx, timeout).

    The frame loop catches this one, counts the keyframe as failed and carries on with the
    tracks it has. ``reason`` is a short tag: "network", "timeout", "rate-limit", "server", "task";
    ``retry_after`` the seconds the service asked to wait (0 when it did not say).
    """

    def __init__(self, message: str, reason: str = "network", retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class DetectorAccessError(PromptrackError):
    """The detector service refuses this account: bad or missing token, exhausted quota. Fatal."""


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        """Boxes for `phrases` on `frame` (RGB, HxWx3 uint8)."""


@runtime_checkable
class ExemplarDetector(Protocol):
    """A detector that also finds things by example (OWLv2, SAM 3, DINO-X)."""

    name: str

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections: ...

    def detect_prompt(self, frame: np.ndarray, prompt) -> sv.Detections:
        """Boxes for `prompt`'s phrases and examples on `frame`; class ids index ``prompt.labels``."""


def make_detections(
    xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray, phrases: Sequence[str]
) -> sv.Detections:
    """Detections in the protocol's shape (class names filled from `phrases`)."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    class_id = np.asarray(class_id, dtype=int).reshape(-1)
    return sv.Detections(
        xyxy=xyxy,
        confidence=np.asarray(confidence, dtype=np.float32).reshape(-1),
        class_id=class_id,
        data={"class_name": np.array([phrases[i] for i in class_id], dtype=object)},
    )


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = (rb - lt).clip(0).prod(-1)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=int)


def reject_prompt_free(phrases: Sequence[str], detector: str) -> None:
    """One clear line when a detector that needs phrases gets the prompt-free prompt."""
    if PROMPT_FREE in phrases:
        raise PromptError(f"prompt-free mode ({PROMPT_FREE}) needs --detector dino-x; {detector} needs phrases")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic function in float32, without overflow warnings for large or infinite logits."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, dtype=np.float32), -60.0, 60.0)))


def class_nms(boxes: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by NMS run separately per class, best score first."""
    kept: list[int] = []
    for k in np.unique(class_id):
        idx = np.nonzero(class_id == k)[0]
        kept.extend(idx[nms(boxes[idx], scores[idx], iou_threshold)])
    return np.asarray(sorted(kept, key=lambda i: -scores[i]), dtype=int)


def cxcywh_to_xyxy(boxes: np.ndarray, width: float, height: float, clip: tuple[int, int] | None = None) -> np.ndarray:
    """Relative (cx, cy, w, h) boxes -> pixel (x1, y1, x2, y2), clipped to ``clip=(h, w)`` when given."""
    cx, cy, bw, bh = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).T
    xyxy = np.stack([(cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height], 1)
    if clip is not None:
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, clip[1])
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, clip[0])
    return xyxy


def detect_batch(detector, frames: Sequence[np.ndarray], phrases: Sequence[str]) -> list[sv.Detections]:
    """``detector.detect_batch`` when it has one, else ``detect`` frame by frame."""
    if hasattr(detector, "detect_batch"):
        return list(detector.detect_batch(frames, phrases))
    if hasattr(detector, "detect"):
        return [detector.detect(frame, phrases) for frame in frames]
    return [detector(frame, phrases) for frame in frames]


def split_phrases(costs: Sequence[int], budget: int) -> list[range]:
    """Consecutive groups of phrases whose summed token `costs` fit in `budget` (one text-encoder call each).

    A phrase alone over the budget gets a group of its own (the encoder truncates it). Class ids of
    the merged result index the full phrase list: a group's ids are offset by its ``start``.

    >>> split_phrases([3, 3, 3, 5], budget=7)
    [range(0, 2), range(2, 3), range(3, 4)]
    """
    groups: list[range] = []
    start, used = 0, 0
    for i, cost in enumerate(costs):
        if i > start and used + cost > budget:
            groups.append(range(start, i))
            start, used = i, 0
        used += cost
    if len(costs):
        groups.append(range(start, len(costs)))
    return groups


def merge_groups(parts: Sequence[sv.Detections], groups: Sequence[range], phrases: Sequence[str]) -> sv.Detections:
    """One Detections from per-group results (class ids local to each group), best score first."""
    xyxy = [p.xyxy for p in parts]
    conf = [p.confidence for p in parts]
    ids = [p.class_id + g.start for p, g in zip(parts, groups)]
    masks = [p.mask for p in parts]
    if not parts:
        return make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), phrases)
    merged = make_detections(np.concatenate(xyxy), np.concatenate(conf), np.concatenate(ids), phrases)
    if all(m is not None for m in masks):
        merged.mask = np.concatenate(masks)
    order = np.argsort(-merged.confidence, kind="stable")
    return merged[order]
