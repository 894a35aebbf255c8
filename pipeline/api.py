"""``track_video``: the one call from Python (and what the CLI runs).

Example:
    >>> from promptrack.pipeline import track_video
    >>> result = track_video("input.mp4", "person . car", output_dir="out")   # doctest: +SKIP
    >>> result.tracks[0]                                                      # doctest: +SKIP
    {'id': 1, 'label': 'car', 'score': 0.82, 'first_frame': 0, 'last_frame': 167}
    >>> result.frames[10].tracker_id        # supervision.Detections of frame 10  # doctest: +SKIP
    >>> pallet = Exemplar(frame=12, box=(40, 60, 200, 180), label="pallet")  # by example  # doctest: +SKIP
    >>> track_video("input.mp4", "person", exemplars=[pallet], detector__name="sam3")    # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from .config import Config, DetectorConfig, load_config
from .errors import OutputError
from .exemplars import Exemplar, prompt_record, read_frames, resolve
from .loop import DetectorLike, TrackingPipeline
from .models import sam2_spec
from .outputs import open_sinks, video_encoder
from .prompts import parse_prompt
from .quiet import library_output
from .safe_files import FULL_DISK_ERRNOS, output_error
from .signals import stop_on_signals
from .sinks import ResultSink
from .sources import SourceInfo, open_source


@dataclass
class TrackingResult:
    """What a run produced. ``frames[i]`` is frame ``frame_indices[i]`` as supervision.Detections."""

    info: SourceInfo
    prompt: list[str]
    frames: ResultSink
    tracks: list[dict[str, Any]]
    outputs: dict[str, Path] = field(default_factory=dict)  # "video", "json", "mot" -> path
    interrupted: bool = False
    failed_keyframes: int = 0  # keyframes skipped because the detector could not answer (cloud)

    @property
    def frame_indices(self) -> list[int]:
        return self.frames.indices


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder and prove it is writable, before any model loads."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {out}: {exc.strerror or exc}; choose another with -o") from None
    return out


def _model_names(config: Config, detector: object | None = None) -> dict[str, str]:
    """Names of the models for the outputs; a detector passed from Python is named by itself."""
    if detector is not None:
        name = getattr(detector, "name", None) or getattr(detector, "__name__", None) or type(detector).__name__
        return {**_model_names(config), "detector": str(name)}
    from .detectors import detector_model_name  # the registry names each detector's weights

    tracker = Path(sam2_spec(config.tracker.sam2).repo_id).name if config.tracker.sam2 in (
        "tiny", "small", "base_plus", "large") else Path(config.tracker.sam2).name
    return {"detector": detector_model_name(config.detector), "tracker": tracker}


def as_config(config: Config | str | None, overrides: Sequence[str], options: dict) -> Config:
    """A :class:`Config` from a preset name or YAML path (None: the default preset) with overrides."""
    if not isinstance(config, Config):
        return load_config(config or "default", overrides, **options)
    if overrides or options:
        raise ValueError("pass overrides with a preset name, not with a Config object")
    return config


def with_detector(config: Config, detector: Any) -> tuple[Config, Any]:
    """`config` with the detector `detector` names (a name, folder, .onnx path or DetectorConfig),
    and None; or `config` unchanged and `detector` itself (a Detector or callable, or None)."""
    from .detectors import detector_config

    chosen = detector_config(detector, config.detector) if detector is not None else None
    return (replace(config, detector=chosen), None) if chosen is not None else (config, detector)


def track_video(
    source: str | os.PathLike,
    prompt: str | Sequence[str] | None,
    output_dir: str | os.PathLike | None = "out",
    config: Config | str | None = None,
    overrides: Sequence[str] = (),
    detector: DetectorLike | str | os.PathLike | DetectorConfig | None = None,
    progress: bool = True,
    keep_frames: bool = True,
    exemplars: Sequence[Exemplar] = (),
    **options: Any,
) -> TrackingResult:
    """Track every object matching `prompt` in a video file or frame folder.

    Args:
        source: video file (mp4, mov, mkv, avi, ...) or folder of frames.
        prompt: "person . car", "person, car" or a list of phrases; None or "" with exemplars only.
        output_dir: where ``<stem>.annotated.mp4`` / ``.tracks.json`` / ``.mot.txt`` go; None writes nothing.
        config: a :class:`Config`, a preset name or a YAML path (default preset when None).
        overrides: dotted ``key=value`` strings, e.g. ``["tracker.image_size=512"]``.
        detector: a detector name (``"yolox"``), a model folder, an ``.onnx`` path or a ``DetectorConfig``
            (as ``--detector``), or a Detector or any callable ``(frame, phrases) -> supervision.Detections``.
        keep_frames: keep each frame's detections (masks RLE-compressed) in ``result.frames``.
        exemplars: prompts by example (:class:`~promptrack.pipeline.exemplars.Exemplar`): boxes on frames of
            this input, or images; detectors that take them: owlv2, sam3, dino-x, t-rex-2.
        options: config values by dotted name with ``__``, e.g. ``detect_every=5``, ``tracker__sam2="small"``.
    """
    exemplars = list(exemplars)
    phrases = parse_prompt(prompt) if prompt or not exemplars else []
    config, detector = with_detector(as_config(config, overrides, options), detector)
    if detector is None:  # a prompt the configured detector cannot serve fails before any model loads
        from .detectors import check_prompt
        from .detectors.registry import check_exemplars

        check_exemplars(config.detector, exemplars)
        check_prompt(config.detector, phrases)
    elif exemplars:
        from .detectors import as_detector
        from .detectors.base import ExemplarDetector

        if not isinstance(as_detector(detector), ExemplarDetector):
            from .errors import PromptError

            raise PromptError("this detector does not take exemplars (it has no detect_prompt(frame, prompt))")
    stream = open_source(source, start=config.start, end=config.end, max_frames=config.max_frames,
                         decoder=config.input.video_decoder)
    # Exemplar frames are read once now (exemplars.read_frames), so look-alikes are found from the first keyframe on.
    visual = resolve(exemplars, phrases, read=lambda frames: read_frames(
        source, frames, stream.info.frames, config.input.video_decoder))
    out = prepare_output_dir(output_dir) if output_dir is not None else None
    if out is not None and config.output.video:
        video_encoder(config, stream.info)  # an encoder named that cannot open fails before the models load

    with library_output(progress):  # other libraries' bars and warnings: none with progress=False
        return _run(config, stream, out, phrases, exemplars, visual, detector, progress, keep_frames)


def _run(config: Config, stream: Any, out: Path | None, phrases: list[str], exemplars: list, visual: Any,
         detector: DetectorLike | None, progress: bool, keep_frames: bool) -> TrackingResult:
    pipeline = TrackingPipeline(config, detector=detector)
    results = ResultSink()
    info = stream.info
    outputs = open_sinks(config, out, info, prompt_record(phrases, exemplars), _model_names(config, detector),
                         extra=[results] if keep_frames else [])
    try:
        stop = threading.Event()
        with stop_on_signals(stop):
            try:
                pipeline.run(stream, visual, outputs.sinks, progress=progress, stop=stop)
            except KeyboardInterrupt:
                stop.set()
        interrupted = stop.is_set()
    except OutputError:
        # A write failed (a full disk): this run's files are dropped, earlier ones of the same name stay.
        outputs.discard()
        raise
    except OSError as exc:
        if exc.errno not in FULL_DISK_ERRNOS or out is None:
            raise
        outputs.discard()  # a sink's write hit a full disk: as above, in one line
        raise output_error(out, exc) from None
    finally:
        # Also after a source that fails mid-file: the outputs cover the frames finished so far.
        outputs.close()
    # The track table is its own sink: it does not depend on which outputs were kept.
    return TrackingResult(info=info, prompt=list(visual.labels), frames=results, tracks=outputs.table.table(),
                          outputs=outputs.paths, interrupted=interrupted, failed_keyframes=pipeline.failed_keyframes)
