"""Export of tracks.json as datasets, read back by the tools users read them with.

Two kinds of input: hand-built tracks files over synthetic videos (1-px objects, 1-px-thick
slivers, holes, masks in pieces, a gap, an empty mask, a run cut short; two videos prompted
differently), and one real run (bedroom.mp4, YOLOX-Nano, random-weight SAM 2 from the fake hub).
pycocotools (COCOeval of the export against itself), supervision, TrackEval (HOTA), an
Ultralytics-style rasteriser (cv2.fillPoly of int32 points), a YouTube-VIS reader and CVAT's
format rules read the files back, and what they read must be what the JSON says.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import types
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import supervision as sv
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from conftest import moving_boxes_frames, require_module, run_cli, write_video
from promptrack.pipeline.errors import ConfigError, OutputError
from promptrack.pipeline.export import FORMATS, export_tracks
from promptrack.pipeline.export.cli import main as export_main
from promptrack.pipeline.export.coco import CocoExporter
from promptrack.pipeline.export.polygons import mask_to_polygon, mask_to_polygons
from promptrack.pipeline.export.tracks_file import rle_counts
from promptrack.pipeline.rle import decode_mask, encode_mask

H, W = 120, 160


# ---------------------------------------------------------------- hand-built tracks files

def _obj(track_id, label, mask, score=0.9):
    ys, xs = np.nonzero(mask)
    box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())] if len(xs) else [0.0, 0.0, 0.0, 0.0]
    return {"id": track_id, "label": label, "score": score, "box": box, "mask": encode_mask(mask)}


def _write_tracks(path, video, prompt, frames):
    table = {}
    for index, objects in frames:
        for o in objects:
            entry = table.setdefault(o["id"], {"id": o["id"], "label": o["label"], "score": o["score"],
                                               "first_frame": index})
            entry["last_frame"] = index
    data = {"schema": "promptrack.tracks/1",
            "source": {"uri": str(video), "fps": 10.0, "width": W, "height": H, "frames": len(frames)},
            "prompt": prompt, "models": {}, "config": {}, "tracks": [table[i] for i in sorted(table)],
            "frames": [{"frame": i, "time": i / 10, "keyframe": i % 3 == 0, "objects": objs} for i, objs in frames]}
    path.write_text(json.dumps(data))
    return path


def _blank():
    return np.zeros((H, W), bool)


def frames_a():
    """9 frames of a 12-frame video (a run cut short): a person with a hole and a second piece, a 1-px
    pallet that ends early, a 1-px-thick pallet sliver, a person with a gap, an empty mask."""
    frames = []
    for t in range(9):
        objects = []
        person = _blank()
        person[10:40, 10 + t:40 + t] = True
        person[20:30, 20 + t:30 + t] = False  # a hole
        person[15:25, 48 + t:58 + t] = True  # a second piece, 8 px away
        objects.append(_obj(1, "person", person))
        if t <= 5:
            dot = _blank()
            dot[90, 100 + t] = True
            objects.append(_obj(2, "pallet", dot))
        if t >= 3:
            sliver = _blank()
            if t % 2:
                sliver[110, 20 + t:45 + t] = True  # 1 px high
            else:
                sliver[80:105, 5 + t] = True  # 1 px wide
            objects.append(_obj(3, "pallet", sliver))
        if t <= 2 or t >= 5:
            box = _blank()
            box[40:65, 120:135] = True
            objects.append(_obj(4, "person", box))
        if t == 1:
            objects.append(_obj(5, "person", _blank()))  # empty: left out
        frames.append((t, objects))
    return frames


def frames_b():
    """10 frames of a 10-frame video prompted differently: a forklift in two pieces, a person."""
    frames = []
    for t in range(10):
        forklift = _blank()
        forklift[20:50, 10 + t:40 + t] = True
        forklift[25:55, 48 + t:78 + t] = True  # 8 px to the right: the same object, in two pieces
        person = _blank()
        person[50 + t:90 + t, 100:120] = True
        frames.append((t, [_obj(1, "forklift", forklift), _obj(2, "person", person)]))
    return frames


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """Two hand-built tracks files (a: cut short, b: whole) beside their videos: (a path, b path)."""
    folder = tmp_path_factory.mktemp("hand")
    video_a = write_video(folder / "a.mp4", moving_boxes_frames(12, H, W))
    video_b = write_video(folder / "b.mp4", moving_boxes_frames(10, H, W))
    a = _write_tracks(folder / "a.tracks.json", video_a, ["person", "pallet"], frames_a())
    b = _write_tracks(folder / "b.tracks.json", video_b, ["forklift", "person"], frames_b())
    return a, b


def kept(path):
    """frame -> the JSON's objects an export keeps (non-empty masks)."""
    data = json.loads(path.read_text())
    return {f["frame"]: [o for o in f["objects"] if decode_mask(o["mask"]).any()] for f in data["frames"]}


