"""SAM 3 and OmDet-Turbo on random-weight checkpoints in the hub layout (tests/fake_detectors.py),
loaded through build_detector; phrase batching and splitting; SAM 3's gated-weights message; SAM 3's
masks prompting SAM 2 through track-video."""

from __future__ import annotations

import json

import httpx2
import numpy as np
import pytest

from conftest import run_cli
from fake_detectors import WORDS, write_grounding_dino, write_omdet_turbo, write_sam3
from fake_hub import install_folder
from promptrack.pipeline.cli import run
from promptrack.pipeline.config import DetectorConfig
from promptrack.pipeline.detectors import build_detector, detect_batch
from promptrack.pipeline.detectors.omdet_turbo import OmDetTurboDetector
from promptrack.pipeline.detectors.sam3 import SAM3Detector
from promptrack.pipeline.errors import ModelNotFoundError, PromptError
from promptrack.pipeline.rle import decode_mask

PHRASES = ["person", "red car", "dog"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("new-detectors")
    return {"sam3": write_sam3(root / "sam3"), "omdet": write_omdet_turbo(root / "omdet"),
            "gdino": write_grounding_dino(root / "gdino")}


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 255, (72, 128, 3), dtype=np.uint8) for _ in range(3)]


def keep_all(name, folder, nms_iou=0.5) -> DetectorConfig:
    return DetectorConfig(name=name, model=str(folder), box_threshold=0.0, text_threshold=0.0, nms_iou=nms_iou)


def check_protocol(found, frame, phrases=PHRASES):
    h, w = frame.shape[:2]
    assert len(found) > 0
    assert found.xyxy.dtype == np.float32 and found.xyxy.shape == (len(found), 4)
    assert (found.xyxy[:, [0, 2]] >= 0).all() and (found.xyxy[:, [0, 2]] <= w).all()
    assert (found.xyxy[:, [1, 3]] >= 0).all() and (found.xyxy[:, [1, 3]] <= h).all()
    assert [phrases[i] for i in found.class_id] == found.data["class_name"].tolist()
    assert (np.diff(found.confidence) <= 0).all()  # best first


def of_class(found, k):
    return found[found.class_id == k]


def test_sam3_boxes_scores_and_frame_size_masks(folders, frames):
    det = build_detector(keep_all("SAM3", folders["sam3"]))
    assert type(det) is SAM3Detector and det.name == "sam3"
    found = det.detect(frames[0], PHRASES)
    check_protocol(found, frames[0])
    assert found.mask.dtype == bool and found.mask.shape == (len(found), 72, 128)
    assert set(found.class_id.tolist()) == {0, 1, 2}  # threshold 0: every concept finds something
    assert (found.confidence <= 1).all() and (found.confidence >= 0).all()
    with pytest.raises(PromptError, match="dino-x"):
        det.detect(frames[0], ["<prompt_free>"])


def test_sam3_concepts_batched_equal_one_at_a_time(folders, frames):
    """Phrases share the frame's features in one batch; each concept's result is what it gets alone."""
    det = build_detector(keep_all("sam3", folders["sam3"]))
    det.phrase_batch = 2  # 3 phrases: crosses a batch boundary
    together = det.detect(frames[1], PHRASES)
    for k, phrase in enumerate(PHRASES):
        alone = det.detect(frames[1], [phrase])
        mine = of_class(together, k)
        assert len(alone) == len(mine) > 0
        np.testing.assert_allclose(mine.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_allclose(mine.confidence, alone.confidence, atol=1e-5)
        assert (mine.mask != alone.mask).mean() < 1e-3
    batched = detect_batch(det, frames[:2], PHRASES)
    np.testing.assert_allclose(batched[1].xyxy, together.xyxy, atol=1e-3)


def test_sam3_threshold_filters_everything(folders, frames):
    det = build_detector(DetectorConfig(name="sam3", model=str(folders["sam3"]), box_threshold=1.01))
    found = det.detect(frames[0], PHRASES)
    assert len(found) == 0 and found.mask.shape == (0, 72, 128)


def test_omdet_turbo_loads_and_batches(folders, frames):
    det = build_detector(keep_all("omdet", folders["omdet"]))
    assert type(det) is OmDetTurboDetector and det.name == "omdet-turbo"
    det.batch_size = 2  # 3 frames: crosses a chunk boundary
    single = [det.detect(f, PHRASES) for f in frames]
    for found, frame in zip(single, frames):
        check_protocol(found, frame)
        assert found.mask is None  # boxes only
    batched = detect_batch(det, frames, PHRASES)
    for a, b in zip(single, batched):
        assert a.data["class_name"].tolist() == b.data["class_name"].tolist()
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)
    with pytest.raises(PromptError, match="dino-x"):
        det.detect(frames[0], ["<prompt_free>"])


def many_phrases(count):
    """`count` distinct two-word phrases over the fake tokenizers' whole-word vocabulary."""
    return [f"{a} {b}" for a in WORDS for b in WORDS if a != b][:count]


