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

How a frame runs (the speed rules of docs/ARCHITECTURE.md):

- one batched forward for ALL objects, whatever frame each was born or re-prompted on: per-object
  memories are padded and masked in one memory-attention call (``sam2_memory``), then the mask
  decoder and the memory encoder run once on the batch;
- the memory bank is stored in bf16 (object pointers in the working dtype); with ``dtype=bf16``
  the memory attention runs in bf16 throughout, its weights cast once;
- no host synchronisation inside a step: scores and masks stay on the device;
- post-processing on the device at SAM 2's low resolution (``masks``): holes and specks, one
  batched upsampling, boxes and areas, then one copy to the host when Detections are asked for
  (``device_masks()`` gives the video-size masks without any host copy);
- back-fill reuses the image features of the last ``feature_cache`` frames instead of re-encoding.

Example:
    >>> engine = SAM2Engine(model, device="cpu")            # doctest: +SKIP
    >>> dets = engine.step(0, frame)                         # doctest: +SKIP
    >>> engine.add([1], np.array([[10, 20, 200, 220]]))      # doctest: +SKIP
    >>> engine.current().tracker_id                          # doctest: +SKIP
    array([1])
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import supervision as sv
import torch
import torch.nn.functional as F

from . import masks as postprocess
from . import sam2_memory
from .base import detections_from_masks

# SAM 2 normalises images with the ImageNet statistics.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
# Streaming: the video length is unknown. SAM 2 uses it only to cap the pointer window
# (min(num_frames, max_obj_ptrs_in_encoder)), so any length past that cap is equivalent.
_UNKNOWN_LENGTH = 1 << 30

Features = tuple  # (vision_feats, vision_pos, feat_sizes) of one frame, batch 1


@dataclass
class ObjectMemory:
    """What SAM 2 can still read for one object, in the layout its ``track_step`` expects."""

    cond: dict[int, dict[str, Any]] = field(default_factory=dict)  # prompted frames
    non_cond: dict[int, dict[str, Any]] = field(default_factory=dict)  # propagated frames
    logits: torch.Tensor | None = None  # low-res mask logits (1, 1, h, w) on the current frame
    score: torch.Tensor | None = None  # object score logit (1, 1) on the current frame, on the device
    tracked_at: int | None = None  # the last frame it was propagated onto (a re-prompt there is a correction)

    def as_output_dict(self) -> dict[str, dict[int, dict[str, Any]]]:
        return {"cond_frame_outputs": self.cond, "non_cond_frame_outputs": self.non_cond}

    def entries(self) -> int:
        return len(self.cond) + len(self.non_cond)


@dataclass
class FrameMasks:
    """One frame's post-processed masks on the device (video size), with boxes and areas."""

    ids: list[int]
    masks: torch.Tensor  # (N, H, W) bool
    boxes: torch.Tensor  # (N, 4) float32 xyxy
    areas: torch.Tensor  # (N,) int64

    def to_detections(self) -> sv.Detections:
        if not self.ids:
            return sv.Detections.empty()
        masks, boxes, areas = postprocess.to_host(self.masks, self.boxes, self.areas)
        return detections_from_masks(self.ids, masks, boxes, areas)


