"""GPU cost of a frame counted on the CPU: the SAM 2 engine next to sam2's reference predictor.

No GPU needed. For each object count (all born on frame 0) and for staggered births, both methods
track the same synthetic video with the same random-weight SAM 2.1 small, and every steady-state
frame is counted with CUDA's behaviour emulated (``bench/gpucount``): ATen operator calls, kernel
launches (views apart), host syncs with the file:line of each, bytes host->device and
device->host, dtype casts (explicit, and CUDA autocast's) with their bytes, FLOPs (attention
included), and the graph breaks of the engine's compiled step where the engine has one.

- the engine runs as on CUDA: ``SAM2Engine(model, dtype=bfloat16)`` (its autocast contexts are
  emulated with CUDA's rules); a frame is ``step(t, frame)``, which returns the frame's host masks;
- the reference runs as its users run it, inside one ``torch.autocast("cuda", bfloat16)``; a frame
  is one step of ``propagate_in_video`` (its masks stay on the device: a user's download is not
  counted); the video sits on the device from ``init_state`` (not counted).

Launches, syncs and casts are counted on real runs at a small image size (``--image-size``, the
video the same size). FLOPs and bytes are counted at 1024 px (``--flops-size``) with shape-only
execution (``gpucount.shapes``: every operator's shapes, no arithmetic), which counts launches,
syncs and casts too: ``size_check`` compares both sizes on a few rows. Syncs and casts do not
depend on the size; launches do a little (reshapes copy or not, linear layers fold or not,
depending on the layout at that size): the H100 estimate uses the launches at 1024 px. The
reference tracks its objects one by one, so at 1024 px its FLOPs and bytes for N objects born
together are F(1) + (N - 1) * (F(2) - F(1)), exact for identical objects.

Then an H100 estimate from an explicit cost model (``gpucount.costmodel``): t = launches * c +
FLOPs / P + bytes / BW, c and P fitted on the one measured H100 run (older engine: 32.7 / 13.4 /
4.2 FPS at 1 / 16 / 64 objects, SAM 2.1 small at 1024 px in bf16, assumed), eager and with the
launches replayed from a CUDA graph (1-2 us each).

Each measurement runs in its own process; ``--jobs N`` runs N at once, ``--keep DIR`` keeps each
result and reuses it on a later run with the same settings (a long grid survives an interruption).
The reference is counted directly up to ``--reference-direct`` objects born together and beyond by
the line through its two largest counted rows (it tracks objects one by one: counts are a line
in N from 2 objects on; ``reference_linear_check`` shows how the line through 1 and 2 objects
misses the counted rows).

    python bench/gpu_counts.py                       # the grid: 1 4 16 64 128 objects + 16 staggered
                                                     # (~25 measurements, one process each)
    python bench/gpu_counts.py --objects 1 16 --stagger 0 --methods engine    # a quick look
    python bench/gpu_counts.py --objects 1 16 --json
    python bench/gpu_counts.py --jobs 4 --keep /tmp/counts --json > counts.json
    python bench/gpu_counts.py --e2e                 # the whole tracking loop (bench/gpu_counts_e2e.py)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from engine import first_boxes, make_frame, write_jpegs  # noqa: E402
from gpucount import count  # noqa: E402
from gpucount.costmodel import GRAPH_LAUNCH_S, CostModel  # noqa: E402

CONFIG = "configs/sam2.1/sam2.1_hiera_s.yaml"
# The one H100 run (older engine, SAM 2.1 small, 1024 px, bf16 assumed): objects -> FPS.
H100_ENGINE_FPS = {1: 32.7, 16: 13.4, 64: 4.2}
H100_SAM31_FPS = {1: 33.8, 16: 30.2, 64: 11.5}  # SAM 3.1 on the same card, for reference
PCIE_BYTES_PER_S = 25e9  # pinned host<->device copies on an H100 PCIe/SXM host link (stated, not fitted)
STAGGER = 2  # staggered births: object k on frame STAGGER * k
COUNTED = ("op_calls", "launches", "host_ops", "h2d_bytes", "d2h_bytes", "uploads", "casts", "cast_bytes",
           "autocast_casts", "autocast_cast_bytes", "weight_casts", "flops")


# ---------------------------------------------------------------------------------- schedules
def schedule(objects: int, staggered: bool, warmup: int, frames: int) -> tuple[dict[int, list[int]], list[int]]:
    """(frame -> objects born on it, the frames counted): counted frames come after the last
    birth and after `warmup` frames (every memory slot written)."""
    births: dict[int, list[int]] = {}
    for k in range(objects):
        births.setdefault(STAGGER * k if staggered else 0, []).append(k)
    first = max(births) + 1 if staggered else warmup
    return births, list(range(first, first + frames))


@contextlib.contextmanager
def counting_as_on_cuda(**options):
    """``gpucount.count`` with promptrack's device branches taken as on CUDA.

    Where promptrack's code branches on ``device.type == "cuda"``, the CPU run takes the other
    branch; the CUDA one is what is counted:
    - ``trackers.masks.to_host`` bit-packs the masks on the device and copies one buffer
      (``pack=True``), instead of reading the CPU tensors in place;
    - ``trackers.transfer.upload`` (and, in engines that have it, ``sam2_memory._to_device``)
      copies through pinned memory without blocking: bytes counted, not syncs.
    """
    import functools

    from promptrack.trackers import masks, sam2_memory, transfer

    # older engines upload their memory layout through their own pinned helper (a fact of that code)
    pinned = [transfer.upload] + [f for f in (vars(sam2_memory).get("_to_device"),) if f is not None]
    original = vars(masks).get("to_host")  # older engines: their host copy packs only on a GPU
    if original is not None:
        masks.to_host = functools.partial(original, pack=True)
    try:
        with count(nonblocking_uploads=pinned, skip_files=[transfer.__file__], **options) as counter:
            yield counter
    finally:
        if original is not None:
            masks.to_host = original


def _model(image_size: int):
    import torch

    from promptrack.trackers.sam2_engine import load_sam2_model

    torch.manual_seed(0)
    return load_sam2_model(CONFIG, None, "cpu", image_size)


def _fill_hole_area() -> int:
    from promptrack.pipeline.config import load_config

    return load_config("default").tracker.fill_hole_area


# ---------------------------------------------------------------------------------- one run
def count_engine(model, objects: int, staggered: bool, size: int, warmup: int, frames: int,
                 shapes_only: bool = False) -> dict:
    """Per-frame tallies of the engine's counted frames (and its graph breaks, where it has a step)."""
    import torch

    from promptrack.trackers.sam2_engine import SAM2Engine

    births, counted = schedule(objects, staggered, warmup, frames)
    boxes = first_boxes(size, objects)
    tallies = []
    with torch.inference_mode(), counting_as_on_cuda(shapes_only=shapes_only) as counter:
        engine = SAM2Engine(model, device="cpu", dtype=torch.bfloat16, fill_hole_area=_fill_hole_area())
        for t in range(counted[-1] + 1):
            frame = make_frame(t, size, objects)
            with counter.section(f"frame {t}") as tally:
                engine.step(t, frame)
            if t in counted:
                tallies.append(tally)
            if t in births:
                engine.add([k + 1 for k in births[t]], boxes[births[t]])
    row = summarise(tallies)
    row["graph_breaks"] = graph_breaks(engine) if not shapes_only else None
    return row


