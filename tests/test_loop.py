"""The frame loop's stages and seams: decoder and writer threads, errors crossing back, the
keyframe detector running beside the tracker, live controls, the track table."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from assocsim.adapters import SimDetectorAdapter, SimSource, SimTrackerAdapter  # noqa: E402
from assocsim.scenarios import build  # noqa: E402
from assocsim.sensors import SimDetector, SimMaskTracker  # noqa: E402

from promptrack.pipeline.errors import OutputError  # noqa: E402
from promptrack.pipeline.stages import Prefetcher, Writer  # noqa: E402


class Collect:
    def __init__(self, fail_at: int | None = None, on_write=None):
        self.frames, self.fail_at, self.on_write, self.closed = [], fail_at, on_write, False

    def write(self, index, frame, detections):
        if index == self.fail_at:
            raise OutputError("disk full: free space or choose another folder with -o")
        self.frames.append((index, detections))
        if self.on_write is not None:
            self.on_write(index)

    def close(self):
        self.closed = True


def sim_pipeline(case_name: str = "sam2_jumps", detect_every: int = 20, detector=None, lookback: int = 8):
    from promptrack.pipeline.config import load_config
    from promptrack.pipeline.loop import TrackingPipeline

    case = build(case_name)
    config = load_config("default", overrides=[f"detect_every={detect_every}", "device=cpu",
                                                          f"tracker.lookback={lookback}"])
    detector = detector or SimDetectorAdapter(SimDetector(case.scene, 0, case.detector))
    pipeline = TrackingPipeline(config, detector=detector,
                                tracker=SimTrackerAdapter(SimMaskTracker(case.scene, 0, case.masks)))
    return case, pipeline


def test_prefetcher_keeps_order_and_raises_the_decoder_error_in_the_consumer():
    def frames():
        yield from ((i, i) for i in range(5))
        raise OutputError("frame 5 is unreadable")

    got = []
    with pytest.raises(OutputError, match="frame 5"):
        for index, _ in Prefetcher(frames(), depth=2):
            got.append(index)
    assert got == [0, 1, 2, 3, 4]


def test_writer_error_stops_the_run_and_every_sink_saw_the_same_frames():
    first, failing = Collect(), Collect(fail_at=3)
    writer = Writer([first, failing], depth=2)
    with pytest.raises(OutputError, match="disk full"):
        for i in range(50):
            writer.put(i, None, None)
        writer.close()
    # frame 3 reached the first sink, then the second failed on it: nothing after it was written
    assert [i for i, _ in first.frames] == [0, 1, 2, 3] and [i for i, _ in failing.frames] == [0, 1, 2]


def test_sink_error_in_the_writer_thread_is_raised_by_run():
    case, pipeline = sim_pipeline()
    sink = Collect(fail_at=7)
    with pytest.raises(OutputError, match="disk full"):
        pipeline.run(SimSource(case.scene), case.scene.labels, [sink], progress=False)
    assert [i for i, _ in sink.frames] == list(range(7))


def test_keyframe_result_lands_on_the_frame_it_was_computed_on():
    case = build("sam2_jumps")
    inner = SimDetectorAdapter(SimDetector(case.scene, 0, case.detector))
    seen: list[int] = []  # frames the detector was called on, from its own thread

    def detector(frame, phrases):
        seen.append(int(frame))  # a SimSource frame is its index
        assert threading.current_thread() is not threading.main_thread()  # beside the tracker
        return inner(frame, phrases)

    case, pipeline = sim_pipeline(detector=detector)
    sink = Collect()
    pipeline.run(SimSource(case.scene), case.scene.labels, [sink], progress=False)
    keyframes = [i for i, d in sink.frames if d.metadata["keyframe"]]
    assert seen == keyframes and keyframes[:2] == [0, 20]
    # a track born on a keyframe is on that very frame's output (not one frame late)
    born: dict[int, int] = {}
    for index, d in sink.frames:
        for track_id in (d.tracker_id if len(d) else []):
            born.setdefault(int(track_id), index)
    assert born and set(born.values()) <= set(keyframes)
    assert all(isinstance(d.metadata["time"], float) for _, d in sink.frames)


def test_request_keyframe_and_set_phrases_from_another_thread():
    case = build("sam2_jumps")
    inner = SimDetectorAdapter(SimDetector(case.scene, 0, case.detector))
    asked: dict[int, list[str]] = {}

    def detector(frame, phrases):
        asked[int(frame)] = list(phrases)
        return inner(frame, case.scene.labels)

    case, pipeline = sim_pipeline(detector=detector, detect_every=1000, lookback=0)  # live: no held frames

    def control(index):
        if index == 5:  # the writer thread: not the loop's thread
            threading.Thread(target=lambda: (pipeline.set_phrases(["dog"]), pipeline.request_keyframe())).start()

    pipeline.run(SimSource(case.scene), case.scene.labels, [Collect(on_write=control)], progress=False,
                 write_behind=1)
    later = sorted(i for i in asked if i > 0)
    assert asked[0] == list(case.scene.labels)
    assert later and asked[later[0]] == ["dog"] and later[0] <= 10  # seen within a few frames


def test_tracks_table_does_not_depend_on_kept_frames(synthetic_video, fake_hub, tmp_path):
    from promptrack.pipeline import track_video
    from test_backfill import red_box_detector

    options = dict(detector=red_box_detector(3), progress=False,
                   overrides=["tracker.image_size=128", "detect_every=3", "max_frames=8",
                              "association.confirm_hits=1"])  # born confirmed: shown
    nothing_kept = track_video(synthetic_video, "red box", output_dir=None, keep_frames=False, **options)
    kept = track_video(synthetic_video, "red box", output_dir=tmp_path, **options)
    assert nothing_kept.tracks and nothing_kept.tracks == kept.tracks
    assert len(nothing_kept.frames) == 0 and kept.outputs["json"].exists()
