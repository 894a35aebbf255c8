"""Random-weight open-vocabulary detectors saved with ``save_pretrained``, for offline tests.

Each writer puts a transformers checkpoint folder (config, weights, processor, tokenizer) in
``folder``, in the layout of the hub repo it stands for, so ``build_detector`` loads it through
the real code path. ``size="tiny"`` (tests) is a few layers of width 32; ``size="real"``
(benchmarks) uses the architecture of the real checkpoint with random weights.

    >>> from tests.fake_detectors import write_owlv2              # doctest: +SKIP
    >>> write_owlv2(tmp_path / "owlv2")                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

WORDS = ("person people man woman child car truck bus bicycle motorcycle dog cat horse cow bird boat "
         "red blue green white black small big the a of and on in with ball chair table bed cup bottle "
         "stroller train plane tree sky road photo").split()


def _bert_tokenizer():
    """A small BERT WordPiece tokenizer (lower-case) over WORDS, saved in `folder`."""
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "##s", *WORDS]
    with tempfile.TemporaryDirectory() as tmp:
        # BertTokenizer(vocab_file=...) ignores the file in transformers 5: load from a folder.
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab) + "\n")
        return BertTokenizerFast.from_pretrained(tmp), len(vocab)


def _bert_vocab_real():
    """A real-size BERT vocabulary (30522 entries) built from WORDS plus filler tokens."""
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "##s", *WORDS]
    vocab += [f"w{i}" for i in range(30522 - len(vocab))]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab) + "\n")
        return BertTokenizerFast.from_pretrained(tmp), len(vocab)


def _write_grounding_family(folder: str | Path, config_cls, model_cls, size: str, seed: int) -> Path:
    """A Grounding DINO-family model (same layout and processor) with random weights."""
    import torch
    from transformers import BertConfig, GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if size == "real":
        tokenizer, vocab_size = _bert_vocab_real()
        backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                              out_indices=[2, 3, 4])
        config = config_cls(backbone_config=backbone, text_config=BertConfig(vocab_size=vocab_size))
        image_processor = GroundingDinoImageProcessor()
    else:
        tokenizer, vocab_size = _bert_tokenizer()
        backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                              out_indices=[2, 3, 4])
        text = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=256)
        # decoder_layers >= 2: the two-stage head needs a refinement layer.
        config = config_cls(backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
                            decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2,
                            decoder_attention_heads=2, num_queries=30, encoder_n_points=2, decoder_n_points=2)
        image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 96, "longest_edge": 160})
    model = model_cls(config).eval()
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    model.save_pretrained(str(folder))
    return folder


def write_mm_grounding_dino(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """MM-Grounding-DINO (the class LLMDet checkpoints use too) with random weights.

    ``size="real"`` is the Swin-T tiny model of ``openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det``.
    """
    from transformers import MMGroundingDinoConfig, MMGroundingDinoForObjectDetection

    return _write_grounding_family(folder, MMGroundingDinoConfig, MMGroundingDinoForObjectDetection, size, seed)


def write_grounding_dino(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Grounding DINO with random weights; ``size="real"`` is grounding-dino-tiny (Swin-T, BERT-base)."""
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    return _write_grounding_family(folder, GroundingDinoConfig, GroundingDinoForObjectDetection, size, seed)


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (printable ASCII/Latin-1 kept, rest shifted)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    shifted = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(shifted)) for b in range(256)]


