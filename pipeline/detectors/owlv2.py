"""OWLv2 (``Owlv2ForObjectDetection``) through transformers: one text query per phrase.

Each phrase becomes its own query ("a photo of a red car", the form OWL models were trained
with); every image patch predicts one box and a score per query, so labels map 1:1 to phrases.
OWLv2 pads a frame to a square before resizing it to 960x960, so its boxes are relative to the
padded square. Its scores run lower than Grounding DINO's: a good box often scores 0.2-0.4,
so use a lower ``--box-threshold`` (e.g. 0.1) and ``association.birth_score`` with it.

Default weights: ``google/owlv2-base-patch16-ensemble``.

Example:
    >>> det = OWLv2Detector("google/owlv2-base-patch16-ensemble", box_threshold=0.1)  # doctest: +SKIP
    >>> det.detect(frame, ["person", "red car"]).data["class_name"]                    # doctest: +SKIP
    array(['person'], dtype=object)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import supervision as sv
import torch

from .base import class_nms, cxcywh_to_xyxy, make_detections, reject_prompt_free, sigmoid
from ..models import resolve_all
from .grounding_dino import check_model_type
from .registry import DetectorSpec, folder_weights, load_folder, register

DEFAULT_MODEL = "google/owlv2-base-patch16-ensemble"


class OWLv2Detector:
    """Open-vocabulary detector with one CLIP text query per phrase."""

    name = "owlv2"
    batch_size = 2  # frames per forward pass in detect_batch (960x960 each)

    def __init__(self, model_dir: str | Path, box_threshold: float = 0.1, nms_iou: float = 0.5, device: str = "cpu",
                 template: str = "a photo of a {}") -> None:
        from transformers import Owlv2ForObjectDetection, Owlv2Processor

        check_model_type(model_dir, ("owlv2",), self.name)
        self.processor = Owlv2Processor.from_pretrained(str(model_dir))
        self.model = Owlv2ForObjectDetection.from_pretrained(str(model_dir)).to(device).eval()
        self.device = device
        self.box_threshold = box_threshold
        self.nms_iou = nms_iou
        self.template = template

    def queries(self, phrases: Sequence[str]) -> list[str]:
        """The text query of each phrase."""
        return [self.template.format(p) for p in phrases]

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        """Boxes for `phrases` on one RGB frame (HxWx3 uint8)."""
        return self.detect_batch([frame], phrases)[0]

    @torch.inference_mode()
    def detect_batch(self, frames: Sequence[np.ndarray], phrases: Sequence[str]) -> list[sv.Detections]:
        """Boxes for `phrases` on several frames, ``batch_size`` per forward pass."""
        from PIL import Image

        reject_prompt_free(phrases, self.name)
        queries = self.queries(phrases)
        results: list[sv.Detections] = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start:start + self.batch_size]
            inputs = self.processor(images=[Image.fromarray(f) for f in chunk], text=[queries] * len(chunk),
                                    truncation=True, return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            outputs = self.model(**inputs)
            logits = outputs.logits.float().cpu().numpy()  # (frames, patches, queries)
            boxes = outputs.pred_boxes.float().cpu().numpy()  # (frames, patches, 4) of the padded square
            for i, frame in enumerate(chunk):
                results.append(self._detections(logits[i], boxes[i], phrases, frame.shape[:2]))
        return results

    def _detections(self, logits: np.ndarray, boxes: np.ndarray, phrases: Sequence[str],
                    frame_hw: tuple[int, int]) -> sv.Detections:
        probs = sigmoid(logits[:, : len(phrases)])
        class_id = probs.argmax(1)
        scores = probs.max(1)
        keep = scores >= self.box_threshold
        h, w = frame_hw
        side = max(h, w)  # the frame was padded (bottom/right) to a side x side square
        xyxy = cxcywh_to_xyxy(boxes, side, side, clip=(h, w))[keep]
        scores, class_id = scores[keep], class_id[keep]
        visible = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])  # boxes wholly in the padding
        xyxy, scores, class_id = xyxy[visible], scores[visible], class_id[visible]
        kept = class_nms(xyxy, scores, class_id, self.nms_iou)
        return make_detections(xyxy[kept], scores[kept], class_id[kept], phrases)


def _weights(config) -> list:
    return [folder_weights("owlv2", config.model or DEFAULT_MODEL)]


def _build(config, device: str) -> OWLv2Detector:
    folder, = resolve_all(_weights(config))  # found, and its weights files checked
    return load_folder("owlv2", folder, lambda: OWLv2Detector(folder, config.box_threshold, config.nms_iou, device))


register(DetectorSpec(
    "owlv2", _build, needs=f"weights {DEFAULT_MODEL}", about="open vocabulary, local; lower scores: try --box-threshold 0.1",
    aliases=("owl", "owl-v2", "owl_v2"), default_model=DEFAULT_MODEL, model_types=("owlv2",), weights=_weights))
