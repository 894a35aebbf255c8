"""Offline look-back: an object first detected at frame t also gets masks on frames t-K..t-1."""

import numpy as np
import supervision as sv

from promptrack.pipeline import track_video
from promptrack.pipeline.detectors import make_detections


def red_box_detector(fire_at: int):
    """Finds the red box of the synthetic video, but only on frame `fire_at` (read off its position)."""

    def detect(frame: np.ndarray, phrases):
        red = (frame[..., 0] > 150) & (frame[..., 1] < 100) & (frame[..., 2] < 100)
        ys, xs = np.nonzero(red)
        if xs.size and round((xs.min() - 10) / 3) == fire_at:
            box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float)
            return make_detections(box, np.array([0.9]), np.array([0]), phrases)
        return make_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), phrases)

    return detect


def run(video, lookback, tmp_path):
    return track_video(video, "red box", output_dir=tmp_path, detector=red_box_detector(20), progress=False,
                       overrides=[f"tracker.lookback={lookback}", "tracker.image_size=128", "detect_every=5",
                                  "output.video=false"])


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


def test_without_lookback_the_track_starts_at_its_birth(synthetic_video, fake_hub, tmp_path):
    result = run(synthetic_video, 0, tmp_path)
    assert present(result)[0] == 20 and result.tracks[0]["first_frame"] == 20
