"""Write random-weight models in the exact Hugging Face cache layout, for offline tests.

    python tests/fake_hub.py DIR
    HF_HOME=DIR HF_HUB_OFFLINE=1 track-video clip.mp4 --prompt person

creates ``DIR/hub/models--facebook--sam2.1-hiera-tiny`` (``sam2.1_hiera_tiny.pt`` from the
packaged SAM 2.1 tiny config, seeded random weights) and
``DIR/hub/models--IDEA-Research--grounding-dino-tiny`` (a tiny Grounding DINO config with a
small BERT vocabulary, saved with ``save_pretrained``), each as blobs + refs/main + a snapshot of
symlinks, so the real loading code (hf_hub_download, from_pretrained) runs unchanged.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"
SAM2_REPO = "facebook/sam2.1-hiera-tiny"
GDINO_REPO = "IDEA-Research/grounding-dino-tiny"
OMDET_REPO = "omlab/omdet-turbo-swin-tiny-hf"
WORDS = ("person people man woman child car truck bus bicycle motorcycle dog cat horse cow bird boat "
         "red blue green white black small big the a of and on in with ball chair table bed cup bottle "
         "stroller train plane tree sky road").split()


def _install(cache: Path, repo_id: str, files: Path) -> Path:
    """Move `files` into cache/hub as blobs, with refs/main and a snapshot of relative symlinks."""
    repo_dir = cache / "hub" / ("models--" + repo_id.replace("/", "--"))
    blobs, snapshot = repo_dir / "blobs", repo_dir / "snapshots" / SNAPSHOT
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(SNAPSHOT)
    for src in sorted(files.iterdir()):
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        shutil.move(str(src), blobs / digest)
        link = snapshot / src.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("..") / ".." / "blobs" / digest)
    return snapshot


def write_sam2(cache: Path, seed: int = 0) -> Path:
    import sam2
    import torch
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.save({"model": model.state_dict()}, tmp / "sam2.1_hiera_tiny.pt")
        shutil.copy(Path(sam2.__file__).parent / "configs/sam2.1/sam2.1_hiera_t.yaml", tmp / "sam2.1_hiera_t.yaml")
        (tmp / "config.json").write_text(json.dumps({"model_type": "sam2.1_hiera_t"}))
        return _install(cache, SAM2_REPO, tmp)


def write_grounding_dino(cache: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    torch.manual_seed(seed)
    backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                          out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=8 + len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=256)
    config = GroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
                                 decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2,
                                 decoder_attention_heads=2, num_queries=30, num_feature_levels=4, encoder_n_points=2,
                                 decoder_n_points=2)
    model = GroundingDinoForObjectDetection(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "##s", *WORDS]
        (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n")
        tokenizer = BertTokenizerFast.from_pretrained(str(tmp))
        (tmp / "vocab.txt").unlink()
        processor = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(), tokenizer=tokenizer)
        processor.save_pretrained(str(tmp))
        model.save_pretrained(str(tmp))
        return _install(cache, GDINO_REPO, tmp)


def timm_swin_tiny_shapes(window: int = 7) -> dict[str, tuple[int, ...]]:
    """Every weight of timm's ``swin_tiny_patch4_window7_224`` built with ``features_only=True``, by name and shape.

    Written from timm's ``swin_transformer.py`` (timm 1.0): the feature wrapper flattens
    ``layers.{i}`` to ``layers_{i}`` and drops the final norm and the head; each stage after the
    first starts with its patch merging (``downsample``: a norm over 4C, a 4C -> 2C reduction
    without bias); the relative position index and attention masks are buffers not saved.
    """
    dims, depths, heads = (96, 192, 384, 768), (2, 2, 6, 2), (3, 6, 12, 24)
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (96, 3, 4, 4), "patch_embed.proj.bias": (96,),
        "patch_embed.norm.weight": (96,), "patch_embed.norm.bias": (96,)}
    for i, (dim, depth, nh) in enumerate(zip(dims, depths, heads)):
        if i:
            shapes.update({f"layers_{i}.downsample.norm.weight": (2 * dim,),
                           f"layers_{i}.downsample.norm.bias": (2 * dim,),
                           f"layers_{i}.downsample.reduction.weight": (dim, 2 * dim)})
        for j in range(depth):
            b = f"layers_{i}.blocks.{j}."
            shapes.update({
                b + "norm1.weight": (dim,), b + "norm1.bias": (dim,),
                b + "attn.relative_position_bias_table": ((2 * window - 1) ** 2, nh),
                b + "attn.qkv.weight": (3 * dim, dim), b + "attn.qkv.bias": (3 * dim,),
                b + "attn.proj.weight": (dim, dim), b + "attn.proj.bias": (dim,),
                b + "norm2.weight": (dim,), b + "norm2.bias": (dim,),
                b + "mlp.fc1.weight": (4 * dim, dim), b + "mlp.fc1.bias": (4 * dim,),
                b + "mlp.fc2.weight": (dim, 4 * dim), b + "mlp.fc2.bias": (dim,)})
    return shapes


def write_omdet_turbo_timm(folder: str | Path, seed: int = 0, image_size: int = 64) -> Path:
    """OmDet-Turbo in the layout of ``omlab/omdet-turbo-swin-tiny-hf``: a timm Swin-T backbone.

    config.json as on the hub (``use_timm_backbone: true``, ``backbone:
    swin_tiny_patch4_window7_224``, ``backbone_kwargs``, ``backbone_config: null``, OmDet's own
    layer norms after the backbone) and the backbone's weights under timm's names
    (``vision_backbone.vision_backbone._backbone.layers_0.blocks.0.attn.qkv.weight`` ...), real
    Swin-T shapes, seeded random values (norms too, so a norm mapped to the wrong place shows).
    The rest of the model is small (decoder, text tower) and its processor resizes to
    ``image_size`` so a test runs in seconds.
    """
    import torch
    from safetensors.torch import load_file, save_file

    from fake_detectors import write_omdet_turbo

    folder = Path(folder)
    write_omdet_turbo(folder, seed=seed, swin_tiny=True, image_size=image_size)
    generator = torch.Generator().manual_seed(seed + 1)
    state = {k: v for k, v in load_file(str(folder / "model.safetensors")).items()
             if not k.startswith("vision_backbone.vision_backbone.")}
    # The hub file was saved by transformers 4, whose CLIPTextModel nested its weights in text_model.
    state = {k.replace("language_backbone.model.", "language_backbone.model.text_model.", 1): v
             for k, v in state.items()}
    for name, shape in timm_swin_tiny_shapes().items():
        value = torch.randn(shape, generator=generator) * 0.05
        if name.endswith(("norm.weight", "norm1.weight", "norm2.weight")):
            value = 1.0 + value
        state["vision_backbone.vision_backbone._backbone." + name] = value
    for k, dim in enumerate((192, 384, 768)):
        state[f"vision_backbone.layer_norms.{k}.weight"] = 1.0 + 0.05 * torch.randn(dim, generator=generator)
        state[f"vision_backbone.layer_norms.{k}.bias"] = 0.05 * torch.randn(dim, generator=generator)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config.update(backbone="swin_tiny_patch4_window7_224", backbone_config=None, use_timm_backbone=True,
                  use_pretrained_backbone=False, apply_layernorm_after_vision_backbone=True,
                  backbone_kwargs={"out_indices": [1, 2, 3], "img_size": 640, "always_partition": True})
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def install_folder(cache: str | Path, repo_id: str, write) -> Path:
    """Install a model written by ``write(folder)`` (tests/fake_detectors.py) as hub repo `repo_id` in `cache`.

    >>> from fake_detectors import write_sam3                       # doctest: +SKIP
    >>> install_folder(hf_home, "facebook/sam3", write_sam3)         # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        write(folder)
        return _install(Path(cache), repo_id, folder)


def write_fake_hub(cache: str | Path) -> Path:
    cache = Path(cache)
    write_sam2(cache)
    write_grounding_dino(cache)
    return cache


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/fake_hub.py DIR")
    print(write_fake_hub(sys.argv[1]))
