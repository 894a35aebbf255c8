"""timm's Swin weights as transformers' own Swin backbone, so OmDet-Turbo loads without timm.

The hub checkpoint ``omlab/omdet-turbo-swin-tiny-hf`` declares a timm backbone
(``use_timm_backbone: true``, ``backbone: swin_tiny_patch4_window7_224``). Loading it through
timm needs torchvision, whose wheel on a CPU install of this torch does not load (and
transformers 5 asks the hub whether the backbone name is a repo, which fails offline). Both are
the same network: timm's Swin and transformers' ``SwinBackbone`` hold the same weights under other
names. This module rewrites the config and renames the weights in memory at load time:

    timm (features_only, out_indices 1-3)          transformers SwinBackbone (out_indices 2-4)
    patch_embed.proj / .norm                        embeddings.patch_embeddings.projection / embeddings.norm
    layers_{i}.downsample (start of stage i)        encoder.layers.{i-1}.downsample (end of stage i-1)
    layers_{i}.blocks.{j}.norm1 / norm2             ...layernorm_before / layernorm_after
    ...attn.qkv (one matrix, q|k|v)                 ...attention.self.query / key / value
    ...attn.proj, mlp.fc1, mlp.fc2                  ...attention.output.dense, intermediate.dense, output.dense
    ...attn.relative_position_bias_table            ...attention.self.relative_position_bias_table (same index)
    OmDet's layer_norms.{k} (after the backbone)    hidden_states_norms.stage{k+2} (the backbone's own)

The relative position index and the shifted-window attention masks are buffers that
transformers' Swin computes itself (timm's are not saved). transformers' final ``layernorm``
is not used by the backbone's outputs; it gets the identity (ones, zeros), so no weight is random.

One difference is in the computation, not the weights: where a feature map is not a multiple of
the window (OmDet's 640 px gives 160, 80, 40, 20 tokens a side, windows of 7), timm shifts the
map and then pads it, transformers pads and then shifts, so the windows at the bottom and right
edges (and the rows that wrap around) hold other tokens. :func:`use_timm_window_order` gives the
shifted blocks timm's order, so the features are timm's at every size (the model was trained and
published with timm's).

Example:
    >>> swin_config("swin_tiny_patch4_window7_224", 640, [1, 2, 3])["depths"]
    [2, 2, 6, 2]
    >>> timm_to_transformers_key("layers_1.downsample.reduction.weight")
    'encoder.layers.0.downsample.reduction.weight'
"""

from __future__ import annotations

import re
from typing import Mapping

from ..errors import ModelNotFoundError

TIMM_PREFIX = "vision_backbone.vision_backbone._backbone."
HF_PREFIX = "vision_backbone.vision_backbone."
OMDET_NORMS = "vision_backbone.layer_norms."

# timm's Swin variants: (embed_dim, depths, num_heads), from the model name's size word.
_SIZES = {
    "tiny": (96, [2, 2, 6, 2], [3, 6, 12, 24]),
    "small": (96, [2, 2, 18, 2], [3, 6, 12, 24]),
    "base": (128, [2, 2, 18, 2], [4, 8, 16, 32]),
    "large": (192, [2, 2, 18, 2], [6, 12, 24, 48]),
}
_NAME = re.compile(r"^swin_(?P<size>tiny|small|base|large)_patch(?P<patch>\d+)_window(?P<window>\d+)_\d+")
_BLOCK_RENAMES = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
                  "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
                  "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
_DERIVED = ("relative_position_index", "attn_mask")  # buffers transformers' Swin computes itself


def uses_timm_swin(config: Mapping) -> bool:
    """Does this OmDet-Turbo config.json declare a timm Swin backbone?"""
    backbone = config.get("backbone_config") or {}
    if backbone.get("model_type") == "timm_backbone":
        return str(backbone.get("backbone", "")).startswith("swin_")
    return bool(config.get("use_timm_backbone", True)) and not backbone and str(
        config.get("backbone") or "swin_tiny_patch4_window7_224").startswith("swin_")


def swin_config(name: str, image_size: int, timm_out_indices: list[int]) -> dict:
    """transformers' SwinConfig (as a dict) of timm's Swin ``name``, its outputs the same stages."""
    match = _NAME.match(name)
    if match is None:
        raise ModelNotFoundError(f"timm backbone {name!r} is not a Swin this loader knows "
                                 f"(swin_{{{'|'.join(_SIZES)}}}_patch4_window7_224 ...)")
    embed_dim, depths, heads = _SIZES[match["size"]]
    return {"model_type": "swin", "embed_dim": embed_dim, "depths": depths, "num_heads": heads,
            "window_size": int(match["window"]), "patch_size": int(match["patch"]), "image_size": image_size,
            "mlp_ratio": 4.0, "qkv_bias": True, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
            "drop_path_rate": 0.0, "out_indices": [i + 1 for i in timm_out_indices]}


