"""``track-video export``: tracks.json files as one training dataset.

    track-video export out/clip.tracks.json --format coco -o dataset [--every N] [--min-area A] [--source clip.mp4]
    track-video export out/a.tracks.json out/b.tracks.json --format coco -o dataset --val 0.2

Errors are one line on stderr and exit code 2; nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def build_parser(formats: Sequence[str], mask_formats: Sequence[str] = ("polygon", "rle")) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="track-video export",
        description="Write tracks.json files as one training dataset (frames + labels). A dataset already in "
                    "the output folder is added to: its videos keep their ids and split.",
        epilog="examples: track-video export out/clip.tracks.json --format yolo-seg -o dataset --every 5; "
               "track-video export out/*.tracks.json --format coco -o dataset --val 0.2",
    )
    p.add_argument("tracks", nargs="+", help="the <stem>.tracks.json files written by track-video (one dataset)")
    p.add_argument("--format", "-f", required=True, choices=formats, help="dataset format")
    p.add_argument("-o", "--output", help="dataset folder (default for one file: <stem>.<format>/ beside the JSON)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="export every N-th frame (default: 1, all)")
    p.add_argument("--min-area", type=int, default=0, metavar="A",
                   help="leave out objects whose mask has fewer than A pixels (default: 0)")
    p.add_argument("--mask-format", choices=mask_formats, default="polygon",
                   help="COCO masks: polygon (default: what Detectron2, MMDetection and Ultralytics take without "
                        "settings; exact for pycocotools) or rle (compressed RLE, exact and compact)")
    p.add_argument("--val", type=float, default=0.0, metavar="F",
                   help="fraction of videos in the val split, whole videos (default: 0, all in train)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split by video (default: 0)")
    p.add_argument("--source", help="the video the tracks were made on, for one tracks file "
                                    "(default: source.uri of the JSON)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..errors import PromptrackError
    from . import FORMATS, MASK_FORMATS, export_tracks

    args = build_parser(FORMATS, MASK_FORMATS).parse_args(argv)
    try:
        result = export_tracks(args.tracks if len(args.tracks) > 1 else args.tracks[0], args.format, args.output,
                               every=args.every, min_area=args.min_area, source=args.source,
                               progress=not args.quiet, mask_format=args.mask_format, val=args.val, seed=args.seed)
    except PromptrackError as exc:
        print(f"track-video export: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("track-video export: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"{result.format}: {result.index} ({result.videos} video(s), {result.frames} frames, "
              f"{result.objects} objects{'' if result.files else '; up to date'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
