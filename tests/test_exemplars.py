"""Prompts by example: the Exemplar model, the CLI, Python and live, and each detector that takes them.

The detectors' exemplar paths run with random weights in their real layouts (tests/fake_detectors.py)
and the real transformers calls; the DINO-X / T-Rex2 requests go to the fake DDS server of
test_detectors_cloud.py.
"""

from __future__ import annotations

import base64
import json
import threading

import cv2
import numpy as np
import pytest
import supervision as sv
import torch

from conftest import run_cli
from fake_detectors import write_owlv2, write_sam3
from live_helpers import ColourTracker, colour_detector, publisher, rtsp_server  # noqa: F401 (fixtures)
from test_detectors_cloud import TOKEN, api, detector  # noqa: F401 (fixture)

from promptrack.pipeline import Exemplar, LiveSession, track_video
from promptrack.pipeline.detectors.roi_align import roi_align
from promptrack.pipeline.errors import InputError, PromptError
from promptrack.pipeline.exemplars import VisualPrompt, prompt_record, resolve
from promptrack.pipeline.sources import open_source

GREEN_AT_10 = (90, 60, 125, 100)  # the green box of tests/conftest.py's moving boxes, frame 10 (160x120)
SMALL = ["--set", "tracker.image_size=256", "--quiet", "--no-video", "--set", "association.confirm_hits=1"]


class ColourByExample:
    """A deterministic "looks like this" detector: blobs of the example region's colour (text: red/green)."""

    name = "colour-by-example"

    def __init__(self) -> None:
        self.prompts: list[VisualPrompt] = []

    def detect(self, frame, phrases):
        return colour_detector(frame, phrases)

    def detect_prompt(self, frame, prompt: VisualPrompt) -> sv.Detections:
        self.prompts.append(prompt)
        boxes, ids = [], []
        for k, concept in enumerate(prompt.concepts()):
            if concept.text is not None:
                found = colour_detector(frame, [concept.text])
                boxes += list(found.xyxy)
                ids += [k] * len(found)
            for example in concept.positives:
                x1, y1, x2, y2 = (int(v) for v in example.box)
                colour = np.median(example.image[y1:y2, x1:x2].reshape(-1, 3), 0)
                mask = np.abs(frame.astype(np.int16) - colour.astype(np.int16)).sum(-1) < 60
                if mask.sum() > 50:
                    boxes.append(sv.mask_to_xyxy(mask[None])[0])
                    ids.append(k)
        if not boxes:
            return sv.Detections.empty()
        return sv.Detections(xyxy=np.array(boxes, np.float32), confidence=np.full(len(boxes), 0.9, np.float32),
                             class_id=np.array(ids), data={"class_name": np.array([prompt.labels[i] for i in ids])})


# -- the model -----------------------------------------------------------------------------------

def test_parse_and_records(tmp_path):
    ex = Exemplar.parse("Pallet=12:10,20,50.5,60")
    assert (ex.frame, ex.box, ex.label, ex.positive) == (12, (10.0, 20.0, 50.5, 60.0), "pallet", True)
    assert Exemplar.parse("-3:1,2,3,4").positive is False and Exemplar.parse("3:1,2,3,4").label is None
    for bad in ("12:1,2,3", "x:1,2,3,4", "12-1,2,3,4", "=12:1,2,3,4", "12:1,2,a,4"):
        with pytest.raises(PromptError, match=r"\[name=\]\[-\]FRAME"):
            Exemplar.parse(bad)
    crop = tmp_path / "logo.png"
    cv2.imwrite(str(crop), np.full((20, 30, 3), (0, 0, 255), np.uint8))  # BGR red
    image = Exemplar.parse_image(f"{crop}=Logo")
    assert image.label == "logo" and image.image.shape == (20, 30, 3) and tuple(image.image[0, 0]) == (255, 0, 0)
    record = prompt_record(["person"], [ex, Exemplar.parse("3:1,2,3,4"), image])
    assert record[0] == "person"
    assert record[1] == {"exemplar": {"frame": 12, "box": [10.0, 20.0, 50.5, 60.0], "label": "pallet",
                                      "positive": True}}
    assert record[2]["exemplar"]["label"] == "person"  # unnamed, with one phrase: that phrase
    import hashlib
    assert record[3] == {"exemplar": {"image": "logo.png", "sha256": hashlib.sha256(crop.read_bytes()).hexdigest(),
                                      "label": "logo", "positive": True}}
    assert prompt_record(["a", "b"], [Exemplar.parse("3:1,2,3,4")])[2]["exemplar"]["label"] == "exemplar"