def count_reference(model, objects: int, staggered: bool, size: int, warmup: int, frames: int,
                    folder: Path, shapes_only: bool = False) -> dict:
    """Per-frame tallies of ``SAM2VideoPredictor.propagate_in_video``, driven as a stream."""
    import torch

    births, counted = schedule(objects, staggered, warmup, frames)
    boxes = first_boxes(size, objects)
    tallies = []
    with torch.inference_mode(), count(shapes_only=shapes_only) as counter:
        with torch.autocast("cuda", dtype=torch.bfloat16):  # as its users run it (emulated)
            state = model.init_state(str(folder))
            stream = _reference_stream(model, state, boxes, births, counted[-1] + 1)
            for t in range(counted[-1] + 1):
                with counter.section(f"frame {t}") as tally:
                    index, _, _ = next(stream)
                assert index == t
                if t in counted:
                    tallies.append(tally)
    return summarise(tallies)


def _reference_stream(model, state, boxes, births: dict[int, list[int]], frames: int):
    starts = sorted(births) + [frames]
    for start, stop in zip(starts[:-1], starts[1:]):
        for k in births[start]:
            model.add_new_points_or_box(state, frame_idx=start, obj_id=k + 1, box=boxes[k])
        yield from model.propagate_in_video(state, start_frame_idx=start, max_frame_num_to_track=stop - 1 - start)


