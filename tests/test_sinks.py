import json
from fractions import Fraction

import av
import numpy as np
import supervision as sv

from promptrack.pipeline.rle import decode_mask, encode_mask
from promptrack.pipeline.sinks import AnnotatedVideoSink, JsonSink, MotSink, ResultSink
from promptrack.pipeline.sources import SourceInfo


def dets(ids, labels, scores, h=48, w=64, keyframe=False):
    masks = np.zeros((len(ids), h, w), bool)
    for k, i in enumerate(ids):
        masks[k, 5 * k: 5 * k + 10, 4 * i: 4 * i + 12] = True
    d = sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks,
                      tracker_id=np.array(ids), confidence=np.array(scores, np.float32),
                      class_id=np.zeros(len(ids), int), data={"class_name": np.array(labels, dtype=object)})
    d.metadata["keyframe"] = keyframe
    return d


def test_rle_roundtrip_odd_sizes():
    rng = np.random.default_rng(1)
    mask = rng.random((37, 51)) > 0.6
    assert (decode_mask(encode_mask(mask)) == mask).all()
    assert isinstance(encode_mask(mask)["counts"], str)


def test_json_sink_schema_and_final_labels(tmp_path):
    info = SourceInfo("clip.mp4", 25.0, 64, 48, 3)
    sink = JsonSink(tmp_path / "clip.tracks.json", info, ["car", "truck"], {"detector": "d", "tracker": "t"}, {"a": 1})
    frame = np.zeros((48, 64, 3), np.uint8)
    sink.write(0, frame, dets([1, 2], ["car", "truck"], [0.9, 0.8], keyframe=True))
    sink.write(1, frame, dets([1], ["truck"], [0.3]))  # a one-frame label flip
    sink.write(2, frame, dets([1, 2], ["car", "truck"], [0.9, 0.7]))
    sink.close()
    data = json.loads((tmp_path / "clip.tracks.json").read_text())
    assert data["schema"] == "promptrack.tracks/1"
    assert data["source"] == {"uri": "clip.mp4", "fps": 25.0, "width": 64, "height": 48, "frames": 3}
    assert data["prompt"] == ["car", "truck"] and data["config"] == {"a": 1}
    assert [t["id"] for t in data["tracks"]] == [1, 2]
    assert data["tracks"][0] == {"id": 1, "label": "car", "score": 0.7, "first_frame": 0, "last_frame": 2}
    assert [f["frame"] for f in data["frames"]] == [0, 1, 2]
    assert data["frames"][0]["keyframe"] and not data["frames"][1]["keyframe"]
    assert data["frames"][1]["time"] == 0.04
    # per-frame labels agree with the track's label, flip included
    assert {o["label"] for f in data["frames"] for o in f["objects"] if o["id"] == 1} == {"car"}
    obj = data["frames"][0]["objects"][0]
    assert decode_mask(obj["mask"]).shape == (48, 64)
    assert obj["box"] == [4.0, 0.0, 15.0, 9.0]
    assert not list(tmp_path.glob(".*part"))


def test_video_sink_writes_h264_with_source_rate_and_count(tmp_path):
    path = tmp_path / "v.mp4"
    sink = AnnotatedVideoSink(path, fps=24.0, width=63, height=47)  # odd sizes are padded
    frame = np.full((47, 63, 3), 100, np.uint8)
    for i in range(7):
        sink.write(i, frame, dets([1, 3], ["car", "dog"], [0.9, 0.5], h=47, w=63))
    sink.close()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == Fraction(24)
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 7
    assert decoded[0].shape[:2] == (48, 64)
    assert np.abs(decoded[0].astype(int) - 100).sum() > 0  # something was drawn


def test_annotation_colour_is_fixed_per_id(tmp_path):
    sink = AnnotatedVideoSink(tmp_path / "c.mp4", fps=10, width=64, height=48)
    # colours come from the track id (not the class or the row), so an id keeps its colour
    def two(other_id):
        masks = np.zeros((2, 200, 200), bool)
        masks[0, 10:40, 10:40] = True
        masks[1, 100:180, 100:180] = True
        return sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks,
                             tracker_id=np.array([other_id, 3]), data={"class_name": np.array(["a", "b"])})

    frame = np.zeros((200, 200, 3), np.uint8)
    a, b = sink.annotate(frame, two(1)), sink.annotate(frame, two(2))
    assert (a[150, 150] == b[150, 150]).all() and a[150, 150].any()  # id 3 keeps its colour
    assert (a[25, 25] != b[25, 25]).any()  # ids 1 and 2 get different colours
    sink.close()


def test_mot_sink(tmp_path):
    sink = MotSink(tmp_path / "m.txt")
    sink.write(0, None, dets([2], ["car"], [0.5]))
    sink.close()
    assert (tmp_path / "m.txt").read_text() == "1,2,8.00,0.00,11.00,9.00,0.5000,-1,-1,-1\n"


def test_result_sink_decodes_masks_back():
    sink = ResultSink()
    d = dets([1, 2], ["car", "truck"], [0.9, 0.8])
    sink.write(5, None, d)
    back = sink[0]
    assert sink.indices == [5] and (back.mask == d.mask).all() and list(back.tracker_id) == [1, 2]
    assert sink.stats.table()[1]["label"] == "truck"


def test_masks_are_rle_encoded_once_and_shared(tmp_path):
    from promptrack.pipeline.sinks import RLE_KEY, frame_rles

    d = dets([1, 2], ["car", "truck"], [0.9, 0.8])
    d.metadata["time"] = 1.25
    rles = frame_rles(d)
    assert [decode_mask(r).tolist() for r in rles] == [m.tolist() for m in d.mask]
    marker = encode_mask(np.ones((48, 64), bool))
    d.data[RLE_KEY][0] = marker  # later sinks read the cached encoding, never encode again
    info = SourceInfo("clip.mp4", 25.0, 64, 48, 1)
    json_sink, results = JsonSink(tmp_path / "c.tracks.json", info, ["car"], {}, {}), ResultSink()
    for sink in (json_sink, results):
        sink.write(0, None, d)
        sink.close()
    frame = json.loads((tmp_path / "c.tracks.json").read_text())["frames"][0]
    assert frame["objects"][0]["mask"] == marker and frame["time"] == 1.25
    assert results[0].mask[0].all() and results[0].mask[1].tolist() == d.mask[1].tolist()
