"""Milliseconds per keyframe for each local detector, with random weights at the real size.

No download is possible (or needed: speed does not depend on the weights' values), so each model
is built from the real checkpoint's architecture with random weights (``tests/fake_detectors.py``,
``size="real"``), saved with ``save_pretrained`` into a temp folder, and loaded through
``build_detector``: the code path users run. Each detector sees a 480p frame (a DAVIS 2016 frame
when the shared assets are there, else noise), one warm-up call, then ``--runs`` timed calls of
``detect``; the median is reported.

    .venv/bin/python bench/detectors.py                 # table
    .venv/bin/python bench/detectors.py --json          # JSON, for bench/RESULTS.md
    .venv/bin/python bench/detectors.py --size 1333x800 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the random-weight writers live with the tests

# name -> (writer in tests/fake_detectors.py, the real checkpoint it stands for)
MODELS = {
    "grounding-dino": ("write_grounding_dino", "IDEA-Research/grounding-dino-tiny (Swin-T, BERT-base)"),
    "mm-grounding-dino": ("write_mm_grounding_dino",
                          "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det (Swin-T, BERT-base)"),
    "owlv2": ("write_owlv2", "google/owlv2-base-patch16-ensemble (ViT-B/16, 960x960)"),
    "sam3": ("write_sam3", "facebook/sam3 detector (ViT 32 layers at 1008x1008, CLIP text 24 layers; boxes + masks)"),
    "omdet-turbo": ("write_omdet_turbo", "omlab/omdet-turbo-swin-tiny-hf (Swin-T at 640x640, CLIP B/32 text; "
                                         "transformers' Swin-T in place of timm's)"),
}
PHRASES = ["person", "car"]


def hardware() -> dict:
    """CPU model, core count, torch version and threads: what the numbers depend on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info = {"cpu": cpu, "nproc": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def test_frame(width: int, height: int) -> np.ndarray:
    """An RGB frame of the given size: a real DAVIS frame when the shared assets are there."""
    import cv2

    davis = ROOT.parent / "shared" / "assets" / "davis2016" / "JPEGImages" / "480p" / "car-roundabout" / "00000.jpg"
    image = cv2.imread(str(davis), cv2.IMREAD_COLOR) if davis.is_file() else None
    if image is None:
        return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(image, (width, height))[..., ::-1])


def bench_one(name: str, frame: np.ndarray, runs: int, warmup: int, device: str,
              phrases: list[str] = PHRASES) -> dict:
    import torch

    import fake_detectors
    from promptrack.pipeline.config import DetectorConfig
    from promptrack.pipeline.detectors import build_detector

    writer, real = MODELS[name]
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        getattr(fake_detectors, writer)(Path(tmp) / name, size="real")
        start = time.perf_counter()
        detector = build_detector(DetectorConfig(name=name, model=str(Path(tmp) / name)), device)
        load_s = time.perf_counter() - start
    params = sum(p.numel() for p in detector.model.parameters())
    for _ in range(warmup):
        detector.detect(frame, phrases)
    times = []
    for _ in range(runs):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        detector.detect(frame, phrases)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return {"detector": name, "stands_for": real, "params_m": round(params / 1e6, 1),
            "ms_median": round(statistics.median(times), 1), "ms_min": round(min(times), 1), "runs": runs,
            "load_s": round(load_s, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--size", default="854x480", help="frame WIDTHxHEIGHT (default 854x480, 480p)")
    parser.add_argument("--phrases", default=",".join(PHRASES), help="comma-separated prompt phrases")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per detector (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    width, height = (int(v) for v in args.size.lower().split("x"))
    frame = test_frame(width, height)
    report = {"bench": "detectors", "frame": [width, height], "device": args.device, "phrases": args.phrases.split(","),
              "hardware": hardware(),
              "results": []}
    for name in args.detectors.split(","):
        result = bench_one(name.strip(), frame, args.runs, args.warmup, args.device, args.phrases.split(","))
        report["results"].append(result)
        if not args.json:
            print(f"{result['detector']:<18} {result['ms_median']:>9.1f} ms/keyframe (min {result['ms_min']:.1f}, "
                  f"{result['params_m']} M params)  = {result['stands_for']}", flush=True)
    report["hardware"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
