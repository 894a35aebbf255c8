"""SAM 2, frame by frame, with memory bounded by configuration rather than video length.

The reference ``SAM2VideoPredictor`` decodes the whole video up front and keeps every past
output. For tracking, SAM 2 only ever reads, per object: its conditioning (prompted) frames, the
memories of the last ``num_maskmem - 1`` frames and the object pointers of the last
``max_obj_ptrs_in_encoder - 1`` frames. This engine takes one frame at a time, keeps exactly that
in fixed device slots per object (``sam2_bank``; conditioning frames capped at ``max_cond_frames``,
nearest kept), and adds, re-prompts or removes one object without touching the others' memory.

How a frame runs (the speed rules of docs/ARCHITECTURE.md):

- ONE host-to-device copy: the frame and the step's slot inputs in one buffer (``transfer.upload``:
  pinned, non-blocking on CUDA);
- ONE static step for every object (``sam2_step.frame_step``): image encoder, memory attention,
  mask decoder, memory encoder, low-res post-processing; objects padded to a bucket, no host
  synchronisation, weights in the working dtype (no autocast, no per-frame casts); with
  ``compile="on"`` through ``torch.compile(fullgraph=True)``, with ``"auto"`` on CUDA also replayed
  as a CUDA graph per bucket (``mode="reduce-overhead"``);
- the frame's memory written into the ring slots in place; ONE device-to-host copy of the frame's
  results (bit-packed masks, boxes, areas), when they are asked for;
- new objects and re-prompts of a frame are prompted in one batched call when the frame's results
  are next needed (``add``/``reprompt`` only queue them);
- back-fill reuses the image features of the last ``feature_cache`` frames instead of re-encoding.

Example:
    >>> engine = SAM2Engine(model, device="cpu")            # doctest: +SKIP
    >>> dets = engine.step(0, frame)                         # doctest: +SKIP
    >>> engine.add([1], np.array([[10, 20, 200, 220]]))      # doctest: +SKIP
    >>> engine.current().tracker_id                          # doctest: +SKIP
    array([1])
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import supervision as sv
import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_map

from . import masks as postprocess
from . import sam2_step
from .base import detections_from_masks
from .device_frame import DeviceMasks
from .mask_frame import HostMasks, MaskFrame
from .sam2_bank import MemoryBank, bucket
from .sam2_step import FramePayload, StepModel, Tracked
from .transfer import download, upload, upload_packed

COMPILE_MODES = ("auto", "off", "on")
COMPILE_BACKEND = "inductor"  # torch.compile's backend (tests on the CPU trace with "aot_eager": no code generation)
# One graph per object bucket, masked or not, and conditioning slots in use: more than dynamo's default
# eight recompilations of one function.
RECOMPILE_LIMIT = 256


def compile_mode(value: str | bool, device: torch.device) -> str:
    """``tracker.compile`` resolved for `device`: "off", "on" (torch.compile), or "graph" (compiled
    and replayed as a CUDA graph: what "auto" means on CUDA; on the CPU "auto" is "off"). true/false
    read as on/off."""
    mode = {"true": "on", "false": "off"}.get(str(value).strip().lower(), str(value).strip().lower())
    if mode not in COMPILE_MODES:
        raise ValueError(f"tracker.compile must be one of {', '.join(COMPILE_MODES)}, not {value!r}")
    if mode == "auto":
        return "graph" if device.type == "cuda" else "off"
    return mode


@dataclass
class _Prompt:
    row: int
    box: np.ndarray | None  # xyxy source pixels
    mask: np.ndarray | None  # HxW bool, source size
    correction: bool  # the object was tracked onto this frame: its memory conditions the prompt


class SAM2Engine:
    """Bounded-memory streaming SAM 2 behind the MaskTracker protocol.

    Args:
        model: a SAM 2 model (``SAM2Base`` or the video predictor built from it), in eval mode. It is
            not changed: a copy is cast when `dtype` is not its own.
        device: where it runs.
        dtype: ``torch.bfloat16`` (CUDA) or ``torch.float32``: the weights are held in it once.
        max_cond_frames: prompted frames kept per object; the nearest ones stay.
        fill_hole_area: holes and specks up to this many cells of SAM 2's low-res (256x256) mask
            grid are filled / removed, as SAM 2's own ``fill_hole_area`` (0: off).
        feature_cache: image features of this many past frames are kept on the device, so that
            ``backfill`` over them does not encode them again (the pipeline passes how far back a
            back-fill may read: ``pipeline.loop.backfill_reach``).
        compile: ``"off"``, ``"on"`` (``torch.compile(fullgraph=True)`` of the step: slower first
            frames, one compile per object bucket) or ``"auto"`` (on CUDA compiled and replayed as a
            CUDA graph; off on the CPU, where compiling costs more than it saves).
        packed_masks: hand the masks over bit-packed (``Detections.data["packed_mask"]``, ``mask``
            None; ``trackers.base.unpack_masks`` unpacks them) instead of unpacked on the calling
            thread. The pipeline packs: its writer thread unpacks, and the associator reads
            :meth:`mask_frame`, measured on the device.
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
        packed_masks: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_cond_frames = max(1, int(max_cond_frames))
        self.feature_cache = max(0, int(feature_cache))
        self._options = {"max_cond_frames": max_cond_frames, "fill_hole_area": fill_hole_area,
                         "feature_cache": feature_cache, "compile": compile, "packed_masks": packed_masks}
        self.packed_masks = bool(packed_masks)
        self.compile = compile_mode(compile, self.device)
        self.net = StepModel(model, dtype, video_hw=(0, 0), fill_hole_area=fill_hole_area)
        self.image_size = self.net.image_size
        m = self.net.model
        self.num_maskmem = int(m.num_maskmem)
        self.max_obj_ptrs = int(m.max_obj_ptrs_in_encoder) if m.use_obj_ptrs_in_encoder else 1
        self.bank: MemoryBank | None = None  # built at the first frame (its token count is the features')
        self._index: int | None = None
        self._video_hw: tuple[int, int] | None = None
        self._feats: list[torch.Tensor] | None = None  # the current frame's feature maps
        self._cache: OrderedDict[int, list[torch.Tensor]] = OrderedDict()  # past frames' features, for back-fill
        # the current frame, per bank row: mask logits, memory-conditioned features (a correction reuses them)
        self._logits: torch.Tensor | None = None
        self._conditioned: torch.Tensor | None = None
        self._scores: torch.Tensor | None = None
        self._payload: torch.Tensor | None = None  # the frame's results on the device, not yet downloaded
        self._payload_rows = 0
        self._host: FramePayload | None = None  # the current frame's downloaded results (of _payload)
        self._born: dict[int, int] = {}  # id -> the frame it was added on
        self._pending: list[_Prompt] = []
        self._detections: sv.Detections | None = None
        self._last_inputs: tuple | None = None
        self._build_forward()

    @property
    def model(self) -> torch.nn.Module:
        """The SAM 2 model the engine runs (its weights in the working dtype)."""
        return self.net.model

    def fresh(self) -> "SAM2Engine":
        """A new engine with this one's settings, sharing its weights (already in the working dtype)."""
        return SAM2Engine(self.net.model, self.device, self.dtype, **self._options)

    # ------------------------------------------------------------------ protocol
    @property
    def ids(self) -> list[int]:
        return list(self.bank.ids) if self.bank is not None else []

    @torch.inference_mode()
    def step(self, index: int, frame: np.ndarray) -> sv.Detections:
        """Encode `frame` and carry every object's mask onto it (one static step for all)."""
        if self._index is not None and index <= self._index:
            raise ValueError(f"frames must come in order: got {index} after {self._index}")
        self._flush()
        if self._feats is not None and self.feature_cache:
            self._cache[self._index] = self._feats
            while len(self._cache) > self.feature_cache:
                self._cache.popitem(last=False)
        self._index = index
        if self._video_hw != frame.shape[:2]:
            self._video_hw = tuple(frame.shape[:2])
            self.net.video_hw = self._video_hw
        self._detections = None
        rows = len(self.bank) if self.bank is not None else 0
        slots = self.bank.slots(index) if rows else None
        frame_t, slots_t = self._upload(frame, slots)
        if not rows:
            self._feats = self._encode_only(frame_t)
            self._ensure_bank()
            self._logits = self._scores = self._conditioned = self._payload = None
            return self.current()
        features, pointers = self.bank.views()
        qrope, mrope = self.net.rope(features.shape[1], pointers.shape[1] * self.net.split)
        self._last_inputs = (frame_t, slots_t, features, pointers, not slots.full, qrope, mrope)
        feats, out = self._run(self._forward, *self._last_inputs)
        self._feats = feats
        ring, ptr_ring = sam2_step.unpack_slots(self.net, slots_t, *features.shape[:2], pointers.shape[1])[3:]
        self.bank.write_tracked(index, out.features, out.pointers, ring, ptr_ring)
        self._logits, self._scores, self._conditioned, self._payload = out.logits, out.scores, out.conditioned, \
            out.payload
        self._payload_rows = out.logits.shape[0]
        return self.current()

    @torch.inference_mode()
    def add(self, ids: Sequence[int], boxes: np.ndarray, masks: Sequence[np.ndarray | None] | None = None) -> None:
        """Start new objects on the current frame, each from a box (xyxy, source pixels).

        Where a mask (HxW bool, source size) is given for an object, SAM 2 is prompted with the
        mask instead of the box (as the reference predictor's ``add_new_mask``). The prompts of a
        frame run together, in one batched call, when the frame's results are next needed."""
        if self._feats is None:
            raise RuntimeError("call step() with a frame before adding objects")
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        masks = list(masks) if masks is not None else [None] * len(boxes)
        ids = [int(i) for i in ids]
        for obj_id in ids:
            if obj_id in self.bank.ids:
                raise ValueError(f"object id {obj_id} is already tracked")
        rows = self._grow(self.bank.add(ids))
        for obj_id, row, box, mask in zip(ids, rows, boxes, masks):
            self._born[obj_id] = self._index
            use_mask = mask is not None and np.any(mask)
            self._pending.append(_Prompt(row, None if use_mask else box, np.asarray(mask, bool) if use_mask else None,
                                         correction=False))
        self._changed()

    @torch.inference_mode()
    def reprompt(self, ids: Sequence[int], boxes: np.ndarray) -> None:
        """Correct objects with new boxes on the current frame; their memory is kept.

        As the reference predictor treats a box on a frame it already tracked: SAM 2 decodes it
        with the object's memory and its current mask logits as the mask prompt. The result
        becomes a conditioning frame (the reference's ``add_all_frames_to_correct_as_cond``). An
        object added on this very frame is prompted with the new box instead of its first one."""
        for obj_id, box in zip(ids, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)):
            if self.bank is None or int(obj_id) not in self.bank.ids:
                raise KeyError(f"unknown object id {obj_id}")
            row = self.bank.row(int(obj_id))
            self._pending = [p for p in self._pending if p.row != row]
            self._pending.append(_Prompt(row, box, None, correction=self._born[int(obj_id)] != self._index))
        self._changed()

    @torch.inference_mode()
    def remove(self, ids: Sequence[int]) -> None:
        if self.bank is None:
            return
        self._flush()
        gone = {int(i) for i in ids} & set(self.bank.ids)
        if not gone:
            return
        keep = [r for r, obj_id in enumerate(self.bank.ids) if obj_id not in gone]
        self.bank.remove(gone)
        for obj_id in gone:
            self._born.pop(obj_id, None)
        if self._logits is not None:
            index = upload(np.array(keep, dtype=np.int64), self.device)
            self._logits = self._logits.index_select(0, index)
            self._scores = self._scores.index_select(0, index)
            if self._conditioned is not None:
                self._conditioned = self._conditioned.index_select(0, index)
        self._payload = None
        self._changed()

    @torch.inference_mode()
    def backfill(self, ids: Sequence[int], frames: Sequence[tuple[int, np.ndarray]],
                 start: int | None = None) -> dict[int, sv.Detections]:
        """Carry objects prompted on frame `start` (default: the current frame) backwards over
        earlier `frames`.

        SAM 2 tracks in reverse from that prompt alone, as the reference predictor does, one
        earlier frame at a time, all objects in one batch (the same static step, in reverse): the
        result does not depend on when it is asked for, so a caller may wait for a new object to be
        confirmed before carrying it back. Objects whose prompt on `start` is no longer held are
        skipped. A frame whose features are still in the cache (the last ``feature_cache`` frames)
        is not encoded again. Returns Detections of `ids` per frame index. The objects' forward
        memory is left as it was."""
        self._flush()
        start = self._index if start is None else int(start)
        held = [int(i) for i in ids if self.bank is not None and int(i) in self.bank.ids
                and start in self.bank.held(int(i))["cond"]]
        if not held or not frames:
            return {}
        reverse = self.bank.spawn([self.bank.row(i) for i in held], start)
        results: dict[int, sv.Detections] = {}
        for index, frame in sorted(frames, key=lambda item: -item[0]):
            if index >= start:
                raise ValueError(f"back-fill frames must come before the prompted frame {start}")
            if tuple(frame.shape[:2]) != self._video_hw:
                raise ValueError("back-fill frames must have the size of the video")
            slots = reverse.slots(index, reverse=True)
            cached = self._cache.get(index)
            frame_t, slots_t = self._upload(frame if cached is None else None, slots)
            feats = cached if cached is not None else self._encode_only(frame_t)
            features, pointers = reverse.views()
            qrope, mrope = self.net.rope(features.shape[1], pointers.shape[1] * self.net.split)
            out = self._run(self._track, feats, features, pointers, slots_t, not slots.full, qrope, mrope)
            ring, ptr_ring = sam2_step.unpack_slots(self.net, slots_t, *features.shape[:2], pointers.shape[1])[3:]
            reverse.write_tracked(index, out.features, out.pointers, ring, ptr_ring)
            results[index] = self._detections_of(held, self._download(out.payload, features.shape[0]))
        return results

    def mask_logits(self) -> torch.Tensor:
        """Raw mask logits of every held object on the current frame at video size, (N, H, W) float32."""
        self._flush()
        with torch.inference_mode():
            return postprocess.upsample(self._logits[:len(self.bank)], self._video_hw)

    def device_masks(self) -> torch.Tensor:
        """(N, H, W) bool masks at video size on the engine's device, in ``current().tracker_id`` order:
        the frame's packed masks unpacked there (the same pixels the host gets)."""
        n = len(self.current())
        if not n:
            return torch.zeros((0, *(self._video_hw or (0, 0))), dtype=torch.bool, device=self.device)
        with torch.inference_mode():
            return postprocess.unpack_bits(self._packed_rows()[:n], self._video_hw)

    def current(self) -> sv.Detections:
        """Masks of every held object on the current frame: the one host copy of the frame's results."""
        self._flush()
        if self._detections is None:
            n = len(self.bank) if self.bank is not None else 0
            if not n:
                self._detections = sv.Detections.empty()
            else:
                rows = bucket(n)
                if self._payload is None:  # prompts or removals changed the frame: post-process it again
                    low = self.image_size // 4
                    self._logits = _fit(self._logits, rows, (1, low, low), self.dtype, self.device)
                    self._scores = _fit(self._scores, rows, (1,), self.dtype, self.device)
                    with torch.inference_mode():
                        self._payload = sam2_step.frame_payload(self.net, self._logits[:rows], self._feats[-1])
                    self._payload_rows = rows
                self._host = self._download(self._payload, self._payload_rows)
                self._detections = self._detections_of(self.bank.ids, self._host)
        return self._detections

    def mask_frame(self) -> MaskFrame:
        """What the associator reads of the current masks: areas, boxes and pairwise overlaps from the
        frame's one download; coverage of detection boxes computed on the device when asked."""
        dets = self.current()
        if not len(dets):
            return HostMasks({})
        n = len(dets)
        boxes, areas = self._host.boxes_areas(n)
        return DeviceMasks(dets.tracker_id, areas, boxes, self._host.overlaps(n), self._packed_rows(), self._video_hw)

    def _packed_rows(self) -> torch.Tensor:
        """The current frame's packed masks on the device, (rows, bytes a mask), a view of its payload (which
        ``current()`` downloaded: a change to the frame drops both)."""
        return self._payload[:self._host.rows * self._host.row_bytes].view(self._host.rows, -1)

    def _download(self, payload: torch.Tensor, rows: int) -> FramePayload:
        """A payload of `rows` rows on the host: one download."""
        return FramePayload(download(payload), rows=rows, video_hw=self._video_hw, dtype=self.dtype,
                            channels=self.net.hidden)

    def _detections_of(self, ids: list[int], host: FramePayload) -> sv.Detections:
        """Detections of the first len(ids) rows of a downloaded payload."""
        n = len(ids)
        boxes, areas = host.boxes_areas(n)
        if self.packed_masks:  # views of the download, a fresh buffer every frame: no copy
            return detections_from_masks(ids, xyxy=boxes, areas=areas, packed=host.packed(n))
        return detections_from_masks(ids, host.masks(n), boxes, areas)

    def _changed(self) -> None:
        self._detections = None

    # ------------------------------------------------------------------ prompts
    def _flush(self) -> None:
        """Run the queued prompts of the current frame: all box prompts in one batched call, all
        mask prompts in another; their memories become conditioning frames."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with torch.inference_mode():
            boxes = [p for p in pending if p.box is not None]
            if boxes:
                self._prompt_boxes(boxes)
            masks = [p for p in pending if p.mask is not None]
            if masks:
                self._prompt_masks(masks)
        self._payload = None
        self._changed()

    def _prompt_boxes(self, prompts: list[_Prompt]) -> None:
        h, w = self._video_hw
        size = self.image_size
        rows = [p.row for p in prompts]
        slots = self.bank.assign_conditioning(rows, self._index)
        scale = np.array([size / w, size / h, size / w, size / h], np.float32)
        boxes = np.stack([p.box for p in prompts]).astype(np.float32) * scale
        correction = np.array([p.correction for p in prompts])
        # which features condition each prompt: a correction's own (this frame's step), else the frame's
        # plus SAM 2's no-memory embedding (the last row of the table below)
        fresh = self._conditioned.shape[0] if self._conditioned is not None else 0
        source = np.where(correction, rows, fresh)
        index, boxes_t = upload_packed([np.array([rows, slots, source], dtype=np.int64), boxes], self.device)
        rows_t, slots_t, source_t = index
        top = self._feats[-1]
        no_memory = top + self.net.model.no_mem_embed.view(1, -1, 1, 1)
        table = no_memory if self._conditioned is None else torch.cat([self._conditioned, no_memory])
        pix_feat = table.index_select(0, source_t)
        previous = corrected = None
        if correction.any():  # a correction's mask prompt: its current logits (SAM 2 clamps them to +-32)
            previous = self._logits.index_select(0, rows_t).clamp(-32.0, 32.0)
            corrected = source_t < fresh
        out = self._run(self._prompt_boxes_fn, self._feats, pix_feat, boxes_t, previous, corrected)
        self._store_prompted(rows_t, slots_t, out)

    def _prompt_masks(self, prompts: list[_Prompt]) -> None:
        rows = [p.row for p in prompts]
        slots = self.bank.assign_conditioning(rows, self._index)
        index, masks_t = upload_packed([np.array([rows, slots], dtype=np.int64), np.stack([p.mask for p in prompts])],
                                       self.device)
        out = self._run(self._prompt_masks_fn, self._feats, masks_t)
        self._store_prompted(index[0], index[1], out)

    def _store_prompted(self, rows_t: torch.Tensor, slots_t: torch.Tensor, out: Tracked) -> None:
        self.bank.write_prompted(rows_t, slots_t, out.features, out.pointers)
        self._logits.index_copy_(0, rows_t, out.logits.to(self._logits.dtype))
        self._scores.index_copy_(0, rows_t, out.scores.to(self._scores.dtype))

    # ------------------------------------------------------------------ the compiled pieces
    def _build_forward(self) -> None:
        """The step's pure functions, compiled as `compile` says (each shape bucket compiles once)."""
        net = self.net

        def forward(frame, slots, features, pointers, masked, query_rope, memory_rope):
            feats = sam2_step.encode(net, frame)
            return feats, sam2_step.track(net, feats, features, pointers, slots, masked, query_rope, memory_rope)

        def encode(frame):
            return sam2_step.encode(net, frame)

        def track(feats, features, pointers, slots, masked, query_rope, memory_rope):
            return sam2_step.track(net, feats, features, pointers, slots, masked, query_rope, memory_rope)

        def prompt_boxes(feats, pix_feat, boxes, previous, corrected):
            return sam2_step.prompt_boxes(net, feats, pix_feat, boxes, previous, corrected)

        def prompt_masks(feats, masks):
            return sam2_step.prompt_masks(net, feats, masks)

        self._eager_forward = forward
        if self.compile == "off":
            wrap = _identity
        else:
            options = {"fullgraph": True, "dynamic": False, "backend": COMPILE_BACKEND}
            if self.compile == "graph":
                options["mode"] = "reduce-overhead"  # CUDA graphs per shape, static input buffers handled
            dynamo = torch._dynamo.config
            dynamo.cache_size_limit = max(dynamo.cache_size_limit, RECOMPILE_LIMIT)
            dynamo.accumulated_cache_size_limit = max(dynamo.accumulated_cache_size_limit, 4 * RECOMPILE_LIMIT)
            wrap = _compiler(options)
        self._encode, self._track = wrap(encode), wrap(track)
        self._prompt_boxes_fn, self._prompt_masks_fn = wrap(prompt_boxes), wrap(prompt_masks)
        self._forward = wrap(forward)

    def _run(self, fn: Callable, *args):
        """Call a step function; a CUDA-graph replay's outputs are overwritten by the next replay, so
        what the engine keeps is copied out (the memory itself is copied into the bank at once)."""
        if self.compile != "graph":
            return fn(*args)
        torch.compiler.cudagraph_mark_step_begin()
        return _tree_clone(fn(*args))

    @property
    def static_step(self) -> Callable:
        """The frame step as one pure function of tensors (uncompiled), for inspection and counting."""
        return self._eager_forward

    def last_step_inputs(self) -> tuple | None:
        """The arguments of the last step with objects (``static_step(*engine.last_step_inputs())``)."""
        return self._last_inputs

    # ------------------------------------------------------------------ plumbing
    def _upload(self, frame: np.ndarray | None, slots) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The frame and the step's slot inputs in ONE host-to-device copy."""
        arrays = [a for a in (None if frame is None else np.ascontiguousarray(frame),
                              None if slots is None else slots.packed()) if a is not None]
        if not arrays:
            return None, None
        out = iter(upload_packed(arrays, self.device))
        return (next(out) if frame is not None else None), (next(out) if slots is not None else None)

    def _encode_only(self, frame_t: torch.Tensor) -> list[torch.Tensor]:
        feats = self._run(self._encode, frame_t)
        self.net.prepare(feats)
        return feats

    def _ensure_bank(self) -> None:
        if self.bank is None:
            top = self._feats[-1]
            m = self.net.model
            self.bank = MemoryBank(self.num_maskmem, self.max_obj_ptrs, self.max_cond_frames,
                                   tokens=top.shape[-2] * top.shape[-1], mem_dim=self.net.mem_dim,
                                   hidden=self.net.hidden, device=self.device,
                                   feature_dtype=torch.bfloat16, pointer_dtype=self.dtype,
                                   signed_offsets=bool(m.use_signed_tpos_enc_to_obj_ptrs))

    def _grow(self, rows: list[int]) -> list[int]:
        """Per-row tensors of the current frame sized to the bank's capacity (new rows: zeros)."""
        capacity = self.bank.capacity
        low = self.image_size // 4
        self._logits = _fit(self._logits, capacity, (1, low, low), self.dtype, self.device)
        self._scores = _fit(self._scores, capacity, (1,), self.dtype, self.device)
        return rows

    # ------------------------------------------------------------------ appearance
    def track_embeddings(self) -> dict[int, np.ndarray]:
        """Per object with a visible mask: the frame's image features averaged under its mask.

        L2-normalised vectors (SAM 2's top-level backbone features, 256-d), for re-identifying
        an object after it was lost; computed in the step and downloaded with the frame's masks
        (no copy of their own). Objects without a mask on this frame are left out."""
        dets = self.current()
        if not len(dets):
            return {}
        vectors, seen = self._host.appearance(len(dets))
        return {int(i): v for i, v, s in zip(dets.tracker_id, vectors, seen) if s}

    @torch.inference_mode()
    def box_embeddings(self, boxes: np.ndarray) -> np.ndarray:
        """The frame's image features averaged inside each box (N,4 xyxy source pixels) -> (N, 256)."""
        feature_map = self._feats[-1][0]
        fh, fw = feature_map.shape[-2:]
        h, w = self._video_hw
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        if not len(boxes):
            return np.zeros((0, feature_map.shape[0]), np.float32)
        grid = np.zeros((len(boxes), fh, fw), bool)  # the boxes on the feature grid, built on the host
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            c1, r1 = int(np.floor(x1 / w * fw)), int(np.floor(y1 / h * fh))
            c2, r2 = max(int(np.ceil(x2 / w * fw)), c1 + 1), max(int(np.ceil(y2 / h * fh)), r1 + 1)
            grid[k, max(r1, 0):min(r2, fh), max(c1, 0):min(c2, fw)] = True
        return _pool(feature_map, upload(grid, self.device))

    # ------------------------------------------------------------------ memory bounds
    def memory_entries(self) -> dict[int, int]:
        """Frames held per object (conditioning + recent pointers; recent memories are a subset): bounded."""
        self._flush()
        if self.bank is None:
            return {}
        return {i: len(held["cond"]) + len(held["pointers"]) for i in self.bank.ids
                for held in [self.bank.held(i)]}

    def memory_held(self, obj_id: int) -> dict[str, list[int]]:
        """The frames one object's memory slots hold: {"cond": [...], "recent": [...], "pointers": [...]}."""
        self._flush()
        return self.bank.held(int(obj_id))


def _pool(feature_map: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """Means of the feature map (C, h, w) under bool weights (N, h, w), L2-normalised, on the host (N, C)."""
    sums = weights.flatten(1).sum(1)
    vectors = (feature_map * weights[:, None]).sum((2, 3)) / sums.clamp(min=1)[:, None]
    return download(F.normalize(vectors.float(), dim=1)).astype(np.float32)


def _fit(tensor: torch.Tensor | None, rows: int, shape: tuple, dtype: torch.dtype, device: torch.device
         ) -> torch.Tensor:
    """`tensor` with at least `rows` rows (zeros added)."""
    if tensor is None:
        return torch.zeros((rows, *shape), dtype=dtype, device=device)
    if tensor.shape[0] >= rows:
        return tensor
    return torch.cat([tensor, tensor.new_zeros((rows - tensor.shape[0], *tensor.shape[1:]))])


def _identity(fn: Callable) -> Callable:
    return fn


def _compiler(options: dict) -> Callable:
    return lambda fn: torch.compile(fn, **options)


def _tree_clone(value):
    return tree_map(lambda x: x.clone() if isinstance(x, torch.Tensor) else x, value)


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