def to_bbox(obj):
    return [int(v) for v in mask_utils.toBbox(dict(obj["mask"], counts=obj["mask"]["counts"].encode()))]


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def self_ap(coco, iou_type):
    """COCOeval of the dataset against itself (each annotation as a detection, score 1): AP@[.5:.95]."""
    anns = coco.loadAnns(coco.getAnnIds())
    if iou_type == "bbox":
        detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                      for a in anns]
    else:
        detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                       "segmentation": coco.annToRLE(a)} for a in anns]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(coco, coco.loadRes(detections), iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats[0]


# ---------------------------------------------------------------- COCO

@pytest.mark.parametrize("mask_format", ["polygon", "rle"])
def test_coco_boxes_are_the_masks_and_self_ap_is_1(hand, tmp_path, mask_format):
    a, _ = hand
    result = export_tracks(a, "coco", tmp_path / "coco", mask_format=mask_format)
    assert result.index == tmp_path / "coco" / "annotations" / "instances_train.json"
    coco = COCO(str(result.index))
    expected = kept(a)
    images = coco.loadImgs(coco.getImgIds())
    assert [img["frame_index"] for img in images] == list(expected)
    for img in images:
        assert cv2.imread(str(tmp_path / "coco" / "images" / "train" / img["file_name"])).shape == (H, W, 3)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        want = expected[img["frame_index"]]
        assert [a["attributes"]["track_id"] for a in anns] == [o["id"] for o in want]
        for ann, obj in zip(anns, want):
            assert ann["bbox"] == to_bbox(obj), "the box is pycocotools' toBbox of the mask"
            assert ann["iscrowd"] == 0 and isinstance(ann["segmentation"], list if mask_format == "polygon" else dict)
            assert (coco.annToMask(ann).astype(bool) == decode_mask(obj["mask"])).all(), "masks come back exactly"
            assert ann["area"] == decode_mask(obj["mask"]).sum()
    slivers = [a for a in coco.loadAnns(coco.getAnnIds()) if min(a["bbox"][2:]) == 1]
    assert any(a["bbox"][2:] == [1, 1] for a in slivers) and len(slivers) >= 7, "1-px objects keep a 1-px box"
    assert self_ap(coco, "bbox") == 1.0
    assert self_ap(coco, "segm") == 1.0


def test_coco_polygons_keep_holes_and_pieces():
    mask = np.zeros((60, 80), bool)
    mask[5:35, 5:35] = True
    mask[15:25, 15:25] = False  # a hole
    mask[40:55, 50:75] = True  # a second piece
    mask[10, 60] = True  # a single pixel
    mask[30, 40:70] = True  # a 1-px-thick line
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 4, "one polygon per piece; the hole is inside its piece's polygon"
    back = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([p.ravel().tolist() for p in polygons], 60, 80)))
    assert (back.astype(bool) == mask).all()
    assert mask_to_polygon(np.zeros((10, 10), bool)) is None


