"""Benchmark: videos per minute of ``track_videos`` (``track-video batch``) with 1 and 2 Ray workers.

Both worker counts track the same clips in one run, on one local Ray cluster, each from a clean
output folder (``force=True``), so the numbers compare. The wall time is what a user waits for:
it includes starting the workers and loading their models, once per worker.

Models: YOLOX-Nano (pretrained, ``../shared/assets/models/yolox_nano.onnx``) on keyframes and SAM
2.1 tiny with random weights (seeded; speed does not depend on the weights' values; no SAM 2
weights can be downloaded here), both passed as explicit paths. Clips: ``--videos`` links to one
asset video, each tracked for ``--frames`` frames.

    .venv/bin/python bench/batch.py --json
    .venv/bin/python bench/batch.py --videos 8 --frames 50 --image-size 1024 --workers 1 2 4 --json

Each worker reserves an equal share of the cluster's CPUs (``--cpus`` in all) and Ray sets its
torch threads to that share, so 1 worker runs 2 threads and 2 workers 1 thread each on 2 CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from random_weights import random_sam2_checkpoint  # bench/ is this script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT.parent / "shared" / "assets"


def hardware() -> dict:
    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import ray
    import torch

    info.update(torch=torch.__version__, ray=ray.__version__,
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(ASSETS / "videos" / "bedroom.mp4"))
    parser.add_argument("--videos", type=int, default=4, help="clips per run (links to --video)")
    parser.add_argument("--frames", type=int, default=12, help="frames tracked per clip")
    parser.add_argument("--image-size", type=int, default=256, help="SAM 2 input size")
    parser.add_argument("--detect-every", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray cluster")
    parser.add_argument("--gpus-per-worker", type=float, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    # Ray gives each worker torch threads equal to its CPU share, unless this is set for all.
    os.environ.pop("OMP_NUM_THREADS", None)
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # a loaded machine starts Ray slowly
    import ray

    from promptrack.pipeline.batch import track_videos

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        checkpoint = random_sam2_checkpoint(tmp)
        clips = []
        for i in range(args.videos):
            clip = tmp / "clips" / f"clip{i}{Path(args.video).suffix}"
            clip.parent.mkdir(exist_ok=True)
            clip.symlink_to(Path(args.video).resolve())
            clips.append(str(clip))
        overrides = [f"tracker.image_size={args.image_size}", f"tracker.sam2={checkpoint}", "detector.name=yolox",
                     f"detector.model={ASSETS / 'models' / 'yolox_nano.onnx'}", f"detect_every={args.detect_every}",
                     f"max_frames={args.frames}"]
        report = {"bench": "batch", "video": Path(args.video).name, "videos": args.videos, "frames": args.frames,
                  "image_size": args.image_size, "detect_every": args.detect_every, "cluster_cpus": args.cpus,
                  "hardware": hardware(), "runs": []}
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            for workers in args.workers:
                started = time.perf_counter()
                summary = track_videos(clips, "person", output_dir=tmp / f"out{workers}", workers=workers,
                                       overrides=overrides, gpus_per_worker=args.gpus_per_worker, force=True,
                                       progress=not args.json)
                wall = time.perf_counter() - started
                if not summary.ok:
                    raise SystemExit(f"bench/batch.py: some videos failed: {[(v.stem, v.error) for v in summary.failed]}")
                tracking = [v.seconds for v in summary.videos]
                report["runs"].append({
                    "workers": summary.workers, "wall_s": round(wall, 2),
                    "videos_per_minute": round(len(clips) / wall * 60, 2),
                    "frames_per_second": round(sum(v.frames for v in summary.videos) / wall, 2),
                    "tracking_s_per_video": round(sum(tracking) / len(tracking), 2),
                    "startup_s": round(wall - sum(tracking) / summary.workers, 2),
                })
        finally:
            ray.shutdown()
    report["hardware"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for run in report["runs"]:
        print(f"{run['workers']} worker(s): {run['videos_per_minute']} videos/min, {run['frames_per_second']} frames/s "
              f"(wall {run['wall_s']} s, {run['tracking_s_per_video']} s tracking per video)")


if __name__ == "__main__":
    sys.exit(main())
