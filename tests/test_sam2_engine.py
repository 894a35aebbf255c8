"""The streaming SAM 2 engine against sam2's reference video predictor, and its memory bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import moving_boxes_frames
from promptrack.trackers.sam2_engine import SAM2Engine, load_sam2_model

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


@pytest.fixture(scope="module")
def model_256():
    torch.manual_seed(0)  # random weights, seeded: engine and reference share this very model
    return load_sam2_model(CONFIG, None, "cpu", image_size=256)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def test_engine_matches_reference_predictor(model_256, tmp_path):
    """Objects born at frames 0, 5 and 17, object 1 corrected with a box at 23: every object-frame
    agrees with sam2's SAM2VideoPredictor driven the same way (prompts given as the stream reaches
    them, so the reference never sees a prompt from the future)."""
    size, n = 256, 32
    frames = moving_boxes_frames(n, size, size)
    for i, frame in enumerate(frames):  # the reference reads a JPEG folder; both get the same decoded pixels
        Image.fromarray(frame).save(tmp_path / f"{i:05d}.jpg", quality=95)
    frames = [np.array(Image.open(tmp_path / f"{i:05d}.jpg").convert("RGB")) for i in range(n)]
    births = {0: (1, np.array([16.0, 30, 80, 110])), 5: (2, np.array([150.0, 50, 230, 110])),
              17: (3, np.array([60.0, 150, 140, 230]))}
    correction = (23, 1, np.array([70.0, 25, 140, 75]))

    # Reference: propagate each segment, prompt where the stream reaches a prompt, propagate on.
    # A box on a frame it already tracked is a correction (memory + previous logits); the engine
    # keeps corrections as conditioning frames, which is the reference's add_all_frames_to_correct_as_cond.
    predictor = model_256
    predictor.add_all_frames_to_correct_as_cond = True
    state = predictor.init_state(str(tmp_path))
    ref: dict[int, dict[int, np.ndarray]] = {}

    def prompt_then_propagate(frame_idx: int, obj_id: int, box: np.ndarray, last: int) -> None:
        predictor.add_new_points_or_box(state, frame_idx=frame_idx, obj_id=obj_id, box=box)
        for f, ids, logits in predictor.propagate_in_video(state, start_frame_idx=frame_idx,
                                                           max_frame_num_to_track=last - frame_idx):
            ref[f] = dict(zip(ids, logits[:, 0].float().numpy()))

    prompt_then_propagate(0, *births[0], last=4)
    prompt_then_propagate(5, *births[5], last=16)
    prompt_then_propagate(17, *births[17], last=23)  # the stream reaches frame 23 and tracks it...
    prompt_then_propagate(*correction, last=n - 1)  # ...then the box corrects object 1 there
    predictor.add_all_frames_to_correct_as_cond = False

    # Engine: the same prompts, streamed frame by frame.
    engine = SAM2Engine(model_256, device="cpu", max_cond_frames=4)
    checked = 0
    for i, frame in enumerate(frames):
        engine.step(i, frame)
        if i in births:
            engine.add([births[i][0]], births[i][1][None])
        if i == correction[0]:
            assert i - 1 in engine.memory_held(1)["recent"]  # tracked up to here: a correction, not a new object
            engine.reprompt([correction[1]], correction[2][None])
        logits = dict(zip(engine.ids, engine.mask_logits().numpy()))
        assert set(logits) == set(ref[i])
        for obj_id, ours in logits.items():
            theirs = ref[i][obj_id]
            assert _iou(ours > 0, theirs > 0) >= 0.99, (i, obj_id)
            # Random-weight masks can be nearly all foreground; the logits pin the computation down.
            median = np.median(theirs)
            assert _iou(ours > median, theirs > median) >= 0.99, (i, obj_id)
            assert np.abs(ours - theirs).max() <= 1e-2 * max(1.0, np.abs(theirs).max()), (i, obj_id)
            checked += 1
    assert checked == 32 + 27 + 15
    assert engine.memory_held(1)["cond"] == [0, 23]


def test_objects_born_on_ten_frames_cost_one_memory_attention_a_frame(monkeypatch):
    """Ten objects, each born on its own frame, so their memories fill up at different times: each
    frame is still ONE memory-attention call over the object bucket (a padding mask only while
    some slot is empty), and each object's masks equal it tracked alone."""
    from promptrack.trackers import sam2_step

    torch.manual_seed(3)
    model = load_sam2_model(CONFIG, None, "cpu", image_size=64)
    frames = moving_boxes_frames(30, 64, 64)
    rng = np.random.default_rng(0)
    corners = rng.integers(0, 40, size=(10, 2))
    boxes = np.concatenate([corners, corners + rng.integers(8, 24, size=(10, 2))], axis=1).astype(float)

    calls, padded = [], []
    attention = sam2_step.memory_attention

    def counted(module, x, query_pos, memory, memory_pos, valid, query_rope, memory_rope):
        calls.append(memory.shape[0])  # rows in the call (the frame's features come once)
        padded.append(valid is not None)
        return attention(module, x, query_pos, memory, memory_pos, valid, query_rope, memory_rope)

    monkeypatch.setattr(sam2_step, "memory_attention", counted)
    engine = SAM2Engine(model, device="cpu")
    for i, frame in enumerate(frames):
        before = len(calls)
        engine.step(i, frame)
        assert len(calls) - before == (1 if engine.ids else 0), i
        if i < 10:
            engine.add([i + 1], boxes[i:i + 1])
    assert calls[:10] == [1, 2, 3, 4, 5, 6, 7, 8, 10, 10]  # rows: objects padded to a bucket (9 -> 10)
    assert any(padded) and not padded[-1]  # filling up: masked; steady state: no mask (SDPA's fast kernels)
    # rotary tables kept: the grid's and the last memory layout's, however many layouts came by
    assert len(engine.net._rope) <= 2
    batched = engine.mask_logits()

    for k in (0, 4, 9):  # alone, object k runs in a bucket of one
        alone = SAM2Engine(model, device="cpu")
        for i, frame in enumerate(frames):
            alone.step(i, frame)
            if i == k:
                alone.add([k + 1], boxes[k:k + 1])
        torch.testing.assert_close(batched[k], alone.mask_logits()[0], atol=2e-3, rtol=1e-3)


