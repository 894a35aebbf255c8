"""``open_sinks``: the one place that decides which sinks a run writes, for files and live streams.

A file run writes ``<stem>.tracks.json``, ``<stem>.annotated.mp4`` and ``<stem>.mot.txt``; a
live run writes ``<name>.tracks.jsonl``, ``<name>.NNN.mp4`` segments and ``<name>.mot.txt``,
plus the MJPEG view when one is served. Both always keep the track table
(:class:`~promptrack.pipeline.sinks.TrackTable`), whatever else is written, so
``result.tracks`` never depends on where frames are kept.

Example:
    >>> outputs = open_sinks(config, Path("out"), info, ["car"], models={})   # doctest: +SKIP
    >>> pipeline.run(source, ["car"], outputs.sinks)                           # doctest: +SKIP
    >>> outputs.close(); outputs.paths["json"], outputs.table.table()          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .codecs import VideoEncoder, pick_encoder
from .config import Config, config_to_dict
from .safe_files import close_all, discard_all
from .signals import shielded
from .sinks import AnnotatedVideoSink, JsonSink, MotSink, TrackTable
from .sources import SourceInfo


@dataclass
class LiveOutputs:
    """What live sinks need from the live source: per-frame stamps and a capture clock."""

    stamps: Callable[[int], Any]  # index -> FrameStamp | None
    clock: Callable[[int], float]  # index -> seconds (monotonic at capture), for segment cuts
    view: Any = None  # an MjpegServer to publish annotated JPEGs to, or None


#: Kinds of output closed last, and only when every other output closed: a JSON in place means
#: its video (and MOT text) is complete.
CLOSED_LAST = ("json", "jsonl")


@dataclass
class Outputs:
    """The sinks of one run (in writing order), their paths, and the track table among them.

    ``files`` maps each kind of file ("json", "video", "mot", "jsonl") to the sink writing it.
    """

    sinks: list = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    table: TrackTable = field(default_factory=TrackTable)
    files: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Close every sink, the JSON last (signals held back meanwhile), then raise the first failure.

        The video, MOT text and other sinks close first, each even when another fails; the JSON
        then takes its final name only if they all closed, else it is discarded: so a
        ``<stem>.tracks.json`` in place means its video is complete.
        """
        last = [self.files[kind] for kind in CLOSED_LAST if kind in self.files]
        first = [sink for sink in self.sinks if not any(sink is other for other in last)]
        with shielded():
            try:
                close_all(first)
            except BaseException:
                discard_all(last)
                raise
            close_all(last)

    def discard(self) -> None:
        """Drop this run's unfinished files (a write failed); earlier outputs of the same names stay."""
        discard_all(self.sinks)


def _add(outputs: Outputs, kind: str, path: Path, sink: Any) -> None:
    outputs.paths[kind] = path
    outputs.files[kind] = sink
    outputs.sinks.append(sink)


def open_sinks(config: Config, out: Path | None, info: SourceInfo, phrases: Sequence[str], models: dict,
               name: str | None = None, extra: Sequence = (), live: LiveOutputs | None = None) -> Outputs:
    """Open the sinks `config.output` asks for in folder `out` (None: no files), named `name`.

    `extra` sinks (e.g. a :class:`~promptrack.pipeline.sinks.ResultSink`) come first. With `live`,
    the live layout is written (JSON Lines, video segments, MJPEG view). If a sink cannot be
    opened, those already open are closed and the error is raised.
    """
    outputs = Outputs()
    outputs.sinks.append(outputs.table)
    outputs.sinks.extend(extra)
    name = name or info.stem
    o = config.output
    try:
        if live is not None and live.view is not None:
            from .live.sinks import MjpegViewSink

            outputs.sinks.append(MjpegViewSink(live.view, config.live.view_fps, config.live.view_quality,
                                               o.mask_opacity))
        if out is None:
            return outputs
        if live is None:
            if o.json:
                path = out / f"{name}.tracks.json"
                _add(outputs, "json", path, JsonSink(path, info, phrases, models, config_to_dict(config)))
            if o.video:
                path = out / f"{name}.annotated.mp4"
                _add(outputs, "video", path, AnnotatedVideoSink(path, info.fps, info.width, info.height, o.crf,
                                                                o.mask_opacity, encoder=video_encoder(config, info)))
        else:
            from .live.sinks import JsonLinesSink, SegmentedVideoSink

            if o.json:
                path = out / f"{name}.tracks.jsonl"
                _add(outputs, "jsonl", path, JsonLinesSink(path, info.fps, live.stamps))
            if o.video:
                _add(outputs, "video", out / f"{name}.NNN.mp4",
                     SegmentedVideoSink(out, name, info.fps, info.width, info.height, config.live.segment_seconds,
                                        clock=live.clock, crf=o.crf, mask_opacity=o.mask_opacity,
                                        keep=config.live.keep_segments, encoder=video_encoder(config, info)))
        if o.mot:
            path = out / f"{name}.mot.txt"
            _add(outputs, "mot", path, MotSink(path))
    except BaseException:
        try:  # nothing of a run that could not start takes a final name (an earlier JSON stays whole)
            outputs.discard()
            outputs.close()
        except Exception:  # noqa: BLE001 - the opening error is the one to report
            pass
        raise
    return outputs


def video_encoder(config: Config, info: SourceInfo) -> VideoEncoder:
    """``output.video_encoder`` resolved for frames of this size (NVENC where it opens, else libx264);
    :class:`~promptrack.pipeline.errors.CodecError` when the encoder named cannot open. Cached: a
    caller may ask early (before loading models) at no cost to ``open_sinks``."""
    return pick_encoder(config.output.video_encoder, config.output.crf, info.width, info.height)
