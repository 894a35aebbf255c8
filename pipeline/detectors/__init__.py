"""Detectors: one file per family, all behind the Detector protocol of ``base.py``.

``build_detector(config, device)`` resolves the weights (see ``pipeline/models.py``) and builds
the detector a config names.
"""

from __future__ import annotations

from ..config import DetectorConfig
from ..errors import ConfigError, ModelNotFoundError
from ..models import resolve_file, resolve_folder
from .base import Detector, make_detections

DETECTORS = ("grounding-dino", "yolox")
_ALIASES = {"grounding_dino": "grounding-dino", "gdino": "grounding-dino", "groundingdino": "grounding-dino"}


def build_detector(config: DetectorConfig, device: str = "cpu") -> Detector:
    """The detector named by ``config.name``, with weights from ``config.model`` or its default."""
    name = _ALIASES.get(config.name.lower(), config.name.lower())
    if name == "yolox":
        from .yolox import DEFAULT_FILE, YOLOXDetector

        path = resolve_file(DEFAULT_FILE, None, config.model)
        return YOLOXDetector(path, config.box_threshold, config.nms_iou, device)
    if name == "grounding-dino":
        from .grounding_dino import DEFAULT_MODEL, GroundingDINODetector

        folder = resolve_folder(config.model or DEFAULT_MODEL)
        try:
            return GroundingDINODetector(folder, config.box_threshold, config.text_threshold, config.nms_iou, device)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"cannot load Grounding DINO from {folder}: {str(exc).splitlines()[0]}") from None
    raise ConfigError(f"unknown detector {config.name!r}: use one of {', '.join(DETECTORS)}")


__all__ = ["DETECTORS", "Detector", "build_detector", "make_detections"]