def test_resolve_checks_boxes_and_groups_concepts():
    frame = np.zeros((100, 200, 3), np.uint8)
    read = lambda frames: {f: frame for f in frames}  # noqa: E731
    prompt = resolve([Exemplar(frame=4, box=(1, 2, 30, 40), label="pallet"),
                      Exemplar(frame=4, box=(50, 2, 90, 40), label="person", positive=False)], ["person"], read)
    assert prompt.labels == ("person", "pallet")
    person, pallet = prompt.concepts()
    assert person.text == "person" and not person.positives and len(person.negatives) == 1
    assert pallet.text is None and pallet.positives[0].box == (1.0, 2.0, 30.0, 40.0)
    with pytest.raises(InputError, match="outside frame 4 .200x100."):
        resolve([Exemplar(frame=4, box=(150, 2, 201, 40))], [], read)
    with pytest.raises(InputError, match="is empty"):
        resolve([Exemplar(frame=4, box=(50, 2, 50, 40))], [], read)
    with pytest.raises(PromptError, match="no positive example"):
        resolve([Exemplar(frame=4, box=(1, 2, 3, 4), label="x", positive=False)], ["person"], read)
    with pytest.raises(InputError, match="live stream"):
        resolve([Exemplar(frame=4, box=(1, 2, 3, 4))], [])


def test_roi_align_matches_the_bilinear_definition():
    """torchvision's roi_align (aligned=False, adaptive sampling), written out sample by sample."""
    torch.manual_seed(0)
    features = torch.randn(2, 3, 9, 11)
    boxes = [torch.tensor([[0.5, 1.0, 6.2, 7.9], [-2.0, -1.5, 3.0, 2.0]]), torch.tensor([[4.0, 3.0, 12.5, 10.0]])]

    def bilinear(f, y, x):
        h, w = f.shape[-2:]
        if y < -1 or y > h or x < -1 or x > w:
            return torch.zeros(f.shape[0])
        y, x = max(y, 0.0), max(x, 0.0)
        y0, x0 = int(y), int(x)
        y1, x1 = (y0, y0 + 1) if y0 < h - 1 else (h - 1, h - 1), (x0, x0 + 1) if x0 < w - 1 else (w - 1, w - 1)
        y = y if y0 < h - 1 else float(h - 1)
        x = x if x0 < w - 1 else float(w - 1)
        (ya, yb), (xa, xb) = y1, x1
        ly, lx = y - ya, x - xa
        return ((1 - ly) * (1 - lx) * f[:, ya, xa] + (1 - ly) * lx * f[:, ya, xb] + ly * (1 - lx) * f[:, yb, xa]
                + ly * lx * f[:, yb, xb])

    expected = []
    for b, rois in enumerate(boxes):
        for x1, y1, x2, y2 in rois.tolist():
            rh, rw = max(y2 - y1, 1.0), max(x2 - x1, 1.0)
            gh, gw = int(np.ceil(rh / 2)), int(np.ceil(rw / 2))
            out = torch.zeros(3, 2, 2)
            for ph in range(2):
                for pw in range(2):
                    acc = torch.zeros(3)
                    for iy in range(gh):
                        for ix in range(gw):
                            acc += bilinear(features[b], y1 + ph * rh / 2 + (iy + 0.5) * rh / 2 / gh,
                                            x1 + pw * rw / 2 + (ix + 0.5) * rw / 2 / gw)
                    out[:, ph, pw] = acc / (gh * gw)
            expected.append(out)
    assert torch.allclose(roi_align(features, boxes, 2), torch.stack(expected), atol=1e-5)


# -- Python -------------------------------------------------------------------------------------

