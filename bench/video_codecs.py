"""Benchmark: the video writer's H.264 cost and the file source's decoding cost, per frame, for each
codec this machine can use (libx264 / NVENC, FFmpeg's software decoder / decord / CUVID).

Frames are a real clip (``cars_1080p.mp4``, resized for 720p), so the encoder sees real motion and
texture. The encode time is the annotated-video sink's own path with drawing left out
(``AnnotatedVideoSink`` with frames already in BGR): colour conversion to yuv420p, H.264 and mp4
muxing. A codec that does not open here is reported with the reason, never timed.

    python bench/video_codecs.py                       # 720p and 1080p, 60 frames, every codec
    python bench/video_codecs.py --frames 120 --json   # also print the rows as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT.parent / "shared" / "assets"
if not ASSETS.exists():
    ASSETS = Path("/work/shared/assets")
SIZES = {"540p": (960, 540), "720p": (1280, 720), "1080p": (1920, 1080)}


def clip_frames(video: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """`count` RGB frames of `video` at `size` (width, height), looping the clip if it is shorter."""
    import cv2

    from promptrack.pipeline.sources import open_source

    frames = []
    while len(frames) < count:
        for _, frame in open_source(video, max_frames=count - len(frames)):
            if frame.shape[1::-1] != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            frames.append(frame)
    return frames


def time_encoder(codec: str, frames: list[np.ndarray], fps: float, crf: int, folder: Path) -> dict:
    """Seconds per frame of the sink's encoding path (drawing left out), or why the codec cannot run."""
    import cv2

    from promptrack.pipeline.codecs import choose_encoder, codec_exists, encoder_open_error
    from promptrack.pipeline.errors import PromptrackError
    from promptrack.pipeline.sinks import AnnotatedVideoSink

    height, width = frames[0].shape[:2]
    try:
        encoder = choose_encoder(codec, crf, exists=codec_exists, width=width, height=height,
                                 opens=lambda name: encoder_open_error(name, width, height))
    except PromptrackError as exc:
        return {"encoder": codec, "error": str(exc)}

    class Unannotated(AnnotatedVideoSink):  # the writer minus drawing: frames arrive in BGR already
        def annotate(self, frame, detections):
            return frame

    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    path = folder / f"{codec}_{width}x{height}.mp4"
    started, cpu = time.perf_counter(), time.process_time()
    sink = Unannotated(path, fps, width, height, encoder=encoder)
    for index, frame in enumerate(bgr):
        sink.write(index, frame, None)
    sink.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"encoder": encoder.codec, "options": encoder.options, "frames": len(frames),
            "ms_per_frame": round(1000 * seconds / len(frames), 2), "fps": round(len(frames) / seconds, 1),
            "cpu_ms_per_frame": round(1000 * cpu / len(frames), 2), "bytes_per_frame": path.stat().st_size // len(frames)}


def time_decoder(decoder: str, video: Path, count: int) -> dict:
    """Seconds per RGB frame read through ``open_source`` with `decoder` (cpu = decord, pyav = PyAV software)."""
    from promptrack.pipeline.errors import PromptrackError
    from promptrack.pipeline.sources import open_source

    backend = "pyav" if decoder == "pyav" else "auto"
    try:
        started, cpu = time.perf_counter(), time.process_time()
        source = open_source(video, max_frames=count, backend=backend,
                             decoder="cpu" if decoder in ("cpu", "pyav") else decoder)
        read = sum(1 for _ in source)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    except PromptrackError as exc:
        return {"decoder": decoder, "error": str(exc)}
    return {"decoder": f"{decoder} ({type(source).__name__}{', ' + source.decoder if getattr(source, 'decoder', None) else ''})",
            "frames": read, "ms_per_frame": round(1000 * seconds / read, 2), "fps": round(read / seconds, 1),
            "cpu_ms_per_frame": round(1000 * cpu / read, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=ASSETS / "videos" / "cars_1080p.mp4")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--sizes", nargs="+", default=["720p", "1080p"], choices=sorted(SIZES))
    p.add_argument("--encoders", nargs="+", default=["libx264", "h264_nvenc"])
    p.add_argument("--decoders", nargs="+", default=["cpu", "pyav", "cuvid"])
    p.add_argument("--crf", type=int, default=20)
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = p.parse_args()

    import av

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, PyAV {av.__version__}, "
          f"FFmpeg {getattr(av, 'ffmpeg_version_info', '?')}; "
          f"compiled in: h264_nvenc {'h264_nvenc' in av.codecs_available}, h264_cuvid {'h264_cuvid' in av.codecs_available}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            frames = clip_frames(args.video, args.frames, SIZES[size])
            for codec in args.encoders:
                row = {"size": size, **time_encoder(codec, frames, 25.0, args.crf, Path(folder))}
                rows.append(row)
                print(_line(row))
    for decoder in args.decoders:
        row = {"size": "source", **time_decoder(decoder, args.video, args.frames)}
        rows.append(row)
        print(_line(row))
    if args.json:
        print(json.dumps(rows, indent=1))


def _line(row: dict) -> str:
    name = row.get("encoder") or row.get("decoder")
    if "error" in row:
        return f"{row['size']:>6} {name:<40} not available: {row['error']}"
    extra = f", {row['bytes_per_frame']} B/frame" if "bytes_per_frame" in row else ""
    return (f"{row['size']:>6} {name:<40} {row['ms_per_frame']:7.2f} ms/frame wall, {row['cpu_ms_per_frame']:7.2f} "
            f"CPU-ms/frame ({row['fps']} FPS{extra})")


if __name__ == "__main__":
    main()
