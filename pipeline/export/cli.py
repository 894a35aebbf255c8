"""``track-video export``: a run's tracks.json as a training dataset.

    track-video export out/clip.tracks.json --format coco -o dataset [--every N] [--min-area A] [--source clip.mp4]

Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def build_parser(formats: Sequence[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="track-video export",
        description="Write a run's tracks.json as a training dataset (frames + labels).",
        epilog="example: track-video export out/clip.tracks.json --format yolo-seg -o dataset --every 5",
    )
    p.add_argument("tracks", help="the <stem>.tracks.json written by track-video")
    p.add_argument("--format", "-f", required=True, choices=formats, help="dataset format")
    p.add_argument("-o", "--output", help="dataset folder (default: <stem>.<format>/ beside the JSON)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="export every N-th frame (default: 1, all)")
    p.add_argument("--min-area", type=int, default=0, metavar="A",
                   help="leave out objects whose mask has fewer than A pixels (default: 0)")
    p.add_argument("--source", help="the video the tracks were made on (default: source.uri of the JSON)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import PromptrackError
    from . import FORMATS, export_tracks

    args = build_parser(FORMATS).parse_args(argv)
    try:
        result = export_tracks(args.tracks, args.format, args.output, every=args.every, min_area=args.min_area,
                               source=args.source, progress=not args.quiet)
    except PromptrackError as exc:
        print(f"track-video export: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("track-video export: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"{result.format}: {result.index} ({result.frames} frames, {result.objects} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
