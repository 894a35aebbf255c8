"""SAM 3 (``Sam3Model``) promptable concept segmentation: every instance of each phrase, with masks.

Each phrase is a concept. The image encoder runs once per frame; the phrases then go through
the text encoder, DETR encoder/decoder and mask head together, as one batch (the frame's
features shared, ``phrase_batch`` phrases per forward pass). A query's score is its match
probability times the concept's presence probability (SAM 3's presence head). Boxes come in
frame pixels and masks at frame size in ``Detections.mask``, so the masks prompt SAM 2 directly.

The frame is resized (squashed) to the processor's square (1008x1008) and normalised as the
checkpoint's processor says. transformers' ``Sam3Processor`` needs torchvision, so the image
side is done here with torch; the CLIP tokenizer is the checkpoint's.

Prompts by example: SAM 3 takes boxes (positive and negative) as its geometry prompt, encoded
from the image they are drawn on (RoI-pooled features, then attention to that image) into
prompt tokens that sit beside the text tokens. transformers' ``Sam3Model`` encodes the boxes of
the image it detects on (``input_boxes``, ``input_boxes_labels``: normalised cx, cy, w, h and
1/0, as ``Sam3Processor`` makes them); here each concept's boxes are encoded once on *their*
image (the example's frame or picture, ``model.geometry_encoder``), and the tokens are given
with the concept's text on every keyframe (``text_embeds``). On the example's own frame this is
exactly ``Sam3Model(..., input_boxes=..., input_boxes_labels=...)``. A concept without a phrase
uses SAM 3's text for box-only prompts, "visual".

Weights ``facebook/sam3`` are gated on the hub: accept the licence on the model page and log in
(``hf auth login``); without that the hub answers 401/403 and the run ends with one line saying so.

Example:
    >>> det = SAM3Detector("facebook/sam3", box_threshold=0.5)          # doctest: +SKIP
    >>> found = det.detect(frame, ["person", "red car"])                # doctest: +SKIP
    >>> found.mask.shape == (len(found), *frame.shape[:2])              # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import supervision as sv
import torch

from ..exemplars import Concept, Example, VisualPrompt
from ..models import resolve_all
from .base import class_nms, make_detections, reject_prompt_free
from .grounding_dino import check_model_type
from .registry import DetectorSpec, folder_weights, load_folder, register
from .roi_align import provide_for_sam3

DEFAULT_MODEL = "facebook/sam3"
TEXT_LEN = 32  # SAM 3 pads every phrase to 32 CLIP tokens
VISUAL_TEXT = "visual"  # Sam3Processor's text for a prompt of boxes only


class SAM3Detector:
    """SAM 3 from a transformers checkpoint folder: boxes, scores and masks for each concept."""

    name = "sam3"
    phrase_batch = 16  # concepts per forward pass (they share the frame's image features)

    def __init__(self, model_dir: str | Path, box_threshold: float = 0.5, nms_iou: float = 0.7,
                 mask_threshold: float = 0.5, device: str = "cpu") -> None:
        from transformers import AutoTokenizer, Sam3Model

        check_model_type(model_dir, ("sam3", "sam3_video"), self.name)
        provide_for_sam3()  # box prompts pool with roi_align: torchvision's, or ours where it is absent
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = Sam3Model.from_pretrained(str(model_dir)).to(device).eval()
        self.size, self.mean, self.std, self.rescale = image_settings(Path(model_dir))
        self.device = device
        self.box_threshold = box_threshold
        self.nms_iou = nms_iou
        self.mask_logit = float(np.log(mask_threshold / (1 - mask_threshold)))  # threshold on logits, not probs
        self._prompt: tuple | None = None  # (prompt, tokens, mask) of the last VisualPrompt

    def pixels(self, frame: np.ndarray) -> torch.Tensor:
        """The model's input for one RGB frame: (1, 3, H, W), resized and normalised."""
        x = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device).permute(2, 0, 1)[None].float()
        x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        return (x * self.rescale - mean) / std

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        """Instances of every phrase on one RGB frame (HxWx3 uint8), with frame-size masks."""
        reject_prompt_free(phrases, self.name)
        return self._detect(frame, list(phrases))

    def detect_batch(self, frames: Sequence[np.ndarray], phrases: Sequence[str]) -> list[sv.Detections]:
        """:meth:`detect` on each frame (the phrases of a frame are already one batch)."""
        reject_prompt_free(phrases, self.name)
        return [self._detect(frame, list(phrases)) for frame in frames]

    @torch.inference_mode()
    def detect_prompt(self, frame: np.ndarray, prompt: VisualPrompt) -> sv.Detections:
        """Instances of `prompt`'s phrases and examples on one RGB frame; class ids index ``prompt.labels``."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        reject_prompt_free(prompt.phrases, self.name)
        tokens, mask = self.prompt_tokens(prompt)
        return self._search(frame, list(prompt.labels), lambda start, n: {
            "text_embeds": BaseModelOutputWithPooling(pooler_output=tokens[start:start + n]),
            "attention_mask": mask[start:start + n]})

    def prompt_tokens(self, prompt: VisualPrompt) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (concepts, L, D), valid (concepts, L)): each concept's text and box tokens, once per prompt."""
        if self._prompt is not None and self._prompt[0] is prompt:
            return self._prompt[1], self._prompt[2]
        concepts = prompt.concepts()
        text = self.tokenizer([c.text if c.text is not None else VISUAL_TEXT for c in concepts], padding="max_length",
                              max_length=TEXT_LEN, truncation=True, return_tensors="pt").to(self.device)
        text_tokens = self.model.get_text_features(input_ids=text["input_ids"],
                                                   attention_mask=text["attention_mask"]).pooler_output
        vision: dict[int, object] = {}  # each example image through the image encoder once
        rows = []
        for k, concept in enumerate(concepts):
            parts, valid = [text_tokens[k]], [text["attention_mask"][k].bool()]
            for boxes_tokens, boxes_valid in self.box_tokens(concept, vision):
                parts.append(boxes_tokens)
                valid.append(boxes_valid)
            rows.append((torch.cat(parts), torch.cat(valid)))
        length = max(len(t) for t, _ in rows)
        tokens = text_tokens.new_zeros(len(rows), length, text_tokens.shape[-1])
        mask = torch.zeros(len(rows), length, dtype=torch.bool, device=self.device)
        for k, (t, v) in enumerate(rows):
            tokens[k, :len(t)], mask[k, :len(v)] = t, v
        self._prompt = (prompt, tokens, mask)
        return tokens, mask

    def box_tokens(self, concept: Concept, vision: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The geometry encoder's tokens for a concept's boxes, one call per image they are drawn on."""
        by_image: dict[int, list[Example]] = {}
        for example in (*concept.positives, *concept.negatives):
            by_image.setdefault(id(example.image), []).append(example)
        out = []
        for examples in by_image.values():
            image = examples[0].image
            if id(image) not in vision:
                vision[id(image)] = self.model.get_vision_features(pixel_values=self.pixels(image))
            features = vision[id(image)]
            boxes, labels = sam3_boxes(examples, image.shape[:2], self.device)
            encoded = self.model.geometry_encoder(
                box_embeddings=boxes, box_mask=torch.ones_like(labels, dtype=torch.bool), box_labels=labels,
                img_feats=features.fpn_hidden_states[:-1], img_pos_embeds=features.fpn_position_encoding[:-1])
            out.append((encoded.last_hidden_state[0], encoded.attention_mask[0].bool()))
        return out

    @torch.inference_mode()
    def _detect(self, frame: np.ndarray, phrases: list[str]) -> sv.Detections:
        text = self.tokenizer(phrases, padding="max_length", max_length=TEXT_LEN, truncation=True,
                              return_tensors="pt").to(self.device)
        return self._search(frame, phrases, lambda start, n: {
            "input_ids": text["input_ids"][start:start + n], "attention_mask": text["attention_mask"][start:start + n]})

    def _search(self, frame: np.ndarray, labels: list[str], prompts) -> sv.Detections:
        """Every instance of each label on `frame`; ``prompts(start, n)`` are the model's prompt inputs for labels
        ``start .. start + n`` (the frame's image features are computed once and shared)."""
        vision = self.model.get_vision_features(pixel_values=self.pixels(frame))
        boxes, scores, class_ids, masks = [], [], [], []
        h, w = frame.shape[:2]
        for start in range(0, len(labels), self.phrase_batch):
            n = min(self.phrase_batch, len(labels) - start)
            shared = type(vision)(  # the frame's features, one view per concept (no copy)
                fpn_hidden_states=tuple(t.expand(n, *t.shape[1:]) for t in vision.fpn_hidden_states),
                fpn_position_encoding=tuple(t.expand(n, *t.shape[1:]) for t in vision.fpn_position_encoding))
            out = self.model(vision_embeds=shared, **prompts(start, n))
            score = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()  # (n, queries)
            concept, query = torch.nonzero(score >= self.box_threshold, as_tuple=True)
            if not len(query):
                continue
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=score.device)
            boxes.append((out.pred_boxes[concept, query].float() * scale).cpu().numpy())
            scores.append(score[concept, query].float().cpu().numpy())
            class_ids.append((concept + start).cpu().numpy())
            low_res = out.pred_masks[concept, query].float()[None]  # (1, kept, h', w') logits
            full = torch.nn.functional.interpolate(low_res, size=(h, w), mode="bilinear", align_corners=False)[0]
            masks.append((full > self.mask_logit).cpu().numpy())
        if not boxes:
            empty = make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), labels)
            empty.mask = np.zeros((0, h, w), dtype=bool)
            return empty
        xyxy = np.concatenate(boxes)
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
        score, class_id, mask = np.concatenate(scores), np.concatenate(class_ids), np.concatenate(masks)
        kept = class_nms(xyxy, score, class_id, self.nms_iou)
        found = make_detections(xyxy[kept], score[kept], class_id[kept], labels)
        found.mask = mask[kept]
        return found


