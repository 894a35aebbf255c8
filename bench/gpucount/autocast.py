"""CUDA autocast, emulated on any device: which operators it runs in the lower precision, which in
float32, which at the widest input type, and its cache of cast weights.

The lists are CUDA autocast's (torch/amp docs, "CUDA Ops that can autocast to float16/float32",
and ``aten/src/ATen/autocast_mode.cpp``), written with the names of the ATen operators a dispatch
mode sees: the composite ones (``linear``, ``conv2d``, ``layer_norm``: whole under inference_mode)
and what they decompose into (``linear`` -> ``t`` + ``addmm``, ``layer_norm`` ->
``native_layer_norm``), so a composite is cast once, where CUDA autocast casts it, and its parts
then find their inputs cast already. A weight cast to the lower
precision (a leaf float32 tensor that requires grad: a module parameter) is cached while the
outermost autocast context is open; leaving it clears the cache, so a context entered per frame
casts every weight again every frame.

Example:
    >>> state = AutocastState()
    >>> state.enter(True, torch.bfloat16); state.active()
    torch.bfloat16
    >>> state.exit(); state.active() is None
    True
"""

from __future__ import annotations

import torch

LOWER = frozenset({
    "mm", "addmm", "bmm", "baddbmm", "addbmm", "addmv", "addr", "mv", "dot", "vdot", "linalg_vecdot",
    "convolution", "_convolution", "conv_tbc", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "chain_matmul", "linalg_multi_dot", "_prelu_kernel", "prelu", "matmul", "linear", "einsum",
    "scaled_dot_product_attention", "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_flash_attention_for_cpu", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell",
})
FP32 = frozenset({
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal", "rsqrt",
    "sinh", "tan", "pow", "softplus", "native_layer_norm", "native_group_norm", "_softmax", "_log_softmax",
    "layer_norm", "group_norm", "softmax", "log_softmax", "softmin", "cdist", "pdist", "cross_entropy_loss",
    "binary_cross_entropy", "nll_loss", "nll_loss2d", "cosine_embedding_loss",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "_upsample_bilinear2d_aa", "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_bicubic2d_aa",
    "binary_cross_entropy_with_logits", "nll_loss_forward", "nll_loss2d_forward", "kl_div", "l1_loss",
    "smooth_l1_loss", "huber_loss", "mse_loss", "_cdist_forward", "dist", "renorm", "logsumexp",
    "linalg_vector_norm", "norm", "frobenius_norm", "nuclear_norm", "_pdist_forward", "cosine_similarity",
    "poisson_nll_loss", "margin_ranking_loss", "soft_margin_loss", "multi_margin_loss",
    "multilabel_margin_loss_forward", "hinge_embedding_loss", "triplet_margin_loss",
})
# float32 by passing dtype=float32 to the kernel (it reads the lower precision): no extra kernel.
FP32_BY_DTYPE = frozenset({"sum", "prod", "cumsum", "cumprod"})
PROMOTE = frozenset({
    "cat", "stack", "index_copy", "addcdiv", "addcmul", "atan2", "bilinear", "cross", "linalg_cross",
    "tensordot", "scatter_add", "index_put", "index_put_", "_index_put_impl_", "grid_sampler",
    "grid_sampler_2d",
})
LOWER_DTYPES = (torch.float16, torch.bfloat16)


def eligible(tensor) -> bool:
    """A tensor autocast may cast: floating point, not float64."""
    return isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.dtype != torch.float64


class AutocastState:
    """The autocast contexts open on one thread (emulated) and their weight-cast cache."""

    def __init__(self, forced: torch.dtype | None = None) -> None:
        self.forced = forced  # an autocast open around everything counted (never cleared)
        self._stack: list[tuple[bool, torch.dtype]] = []
        self.cache: dict[int, tuple] = {}  # id(weight) -> (weight, its cast)

    def active(self) -> torch.dtype | None:
        """The lower-precision dtype in force, or None when autocast is off."""
        if self._stack:
            enabled, dtype = self._stack[-1]
            return dtype if enabled else None
        return self.forced

    def enter(self, enabled: bool, dtype: torch.dtype) -> None:
        self._stack.append((enabled, dtype))

    def exit(self) -> None:
        self._stack.pop()
        if not self._stack and self.forced is None:
            self.cache.clear()  # as torch.autocast's __exit__ at nesting 0