def test_track_video_text_and_exemplars(fake_hub, synthetic_video, tmp_path):
    det = ColourByExample()
    result = track_video(synthetic_video, "red", tmp_path, detector=det, progress=False, device="cpu", max_frames=12,
                         overrides=["tracker.image_size=256", "association.confirm_hits=1"], output__video=False,
                         exemplars=[Exemplar(frame=10, box=GREEN_AT_10, label="pallet")])
    assert result.prompt == ["red", "pallet"]
    # The example's pixels are frame 10 of the input, read once, before the first keyframe.
    prompt = det.prompts[0]
    assert all(p is prompt for p in det.prompts), "one prompt object for the run (the detector's cache key)"
    frame10 = next(f for i, f in open_source(synthetic_video) if i == 10)
    assert np.array_equal(prompt.examples[0].image, frame10)
    labels = {t["label"] for t in result.tracks}
    assert labels == {"red", "pallet"}, result.tracks
    data = json.loads(result.outputs["json"].read_text())
    assert data["prompt"] == ["red", {"exemplar": {"frame": 10, "box": [90.0, 60.0, 125.0, 100.0],
                                                   "label": "pallet", "positive": True}}]
    # Found from the first keyframe on, before the example's own frame (the frame was read up front).
    assert min(t["first_frame"] for t in data["tracks"] if t["label"] == "pallet") < 10
    # Exports name the exemplar's class like a phrase's.
    from promptrack.pipeline.export import export_tracks
    from promptrack.pipeline.export.tracks_file import TracksFile

    assert TracksFile.load(result.outputs["json"]).categories[:2] == ["red", "pallet"]
    done = export_tracks(result.outputs["json"], "coco", tmp_path / "coco", source=synthetic_video)
    coco = json.loads(done.index.read_text())
    assert [c["name"] for c in coco["categories"]][:2] == ["red", "pallet"]


def test_a_detector_without_the_ability_is_refused_before_anything_runs(synthetic_video, tmp_path):
    with pytest.raises(PromptError, match="does not take exemplars"):
        track_video(synthetic_video, "red", tmp_path / "out", detector=colour_detector, progress=False,
                    exemplars=[Exemplar(frame=1, box=(1, 2, 3, 4))])
    with pytest.raises(PromptError, match="grounding-dino does not take exemplars: use --detector owlv2"):
        track_video(synthetic_video, None, tmp_path / "out", progress=False,
                    exemplars=[Exemplar(frame=1, box=(1, 2, 3, 4))])
    with pytest.raises(PromptError, match="positive exemplars only"):
        track_video(synthetic_video, "red", tmp_path / "out", progress=False, detector__name="owlv2",
                    exemplars=[Exemplar(frame=1, box=(1, 2, 3, 4), label="red", positive=False)])
    assert not (tmp_path / "out").exists()


# -- CLI ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def owlv2_folder(tmp_path_factory):
    return write_owlv2(tmp_path_factory.mktemp("owl") / "owlv2")


@pytest.mark.parametrize("case", ["outside", "empty", "past-end", "unreadable", "no-ability", "negative-owlv2"])
def test_cli_bad_exemplars_are_one_line_exit_2_nothing_written(case, hub_env, synthetic_video, owlv2_folder,
                                                               tmp_path):
    (tmp_path / "junk.png").write_text("not an image")
    args = {"outside": ["--exemplar", "10:100,60,161,100"], "empty": ["--exemplar", "10:90,60,90,100"],
            "past-end": ["--exemplar", "24:1,1,20,20"], "unreadable": ["--exemplar-image", str(tmp_path / "junk.png")],
            "no-ability": ["--exemplar", "10:90,60,125,100", "--detector", "grounding-dino"],
            "negative-owlv2": ["--exemplar", "red=-10:90,60,125,100", "--prompt", "red"]}[case]
    if "--detector" not in args:
        args += ["--detector", str(owlv2_folder)]
    out = tmp_path / "out"
    result = run_cli([str(synthetic_video), "-o", str(out), *args, *SMALL], hub_env)
    err = result.stderr.strip()
    assert result.returncode == 2, err
    assert "\n" not in err and "Traceback" not in err and err.startswith("track-video: error: ")
    expected = {"outside": "outside frame 10 (160x120)", "empty": "is empty", "past-end": "past the end",
                "unreadable": "not an image", "no-ability": "does not take exemplars",
                "negative-owlv2": "positive exemplars only"}[case]
    assert expected in err
    assert not out.exists(), "nothing written"