def sam3_boxes(examples, image_hw: tuple[int, int], device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Example boxes as ``Sam3Model`` takes them: (1, K, 4) normalised cx, cy, w, h and (1, K) labels 1 / 0."""
    h, w = image_hw
    xyxy = torch.tensor([e.box for e in examples], dtype=torch.float32, device=device) / torch.tensor(
        [w, h, w, h], dtype=torch.float32, device=device)
    cxcywh = torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1)
    labels = torch.tensor([1 if e.positive else 0 for e in examples], dtype=torch.long, device=device)
    return cxcywh[None], labels[None]


def image_settings(folder: Path) -> tuple[tuple[int, int], list[float], list[float], float]:
    """(size, mean, std, rescale) of the checkpoint's image processor (SAM 3's defaults when absent)."""
    settings: dict = {}
    for name in ("processor_config.json", "preprocessor_config.json"):
        try:
            data = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        settings = data.get("image_processor", data)
        break
    size = settings.get("size") or {"height": 1008, "width": 1008}
    return ((int(size["height"]), int(size["width"])), list(settings.get("image_mean") or [0.5] * 3),
            list(settings.get("image_std") or [0.5] * 3), float(settings.get("rescale_factor") or 1 / 255))


def _weights(config) -> list:
    return [folder_weights("sam3", config.model or DEFAULT_MODEL)]


def _build(config, device: str) -> SAM3Detector:
    # A hub refusal (gated, HTTP 401/403) is one line from resolve_folder: the model page and `hf auth login`.
    folder, = resolve_all(_weights(config))  # found, and its weights files checked
    return load_folder("sam3", folder, lambda: SAM3Detector(folder, config.box_threshold, config.nms_iou,
                                                           device=device))


register(DetectorSpec(
    "sam3", _build, needs=f"weights {DEFAULT_MODEL} (gated: accept the licence, hf auth login)",
    about="concept segmentation, boxes + masks (masks prompt SAM 2); best quality, heavy",
    aliases=("sam-3", "sam_3"), default_model=DEFAULT_MODEL, model_types=("sam3", "sam3_video"), weights=_weights,
    exemplars=("positive", "negative")))
