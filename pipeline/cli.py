"""The ``track-video`` command.

    track-video INPUT --prompt "person . car" -o OUT [options]
    track-video batch "videos/*.mp4" --prompt "person" -o OUT           (pipeline/batch/cli.py)
    track-video export OUT/STEM.tracks.json --format coco -o DATASET   (pipeline/export/cli.py)

Errors for users are one line on stderr and exit code 2; Ctrl-C / SIGTERM / SIGHUP exit 130
after closing the outputs (valid up to the last finished frame), also while models load. A
reader of stdout that goes away early (``| head -1``) ends the command quietly (exit 141, as a
shell tool killed by SIGPIPE).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .errors import display_path
from .logs import configure_logging
from .models import SAM2_SIZES
from .signals import interrupt_on_signals


def build_parser(streams: bool = True) -> argparse.ArgumentParser:
    """track-video's parser; ``streams=False``: its help without live streams (``track-video batch`` takes none)."""
    p = argparse.ArgumentParser(
        prog="track-video",
        description="Segment and track every object matching a text prompt; ids stay the same for the whole video.",
        epilog='example: track-video clip.mp4 --prompt "person . car" -o out --config fast\n'
               'subcommands: track-video batch --help (many videos on Ray), '
               'track-video export --help (tracks.json as a dataset)',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # input and --prompt are required, except with --list-detectors (checked in run()).
    p.add_argument("input", nargs="?", help="video file (mp4, mov, mkv, avi), a folder of frames (jpg/png), or a live "
                   "stream: rtsp://host:8554/cam, camera:0 (/dev/video0), any URL FFmpeg opens (rtmp, http, udp)"
                   if streams else "video file (mp4, mov, mkv, avi), a folder of frames (jpg/png) or of videos, a quoted "
                   "glob or a manifest (.txt, .csv); not a live stream (run track-video on each stream)")
    p.add_argument("--prompt", "-p", help='what to track: "person . car", "person, car" or "person.car."')
    p.add_argument("--exemplar", action="append", default=[], metavar="[NAME=][-]FRAME:X1,Y1,X2,Y2",
                   help="track everything that looks like this box on frame FRAME of the input (source pixels); "
                   "NAME is the tracks' label; a leading - marks a negative example (sam3); repeatable; "
                   "detectors: owlv2, sam3, dino-x, t-rex-2")
    p.add_argument("--exemplar-image", action="append", default=[], metavar="IMAGE[=NAME]",
                   help="track everything that looks like this image (a crop of the thing); repeatable")
    p.add_argument("-o", "--output", default="out", help="output folder (default: out)")
    p.add_argument("--config", help="preset from configs/ (default, fast, accurate, live) or a YAML path "
                   + ("(default: default for files, live for streams)" if streams else "(default: default)"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set tracker.image_size=512 (repeatable)")
    p.add_argument("--list-detectors", action="store_true",
                   help="print every detector name and what it needs, then exit")
    p.add_argument("--detector", help="grounding-dino (open vocabulary, default), yolox (COCO classes), "
                   "sam3 (concept masks), omdet-turbo (fast open vocabulary), owlv2, dino-x, ... "
                   "(see --list-detectors); "
                   "a model folder or .onnx path also works")
    p.add_argument("--sam2", help=f"SAM 2.1 size ({', '.join(SAM2_SIZES)}) or a checkpoint path")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where models run (default: auto)")
    p.add_argument("--detect-every", type=int, metavar="N", help="run the detector every N frames")
    p.add_argument("--box-threshold", type=float, help="minimum detector box score")
    p.add_argument("--text-threshold", type=float, help="minimum phrase score (Grounding DINO)")
    p.add_argument("--start", type=int, help="first frame to process (0-based)")
    p.add_argument("--end", type=int, help="stop before this frame")
    p.add_argument("--max-frames", type=int, help="process at most this many frames")
    p.add_argument("--mot", action="store_true", help="also write <stem>.mot.txt (MOTChallenge)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.add_argument("--export", action="append", default=[], metavar="FORMAT",
                   help="also write the tracks as a dataset in <out>/<stem>.<FORMAT>/: coco, yolo-seg, ytvis, "
                   "cvat-video, mot, mot-gt (repeatable; batch: ONE dataset of all videos in <out>/dataset.<FORMAT>/, "
                   "cvat-video one per video; more options: track-video export --help)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    return p


def _detector_values(value: str | None) -> dict:
    """Config values for --detector: a name, or a weights file / model folder routed by the detector registry."""
    from .detectors.registry import cli_values

    return cli_values(value)


def config_values(args: argparse.Namespace) -> dict:
    """The config values of track-video's named options, as ``load_config`` keywords (None: unset).

    One place for the mapping: ``track-video`` and ``track-video batch`` both use it."""
    return dict(
        device=args.device, detect_every=args.detect_every, start=args.start, end=args.end,
        max_frames=args.max_frames, tracker__sam2=args.sam2, detector__box_threshold=args.box_threshold,
        detector__text_threshold=args.text_threshold, output__mot=True if args.mot else None,
        output__video=False if args.no_video else None, output__json=True if args.export else None,
        **_detector_values(args.detector),
    )


# Subcommands, each a module with `main(argv) -> int`, imported only when used (keeps --help fast).
SUBCOMMANDS = {
    "batch": ".batch.cli",  # many videos on Ray
    "export": ".export.cli",  # a tracks.json as a training dataset
}


def run(argv: Sequence[str] | None = None) -> int:
    """The command; returns its exit code. Any stop signal until the outputs are open is a clean
    ``KeyboardInterrupt`` (one line, exit 130), not a traceback or a silent kill."""
    try:
        with interrupt_on_signals():
            return _run(argv)
    except KeyboardInterrupt:
        print("track-video: interrupted", file=sys.stderr)
        return 130


def _run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:  # track-video batch ... / track-video export ...
        import importlib

        return importlib.import_module(SUBCOMMANDS[argv[0]], __package__).main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_detectors:
        return list_detectors_command()
    by_example = bool(args.exemplar or args.exemplar_image)
    prompt = args.prompt if args.prompt is not None or not by_example else ""  # exemplars alone: no phrase
    missing = [name for name, value in (("input", args.input), ("--prompt", prompt)) if value is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)} (or --exemplar)")
    configure_logging("track-video")
    if args.quiet:  # also silence the hub's and transformers' own progress bars
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    # Imports after parsing, so --help is instant and never touches torch.
    from .api import track_video
    from .config import load_config
    from .errors import ConfigError, PromptrackError
    from .live.capture import is_live_uri
    from .models import quiet_model_loading

    quiet_model_loading()  # cached weights load silently; a first download keeps the hub's bar

    live = is_live_uri(args.input)  # rtsp://, camera:0, ...: the live loop (pipeline/live/)
    try:
        from .exemplars import Exemplar

        exemplars = [Exemplar.parse(text) for text in args.exemplar]
        exemplars += [Exemplar.parse_image(text) for text in args.exemplar_image]
        if args.export:
            from .export import exporter_for

            for name in args.export:  # a bad format fails before the run, not after it
                exporter_for(name)
            if live:
                raise ConfigError("--export works on video files and frame folders, not on live streams")
        config = load_config(args.config or ("live" if live else "default"), args.overrides, **config_values(args))
        if live:
            from .live.command import run_live

            return run_live(args.input, args.prompt, args.output, config, quiet=args.quiet, exemplars=exemplars)
        result = track_video(args.input, args.prompt, args.output, config=config, progress=not args.quiet,
                             keep_frames=False, exemplars=exemplars)
        if args.export and not result.interrupted:
            from .export import default_output_dir, export_tracks

            for name in args.export:
                done = export_tracks(result.outputs["json"], name, default_output_dir(result.outputs["json"], name),
                                     source=args.input, progress=not args.quiet)
                result.outputs[name] = done.index
    except PromptrackError as exc:
        print(f"track-video: error: {display_path(exc)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if not out_of_memory(exc):
            raise
        print("track-video: error: out of GPU memory: use a smaller model or size (--sam2 tiny --config fast, or "
              "--set tracker.image_size=512), fewer objects (--box-threshold 0.4), or --device cpu", file=sys.stderr)
        return 2
    if result.failed_keyframes:
        print(f"track-video: warning: {result.failed_keyframes} keyframe detection(s) failed and were skipped; "
              "tracking went on with the tracks it had", file=sys.stderr)
    if result.interrupted:
        print(f"track-video: interrupted; outputs cover the frames finished: "
              f"{', '.join(display_path(p) for p in result.outputs.values())}", file=sys.stderr)
        return 130
    if not args.quiet:
        for kind, path in result.outputs.items():
            print(f"{kind}: {display_path(path)}")
        print(tracks_line(result.tracks))
    return 0


def tracks_line(tracks: Sequence[dict], shown: int = 20) -> str:
    """The summary's last line: ``3 tracks: #1 person, #2 person, #3 car`` (``0 tracks`` alone).

    >>> tracks_line([{"id": 1, "label": "car"}]), tracks_line([])
    ('1 track: #1 car', '0 tracks')
    """
    count = f"{len(tracks)} track{'' if len(tracks) == 1 else 's'}"
    if not tracks:
        return count
    more = ", ..." if len(tracks) > shown else ""
    return f"{count}: " + ", ".join(f"#{t['id']} {t['label']}" for t in tracks[:shown]) + more


def out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is torch's out-of-memory error (CUDA or another accelerator); torch only if loaded."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.OutOfMemoryError)


def list_detectors_command() -> int:
    """``track-video --list-detectors``: one detector a line, with what it needs."""
    from .detectors import list_detectors

    infos = list_detectors()
    width = max(len(d.name) for d in infos)
    for d in infos:
        print(f"{d.name:<{width}}  needs {d.needs}; {d.about}")
    return 0


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # stdout's reader went away (| head): nothing more to say to it, and Python must not
        # complain when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    sys.exit(code)


if __name__ == "__main__":
    main()