def _clip_tokenizer(real: bool, max_length: int = 16):
    """A byte-level BPE CLIP tokenizer: the 256 byte symbols (with and without </w>) and a few merges."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols]
    merges = []
    for word in ("person", "car", "dog", "cat", "photo", "red"):  # whole words for a few common prompts
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            merges.append(f"{parts[0]} {parts[1]}")
            parts = [parts[0] + parts[1]] + parts[2:]
            if parts[0] not in vocab:
                vocab.append(parts[0])
    if real:  # the real CLIP vocabulary size, so the embedding matrix has the real shape
        vocab += [f"x{i}</w>" for i in range(49406 - len(vocab))]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        tokenizer = CLIPTokenizer.from_pretrained(tmp, pad_token="!", model_max_length=max_length)
    return tokenizer, len(vocab)


def write_owlv2(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """OWLv2 with random weights; ``size="real"`` is google/owlv2-base-patch16-ensemble (ViT-B/16 at 960)."""
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer, vocab_size = _clip_tokenizer(real=size == "real")
    special = {"bos_token_id": tokenizer.convert_tokens_to_ids("<|startoftext|>"),
               "eos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"), "pad_token_id": 0}
    if size == "real":
        text = {"vocab_size": vocab_size, "max_position_embeddings": 16, **special}
        vision = {"image_size": 960, "patch_size": 16}
        config = Owlv2Config(text_config=text, vision_config=vision)
        image_processor = Owlv2ImageProcessor()
    else:
        text = {"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                "num_attention_heads": 2, "max_position_embeddings": 16, **special}
        vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                  "image_size": 64, "patch_size": 16}
        config = Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
        image_processor = Owlv2ImageProcessor(size={"height": 64, "width": 64})
    model = Owlv2ForObjectDetection(config).eval()
    Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    model.save_pretrained(str(folder))
    return folder


def _clip_text(tokenizer, vocab_size: int, real: bool, max_position_embeddings: int = 77) -> dict:
    """A CLIP text config: ViT-B/32's text tower (``real``) or one small layer."""
    special = {"bos_token_id": tokenizer.convert_tokens_to_ids("<|startoftext|>"),
               "eos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"), "pad_token_id": 0}
    if real:
        return {"model_type": "clip_text_model", "vocab_size": vocab_size, "hidden_size": 512,
                "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8,
                "max_position_embeddings": max_position_embeddings, "projection_dim": 512, **special}
    return {"model_type": "clip_text_model", "vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": max_position_embeddings,
            "projection_dim": 32, **special}


def write_omdet_turbo(folder: str | Path, size: str = "tiny", seed: int = 0, swin_tiny: bool = False,
                      image_size: int | None = None) -> Path:
    """OmDet-Turbo with random weights; ``size="real"`` is omlab/omdet-turbo-swin-tiny-hf's architecture.

    One difference from the hub checkpoint: its Swin-T backbone is timm's; here it is transformers'
    Swin-T (same architecture and cost, its own layer norms). The hub's timm layout is
    ``fake_hub.write_omdet_turbo_timm``. Config, weights, tokenizer and preprocessor files are in the
    hub's layout. ``swin_tiny=True`` keeps the rest tiny but gives it a Swin-T backbone (the hub
    checkpoint's widths), for ``fake_hub.write_omdet_turbo_timm``; ``image_size`` sets the
    processor's square side.
    """
    import torch
    from transformers import OmDetTurboConfig, OmDetTurboForObjectDetection, SwinConfig
    from transformers.models.detr.image_processing_pil_detr import DetrImageProcessorPil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    real = size == "real"
    tokenizer, vocab_size = _clip_tokenizer(real=real, max_length=77)
    text = _clip_text(tokenizer, vocab_size, real)
    common = {"use_timm_backbone": False, "apply_layernorm_after_vision_backbone": False}
    if real:
        backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                              out_indices=[2, 3, 4])
        config = OmDetTurboConfig(backbone_config=backbone, text_config=text, **common)
        side = 640
    else:
        widths = dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]) if swin_tiny else dict(
            embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2])
        backbone = SwinConfig(**widths, window_size=7, out_indices=[2, 3, 4])
        channels = [192, 384, 768] if swin_tiny else [32, 64, 128]
        # class_embed_dim != decoder_hidden_dim, as in the real model (transformers needs the task projection).
        config = OmDetTurboConfig(backbone_config=backbone, text_config=text, text_projection_in_dim=32,
                                  text_projection_out_dim=32, task_encoder_hidden_dim=64, class_embed_dim=32,
                                  num_queries=30, encoder_hidden_dim=16, vision_features_channels=[16, 16, 16],
                                  encoder_in_channels=channels, encoder_dim_feedforward=32, decoder_hidden_dim=16,
                                  decoder_num_heads=2, decoder_num_layers=2, decoder_dim_feedforward=32,
                                  encoder_attention_heads=2, image_size=image_size or 64, **common)
        side = image_size or 64
    model = OmDetTurboForObjectDetection(config).eval()
    DetrImageProcessorPil(size={"height": side, "width": side}, do_pad=False).save_pretrained(str(folder))
    _set_json(folder / "preprocessor_config.json", image_processor_type="DetrImageProcessor")  # as on the hub
    tokenizer.save_pretrained(str(folder))
    model.save_pretrained(str(folder))
    return folder


