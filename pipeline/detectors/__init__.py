"""Detectors: one file per family, all behind the Detector protocol of ``base.py``.

``build_detector(config, device)`` resolves the weights (see ``pipeline/models.py``) or the
token and builds the detector a config names; ``list_detectors()`` says which names exist and
what each needs. Third-party detectors come in through the entry-point group
``promptrack.detectors`` (see ``plugins.py``).

Example:
    >>> [d.name for d in list_detectors()][:3]
    ['grounding-dino', 'mm-grounding-dino', 'llmdet']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import DetectorConfig
from ..errors import ConfigError, ModelNotFoundError
from ..models import resolve_file, resolve_folder
from .base import Detector, DetectorAccessError, DetectorUnavailable, detect_batch, make_detections
from .plugins import ENTRY_POINT_GROUP, as_detector, load_plugin, plugin_entry_points, plugin_source


@dataclass(frozen=True)
class DetectorInfo:
    """A detector name, what it needs to run, and what it is."""

    name: str
    needs: str
    about: str


_BUILTIN = (
    DetectorInfo("grounding-dino", "weights IDEA-Research/grounding-dino-tiny",
                 "open vocabulary, local (default)"),
    DetectorInfo("mm-grounding-dino", "weights openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det",
                 "open vocabulary, local"),
    DetectorInfo("llmdet", "weights iSEE-Laboratory/llmdet_tiny", "open vocabulary, local (MM-Grounding-DINO class)"),
    DetectorInfo("owlv2", "weights google/owlv2-base-patch16-ensemble",
                 "open vocabulary, local; lower scores: try --box-threshold 0.1"),
    DetectorInfo("yolox", "weights yolox_nano.onnx (in $PROMPTRACK_MODEL_DIR or a path)", "80 COCO classes, fast"),
    DetectorInfo("dino-x", "token $DDS_API_TOKEN (DeepDataSpace cloud)",
                 "cloud, boxes + masks; prompt <prompt_free> finds everything"),
    DetectorInfo("grounding-dino-1.5-pro", "token $DDS_API_TOKEN (DeepDataSpace cloud)", "cloud, boxes"),
    DetectorInfo("grounding-dino-1.6-pro", "token $DDS_API_TOKEN (DeepDataSpace cloud)", "cloud, boxes"),
)
DETECTORS = tuple(d.name for d in _BUILTIN)
_ALIASES = {
    "grounding_dino": "grounding-dino", "gdino": "grounding-dino", "groundingdino": "grounding-dino",
    "mm_grounding_dino": "mm-grounding-dino", "mm-gdino": "mm-grounding-dino", "mmgdino": "mm-grounding-dino",
    "owl": "owlv2", "owl-v2": "owlv2", "owl_v2": "owlv2",
    "dinox": "dino-x", "dino_x": "dino-x", "dino-x-1.0": "dino-x",
    "grounding-dino-1.5": "grounding-dino-1.5-pro", "gdino-1.5-pro": "grounding-dino-1.5-pro",
    "grounding-dino-1.6": "grounding-dino-1.6-pro", "gdino-1.6-pro": "grounding-dino-1.6-pro",
}
# A local folder handed to --detector is routed by the model_type in its config.json.
_FAMILY_OF_MODEL_TYPE = {"grounding-dino": "grounding-dino", "mm-grounding-dino": "mm-grounding-dino", "owlv2": "owlv2"}


def list_detectors() -> list[DetectorInfo]:
    """Every detector name that ``build_detector`` accepts, built-ins first, then plugins."""
    infos = list(_BUILTIN)
    for name, ep in sorted(plugin_entry_points().items()):
        if name not in DETECTORS:  # a plugin cannot shadow a built-in name
            infos.append(DetectorInfo(name, f"plugin {plugin_source(ep)}", "third-party detector"))
    return infos


def canonical_name(name: str) -> str:
    """The registry name of `name` (aliases and case folded)."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def build_detector(config: DetectorConfig, device: str = "cpu") -> Detector:
    """The detector named by ``config.name``, with weights from ``config.model`` or its default.

    Example:
        >>> build_detector(DetectorConfig(name="owlv2", model="path/to/owlv2"))   # doctest: +SKIP
        >>> build_detector(DetectorConfig(name="dino-x"))   # needs $DDS_API_TOKEN  # doctest: +SKIP
    """
    name = canonical_name(config.name)
    if name == "grounding-dino" and config.model:
        name = _family_of_folder(config.model) or name
    if name == "yolox":
        from .yolox import DEFAULT_FILE, YOLOXDetector

        path = resolve_file(DEFAULT_FILE, None, config.model)
        return YOLOXDetector(path, config.box_threshold, config.nms_iou, device)
    if name in ("grounding-dino", "mm-grounding-dino", "llmdet"):
        cls, default = _grounding_family(name)
        folder = resolve_folder(config.model or default)
        return _load(name, folder, lambda: cls(folder, config.box_threshold, config.text_threshold, config.nms_iou,
                                               device))
    if name == "owlv2":
        from .owlv2 import DEFAULT_MODEL, OWLv2Detector

        folder = resolve_folder(config.model or DEFAULT_MODEL)
        return _load(name, folder, lambda: OWLv2Detector(folder, config.box_threshold, config.nms_iou, device))
    if name in ("dino-x", "grounding-dino-1.5-pro", "grounding-dino-1.6-pro"):
        from .dds_cloud import DDSCloudDetector

        return DDSCloudDetector(name, token=config.token, api_url=config.api_url, box_threshold=config.box_threshold,
                                nms_iou=config.nms_iou, timeout=config.timeout, retries=config.retries,
                                image_max_side=config.image_max_side)
    if name in plugin_entry_points():
        return load_plugin(name, config, device)
    names = ", ".join(d.name for d in list_detectors())
    raise ConfigError(f"unknown detector {config.name!r}: use one of {names} (track-video --list-detectors)")


def _grounding_family(name: str) -> tuple[type, str]:
    """Detector class and default weights of the Grounding DINO family (same prompts, same heads)."""
    if name == "grounding-dino":
        from .grounding_dino import DEFAULT_MODEL, GroundingDINODetector

        return GroundingDINODetector, DEFAULT_MODEL
    from .mm_grounding_dino import DEFAULT_MODEL as MM_MODEL, LLMDET_MODEL, LLMDetDetector, MMGroundingDINODetector

    return (LLMDetDetector, LLMDET_MODEL) if name == "llmdet" else (MMGroundingDINODetector, MM_MODEL)


def _load(name: str, folder: Path, make):
    try:
        return make()
    except ModelNotFoundError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(f"cannot load {name} from {folder}: {first}") from None


def _family_of_folder(model: str) -> str | None:
    """The detector family of a local checkpoint folder, from its config.json's model_type."""
    path = Path(model).expanduser()
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError):
        return None
    return _FAMILY_OF_MODEL_TYPE.get(model_type)


__all__ = ["DETECTORS", "ENTRY_POINT_GROUP", "Detector", "DetectorAccessError", "DetectorInfo", "DetectorUnavailable",
           "as_detector", "build_detector", "canonical_name", "detect_batch", "list_detectors", "make_detections"]
