"""OmDet-Turbo (``OmDetTurboForObjectDetection``): a fast open-vocabulary detector.

Every phrase is its own class (embedded once by the CLIP text encoder), and the task prompt
"Detect person, red car." conditions the decoder, as the model was trained. Each query scores
every phrase; a (query, phrase) pair above the threshold is a box, then NMS per phrase. Frames
are resized (squashed) to the processor's size (640x640), so boxes are relative to the frame.

Built for live streams and CPUs: Swin-T at 640 px, no text-image fusion encoder. The real
checkpoint's backbone is a timm Swin-T; it loads as transformers' own Swin (``timm_swin.py``), so
neither timm nor torchvision is needed.

The task prompt holds at most ``max_text_len`` (77) CLIP tokens: longer phrase lists are split
across calls and merged (class ids index the full list).

Example:
    >>> det = OmDetTurboDetector("omlab/omdet-turbo-swin-tiny-hf", box_threshold=0.3)   # doctest: +SKIP
    >>> det.detect(frame, ["person", "red car"]).data["class_name"]                      # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import supervision as sv
import torch

from ..checkpoints import load_weights
from ..errors import ModelNotFoundError, display_path
from ..models import resolve_all
from .base import class_nms, cxcywh_to_xyxy, make_detections, merge_groups, reject_prompt_free, sigmoid, split_phrases
from .grounding_dino import check_model_type
from .registry import DetectorSpec, folder_weights, load_folder, register
from .timm_swin import rename_state_dict, rewrite_config, use_timm_window_order, uses_timm_swin

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
        config = load_config(Path(model_dir))
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), config=config)  # not the folder's config.json
        self.model = load_model(Path(model_dir), config).to(device).eval()
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


def load_config(folder: Path):
    """The folder's ``OmDetTurboConfig``; a timm Swin backbone's rewritten for transformers' Swin.

    Read from the JSON, not through transformers: given a timm backbone's name, transformers 5
    asks the hub whether the name is a repo, which fails offline.
    """
    from transformers import OmDetTurboConfig

    config = json.loads((folder / "config.json").read_text())
    return OmDetTurboConfig.from_dict(rewrite_config(config) if uses_timm_swin(config) else config)


def load_model(folder: Path, config):
    """``OmDetTurboForObjectDetection`` from `folder`; a timm Swin backbone is loaded as transformers' Swin.

    The hub checkpoint's backbone is timm's (``timm_swin.py``): its weights are renamed in
    memory to the rewritten config's (:func:`load_config`), so neither timm nor torchvision is
    needed. Every weight of the checkpoint must land in the model and every weight of the model
    must come from it; anything else is one line naming the folder.
    """
    from transformers import OmDetTurboForObjectDetection

    original = json.loads((folder / "config.json").read_text())
    if not uses_timm_swin(original):
        return OmDetTurboForObjectDetection.from_pretrained(str(folder), config=config)
    try:
        state = rename_state_dict(load_weights(folder), original)
    except KeyError as exc:
        raise ModelNotFoundError(f"cannot load omdet-turbo from {display_path(folder)}: its timm backbone has a weight "
                                 f"this loader does not know ({exc.args[0]})") from None
    model, info = OmDetTurboForObjectDetection.from_pretrained(None, config=config, state_dict=state,
                                                               output_loading_info=True)
    left = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if left:
        kind, keys = next(iter(left.items()))
        raise ModelNotFoundError(f"cannot load omdet-turbo from {display_path(folder)}: {kind.replace('_', ' ')} after "
                                 f"mapping its timm backbone: {', '.join(map(str, keys[:3]))}"
                                 + (f" and {len(keys) - 3} more" if len(keys) > 3 else ""))
    use_timm_window_order(model.vision_backbone.vision_backbone)  # timm's features at 640 px too
    return model


def _weights(config) -> list:
    return [folder_weights("omdet-turbo", config.model or DEFAULT_MODEL)]


def _build(config, device: str) -> OmDetTurboDetector:
    folder, = resolve_all(_weights(config))  # found, and its weights files checked
    return load_folder("omdet-turbo", folder, lambda: OmDetTurboDetector(folder, config.box_threshold, config.nms_iou,
                                                                         device))


register(DetectorSpec(
    "omdet-turbo", _build, needs=f"weights {DEFAULT_MODEL}",
    about="open vocabulary, fast (live streams, CPUs)", aliases=("omdet", "omdet_turbo", "omdetturbo"),
    default_model=DEFAULT_MODEL, model_types=("omdet-turbo",), weights=_weights))
