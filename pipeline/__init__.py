"""promptrack.pipeline: everything from pixels in to files out.

Public API:
    track_video(source, prompt, output_dir=..., ...) -> TrackingResult
    TrackingPipeline(config, detector=None, tracker=None).run(source, phrases, sinks)
    load_config(preset, overrides, **values) -> Config
    LiveSession(url, prompt=..., output_dir=...): iterate results of a live stream; set_prompt(), stop()
    track_videos(paths, prompt, output_dir=..., workers=...) -> BatchSummary   (many videos on Ray)
    export_tracks(json_path, format, output_dir) -> ExportResult               (COCO, YOLO-seg, YTVIS, CVAT, MOT)

The names are imported on first use (PEP 562), so ``track-video --help`` and light modules such
as ``promptrack.pipeline.errors`` never pay for torch, SAM 2 or supervision.

Example:
    >>> from promptrack.pipeline import load_config
    >>> load_config("fast").tracker.image_size
    512
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module of this package that defines it
_EXPORTS = {
    "BatchSummary": "batch",
    "Config": "config",
    "Exemplar": "exemplars",
    "ExportResult": "export",
    "LiveResult": "live",
    "LiveSession": "live",
    "PromptrackError": "errors",
    "TrackingPipeline": "loop",
    "TrackingResult": "api",
    "load_config": "config",
    "open_source": "sources",
    "parse_prompt": "prompts",
    "export_tracks": "export",
    "track_video": "api",
    "track_videos": "batch",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .api import TrackingResult, track_video
    from .batch import BatchSummary, track_videos
    from .config import Config, load_config
    from .errors import PromptrackError
    from .exemplars import Exemplar
    from .export import ExportResult, export_tracks
    from .live import LiveResult, LiveSession
    from .loop import TrackingPipeline
    from .prompts import parse_prompt
    from .sources import open_source


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
