"""Publish a synthetic video to an RTSP server in real time, looping, with PyAV/libx264.

    python tests/rtsp_publisher.py rtsp://127.0.0.1:15545/x --fps 25 [--frames N]

Two coloured boxes move over a noisy background (a red one left to right, a green one right to
left), so a colour detector finds them on every frame. Frame numbers increase forever (the
loop only repeats the picture). Exits when the server goes away or after --frames frames; on
SIGTERM it tears the RTSP session down first (SIGKILL does not, like a crash).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from fractions import Fraction

import av
import numpy as np


def frame_at(t: int, background: np.ndarray) -> np.ndarray:
    height, width = background.shape[:2]
    frame = background.copy()
    x = 10 + (3 * t) % (width - 50)
    frame[30:70, x:x + 30] = (220, 40, 40)
    x2 = width - 50 - (2 * t) % (width - 60)
    frame[60:100, x2:x2 + 35] = (40, 200, 60)
    return frame


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: never)")
    parser.add_argument("--size", default="160x120")
    args = parser.parse_args()
    # SIGTERM ends like the end of the video: the RTSP session is torn down (the relay frees the path).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    width, height = map(int, args.size.split("x"))
    background = np.random.default_rng(0).integers(40, 90, size=(height, width, 3)).astype(np.uint8)
    rate = Fraction(args.fps).limit_denominator(1001)
    container = av.open(args.url, mode="w", format="rtsp", options={"rtsp_transport": "udp"})
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    # A keyframe every second: a client that (re)connects starts decoding within a second.
    stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(max(1, round(args.fps))), "bf": "0"}
    start = time.monotonic()
    t = 0
    try:
        while not args.frames or t < args.frames:
            video_frame = av.VideoFrame.from_ndarray(frame_at(t, background), format="rgb24")
            video_frame.pts, video_frame.time_base = t, 1 / rate
            for packet in stream.encode(video_frame):
                container.mux(packet)
            t += 1
            if t == 1:
                print("publishing", flush=True)
            time.sleep(max(0.0, start + t / args.fps - time.monotonic()))
        for packet in stream.encode():
            container.mux(packet)
    except (av.FFmpegError, OSError, BrokenPipeError) as exc:
        print(f"publisher: stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            container.close()
        except Exception:  # noqa: BLE001 - the server may be gone already
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
