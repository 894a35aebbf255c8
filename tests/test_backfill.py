"""Offline look-back: an object first detected at frame t also gets masks on frames t-K..t-1."""

import numpy as np
import supervision as sv

from live_helpers import ColourTracker, colour_mask
from promptrack.pipeline import track_video
from promptrack.pipeline.detectors import make_detections
from promptrack.trackers.base import detections_from_masks


def red_box_detector(*fire_at: int):
    """Finds the red box of the synthetic video, but only on the frames `fire_at` (read off its position)."""

    def detect(frame: np.ndarray, phrases):
        red = (frame[..., 0] > 150) & (frame[..., 1] < 100) & (frame[..., 2] < 100)
        ys, xs = np.nonzero(red)
        if xs.size and round((xs.min() - 10) / 3) in fire_at:
            box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float)
            return make_detections(box, np.array([0.9]), np.array([0]), phrases)
        return make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), phrases)

    return detect


def run(video, lookback, tmp_path, confirm_hits=1):
    # confirm_hits=1: born confirmed (the fake SAM 2's random weights give masks no later box would
    # match, so a second detection could not confirm the track).
    return track_video(video, "red box", output_dir=tmp_path, detector=red_box_detector(20), progress=False,
                       overrides=[f"tracker.lookback={lookback}", "tracker.image_size=128", "detect_every=5",
                                  "output.video=false", f"association.confirm_hits={confirm_hits}"])


def present(result, track_id=1):
    return [index for index, dets in zip(result.frame_indices, result.frames)
            if dets.tracker_id is not None and track_id in dets.tracker_id]


def test_object_born_at_20_is_filled_back_over_the_window(synthetic_video, fake_hub, tmp_path):
    result = run(synthetic_video, 6, tmp_path)
    assert result.frame_indices == list(range(24))
    assert present(result)[:8] == [14, 15, 16, 17, 18, 19, 20, 21]
    assert result.tracks[0]["first_frame"] == 14 and result.tracks[0]["label"] == "red box"
    frame_15 = result.frames[15]
    k = list(frame_15.tracker_id).index(1)
    assert frame_15.mask[k].any() and frame_15.data["class_name"][k] == "red box"
    assert isinstance(frame_15, sv.Detections)


def test_a_tentative_track_is_never_written_offline_back_filled_frames_included(synthetic_video, fake_hub, tmp_path):
    # Detected on keyframe 20 only, so never confirmed (two detections needed): the held output
    # leaves it out everywhere; live (no look-back) it shows from its birth.
    assert present(run(synthetic_video, 6, tmp_path / "held", confirm_hits=2)) == []
    assert present(run(synthetic_video, 0, tmp_path / "live", confirm_hits=2))[0] == 20


def test_without_lookback_the_track_starts_at_its_birth(synthetic_video, fake_hub, tmp_path):
    result = run(synthetic_video, 0, tmp_path)
    assert present(result)[0] == 20 and result.tracks[0]["first_frame"] == 20


def model_counting_encodes(seed: int):
    """A random-weight SAM 2.1 tiny at 64 px and the list its image encoder appends to per frame encoded."""
    import torch

    from promptrack.trackers.sam2_engine import load_sam2_model

    torch.manual_seed(seed)
    model = load_sam2_model("configs/sam2.1/sam2.1_hiera_t.yaml", None, "cpu", image_size=64)
    encoded = []
    trunk = model.image_encoder.trunk
    forward = trunk.forward
    trunk.forward = lambda image: encoded.append(1) or forward(image)
    return model, encoded


class RecordingColourTracker(ColourTracker):
    """The colour stub with back-fill (an object is its colour on any frame); records each call as
    (frame in hand, ids, frames filled, birth frame)."""

    def __init__(self) -> None:
        super().__init__()
        self.index, self.calls = -1, []

    def step(self, index, frame):
        self.index = index
        return super().step(index, frame)

    def backfill(self, ids, frames, start=None):
        self.calls.append((self.index, list(ids), [i for i, _ in frames], start))
        return {i: detections_from_masks(list(ids), np.stack([colour_mask(f, self._colour[k]) for k in ids]))
                for i, f in frames}


def loop_with_backfill(video, fire_at, confirm_hits, lookback=4):
    from promptrack.pipeline.config import load_config
    from promptrack.pipeline.loop import TrackingPipeline
    from promptrack.pipeline.sources import open_source

    config = load_config("default", overrides=["device=cpu", "detect_every=5", f"tracker.lookback={lookback}",
                                                f"association.confirm_hits={confirm_hits}"])
    tracker, written = RecordingColourTracker(), []
    sink = type("Sink", (), {"write": lambda self, i, f, d: written.append((i, d)), "close": lambda self: None})()
    pipeline = TrackingPipeline(config, detector=red_box_detector(*fire_at), tracker=tracker)
    pipeline.run(open_source(video), ["red box"], [sink], progress=False)
    return tracker.calls, [i for i, d in written if 1 in d.tracker_id]