def graph_breaks(engine) -> int | str:
    """Graph breaks of the engine's compiled step, where the engine has one (engines old and new)."""
    if not hasattr(engine, "static_step"):  # the one ability looked up: this measures engines old and new
        return "n/a"
    import torch._dynamo

    with torch.inference_mode():  # the engine's tensors are inference tensors
        explained = torch._dynamo.explain(engine.static_step)(*engine.last_step_inputs())
    return int(explained.graph_break_count)


def summarise(tallies) -> dict:
    """Mean per frame over the counted frames, the sync sites, and whether the frames agree."""
    n = len(tallies)
    row = {key: sum(getattr(t, key) for t in tallies) / n for key in COUNTED}
    sites: dict[str, float] = {}
    for tally in tallies:
        for sync in tally.syncs:
            key = f"{sync.kind} @ {sync.where}"
            sites[key] = sites.get(key, 0) + 1 / n
    row["syncs"] = sum(len(t.syncs) for t in tallies) / n
    row["sync_sites"] = {k: round(v, 2) for k, v in sorted(sites.items(), key=lambda kv: -kv[1])}
    attention = [a for t in tallies for a in t.attention]
    row["attention_calls"] = len(attention) / n
    row["attention_masked"] = sum(a["masked"] for a in attention) / n
    row["top_launches"] = dict(sum((t.ops for t in tallies), start=type(tallies[0].ops)()).most_common(8))
    row["top_launches"] = {k: v / n for k, v in row["top_launches"].items()}
    row["steady"] = all(t.launches == tallies[0].launches and len(t.syncs) == len(tallies[0].syncs)
                        for t in tallies)
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}