def test_two_videos_make_one_dataset_and_a_later_export_adds_to_it(hand, tmp_path):
    a, b = hand
    out = tmp_path / "merged"
    first = export_tracks(a, "coco", out, val=0.5, mask_format="rle")
    a_images = {p.name: p.stat().st_mtime_ns for p in (out / "images").rglob("*.jpg")}
    assert first.videos == 1 and (out / "promptrack-export.json").exists()
    result = export_tracks([a, b], "coco", out, val=0.5, mask_format="rle")  # b joins later (a batch ran on)
    assert result.videos == 2
    files = {s: out / "annotations" / f"instances_{s}.json" for s in ("train", "val")}
    assert all(f.exists() for f in files.values())
    docs = {s: json.loads(f.read_text()) for s, f in files.items()}
    for doc in docs.values():
        assert [c["name"] for c in doc["categories"]] == ["person", "pallet", "forklift"], "one id per name"
    videos = {s: {img["video_id"] for img in doc["images"]} for s, doc in docs.items()}
    assert videos["train"].isdisjoint(videos["val"]) and videos["train"] | videos["val"] == {1, 2}
    assert videos["train"] == {1}, "a kept its video id and its split; b went to val (half the videos)"
    image_ids = [img["id"] for doc in docs.values() for img in doc["images"]]
    ann_ids = [ann["id"] for doc in docs.values() for ann in doc["annotations"]]
    assert len(set(image_ids)) == len(image_ids) and len(set(ann_ids)) == len(ann_ids)
    names = {c["id"]: c["name"] for c in docs["val"]["categories"]}
    want_b = kept(b)
    got_b = [(img["frame_index"], names[ann["category_id"]]) for img in docs["val"]["images"]
             for ann in docs["val"]["annotations"] if ann["image_id"] == img["id"]]
    assert got_b == [(f, o["label"]) for f, objs in want_b.items() for o in objs]
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == [f"b_{f:06d}.jpg" for f in want_b]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "images" / "train").iterdir()} == a_images, \
        "a's pictures were not cut again"
    again = export_tracks([a, b], "coco", out, val=0.5, mask_format="rle")
    assert again.files == [] and again.videos == 2, "nothing new: nothing written"
    with pytest.raises(ConfigError, match="made with --format coco --every 1 --min-area 0 --mask-format rle"):
        export_tracks([a, b], "coco", out, val=0.5, mask_format="polygon")


def test_batch_export_writes_one_dataset(hand, tmp_path):
    from promptrack.pipeline.batch.cli import export_datasets

    a, b = hand
    out = tmp_path / "batch"
    out.mkdir()
    for path in (a, b):
        (out / path.name).write_text(path.read_text())
    video = lambda stem: types.SimpleNamespace(stem=stem, status="done", source=str(a.parent / f"{stem}.mp4"),  # noqa: E731
                                               outputs={})
    summary = types.SimpleNamespace(output_dir=str(out), videos=[video("a"), video("b"),
                                                                 types.SimpleNamespace(stem="c", status="failed")])
    export_datasets(summary, ["coco", "cvat-video"], quiet=True)
    doc = json.loads((out / "dataset.coco" / "annotations" / "instances_train.json").read_text())
    assert {img["video_id"] for img in doc["images"]} == {1, 2}
    assert [c["name"] for c in doc["categories"]] == ["person", "pallet", "forklift"]
    assert (out / "a.cvat-video" / "annotations.xml").exists() and (out / "b.cvat-video" / "annotations.xml").exists()
    assert sorted(out.glob("*.coco")) == [out / "dataset.coco"], "no dataset per video"
    summary.videos[2] = types.SimpleNamespace(stem="c", status="skipped", source=str(a.parent / "a.mp4"), outputs={})
    (out / "c.tracks.json").write_text(a.read_text())  # the next run finished c: the dataset grows
    export_datasets(summary, ["coco"], quiet=True)
    doc = json.loads((out / "dataset.coco" / "annotations" / "instances_train.json").read_text())
    assert {img["video_id"] for img in doc["images"]} == {1, 2, 3}


# ---------------------------------------------------------------- YOLO-seg

def ultralytics_mask(line, width, height):
    """A YOLO-seg line as Ultralytics rasterises it (polygon2mask: float32 points times the size,
    cast to int32, cv2.fillPoly)."""
    points = np.array(line.split()[1:], dtype=np.float32).reshape(-1, 2) * np.array([width, height], np.float32)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.asarray(points, dtype=np.int32)], 1)
    return mask.astype(bool)


def test_yolo_seg_lines_rasterise_back_to_the_masks(hand, tmp_path):
    a, b = hand
    out = tmp_path / "yolo"
    export_tracks([a, b], "yolo-seg", out, val=0.5)
    data = sv.DetectionDataset.from_yolo(str(out / "images" / "val"), str(out / "labels" / "val"),
                                         str(out / "data.yaml"))
    assert data.classes == ["person", "pallet", "forklift"]
    expected = {"a": kept(a), "b": kept(b)}
    worst_piece = 1.0  # the person of a and the forklift of b are in two pieces
    for split in ("train", "val"):
        for label in sorted((out / "labels" / split).iterdir()):
            stem, frame = label.stem.rsplit("_", 1)
            want = expected[stem][int(frame)]
            lines = label.read_text().splitlines()
            assert len(lines) == len(want), "one line per object"
            for line, obj in zip(lines, want):
                mask = decode_mask(obj["mask"])
                got = ultralytics_mask(line, W, H)
                if obj["id"] == 1:  # two pieces joined by a seam across an 8-px gap
                    worst_piece = min(worst_piece, iou(got, mask))
                else:
                    assert (got == mask).all(), (label.name, obj["id"])
    assert worst_piece >= 0.99
    for image_path, _, detections in data:  # supervision reads the same masks
        stem, frame = os.path.basename(image_path)[:-4].rsplit("_", 1)
        want = expected[stem][int(frame)]
        assert list(detections.data["class_name"]) == [o["label"] for o in want]
        assert all(iou(m, decode_mask(o["mask"])) >= 0.99 for m, o in zip(detections.mask, want))


