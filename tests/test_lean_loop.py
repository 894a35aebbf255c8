"""The tracking loop's lean hand-over from the SAM 2 engine: masks cross to the host packed, the associator
reads what the engine measured where the masks are, and only the writer thread unpacks them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from live_helpers import colour_detector
from promptrack.pipeline.config import load_config
from promptrack.pipeline.loop import TrackingPipeline, backfill_reach, build_sam2_tracker
from promptrack.pipeline.sources import open_source
from promptrack.trackers.base import AREA_KEY, PACKED_KEY

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

PHRASES = ["red box", "green box"]
SETTINGS = ["tracker.image_size=128", "detect_every=5", "tracker.lookback=4", "association.confirm_hits=1",
            "output.video=false"]


class Keep:
    """A sink keeping what it is handed."""

    def __init__(self) -> None:
        self.frames: list = []

    def write(self, index, frame, detections) -> None:
        self.frames.append((index, detections))


class HostMeasured:
    """The engine behind the plain protocols only (no ``mask_frame``): masks unpacked as it returns them,
    and measured by the loop on the host, as for any tracker."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def step(self, index, frame):
        return self.engine.step(index, frame)

    def add(self, ids, boxes, masks=None):
        self.engine.add(ids, boxes, masks)

    def reprompt(self, ids, boxes):
        self.engine.reprompt(ids, boxes)

    def remove(self, ids):
        self.engine.remove(ids)

    def current(self):
        return self.engine.current()

    @property
    def ids(self):
        return self.engine.ids

    def backfill(self, ids, frames, start=None):
        return self.engine.backfill(ids, frames, start)

    def track_embeddings(self):
        return self.engine.track_embeddings()

    def box_embeddings(self, boxes):
        return self.engine.box_embeddings(boxes)


def _run(video, tracker, config) -> tuple[list, TrackingPipeline]:
    pipeline = TrackingPipeline(config, detector=colour_detector, tracker=tracker)
    sink = Keep()
    pipeline.run(open_source(video), PHRASES, [sink], progress=False)
    return sink.frames, pipeline


@pytest.fixture(scope="module")
def config():
    return load_config("default", SETTINGS)


def test_packed_and_device_measured_outputs_equal_the_host_path(synthetic_video, fake_hub, config):
    from promptrack.trackers.sam2_engine import SAM2Engine

    lean = build_sam2_tracker(config, "cpu")
    assert lean.packed_masks
    plain = SAM2Engine(lean.model, "cpu", lean.dtype, max_cond_frames=config.tracker.max_cond_frames,
                       fill_hole_area=config.tracker.fill_hole_area, feature_cache=backfill_reach(config))
    got, pipeline = _run(synthetic_video, lean, config)
    want, host_pipeline = _run(synthetic_video, HostMeasured(plain), config)
    assert [i for i, _ in got] == [i for i, _ in want] == list(range(24))
    objects = 0
    for (index, a), (_, b) in zip(got, want):
        assert PACKED_KEY not in a.data  # the writer unpacked them
        np.testing.assert_array_equal(a.tracker_id, b.tracker_id, err_msg=str(index))
        np.testing.assert_array_equal(a.mask, b.mask, err_msg=str(index))
        np.testing.assert_array_equal(a.xyxy, b.xyxy, err_msg=str(index))
        np.testing.assert_array_equal(a.data["class_name"], b.data["class_name"], err_msg=str(index))
        if len(a):
            np.testing.assert_array_equal(a.data[AREA_KEY], a.mask.reshape(len(a), -1).sum(1), err_msg=str(index))
        objects += len(a)
    assert objects > 24  # objects were tracked (and back-filled before their birth at frame 0 + ...)
    assert pipeline.associator.merges == host_pipeline.associator.merges
    assert [t.track_id for t in pipeline.associator.tracks.values()] == \
        [t.track_id for t in host_pipeline.associator.tracks.values()]


def test_the_tracking_thread_does_no_per_mask_numpy_work(synthetic_video, fake_hub, config):
    from gpu_counts_e2e import NumpyCalls, numpy_functions_seen

    class Seen:  # what numpy_functions_seen records into: numpy calls of this (the tracking) thread
        numpy_now = NumpyCalls(mask_pixels=120 * 160)

    tracker = build_sam2_tracker(config, "cpu")
    pipeline = TrackingPipeline(config, detector=colour_detector, tracker=tracker)
    sink = Keep()
    with numpy_functions_seen(Seen):
        sys.setprofile(Seen.numpy_now.profile)
        try:
            pipeline.run(open_source(synthetic_video), PHRASES, [sink], progress=False)
        finally:
            sys.setprofile(None)
    assert sum(len(d) for _, d in sink.frames) > 24 and all(d.mask is not None for _, d in sink.frames if len(d))
    calls = Seen.numpy_now
    assert calls.calls  # the counter saw the thread's numpy calls ...
    # ... and none on an array of a mask's size or more, but the frame's own upload (a frame is 3 masks)
    per_mask = {site: n for site, n in calls.mask_sized.items() if "trackers/transfer.py" not in site}
    assert per_mask == {}
    assert not any("unpackbits" in site for site in calls.calls)


def test_a_keyframes_box_coverage_costs_one_download_and_no_blocking_upload():
    """What the associator asks of the masks on a keyframe, counted as on a GPU: the boxes go up in one
    non-blocking upload, the counts come down in one download; nothing the size of a mask crosses."""
    import torch
    from gpucount import count

    from promptrack.trackers import transfer
    from promptrack.trackers.device_frame import DeviceMasks
    from promptrack.trackers.masks import boxes_and_areas, pack_bits, pairwise_overlap

    masks = torch.zeros(5, 72, 128, dtype=torch.bool)
    for k in range(5):
        masks[k, 10 * k:10 * k + 30, 20 * k:20 * k + 40] = True
    boxes, areas = boxes_and_areas(masks)
    frame = DeviceMasks([4, 8, 15, 16, 23], areas.numpy(), boxes.numpy(), pairwise_overlap(masks).numpy(),
                        pack_bits(masks), (72, 128))
    detections = np.array([[0, 0, 50, 40], [30, 20, 120, 70], [60, 0, 64, 72]], dtype=float)
    with count(nonblocking_uploads=[transfer.upload]) as counter, counter.section("box cover") as tally:
        inside, covered = frame.box_cover(detections, [15, 4, 23])
    assert [s.kind for s in tally.syncs] == [".cpu()"] and tally.uploads == 1
    assert tally.d2h_bytes == 4 * 4 * 3  # (3 masks + their union) x 3 boxes, float32
    assert tally.h2d_bytes < 200 and tally.launches < 30
    np.testing.assert_array_equal(inside[1], [40 * 30, 10 * 10, 0])  # mask 4: rows 0-29, cols 0-39
    assert covered[2] == 4 * 30  # the strip x 60-63 crosses mask 15 only (rows 20-49, cols 40-79)
