import pytest

from promptrack.pipeline.errors import ModelNotFoundError
from promptrack.pipeline.models import resolve_file, resolve_folder, sam2_spec


def test_sam2_sizes_and_checkpoint_names():
    assert sam2_spec("small").config == "configs/sam2.1/sam2.1_hiera_s.yaml"
    assert sam2_spec("/x/sam2.1_hiera_base_plus.pt").config == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    assert sam2_spec("/x/sam2_hiera_large.pt").config == "configs/sam2/sam2_hiera_l.yaml"
    with pytest.raises(ModelNotFoundError, match="unknown SAM 2 model"):
        sam2_spec("huge")


def test_resolution_order_explicit_then_env_then_hub(tmp_path, monkeypatch, hub_env):
    explicit = tmp_path / "mine.pt"
    explicit.write_bytes(b"x")
    assert resolve_file("sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny", explicit) == explicit
    model_dir = tmp_path / "models"
    (model_dir / "sam2.1-hiera-tiny").mkdir(parents=True)
    (model_dir / "sam2.1-hiera-tiny" / "sam2.1_hiera_tiny.pt").write_bytes(b"y")
    monkeypatch.setenv("PROMPTRACK_MODEL_DIR", str(model_dir))
    assert resolve_file("sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny").parent.name == "sam2.1-hiera-tiny"
    monkeypatch.delenv("PROMPTRACK_MODEL_DIR")
    hub = resolve_file("sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny")
    assert "models--facebook--sam2.1-hiera-tiny" in str(hub) and hub.stat().st_size > 1_000_000
    assert (resolve_folder("IDEA-Research/grounding-dino-tiny") / "config.json").is_file()


def test_offline_missing_model_is_one_line_naming_file_repo_and_env(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError) as err:
        resolve_file("sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny")
    message = str(err.value)
    assert "\n" not in message
    for part in ("sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny", "PROMPTRACK_MODEL_DIR"):
        assert part in message
    with pytest.raises(ModelNotFoundError, match="IDEA-Research/grounding-dino-tiny"):
        resolve_folder("IDEA-Research/grounding-dino-tiny")
    with pytest.raises(ModelNotFoundError, match="no such file"):
        resolve_file("yolox_nano.onnx", None, tmp_path / "missing.onnx")