def test_memory_stays_bounded_over_300_frames():
    torch.manual_seed(1)
    model = load_sam2_model(CONFIG, None, "cpu", image_size=64)
    engine = SAM2Engine(model, device="cpu", max_cond_frames=2)
    frames = moving_boxes_frames(300, 64, 64)
    bound_non_cond = model.max_obj_ptrs_in_encoder
    for i, frame in enumerate(frames):
        engine.step(i, frame)
        if i == 0:
            engine.add([1, 2, 3], np.array([[2, 2, 20, 20], [30, 30, 60, 60], [5, 40, 25, 62]], float))
        if i % 50 == 25:  # re-prompts add conditioning frames; only the nearest max_cond_frames stay
            engine.reprompt([2], np.array([[30, 30, 60, 60]], float))
        for obj_id in engine.ids:
            held = engine.memory_held(obj_id)
            assert len(held["cond"]) <= 2
            assert len(held["pointers"]) <= bound_non_cond - 1
            assert len(held["recent"]) <= model.num_maskmem - 1
        if i == 10:
            buffers = engine.bank.features.shape
    assert engine.bank.features.shape == buffers  # preallocated once: nothing grows with the video
    assert sorted(engine.memory_entries()) == [1, 2, 3]
    assert max(engine.memory_entries().values()) <= 2 + bound_non_cond


