"""MM-Grounding-DINO and LLMDet through transformers' ``MMGroundingDinoForObjectDetection``.

LLMDet checkpoints are MM-Grounding-DINO models (the LLM was only used in training), so both
load through the same class. The prompt form and the post-processing are Grounding DINO's
(``grounding_dino.py``): "person . red car .", phrase scores from their tokens' scores.

Defaults:
    mm-grounding-dino  openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det (Swin-T)
    llmdet             iSEE-Laboratory/llmdet_tiny (Swin-T); llmdet_base / llmdet_large also work

Example:
    >>> det = MMGroundingDINODetector("openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det")  # doctest: +SKIP
    >>> det.detect(frame, ["person", "red car"])                                                      # doctest: +SKIP
"""

from __future__ import annotations

from .grounding_dino import GroundingDINODetector, build_grounding_family, family_weights
from .registry import DetectorSpec, register

DEFAULT_MODEL = "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det"
LLMDET_MODEL = "iSEE-Laboratory/llmdet_tiny"


class MMGroundingDINODetector(GroundingDINODetector):
    """MM-Grounding-DINO (or LLMDet) from a transformers checkpoint folder."""

    name = "mm-grounding-dino"
    model_types = ("mm-grounding-dino",)

    @classmethod
    def model_class(cls):
        from transformers import MMGroundingDinoForObjectDetection

        return MMGroundingDinoForObjectDetection


class LLMDetDetector(MMGroundingDINODetector):
    """LLMDet: MM-Grounding-DINO weights co-trained with an LLM; same class, same inference."""

    name = "llmdet"


register(DetectorSpec(
    "mm-grounding-dino", build_grounding_family(MMGroundingDINODetector, DEFAULT_MODEL), needs=f"weights {DEFAULT_MODEL}",
    about="open vocabulary, local", aliases=("mm_grounding_dino", "mm-gdino", "mmgdino"), default_model=DEFAULT_MODEL,
    model_types=("mm-grounding-dino",), weights=family_weights("mm-grounding-dino", DEFAULT_MODEL)))
register(DetectorSpec(
    "llmdet", build_grounding_family(LLMDetDetector, LLMDET_MODEL), needs=f"weights {LLMDET_MODEL}",
    about="open vocabulary, local (MM-Grounding-DINO class)", default_model=LLMDET_MODEL,
    weights=family_weights("llmdet", LLMDET_MODEL)))