def rewrite_config(config: Mapping) -> dict:
    """The config.json of a timm-Swin OmDet-Turbo, rewritten for transformers' Swin (no timm)."""
    backbone = dict(config.get("backbone_config") or {})
    kwargs = {**dict(config.get("backbone_kwargs") or {}), **backbone}
    name = kwargs.get("backbone") or config.get("backbone") or "swin_tiny_patch4_window7_224"
    image_size = kwargs.get("img_size") or config.get("image_size") or 640
    out_indices = list(kwargs.get("out_indices") or [1, 2, 3])
    rewritten = {k: v for k, v in config.items() if k not in ("backbone", "backbone_kwargs", "use_pretrained_backbone")}
    rewritten.update(use_timm_backbone=False, backbone_config=swin_config(name, int(image_size), out_indices),
                     # transformers' SwinBackbone applies these norms itself (hidden_states_norms)
                     apply_layernorm_after_vision_backbone=False)
    return rewritten


def timm_to_transformers_key(key: str) -> str | None:
    """transformers' name of a timm Swin weight (without prefixes); None for a derived buffer.

    qkv is one matrix in timm: :func:`rename_state_dict` splits it, this names its query part.
    """
    if key.rsplit(".", 1)[-1] in _DERIVED:
        return None
    if key.startswith("patch_embed.proj."):
        return "embeddings.patch_embeddings.projection." + key.removeprefix("patch_embed.proj.")
    if key.startswith("patch_embed.norm."):
        return "embeddings.norm." + key.removeprefix("patch_embed.norm.")
    match = re.match(r"^layers_(\d+)\.(downsample|blocks\.(\d+))\.(.+)$", key)
    if match is None:
        raise KeyError(key)
    stage, rest = int(match[1]), match[4]
    if match[2] == "downsample":  # timm merges patches at a stage's start, transformers at the previous one's end
        return f"encoder.layers.{stage - 1}.downsample.{rest}"
    block = f"encoder.layers.{stage}.blocks.{match[3]}."
    if rest.startswith("attn.qkv."):
        return block + "attention.self.query." + rest.removeprefix("attn.qkv.")
    for old, new in _BLOCK_RENAMES.items():
        if rest == old or rest.startswith(old + "."):
            return block + new + rest[len(old):]
    raise KeyError(key)


def rename_state_dict(state: Mapping, config: Mapping) -> dict:
    """The checkpoint's weights with its timm Swin as transformers' Swin; other weights unchanged.

    Raises :class:`KeyError` naming a backbone weight this mapping does not know (nothing is
    dropped silently) and ValueError for a shape that does not fit.
    """
    import torch

    backbone = rewrite_config(config)["backbone_config"]
    out: dict = {}
    for key, value in state.items():
        if not key.startswith(TIMM_PREFIX):
            out[key] = value
            continue
        name = timm_to_transformers_key(key.removeprefix(TIMM_PREFIX))
        if name is None:
            continue
        if ".attention.self.query." in name and key.endswith(("qkv.weight", "qkv.bias")):
            if value.shape[0] % 3:
                raise ValueError(f"{key}: shape {tuple(value.shape)} is not three stacked projections")
            for part, tensor in zip(("query", "key", "value"), torch.chunk(value, 3, dim=0)):
                out[HF_PREFIX + name.replace(".query.", f".{part}.")] = tensor.contiguous()
        else:
            out[HF_PREFIX + name] = value
    stages = backbone["out_indices"]
    for k, stage in enumerate(stages):
        for part in ("weight", "bias"):
            source = f"{OMDET_NORMS}{k}.{part}"
            if source not in state:
                raise KeyError(source)
            out[f"{HF_PREFIX}hidden_states_norms.stage{stage}.{part}"] = state[source]
    width = backbone["embed_dim"] * 2 ** (len(backbone["depths"]) - 1)
    out[HF_PREFIX + "swin.layernorm.weight"] = torch.ones(width)  # unused by the backbone's outputs
    out[HF_PREFIX + "swin.layernorm.bias"] = torch.zeros(width)
    return out


def use_timm_window_order(backbone) -> int:
    """Give every shifted-window block of a transformers Swin timm's order (shift, then pad).

    transformers' ``SwinLayer.forward`` pads (``maybe_pad``), shifts (``cyclic_shift``), attends,
    shifts back and crops. The subclass set here shifts the unpadded map inside ``maybe_pad`` and,
    on the way back, crops before shifting back (then pads again, for the crop that follows), as
    timm's block does. Returns the number of blocks changed.
    """
    changed = 0
    for module in backbone.modules():
        cls = type(module)
        if cls.__name__ == "SwinLayer" and module.shift_size > 0:
            module.__class__ = _timm_order(cls)
            changed += 1
    return changed


def _timm_order(layer_class):
    import torch.nn.functional as F

    class TimmOrderSwinLayer(layer_class):
        """A shifted-window Swin block that shifts before padding and crops before shifting back."""

        def maybe_pad(self, hidden_states, height, width):
            self._unpadded = (height, width)
            return super().maybe_pad(super().cyclic_shift(hidden_states), height, width)

        def cyclic_shift(self, hidden_states, reverse: bool = False):
            if not reverse:
                return hidden_states  # shifted already, before padding
            height, width = self._unpadded
            padded_h, padded_w = hidden_states.shape[1:3]
            back = super().cyclic_shift(hidden_states[:, :height, :width], reverse=True)
            return F.pad(back, (0, 0, 0, padded_w - width, 0, padded_h - height))

    TimmOrderSwinLayer.__qualname__ = TimmOrderSwinLayer.__name__ = "TimmOrder" + layer_class.__name__
    return TimmOrderSwinLayer