def test_two_pieces_fill_back_with_fillpoly():
    mask = np.zeros((120, 200), bool)
    mask[20:70, 10:60] = True
    mask[40:100, 70:130] = True  # 10 px apart
    polygon = mask_to_polygon(mask) + 0.25
    filled = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(filled, [polygon.astype(np.int32)], 1)
    assert iou(filled.astype(bool), mask) >= 0.99
    assert (filled.astype(bool) & ~mask).sum() <= 10, "only the seam across the gap is drawn"


# ---------------------------------------------------------------- YouTube-VIS

def read_ytvis(document):
    """A YouTube-VIS reader in the manner of ``ytvos.py``: per video, per instance, per frame."""
    names = {c["id"]: c["name"] for c in document["categories"]}
    videos = {v["id"]: v for v in document["videos"]}
    frames = {}
    for ann in document["annotations"]:
        video = videos[ann["video_id"]]
        assert len(ann["segmentations"]) == len(ann["bboxes"]) == len(ann["areas"]) == video["length"]
        assert {"id", "video_id", "category_id", "iscrowd", "segmentations", "bboxes", "areas"} <= set(ann)
        for position, rle in enumerate(ann["segmentations"]):
            if rle is None:
                assert ann["bboxes"][position] is None and ann["areas"][position] is None
                continue
            mask = mask_utils.decode(dict(rle, counts=rle["counts"].encode("ascii"))).astype(bool)
            assert mask.shape == (video["height"], video["width"]) and ann["areas"][position] == mask.sum()
            frames.setdefault((video["name"], video["frame_indices"][position]), []).append(
                (ann["track_id"], names[ann["category_id"]], ann["bboxes"][position], mask))
    return frames


def test_ytvis_holds_many_videos(hand, tmp_path):
    a, b = hand
    export_tracks([a, b], "ytvis", tmp_path / "ytvis")
    document = json.loads((tmp_path / "ytvis" / "instances_train.json").read_text())
    assert [v["id"] for v in document["videos"]] == [1, 2]
    ids = [ann["id"] for ann in document["annotations"]]
    assert len(set(ids)) == len(ids)
    for video in document["videos"]:
        for name in video["file_names"]:
            assert cv2.imread(str(tmp_path / "ytvis" / "JPEGImages" / name)).shape == (H, W, 3)
    frames = read_ytvis(document)
    for stem, path in (("a", a), ("b", b)):
        for frame, want in kept(path).items():
            got = sorted(frames.get((stem, frame), []), key=lambda item: item[0])
            assert [(i, label) for i, label, _, _ in got] == [(o["id"], o["label"]) for o in sorted(want, key=lambda o: o["id"])]
            for (_, _, box, mask), obj in zip(got, sorted(want, key=lambda o: o["id"])):
                assert box == to_bbox(obj) and (mask == decode_mask(obj["mask"])).all()


# ---------------------------------------------------------------- CVAT for video

def check_cvat_video(root):
    """The rules CVAT's "CVAT for video 1.1" import holds a file to: returns {track id: [(frame, outside)]}."""
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    task = root.find("meta/task")
    start, stop = int(task.findtext("start_frame")), int(task.findtext("stop_frame"))
    labels = {label.findtext("name") for label in task.iter("label")}
    assert [child.tag for child in root][:2] == ["version", "meta"]
    tracks = {}
    for track in root.findall("track"):
        assert track.get("label") in labels and track.get("id").isdigit() and track.get("source")
        shapes = list(track)
        assert shapes and {s.tag for s in shapes} == {"polygon"}
        frames = [int(s.get("frame")) for s in shapes]
        assert frames == sorted(set(frames)), "one shape a frame, in order"
        for shape in shapes:
            assert set(shape.attrib) == {"frame", "keyframe", "outside", "occluded", "points", "z_order"}
            assert shape.get("outside") in "01" and shape.get("occluded") in "01" and shape.get("keyframe") == "1"
            assert start <= int(shape.get("frame")) <= stop
            points = [tuple(float(v) for v in p.split(",")) for p in shape.get("points").split(";")]
            assert len(points) >= 3 and all(len(p) == 2 for p in points)
        assert shapes[0].get("outside") == "0"
        tracks[int(track.get("id"))] = [(int(s.get("frame")), s.get("outside") == "1", s.get("points")) for s in shapes]
    return tracks


