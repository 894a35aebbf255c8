"""OWLv2, MM-Grounding-DINO / LLMDet and Grounding DINO: random tiny weights saved with
save_pretrained in a temp folder, loaded through build_detector (the real loading code)."""

from __future__ import annotations

import numpy as np
import pytest

from fake_detectors import write_grounding_dino, write_mm_grounding_dino, write_owlv2
from promptrack.pipeline.config import DetectorConfig
from promptrack.pipeline.detectors import build_detector, detect_batch
from promptrack.pipeline.detectors.grounding_dino import GroundingDINODetector, grounded_detections, phrase_of_token
from promptrack.pipeline.detectors.mm_grounding_dino import LLMDetDetector, MMGroundingDINODetector
from promptrack.pipeline.detectors.owlv2 import OWLv2Detector
from promptrack.pipeline.errors import ModelNotFoundError, PromptError

PHRASES = ["person", "red car"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("detectors")
    return {"owlv2": write_owlv2(root / "owlv2"), "mm": write_mm_grounding_dino(root / "mm"),
            "gdino": write_grounding_dino(root / "gdino")}


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (72, 128, 3), dtype=np.uint8) for _ in range(3)]


def everything(name: str, model) -> DetectorConfig:
    """A config that keeps every box (random weights score anywhere)."""
    return DetectorConfig(name=name, model=str(model), box_threshold=0.0, text_threshold=0.0, nms_iou=0.5)


def check_protocol(found, frame, phrases=PHRASES):
    h, w = frame.shape[:2]
    assert len(found) > 0
    assert found.xyxy.dtype == np.float32 and found.xyxy.shape == (len(found), 4)
    assert (found.xyxy[:, [0, 2]] >= 0).all() and (found.xyxy[:, [0, 2]] <= w).all()
    assert (found.xyxy[:, [1, 3]] >= 0).all() and (found.xyxy[:, [1, 3]] <= h).all()
    assert set(found.class_id.tolist()) <= {0, 1}
    assert [phrases[i] for i in found.class_id] == found.data["class_name"].tolist()
    assert (np.diff(found.confidence) <= 0).all()  # best first


@pytest.mark.parametrize("name,folder,cls", [
    ("owlv2", "owlv2", OWLv2Detector),
    ("mm-grounding-dino", "mm", MMGroundingDINODetector),
    ("llmdet", "mm", LLMDetDetector),
    ("grounding-dino", "gdino", GroundingDINODetector),
])
def test_detector_loads_from_a_folder_and_batches(folders, frames, name, folder, cls):
    det = build_detector(everything(name, folders[folder]))
    assert type(det) is cls and det.name == name
    single = [det.detect(f, PHRASES) for f in frames]
    for found, frame in zip(single, frames):
        check_protocol(found, frame)
    batched = detect_batch(det, frames, PHRASES)  # 3 frames: crosses the batch_size chunking of OWLv2
    assert len(batched) == len(frames)
    for a, b in zip(single, batched):
        assert a.data["class_name"].tolist() == b.data["class_name"].tolist()
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)
    with pytest.raises(PromptError, match="dino-x"):
        det.detect(frames[0], ["<prompt_free>"])


def test_threshold_filters_everything(folders, frames):
    det = build_detector(DetectorConfig(name="owlv2", model=str(folders["owlv2"]), box_threshold=1.01))
    assert len(det.detect(frames[0], PHRASES)) == 0


def test_a_folder_is_routed_by_its_model_type(folders):
    # The CLI sends any folder as --detector grounding-dino; the folder's config says what it is.
    assert type(build_detector(DetectorConfig(model=str(folders["owlv2"])))) is OWLv2Detector
    assert type(build_detector(DetectorConfig(model=str(folders["mm"])))) is MMGroundingDINODetector
    with pytest.raises(ModelNotFoundError, match="use --detector mm-grounding-dino"):
        build_detector(DetectorConfig(name="owlv2", model=str(folders["mm"])))


@pytest.mark.parametrize("name,repo", [("owlv2", "google/owlv2-base-patch16-ensemble"),
                                       ("mm-grounding-dino", "openmmlab-community/mm_grounding_dino_tiny"),
                                       ("llmdet", "iSEE-Laboratory/llmdet_tiny")])
def test_missing_weights_offline_is_one_line(name, repo):
    with pytest.raises(ModelNotFoundError) as info:
        build_detector(DetectorConfig(name=name))
    assert repo in str(info.value) and "\n" not in str(info.value)


def test_multi_token_phrase_maps_to_one_label():
    # [CLS] person . red car . [SEP]: "red" and "car" are two tokens of phrase 1.
    owner = phrase_of_token([101, 2711, 1012, 2417, 2482, 1012, 102], {1012}, {101, 102})
    logits = np.full((3, 7), -9.0, np.float32)
    logits[0, 4] = 3.0  # query 0: "car" token -> "red car"
    logits[1, 1] = 2.0  # query 1: "person"
    logits[2, 3] = 0.5  # query 2: "red" token only, weakly -> "red car"
    boxes = np.array([[0.5, 0.5, 0.2, 0.2], [0.25, 0.5, 0.1, 0.4], [0.9, 0.9, 0.4, 0.4]], np.float32)
    found = grounded_detections(logits, boxes, owner, PHRASES, (100, 200), 0.3, 0.25, 0.5)
    assert found.data["class_name"].tolist() == ["red car", "person", "red car"]
    np.testing.assert_allclose(found.xyxy[0], [80, 40, 120, 60], atol=1e-4)
    np.testing.assert_allclose(found.xyxy[2], [140, 70, 200, 100], atol=1e-4)  # clipped to the frame


def test_owlv2_boxes_are_relative_to_the_padded_square(folders):
    det = build_detector(DetectorConfig(name="owlv2", model=str(folders["owlv2"]), box_threshold=0.5))
    logits = np.array([[4.0, -4.0], [-4.0, 4.0], [-4.0, -4.0]], np.float32)
    boxes = np.array([[0.25, 0.25, 0.5, 0.5], [0.5, 0.9, 0.2, 0.1], [0.5, 0.5, 1, 1]], np.float32)
    found = det._detections(logits, boxes, PHRASES, (100, 200))  # a 200x200 square, bottom 100 rows padding
    assert found.data["class_name"].tolist() == ["person"]  # the "red car" box lies in the padding
    np.testing.assert_allclose(found.xyxy, [[0, 0, 100, 100]], atol=1e-4)
