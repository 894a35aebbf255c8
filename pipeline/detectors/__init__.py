"""Detectors: one file per family, all behind the Detector protocol of ``base.py``.

Every family declares itself in the registry (``registry.py``): name, aliases, what it needs,
default weights, the checkpoint types it loads, how to build it. ``build_detector(config,
device)`` builds the detector a config names; ``list_detectors()`` says which names exist and
what each needs. Third-party detectors come in through the entry-point group
``promptrack.detectors`` (see ``plugins.py``).

Example:
    >>> [d.name for d in list_detectors()][:3]
    ['grounding-dino', 'mm-grounding-dino', 'llmdet']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Sequence

from ..config import DetectorConfig
from . import registry
from .base import Detector, DetectorAccessError, DetectorUnavailable, detect_batch, make_detections
from .plugins import ENTRY_POINT_GROUP, as_detector
from .registry import DetectorSpec, register


@dataclass(frozen=True)
class DetectorInfo:
    """A detector name, what it needs to run, and what it is."""

    name: str
    needs: str
    about: str


def list_detectors() -> list[DetectorInfo]:
    """Every detector name that ``build_detector`` accepts, built-ins first, then plugins."""
    return [DetectorInfo(s.name, s.needs, s.about) for s in registry.all_specs()]


def canonical_name(name: str) -> str:
    """The registry name of `name` (aliases and case folded)."""
    return registry.spec(name).name


def build_detector(config: DetectorConfig, device: str = "cpu") -> Detector:
    """The detector named by ``config.name``, with weights from ``config.model`` or its default.

    Example:
        >>> build_detector(DetectorConfig(name="owlv2", model="path/to/owlv2"))   # doctest: +SKIP
        >>> build_detector(DetectorConfig(name="dino-x"))   # needs $DDS_API_TOKEN  # doctest: +SKIP
    """
    return registry.build(config, device)


def check_prompt(config: DetectorConfig, phrases: Sequence[str]) -> None:
    """Fail now (PromptError, one line) if the configured detector cannot look for `phrases`.

    Cheap: no model loads. Call it before building the pipeline.

    >>> check_prompt(DetectorConfig(name="yolox"), ["zebra crossing"])
    Traceback (most recent call last):
    ...
    promptrack.pipeline.errors.PromptError: YOLOX knows only the 80 COCO classes; 'zebra crossing' is not one: use --detector grounding-dino for open-vocabulary prompts
    """
    registry.check_prompt(config, phrases)


def detector_config(value: Any, current: DetectorConfig) -> DetectorConfig | None:
    """The config of the detector that `value` names, as ``detector=`` of ``track_video`` and
    ``track_videos`` takes it: a :class:`DetectorConfig` as it is; a name (``"yolox"``), a model
    folder or an ``.onnx`` path as ``--detector`` reads it, over `current`'s other values. None
    for a Detector or a callable, which is used as it is. An unknown name fails now, in one line.

    >>> detector_config("yolox", DetectorConfig(box_threshold=0.5))
    DetectorConfig(name='yolox', model=None, box_threshold=0.5, text_threshold=0.25, nms_iou=0.5, token=None, api_url='https://api.deepdataspace.com', timeout=10.0, retries=3, image_max_side=1536)
    """
    if isinstance(value, DetectorConfig):
        chosen = value
    elif isinstance(value, (str, os.PathLike)):
        values = registry.cli_values(os.fspath(value))
        chosen = replace(current, name=values["detector__name"], model=values.get("detector__model", current.model))
    else:
        return None
    registry.resolve(chosen)  # an unknown name: one line now, not on a worker
    return chosen


def detector_model_name(config: DetectorConfig) -> str:
    """The detector's name in output headers (``models.detector``): its weights' name."""
    return registry.model_name(config)


__all__ = ["ENTRY_POINT_GROUP", "Detector", "DetectorAccessError", "DetectorInfo", "DetectorSpec",
           "DetectorUnavailable", "as_detector", "build_detector", "canonical_name", "check_prompt", "detect_batch",
           "detector_config", "detector_model_name", "list_detectors", "make_detections", "register"]
