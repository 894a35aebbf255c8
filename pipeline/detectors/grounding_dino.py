"""Grounding DINO (and MM-Grounding-DINO) through transformers: open-vocabulary boxes from text.

The prompt is sent in the form the model was trained on ("person . red car ."). Each box gets
the phrase whose tokens score highest for it, so phrases of several tokens map back to one
label; the box score is that phrase's best token score.

Example:
    >>> det = GroundingDINODetector("IDEA-Research/grounding-dino-tiny")   # doctest: +SKIP
    >>> det.detect(frame, ["person", "red car"])                            # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import supervision as sv
import torch

from ..prompts import grounding_text
from .base import make_detections, nms

DEFAULT_MODEL = "IDEA-Research/grounding-dino-tiny"


class GroundingDINODetector:
    """Open-vocabulary detector; `model_dir` is a transformers checkpoint folder."""

    name = "grounding-dino"

    def __init__(self, model_dir: str | Path, box_threshold: float = 0.35, text_threshold: float = 0.25,
                 nms_iou: float = 0.5, device: str = "cpu") -> None:
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(str(model_dir))
        self.model = AutoModelForZeroShotObjectDetection.from_pretrained(str(model_dir)).to(device).eval()
        self.device = device
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.nms_iou = nms_iou
        self._dot_ids = set(self.processor.tokenizer.convert_tokens_to_ids(["."]))
        self._special_ids = set(self.processor.tokenizer.all_special_ids)

    def phrase_of_token(self, input_ids: Sequence[int]) -> np.ndarray:
        """For each text token, the index of the phrase it belongs to (-1: separator/special)."""
        owner = np.full(len(input_ids), -1, dtype=int)
        phrase = 0
        for pos, token in enumerate(input_ids):
            if token in self._dot_ids:
                phrase += 1
            elif token not in self._special_ids:
                owner[pos] = phrase
        return owner

    @torch.inference_mode()
    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        from PIL import Image

        h, w = frame.shape[:2]
        inputs = self.processor(images=Image.fromarray(frame), text=grounding_text(phrases), return_tensors="pt")
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        outputs = self.model(**inputs)
        probs = outputs.logits[0].float().sigmoid().cpu().numpy()  # (queries, max_text_len)
        owner = self.phrase_of_token(inputs["input_ids"][0].tolist())
        per_phrase = np.zeros((probs.shape[0], len(phrases)), dtype=np.float32)
        for k in range(len(phrases)):
            cols = np.nonzero(owner == k)[0]
            cols = cols[cols < probs.shape[1]]
            if cols.size:
                per_phrase[:, k] = probs[:, cols].max(1)
        class_id = per_phrase.argmax(1)
        scores = per_phrase.max(1)
        keep = (scores >= self.box_threshold) & (scores >= self.text_threshold)
        cx, cy, bw, bh = outputs.pred_boxes[0].float().cpu().numpy().T
        boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], 1)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        boxes, scores, class_id = boxes[keep], scores[keep], class_id[keep]
        kept = []
        for k in np.unique(class_id):
            idx = np.nonzero(class_id == k)[0]
            kept.extend(idx[nms(boxes[idx], scores[idx], self.nms_iou)])
        kept = np.asarray(sorted(kept, key=lambda i: -scores[i]), dtype=int)
        return make_detections(boxes[kept], scores[kept], class_id[kept], phrases)
