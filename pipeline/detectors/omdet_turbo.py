"""OmDet-Turbo (``OmDetTurboForObjectDetection``): a fast open-vocabulary detector.

Every phrase is its own class (embedded once by the CLIP text encoder), and the task prompt
"Detect person, red car." conditions the decoder, as the model was trained. Each query scores
every phrase; a (query, phrase) pair above the threshold is a box, then NMS per phrase. Frames
are resized (squashed) to the processor's size (640x640), so boxes are relative to the frame.

Built for live streams and CPUs: Swin-T at 640 px, no text-image fusion encoder. The real
checkpoint's backbone is a timm Swin-T, so ``omlab/omdet-turbo-swin-tiny-hf`` needs ``timm``
installed; checkpoints with a transformers backbone load without it.

The task prompt holds at most ``max_text_len`` (77) CLIP tokens: longer phrase lists are split
across calls and merged (class ids index the full list).

Example:
    >>> det = OmDetTurboDetector("omlab/omdet-turbo-swin-tiny-hf", box_threshold=0.3)   # doctest: +SKIP
    >>> det.detect(frame, ["person", "red car"]).data["class_name"]                      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import supervision as sv
import torch

from ..errors import ModelNotFoundError
from ..models import resolve_folder
from .base import class_nms, cxcywh_to_xyxy, make_detections, merge_groups, reject_prompt_free, sigmoid, split_phrases
from .grounding_dino import check_model_type
from .registry import DetectorSpec, load_folder, register

DEFAULT_MODEL = "omlab/omdet-turbo-swin-tiny-hf"


class OmDetTurboDetector:
    """OmDet-Turbo from a transformers checkpoint folder; one class per phrase."""

    name = "omdet-turbo"
    batch_size = 4  # frames per forward pass in detect_batch
    max_detections = 100  # best (query, phrase) pairs kept per frame before NMS

    def __init__(self, model_dir: str | Path, box_threshold: float = 0.3, nms_iou: float = 0.5,
                 device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, OmDetTurboForObjectDetection

        check_model_type(model_dir, ("omdet-turbo",), self.name)
        # The PIL image processor: transformers' OmDetTurboProcessor needs torchvision (its NMS).
        self.image_processor = AutoImageProcessor.from_pretrained(str(model_dir), backend="pil")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        try:
            self.model = OmDetTurboForObjectDetection.from_pretrained(str(model_dir)).to(device).eval()
        except ImportError as exc:  # the hub checkpoint's timm backbone
            raise ModelNotFoundError(f"{model_dir} needs a package that is not installed to load: "
                                     f"{str(exc).strip().splitlines()[0][:160]} (pip install timm)") from None
        self.max_text_len = min(int(getattr(self.tokenizer, "model_max_length", 77) or 77), 77)
        self.device = device
        self.box_threshold = box_threshold
        self.nms_iou = nms_iou

    def task(self, phrases: Sequence[str]) -> str:
        """The task prompt the decoder is conditioned on."""
        return f"Detect {', '.join(phrases)}."

    def groups(self, phrases: Sequence[str]) -> list[range]:
        """Phrase groups whose task prompt fits the text encoder (``max_text_len`` tokens)."""
        def length(text: str) -> int:
            return len(self.tokenizer(text)["input_ids"])

        costs = [length(", " + p) - 2 for p in phrases]  # the phrase and its separator, no start/end tokens
        budget = self.max_text_len - length(self.task([]))  # "Detect ." with start and end tokens
        while True:  # BPE may merge across a boundary: check each group's real length, tighten if over
            groups = split_phrases(costs, budget)
            over = max(length(self.task([phrases[i] for i in g])) - self.max_text_len for g in groups)
            if over <= 0 or budget <= 1:
                return groups
            budget -= over

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        """Boxes for `phrases` on one RGB frame (HxWx3 uint8)."""
        return self.detect_batch([frame], phrases)[0]

    def detect_batch(self, frames: Sequence[np.ndarray], phrases: Sequence[str]) -> list[sv.Detections]:
        """Boxes for `phrases` on several frames, ``batch_size`` per forward pass."""
        reject_prompt_free(phrases, self.name)
        groups = self.groups(phrases)
        per_group = [self._detect_group(frames, [phrases[i] for i in g]) for g in groups]
        if len(groups) == 1:
            return per_group[0]
        return [merge_groups([found[f] for found in per_group], groups, phrases) for f in range(len(frames))]

    @torch.inference_mode()
    def _detect_group(self, frames: Sequence[np.ndarray], phrases: Sequence[str]) -> list[sv.Detections]:
        from PIL import Image

        text = dict(padding="max_length", max_length=self.max_text_len, truncation=True, return_tensors="pt")
        results: list[sv.Detections] = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start:start + self.batch_size]
            pixels = self.image_processor(images=[Image.fromarray(f) for f in chunk], return_tensors="pt")
            classes = self.tokenizer(list(phrases) * len(chunk), **text)
            tasks = self.tokenizer([self.task(phrases)] * len(chunk), **text)
            outputs = self.model(
                pixel_values=pixels["pixel_values"].to(self.device),
                classes_input_ids=classes["input_ids"].to(self.device),
                classes_attention_mask=classes["attention_mask"].to(self.device),
                tasks_input_ids=tasks["input_ids"].to(self.device),
                tasks_attention_mask=tasks["attention_mask"].to(self.device),
                classes_structure=torch.full((len(chunk),), len(phrases), dtype=torch.long, device=self.device),
            )
            logits = outputs.decoder_class_logits.float().cpu().numpy()  # (frames, queries, phrases)
            boxes = outputs.decoder_coord_logits.float().cpu().numpy()  # (frames, queries, 4) relative cxcywh
            for i, frame in enumerate(chunk):
                results.append(self._detections(logits[i], boxes[i], phrases, frame.shape[:2]))
        return results

    def _detections(self, logits: np.ndarray, boxes: np.ndarray, phrases: Sequence[str],
                    frame_hw: tuple[int, int]) -> sv.Detections:
        scores = sigmoid(logits[:, : len(phrases)])
        query, class_id = np.nonzero(scores >= self.box_threshold)  # every (query, phrase) pair above it
        conf = scores[query, class_id]
        best = np.argsort(-conf, kind="stable")[: self.max_detections]
        query, class_id, conf = query[best], class_id[best], conf[best]
        h, w = frame_hw
        xyxy = cxcywh_to_xyxy(boxes[query], w, h, clip=(h, w))
        kept = class_nms(xyxy, conf, class_id, self.nms_iou)
        return make_detections(xyxy[kept], conf[kept], class_id[kept], phrases)


def _build(config, device: str) -> OmDetTurboDetector:
    folder = resolve_folder(config.model or DEFAULT_MODEL)
    return load_folder("omdet-turbo", folder, lambda: OmDetTurboDetector(folder, config.box_threshold, config.nms_iou,
                                                                         device))


register(DetectorSpec(
    "omdet-turbo", _build, needs=f"weights {DEFAULT_MODEL} + pip install timm (its Swin-T backbone)",
    about="open vocabulary, fast (live streams, CPUs)", aliases=("omdet", "omdet_turbo", "omdetturbo"),
    default_model=DEFAULT_MODEL, model_types=("omdet-turbo",)))
