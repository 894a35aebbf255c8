"""Third-party detectors: the entry-point group ``promptrack.detectors``, and plain callables.

A package adds a detector by naming a factory in its ``pyproject.toml``::

    [project.entry-points."promptrack.detectors"]
    my-detector = "my_package.detect:build"

``build(config, device)`` gets the :class:`~promptrack.pipeline.config.DetectorConfig` and the
device ("cpu", "cuda") and returns a Detector (an object with ``detect(frame, phrases)``) or a
plain callable ``frame, phrases -> supervision.Detections``. Then
``track-video in.mp4 --prompt car --detector my-detector`` uses it, and
``track-video --list-detectors`` lists it. The entry point may also name a
:class:`~promptrack.pipeline.detectors.spec.DetectorSpec` (its ``build`` is the factory), the same
declaration a built-in family makes.

From Python, any callable works without a package::

    >>> import numpy as np, supervision as sv
    >>> def whole_frame(frame, phrases):
    ...     h, w = frame.shape[:2]
    ...     return sv.Detections(xyxy=np.array([[0, 0, w, h]], float), class_id=np.array([0]))
    >>> det = as_detector(whole_frame)
    >>> found = det.detect(np.zeros((4, 6, 3), np.uint8), ["thing"])
    >>> found.data["class_name"].tolist(), found.confidence.tolist()
    (['thing'], [1.0])
"""

from __future__ import annotations

from functools import partial
from importlib import metadata
from typing import Any, Callable, Sequence

import numpy as np
import supervision as sv

from ..errors import ConfigError, PromptrackError
from .base import Detector
from .spec import DetectorSpec

ENTRY_POINT_GROUP = "promptrack.detectors"


def check_detections(found: Any, phrases: Sequence[str], source: str) -> sv.Detections:
    """Detections in the protocol's shape: confidence (ones if missing), class_id and class_name filled.

    A callable may give ``class_id`` (index into phrases) or ``data["class_name"]`` or, with one
    phrase, neither; anything that is not ``supervision.Detections`` is one clear error.
    """
    if not isinstance(found, sv.Detections):
        raise PromptrackError(f"detector {source} returned {type(found).__name__}, not supervision.Detections")
    n = len(found)
    if found.confidence is None:
        found.confidence = np.ones(n, dtype=np.float32)
    names = found.data.get("class_name")
    if found.class_id is None and names is None:
        if len(phrases) != 1 and n:
            raise PromptrackError(f"detector {source} returned boxes with neither class_id nor data['class_name']: "
                                  "set one of them")
        found.class_id = np.zeros(n, dtype=int)
    if names is None:
        ids = np.asarray(found.class_id, dtype=int)
        if n and (ids.min() < 0 or ids.max() >= len(phrases)):
            raise PromptrackError(f"detector {source} returned class_id outside 0..{len(phrases) - 1} "
                                  "(class_id indexes the prompt's phrases)")
        found.data["class_name"] = np.array([phrases[i] for i in ids], dtype=object)
    elif found.class_id is None:
        found.class_id = np.array([list(phrases).index(c) if c in phrases else -1 for c in names], dtype=int)
    return found


class CallableDetector:
    """A plain callable ``frame, phrases -> supervision.Detections`` as a Detector."""

    def __init__(self, fn: Callable[[np.ndarray, Sequence[str]], sv.Detections], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def detect(self, frame: np.ndarray, phrases: Sequence[str]) -> sv.Detections:
        return check_detections(self.fn(frame, phrases), phrases, self.name)

    def __repr__(self) -> str:
        return f"CallableDetector({self.name!r})"


def as_detector(obj: Any, name: str | None = None) -> Detector:
    """A Detector from a Detector (returned as is) or a callable ``frame, phrases -> Detections``."""
    if hasattr(obj, "detect"):
        return obj
    if callable(obj):
        return CallableDetector(obj, name)
    raise ConfigError(f"a detector must have detect(frame, phrases) or be a callable, not {type(obj).__name__}")


def plugin_entry_points() -> dict[str, metadata.EntryPoint]:
    """Installed detector plugins by name (the first one wins when two share a name)."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name.lower(), ep)
    return found


def plugin_source(ep: metadata.EntryPoint) -> str:
    """Where a plugin comes from, for listings: "dist-name (module:attr)"."""
    dist = getattr(ep, "dist", None)
    return f"{dist.name} ({ep.value})" if dist is not None else ep.value


def plugin_specs() -> list:
    """A registry entry for each installed plugin (its module is imported only when it is built)."""
    return [DetectorSpec(name, partial(load_plugin, name), needs=f"plugin {plugin_source(ep)}",
                         about="third-party detector", source=plugin_source(ep))
            for name, ep in sorted(plugin_entry_points().items())]


def load_plugin(name: str, config: Any, device: str) -> Detector:
    """Build the detector plugin `name` from its factory ``factory(config, device)``."""
    eps = plugin_entry_points()
    if name not in eps:
        raise ConfigError(f"no detector plugin named {name!r}")
    ep = eps[name]
    try:
        factory = ep.load()
    except Exception as exc:  # a broken plugin must not look like a promptrack bug
        raise ConfigError(f"detector plugin {name!r} ({ep.value}) failed to import: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if isinstance(factory, DetectorSpec):
        factory = factory.build
    try:
        built = factory(config, device)
    except PromptrackError:
        raise
    except Exception as exc:
        raise ConfigError(f"detector plugin {name!r} ({ep.value}) failed to start: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if hasattr(built, "detect"):  # a third-party object: its output is checked and completed like a callable's
        return CallableDetector(built.detect, getattr(built, "name", None) or name)
    return as_detector(built, name)
