"""SAM 2, frame by frame, with memory bounded by configuration rather than video length.

The reference ``SAM2VideoPredictor`` decodes the whole video up front and keeps every past
output. For tracking, SAM 2 only ever reads, per object:

- its conditioning (prompted) frames,
- the memories of the last ``num_maskmem - 1`` frames,
- the object pointers of the last ``max_obj_ptrs_in_encoder - 1`` frames.

This engine takes one frame at a time, runs the image encoder once per frame (prompting new
objects on that frame reuses the features), keeps each object's memory separately (adding,
re-prompting or removing one object never resets the others) and drops everything SAM 2 can no
longer read. Conditioning frames are capped at ``max_cond_frames`` per object (nearest kept).

Example:
    >>> engine = SAM2Engine(model, device="cpu")            # doctest: +SKIP
    >>> dets = engine.step(0, frame)                         # doctest: +SKIP
    >>> engine.add([1], np.array([[10, 20, 200, 220]]))      # doctest: +SKIP
    >>> engine.current().tracker_id                          # doctest: +SKIP
    array([1])
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import supervision as sv
import torch
import torch.nn.functional as F

from .base import detections_from_masks
from .masks import fill_small_holes

# SAM 2 normalises images with the ImageNet statistics.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
# Streaming: the video length is unknown. SAM 2 uses it only to cap the pointer window
# (min(num_frames, max_obj_ptrs_in_encoder)), so any length past that cap is equivalent.
_UNKNOWN_LENGTH = 1 << 30


def _stack_entries(per_object: list[dict[int, dict[str, Any]]]) -> dict[int, dict[str, Any]]:
    """Per-object memory entries of the same frames, concatenated along the batch dimension."""
    stacked = {}
    for t in per_object[0]:
        entries = [entries_of_one[t] for entries_of_one in per_object]
        features = [e["maskmem_features"] for e in entries]
        stacked[t] = {
            "maskmem_features": None if features[0] is None else torch.cat(features),
            "maskmem_pos_enc": [x.expand(len(entries), -1, -1, -1) for x in entries[0]["maskmem_pos_enc"]],
            "obj_ptr": torch.cat([e["obj_ptr"] for e in entries]),
        }
    return stacked


@dataclass
class ObjectMemory:
    """What SAM 2 can still read for one object, in the layout its ``track_step`` expects."""

    cond: dict[int, dict[str, Any]] = field(default_factory=dict)  # prompted frames
    non_cond: dict[int, dict[str, Any]] = field(default_factory=dict)  # propagated frames
    logits: torch.Tensor | None = None  # low-res mask logits on the current frame
    score: float = 0.0  # object score logit on the current frame

    def as_output_dict(self) -> dict[str, dict[int, dict[str, Any]]]:
        return {"cond_frame_outputs": self.cond, "non_cond_frame_outputs": self.non_cond}

    def entries(self) -> int:
        return len(self.cond) + len(self.non_cond)


class SAM2Engine:
    """Bounded-memory streaming SAM 2 behind the MaskTracker protocol.

    Args:
        model: a SAM 2 model (``SAM2Base`` or the video predictor built from it), in eval mode.
        device: where it runs.
        dtype: ``torch.bfloat16`` for autocast (CUDA, or CPU where fast), ``torch.float32`` otherwise.
        max_cond_frames: prompted frames kept per object; the nearest ones stay.
        fill_hole_area: holes and specks up to this many pixels are removed from output masks.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        max_cond_frames: int = 4,
        fill_hole_area: int = 0,
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_cond_frames = max(1, int(max_cond_frames))
        self.fill_hole_area = int(fill_hole_area)
        self.image_size = int(model.image_size)
        self.num_maskmem = int(model.num_maskmem)
        self.max_obj_ptrs = int(model.max_obj_ptrs_in_encoder) if model.use_obj_ptrs_in_encoder else 1
        self._objects: dict[int, ObjectMemory] = {}
        self._index: int | None = None
        self._video_hw: tuple[int, int] | None = None
        self._features: tuple | None = None  # current frame's backbone features (batch 1)
        self._maskmem_pos_enc: list[torch.Tensor] | None = None  # same for every frame
        self._mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ protocol
    @property
    def ids(self) -> list[int]:
        return list(self._objects)

    @torch.inference_mode()
    def step(self, index: int, frame: np.ndarray) -> sv.Detections:
        """Encode `frame` and carry every object's mask onto it."""
        if self._index is not None and index <= self._index:
            raise ValueError(f"frames must come in order: got {index} after {self._index}")
        self._index = index
        self._video_hw = frame.shape[:2]
        with self._autocast():
            self._features = self._encode(frame)
            for memory in self._objects.values():
                self._prune(memory, index)
            for group in self._groups():
                self._track_batch(group, index)
        return self.current()

    @torch.inference_mode()
    def add(self, ids: Sequence[int], boxes: np.ndarray, masks: Sequence[np.ndarray | None] | None = None) -> None:
        """Start new objects on the current frame, each from a box (xyxy, source pixels).

        Where a mask (HxW bool, source size) is given for an object, SAM 2 is prompted with the
        mask instead of the box (as the reference predictor's ``add_new_mask``).
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        masks = list(masks) if masks is not None else [None] * len(boxes)
        for obj_id, box, mask in zip(ids, boxes, masks):
            if obj_id in self._objects:
                raise ValueError(f"object id {obj_id} is already tracked")
            self._objects[int(obj_id)] = ObjectMemory()
            self._prompt(int(obj_id), box, mask)

    @torch.inference_mode()
    def reprompt(self, ids: Sequence[int], boxes: np.ndarray) -> None:
        """Re-segment objects from new boxes on the current frame; their memory is kept."""
        for obj_id, box in zip(ids, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)):
            if obj_id not in self._objects:
                raise KeyError(f"unknown object id {obj_id}")
            self._prompt(int(obj_id), box)

    def remove(self, ids: Sequence[int]) -> None:
        for obj_id in ids:
            self._objects.pop(int(obj_id), None)

    @torch.inference_mode()
    def backfill(self, ids: Sequence[int], frames: Sequence[tuple[int, np.ndarray]]) -> dict[int, sv.Detections]:
        """Carry objects prompted on the current frame backwards over earlier `frames`.

        SAM 2 tracks in reverse from the prompt, as the reference predictor does, one earlier
        frame at a time (each is re-encoded: caching K frames of features would cost more memory
        than the encoder costs time). Returns Detections of `ids` per frame index. The objects'
        forward memory is left as it was, so tracking on from the current frame is unchanged.
        """
        ids = [int(i) for i in ids if int(i) in self._objects]
        if not ids or not frames:
            return {}
        current = (self._features, self._video_hw)
        reverse_memory = {i: ObjectMemory(cond={self._index: self._objects[i].cond[self._index]}) for i in ids}
        results: dict[int, sv.Detections] = {}
        try:
            with self._autocast():
                for index, frame in sorted(frames, key=lambda item: -item[0]):
                    if index >= self._index:
                        raise ValueError("back-fill frames must come before the current frame")
                    self._video_hw = frame.shape[:2]
                    self._features = self._encode(frame)
                    for memory in reverse_memory.values():
                        out = self._track(memory, index, point_inputs=None, reverse=True)
                        memory.non_cond[index] = self._compact(out)
                        self._prune(memory, index, reverse=True)
                    results[index] = self._detections(ids, [reverse_memory[i].logits for i in ids])
        finally:
            self._features, self._video_hw = current
        return results

    def mask_logits(self) -> torch.Tensor:
        """Mask logits of every held object on the current frame at video size, (N, H, W) float32."""
        return self._upsample([m.logits for m in self._objects.values()])

    def current(self) -> sv.Detections:
        if not self._objects or self._video_hw is None:
            return sv.Detections.empty()
        return self._detections(list(self._objects), [m.logits for m in self._objects.values()])

    def _upsample(self, logits: list[torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            stacked = torch.cat(logits, dim=0).float()
            return F.interpolate(stacked, size=self._video_hw, mode="bilinear", align_corners=False)[:, 0]

    def _detections(self, ids: list[int], logits: list[torch.Tensor]) -> sv.Detections:
        masks = (self._upsample(logits) > 0).cpu().numpy()
        if self.fill_hole_area > 0:
            masks = np.stack([fill_small_holes(m, self.fill_hole_area) for m in masks])
        return detections_from_masks(ids, masks)

    # ------------------------------------------------------------------ appearance
    def track_embeddings(self) -> dict[int, np.ndarray]:
        """Per object with a visible mask: the frame's image features averaged under its mask.

        L2-normalised vectors (SAM 2's top-level backbone features, 256-d), for re-identifying
        an object after it was lost. Objects without a mask on this frame are left out.
        """
        feature_map = self._feature_map()
        out = {}
        for obj_id, memory in self._objects.items():
            weight = (F.interpolate(memory.logits.float(), size=feature_map.shape[-2:], mode="bilinear",
                                    align_corners=False)[0, 0] > 0).float()
            if weight.sum() > 0:
                out[obj_id] = self._pool(feature_map, weight)
        return out

    def box_embeddings(self, boxes: np.ndarray) -> np.ndarray:
        """The frame's image features averaged inside each box (N,4 xyxy source pixels) -> (N, 256)."""
        feature_map = self._feature_map()
        fh, fw = feature_map.shape[-2:]
        h, w = self._video_hw
        rows = []
        for x1, y1, x2, y2 in np.asarray(boxes, dtype=float).reshape(-1, 4):
            c1, c2 = int(np.floor(x1 / w * fw)), max(int(np.ceil(x2 / w * fw)), int(np.floor(x1 / w * fw)) + 1)
            r1, r2 = int(np.floor(y1 / h * fh)), max(int(np.ceil(y2 / h * fh)), int(np.floor(y1 / h * fh)) + 1)
            weight = torch.zeros((fh, fw), device=feature_map.device)
            weight[max(r1, 0):min(r2, fh), max(c1, 0):min(c2, fw)] = 1.0
            rows.append(self._pool(feature_map, weight))
        return np.stack(rows) if rows else np.zeros((0, feature_map.shape[0]), np.float32)

    def _feature_map(self) -> torch.Tensor:
        vision_feats, _, feat_sizes = self._features
        h, w = feat_sizes[-1]
        return vision_feats[-1][:, 0].float().T.reshape(-1, h, w)  # (C, H, W)

    @staticmethod
    def _pool(feature_map: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
        vector = (feature_map * weight).sum((1, 2)) / weight.sum().clamp(min=1.0)
        return F.normalize(vector, dim=0).cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------------ memory bounds
    def memory_entries(self) -> dict[int, int]:
        """Stored frame entries per object (conditioning + propagated): bounded, see `_prune`."""
        return {i: m.entries() for i, m in self._objects.items()}

    def _prune(self, memory: ObjectMemory, index: int, reverse: bool = False) -> None:
        """Drop what tracking frame `index` (and the frames after it) can no longer read."""
        sign = -1 if reverse else 1  # in reverse, "older" means a larger frame index
        oldest_ptr = sign * index - (self.max_obj_ptrs - 1)
        oldest_mem = sign * index - (self.num_maskmem - 1)
        for t in [t for t in memory.non_cond if sign * t < oldest_ptr]:
            del memory.non_cond[t]
        for t, out in memory.non_cond.items():
            if sign * t < oldest_mem and out["maskmem_features"] is not None:
                out["maskmem_features"] = None  # only its object pointer is still read
        if len(memory.cond) > self.max_cond_frames:
            keep = sorted(memory.cond, key=lambda t: (abs(index - t), -t))[: self.max_cond_frames]
            for t in [t for t in memory.cond if t not in keep]:
                del memory.cond[t]

    # ------------------------------------------------------------------ SAM 2 calls
    def _autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _encode(self, frame: np.ndarray) -> tuple:
        image = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device)
        image = image.permute(2, 0, 1)[None].float() / 255.0
        if image.shape[-2:] != (self.image_size, self.image_size):
            image = F.interpolate(
                image, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False
            ).clamp_(0, 1)
        image = (image - self._mean) / self._std
        backbone_out = self.model.forward_image(image)
        _, vision_feats, vision_pos, feat_sizes = self.model._prepare_backbone_features(backbone_out)
        return vision_feats, vision_pos, feat_sizes

    def _track(self, memory: ObjectMemory, index: int, point_inputs: dict | None, reverse: bool = False,
               mask_inputs: torch.Tensor | None = None) -> dict:
        vision_feats, vision_pos, feat_sizes = self._features
        out = self.model.track_step(
            frame_idx=index,
            is_init_cond_frame=point_inputs is not None or mask_inputs is not None,
            current_vision_feats=vision_feats,
            current_vision_pos_embeds=vision_pos,
            feat_sizes=feat_sizes,
            point_inputs=point_inputs,
            mask_inputs=mask_inputs,
            output_dict=memory.as_output_dict(),
            num_frames=_UNKNOWN_LENGTH,
            track_in_reverse=reverse,
            run_mem_encoder=True,
        )
        memory.logits = out["pred_masks"]
        memory.score = float(out["object_score_logits"].float().max())
        return out

    def _groups(self) -> list[list[ObjectMemory]]:
        """Objects whose memory holds the same frames: SAM 2 can run them as one batch."""
        groups: dict[tuple, list[ObjectMemory]] = {}
        for memory in self._objects.values():
            layout = (tuple(sorted(memory.cond)),
                      tuple(sorted((t, out["maskmem_features"] is not None) for t, out in memory.non_cond.items())))
            groups.setdefault(layout, []).append(memory)
        return list(groups.values())

    def _track_batch(self, memories: list[ObjectMemory], index: int) -> None:
        """Propagate several objects at once; each keeps its own memory (results are split back)."""
        if len(memories) == 1:
            memories[0].non_cond[index] = self._compact(self._track(memories[0], index, point_inputs=None))
            return
        batch = ObjectMemory(cond=_stack_entries([m.cond for m in memories]),
                             non_cond=_stack_entries([m.non_cond for m in memories]))
        vision_feats, vision_pos, feat_sizes = self._features
        n = len(memories)
        self._features = ([x.expand(-1, n, -1) for x in vision_feats], [x.expand(-1, n, -1) for x in vision_pos],
                          feat_sizes)
        try:
            out = self._track(batch, index, point_inputs=None)
        finally:
            self._features = (vision_feats, vision_pos, feat_sizes)
        compact = self._compact(out)
        scores = out["object_score_logits"].float()
        for k, memory in enumerate(memories):
            memory.logits = out["pred_masks"][k:k + 1]
            memory.score = float(scores[k].max())
            memory.non_cond[index] = {"maskmem_features": compact["maskmem_features"][k:k + 1],
                                      "maskmem_pos_enc": compact["maskmem_pos_enc"],
                                      "obj_ptr": compact["obj_ptr"][k:k + 1]}

    def _prompt(self, obj_id: int, box: np.ndarray, mask: np.ndarray | None = None) -> None:
        if self._features is None or self._video_hw is None:
            raise RuntimeError("call step() with a frame before adding objects")
        memory = self._objects[obj_id]
        with self._autocast():
            if mask is not None and np.any(mask):
                mask_inputs = torch.as_tensor(np.asarray(mask), device=self.device)[None, None].float()
                mask_inputs = F.interpolate(mask_inputs, size=(self.image_size, self.image_size), mode="bilinear",
                                            align_corners=False, antialias=True)
                out = self._track(memory, self._index, None, mask_inputs=(mask_inputs >= 0.5).float())
            else:
                h, w = self._video_hw
                scale = torch.tensor([self.image_size / w, self.image_size / h], device=self.device)
                coords = torch.as_tensor(box, device=self.device).view(1, 2, 2) * scale
                labels = torch.tensor([[2, 3]], dtype=torch.int32, device=self.device)  # box corners
                out = self._track(memory, self._index, {"point_coords": coords, "point_labels": labels})
        memory.non_cond.pop(self._index, None)
        memory.cond[self._index] = self._compact(out)
        self._prune(memory, self._index)

    def _compact(self, out: dict) -> dict[str, Any]:
        """Keep only what later frames read; memory features in bf16, as the reference does."""
        if self._maskmem_pos_enc is None:
            self._maskmem_pos_enc = [x[0:1].clone() for x in out["maskmem_pos_enc"]]
        return {
            "maskmem_features": out["maskmem_features"].to(torch.bfloat16),
            "maskmem_pos_enc": self._maskmem_pos_enc,
            "obj_ptr": out["obj_ptr"],
        }


def load_sam2_model(
    config: str, checkpoint: str | None, device: str | torch.device = "cpu", image_size: int = 1024
) -> torch.nn.Module:
    """Build a SAM 2 model from a packaged hydra config and a checkpoint (None: random weights).

    The settings are the reference video predictor's post-processed ones, except hole filling,
    which needs the CUDA extension; this engine fills holes itself (``fill_hole_area``).
    """
    from sam2.build_sam import build_sam2_video_predictor

    overrides = [
        f"++model.image_size={int(image_size)}",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
        "++model.binarize_mask_from_pts_for_mem_enc=true",
        "++model.fill_hole_area=0",
    ]
    return build_sam2_video_predictor(
        config, checkpoint, device=str(device), hydra_overrides_extra=overrides, apply_postprocessing=False
    )