@pytest.mark.parametrize("text", [True, False], ids=["text-and-exemplars", "exemplars-only"])
def test_cli_owlv2_exemplars(text, hub_env, synthetic_video, owlv2_folder, tmp_path):
    crop = tmp_path / "green.png"
    cv2.imwrite(str(crop), np.full((30, 30, 3), (60, 200, 40), np.uint8))
    out = tmp_path / "out"
    result = run_cli([str(synthetic_video), *(["--prompt", "red"] if text else []), "--detector", str(owlv2_folder),
                      "--exemplar", "pallet=10:90,60,125,100", "--exemplar-image", f"{crop}=logo",
                      "--box-threshold", "0", "--set", "association.birth_score=0", "--max-frames", "3",
                      "--detect-every", "3", "-o", str(out), *SMALL], hub_env)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "boxes.tracks.json").read_text())
    phrases = ["red"] if text else []
    assert data["prompt"][:len(phrases) + 1] == [*phrases, {"exemplar": {
        "frame": 10, "box": [90.0, 60.0, 125.0, 100.0], "label": "pallet", "positive": True}}]
    image = data["prompt"][-1]["exemplar"]
    assert image["image"] == "green.png" and len(image["sha256"]) == 64 and image["label"] == "logo"
    labels = {t["label"] for t in data["tracks"]}
    assert labels and labels <= {*phrases, "pallet", "logo"}, data["tracks"]


# -- OWLv2 and SAM 3: the real transformers calls, random weights ---------------------------------

@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    image[20:60, 10:50] = (220, 40, 40)
    return image


def test_owlv2_example_query_is_the_class_embedding_of_the_box(owlv2_folder, frame):
    from promptrack.pipeline.detectors.owlv2 import OWLv2Detector

    det = OWLv2Detector(owlv2_folder, box_threshold=0.0)
    read = lambda frames: {f: frame for f in frames}  # noqa: E731
    with torch.inference_mode():
        feats, feature_map = det.image_features([frame])
        _, class_embeds = det.model.class_predictor(feats)
        pred = det.model.box_predictor(feats, feature_map)[0]
        queries = {}
        for box in ((2, 2, 40, 30), (60, 45, 118, 88)):
            prompt = resolve([Exemplar(frame=0, box=box, label="thing")], [], read)
            query = det.example_query(prompt.examples[0])
            row = int(torch.nonzero((class_embeds[0] == query).all(1))[0])  # one of the image's class embeddings
            # ... of a patch whose predicted box overlaps the example box about best (OWL's query selection)
            corners = torch.cat([pred[:, :2] - pred[:, 2:] / 2, pred[:, :2] + pred[:, 2:] / 2], 1).numpy()
            iou = sv.box_iou_batch(np.array([box], np.float32) / max(frame.shape[:2]), corners)[0]
            assert iou.max() > 0 and iou[row] >= 0.8 * iou.max() - 1e-6, (iou[row], iou.max())
            queries[box] = query
        assert not torch.equal(*queries.values()), "the example box decides the query"
    # Text only through detect_prompt is the model's own text path (model(**inputs)).
    a, b = det.detect(frame, ["red"]), det.detect_prompt(frame, resolve([], ["red"]))
    assert np.allclose(np.sort(a.confidence), np.sort(b.confidence), atol=1e-5)
    prompt = resolve([Exemplar(frame=0, box=(10, 20, 50, 60), label="blob")], ["red"], read)
    found = det.detect_prompt(frame, prompt)
    assert set(found.data["class_name"]) <= {"red", "blob"} and "blob" in set(found.data["class_name"])
    assert det.prompt_queries(prompt)[0] is det.prompt_queries(prompt)[0], "computed once per prompt"


@pytest.fixture(scope="module")
def sam3_folder(tmp_path_factory):
    return write_sam3(tmp_path_factory.mktemp("sam3") / "sam3")