def test_cvat_video_of_a_partial_run_ends_every_track(hand, tmp_path):
    a, _ = hand
    export_tracks(a, "cvat-video", tmp_path / "cvat")
    root = ET.parse(tmp_path / "cvat" / "annotations.xml").getroot()
    assert root.findtext("meta/task/stop_frame") == "11", "the task is the whole 12-frame video"
    tracks = check_cvat_video(root)
    expected = kept(a)
    assert sorted(tracks) == [1, 2, 3, 4]
    for track_id, shapes in tracks.items():
        present = {f: next(o for o in objs if o["id"] == track_id) for f, objs in expected.items()
                   if any(o["id"] == track_id for o in objs)}
        assert [f for f, outside, _ in shapes if not outside] == sorted(present)
        assert shapes[-1][1], f"track {track_id} ends with outside=1"
        assert shapes[-1][0] == max(present) + 1, "on the frame after its last one"
        for frame, outside, points in shapes:
            if outside:
                continue
            polygon = [float(v) for p in points.split(";") for v in p.split(",")]
            back = mask_utils.decode(mask_utils.frPyObjects([polygon], H, W)[0]).astype(bool)
            assert (back == decode_mask(present[frame]["mask"])).all()
    assert [(f, o) for f, o, _ in tracks[4]] == [(0, False), (1, False), (2, False), (3, True), (5, False),
                                                  (6, False), (7, False), (8, False), (9, True)], "a gap, then the end"


# ---------------------------------------------------------------- MOTChallenge

def test_trackeval_scores_mot_against_mot_gt_at_hota_1(hand, tmp_path):
    trackeval = require_module("trackeval")
    a, b = hand
    gt = tmp_path / "gt"
    results = tmp_path / "trackers" / "promptrack" / "data"
    export_tracks([a, b], "mot-gt", gt)
    export_tracks([a, b], "mot", results)
    rows = [line.split(",") for line in (gt / "a" / "gt" / "gt.txt").read_text().splitlines()]
    want = [(f + 1, o["id"], *to_bbox(o)) for f, objs in kept(a).items() for o in objs]
    assert [tuple(int(v) for v in r[:6]) for r in rows] == want, "frame = source frame + 1; exact boxes"
    assert all(r[6:] == ["1", "1", "1"] for r in rows)
    assert "seqLength=9" in (gt / "a" / "seqinfo.ini").read_text()

    config = trackeval.Evaluator.get_default_eval_config()
    config.update(PRINT_RESULTS=False, PRINT_CONFIG=False, OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False,
                  PLOT_CURVES=False, USE_PARALLEL=False, TIME_PROGRESS=False, DISPLAY_LESS_PROGRESS=True)
    data_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    data_config.update(GT_FOLDER=str(gt), TRACKERS_FOLDER=str(tmp_path / "trackers"), TRACKERS_TO_EVAL=["promptrack"],
                       SKIP_SPLIT_FOL=True, SEQMAP_FILE=str(gt / "seqmaps" / "train.txt"), PRINT_CONFIG=False,
                       OUTPUT_FOLDER=str(tmp_path / "trackeval"))
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = trackeval.Evaluator(config)
        output, _ = evaluator.evaluate([trackeval.datasets.MotChallenge2DBox(data_config)],
                                       [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()])
    scores = output["MotChallenge2DBox"]["promptrack"]
    assert set(scores) == {"a", "b", "COMBINED_SEQ"}
    combined = scores["COMBINED_SEQ"]["pedestrian"]
    total = sum(len(objs) for path in (a, b) for objs in kept(path).values())
    assert combined["CLEAR"]["CLR_TP"] == total, "TrackEval kept every ground-truth box"
    assert combined["HOTA"]["HOTA"].mean() == pytest.approx(1.0)
    assert combined["CLEAR"]["MOTA"] == pytest.approx(1.0) and combined["Identity"]["IDF1"] == pytest.approx(1.0)


