"""``open_sinks``: the one place that decides which sinks a run writes, for files and live streams.

A file run writes ``<stem>.tracks.json``, ``<stem>.annotated.mp4`` and ``<stem>.mot.txt``
(:class:`FileLayout`); a live run passes its own layout (``live/outputs.py``: JSON Lines, video
segments, the MJPEG view), so this module knows nothing of live mode. Both always keep the track table
(:class:`~promptrack.pipeline.sinks.TrackTable`), whatever else is written, so
``result.tracks`` never depends on where frames are kept. A file run's sinks see written ids
numbered 1, 2, 3, ... in order of first appearance (``pipeline/numbering.py``); a layout says
whether it wants them (``renumbers_ids``: live keeps the associator's).

Example:
    >>> outputs = open_sinks(config, Path("out"), info, ["car"], models={})   # doctest: +SKIP
    >>> pipeline.run(source, ["car"], outputs.sinks)                           # doctest: +SKIP
    >>> outputs.close(); outputs.paths["json"], outputs.table.table()          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from .codecs import VideoEncoder, pick_encoder
from .config import Config, config_to_dict
from .numbering import WrittenIds
from .safe_files import close_all, discard_all
from .signals import shielded
from .sinks import AnnotatedVideoSink, JsonSink, MotSink, TrackTable
from .sources import SourceInfo


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

    def add(self, sink: Any, kind: str | None = None, path: Path | None = None) -> None:
        """Append `sink`; a file sink names its `kind` ("json", "video", ...) and the `path` it writes."""
        self.sinks.append(sink)
        if kind is not None:
            self.paths[kind] = path
            self.files[kind] = sink


class SinkLayout(Protocol):
    """Which sinks a kind of run opens besides the MOT text: files (below) or live (``live/outputs.py``)."""

    #: Every sink sees ids renumbered 1..N in order of first appearance (:class:`WrittenIds`).
    renumbers_ids: bool

    def open(self, outputs: Outputs, config: Config, out: Path | None, name: str, info: SourceInfo,
             phrases: Sequence[str], models: dict) -> None:
        """Add this layout's sinks to `outputs` (`out` None: no files, but a view may still be served)."""


class FileLayout:
    """A file run: ``<name>.tracks.json`` and ``<name>.annotated.mp4``, ids written 1..N."""

    renumbers_ids = True

    def open(self, outputs: Outputs, config: Config, out: Path | None, name: str, info: SourceInfo,
             phrases: Sequence[str], models: dict) -> None:
        if out is None:
            return
        o = config.output
        if o.json:
            path = out / f"{name}.tracks.json"
            outputs.add(JsonSink(path, info, phrases, models, config_to_dict(config)), "json", path)
        if o.video:
            path = out / f"{name}.annotated.mp4"
            outputs.add(AnnotatedVideoSink(path, info.fps, info.width, info.height, o.crf, o.mask_opacity,
                                           encoder=video_encoder(config, info)), "video", path)


def open_sinks(config: Config, out: Path | None, info: SourceInfo, phrases: Sequence[str], models: dict,
               name: str | None = None, extra: Sequence = (), layout: SinkLayout | None = None) -> Outputs:
    """Open the sinks `config.output` asks for in folder `out` (None: no files), named `name`.

    `extra` sinks (e.g. a :class:`~promptrack.pipeline.sinks.ResultSink`) come first, after the
    renumbering of ids where the layout asks for it (:class:`WrittenIds`, ahead of every sink). `layout`
    picks the files (default :class:`FileLayout`; live runs pass
    :class:`~promptrack.pipeline.live.outputs.LiveLayout`). If a sink cannot be opened, those
    already open are closed and the error is raised.
    """
    layout = layout or FileLayout()
    outputs = Outputs()
    if layout.renumbers_ids:
        outputs.add(WrittenIds())
    outputs.add(outputs.table)
    for sink in extra:
        outputs.add(sink)
    name = name or info.stem
    try:
        layout.open(outputs, config, out, name, info, phrases, models)
        if out is not None and config.output.mot:
            path = out / f"{name}.mot.txt"
            outputs.add(MotSink(path), "mot", path)
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