def test_sam3_boxes_on_their_frame_are_sam3s_own_box_prompt(sam3_folder, frame):
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    from promptrack.pipeline.detectors.sam3 import TEXT_LEN, SAM3Detector, sam3_boxes

    det = SAM3Detector(sam3_folder, box_threshold=0.0, nms_iou=1.0)
    read = lambda frames: {f: frame for f in frames}  # noqa: E731
    exemplars = [Exemplar(frame=0, box=(10, 20, 50, 60), label="red"),
                 Exemplar(frame=0, box=(70, 5, 118, 88), label="red", positive=False)]
    prompt = resolve(exemplars, ["red"], read)
    boxes, labels = sam3_boxes(prompt.examples, frame.shape[:2])
    assert torch.allclose(boxes, torch.tensor([[[30 / 120, 40 / 90, 40 / 120, 40 / 90],
                                                [94 / 120, 46.5 / 90, 48 / 120, 83 / 90]]]))
    assert labels.tolist() == [[1, 0]]
    with torch.inference_mode():
        text = det.tokenizer(["red"], padding="max_length", max_length=TEXT_LEN, truncation=True, return_tensors="pt")
        pixels = det.pixels(frame)
        reference = det.model(pixel_values=pixels, input_ids=text["input_ids"], attention_mask=text["attention_mask"],
                              input_boxes=boxes, input_boxes_labels=labels)
        tokens, mask = det.prompt_tokens(prompt)
        ours = det.model(pixel_values=pixels, text_embeds=BaseModelOutputWithPooling(pooler_output=tokens),
                         attention_mask=mask)
        text_only = det.model(pixel_values=pixels, input_ids=text["input_ids"], attention_mask=text["attention_mask"])
    assert torch.allclose(ours.pred_logits, reference.pred_logits, atol=1e-5)
    assert torch.allclose(ours.pred_boxes, reference.pred_boxes, atol=1e-5)
    assert not torch.allclose(ours.pred_logits, text_only.pred_logits, atol=1e-3), "the boxes change the answer"
    flipped = resolve([Exemplar(frame=0, box=(10, 20, 50, 60), label="red"),
                       Exemplar(frame=0, box=(70, 5, 118, 88), label="red")], ["red"], read)
    assert not torch.allclose(det.prompt_tokens(flipped)[0], tokens), "the polarity reaches the model"
    found = det.detect_prompt(frame, prompt)
    assert found.mask.shape == (len(found), 90, 120) and set(found.data["class_name"]) == {"red"}
    # An example on another image: its tokens are encoded on that image, then prompt any frame.
    crop = np.ascontiguousarray(frame[20:60, 10:50])
    by_image = resolve([Exemplar.from_array(crop, label="blob")], ["red"])
    found = det.detect_prompt(frame, by_image)
    assert set(found.data["class_name"]) <= {"red", "blob"} and len(found)


# -- DINO-X / T-Rex2 through the DDS client --------------------------------------------------------

def _decoded(uri: str) -> np.ndarray:
    header, data = uri.split(",", 1)
    assert header == "data:image/jpeg;base64"
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)


def test_dino_x_visual_prompt_request(api):
    big = np.full((480, 854, 3), 90, np.uint8)
    crop = np.full((100, 60, 3), 200, np.uint8)
    prompt = resolve([Exemplar(frame=7, box=(100, 50, 300, 250), label="pallet"),
                      Exemplar(frame=7, box=(400, 100, 500, 200), label="pallet"),
                      Exemplar.from_array(crop, label="logo")], ["person"], lambda frames: {7: big})
    det = detector(api)
    api.script = [429]  # the visual task retries like the text one
    found = det.detect_prompt(big, prompt)
    paths = [r["path"] for r in api.requests]
    assert paths == ["/v2/task/dinox/detection"] * 4 and all(r["token"] == TOKEN for r in api.requests)
    text, retried, pallet, logo = (r["body"] for r in api.requests)
    assert text["prompt"] == {"type": "text", "text": "person"} and retried == text
    for body in (pallet, logo):
        assert body["model"] == "DINO-X-1.0" and body["targets"] == ["bbox", "mask"]
        assert set(body["prompt"]) == {"type", "visual_images"} and body["prompt"]["type"] == "visual_images"
    (entry,) = pallet["prompt"]["visual_images"]  # both boxes are on one image: one entry
    assert _decoded(entry["image"]).shape == (240, 427, 3)  # the example frame, downscaled like a keyframe
    assert entry["interactions"] == [{"type": "rect", "rect": [50.0, 25.0, 150.0, 125.0], "category_id": 1},
                                     {"type": "rect", "rect": [200.0, 50.0, 250.0, 100.0], "category_id": 1}]
    (logo_entry,) = logo["prompt"]["visual_images"]
    assert _decoded(logo_entry["image"]).shape == (100, 60, 3)
    assert logo_entry["interactions"] == [{"type": "rect", "rect": [0.0, 0.0, 60.0, 100.0], "category_id": 1}]
    assert set(found.data["class_name"]) == {"person", "pallet", "logo"} and found.mask is not None
    assert list(prompt.labels) == ["person", "pallet", "logo"]
    assert all(prompt.labels[k] == n for k, n in zip(found.class_id, found.data["class_name"]))
    # Encoded once: the next keyframe sends the same example images without re-encoding them.
    before = det.visual_prompts(prompt)
    det.detect_prompt(big, prompt)
    assert det.visual_prompts(prompt) is before and api.requests[-1]["body"]["prompt"] == logo["prompt"]
    assert TOKEN not in repr(det)