@pytest.mark.parametrize("name,folder", [("grounding-dino", "gdino"), ("omdet-turbo", "omdet")])
def test_long_prompts_split_under_the_text_limit_and_merge(folders, frames, name, folder):
    det = build_detector(keep_all(name, folders[folder], nms_iou=1.0))
    phrases = many_phrases(300 if name == "grounding-dino" else 40)
    groups = det.groups(phrases)
    assert len(groups) > 1 and [i for g in groups for i in g] == list(range(len(phrases)))
    if name == "grounding-dino":  # every group's prompt fits the text encoder
        from promptrack.pipeline.prompts import grounding_text

        for g in groups:
            ids = det.processor.tokenizer(grounding_text([phrases[i] for i in g]))["input_ids"]
            assert len(ids) <= det.max_text_len
    else:
        for g in groups:
            assert len(det.tokenizer(det.task([phrases[i] for i in g]))["input_ids"]) <= det.max_text_len
    merged = det.detect(frames[0], phrases)
    check_protocol(merged, frames[0], phrases)
    assert merged.class_id.max() >= groups[1].start  # class ids index the full list, past the first group
    for g in groups:  # each group's boxes are the ones that group finds on its own, ids offset
        alone = det.detect(frames[0], [phrases[i] for i in g])
        mine = merged[(merged.class_id >= g.start) & (merged.class_id < g.stop)]
        assert (mine.class_id - g.start).tolist() == alone.class_id.tolist()
        np.testing.assert_allclose(mine.xyxy, alone.xyxy, atol=1e-3)


def gated(status):
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    url = "https://huggingface.co/facebook/sam3/resolve/main/config.json"
    response = httpx2.Response(status, request=httpx2.Request("GET", url))
    if status == 403:
        return GatedRepoError("403 Client Error. Cannot access gated repo for url " + url, response=response)
    return HfHubHTTPError("401 Client Error: Unauthorized for url " + url, response=response)


@pytest.mark.parametrize("status", [401, 403])
def test_sam3_gated_weights_end_with_one_line(status, synthetic_video, tmp_path, monkeypatch, capsys, fake_hub):
    # SAM 2 is cached (fake_hub): the gated detector is the one missing file, so its message is one line.
    import huggingface_hub
    from huggingface_hub import constants

    def refuse(*args, **kwargs):
        raise gated(status)

    # Online, with the hub answering 401/403 to every request for facebook/sam3 (nothing cached).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    code = run([str(synthetic_video), "--prompt", "dog", "--detector", "sam3", "-o", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert "https://huggingface.co/facebook/sam3" in err and "hf auth login" in err and "licence" in err
    with pytest.raises(ModelNotFoundError, match="gated"):
        build_detector(DetectorConfig(name="sam3"))


def test_sam3_offline_without_weights_is_not_called_gated():
    with pytest.raises(ModelNotFoundError) as info:
        build_detector(DetectorConfig(name="sam3"))  # the fake hub has no facebook/sam3 here
    assert "facebook/sam3" in str(info.value) and "gated" not in str(info.value)


@pytest.fixture
def sam3_hub(hub_env, fake_hub):
    """The fake hub with a random-weight facebook/sam3 as well."""
    install_folder(fake_hub, "facebook/sam3", write_sam3)
    yield hub_env
    import shutil

    shutil.rmtree(fake_hub / "hub" / "models--facebook--sam3", ignore_errors=True)


def test_sam3_masks_prompt_sam2_through_track_video(sam3_hub, synthetic_video, tmp_path):
    result = run_cli([str(synthetic_video), "--prompt", "red car", "--detector", "sam3", "-o", str(tmp_path),
                      "--box-threshold", "0.05", "--set", "association.birth_score=0.05", "--set",
                      "tracker.image_size=256", "--max-frames", "8", "--detect-every", "4", "--no-video", "--quiet",
                      # born confirmed: the fake SAM 2's random-weight masks match no later detection
                      "--set", "association.confirm_hits=1"],
                     sam3_hub)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "boxes.tracks.json").read_text())
    assert data["models"]["detector"] == "sam3" and len(data["tracks"]) > 0
    assert len(data["frames"]) == 8 and data["frames"][0]["objects"]

    # The tracks born on frame 0 start from SAM 3's masks (mask prompts), not from their boxes.
    from promptrack.pipeline.sources import open_source

    frame = next(iter(open_source(synthetic_video, max_frames=1)))[1]
    det = SAM3Detector(write_sam3(tmp_path / "same-sam3"), box_threshold=0.05, nms_iou=0.5)
    found = det.detect(frame, ["red car"])
    for obj in data["frames"][0]["objects"]:
        mask = decode_mask(obj["mask"])
        ious = [(mask & m).sum() / max((mask | m).sum(), 1) for m in found.mask]
        assert max(ious) > 0.5
