"""Model files as a new user meets them: nothing cached (one message naming every missing file, the
$PROMPTRACK_MODEL_DIR layout and each source), damaged weights in every local detector's folder (one
line naming the file and why, exit 2, no code run), and OmDet-Turbo's hub layout with a timm Swin
backbone loading without timm (tests/fake_hub.py writes it)."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
import torch

from conftest import run_cli
from fake_detectors import write_grounding_dino, write_mm_grounding_dino, write_omdet_turbo, write_owlv2, write_sam3
from fake_hub import OMDET_REPO, install_folder, timm_swin_tiny_shapes, write_omdet_turbo_timm, write_sam2
from promptrack.pipeline.config import DetectorConfig
from promptrack.pipeline.detectors import build_detector
from promptrack.pipeline.detectors import timm_swin
from promptrack.pipeline.errors import PromptrackError

WRITERS = {"grounding-dino": write_grounding_dino, "mm-grounding-dino": write_mm_grounding_dino,
           "llmdet": write_mm_grounding_dino, "owlv2": write_owlv2, "omdet-turbo": write_omdet_turbo,
           "sam3": write_sam3}


class _Payload:
    """A pickle that would create `marker` if unpickled without weights-only loading."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _offline_env(tmp_path) -> dict:
    """Nothing cached, no network, no $PROMPTRACK_MODEL_DIR: a first run on a machine offline."""
    env = {**os.environ, "HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("PROMPTRACK_MODEL_DIR", None)
    return env


# -- nothing cached: one message ------------------------------------------------------------------

def test_offline_run_with_nothing_cached_names_every_missing_file_at_once(synthetic_video, tmp_path):
    result = run_cli([str(synthetic_video), "-p", "person", "-o", str(tmp_path / "o")], _offline_env(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = result.stderr
    assert message.count("track-video: error:") == 1
    # The detector's folder and SAM 2's checkpoint, together, each with its hub repo and its place.
    assert "2 model files not found (offline and not in the Hugging Face cache)" in message
    assert "IDEA-Research/grounding-dino-tiny" in message and "facebook/sam2.1-hiera-tiny" in message
    lines = message.splitlines()
    assert lines[1].strip() == "$PROMPTRACK_MODEL_DIR/"
    assert lines[2].split()[0] == "grounding-dino-tiny/"
    download = "hf download IDEA-Research/grounding-dino-tiny --local-dir $PROMPTRACK_MODEL_DIR/grounding-dino-tiny"
    assert download in lines[2]
    assert lines[3].split()[0] == "sam2.1_hiera_tiny.pt"
    assert "https://huggingface.co/facebook/sam2.1-hiera-tiny" in lines[3]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_missing_yolox_file_says_where_it_comes_from_and_the_layout_is_the_one_looked_in(
        synthetic_video, fake_hub, tmp_path):
    # SAM 2 is cached here; YOLOX is on no hub: the message names its release and the file name to use.
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    env = {**os.environ, "HF_HOME": str(fake_hub), "HF_HUB_OFFLINE": "1", "PROMPTRACK_MODEL_DIR": str(model_dir)}
    result = run_cli([str(synthetic_video), "-p", "person", "--detector", "yolox", "-o", str(tmp_path / "o")], env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0  # one missing file: one line
    assert "model file yolox_nano.onnx not found (not in $PROMPTRACK_MODEL_DIR)" in result.stderr
    release = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx"
    assert f"put it in $PROMPTRACK_MODEL_DIR ({model_dir}) as yolox_nano.onnx (from {release})" in result.stderr
    assert "run once with the network" not in result.stderr  # the hub would not bring it

    # Put there, as the message says, it is found (an unreadable copy: the next error is about its contents).
    (model_dir / "yolox_nano.onnx").write_text("not an onnx model\n")
    result = run_cli([str(synthetic_video), "-p", "person", "--detector", "yolox", "-o", str(tmp_path / "o")], env)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert str(model_dir / "yolox_nano.onnx") in result.stderr and "not a readable ONNX model" in result.stderr


# -- damaged weights: one line each, nothing run ---------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector-folders")
    return {name: write(root / name) for name, write in WRITERS.items() if name != "llmdet"}


def _damage(folder, kind: str, marker) -> str:
    """Replace the folder's weights with a damaged file; returns the file's name."""
    weights = folder / "model.safetensors"
    if kind == "truncated safetensors":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
        return weights.name
    if kind == "text safetensors":  # what a clone without Git LFS holds
        weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n")
        return weights.name
    state = {k: v.clone() for k, v in _load(weights).items()}
    weights.unlink()
    bin_file = folder / "pytorch_model.bin"
    if kind == "refused pickle":
        state["payload"] = _Payload(marker)
        torch.save(state, bin_file)
    elif kind == "text bin":
        bin_file.write_text("<html>404 Not Found</html>\n")
    elif kind == "truncated bin":
        torch.save(state, bin_file)
        data = bin_file.read_bytes()
        bin_file.write_bytes(data[: len(data) // 3])
    return bin_file.name


def _load(path):
    from safetensors.torch import load_file

    return load_file(str(path))


REASONS = {"truncated safetensors": "truncated", "text safetensors": "not a safetensors file",
           "refused pickle": "refused: loading it could run code", "text bin": "not a PyTorch checkpoint",
           "truncated bin": "truncated"}


@pytest.mark.parametrize("kind", list(REASONS))
@pytest.mark.parametrize("name", list(WRITERS))
def test_damaged_weights_in_a_detector_folder_are_one_line_naming_the_file(name, kind, folders, tmp_path):
    folder = tmp_path / name
    shutil.copytree(folders["mm-grounding-dino" if name == "llmdet" else name], folder)
    marker = tmp_path / "pwned"
    damaged = _damage(folder, kind, marker)
    with pytest.raises(PromptrackError) as err:
        build_detector(DetectorConfig(name=name, model=str(folder)))
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    assert str(folder / damaged) in message and f"{name} weights" in message
    assert REASONS[kind] in message, message
    assert not marker.exists()  # weights-only: the payload never ran


def test_damaged_detector_weights_through_the_cli_exit_2_in_one_line(folders, synthetic_video, fake_hub, tmp_path):
    folder = tmp_path / "owlv2"
    shutil.copytree(folders["owlv2"], folder)
    marker = tmp_path / "pwned"
    _damage(folder, "refused pickle", marker)
    env = {**os.environ, "HF_HOME": str(fake_hub), "HF_HUB_OFFLINE": "1"}
    result = run_cli([str(synthetic_video), "-p", "person", "--detector", str(folder), "-o", str(tmp_path / "o")], env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert str(folder / "pytorch_model.bin") in result.stderr and "refused" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["text", "truncated"])
def test_damaged_onnx_is_one_line_naming_it(kind, assets, tmp_path):
    bad = tmp_path / "yolox_nano.onnx"
    if kind == "text":
        bad.write_text("not an onnx model\n")
    else:
        data = (assets / "models" / "yolox_nano.onnx").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(PromptrackError) as err:
        build_detector(DetectorConfig(name="yolox", model=str(bad)))
    assert "\n" not in str(err.value) and str(bad) in str(err.value)
    assert "not a readable ONNX model" in str(err.value) and "YOLOX release" not in str(err.value)
    assert "releases/download/0.1.1rc0/yolox_nano.onnx" in str(err.value)


# -- OmDet-Turbo's hub layout: a timm Swin backbone, loaded without timm --------------------------

@pytest.fixture(scope="module")
def omdet_timm(tmp_path_factory):
    return write_omdet_turbo_timm(tmp_path_factory.mktemp("omdet-timm") / "omdet-turbo-swin-tiny-hf")


def test_timm_is_not_installed_here():
    # The point of the mapping: if timm came back, these tests would no longer show a load without it.
    import importlib.util

    assert importlib.util.find_spec("timm") is None


def test_every_timm_swin_weight_maps_to_one_transformers_swin_weight_of_the_same_shape(tmp_path):
    from safetensors import safe_open
    from transformers import SwinBackbone, SwinConfig

    config = {"model_type": "omdet-turbo", "use_timm_backbone": True, "backbone": "swin_tiny_patch4_window7_224",
              "backbone_config": None, "backbone_kwargs": {"out_indices": [1, 2, 3], "img_size": 640,
                                                           "always_partition": True}}
    rewritten = timm_swin.rewrite_config(config)
    assert rewritten["use_timm_backbone"] is False and "backbone" not in rewritten
    assert rewritten["apply_layernorm_after_vision_backbone"] is False
    swin = rewritten["backbone_config"]
    assert (swin["embed_dim"], swin["depths"], swin["num_heads"], swin["window_size"], swin["out_indices"]) == (
        96, [2, 2, 6, 2], [3, 6, 12, 24], 7, [2, 3, 4])
    state = {timm_swin.TIMM_PREFIX + k: torch.randn(s) for k, s in timm_swin_tiny_shapes().items()}
    state.update({f"{timm_swin.OMDET_NORMS}{i}.{p}": torch.randn(c) for i, c in enumerate((192, 384, 768))
                  for p in ("weight", "bias")})
    mapped = timm_swin.rename_state_dict(state, config)
    # The names and shapes transformers' own Swin backbone saves: every one is filled, nothing else.
    SwinBackbone(SwinConfig.from_dict(swin)).save_pretrained(str(tmp_path))
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        expected = {timm_swin.HF_PREFIX + k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    got = {k: tuple(v.shape) for k, v in mapped.items() if k.startswith(timm_swin.HF_PREFIX)}
    assert got == expected
    # Each timm weight is one of them, unchanged (qkv: its three stacked parts).
    for key, value in state.items():
        if not key.startswith(timm_swin.TIMM_PREFIX):
            continue
        name = timm_swin.HF_PREFIX + timm_swin.timm_to_transformers_key(key.removeprefix(timm_swin.TIMM_PREFIX))
        if ".attn.qkv." in key:
            parts = [mapped[name.replace(".query.", f".{p}.")] for p in ("query", "key", "value")]
            assert torch.equal(torch.cat(parts), value), key
        else:
            assert mapped[name] is value, key
    for i, stage in enumerate((2, 3, 4)):  # OmDet's norms after the backbone are the backbone's own norms now
        for part in ("weight", "bias"):
            assert mapped[f"{timm_swin.HF_PREFIX}hidden_states_norms.stage{stage}.{part}"] is state[
                f"{timm_swin.OMDET_NORMS}{i}.{part}"]


def _timm_block(layer, x, height, width):
    """timm's shifted-window block, step by step, with the layer's own weights: shift the map, pad it
    to whole windows, attend within windows (tokens from different shift regions masked), undo the
    windows, crop, shift back; then the MLP."""
    ws, shift, channels = layer.window_size, layer.shift_size, x.shape[-1]
    hp, wp = -(-height // ws) * ws, -(-width // ws) * ws
    h = torch.roll(layer.layernorm_before(x).view(1, height, width, channels), (-shift, -shift), (1, 2))
    h = torch.nn.functional.pad(h, (0, 0, 0, wp - width, 0, hp - height))
    windows = h.view(1, hp // ws, ws, wp // ws, ws, channels).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, channels)

    def region(n):
        i = torch.arange(n)
        return (i >= n - ws).long() + (i >= n - shift).long()

    ids = (region(hp)[:, None] * 3 + region(wp)[None, :]).float()
    ids = ids.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    mask = (ids[:, None, :] != ids[:, :, None]).float() * -100.0
    out = layer.attention(windows, mask)[0]
    out = out.view(1, hp // ws, wp // ws, ws, ws, channels).permute(0, 1, 3, 2, 4, 5).reshape(1, hp, wp, channels)
    out = torch.roll(out[:, :height, :width], (shift, shift), (1, 2)).reshape(1, height * width, channels)
    y = x + out
    return y + layer.mlp(layer.layernorm_after(y))


def test_shifted_blocks_shift_before_padding_as_timm_does():
    # OmDet's 640 px makes maps of 160, 80, 40, 20 tokens: no multiple of the window (7), where
    # timm's order (shift, then pad) and transformers' (pad, then shift) differ.
    from transformers import SwinBackbone, SwinConfig

    torch.manual_seed(0)
    backbone = SwinBackbone(SwinConfig(embed_dim=16, depths=[2], num_heads=[2], window_size=7,
                                       out_indices=[1])).eval()
    layer = backbone.swin.encoder.layers[0].blocks[1]
    x = torch.randn(1, 20 * 20, 16)
    with torch.no_grad():
        want = _timm_block(layer, x, 20, 20)
        transformers_order = layer(x, (20, 20), always_partition=True)[0]
        assert timm_swin.use_timm_window_order(backbone) == 1  # the one shifted block of the two
        got = layer(x, (20, 20), always_partition=True)[0]
        on_whole_windows = layer(torch.randn(1, 14 * 14, 16), (14, 14), always_partition=True)[0]
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(transformers_order, want, atol=1e-3)  # the test can tell the orders apart
    assert on_whole_windows.shape == (1, 196, 16)


def test_omdet_turbo_in_the_hub_layout_loads_without_timm_and_detects(omdet_timm):
    det = build_detector(DetectorConfig(name="omdet-turbo", model=str(omdet_timm), box_threshold=0.0))
    backbone = det.model.vision_backbone.vision_backbone
    assert type(backbone).__name__ == "SwinBackbone" and det.model.config.backbone_config.model_type == "swin"
    shifted = [b for stage in backbone.swin.encoder.layers for b in stage.blocks if b.shift_size > 0]
    assert len(shifted) == 6 and all(type(b).__name__ == "TimmOrderSwinLayer" for b in shifted)
    # Every backbone weight is the checkpoint's, under its transformers name.
    state = _load(omdet_timm / "model.safetensors")
    qkv = state[timm_swin.TIMM_PREFIX + "layers_2.blocks.5.attn.qkv.weight"]
    attn = backbone.swin.encoder.layers[2].blocks[5].attention
    assert torch.equal(torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]), qkv)
    assert torch.equal(backbone.swin.encoder.layers[0].downsample.reduction.weight,
                       state[timm_swin.TIMM_PREFIX + "layers_1.downsample.reduction.weight"])
    assert torch.equal(backbone.hidden_states_norms["stage4"].bias, state["vision_backbone.layer_norms.2.bias"])
    assert torch.equal(backbone.swin.embeddings.patch_embeddings.projection.weight,
                       state[timm_swin.TIMM_PREFIX + "patch_embed.proj.weight"])
    frame = np.random.default_rng(0).integers(0, 255, (72, 128, 3), dtype=np.uint8)
    found = det.detect(frame, ["person", "car"])
    assert len(found) > 0 and found.xyxy.shape == (len(found), 4)
    assert set(found.data["class_name"]) <= {"person", "car"}
    assert (found.xyxy[:, [0, 2]] <= 128).all() and (found.xyxy[:, [1, 3]] <= 72).all()


def test_track_video_with_omdet_turbo_from_the_hub_cache_offline(omdet_timm, synthetic_video, tmp_path):
    # The default weights, as the hub gives them (timm layout), from the cache, no network, no timm.
    hf_home = tmp_path / "hf"
    write_sam2(hf_home)
    install_folder(hf_home, OMDET_REPO, lambda folder: shutil.copytree(omdet_timm, folder))
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = run_cli([str(synthetic_video), "-p", "person . car", "--detector", "omdet-turbo", "-o", str(tmp_path / "o"),
                      "--max-frames", "2", "--no-video", "--set", "tracker.image_size=256"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "timm" not in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "o" / "boxes.tracks.json").is_file()


def test_the_one_swin_weight_not_in_the_checkpoint_is_unused(omdet_timm):
    # transformers' Swin has a final layer norm that its backbone outputs never pass through; it is
    # the only weight not from the checkpoint (the identity), and changing it changes nothing.
    det = build_detector(DetectorConfig(name="omdet-turbo", model=str(omdet_timm)))
    backbone = det.model.vision_backbone.vision_backbone
    assert torch.equal(backbone.swin.layernorm.weight, torch.ones(768))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        before = [f.clone() for f in det.model.vision_backbone(x)]
        backbone.swin.layernorm.weight.mul_(3).add_(1)
        backbone.swin.layernorm.bias.add_(5)
        after = det.model.vision_backbone(x)
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_an_unknown_weight_in_the_timm_backbone_is_one_line(omdet_timm, tmp_path):
    from safetensors.torch import save_file

    folder = tmp_path / "odd"
    shutil.copytree(omdet_timm, folder)
    state = _load(folder / "model.safetensors")
    state[timm_swin.TIMM_PREFIX + "layers_0.blocks.0.attn.extra_gate"] = torch.zeros(3)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(PromptrackError, match=re.escape("layers_0.blocks.0.attn.extra_gate")) as err:
        build_detector(DetectorConfig(name="omdet-turbo", model=str(folder)))
    assert "\n" not in str(err.value)
