"""The Detector protocol and helpers shared by every detector family.

A detector finds boxes for text phrases on one RGB frame. It knows nothing of tracks.

    detect(frame_rgb, phrases) -> supervision.Detections
        xyxy        (N,4) float, source pixels
        confidence  (N,)
        class_id    (N,) index into `phrases`
        data["class_name"]  (N,) the phrase of each box
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import supervision as sv


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        """Boxes for `phrases` on `frame` (RGB, HxWx3 uint8)."""


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
