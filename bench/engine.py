"""Benchmark: the streaming SAM 2 engine against sam2's reference video predictor.

For each video length and object count, both methods track the same synthetic video (moving
boxes) with the same random-weight SAM 2.1 tiny, side by side in one run, each run in a fresh
process so that peak memory is its own:

- ``engine``: ``SAM2Engine.step`` frame by frame (frames generated on the fly, as a stream);
- ``reference``: ``SAM2VideoPredictor.init_state`` on a JPEG folder of the same frames, then
  ``propagate_in_video`` (ms/frame counts propagation only; init_state is reported apart).

    python bench/engine.py --json                       # the issue's grid: 100/1000/3000 frames, 1/8 objects, 512
    python bench/engine.py --frames 100 300 --image-size 256 --json
    python bench/engine.py --objects 1 4 8 16 --stagger 2 --model small --frames 100 3000 --methods engine

``--stagger S`` starts object k on frame k*S instead of all on frame 0 (objects born on different
keyframes remember different frames; the engine still runs them in one batched forward). The
reference is then driven as a stream would drive it: at each birth, the box is added and
``propagate_in_video`` restarts from that frame.

Speed ratios are measured in one more process that runs both methods frame by frame in turn
(``--pair-frames``), so a load that changes during the run hits both alike. ``--breakdown N`` times
N engine frames part by part (image encoder, memory attention, mask decoder, memory encoder,
memory layout, post-processing) once every object is born. ``--compile`` runs the engine's memory
attention through ``torch.compile``; compiling (a throwaway engine through the same births first)
is reported apart as ``compile_s``.

Prints one JSON object: {"config": ..., "interleaved": [{"objects", "engine_ms_per_frame",
"reference_ms_per_frame", "ratio"}, ...], "runs": [{"method", "frames", "objects", "ms_per_frame",
"peak_rss_mb", "rss_mb_by_frame", ["peak_gpu_mb"], ...}, ...]}; interleaved rows also give the
engine's memory-attention calls per frame (one per frame whatever the births).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIGS = {"tiny": "configs/sam2.1/sam2.1_hiera_t.yaml", "small": "configs/sam2.1/sam2.1_hiera_s.yaml"}
CONFIG = CONFIGS["tiny"]
BIRTHS: dict[int, list[int]] = {0: []}  # set per worker: frame -> objects born on it
WARMUP = 3
PALETTE = [(220, 40, 40), (40, 200, 60), (40, 80, 220), (230, 200, 40), (200, 40, 200), (40, 210, 210),
           (250, 140, 30), (150, 150, 150)]


@functools.lru_cache(maxsize=2)
def _texture(size: int) -> np.ndarray:
    return np.random.default_rng(0).integers(40, 90, size=(size, size, 3), dtype=np.uint8)


def make_frame(t: int, size: int, objects: int) -> np.ndarray:
    """Frame t of a synthetic video: `objects` coloured boxes moving over a fixed texture."""
    frame = _texture(size).copy()
    side = size // 8
    for k in range(objects):
        x = int((k * size / objects + 2 * t) % (size - side))
        y = int(size / 2 + (size / 3) * np.sin(t / 20 + k) - side / 2)
        frame[y:y + side, x:x + side] = PALETTE[k % len(PALETTE)]
    return frame


def first_boxes(size: int, objects: int) -> np.ndarray:
    side = size // 8
    boxes = []
    for k in range(objects):
        x = int((k * size / objects) % (size - side))
        y = int(size / 2 + (size / 3) * np.sin(k) - side / 2)
        boxes.append([x, y, x + side, y + side])
    return np.array(boxes, dtype=np.float32)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model(image_size: int, device: str):
    import torch

    from promptrack.trackers.sam2_engine import load_sam2_model

    torch.manual_seed(0)
    return load_sam2_model(CONFIG, None, device, image_size)


def _add_births(engine, t: int, boxes: np.ndarray) -> None:
    """Start the objects born on frame `t` (object k gets id k + 1 and box k)."""
    if t in BIRTHS:
        engine.add([k + 1 for k in BIRTHS[t]], boxes[BIRTHS[t]])


def births(objects: int, stagger: int) -> dict[int, list[int]]:
    """Frame -> indices of the objects born on it (object k on frame k*stagger)."""
    out: dict[int, list[int]] = {}
    for k in range(objects):
        out.setdefault(k * stagger, []).append(k)
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _checkpoints(frames: int) -> set[int]:
    return {min(frames - 1, n) for n in (10, 100, 300, 1000, 2000, 3000)} | {frames - 1}


def run_engine(frames: int, objects: int, image_size: int, device: str, compile_: bool, folder: str) -> dict:
    import torch

    from promptrack.trackers.sam2_engine import SAM2Engine

    model = _model(image_size, device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    engine = SAM2Engine(model, device=device, dtype=dtype, fill_hole_area=0, compile="on" if compile_ else "off")
    compile_s = _warm_up(engine, device, image_size, objects) if compile_ else 0.0
    boxes = first_boxes(image_size, objects)
    samples, elapsed = {}, 0.0
    for t in range(frames):
        frame = make_frame(t, image_size, objects)  # decoding is not timed: the reference's is not either
        _sync(device)
        start = time.perf_counter()
        engine.step(t, frame)
        _sync(device)
        if t >= WARMUP:
            elapsed += time.perf_counter() - start
        _add_births(engine, t, boxes)
        if t in _checkpoints(frames):
            samples[t + 1] = round(rss_mb(), 1)
    tensor_mb = sum(x.numel() * x.element_size() for x in (engine.bank.features, engine.bank.pointers)) / 2**20
    return {"ms_per_frame": 1000 * elapsed / (frames - WARMUP), "rss_mb_by_frame": samples,
            "stored_entries_per_object": max(engine.memory_entries().values()), "compile_s": round(compile_s, 1),
            "memory_bank_mb": round(tensor_mb, 2)}


def run_reference(frames: int, objects: int, image_size: int, device: str, compile_: bool, folder: str) -> dict:
    import torch

    model = _model(image_size, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else _null()
    with autocast:
        t0 = time.perf_counter()
        state = model.init_state(folder)
        init_s = time.perf_counter() - t0
        boxes = first_boxes(image_size, objects)
        samples, start = {}, None
        for t, _, _ in _reference_stream(model, state, boxes, frames):
            if t == WARMUP:
                _sync(device)
                start = time.perf_counter()
            if t in _checkpoints(frames):
                samples[t + 1] = round(rss_mb(), 1)
        _sync(device)
    elapsed = time.perf_counter() - start
    return {"ms_per_frame": 1000 * elapsed / (frames - WARMUP), "rss_mb_by_frame": samples, "init_state_s": init_s}


def _reference_stream(model, state, boxes: np.ndarray, frames: int):
    """The reference driven as a stream: at each birth frame add the boxes, propagate on from there."""
    starts = sorted(BIRTHS) + [frames]
    for start, stop in zip(starts[:-1], starts[1:]):
        for k in BIRTHS[start]:
            model.add_new_points_or_box(state, frame_idx=start, obj_id=k + 1, box=boxes[k])
        yield from model.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=stop - 1 - start)


def run_pair(frames: int, objects: int, image_size: int, device: str, compile_: bool, folder: str) -> dict:
    """Both methods in one process, frame by frame in turn: the speed ratio, immune to load drift."""
    import torch
    from PIL import Image

    from promptrack.trackers.sam2_engine import SAM2Engine

    model = _model(image_size, device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    engine = SAM2Engine(model, device=device, dtype=dtype, fill_hole_area=0, compile="on" if compile_ else "off")
    compile_s = _warm_up(engine, device, image_size, objects) if compile_ else 0.0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else _null()
    with autocast:
        state = model.init_state(folder)
        boxes = first_boxes(image_size, objects)
        reference = _reference_stream(model, state, boxes, frames)
        spent = {"engine": 0.0, "reference": 0.0}
        calls = 0
        attention_calls = _count_attention_calls()
        for t in range(frames):
            frame = np.array(Image.open(Path(folder) / f"{t:05d}.jpg"))  # the very pixels the reference reads
            _sync(device)
            a = time.perf_counter()
            before = attention_calls[0]
            engine.step(t, frame)
            calls = max(calls, attention_calls[0] - before)
            _add_births(engine, t, boxes)
            _sync(device)
            b = time.perf_counter()
            next(reference)  # the reference adds its boxes inside this call: its prompting is timed too
            _sync(device)
            if t >= WARMUP:
                spent["engine"] += b - a
                spent["reference"] += time.perf_counter() - b
    n = frames - WARMUP
    return {"engine_ms_per_frame": 1000 * spent["engine"] / n, "reference_ms_per_frame": 1000 * spent["reference"] / n,
            "ms_per_frame": 1000 * spent["engine"] / n, "ratio": spent["engine"] / spent["reference"],
            "max_memory_attention_calls_per_frame": calls, "compile_s": round(compile_s, 1)}


def run_breakdown(frames: int, objects: int, image_size: int, device: str, compile_: bool, folder: str) -> dict:
    """Where an engine frame goes: ms/frame in the image encoder, the memory attention, the mask
    decoder ("heads"), the memory encoder, the memory layout and the post-processing, once every
    object is born (timers around the engine's calls; on CUDA each one synchronises first)."""
    import collections

    import torch

    from promptrack.trackers import sam2_step
    from promptrack.trackers.sam2_engine import SAM2Engine

    model = _model(image_size, device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    engine = SAM2Engine(model, device=device, dtype=dtype, fill_hole_area=0, compile="on" if compile_ else "off")
    if compile_:
        _warm_up(engine, device, image_size, objects)
    spent: collections.Counter = collections.Counter()

    def timed(name, call):
        def wrapper(*args, **kwargs):
            _sync(device)
            started = time.perf_counter()
            out = call(*args, **kwargs)
            _sync(device)
            spent[name] += time.perf_counter() - started
            return out
        return wrapper

    parts = {"encode": "image_encoder", "memory_attention": "memory_attention", "_heads": "mask_decoder",
             "_encode_memory": "memory_encoder", "memory_tokens": "memory_layout", "frame_payload": "postprocess"}
    originals = {name: getattr(sam2_step, name) for name in parts}
    for name, label in parts.items():  # the step's pieces are module functions: timed where they are looked up
        setattr(sam2_step, name, timed(label, originals[name]))
    boxes = first_boxes(image_size, objects)
    first = max(BIRTHS) + WARMUP  # every object born, its memory full
    try:
        for t in range(first + frames):
            frame = make_frame(t, image_size, objects)
            if t == first:
                spent.clear()
                _sync(device)
                started = time.perf_counter()
            engine.step(t, frame)
            engine.current()
            _add_births(engine, t, boxes)
        _sync(device)
        total = time.perf_counter() - started
    finally:
        for name, call in originals.items():
            setattr(sam2_step, name, call)
    per_frame = {name: round(1000 * seconds / frames, 2) for name, seconds in spent.most_common()}
    return {"ms_per_frame": 1000 * total / frames, "breakdown_ms_per_frame": per_frame}


def _warm_up(engine, device: str, image_size: int, objects: int) -> float:
    """Seconds to compile the engine's step for every shape the run will meet: the engine itself goes
    through the same births first, then forgets its objects (its compiled graphs stay)."""
    boxes = first_boxes(image_size, objects)
    _sync(device)
    started = time.perf_counter()
    for t in range(max(BIRTHS) + 3):
        engine.step(t, make_frame(t, image_size, objects))
        _add_births(engine, t, boxes)
    _sync(device)
    engine.remove(engine.ids)
    return time.perf_counter() - started


def _count_attention_calls() -> list[int]:
    """A counter of memory-attention calls (the engine's step makes one a frame for all objects)."""
    from promptrack.trackers import sam2_step

    count = [0]
    attention = sam2_step.memory_attention

    def counted(*args, **kwargs):
        count[0] += 1
        return attention(*args, **kwargs)

    sam2_step.memory_attention = counted
    return count


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def worker(args: argparse.Namespace) -> None:
    import torch

    global CONFIG, BIRTHS
    CONFIG = CONFIGS[args.model]
    BIRTHS = births(args.k, args.stagger)

    torch.set_grad_enabled(False)
    run = {"engine": run_engine, "reference": run_reference, "pair": run_pair, "breakdown": run_breakdown}[args.worker]
    with torch.inference_mode():
        result = run(args.n, args.k, args.image_size, args.device, args.compile, args.folder)
    result.update(method=args.worker, frames=args.n, objects=args.k, peak_rss_mb=round(peak_rss_mb(), 1),
                  ms_per_frame=round(result["ms_per_frame"], 2))
    if args.device.startswith("cuda"):
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print("RESULT " + json.dumps(result))


def write_jpegs(folder: Path, frames: int, objects: int, size: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for t in range(frames):
        path = folder / f"{t:05d}.jpg"
        if not path.exists():
            Image.fromarray(make_frame(t, size, objects)).save(path, quality=95)


def hardware() -> dict:
    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
        info["ram_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (OSError, StopIteration):
        pass
    import torch

    info["torch"] = torch.__version__
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _spawn(args: argparse.Namespace, method: str, frames: int, objects: int, folder: Path) -> dict:
    """One measurement in a fresh process (its peak memory is its own)."""
    cmd = [sys.executable, __file__, "--worker", method, "--n", str(frames), "--k", str(objects),
           "--image-size", str(args.image_size), "--device", args.device, "--folder", str(folder),
           "--model", args.model, "--stagger", str(args.stagger)]
    if args.compile:
        cmd.append("--compile")
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"method": method, "frames": frames, "objects": objects,
                "error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(line[len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, nargs="*", default=[100, 1000, 3000],
                   help="video lengths of the separate-process runs (none: only the interleaved ratios)")
    p.add_argument("--objects", type=int, nargs="+", default=[1, 8])
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--methods", nargs="+", default=["engine", "reference"], choices=["engine", "reference"])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", choices=sorted(CONFIGS), default="tiny", help="SAM 2.1 size (random weights)")
    p.add_argument("--stagger", type=int, default=0, help="object k is born on frame k*stagger (0: all on frame 0)")
    p.add_argument("--compile", action="store_true",
                   help="the engine's memory attention through torch.compile (compiling is timed apart: compile_s)")
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    p.add_argument("--pair-frames", type=int, default=100,
                   help="frames of the interleaved speed comparison (0: skip)")
    p.add_argument("--breakdown", type=int, default=0,
                   help="frames of a per-part timing of the engine (image encoder, memory attention, ...; 0: skip)")
    p.add_argument("--worker", choices=["engine", "reference", "pair", "breakdown"], help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.worker:
        return worker(args)

    runs, pairs, breakdowns = [], [], []
    with tempfile.TemporaryDirectory(prefix="promptrack-bench-") as tmp:
        for objects in args.objects if args.pair_frames else []:
            folder = Path(tmp) / f"{objects}obj_pair"
            write_jpegs(folder, args.pair_frames, objects, args.image_size)
            pairs.append(_spawn(args, "pair", args.pair_frames, objects, folder))
            print(json.dumps(pairs[-1]), file=sys.stderr, flush=True)
        for objects in args.objects if args.breakdown else []:
            breakdowns.append(_spawn(args, "breakdown", args.breakdown, objects, Path(tmp)))
            print(json.dumps(breakdowns[-1]), file=sys.stderr, flush=True)
        for frames in args.frames:
            for objects in args.objects:
                folder = Path(tmp) / f"{objects}obj_{frames}"
                if "reference" in args.methods:
                    write_jpegs(folder, frames, objects, args.image_size)
                for method in args.methods:  # side by side: both methods on each setting in turn
                    runs.append(_spawn(args, method, frames, objects, folder))
                    print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    report = {"config": {"model": f"sam2.1-hiera-{args.model} (random weights)", "image_size": args.image_size,
                         "stagger": args.stagger,
                         "device": args.device, "compile": args.compile, "hardware": hardware()},
              "interleaved": pairs, "breakdown": breakdowns, "runs": runs}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for part in breakdowns:
        print(f"breakdown, {part['objects']} objects: {part['ms_per_frame']} ms/frame: {part['breakdown_ms_per_frame']}")
    for pair in pairs:
        print(f"interleaved, {pair['objects']} objects: engine {pair['engine_ms_per_frame']:.1f} ms/frame, "
              f"reference {pair['reference_ms_per_frame']:.1f} ms/frame, ratio {pair.get('ratio', 0):.2f}, "
              f"memory-attention calls/frame {pair.get('max_memory_attention_calls_per_frame')}")
    print(f"{'method':<10}{'frames':>7}{'objects':>8}{'ms/frame':>10}{'peak RSS MB':>13}")
    for r in runs:
        print(f"{r['method']:<10}{r['frames']:>7}{r['objects']:>8}{r.get('ms_per_frame', float('nan')):>10}"
              f"{r.get('peak_rss_mb', float('nan')):>13}")


if __name__ == "__main__":
    main()