def test_mot_frames_are_source_frames_plus_one_after_a_later_start(tmp_path):
    square = _blank()
    square[10:20, 30:45] = True
    frames = [(index, [_obj(7, "person", square)]) for index in range(100, 104)]  # a run from --start 100
    path = _write_tracks(tmp_path / "late.tracks.json", tmp_path / "late.mp4", ["person"], frames)
    export_tracks(path, "mot-gt", tmp_path / "gt")
    export_tracks(path, "mot", tmp_path / "results")
    gt = [line.split(",") for line in (tmp_path / "gt" / "late" / "gt" / "gt.txt").read_text().splitlines()]
    results = [line.split(",") for line in (tmp_path / "results" / "late.txt").read_text().splitlines()]
    assert [int(r[0]) for r in gt] == [int(r[0]) for r in results] == [101, 102, 103, 104]
    assert gt[0][1:6] == results[0][1:6] == ["7", "30", "10", "15", "10"]
    assert "seqLength=104" in (tmp_path / "gt" / "late" / "seqinfo.ini").read_text()


# ---------------------------------------------------------------- damaged input

def _undecodable(data):
    data["frames"][2]["objects"][1]["mask"]["counts"] = "zzzz"
    return "frame 2, object 2", "does not decode"


def _cut_short(data):
    counts = data["frames"][2]["objects"][1]["mask"]["counts"]
    data["frames"][2]["objects"][1]["mask"]["counts"] = counts[:-2]
    return "frame 2, object 2", "RLE"