def write_sam3(folder: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """SAM 3 (``Sam3Model``) with random weights; ``size="real"`` is facebook/sam3's detector architecture.

    Files as on the hub: config.json, model.safetensors, processor_config.json (Sam3Processor with
    its image processor's settings, written as JSON: that image processor needs torchvision),
    tokenizer files (CLIP BPE, 32 tokens).
    """
    import torch
    from transformers import Sam3Config, Sam3Model
    from transformers.models.sam3.configuration_sam3 import Sam3ViTConfig, Sam3VisionConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    real = size == "real"
    tokenizer, vocab_size = _clip_tokenizer(real=real, max_length=32)
    if real:
        side, mask_side = 1008, 288
        text = {**_clip_text(tokenizer, vocab_size, real=True, max_position_embeddings=32),
                "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16}
        config = Sam3Config(text_config=text)
    else:
        grid = 4  # 56 px / patch 14
        side, mask_side = 14 * grid, 4 * grid
        vit = Sam3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                            image_size=side, patch_size=14, window_size=2, global_attn_indexes=[1],
                            pretrain_image_size=side)
        vision = Sam3VisionConfig(backbone_config=vit, fpn_hidden_size=32,
                                  backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2])
        small = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
        config = Sam3Config(vision_config=vision, text_config=_clip_text(tokenizer, vocab_size, False, 32),
                            geometry_encoder_config={**small, "num_layers": 1},
                            detr_encoder_config={**small, "num_layers": 1},
                            detr_decoder_config={**small, "num_layers": 2, "num_queries": 20},
                            mask_decoder_config={"hidden_size": 32, "num_attention_heads": 2})
    model = Sam3Model(config).eval()
    tokenizer.save_pretrained(str(folder))
    model.save_pretrained(str(folder))
    image_processor = {"image_processor_type": "Sam3ImageProcessor", "do_resize": True, "do_rescale": True,
                       "do_normalize": True, "size": {"height": side, "width": side},
                       "mask_size": {"height": mask_side, "width": mask_side}, "image_mean": [0.5, 0.5, 0.5],
                       "image_std": [0.5, 0.5, 0.5], "rescale_factor": 1 / 255, "resample": 2}
    (folder / "processor_config.json").write_text(json.dumps(
        {"image_processor": image_processor, "processor_class": "Sam3Processor", "target_size": side,
         "point_pad_value": -10}, indent=2))
    return folder


def _set_json(path: Path, **values) -> None:
    data = json.loads(path.read_text())
    data.update(values)
    path.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    import sys

    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python tests/fake_detectors.py {owlv2,mm-grounding-dino,grounding-dino,sam3,omdet-turbo} DIR "
                 "[tiny|real]")
    writers = {"owlv2": write_owlv2, "mm-grounding-dino": write_mm_grounding_dino,
               "grounding-dino": write_grounding_dino, "sam3": write_sam3, "omdet-turbo": write_omdet_turbo}
    print(writers[sys.argv[1]](sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "tiny"))