def test_remove_and_reprompt_leave_other_objects_alone(model_256):
    frames = moving_boxes_frames(6, 256, 256)
    a = SAM2Engine(model_256, device="cpu")
    b = SAM2Engine(model_256, device="cpu")
    boxes = np.array([[16.0, 60, 80, 140], [150.0, 120, 230, 200]])
    for engine in (a, b):
        engine.step(0, frames[0])
        engine.add([1, 2], boxes)
    for i in range(1, 6):
        a.step(i, frames[i])
        b.step(i, frames[i])
        if i == 2:
            b.reprompt([2], boxes[1:] + 5)
            held = b.memory_held(2)
            assert 2 in held["cond"] and 2 not in held["recent"] and 2 not in held["pointers"]
        if i == 3:
            b.remove([2])
            assert b.ids == [1]
    # object 1 never noticed what happened to object 2 (up to float rounding: `a` runs both objects
    # as one batch, `b` runs object 1 alone after the removal)
    torch.testing.assert_close(a.mask_logits()[0], b.mask_logits()[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError):
        a.add([1], boxes[:1])
    with pytest.raises(ValueError):
        a.step(3, frames[3])  # frames must come in order


def test_mask_prompts_and_bf16_weights_on_cpu():
    torch.manual_seed(2)
    model = load_sam2_model(CONFIG, None, "cpu", image_size=64)
    frames = moving_boxes_frames(4, 96, 128)
    mask = np.zeros((96, 128), bool)
    mask[30:70, 10:40] = True
    fp32 = SAM2Engine(model, device="cpu")
    bf16 = SAM2Engine(model, device="cpu", dtype=torch.bfloat16)
    for engine in (fp32, bf16):
        engine.step(0, frames[0])
        engine.add([7, 8], np.array([[10, 30, 40, 70], [60, 60, 95, 95]], float), masks=[mask, None])
        assert engine.memory_held(7)["cond"] == [0]
        for i in range(1, 4):
            dets = engine.step(i, frames[i])
        assert dets.mask.shape == (2, 96, 128) and list(dets.tracker_id) == [7, 8]
    # a mask prompt is not the same prompt as its bounding box
    box_only = SAM2Engine(model, device="cpu")
    box_only.step(0, frames[0])
    box_only.add([7], np.array([[10, 30, 40, 70]], float))
    fp32_first = SAM2Engine(model, device="cpu")
    fp32_first.step(0, frames[0])
    fp32_first.add([7], np.array([[10, 30, 40, 70]], float), masks=[mask])
    assert not torch.equal(box_only.mask_logits(), fp32_first.mask_logits())
    # bf16 weights (held in bf16 once, no autocast) follow fp32 closely
    agree = np.mean((bf16.mask_logits().numpy() > 0) == (fp32.mask_logits().numpy() > 0))
    assert agree > 0.9


def test_compiled_step_equals_eager_with_no_graph_break(monkeypatch):
    """``compile="on"`` compiles the whole frame step with ``fullgraph=True`` (a graph break would be
    an error) and tracks as the eager engine does through staggered births, a mask prompt, a
    re-prompt, a removal and back-fill. Traced with the "aot_eager" backend: the same graphs as
    inductor's, without its code generation, which takes minutes on a CPU (the GPU check compiles
    with inductor)."""
    from promptrack.trackers import sam2_engine

    monkeypatch.setattr(sam2_engine, "COMPILE_BACKEND", "aot_eager")
    torch.manual_seed(5)
    model = load_sam2_model(CONFIG, None, "cpu", image_size=64)
    frames = moving_boxes_frames(12, 64, 96)
    boxes = np.array([[4, 4, 28, 30], [40, 20, 70, 50], [60, 30, 90, 60]], dtype=float)
    mask = np.zeros((64, 96), bool)
    mask[30:60, 60:90] = True
    eager = SAM2Engine(model, device="cpu", feature_cache=4)
    compiled = SAM2Engine(model, device="cpu", feature_cache=4, compile="on")
    filled = []
    for i, frame in enumerate(frames):
        for engine in (eager, compiled):
            engine.step(i, frame)
            if i == 0:
                engine.add([1], boxes[:1])
            if i == 3:  # a second object, born later: memories of different fill
                engine.add([2], boxes[1:2])
            if i == 5:  # a mask prompt
                engine.add([3], boxes[2:3], masks=[mask])
            if i == 7:
                engine.reprompt([1], boxes[:1] + 2)
            if i == 9:
                engine.remove([2])
            if i == 5:
                filled.append(engine.backfill([3], [(k, frames[k]) for k in (3, 4)]))
        ours, theirs = compiled.mask_logits().numpy(), eager.mask_logits().numpy()
        assert compiled.ids == eager.ids
        for a, b in zip(ours, theirs):
            assert _iou(a > 0, b > 0) >= 0.99, i
        assert np.abs(ours - theirs).max() <= 1e-2 * max(1.0, np.abs(theirs).max()), i
    for frame in (3, 4):
        np.testing.assert_array_equal(filled[0][frame].mask, filled[1][frame].mask)
    with torch.inference_mode():
        explained = torch._dynamo.explain(eager.static_step)(*eager.last_step_inputs())
    assert explained.graph_break_count == 0, explained.break_reasons