class SAM2Engine:
    """Bounded-memory streaming SAM 2 behind the MaskTracker protocol.

    Args:
        model: a SAM 2 model (``SAM2Base`` or the video predictor built from it), in eval mode.
        device: where it runs.
        dtype: ``torch.bfloat16`` (CUDA, or CPU where fast) or ``torch.float32``.
        max_cond_frames: prompted frames kept per object; the nearest ones stay.
        fill_hole_area: holes and specks up to this many cells of SAM 2's low-res (256x256) mask
            grid are filled / removed, as SAM 2's own ``fill_hole_area`` (0: off).
        feature_cache: image features of this many past frames are kept on the device, so that
            ``backfill`` over them does not encode them again (the pipeline passes how far back a
            back-fill may read: ``pipeline.loop.backfill_reach``).
        compile: ``"off"``, ``"on"`` (``torch.compile``: slower first frames, faster ones after) or
            ``"auto"`` (on with CUDA, off on the CPU, where compiling costs more than it saves).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        max_cond_frames: int = 4,
        fill_hole_area: int = 0,
        feature_cache: int = 0,
        compile: str = "off",
    ) -> None:
        self.model = model
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_cond_frames = max(1, int(max_cond_frames))
        self.fill_hole_area = int(fill_hole_area)
        self.feature_cache = max(0, int(feature_cache))
        self.image_size = int(model.image_size)
        self.num_maskmem = int(model.num_maskmem)
        self.max_obj_ptrs = int(model.max_obj_ptrs_in_encoder) if model.use_obj_ptrs_in_encoder else 1
        self.compile = compile_mode(compile, self.device)
        self.attention = sam2_memory.MaskedMemoryAttention(model.memory_attention, dtype, compile=self.compile == "on")
        self._objects: dict[int, ObjectMemory] = {}
        self._index: int | None = None
        self._video_hw: tuple[int, int] | None = None
        self._features: Features | None = None  # current frame's backbone features
        self._cache: OrderedDict[int, Features] = OrderedDict()  # past frames' features, for back-fill
        self._maskmem_pos_enc: list[torch.Tensor] | None = None  # same for every frame
        self._vision_pos: dict[tuple, list[torch.Tensor]] = {}  # image position encodings, per feature sizes
        self._layout_cache: dict = {}  # memory layouts' index tensors, per shape (see MemoryBatch.build)
        self._frame: FrameMasks | None = None  # the current frame's post-processed masks, once computed
        self._detections: sv.Detections | None = None  # ... and their host copy
        self._mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ protocol
    @property
    def ids(self) -> list[int]:
        return list(self._objects)

    @torch.inference_mode()
    def step(self, index: int, frame: np.ndarray) -> sv.Detections:
        """Encode `frame` and carry every object's mask onto it (one batched forward)."""
        if self._index is not None and index <= self._index:
            raise ValueError(f"frames must come in order: got {index} after {self._index}")
        if self._features is not None and self.feature_cache:
            self._cache[self._index] = self._features
            while len(self._cache) > self.feature_cache:
                self._cache.popitem(last=False)
        self._index = index
        self._video_hw = frame.shape[:2]
        self._changed()
        with self._autocast():
            self._features = self._encode(frame)
            for memory in self._objects.values():
                self._prune(memory, index)
            if self._objects:
                self._propagate(list(self._objects.values()), index)
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
        """Correct objects with new boxes on the current frame; their memory is kept.

        As the reference predictor treats a box on a frame it already tracked: SAM 2 decodes it
        with the object's memory and its current mask logits as the mask prompt. The result
        becomes a conditioning frame (the reference's ``add_all_frames_to_correct_as_cond``).
        """
        for obj_id, box in zip(ids, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)):
            if obj_id not in self._objects:
                raise KeyError(f"unknown object id {obj_id}")
            self._prompt(int(obj_id), box)

    def remove(self, ids: Sequence[int]) -> None:
        for obj_id in ids:
            self._objects.pop(int(obj_id), None)
        self._changed()

    @torch.inference_mode()
    def backfill(self, ids: Sequence[int], frames: Sequence[tuple[int, np.ndarray]],
                 start: int | None = None) -> dict[int, sv.Detections]:
        """Carry objects prompted on frame `start` (default: the current frame) backwards over
        earlier `frames`.

        SAM 2 tracks in reverse from that prompt alone, as the reference predictor does, one
        earlier frame at a time, all objects in one batch: the result does not depend on when it
        is asked for, so a caller may wait for a new object to be confirmed before carrying it
        back. Objects whose prompt on `start` is no longer held are skipped. A frame whose
        features are still in the cache (the last ``feature_cache`` frames) is not encoded again.
        Returns Detections of `ids` per frame index. The objects' forward memory is left as it was.
        """
        start = self._index if start is None else int(start)
        ids = [int(i) for i in ids if int(i) in self._objects and start in self._objects[int(i)].cond]
        if not ids or not frames:
            return {}
        current = (self._features, self._video_hw)
        reverse_memory = [ObjectMemory(cond={start: self._objects[i].cond[start]}) for i in ids]
        results: dict[int, sv.Detections] = {}
        try:
            with self._autocast():
                for index, frame in sorted(frames, key=lambda item: -item[0]):
                    if index >= start:
                        raise ValueError(f"back-fill frames must come before the prompted frame {start}")
                    self._video_hw = frame.shape[:2]
                    cached = self._cache.get(index)
                    self._features = cached if cached is not None else self._encode(frame)
                    self._propagate(reverse_memory, index, reverse=True)
                    for memory in reverse_memory:
                        self._prune(memory, index, reverse=True)
                    results[index] = self._postprocess(ids, [m.logits for m in reverse_memory]).to_detections()
        finally:
            self._features, self._video_hw = current
        return results

    def mask_logits(self) -> torch.Tensor:
        """Raw mask logits of every held object on the current frame at video size, (N, H, W) float32."""
        with torch.inference_mode():
            return postprocess.upsample(torch.cat([m.logits for m in self._objects.values()]), self._video_hw)

    def device_masks(self) -> torch.Tensor:
        """(N, H, W) bool masks at video size on the engine's device, in ``current().tracker_id`` order."""
        return self._current_frame().masks

    def current(self) -> sv.Detections:
        """Masks of every held object on the current frame: the one host copy of the frame's results."""
        if self._detections is None:
            self._detections = self._current_frame().to_detections()
        return self._detections

    def _current_frame(self) -> FrameMasks:
        if self._frame is None:
            if not self._objects or self._video_hw is None:
                hw = self._video_hw or (0, 0)
                empty = torch.zeros((0, *hw), dtype=torch.bool, device=self.device)
                self._frame = FrameMasks([], empty, torch.zeros((0, 4), device=self.device),
                                         torch.zeros(0, dtype=torch.long, device=self.device))
            else:
                self._frame = self._postprocess(list(self._objects), [m.logits for m in self._objects.values()])
        return self._frame

    @torch.inference_mode()
    def _postprocess(self, ids: list[int], logits: list[torch.Tensor]) -> FrameMasks:
        """Low-res logits -> holes/specks on the low-res grid -> one upsampling -> masks, boxes, areas."""
        low_res = postprocess.fill_small_holes_lowres(torch.cat(logits).float(), self.fill_hole_area)
        masks = postprocess.upsample(low_res, self._video_hw) > 0
        boxes, areas = postprocess.boxes_and_areas(masks)
        return FrameMasks(ids, masks, boxes, areas)

    def _changed(self) -> None:
        self._frame = None
        self._detections = None

    # ------------------------------------------------------------------ appearance
    @torch.inference_mode()
    def track_embeddings(self) -> dict[int, np.ndarray]:
        """Per object with a visible mask: the frame's image features averaged under its mask.

        L2-normalised vectors (SAM 2's top-level backbone features, 256-d), for re-identifying
        an object after it was lost. Objects without a mask on this frame are left out.
        """
        if not self._objects:
            return {}
        feature_map = self._feature_map()
        logits = torch.cat([m.logits for m in self._objects.values()]).float()
        weights = (F.interpolate(logits, size=feature_map.shape[-2:], mode="bilinear", align_corners=False)[:, 0] > 0)
        vectors, visible = self._pool(feature_map, weights.float())
        return {i: v for i, v, seen in zip(self._objects, vectors, visible) if seen}

    @torch.inference_mode()
    def box_embeddings(self, boxes: np.ndarray) -> np.ndarray:
        """The frame's image features averaged inside each box (N,4 xyxy source pixels) -> (N, 256)."""
        feature_map = self._feature_map()
        fh, fw = feature_map.shape[-2:]
        h, w = self._video_hw
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        if not len(boxes):
            return np.zeros((0, feature_map.shape[0]), np.float32)
        weights = torch.zeros((len(boxes), fh, fw), device=feature_map.device)
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            c1, c2 = int(np.floor(x1 / w * fw)), max(int(np.ceil(x2 / w * fw)), int(np.floor(x1 / w * fw)) + 1)
            r1, r2 = int(np.floor(y1 / h * fh)), max(int(np.ceil(y2 / h * fh)), int(np.floor(y1 / h * fh)) + 1)
            weights[k, max(r1, 0):min(r2, fh), max(c1, 0):min(c2, fw)] = 1.0
        return self._pool(feature_map, weights)[0]

    def _feature_map(self) -> torch.Tensor:
        vision_feats, _, feat_sizes = self._features
        h, w = feat_sizes[-1]
        return vision_feats[-1][:, 0].float().T.reshape(-1, h, w)  # (C, H, W)

    @staticmethod
    def _pool(feature_map: torch.Tensor, weights: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Weighted means of the feature map, L2-normalised: ((N, C) vectors, (N,) any weight), one host copy."""
        sums = weights.flatten(1).sum(1)
        vectors = torch.einsum("nhw,chw->nc", weights, feature_map) / sums.clamp(min=1.0)[:, None]
        vectors = F.normalize(vectors, dim=1)
        host = torch.cat([vectors, (sums > 0).float()[:, None]], dim=1).cpu().numpy()
        return host[:, :-1].astype(np.float32), host[:, -1] > 0

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

    def _encode(self, frame: np.ndarray) -> Features:
        image = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device)
        image = image.permute(2, 0, 1)[None].float() / 255.0
        if image.shape[-2:] != (self.image_size, self.image_size):
            image = F.interpolate(
                image, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False
            ).clamp_(0, 1)
        image = (image - self._mean) / self._std
        backbone_out = self.model.forward_image(image)
        _, vision_feats, vision_pos, feat_sizes = self.model._prepare_backbone_features(backbone_out)
        # The position encodings depend on the sizes only: one copy serves every frame, so the
        # feature cache holds features alone (at 1024 px the encodings are 84 MB a frame in float32).
        key = tuple(map(tuple, feat_sizes))
        vision_pos = self._vision_pos.setdefault(key, vision_pos)
        return vision_feats, vision_pos, feat_sizes

    def _propagate(self, memories: list[ObjectMemory], index: int, reverse: bool = False) -> None:
        """Track every object in `memories` onto frame `index`: one memory-attention call, one
        mask-decoder call and one memory-encoder call for the batch, whatever each one remembers."""
        model = self.model
        vision_feats, vision_pos, feat_sizes = self._features
        batch = len(memories)
        layouts = [sam2_memory.select_memory(model, m.cond, m.non_cond, index, reverse) for m in memories]
        memory = sam2_memory.MemoryBatch.build(model, layouts, dtype=self.dtype, cache=self._layout_cache)
        with torch.autocast(device_type=self.device.type, enabled=False):
            conditioned = self.attention(vision_feats[-1], vision_pos[-1], memory)  # (HW, B, C)
        h, w = feat_sizes[-1]
        pix_feat = conditioned.permute(1, 2, 0).reshape(batch, model.hidden_dim, h, w)
        high_res = [x.permute(1, 2, 0).reshape(1, x.size(2), *s).expand(batch, -1, -1, -1)
                    for x, s in zip(vision_feats[:-1], feat_sizes[:-1])] or None
        outputs = model._forward_sam_heads(backbone_features=pix_feat, point_inputs=None, mask_inputs=None,
                                           high_res_features=high_res,
                                           multimask_output=model._use_multimask(False, None))
        _, _, _, low_res_masks, high_res_masks, obj_ptr, scores = outputs
        features, pos_enc = model._encode_new_memory(
            current_vision_feats=[x.expand(-1, batch, -1) for x in vision_feats], feat_sizes=feat_sizes,
            pred_masks_high_res=high_res_masks, object_score_logits=scores, is_mask_from_pts=False)
        pos_enc = self._pos_enc(pos_enc)
        features = features.to(torch.bfloat16)
        obj_ptr = obj_ptr.to(self._storage_dtype())
        for k, memory_k in enumerate(memories):
            memory_k.logits = low_res_masks[k:k + 1]
            memory_k.score = scores[k:k + 1]
            memory_k.tracked_at = index
            memory_k.non_cond[index] = {"maskmem_features": features[k:k + 1], "maskmem_pos_enc": pos_enc,
                                        "obj_ptr": obj_ptr[k:k + 1]}
        self._changed()

    def _pos_enc(self, pos_enc: list[torch.Tensor]) -> list[torch.Tensor]:
        """The memory's spatial position encoding: the same for every frame and object, kept once."""
        if self._maskmem_pos_enc is None:
            self._maskmem_pos_enc = [x[:1].clone() for x in pos_enc]
        return self._maskmem_pos_enc

    def _storage_dtype(self) -> torch.dtype:
        return torch.float32 if self.dtype == torch.float32 else self.dtype

    def _prompt(self, obj_id: int, box: np.ndarray, mask: np.ndarray | None = None) -> None:
        if self._features is None or self._video_hw is None:
            raise RuntimeError("call step() with a frame before adding objects")
        memory = self._objects[obj_id]
        vision_feats, vision_pos, feat_sizes = self._features
        correction = memory.tracked_at == self._index and mask is None  # the reference's re-prompt on a tracked frame
        point_inputs = mask_inputs = prev_logits = None
        with self._autocast():
            if mask is not None and np.any(mask):
                mask_inputs = torch.as_tensor(np.asarray(mask), device=self.device)[None, None].float()
                mask_inputs = F.interpolate(mask_inputs, size=(self.image_size, self.image_size), mode="bilinear",
                                            align_corners=False, antialias=True)
                mask_inputs = (mask_inputs >= 0.5).float()
            else:
                h, w = self._video_hw
                scale = torch.tensor([self.image_size / w, self.image_size / h], device=self.device)
                coords = torch.as_tensor(box, device=self.device).view(1, 2, 2) * scale
                labels = torch.tensor([[2, 3]], dtype=torch.int32, device=self.device)  # box corners
                point_inputs = {"point_coords": coords, "point_labels": labels}
                if memory.logits is not None and (correction or self._index in memory.cond):
                    prev_logits = memory.logits.float().clamp(-32.0, 32.0)
            out = self.model.track_step(
                frame_idx=self._index,
                is_init_cond_frame=not correction,
                current_vision_feats=vision_feats,
                current_vision_pos_embeds=vision_pos,
                feat_sizes=feat_sizes,
                point_inputs=point_inputs,
                mask_inputs=mask_inputs,
                output_dict=memory.as_output_dict(),
                num_frames=_UNKNOWN_LENGTH,
                run_mem_encoder=True,
                prev_sam_mask_logits=prev_logits,
            )
        memory.logits = out["pred_masks"]
        memory.score = out["object_score_logits"]
        memory.tracked_at = self._index
        memory.non_cond.pop(self._index, None)
        memory.cond[self._index] = {
            "maskmem_features": out["maskmem_features"].to(torch.bfloat16),
            "maskmem_pos_enc": self._pos_enc(out["maskmem_pos_enc"]),
            "obj_ptr": out["obj_ptr"].to(self._storage_dtype()),
        }
        self._prune(memory, self._index)
        self._changed()


COMPILE_MODES = ("auto", "off", "on")


def compile_mode(value: str | bool, device: torch.device) -> str:
    """``tracker.compile`` resolved for `device`: "on" or "off" ("auto": on with CUDA; true/false as on/off)."""
    mode = {"true": "on", "false": "off"}.get(str(value).strip().lower(), str(value).strip().lower())
    if mode not in COMPILE_MODES:
        raise ValueError(f"tracker.compile must be one of {', '.join(COMPILE_MODES)}, not {value!r}")
    if mode == "auto":
        return "on" if device.type == "cuda" else "off"
    return mode


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