def test_t_rex_2_is_by_example_only(api):
    det = detector(api, "t-rex-2")
    frame = np.full((240, 320, 3), 90, np.uint8)
    prompt = resolve([Exemplar(frame=0, box=(10, 10, 60, 60), label="cell")], [], lambda frames: {0: frame})
    found = det.detect_prompt(frame, prompt)
    (request,) = api.requests
    assert request["path"] == "/v2/task/trex/detection" and request["body"]["model"] == "T-Rex-2.0"
    assert request["body"]["targets"] == ["bbox"] and set(found.data["class_name"]) == {"cell"}
    with pytest.raises(PromptError, match="by example only"):
        det.detect(frame, ["cell"])
    with pytest.raises(PromptError, match="positive exemplars only"):
        det.detect_prompt(frame, resolve([Exemplar(frame=0, box=(10, 10, 60, 60), label="cell"),
                                          Exemplar(frame=0, box=(70, 10, 99, 60), label="cell", positive=False)],
                                         [], lambda frames: {0: frame}))


# -- live -----------------------------------------------------------------------------------------

def test_live_set_prompt_with_an_exemplar_from_a_frame(publisher, tmp_path):
    _, url = publisher(fps=25)
    live = LiveSession(url, "red", output_dir=tmp_path, detector=ColourByExample(), tracker=ColourTracker(),
                       overrides=["device=cpu", "detect_every=5", "live.stats_every=0", "live.view_port=0"],
                       log=lambda line: None)
    guard = threading.Timer(60, live.stop)
    guard.daemon = True
    guard.start()
    labels: dict[int, set] = {}
    changed_at = None
    for result in live:
        for i, name in zip(result.detections.tracker_id, result.detections.data.get("class_name", [])):
            labels.setdefault(int(i), set()).add(str(name))
        if result.index == 10:
            green = colour_detector(result.frame, ["green"])
            assert len(green) == 1
            example = Exemplar.from_array(result.frame, tuple(float(v) for v in green.xyxy[0]), label="pallet")
            with pytest.raises(InputError, match="live stream cannot go back"):
                live.set_prompt("red", exemplars=[Exemplar(frame=3, box=(1, 2, 3, 4))])
            live.set_prompt("red", exemplars=[example])
            changed_at = result.index
        if changed_at is not None and result.index >= changed_at + 15:
            break
    guard.cancel()
    assert labels == {1: {"red"}, 2: {"pallet"}}, labels
    session = json.loads(next(tmp_path.glob("*.session.json")).read_text())
    record = session["prompt"][1]["exemplar"]
    assert session["prompt"][0] == "red" and record["label"] == "pallet" and record["image"] == "array"
    assert len(record["sha256"]) == 64


def test_live_refuses_a_detector_without_the_ability():
    with pytest.raises(PromptError, match="does not take exemplars"):
        LiveSession("rtsp://127.0.0.1:9/none", "red",
                    exemplars=[Exemplar.from_array(np.zeros((4, 4, 3), np.uint8))])


def test_batch_refuses_exemplars_in_one_line(tmp_path, capsys):
    from promptrack.pipeline.batch.cli import main

    assert main([str(tmp_path / "a.mp4"), "--prompt", "car", "--exemplar", "1:1,2,3,4", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("track-video batch: error: track-video batch takes text prompts only: run track-video on each "
                   "video with --exemplar") and not (tmp_path / "o").exists()
