"""The sinks a live run opens: ``<name>.tracks.jsonl``, ``<name>.NNN.mp4`` segments, the MJPEG view.

:class:`LiveLayout` is the live side of :func:`~promptrack.pipeline.outputs.open_sinks`' layout:
the file layout writes one JSON and one video; a live run, which may go on for days, writes JSON
Lines and video segments, and serves the annotated frames when a view is open.

Example:
    >>> layout = LiveLayout(stamps=source.stamps.get, clock=lambda i: source.stamps[i].mono)   # doctest: +SKIP
    >>> outputs = open_sinks(config, Path("out"), source.info, ["person"], {}, name="cam", layout=layout)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from ..config import Config
from ..outputs import Outputs, video_encoder
from ..sources import SourceInfo
from .sinks import JsonLinesSink, MjpegViewSink, SegmentedVideoSink


@dataclass
class LiveLayout:
    """What live sinks need from the live source: per-frame stamps, a capture clock, the view."""

    stamps: Callable[[int], Any]  # index -> FrameStamp | None
    clock: Callable[[int], float]  # index -> seconds (monotonic at capture), for segment cuts
    view: Any = None  # an MjpegServer to publish annotated JPEGs to, or None
    # Live outputs are read while the run goes on and nothing is held back: the associator's ids as they are.
    renumbers_ids: ClassVar[bool] = False

    def open(self, outputs: Outputs, config: Config, out: Path | None, name: str, info: SourceInfo,
             phrases: Sequence[str], models: dict) -> None:
        o = config.output
        if self.view is not None:  # served with or without files
            outputs.add(MjpegViewSink(self.view, config.live.view_fps, config.live.view_quality, o.mask_opacity))
        if out is None:
            return
        if o.json:
            path = out / f"{name}.tracks.jsonl"
            outputs.add(JsonLinesSink(path, info.fps, self.stamps), "jsonl", path)
        if o.video:
            outputs.add(SegmentedVideoSink(out, name, info.fps, info.width, info.height, config.live.segment_seconds,
                                           clock=self.clock, crf=o.crf, mask_opacity=o.mask_opacity,
                                           keep=config.live.keep_segments, encoder=video_encoder(config, info)),
                        "video", out / f"{name}.NNN.mp4")