def _wrong_size(data):
    data["frames"][4]["objects"][0]["mask"] = encode_mask(np.ones((H // 2, W // 2), bool))
    return "frame 4, object 1", f"{W // 2}x{H // 2}"


def _no_mask(data):
    del data["frames"][3]["objects"][2]["mask"]
    return "frame 3, object 3", "no mask"


def _no_id(data):
    del data["frames"][1]["objects"][0]["id"]
    return "frame 1, object #0", "id"


def _bad_box(data):
    data["frames"][6]["objects"][0]["box"] = [10, 20, "x"]
    return "frame 6, object 1", "box"


def _no_frame_number(data):
    del data["frames"][5]["frame"]
    return "frame entry 5", "frame number"


def _frames_repeat(data):
    data["frames"][5]["frame"] = 4
    return "frame 4", "increase"


DAMAGES = [_undecodable, _cut_short, _wrong_size, _no_mask, _no_id, _bad_box, _no_frame_number, _frames_repeat]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_tracks_file_is_one_line_in_every_format(damage, hand, tmp_path, capsys):
    a, b = hand
    data = json.loads(a.read_text())
    where, what = damage(data)
    bad = tmp_path / "bad.tracks.json"
    bad.write_text(json.dumps(data))
    for format in FORMATS:
        out = tmp_path / format
        args = [str(b), str(bad)] if format != "cvat-video" else [str(bad)]
        code = export_main([*args, "--format", format, "-o", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2, (format, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("track-video export: error:"), err
        assert str(bad) in lines[0] and where in lines[0] and what in lines[0], lines[0]
        assert not out.exists(), f"{format}: nothing is written, not even the folder"


def test_a_damaged_tracks_file_from_the_command_line(hand, tmp_path):
    a, _ = hand
    data = json.loads(a.read_text())
    _undecodable(data)
    bad = tmp_path / "bad.tracks.json"
    bad.write_text(json.dumps(data))
    result = run_cli(["export", str(bad), "--format", "coco", "-o", str(tmp_path / "out"), "--quiet"], dict(os.environ))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "frame 2, object 2" in result.stderr and not (tmp_path / "out").exists()


def test_rle_counts_read_what_pycocotools_writes():
    rng = np.random.default_rng(0)
    for trial in range(200):
        height, width = (int(v) for v in rng.integers(1, 50, 2))
        mask = rng.random((height, width)) < rng.random()
        if trial % 5 == 0:
            mask[:] = trial % 10 == 0
        coded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        runs = rle_counts(coded["counts"].decode())
        flat = mask.ravel(order="F")
        changes = np.flatnonzero(np.diff(flat.astype(int))) + 1
        expected = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
        if flat[0]:
            expected = [0] + expected
        assert runs.tolist() == expected


# ---------------------------------------------------------------- a real run

RUN = ["--prompt", "person . bed . chair", "--max-frames", "10", "--detect-every", "3", "--no-video", "--quiet",
       "--set", "tracker.image_size=256",
       # Random SAM 2 masks cover most of the frame: keep overlapping births and single hits alive,
       # so several tracks start, end and overlap over the 10 frames.
       "--set", "association.birth_max_overlap=1.0", "--set", "association.confirm_hits=1"]


@pytest.fixture(scope="module")
def run(assets, fake_hub, tmp_path_factory):
    """A tracking run with ``--export ytvis``: returns (tracks.json path, its data)."""
    out = tmp_path_factory.mktemp("run")
    env = {**os.environ, "HF_HOME": str(fake_hub), "HF_HUB_OFFLINE": "1"}
    result = run_cli([str(assets / "videos" / "bedroom.mp4"), "--detector", str(assets / "models" / "yolox_nano.onnx"),
                      "-o", str(out), "--export", "ytvis", *RUN], env)
    assert result.returncode == 0, result.stderr
    path = out / "bedroom.tracks.json"
    data = json.loads(path.read_text())
    objects = [o for f in data["frames"] for o in f["objects"]]
    assert len({o["id"] for o in objects}) >= 3, "the run should keep several objects alive"
    return path, data


def json_objects(data, every=1, min_area=0):
    """frame number -> the JSON's objects an export keeps (non-empty masks of at least min_area pixels)."""
    def area(o):
        return int(decode_mask(o["mask"]).sum())
    return {f["frame"]: [o for o in f["objects"] if area(o) > 0 and area(o) >= min_area] for f in data["frames"][::every]}


@pytest.mark.parametrize("mask_format", ["polygon", "rle"])
def test_coco_of_a_run_reads_back_in_supervision_and_pycocotools(run, tmp_path, mask_format):
    path, data = run
    result = export_tracks(path, "coco", tmp_path / "coco", mask_format=mask_format)
    expected = json_objects(data)
    coco = COCO(str(result.index))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert list(names.values())[:3] == data["prompt"]
    assert len(coco.getAnnIds()) == sum(len(v) for v in expected.values())
    for ann in coco.loadAnns(coco.getAnnIds()):
        obj = next(o for o in expected[coco.imgs[ann["image_id"]]["frame_index"]] if o["id"] == ann["attributes"]["track_id"])
        assert ann["bbox"] == to_bbox(obj) and (coco.annToMask(ann).astype(bool) == decode_mask(obj["mask"])).all()
    assert self_ap(coco, "segm") == 1.0 and self_ap(coco, "bbox") == 1.0
    dataset = sv.DetectionDataset.from_coco(str(tmp_path / "coco" / "images" / "train"), str(result.index),
                                            force_masks=True)
    assert len(dataset) == len(expected)
    images = coco.loadImgs(coco.getImgIds())
    for image_path, _, detections in dataset:
        frame = next(img["frame_index"] for img in images if img["file_name"] == os.path.basename(image_path))
        want = expected[frame]
        assert list(detections.data["class_name"]) == [o["label"] for o in want]
        for mask, obj in zip(detections.mask, want):
            if mask_format == "rle":
                assert (mask == decode_mask(obj["mask"])).all()
            else:  # supervision fills polygons with cv2.fillPoly, edges included: a pixel more right and below
                assert iou(mask, decode_mask(obj["mask"])) >= 0.9


def test_ytvis_round_trip_from_the_run_export(run):
    path, data = run
    folder = path.parent / "bedroom.ytvis"  # written by --export ytvis on the run
    document = json.loads((folder / "instances_train.json").read_text())
    (video,) = document["videos"]
    expected = json_objects(data)
    assert video["frame_indices"] == list(expected) and len(video["file_names"]) == len(expected)
    frames = read_ytvis(document)
    for frame, want in expected.items():
        got = sorted(frames.get(("bedroom", frame), []), key=lambda item: item[0])
        want = sorted(want, key=lambda o: o["id"])
        assert [(i, label) for i, label, _, _ in got] == [(o["id"], o["label"]) for o in want]
        for (_, _, box, mask), obj in zip(got, want):
            assert box == to_bbox(obj) and (mask == decode_mask(obj["mask"])).all()


def test_cli_every_and_min_area(run, tmp_path):
    path, data = run
    areas = sorted(int(decode_mask(o["mask"]).sum()) for f in data["frames"] for o in f["objects"])
    min_area = areas[len(areas) // 2]  # about half the objects are left out
    out = tmp_path / "every"
    result = run_cli(["export", str(path), "--format", "coco", "-o", str(out), "--every", "3",
                      "--min-area", str(min_area), "--quiet"], dict(os.environ))
    assert result.returncode == 0, result.stderr
    expected = json_objects(data, every=3, min_area=min_area)
    assert list(expected) == [f["frame"] for f in data["frames"]][::3]
    coco = COCO(str(out / "annotations" / "instances_train.json"))
    assert [img["frame_index"] for img in coco.loadImgs(coco.getImgIds())] == list(expected)
    assert sorted(os.listdir(out / "images" / "train")) == sorted(f"bedroom_{f:06d}.jpg" for f in expected)
    got = [(coco.imgs[a["image_id"]]["frame_index"], a["attributes"]["track_id"]) for a in coco.loadAnns(coco.getAnnIds())]
    assert got == [(f, o["id"]) for f, objs in expected.items() for o in objs]
    assert 0 < len(got) < sum(len(f["objects"]) for f in data["frames"][::3])


# ---------------------------------------------------------------- other bad input

def _other_schema(tmp_path, path):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"schema": "something/2", "frames": []}))
    return [str(bad), "--format", "coco"]


def _not_json(tmp_path, path):
    bad = tmp_path / "clip.tracks.json"
    bad.write_text("frame,id,x,y\n1,2,3,4\n")
    return [str(bad), "--format", "mot"]


def _missing_source(tmp_path, path):
    moved = tmp_path / "moved.tracks.json"
    data = json.loads(path.read_text())
    moved.write_text(json.dumps({**data, "source": {**data["source"], "uri": str(tmp_path / "gone" / "clip.mp4")}}))
    return [str(moved), "--format", "yolo-seg"]


def _wrong_source(tmp_path, path):
    other = write_video(tmp_path / "small.mp4", moving_boxes_frames(12, 60, 80))
    return [str(path), "--format", "ytvis", "--source", str(other)]


def _unwritable(tmp_path, path):
    (tmp_path / "file").write_text("a file, not a folder")
    return [str(path), "--format", "cvat-video", "-o", str(tmp_path / "file" / "dataset")]


def _same_stem(tmp_path, path):
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / path.name).write_text(path.read_text())
    return [str(path), str(twin / path.name), "--format", "coco"]


def _cvat_of_two(tmp_path, path):
    other = tmp_path / "other.tracks.json"
    other.write_text(path.read_text())
    return [str(path), str(other), "--format", "cvat-video"]


@pytest.mark.parametrize("case", [_other_schema, _not_json, _missing_source, _wrong_source, _unwritable, _same_stem,
                                  _cvat_of_two], ids=lambda f: f.__name__.strip("_"))
def test_bad_input_is_one_line_exit_2(case, hand, tmp_path, capsys):
    a, _ = hand
    args = case(tmp_path, a)
    out = tmp_path / "dataset"
    if "-o" not in args:
        args += ["-o", str(out)]
    code = export_main([*args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("track-video export: error:"), err
    assert not out.exists(), "a failed export writes nothing, not even the folder"


def test_failed_export_leaves_the_previous_dataset_whole(hand, tmp_path, monkeypatch):
    a, b = hand
    out = tmp_path / "coco"
    export_tracks(a, "coco", out, every=5)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(self, dataset, stage):  # the disk fills up while the index is written
        stage.path(self.index.format(split="train")).write_text('{"images": [')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(CocoExporter, "write", fail)
    with pytest.raises(OutputError, match="No space left on device"):
        export_tracks([a, b], "coco", out, every=5)  # b's pictures were cut, then it failed
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["annotations", "images", "promptrack-export.json"]


def test_help_lists_formats_and_options():
    export_help = run_cli(["export", "--help"], dict(os.environ))
    assert export_help.returncode == 0
    for word in (*FORMATS, "--every", "--min-area", "--source", "-o", "--mask-format", "--val", "--seed"):
        assert word in export_help.stdout
    assert "--export" in run_cli(["--help"], dict(os.environ)).stdout


def test_cvat_video_with_every_ends_tracks_on_their_true_last_frame(hand, tmp_path):
    a, _ = hand
    export_tracks(a, "cvat-video", tmp_path / "cvat", every=4)  # exported frames 0, 4, 8
    tracks = check_cvat_video(ET.parse(tmp_path / "cvat" / "annotations.xml").getroot())
    # the 1-px pallet is on frames 0-5: shown on 0 and 4, gone on 6 (not on 8, the next exported frame)
    assert [(f, o) for f, o, _ in tracks[2]] == [(0, False), (4, False), (6, True)]
    # the person with a gap on 3-4: shown on 0, gone on 3, back on 8 (its next exported frame), gone on 9
    assert [(f, o) for f, o, _ in tracks[4]] == [(0, False), (3, True), (8, False), (9, True)]
