"""The detector registry: one table read by --list-detectors, build_detector, the CLI's --detector routing
and the output header; a detector declared in a temporary module works end to end; YOLOX's early
prompt check and its unreadable-model message."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli
from promptrack.pipeline.config import DetectorConfig
from promptrack.pipeline.detectors import check_prompt, detector_model_name, list_detectors, registry
from promptrack.pipeline.detectors.registry import DetectorSpec, cli_values, register, spec, spec_for_path
from promptrack.pipeline.errors import ConfigError, PromptError

SPEC_MODULE = '''
import numpy as np
import supervision as sv

from promptrack.pipeline.detectors.registry import DetectorSpec


class RedFinder:
    """Finds the red rectangle of the synthetic clip: one box, for the last phrase."""

    name = "red-finder"

    def detect(self, frame, phrases):
        ys, xs = np.nonzero((frame[..., 0] > 180) & (frame[..., 1] < 90))
        if not len(xs):
            return sv.Detections.empty()
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        return sv.Detections(xyxy=box, confidence=np.array([0.9], np.float32),
                             class_id=np.array([len(phrases) - 1]))


SPEC = DetectorSpec("red-finder", lambda config, device: RedFinder(), needs="nothing (a test detector)",
                    about="finds red", default_model="acme/red-finder-v1")
'''


@pytest.fixture
def spec_plugin(tmp_path, monkeypatch):
    """A detector declared in a temporary module, installed as an entry point naming its DetectorSpec."""
    (tmp_path / "red_finder_plugin.py").write_text(SPEC_MODULE)
    info = tmp_path / "red_finder_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: red-finder-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[promptrack.detectors]\nred-finder = red_finder_plugin:SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_detector_declared_in_a_temporary_module_is_listed_and_tracks(spec_plugin, hub_env, synthetic_video,
                                                                       tmp_path):
    env = {**hub_env, "PYTHONPATH": os.pathsep.join([str(spec_plugin), hub_env.get("PYTHONPATH", "")])}
    listed = run_cli(["--list-detectors"], env)
    assert listed.returncode == 0, listed.stderr
    line = next(l for l in listed.stdout.splitlines() if l.startswith("red-finder "))
    assert "red-finder-plugin" in line
    for name in ("grounding-dino", "sam3", "omdet-turbo", "yolox", "dino-x"):
        assert any(l.startswith(name + " ") for l in listed.stdout.splitlines())

    out = tmp_path / "out"
    result = run_cli([str(synthetic_video), "--prompt", "car . red box", "--detector", "red-finder", "-o", str(out),
                      "--max-frames", "6", "--detect-every", "3", "--no-video", "--set", "tracker.image_size=256",
                      # born confirmed: the fake SAM 2's random-weight masks match no later box
                      "--set", "association.confirm_hits=1", "--quiet"], env)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "boxes.tracks.json").read_text())
    assert data["tracks"] and {t["label"] for t in data["tracks"]} == {"red box"}
    assert data["frames"][0]["objects"][0]["id"] == 1


def test_every_builtin_is_one_spec_with_unique_names():
    specs = registry.builtin_specs()
    names = [n for s in specs for n in (s.name, *s.aliases)]
    assert len(names) == len(set(names))
    assert [d.name for d in list_detectors()][: len(specs)] == [s.name for s in specs]
    assert specs[0].name == "grounding-dino"  # the default is listed first
    for s in specs:
        for alias in s.aliases:
            assert spec(alias.upper()) is s
    with pytest.raises(ConfigError, match="unknown detector 'nope'.*sam3.*omdet-turbo"):
        spec("nope")


def test_a_name_taken_by_another_detector_is_refused():
    with pytest.raises(ConfigError, match="gdino"):
        register(DetectorSpec("my-gdino", lambda c, d: None, needs="", about="", aliases=("gdino",)))
    assert "my-gdino" not in [s.name for s in registry.builtin_specs()]


@pytest.mark.parametrize("model_type,family", [("grounding-dino", "grounding-dino"),
                                               ("mm-grounding-dino", "mm-grounding-dino"), ("owlv2", "owlv2"),
                                               ("sam3", "sam3"), ("sam3_video", "sam3"),
                                               ("omdet-turbo", "omdet-turbo")])
def test_cli_routes_a_folder_by_its_model_type(tmp_path, model_type, family):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    assert spec_for_path(tmp_path).name == family
    assert cli_values(str(tmp_path)) == {"detector__name": family, "detector__model": str(tmp_path)}
    # the CLI sends a folder under the default name: building resolves the same family
    assert registry.resolve(DetectorConfig(model=str(tmp_path))).name == family


def test_cli_routes_names_and_onnx_files(tmp_path):
    assert cli_values("OWL") == {"detector__name": "OWL"}
    assert cli_values(str(tmp_path / "my_yolox.onnx"))["detector__name"] == "yolox"
    assert cli_values(None) == {}


@pytest.mark.parametrize("name,model,header", [("grounding-dino", None, "grounding-dino-tiny"),
                                               ("yolox", None, "yolox_nano"), ("sam3", None, "sam3"),
                                               ("omdet", None, "omdet-turbo-swin-tiny-hf"), ("dino-x", None, "dino-x"),
                                               ("yolox", "/models/yolox_s.onnx", "yolox_s.onnx"),
                                               ("owlv2", "/models/my-owl", "my-owl")])
def test_header_model_names_come_from_the_registry(name, model, header):
    assert detector_model_name(DetectorConfig(name=name, model=model)) == header


def test_yolox_rejects_non_coco_phrases_before_any_model_loads(tmp_path):
    with pytest.raises(PromptError, match="'zebra crossing' is not one"):
        check_prompt(DetectorConfig(name="yolox"), ["person", "zebra crossing"])
    check_prompt(DetectorConfig(name="yolox"), ["people", "cars"])  # synonyms and plurals are COCO classes
    check_prompt(DetectorConfig(name="grounding-dino"), ["zebra crossing"])  # open vocabulary: anything goes


def test_yolox_prompt_error_comes_before_loading_through_the_cli(synthetic_video, tmp_path):
    # No models anywhere (empty HF_HOME, offline) and an unreadable .onnx: only the prompt can be at fault.
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = run_cli([str(synthetic_video), "--prompt", "person . zebra crossing", "--detector", str(bad), "-o",
                      str(tmp_path / "out"), "--quiet"], env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "COCO" in result.stderr and "zebra crossing" in result.stderr


def test_yolox_path_that_is_not_onnx_is_one_line_naming_it(synthetic_video, tmp_path):
    bad = tmp_path / "weights.onnx"
    bad.write_bytes(b"\x00\x01 definitely not an onnx model")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = run_cli([str(synthetic_video), "--prompt", "person", "--detector", str(bad), "-o",
                      str(tmp_path / "out"), "--quiet"], env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert str(bad) in result.stderr and "not a readable ONNX model" in result.stderr
