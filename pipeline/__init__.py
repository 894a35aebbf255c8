"""promptrack.pipeline: everything from pixels in to files out.

Public API:
    track_video(source, prompt, output_dir=..., ...) -> TrackingResult
    TrackingPipeline(config, detector=None, tracker=None).run(source, phrases, sinks)
    load_config(preset, overrides, **values) -> Config
    LiveSession(url, prompt=..., output_dir=...): iterate results of a live stream; set_prompt(), stop()
"""

from .api import TrackingResult, track_video
from .config import Config, load_config
from .errors import PromptrackError
from .live import LiveResult, LiveSession
from .loop import TrackingPipeline
from .prompts import parse_prompt
from .sources import open_source

__all__ = ["Config", "LiveResult", "LiveSession", "PromptrackError", "TrackingPipeline", "TrackingResult",
           "load_config", "open_source", "parse_prompt", "track_video"]
