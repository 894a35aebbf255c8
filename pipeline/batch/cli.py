"""``track-video batch``: many videos on Ray, with every ``track-video`` option applied to each.

    track-video batch "videos/*.mp4" --prompt "person . car" -o out [--workers 2] [--ray-address auto]
    track-video batch manifest.csv -o out        # CSV with path and prompt columns

The parser is ``track-video``'s own (:func:`~.cli.build_parser`) plus the batch options, so the
two cannot drift apart. Exit codes: 0 when every video is done (or was already), 1 when some
failed (listed), 2 for bad arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from ..cli import build_parser, config_values  # noqa: F401  (config_values: one mapping for both commands)

# track-video's options that are not config values: batch reads them itself.
RUN_OPTIONS = {"input", "prompt", "output", "quiet", "list_detectors", "config", "overrides", "export", "exemplar",
               "exemplar_image"}


def build_batch_parser() -> argparse.ArgumentParser:
    p = build_parser(streams=False)  # batch refuses live streams: its help does not offer them
    p.prog = "track-video batch"
    p.usage = ("track-video batch INPUT [INPUT ...] --prompt PROMPT -o OUT [--workers N] [--gpus-per-worker G] "
               "[--ray-address ADDRESS] [track-video options]")
    p.description = ("Track many videos on Ray workers that each load the models once. INPUT: video files, "
                     "folders of videos, quoted globs (\"videos/*.mp4\") or a manifest (.txt: one path a line; "
                     ".csv: a path column and an optional prompt column). Outputs are named as for one video "
                     "(OUT/<stem>.tracks.json, OUT/<stem>.annotated.mp4) and OUT/batch_summary.json lists every "
                     "video. A video whose outputs are complete is skipped on a re-run. Every track-video option "
                     "below applies to each video.")
    p.epilog = ('example: track-video batch "videos/*.mp4" --prompt "person . car" -o out --workers 2; on a '
                "cluster started with `ray start --head`: add --ray-address auto")
    p.add_argument("more_inputs", nargs="*", metavar="INPUT", help="more videos, folders, globs or manifests")
    group = p.add_argument_group("batch (Ray)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="Ray workers, each with its own models (default: one per GPU, else one per 4 CPUs)")
    group.add_argument("--gpus-per-worker", type=float, metavar="G",
                       help="GPU share per worker, e.g. 0.5 runs two workers on each GPU "
                       "(default: 1 when the cluster has GPUs, else 0: CPU workers)")
    group.add_argument("--cpus-per-worker", type=float, metavar="C",
                       help="CPUs reserved per worker (default: the cluster's CPUs shared out, at most 4 per GPU worker)")
    group.add_argument("--ray-address", metavar="ADDRESS",
                       help="join a running Ray cluster: auto (this machine's `ray start --head`) or "
                       "ray://HOST:10001 (default: start a local Ray for this job)")
    group.add_argument("--max-attempts", type=int, default=3, metavar="N",
                       help="runs of a video whose worker dies (killed, out of memory) before it is reported "
                       "failed (default: 3)")
    group.add_argument("--force", action="store_true", help="track every video again, even those already complete")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``track-video batch`` with `argv` (the arguments after ``batch``); returns the exit code."""
    parser = build_batch_parser()
    args = parser.parse_intermixed_args(argv)
    if args.list_detectors:
        from ..cli import list_detectors_command

        return list_detectors_command()
    inputs = [i for i in [args.input, *args.more_inputs] if i is not None]
    if not inputs:
        parser.error("give the videos to track: files, folders, a quoted glob or a manifest")
    if args.quiet:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    from .run import track_videos
    from ..config import load_config
    from ..errors import PromptrackError

    try:
        if args.exemplar or args.exemplar_image:  # a frame number names a frame of one video, not of many
            from ..errors import PromptError

            raise PromptError("track-video batch takes text prompts only: run track-video on each video with "
                              "--exemplar")
        if args.export:
            from ..export import exporter_for

            for name in args.export:  # a bad format fails before any video runs
                exporter_for(name)
        config = load_config(args.config or "default", args.overrides, **config_values(args))
        summary = track_videos(inputs, args.prompt, args.output, workers=args.workers, config=config,
                               gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
                               ray_address=args.ray_address, max_attempts=args.max_attempts, force=args.force,
                               progress=not args.quiet)
    except PromptrackError as exc:
        print(f"track-video batch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # before the workers started (while planning or starting Ray)
        print("track-video batch: interrupted", file=sys.stderr)
        return 130
    if not args.quiet:
        print(format_table(summary))
        print(f"summary: {os.path.join(summary.output_dir, 'batch_summary.json')}")
    try:
        export_datasets(summary, args.export or [], quiet=args.quiet)
    except PromptrackError as exc:
        print(f"track-video batch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    for video in summary.failed:
        print(f"track-video batch: failed: {video.source}: {video.error}", file=sys.stderr)
    if summary.interrupted:
        print("track-video batch: interrupted; finished videos are complete, the others run on the next call",
              file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


def export_datasets(summary, formats: Sequence[str], quiet: bool = False) -> None:
    """``--export FORMAT`` over every finished video (done now or complete from an earlier run).

    Formats that hold many videos (coco, yolo-seg, ytvis, mot, mot-gt) make ONE dataset,
    ``OUT/dataset.<format>/``: categories by name, unique ids, resumed when a later run adds videos
    (only what is new is exported). Formats that hold one video (cvat-video) make
    ``OUT/<stem>.<format>/`` per video, skipped when already there. Exports are written
    atomically by :func:`~.export.export_tracks`."""
    if not formats:
        return
    from pathlib import Path

    from ..export import default_output_dir, exporter_for, export_tracks

    finished = [v for v in summary.videos if v.status in ("done", "skipped")]
    if not finished:
        return
    out = Path(summary.output_dir)
    for name in formats:
        exporter = exporter_for(name)
        if exporter.merges:
            done = export_tracks([out / f"{v.stem}.tracks.json" for v in finished], name, out / f"dataset.{name}",
                                 source=[v.source for v in finished], progress=not quiet)
            for video in finished:
                video.outputs[name] = str(done.index)
            continue
        for video in finished:
            tracks = out / f"{video.stem}.tracks.json"
            folder = default_output_dir(tracks, name)
            if (folder / exporter.index.format(stem=video.stem, split="train")).exists():
                continue
            done = export_tracks(tracks, name, folder, source=video.source, progress=not quiet)
            video.outputs[name] = str(done.index)


def format_table(summary) -> str:
    """One row per video: stem, status, frames, tracks, FPS and the error line, then the totals."""
    rows = [("video", "status", "frames", "tracks", "FPS", "error")]
    for v in summary.videos:
        rows.append((v.stem, v.status, str(v.frames) if v.status in ("done", "skipped") else "-",
                     str(v.tracks) if v.status in ("done", "skipped") else "-",
                     f"{v.fps:.1f}" if v.fps is not None else "-", (v.error or "")[:100]))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) if i in (0, 1) else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             + ("  " + r[5] if r[5] else "") for r in rows]
    counts = ", ".join(f"{n} {status}" for status, n in summary.counts().items() if n)
    lines.append(f"{len(summary.videos)} videos: {counts}; {summary.frames_per_second():.1f} frames/s over "
                 f"{summary.seconds:.0f} s with {summary.workers} worker(s)")
    return "\n".join(lines)