# ---------------------------------------------------------------------------------- worker
def worker(args) -> None:
    """One (method, objects, births, size, mode) measurement, printed as one RESULT line."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    model = _model(args.size)
    started = time.perf_counter()
    if args.method == "engine":
        row = count_engine(model, args.k, args.staggered, args.size, args.warmup, args.frames, args.shapes_only)
    else:
        with tempfile.TemporaryDirectory(prefix="promptrack-gpucounts-") as tmp:
            births, counted = schedule(args.k, args.staggered, args.warmup, args.frames)
            write_jpegs(Path(tmp), counted[-1] + 1, args.k, args.size)
            row = count_reference(model, args.k, args.staggered, args.size, args.warmup, args.frames, Path(tmp),
                                  args.shapes_only)
    row["seconds"] = round(time.perf_counter() - started, 1)
    if args.keep_file:  # written here too: the result survives its parent
        Path(args.keep_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.keep_file).write_text(json.dumps(row))
    print("RESULT " + json.dumps(row), flush=True)


def spawn(method: str, objects: int, staggered: bool, size: int, args, shapes_only: bool = False) -> dict:
    """One measurement in a fresh process (memory of a 128-object run is given back); with
    ``--keep DIR`` its result is kept there and reused by a later run with the same settings."""
    key = f"{method}-{objects}{'s' if staggered else ''}-{size}{'-shapes' if shapes_only else ''}-w{args.warmup}-f{args.frames}"
    kept = Path(args.keep) / f"{key}.json" if args.keep else None
    if kept is not None and kept.exists():
        return json.loads(kept.read_text())
    cmd = [sys.executable, "-P", __file__, "--worker", method, "--k", str(objects), "--size", str(size),
           "--warmup", str(args.warmup), "--frames", str(args.frames)]
    cmd += ["--staggered"] if staggered else []
    cmd += ["--shapes-only"] if shapes_only else []
    cmd += ["--threads", "1"] if args.jobs > 1 else []
    cmd += ["--keep-file", str(kept)] if kept is not None else []
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        message = f"{method} {objects} objects at {size} px failed:\n{out.stderr[-3000:]}"
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(message)
    row = json.loads(line[len("RESULT "):])
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(row))
    print(f"  {method:9s} {objects:4d} objects{' staggered' if staggered else ''} at {size} px"
          f"{' (shapes only)' if shapes_only else ''}: {row['launches']:.0f} launches, {row['syncs']} syncs "
          f"[{row['seconds']} s]", file=sys.stderr, flush=True)
    return row


# ---------------------------------------------------------------------------------- the grid
SIZE_INDEPENDENT = ("syncs", "casts", "autocast_casts", "weight_casts", "attention_calls", "attention_masked")
CHECKED = (("engine", 1), ("engine", 4), ("reference", 1), ("reference", 2))  # rows counted at both sizes


def size_check(args, measured: dict) -> dict:
    """The counts of a few rows at the counting size (real run) and at --flops-size (shape-only):
    syncs and casts must agree for the claim that they do not depend on the size; launches are
    compared and their difference shown (the H100 estimate uses the full-size launches)."""
    checks = []
    for method, objects in CHECKED:
        if method not in args.methods or (method, objects, False, args.flops_size, True) not in measured:
            continue
        a = measured[(method, objects, False, args.image_size, False)]
        b = measured[(method, objects, False, args.flops_size, True)]
        differ = {k: (a[k], b[k]) for k in SIZE_INDEPENDENT if a[k] != b[k]}
        if sorted(a["sync_sites"]) != sorted(b["sync_sites"]):
            differ["sync_sites"] = (a["sync_sites"], b["sync_sites"])
        ops = {op: (a["top_launches"].get(op, 0), b["top_launches"].get(op, 0))
               for op in {**a["top_launches"], **b["top_launches"]}
               if a["top_launches"].get(op, 0) != b["top_launches"].get(op, 0)}
        checks.append({"method": method, "objects": objects, "equal": not differ, "differences": differ,
                       "launches": [a["launches"], b["launches"]], "top_launch_differences": ops})
    return {"sizes": [args.image_size, args.flops_size], "equal": all(c["equal"] for c in checks), "checks": checks}


def run_all(jobs: list[tuple], args) -> list[dict]:
    """spawn() each (method, objects, staggered, size, shapes_only), `--jobs` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        return list(pool.map(lambda job: spawn(*job[:4], args, shapes_only=job[4]), jobs))


# The reference tracks objects one at a time: for N objects born together every count is a line
# in N (from 2 objects on: one operator more runs once a frame); beyond --reference-direct objects
# it is computed through the two largest counted rows.
LINEAR_KEYS = ("op_calls", "launches", "host_ops", "h2d_bytes", "d2h_bytes", "uploads", "casts", "cast_bytes",
               "autocast_casts", "autocast_cast_bytes", "weight_casts", "flops", "syncs", "attention_calls",
               "attention_masked")
FULL_SIZE_KEYS = ("flops", "h2d_bytes", "d2h_bytes", "cast_bytes", "autocast_cast_bytes")


def _linear(one: dict, two: dict, objects: int, at: tuple[int, int] = (1, 2)) -> dict:
    """Counts of `objects` objects from the counts `one` and `two` at `at` objects (a line through both)."""
    slope = lambda a, b: (b - a) / (at[1] - at[0])  # noqa: E731
    row = {k: round(one[k] + (objects - at[0]) * slope(one[k], two[k]), 2) for k in LINEAR_KEYS}
    row["sync_sites"] = {site: round(one["sync_sites"].get(site, 0) + (objects - at[0]) * slope(
        one["sync_sites"].get(site, 0), two["sync_sites"].get(site, 0)), 2)
        for site in {**one["sync_sites"], **two["sync_sites"]}}
    row.update(steady=one["steady"] and two["steady"], top_launches={})
    return row