def test_a_newborn_is_carried_back_once_confirmed_and_a_dropped_one_never(synthetic_video):
    # Born on keyframe 10, confirmed on keyframe 15: carried back over 6-9 at frame 15 (its frames waited).
    calls, shown = loop_with_backfill(synthetic_video, (10, 15), confirm_hits=2)
    assert calls == [(15, [1], [6, 7, 8, 9], 10)]
    assert shown[:12] == list(range(6, 18))
    # Never detected again: dropped at keyframe 15, never carried back, never written.
    calls, shown = loop_with_backfill(synthetic_video, (10,), confirm_hits=2)
    assert calls == [] and shown == []
    # Born confirmed: carried back at once.
    calls, shown = loop_with_backfill(synthetic_video, (10,), confirm_hits=1)
    assert calls == [(10, [1], [6, 7, 8, 9], 10)] and shown[0] == 6
    # A verdict due after the frames before the birth must be written (look-back 2 holds a frame
    # at most 6 frames, the next keyframe is 5 after the birth): carried back at birth, as before.
    calls, shown = loop_with_backfill(synthetic_video, (10, 15), confirm_hits=2, lookback=2)
    assert calls == [(10, [1], [8, 9], 10)]
    assert shown[0] == 9  # frame 8 had to be written (6 frames old) before the verdict, without the track


def test_the_feature_cache_reaches_only_frames_a_backfill_can_read():
    from promptrack.pipeline.config import load_config
    from promptrack.pipeline.loop import backfill_reach, backfill_waits_for_verdict

    def reach(preset, *overrides):
        config = load_config(preset, overrides=list(overrides))
        return backfill_waits_for_verdict(config), backfill_reach(config)

    assert reach("default") == (True, 8 + 10)  # look-back, then the next keyframe's verdict
    assert reach("default", "association.confirm_hits=1") == (True, 8)  # born confirmed: back at once
    assert reach("default", "association.confirm_hits=3") == (False, 8)  # verdict after the hold: back at birth
    assert reach("fast") == (False, 4)  # detect_every 15 > 2 x look-back 4: back at birth
    assert reach("live")[1] == 0  # nothing held, nothing carried back


def test_backfill_asked_at_the_verdict_equals_backfill_at_birth():
    """A newborn carried back frames later (from its birth frame's prompt) gets the masks it would
    have got at birth, from cached features (the pipeline's cache reaches look-back + detection period)."""
    from conftest import moving_boxes_frames
    from promptrack.trackers.sam2_engine import SAM2Engine

    model, encoded = model_counting_encodes(seed=6)
    frames = moving_boxes_frames(14, 64, 80)
    results = []
    for later in (0, 4):
        engine = SAM2Engine(model, device="cpu", feature_cache=10)
        for i in range(10):
            engine.step(i, frames[i])
        engine.add([1], np.array([[10, 20, 40, 60]], float))
        for i in range(10, 10 + later):
            engine.step(i, frames[i])
        encoded.clear()
        results.append(engine.backfill([1], [(i, frames[i]) for i in range(4, 9)], start=9))
        assert encoded == [] and engine.ids == [1]
    assert sorted(results[0]) == sorted(results[1]) == list(range(4, 9))
    for index, dets in results[0].items():
        np.testing.assert_array_equal(dets.mask, results[1][index].mask)


def test_backfill_reuses_cached_features_and_gives_the_same_masks():
    """With feature_cache=K, back-fill over the last K frames encodes nothing again, same masks."""
    from conftest import moving_boxes_frames
    from promptrack.trackers.sam2_engine import SAM2Engine

    model, encoded = model_counting_encodes(seed=4)
    frames = moving_boxes_frames(10, 64, 80)
    results, encodes = [], []
    for cache in (0, 6):
        engine = SAM2Engine(model, device="cpu", feature_cache=cache)
        for i, frame in enumerate(frames):
            engine.step(i, frame)
        engine.add([1, 2], np.array([[10, 20, 40, 60], [40, 50, 75, 64]], float))
        encoded.clear()
        results.append(engine.backfill([1, 2], [(i, frames[i]) for i in range(3, 9)]))
        encodes.append(len(encoded))
        assert engine.ids == [1, 2] and engine.current().tracker_id.tolist() == [1, 2]
    assert encodes == [6, 0]
    assert sorted(results[0]) == sorted(results[1]) == list(range(3, 9))
    for index, dets in results[0].items():
        np.testing.assert_array_equal(dets.mask, results[1][index].mask)
        np.testing.assert_array_equal(dets.data["area"], results[1][index].data["area"])
        assert dets.tracker_id.tolist() == [1, 2]


def test_device_masks_are_the_current_masks():
    import torch

    from conftest import moving_boxes_frames
    from promptrack.trackers.base import DeviceMaskTracker, mask_areas
    from promptrack.trackers.sam2_engine import SAM2Engine, load_sam2_model

    torch.manual_seed(5)
    model = load_sam2_model("configs/sam2.1/sam2.1_hiera_t.yaml", None, "cpu", image_size=64)
    engine = SAM2Engine(model, device="cpu", fill_hole_area=8)
    assert isinstance(engine, DeviceMaskTracker)
    frames = moving_boxes_frames(3, 48, 96)
    engine.step(0, frames[0])
    engine.add([3, 5], np.array([[10, 20, 40, 45], [50, 5, 90, 30]], float))
    for i in (1, 2):
        dets = engine.step(i, frames[i])
    on_device = engine.device_masks()
    assert on_device.shape == (2, 48, 96) and on_device.dtype == torch.bool
    np.testing.assert_array_equal(on_device.numpy(), dets.mask)
    np.testing.assert_array_equal(mask_areas(dets), dets.mask.reshape(2, -1).sum(1))
    np.testing.assert_array_equal(dets.xyxy, sv.mask_to_xyxy(dets.mask).astype(np.float32))
