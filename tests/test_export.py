"""Export of tracks.json as datasets, read back by each format's own readers.

One real run (bedroom.mp4, YOLOX-Nano, random-weight SAM 2 from the fake hub) is exported to every
format; pycocotools, supervision, a small YouTube-VIS reader, xml.etree and a CSV parse read the
files back, and what they read must be what the JSON says: instances, labels, frames, track ids,
boxes and masks (RLE exact, polygons IoU >= 0.9).
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import supervision as sv
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from conftest import run_cli
from promptrack.pipeline.errors import OutputError
from promptrack.pipeline.export import FORMATS, export_tracks
from promptrack.pipeline.export.coco import CocoExporter
from promptrack.pipeline.export.polygons import mask_to_polygon
from promptrack.pipeline.rle import decode_mask

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


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def fill(points, width, height):
    return sv.polygon_to_mask(np.round(points).astype(int), (width, height)).astype(bool)


def test_coco_round_trip(run, tmp_path):
    path, data = run
    result = export_tracks(path, "coco", tmp_path / "coco")
    assert result.index == tmp_path / "coco" / "annotations.json"
    expected = json_objects(data)
    width, height = data["source"]["width"], data["source"]["height"]

    coco = COCO(str(result.index))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert list(names.values())[:3] == data["prompt"]
    images = coco.loadImgs(coco.getImgIds())
    assert [img["frame_index"] for img in images] == list(expected)
    assert len(coco.getAnnIds()) == sum(len(v) for v in expected.values())
    for img in images:
        assert (img["width"], img["height"]) == (width, height)
        assert cv2.imread(str(tmp_path / "coco" / "images" / img["file_name"])).shape == (height, width, 3)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        want = expected[img["frame_index"]]
        assert [a["attributes"]["track_id"] for a in anns] == [o["id"] for o in want]
        assert [names[a["category_id"]] for a in anns] == [o["label"] for o in want]
        for ann, obj in zip(anns, want):
            x1, y1, x2, y2 = obj["box"]
            assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.01) and ann["iscrowd"] == 0
            mask = coco.annToMask(ann).astype(bool)
            assert mask.shape == (height, width) and (mask == decode_mask(obj["mask"])).all()
            assert ann["area"] == mask.sum()

    dataset = sv.DetectionDataset.from_coco(str(tmp_path / "coco" / "images"), str(result.index), force_masks=True)
    assert len(dataset) == len(expected)
    for image_path, _, detections in dataset:
        frame = next(img["frame_index"] for img in images if img["file_name"] == os.path.basename(image_path))
        want = expected[frame]
        assert list(detections.data["class_name"]) == [o["label"] for o in want]
        assert all((m == decode_mask(o["mask"])).all() for m, o in zip(detections.mask, want))


def test_yolo_seg_round_trip(run, tmp_path):
    path, data = run
    out = tmp_path / "yolo"
    export_tracks(path, "yolo-seg", out)
    expected = json_objects(data)
    width, height = data["source"]["width"], data["source"]["height"]
    dataset = sv.DetectionDataset.from_yolo(str(out / "images"), str(out / "labels"), str(out / "data.yaml"))
    assert dataset.classes[:3] == data["prompt"]
    assert len(dataset) == len(expected)
    for image_path, image, detections in dataset:
        frame = int(os.path.basename(image_path).rsplit("_", 1)[1].split(".")[0])
        want = expected[frame]
        assert image.shape == (height, width, 3)
        # YOLO keeps one line per object, in the JSON's order; it has no field for track ids.
        assert list(detections.data["class_name"]) == [o["label"] for o in want]
        assert detections.mask.shape == (len(want), height, width)
        for mask, obj in zip(detections.mask, want):
            assert iou(mask, decode_mask(obj["mask"])) >= 0.9


def read_ytvis(folder):
    """A YouTube-VIS reader in the manner of ``ytvos.py``: per video, per instance, per frame."""
    document = json.loads((folder / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in document["categories"]}
    (video,) = document["videos"]
    frames = {}
    for ann in document["annotations"]:
        assert ann["video_id"] == video["id"]
        assert len(ann["segmentations"]) == len(ann["bboxes"]) == len(ann["areas"]) == video["length"]
        for position, rle in enumerate(ann["segmentations"]):
            if rle is None:
                continue
            coded = dict(rle, counts=rle["counts"].encode("ascii"))
            mask = mask_utils.decode(coded).astype(bool)
            assert mask.shape == (video["height"], video["width"]) and ann["areas"][position] == mask.sum()
            frames.setdefault(video["frame_indices"][position], []).append(
                (ann["id"], names[ann["category_id"]], ann["bboxes"][position], mask))
    return video, frames


def test_ytvis_round_trip_from_the_run_export(run):
    path, data = run
    folder = path.parent / "bedroom.ytvis"  # written by --export ytvis on the run
    video, frames = read_ytvis(folder)
    expected = json_objects(data)
    assert video["frame_indices"] == list(expected) and len(video["file_names"]) == len(expected)
    for name in video["file_names"]:
        assert cv2.imread(str(folder / "JPEGImages" / name)).shape == (video["height"], video["width"], 3)
    for frame, want in expected.items():
        got = sorted(frames.get(frame, []), key=lambda item: item[0])
        want = sorted(want, key=lambda o: o["id"])
        assert [(i, label) for i, label, _, _ in got] == [(o["id"], o["label"]) for o in want]
        for (_, _, box, mask), obj in zip(got, want):
            x1, y1, x2, y2 = obj["box"]
            assert box == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.01)
            assert (mask == decode_mask(obj["mask"])).all()


def test_cvat_video_round_trip(run, tmp_path):
    path, data = run
    export_tracks(path, "cvat-video", tmp_path / "cvat")
    root = ET.parse(tmp_path / "cvat" / "annotations.xml").getroot()
    assert root.findtext("version") == "1.1"
    assert [label.findtext("name") for label in root.iter("label")][:3] == data["prompt"]
    width, height = data["source"]["width"], data["source"]["height"]
    expected = json_objects(data)
    frames = list(expected)
    tracks = root.findall("track")
    assert sorted(int(t.get("id")) for t in tracks) == sorted({o["id"] for objs in expected.values() for o in objs})
    for track in tracks:
        track_id = int(track.get("id"))
        present = {f: next(o for o in objs if o["id"] == track_id) for f, objs in expected.items()
                   if any(o["id"] == track_id for o in objs)}
        shapes = track.findall("polygon")
        visible = {int(s.get("frame")): s for s in shapes if s.get("outside") == "0"}
        assert sorted(visible) == sorted(present)
        assert {o["label"] for o in present.values()} == {track.get("label")}
        # outside="1" on each exported frame where the object has just gone (after its last frame, in gaps)
        gone = {f for prev, f in zip(frames, frames[1:]) if prev in present and f not in present}
        assert {int(s.get("frame")) for s in shapes if s.get("outside") == "1"} == gone
        for frame, shape in visible.items():
            points = np.array([[float(v) for v in p.split(",")] for p in shape.get("points").split(";")])
            assert iou(fill(points, width, height), decode_mask(present[frame]["mask"])) >= 0.9
    assert any(s.get("outside") == "1" for s in root.iter("polygon")), "the run has tracks that end early"


def test_mot_round_trip(run, tmp_path):
    path, data = run
    result = export_tracks(path, "mot", tmp_path / "mot")
    rows = [line.split(",") for line in result.index.read_text().splitlines()]
    got = [(int(r[0]) - 1, int(r[1]), *(float(v) for v in r[2:6])) for r in rows]
    assert all(r[7:] == ["-1", "-1", "-1"] for r in rows)
    want = [(f, o["id"], o["box"][0], o["box"][1], o["box"][2] - o["box"][0], o["box"][3] - o["box"][1])
            for f, objs in json_objects(data).items() for o in objs]
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert np.allclose([g[2:] for g in got], [w[2:] for w in want], atol=0.01)


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
    coco = COCO(str(out / "annotations.json"))
    assert [img["frame_index"] for img in coco.loadImgs(coco.getImgIds())] == list(expected)
    assert sorted(os.listdir(out / "images")) == sorted(f"bedroom_{f:06d}.jpg" for f in expected)
    got = [(coco.imgs[a["image_id"]]["frame_index"], a["attributes"]["track_id"]) for a in coco.loadAnns(coco.getAnnIds())]
    assert got == [(f, o["id"]) for f, objs in expected.items() for o in objs]
    assert 0 < len(got) < sum(len(f["objects"]) for f in data["frames"][::3])


def _other_schema(tmp_path, path, data):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"schema": "something/2", "frames": []}))
    return [str(bad), "--format", "coco"]


def _not_json(tmp_path, path, data):
    bad = tmp_path / "clip.tracks.json"
    bad.write_text("frame,id,x,y\n1,2,3,4\n")
    return [str(bad), "--format", "mot"]


def _missing_source(tmp_path, path, data):
    moved = tmp_path / "moved.tracks.json"
    moved.write_text(json.dumps({**data, "source": {**data["source"], "uri": str(tmp_path / "gone" / "clip.mp4")}}))
    return [str(moved), "--format", "yolo-seg"]


def _wrong_source(tmp_path, path, data, synthetic_video=None):
    return [str(path), "--format", "ytvis", "--source", str(synthetic_video)]


def _unwritable(tmp_path, path, data):
    (tmp_path / "file").write_text("a file, not a folder")
    return [str(path), "--format", "cvat-video", "-o", str(tmp_path / "file" / "dataset")]


@pytest.mark.parametrize("case", [_other_schema, _not_json, _missing_source, _wrong_source, _unwritable],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_input_is_one_line_exit_2(case, run, synthetic_video, tmp_path):
    path, data = run
    args = case(tmp_path, path, data, synthetic_video) if case is _wrong_source else case(tmp_path, path, data)
    out = tmp_path / "dataset"
    if "-o" not in args:
        args += ["-o", str(out)]
    result = run_cli(["export", *args, "--quiet"], dict(os.environ))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("track-video export: error:"), result.stderr
    assert not out.exists() or not any(out.iterdir()), "a failed export leaves nothing behind"


def test_failed_export_leaves_the_previous_dataset_whole(run, tmp_path, monkeypatch):
    path, _ = run
    out = tmp_path / "coco"
    export_tracks(path, "coco", out, every=5)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail(self, tracks, frames, images, stage):  # the disk fills up while the index is written
        stage.path(self.index).write_text('{"images": [')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(CocoExporter, "write", fail)
    with pytest.raises(OutputError, match="No space left on device"):
        export_tracks(path, "coco", out)  # every frame this time: new images were extracted, then it failed
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.iterdir()) == ["annotations.json", "images"]


def test_one_polygon_per_mask_keeps_pieces_and_holes():
    mask = np.zeros((60, 80), bool)
    mask[5:35, 5:35] = True
    mask[15:25, 15:25] = False  # a hole
    mask[40:55, 50:75] = True  # a second piece
    mask[10:12, 60:62] = True  # a speck
    polygon = mask_to_polygon(mask)
    assert polygon.ndim == 2 and polygon.shape[1] == 2
    back = fill(polygon, 80, 60)
    assert not back[18:22, 18:22].any(), "the hole stays a hole"
    assert back[45, 60] and back[10, 60]
    assert iou(back, mask) >= 0.9
    assert mask_to_polygon(np.zeros((10, 10), bool)) is None


def test_help_lists_formats_and_run_option():
    export_help = run_cli(["export", "--help"], dict(os.environ))
    assert export_help.returncode == 0
    for word in (*FORMATS, "--every", "--min-area", "--source", "-o"):
        assert word in export_help.stdout
    assert "--export" in run_cli(["--help"], dict(os.environ)).stdout