def grid(args) -> tuple[list[dict], dict]:
    cases = [(n, False) for n in args.objects] + ([(args.stagger, True)] if args.stagger else [])
    cases_of = {m: [(n, st) for n, st in cases if not st or m in args.stagger_methods] for m in args.methods}
    direct = lambda m, n, st: m == "engine" or st or n <= args.reference_direct  # noqa: E731
    jobs = []
    for method in args.methods:
        for objects, staggered in cases_of[method]:
            if direct(method, objects, staggered):
                jobs.append((method, objects, staggered, args.image_size, False))
            if method == "engine" or staggered:
                jobs.append((method, objects, staggered, args.flops_size, True))
        if method == "reference":
            for n in (1, 2):
                jobs += [("reference", n, False, args.image_size, False), ("reference", n, False, args.flops_size, True)]
    jobs = list(dict.fromkeys(jobs))
    measured = dict(zip(jobs, run_all(jobs, args)))
    rows = []
    for method in args.methods:
        for objects, staggered in cases_of[method]:
            small = (method, objects, staggered, args.image_size, False)
            if small in measured:
                row = dict(measured[small])
                row["counts_by"] = "counted"
            else:  # through the two largest counts (from 2 objects on, one more operator runs once a frame)
                a, b = sorted(n for (m, n, st, size, sh) in measured
                              if m == "reference" and not st and size == args.image_size and not sh)[-2:]
                row = _linear(measured[("reference", a, False, args.image_size, False)],
                              measured[("reference", b, False, args.image_size, False)], objects, (a, b))
                row["counts_by"] = f"C({a}) + (N-{a})*(C({b})-C({a}))/({b}-{a}), counted at {a} and {b} objects"
            big = measured.get((method, objects, staggered, args.flops_size, True))
            if big is None:
                big = _linear(measured[("reference", 1, False, args.flops_size, True)],
                              measured[("reference", 2, False, args.flops_size, True)], objects)
                row["full_size_by"] = "F(1) + (N-1)*(F(2)-F(1)) of shape-only runs at 1 and 2 objects"
            else:
                row["full_size_by"] = "shape-only run"
            row.update({k: big[k] for k in FULL_SIZE_KEYS})
            row["launches_at_full_size"] = big["launches"]
            row.update({"method": method, "objects": objects,
                        "births": f"object k on frame {STAGGER}k" if staggered else "all on frame 0",
                        "counts_at_px": args.image_size, "bytes_and_flops_at_px": args.flops_size})
            rows.append(row)
    linear_check = {}
    if "reference" in args.methods:
        for n in args.objects:
            key = ("reference", n, False, args.image_size, False)
            if n > 2 and key in measured:
                predicted = _linear(measured[("reference", 1, False, args.image_size, False)],
                                    measured[("reference", 2, False, args.image_size, False)], n)
                linear_check[n] = {k: (predicted[k], measured[key][k]) for k in ("launches", "syncs", "autocast_casts")}
    return rows, {"measured": measured, "reference_linear_check": linear_check}


