"""Grounding DINO through transformers: open-vocabulary boxes from text.

The prompt is sent in the form the model was trained on ("person . red car ."). Each box gets
the phrase whose tokens score highest for it, so phrases of several tokens map back to one
label; the box score is that phrase's best token score. :func:`grounded_detections` is that
post-processing, shared with MM-Grounding-DINO / LLMDet (``mm_grounding_dino.py``), whose heads
give the same (queries x text tokens) logits.

The text encoder reads at most ``max_text_len`` tokens (256): a longer prompt (hundreds of
phrases) is split into groups that fit, one forward pass each, and the boxes merged; class ids
index the full phrase list.

Several frames go through the model at once with :meth:`GroundingDINODetector.detect_batch`
(useful on a GPU; on a CPU it is about as fast as one at a time).

Example:
    >>> det = GroundingDINODetector("IDEA-Research/grounding-dino-tiny")   # doctest: +SKIP
    >>> det.detect(frame, ["person", "red car"])                            # doctest: +SKIP
    >>> det.detect_batch([frame0, frame1], ["person"])                      # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import supervision as sv
import torch

from ..errors import ModelNotFoundError
from ..models import resolve_all
from ..prompts import grounding_text
from .base import class_nms, cxcywh_to_xyxy, make_detections, merge_groups, reject_prompt_free, sigmoid, split_phrases
from .registry import DetectorSpec, folder_weights, load_folder, register, spec_for_path

DEFAULT_MODEL = "IDEA-Research/grounding-dino-tiny"


def phrase_of_token(input_ids: Sequence[int], separator_ids: set[int], special_ids: set[int]) -> np.ndarray:
    """For each text token, the index of the phrase it belongs to (-1: separator or special token).

    >>> phrase_of_token([101, 2711, 1012, 2417, 2482, 1012, 102], {1012}, {101, 102}).tolist()
    [-1, 0, -1, 1, 1, -1, -1]
    """
    owner = np.full(len(input_ids), -1, dtype=int)
    phrase = 0
    for pos, token in enumerate(input_ids):
        if token in separator_ids:
            phrase += 1
        elif token not in special_ids:
            owner[pos] = phrase
    return owner


def grounded_detections(
    logits: np.ndarray,
    pred_boxes: np.ndarray,
    owner: np.ndarray,
    phrases: Sequence[str],
    frame_hw: tuple[int, int],
    box_threshold: float,
    text_threshold: float,
    nms_iou: float,
) -> sv.Detections:
    """Detections of one image from Grounding-DINO-style outputs.

    Args:
        logits: (queries, text_len) token logits of one image.
        pred_boxes: (queries, 4) relative (cx, cy, w, h).
        owner: phrase index of each text token (:func:`phrase_of_token`).
        frame_hw: (height, width) of the frame, for pixel boxes.
    """
    probs = sigmoid(logits)  # (queries, text_len)
    per_phrase = np.zeros((probs.shape[0], len(phrases)), dtype=np.float32)
    for k in range(len(phrases)):
        cols = np.nonzero(owner == k)[0]
        cols = cols[cols < probs.shape[1]]  # a prompt longer than max_text_len is truncated
        if cols.size:
            per_phrase[:, k] = probs[:, cols].max(1)
    class_id = per_phrase.argmax(1) if len(phrases) else np.zeros(probs.shape[0], dtype=int)
    scores = per_phrase.max(1) if len(phrases) else np.zeros(probs.shape[0], dtype=np.float32)
    keep = (scores >= box_threshold) & (scores >= text_threshold)
    h, w = frame_hw
    boxes = cxcywh_to_xyxy(pred_boxes, w, h, clip=(h, w))
    boxes, scores, class_id = boxes[keep], scores[keep], class_id[keep]
    kept = class_nms(boxes, scores, class_id, nms_iou)
    return make_detections(boxes[kept], scores[kept], class_id[kept], phrases)


def check_model_type(folder: str | Path, expected: tuple[str, ...], detector: str) -> None:
    """One clear line when a folder holds another model family than the detector expects."""
    try:
        found = json.loads((Path(folder) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        return  # let from_pretrained report what is wrong with the folder
    if found and found not in expected:
        family = spec_for_path(folder)
        use = f": use --detector {family.name}" if family is not None else ""
        raise ModelNotFoundError(f"{folder} holds a {found} model, not {' or '.join(expected)} ({detector}){use}")


class GroundingDINODetector:
    """Open-vocabulary detector; `model_dir` is a transformers checkpoint folder.

    Example:
        >>> det = GroundingDINODetector("path/to/grounding-dino-tiny", box_threshold=0.3)  # doctest: +SKIP
        >>> found = det.detect(frame, ["person", "red car"])                               # doctest: +SKIP
        >>> found.data["class_name"]                                                       # doctest: +SKIP
        array(['red car', 'person'], dtype=object)
    """

    name = "grounding-dino"
    model_types: tuple[str, ...] = ("grounding-dino", "mm-grounding-dino")
    batch_size = 4  # frames per forward pass in detect_batch

    def __init__(self, model_dir: str | Path, box_threshold: float = 0.35, text_threshold: float = 0.25,
                 nms_iou: float = 0.5, device: str = "cpu") -> None:
        from transformers import AutoProcessor

        check_model_type(model_dir, self.model_types, self.name)
        self.processor = AutoProcessor.from_pretrained(str(model_dir))
        self.model = self.model_class().from_pretrained(str(model_dir)).to(device).eval()
        self.device = device
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.nms_iou = nms_iou
        self._dot_ids = set(self.processor.tokenizer.convert_tokens_to_ids(["."]))
        self._special_ids = set(self.processor.tokenizer.all_special_ids)
        self.max_text_len = int(getattr(self.model.config, "max_text_len", 256))

    @classmethod
    def model_class(cls):
        from transformers import AutoModelForZeroShotObjectDetection

        return AutoModelForZeroShotObjectDetection

    def phrase_of_token(self, input_ids: Sequence[int]) -> np.ndarray:
        """For each text token, the index of the phrase it belongs to (-1: separator/special)."""
        return phrase_of_token(input_ids, self._dot_ids, self._special_ids)

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        """Boxes for `phrases` on one RGB frame (HxWx3 uint8)."""
        return self.detect_batch([frame], phrases)[0]

    def groups(self, phrases: Sequence[str]) -> list[range]:
        """Phrase groups whose prompt ("a . b . c .") fits the text encoder's ``max_text_len`` tokens."""
        costs = [len(ids) - 1 for ids in self.processor.tokenizer(list(phrases))["input_ids"]]  # tokens + " ."
        return split_phrases(costs, self.max_text_len - 2)  # [CLS] and [SEP]

    def detect_batch(self, frames: Sequence[np.ndarray], phrases: Sequence[str]) -> list[sv.Detections]:
        """Boxes for `phrases` on several frames, ``batch_size`` per forward pass (per phrase group)."""
        reject_prompt_free(phrases, self.name)
        groups = self.groups(phrases)
        if len(groups) == 1:
            return self._detect_group(frames, phrases)
        per_group = [self._detect_group(frames, [phrases[i] for i in g]) for g in groups]
        return [merge_groups([found[f] for found in per_group], groups, phrases) for f in range(len(frames))]

    @torch.inference_mode()
    def _detect_group(self, frames: Sequence[np.ndarray], phrases: Sequence[str]) -> list[sv.Detections]:
        from PIL import Image

        text = grounding_text(phrases)
        results: list[sv.Detections] = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start:start + self.batch_size]
            inputs = self.processor(images=[Image.fromarray(f) for f in chunk], text=[text] * len(chunk),
                                    return_tensors="pt")
            inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
            outputs = self.model(**inputs)
            owner = self.phrase_of_token(inputs["input_ids"][0].tolist())  # same text for every frame
            logits = outputs.logits.float().cpu().numpy()
            boxes = outputs.pred_boxes.float().cpu().numpy()
            for i, frame in enumerate(chunk):
                results.append(grounded_detections(logits[i], boxes[i], owner, phrases, frame.shape[:2],
                                                   self.box_threshold, self.text_threshold, self.nms_iou))
        return results


def family_weights(name: str, default: str):
    """The registry's ``weights`` of a family loading one checkpoint folder (``default`` when unset)."""
    return lambda config: [folder_weights(name, config.model or default)]


def build_grounding_family(cls, default: str):
    """The registry's ``build`` of a Grounding DINO-family detector class."""
    weights = family_weights(cls.name, default)

    def build(config, device: str):
        folder, = resolve_all(weights(config))  # found, and its weights files checked
        return load_folder(cls.name, folder, lambda: cls(folder, config.box_threshold, config.text_threshold,
                                                         config.nms_iou, device))
    return build


register(DetectorSpec(
    "grounding-dino", build_grounding_family(GroundingDINODetector, DEFAULT_MODEL), needs=f"weights {DEFAULT_MODEL}",
    about="open vocabulary, local (default)", aliases=("grounding_dino", "gdino", "groundingdino"),
    default_model=DEFAULT_MODEL, model_types=("grounding-dino",),
    weights=family_weights("grounding-dino", DEFAULT_MODEL)))