def cost_model(rows: list[dict]) -> tuple[CostModel, list[dict]]:
    """Fit c and P on the engine rows matching the H100 anchors; estimate every row."""
    engine = {r["objects"]: r for r in rows if r["method"] == "engine" and r["births"] == "all on frame 0"}
    # at the anchors' size: Hiera pads its token grid to whole windows only at some sizes, so a
    # few launches (pads, copies) depend on the size; the counts at 1024 px are those of the anchors
    anchors = [(engine[n]["launches_at_full_size"], engine[n]["flops"], engine[n]["h2d_bytes"] + engine[n]["d2h_bytes"],
                1.0 / fps) for n, fps in H100_ENGINE_FPS.items() if n in engine]
    if len(anchors) < 2:
        raise SystemExit(f"the cost model needs engine rows at {sorted(H100_ENGINE_FPS)} objects (--objects)")
    model = CostModel.fit(anchors, PCIE_BYTES_PER_S)
    for row in rows:
        moved = row["h2d_bytes"] + row["d2h_bytes"]
        launches = row["launches_at_full_size"]
        eager = model.seconds(launches, row["flops"], moved)
        graph = [model.seconds(launches, row["flops"], moved, launch_s=c) for c in GRAPH_LAUNCH_S]
        row["h100_estimate"] = {"eager_ms": round(1000 * eager, 2), "eager_fps": round(1 / eager, 1),
                                "graph_ms": [round(1000 * g, 2) for g in graph[::-1]],
                                "graph_fps": [round(1 / g, 1) for g in graph[::-1]]}
        if row["method"] == "engine" and row["births"] == "all on frame 0" and row["objects"] in H100_ENGINE_FPS:
            row["h100_measured_fps_older_engine"] = H100_ENGINE_FPS[row["objects"]]
    return model, rows


# ---------------------------------------------------------------------------------- output
def commit() -> str:
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+changes" if dirty else "")
    except OSError:
        return "?"


def hardware() -> dict:
    import platform

    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


def table(report: dict) -> str:
    lines = [f"GPU cost per steady-state frame, counted on the CPU (commit {report['commit']}); "
             f"counts at {report['config']['image_size']} px, FLOPs and bytes at {report['config']['flops_size']} px",
             "launches at the counting size and at --flops-size (shape-only); the H100 estimate uses the latter",
             f"{'method':<10}{'objects':>8}{'births':>10}{'ops':>9}{'launches':>10}{'@1024':>7}{'syncs':>7}{'casts':>7}"
             f"{'ac casts':>9}{'cast MB':>9}{'H2D kB':>9}{'D2H kB':>9}{'TFLOP':>8}{'breaks':>7}"
             f"{'H100 eager':>12}{'H100 graph':>14}"]
    for r in report["rows"]:
        e = r["h100_estimate"]
        lines.append(
            f"{r['method']:<10}{r['objects']:>8}{'stagger' if 'k' in r['births'] else 'frame 0':>10}"
            f"{r['op_calls']:>9.0f}{r['launches']:>10.0f}{r['launches_at_full_size']:>7.0f}{r['syncs']:>7.1f}{r['casts']:>7.0f}{r['autocast_casts']:>9.0f}"
            f"{(r['cast_bytes'] + r['autocast_cast_bytes']) / 1e6:>9.1f}{r['h2d_bytes'] / 1e3:>9.0f}"
            f"{r['d2h_bytes'] / 1e3:>9.0f}{r['flops'] / 1e12:>8.3f}{str(r.get('graph_breaks') or '-'):>7}"
            f"{e['eager_fps']:>8.1f} FPS{e['graph_fps'][0]:>7.1f}-{e['graph_fps'][1]:.1f} FPS")
    m = report["cost_model"]
    lines.append(f"cost model: c = {m['launch_us']:.2f} us/launch, P = {m['tflops']:.0f} TFLOP/s, "
                 f"BW = {m['bandwidth_gb_s']:.0f} GB/s (stated); residuals (measured - model) "
                 f"{', '.join(f'{k} obj {v:+.2f} ms' for k, v in m['residuals_ms'].items())}; graph: launches at "
                 f"{GRAPH_LAUNCH_S[0] * 1e6:.0f}-{GRAPH_LAUNCH_S[1] * 1e6:.0f} us")
    check = report["size_check"]
    lines.append(f"size check ({check['sizes'][0]} px counted vs {check['sizes'][1]} px shape-only; "
                 + ", ".join(f"{c['method']} {c['objects']}" for c in check["checks"]) + "): syncs and casts "
                 + ("equal: they do not depend on the image size" if check["equal"]
                    else f"DIFFER: {[c for c in check['checks'] if not c['equal']]}")
                 + "; launches " + ", ".join(f"{c['launches'][0]:.0f} vs {c['launches'][1]:.0f}" for c in check["checks"]))
    for n, check in report["reference_linear_check"].items():
        lines.append(f"reference: the line through 1 and 2 objects checked at {n} objects: "
                     + ", ".join(f"{k} {v['formula']:g} vs {v['counted']:g} counted" for k, v in check.items()))
    for r in report["rows"]:
        if r["sync_sites"]:
            lines.append(f"syncs, {r['method']} {r['objects']} objects ({r['births']}): "
                         + "; ".join(f"{k} x{v:g}" for k, v in r["sync_sites"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, nargs="+", default=[1, 4, 16, 64, 128])
    p.add_argument("--stagger", type=int, default=16, help="objects of the staggered row (0: none)")
    p.add_argument("--stagger-methods", nargs="+", default=["engine", "reference"], choices=["engine", "reference"],
                   help="methods with a staggered row (the reference's is the slowest run of the grid)")
    p.add_argument("--image-size", type=int, default=64, help="image (and video) size of the counting runs")
    p.add_argument("--flops-size", type=int, default=1024, help="image (and video) size of the FLOPs and bytes")
    p.add_argument("--warmup", type=int, default=8, help="frames before the counted ones (objects born on frame 0)")
    p.add_argument("--frames", type=int, default=2, help="steady-state frames counted per row")
    p.add_argument("--methods", nargs="+", default=["engine", "reference"], choices=["engine", "reference"])
    p.add_argument("--reference-direct", type=int, default=4,
                   help="the reference is counted directly up to this many objects born together; beyond, by "
                        "its exact per-object formula from 1 and 2 objects (checked against the counted rows)")
    p.add_argument("--keep", metavar="DIR", help="keep each measurement's result in DIR and reuse it when there")
    p.add_argument("--jobs", type=int, default=1, help="measurements run in parallel (each in its own process)")
    p.add_argument("--e2e", action="store_true", help="count the whole tracking loop instead (gpu_counts_e2e.py)")
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    p.add_argument("--worker", choices=["engine", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--staggered", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shapes-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--keep-file", help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    if "--e2e" in argv:  # its own flags (--image-size, --json...) belong to it
        import gpu_counts_e2e

        return gpu_counts_e2e.main([a for a in argv if a != "--e2e"])
    args = p.parse_args(argv)
    if args.worker:
        args.method = args.worker
        worker(args)
        return {}
    started = time.perf_counter()
    rows, extra = grid(args)
    model, rows = cost_model(rows)
    report = {
        "commit": commit(), "date": datetime.date.today().isoformat(), "hardware": hardware(),
        "config": {"model": "sam2.1-hiera-small (random weights)", "image_size": args.image_size,
                   "flops_size": args.flops_size, "warmup": args.warmup, "frames": args.frames,
                   "stagger": f"{args.stagger} objects, object k born on frame {STAGGER}k",
                   "engine": "SAM2Engine(dtype=bfloat16, fill_hole_area=config default), step(t, frame) per frame",
                   "reference": "SAM2VideoPredictor.propagate_in_video inside torch.autocast('cuda', bfloat16)",
                   "threads": "the counted (main) thread only"},
        "cost_model": {"launch_us": round(model.launch_s * 1e6, 2), "tflops": round(model.flops_per_s / 1e12, 1),
                       "bandwidth_gb_s": model.bandwidth / 1e9,
                       "anchors_fps": H100_ENGINE_FPS, "sam3.1_fps_for_reference": H100_SAM31_FPS,
                       "residuals_ms": {n: round(1000 * r, 2) for n, r in zip(H100_ENGINE_FPS, model.residuals)}},
        "rows": rows,
    }
    report["reference_linear_check"] = {n: {k: {"formula": a, "counted": b} for k, (a, b) in v.items()}
                                        for n, v in extra["reference_linear_check"].items()}
    report["size_check"] = size_check(args, extra["measured"])
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report, indent=1))
    print(table(report), file=sys.stderr if args.json else sys.stdout)
    return report


if __name__ == "__main__":
    main()
