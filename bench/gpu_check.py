"""The whole GPU measurement in one call (run through ``bench/gpu_check.sh``; see bench/RESULTS.md).

Steps, each in its own process with its own time budget, under one hard deadline (a step that
fails or runs out of time is reported and the next one runs):

- ``grid_off`` / ``grid_auto`` / ``grid_on``: ``SAM2Engine`` with ``compile="off" | "auto" | "on"``,
  all objects boxed on frame 0 of a synthetic video (moving boxes, ``bench/engine.py``), at each
  object count: warm-up frames (memory fill-up, compiling, CUDA graph capture; their seconds are
  ``warmup_s``) and then steady-state frames (``ms_per_frame`` mean and median, each step to host
  masks), peak memory per count (CUDA ``max_memory_allocated``; on the CPU the process's peak RSS);
- ``grid_reference``: sam2's ``SAM2VideoPredictor`` on the same frames and boxes (one
  ``init_state`` over a JPEG folder, ``reset_state`` per count, ``propagate_in_video``, masks to
  the host each frame like the engine's);
- ``e2e_<height>``: ``bench/e2e.py`` on the cars clip scaled to that height: the pipeline with
  video + JSON, the engine alone on the same calls, the Grounded-SAM-2 continuous-id rule's cost
  structure (YOLOX every 15 frames, the rule's period 15), steady FPS after a warm-up;
- ``memory``: the engine (eager) on a few objects, memory after frame 100 and after frame 1000.

Rows go out as ``RESULT {json}`` lines as they are measured, so a step stopped at its budget
keeps what it measured. The report (``gpu_check.json``) is rewritten after each step; a short
table is printed last.

    bash bench/gpu_check.sh --smoke --out /tmp/gc     # the same code on the CPU at tiny sizes
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from random_weights import random_sam2_checkpoint  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run measures, and with how many frames and seconds."""

    device: str
    sam2: str
    image_size: int
    objects: tuple[int, ...]
    modes: tuple[str, ...]  # engine compile modes of the grid, in the order they run
    skipped_modes: dict  # mode -> why it is not run
    warmup: int  # grid frames before timing (memory fill-up: num_maskmem=7, compile, capture)
    frames: int  # grid frames timed per count (fewer where its share of the budget runs out)
    memory_objects: int
    memory_at: tuple[int, int]
    e2e_heights: tuple[int, ...]
    e2e_frames: int
    e2e_warmup: int
    detect_every: int
    budgets: dict  # step -> seconds
    deadline_s: float  # all steps end within this many seconds of the script's start

    def steps(self) -> list[str]:
        """Steps in order of value: eager and reference first, compiled next, then e2e and memory."""
        grid = [f"grid_{mode}" for mode in self.modes if mode != "on"]
        return (grid[:1] + ["grid_reference"] + grid[1:] + [f"e2e_{h}" for h in self.e2e_heights] + ["memory"]
                + (["grid_on"] if "on" in self.modes else []))


FULL = Plan(device="cuda", sam2="small", image_size=1024, objects=(1, 16, 64, 128), modes=("off", "auto", "on"),
            skipped_modes={}, warmup=10, frames=30, memory_objects=3, memory_at=(100, 1000),
            e2e_heights=(720, 1080), e2e_frames=168, e2e_warmup=30, detect_every=15,
            budgets={"grid_off": 45, "grid_reference": 70, "grid_auto": 95, "e2e_720": 105, "e2e_1080": 85,
                     "memory": 55, "grid_on": 90},
            deadline_s=455)
SMOKE = Plan(device="cpu", sam2="tiny", image_size=64, objects=(1, 2), modes=("off", "auto"),
             skipped_modes={"on": "not in --smoke: torch.compile on the CPU takes minutes"}, warmup=2, frames=2,
             memory_objects=1, memory_at=(3, 6), e2e_heights=(128,), e2e_frames=6, e2e_warmup=2, detect_every=2,
             # Seconds on an idle CPU; the budgets are a backstop for a shared, loaded one (CI, laptops).
             budgets={"grid_off": 180, "grid_reference": 180, "grid_auto": 180, "e2e_128": 240,
                      "memory": 180},
             deadline_s=1200)


# ---------------------------------------------------------------------------------------------- workers
def emit(row: dict) -> None:
    emit_to(sys.stdout, row)


def emit_to(stream, row: dict) -> None:
    print("RESULT " + json.dumps(row), file=stream, flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def memory_mb(device: str, peak: bool) -> float:
    """CUDA memory allocated (peak or now); on the CPU the process's RSS (peak or now)."""
    if device.startswith("cuda"):
        import torch

        return round((torch.cuda.max_memory_allocated() if peak else torch.cuda.memory_allocated()) / 2**20, 1)
    if peak:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def reset_peak(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def load_model(plan: Plan, checkpoint: str):
    import torch

    from promptrack.pipeline.models import sam2_spec
    from promptrack.trackers.sam2_engine import load_sam2_model

    torch.manual_seed(0)
    return load_sam2_model(sam2_spec(plan.sam2).config, checkpoint, plan.device, plan.image_size)


def timings(seconds: list[float]) -> dict:
    ms = [1000 * s for s in seconds]
    return {"frames": len(ms), "ms_per_frame": round(float(np.mean(ms)), 2),
            "median_ms": round(float(np.median(ms)), 2), "fps": round(1000 / float(np.mean(ms)), 2)}


class Slices:
    """Shares a step's remaining seconds among the counts still to measure (a count that compiles
    for long leaves less to the next ones, but each gets its share of what is left)."""

    def __init__(self, budget: float, parts: int, reserve: float = 3.0) -> None:
        self.end, self.parts = time.perf_counter() + budget - reserve, parts

    def next(self) -> float:
        """The deadline (perf_counter) of the next part."""
        now = time.perf_counter()
        share = max(0.0, self.end - now) / max(self.parts, 1)
        self.parts -= 1
        return now + share


def grid_engine(plan: Plan, mode: str, checkpoint: str, budget: float) -> None:
    """Steady-state ms/frame and peak memory of the engine at each object count, compile `mode`."""
    import torch

    from engine import first_boxes, make_frame
    from promptrack.trackers.sam2_engine import SAM2Engine

    model = load_model(plan, checkpoint)
    dtype = torch.bfloat16 if plan.device.startswith("cuda") else torch.float32
    slices = Slices(budget, len(plan.objects))
    for objects in plan.objects:
        until = slices.next()
        row = {"mode": mode, "objects": objects}
        engine = None
        try:
            frames = [make_frame(t, plan.image_size, objects) for t in range(plan.warmup + plan.frames)]
            reset_peak(plan.device)
            row["base_mb"] = memory_mb(plan.device, peak=False)
            # packed masks, as the pipeline takes them (its writer thread unpacks them, off the critical path)
            engine = SAM2Engine(model, device=plan.device, dtype=dtype, fill_hole_area=0, compile=mode,
                                packed_masks=True)
            sync(plan.device)
            started = time.perf_counter()
            engine.step(0, frames[0])
            engine.add(list(range(1, objects + 1)), first_boxes(plan.image_size, objects))
            engine.current()
            sync(plan.device)
            row["first_frame_s"] = round(time.perf_counter() - started, 3)
            for t in range(1, plan.warmup):
                engine.step(t, frames[t])
            sync(plan.device)
            row["warmup_frames"], row["warmup_s"] = plan.warmup, round(time.perf_counter() - started, 3)
            seconds = []
            for t in range(plan.warmup, plan.warmup + plan.frames):
                if len(seconds) >= 2 and time.perf_counter() > until:
                    row["cut_by_budget"] = True
                    break
                a = time.perf_counter()
                engine.step(t, frames[t])  # returns the frame's results on the host (masks packed)
                sync(plan.device)
                seconds.append(time.perf_counter() - a)
            row.update(timings(seconds), peak_mb=memory_mb(plan.device, peak=True))
        except Exception as exc:  # noqa: BLE001 - reported, and the next count runs
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        emit(row)
        del engine
        reset_peak(plan.device)


def grid_reference(plan: Plan, checkpoint: str, budget: float) -> None:
    """sam2's SAM2VideoPredictor on the grid's frames and boxes (bf16 autocast on CUDA, as its demos)."""
    import contextlib

    import torch

    from engine import first_boxes, write_jpegs

    model = load_model(plan, checkpoint)
    total = plan.warmup + plan.frames
    slices = Slices(budget, len(plan.objects))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if plan.device.startswith("cuda")
                else contextlib.nullcontext())
    with tempfile.TemporaryDirectory(prefix="gpu-check-ref-") as folder, autocast:
        # One JPEG folder for every count: the frames of the largest count (boxes of the others sit on it).
        write_jpegs(Path(folder), total, max(plan.objects), plan.image_size)
        started = time.perf_counter()
        state = model.init_state(folder)
        init_s = round(time.perf_counter() - started, 3)
        for objects in plan.objects:
            until = slices.next()
            row = {"mode": "reference", "objects": objects, "init_state_s": init_s}
            try:
                model.reset_state(state)
                reset_peak(plan.device)
                row["base_mb"] = memory_mb(plan.device, peak=False)
                boxes = first_boxes(plan.image_size, objects)
                started = time.perf_counter()
                for k in range(objects):
                    model.add_new_points_or_box(state, frame_idx=0, obj_id=k + 1, box=boxes[k])
                seconds, last = [], time.perf_counter()
                for t, _, masks in model.propagate_in_video(state, start_frame_idx=0):
                    (masks > 0).cpu().numpy()  # to the host, as the engine's step returns
                    sync(plan.device)
                    now = time.perf_counter()
                    if t == plan.warmup - 1:
                        row["warmup_frames"], row["warmup_s"] = plan.warmup, round(now - started, 3)
                    elif t >= plan.warmup:
                        seconds.append(now - last)
                        if len(seconds) >= 2 and now > until:
                            row["cut_by_budget"] = True
                            break
                    last = now
                row.update(timings(seconds), peak_mb=memory_mb(plan.device, peak=True))
            except Exception as exc:  # noqa: BLE001
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            emit(row)
            reset_peak(plan.device)


def memory_run(plan: Plan, checkpoint: str, budget: float) -> None:
    """Memory of the engine (eager, few objects) after frame `memory_at[0]` and after `memory_at[1]`."""
    import torch

    from engine import first_boxes, make_frame
    from promptrack.trackers.sam2_engine import SAM2Engine

    model = load_model(plan, checkpoint)
    dtype = torch.bfloat16 if plan.device.startswith("cuda") else torch.float32
    objects, (early, late) = plan.memory_objects, plan.memory_at
    reset_peak(plan.device)
    engine = SAM2Engine(model, device=plan.device, dtype=dtype, fill_hole_area=0, compile="off", packed_masks=True)
    row = {"objects": objects, "compile": "off", "base_mb": memory_mb(plan.device, peak=False)}
    end = time.perf_counter() + budget - 3
    frames = [make_frame(t, plan.image_size, objects) for t in range(20)]  # reused: the engine cannot tell
    started = time.perf_counter()
    for t in range(late):
        engine.step(t, frames[t % len(frames)])
        if t == 0:
            engine.add(list(range(1, objects + 1)), first_boxes(plan.image_size, objects))
        if t + 1 in (early, late):
            sync(plan.device)
            row[f"mb_at_{t + 1}"] = memory_mb(plan.device, peak=False)
            row[f"peak_mb_at_{t + 1}"] = memory_mb(plan.device, peak=True)
            emit(dict(row, frames=t + 1, ms_per_frame=round(1000 * (time.perf_counter() - started) / (t + 1), 2)))
        if time.perf_counter() > end:
            row["cut_by_budget_at"] = t + 1
            emit(dict(row, frames=t + 1))
            return


def e2e_run(plan: Plan, height: int, checkpoint: str, assets: dict, compile_mode: str, work: Path) -> None:
    """bench/e2e.py at `height`: video + JSON, the engine alone on its calls, the GSAM2 rule."""
    import contextlib
    import io

    import e2e

    hub = work / "hf"
    hub.mkdir(exist_ok=True)
    argv = ["--video", assets["video"], "--yolox", assets["yolox"], "--height", str(height),
            "--frames", str(plan.e2e_frames), "--warmup", str(plan.e2e_warmup), "--image-size", str(plan.image_size),
            "--sam2", checkpoint, "--hub", str(hub), "--device", plan.device, "--prompt", "car",
            "--detect-every", str(plan.detect_every), "--gsam2-every", str(plan.detect_every),
            "--runs", "outputs", "engine", "gsam2", "--set", f"tracker.compile={compile_mode}"]
    stdout = sys.stdout
    with contextlib.redirect_stdout(io.StringIO()):  # its own table: the report has it all
        # after each run, what is measured so far (a step stopped at its budget keeps it)
        e2e.main(argv, progress=lambda result: emit_to(stdout, {"height": height, **result}))


def worker(args: argparse.Namespace) -> None:
    import torch

    plan = SMOKE if args.smoke else FULL
    torch.set_grad_enabled(False)
    if args.worker.startswith("grid_") and args.worker != "grid_reference":
        grid_engine(plan, args.worker[len("grid_"):], args.checkpoint, args.budget)
    elif args.worker == "grid_reference":
        with torch.inference_mode():
            grid_reference(plan, args.checkpoint, args.budget)
    elif args.worker == "memory":
        memory_run(plan, args.checkpoint, args.budget)
    elif args.worker.startswith("e2e_"):
        e2e_run(plan, int(args.worker[len("e2e_"):]), args.checkpoint, json.loads(args.assets), args.compile,
                Path(args.work))
    else:
        raise SystemExit(f"unknown step {args.worker}")


# ---------------------------------------------------------------------------------------------- orchestrator
def find_assets() -> dict:
    """The cars clip and YOLOX: the carried copies (.gpu/, bench/gpu_prepare.sh) or the shared assets."""
    shared = ROOT.parent / "shared" / "assets"
    if not shared.exists():
        shared = Path("/work/shared/assets")
    found = {}
    for key, name, sub in (("video", "cars_1080p.mp4", "videos"), ("yolox", "yolox_nano.onnx", "models")):
        for candidate in (ROOT / ".gpu" / name, shared / sub / name):
            if candidate.is_file():
                found[key] = str(candidate)
                break
    return found


def _commit() -> str:
    """This tree's commit (the GPU machine gets no .git: gpu_prepare.sh passes GPU_CHECK_COMMIT)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def hardware(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "commit": os.environ.get("GPU_CHECK_COMMIT") or _commit()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line)
    except (OSError, StopIteration):
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def run_child(cmd: list[str], budget: float) -> tuple[str, float, list[dict], str, int | None]:
    """Run `cmd` for at most `budget` seconds: (status "ok" | "failed" | "timeout", seconds, its
    ``RESULT`` rows, those before a failure or the stop too, its stderr, its exit code).

    Its output goes to files, not pipes: a grandchild left holding a pipe (a compiler's worker
    pool) cannot keep the stop from returning."""
    began = time.time()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # Its own process group (a stop takes its children too: a compiler's workers), in this
        # session (so whatever ends this session's processes ends them too).
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, preexec_fn=os.setpgrp)
        CHILDREN.add(proc.pid)
        try:
            proc.wait(timeout=budget)
            status = "ok" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            status = "timeout"
        CHILDREN.discard(proc.pid)
        out.seek(0)
        err.seek(0)
        rows = [json.loads(line[len("RESULT "):]) for line in out.read().splitlines() if line.startswith("RESULT ")]
        return status, round(time.time() - began, 1), rows, err.read(), proc.returncode


CHILDREN: set[int] = set()  # process groups of the steps running


def stop_children(signum, frame) -> None:
    """On SIGTERM (the shell's backstop): end the running step's group, then leave (the report so
    far is saved on the way out)."""
    for pgid in list(CHILDREN):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    raise SystemExit(f"gpu_check: stopped by signal {signum}")


class Runner:
    """Runs steps as child processes under their budgets and the deadline, and keeps the report."""

    def __init__(self, plan: Plan, args: argparse.Namespace, started: float) -> None:
        self.plan, self.args, self.started = plan, args, started
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = open(self.out / "gpu_check.log", "a")
        self.report: dict = {"config": {}, "steps": {}, "grid": [], "e2e": {}, "memory": {}}

    def left(self) -> float:
        return self.plan.deadline_s - (time.time() - self.started)

    def say(self, line: str) -> None:
        line = f"[{time.time() - self.started:6.1f}s] {line}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def save(self) -> None:
        self.report["total_s"] = round(time.time() - self.started, 1)
        tmp = self.out / "gpu_check.json.tmp"
        tmp.write_text(json.dumps(self.report, indent=1))
        tmp.replace(self.out / "gpu_check.json")

    def run(self, step: str, extra: list[str]) -> list[dict]:
        budget = min(self.plan.budgets[step], self.left() - 5)
        if budget < 10:
            self.report["steps"][step] = {"status": "skipped", "reason": "no time left before the deadline"}
            self.say(f"{step}: skipped (no time left)")
            return []
        cmd = [sys.executable, __file__, "--worker", step, "--budget", str(budget), *extra]
        if self.args.smoke:
            cmd.append("--smoke")
        self.say(f"{step}: running (budget {budget:.0f}s)")
        # what the report says if the whole check is stopped (SIGTERM) while this step runs
        self.report["steps"][step] = {"status": "stopped", "budget_s": round(budget)}
        status, seconds, rows, err, code = run_child(cmd, budget)
        entry = {"status": status, "seconds": seconds, "budget_s": round(budget), "rows": len(rows)}
        errors = [r["error"] for r in rows if "error" in r]
        if status != "ok" or errors:
            tail = [x for x in err.strip().splitlines() if x.strip()][-12:]
            entry["error"] = errors[0] if errors else (tail[-1] if tail else f"exit code {code}")
            entry["stderr_tail"] = tail
        self.report["steps"][step] = entry
        self.log.write(f"----- {step} stderr -----\n{err}\n")
        self.say(f"{step}: {status} in {seconds}s, {len(rows)} rows" + (f" ({entry['error']})" if "error" in entry
                                                                         else ""))
        return rows

    def main(self) -> dict:
        plan, work = self.plan, Path(self.args.work)
        work.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(work / "inductor"))  # later steps reuse kernels
        self.report["config"] = {"smoke": self.args.smoke, **{k: v for k, v in dataclasses.asdict(plan).items()},
                                 "model": f"sam2.1-hiera-{plan.sam2} (random weights, seeded)",
                                 "memory_measure": ("CUDA max_memory_allocated / memory_allocated (MB)"
                                                    if plan.device.startswith("cuda") else "process RSS (MB)"),
                                 "hardware": hardware(plan.device)}
        assets = find_assets()
        try:
            began = time.time()
            checkpoint = str(random_sam2_checkpoint(work, plan.sam2))  # its name tells its size
            self.report["steps"]["weights"] = {"status": "ok", "seconds": round(time.time() - began, 1)}
        except Exception as exc:  # noqa: BLE001 - every step needs it: report and stop
            self.report["steps"]["weights"] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            self.save()
            return self.report
        self.save()
        common = ["--checkpoint", checkpoint, "--work", str(work)]
        for mode, why in plan.skipped_modes.items():
            self.report["steps"][f"grid_{mode}"] = {"status": "skipped", "reason": why}
        for step in plan.steps():
            if self.args.steps and step not in self.args.steps:
                continue
            if step.startswith("e2e_"):
                if set(assets) != {"video", "yolox"}:
                    self.report["steps"][step] = {"status": "failed", "error": "cars_1080p.mp4 or yolox_nano.onnx "
                                                  "not found (.gpu/ or ../shared/assets): run bench/gpu_prepare.sh"}
                    continue
                # e2e runs the compile mode the grid showed working: auto where it measured a count and
                # failed none (a count cut by the budget is no failure), else eager
                auto = [r for r in self.report["grid"] if r.get("mode") == "auto"]
                good = any("ms_per_frame" in r for r in auto) and not any("error" in r for r in auto)
                mode = "auto" if good else "off"
                rows = self.run(step, [*common, "--assets", json.dumps(assets), "--compile", mode])
                if rows:  # the last holds every run measured
                    self.report["e2e"][f"{rows[-1]['height']}p"] = rows[-1]
            elif step == "memory":
                rows = self.run(step, common)
                if rows:
                    self.report["memory"] = rows[-1]
            else:
                self.report["grid"] += self.run(step, common)
            self.save()
        return self.report


def table(report: dict) -> str:
    """The report's numbers, short."""
    lines = []
    hw = report["config"].get("hardware", {})
    lines.append(f"device: {hw.get('gpu') or hw.get('cpu', '?')}, torch {hw.get('torch')}, "
                 f"commit {hw.get('commit')}, {report['config'].get('model')} at {report['config'].get('image_size')}")
    objects = report["config"].get("objects", [])
    lines.append("engine grid, steady ms/frame (peak MB) | warm-up s; objects: " + " / ".join(map(str, objects)))
    for mode in ("off", "auto", "on", "reference"):
        rows = {r["objects"]: r for r in report["grid"] if r.get("mode") == mode}
        if not rows:
            status = report["steps"].get(f"grid_{mode}", {}).get("status", "not run")
            lines.append(f"  {mode:<10} {status}")
            continue
        cells = []
        for k in objects:
            r = rows.get(k)
            if r is None:
                cells.append("-")
            elif "error" in r or "ms_per_frame" not in r:
                cells.append("error")
            else:
                cells.append(f"{r['ms_per_frame']:.1f} ({r['peak_mb']:.0f}) | {r.get('warmup_s', 0):.1f}")
        lines.append(f"  {mode:<10} " + " / ".join(cells))
    for name, result in report["e2e"].items():
        runs = result.get("runs", {})
        parts = []
        for run, label in (("promptrack, video + JSON", "video+JSON"), ("engine alone, same frames and objects",
                                                                       "engine alone"),
                           ("gsam2 rule, no outputs", "gsam2 rule")):
            r = runs.get(run)
            if r:
                steady = f", steady {r['steady_fps']:.1f}" if "steady_fps" in r else ""
                parts.append(f"{label} {r['fps']:.1f} FPS{steady}")
        tracked = runs.get("promptrack, video + JSON", {}).get("tracked_objects")
        lines.append(f"e2e {name} ({result['config'].get('compile')}, {tracked} objects): " + "; ".join(parts))
    memory = report.get("memory") or {}
    keys = sorted((k for k in memory if k.startswith("mb_at_")), key=lambda k: int(k[len("mb_at_"):]))
    if keys:
        lines.append(f"memory, {memory['objects']} objects, eager: "
                     + ", ".join(f"after frame {k[len('mb_at_'):]} {memory[k]} MB" for k in keys))
    lines.append("steps: " + ", ".join(f"{k} {v['status']}" for k, v in report["steps"].items())
                 + f"; total {report.get('total_s')} s")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="the same code on the CPU at tiny sizes, in seconds")
    p.add_argument("--out", default=os.environ.get("OUT") or "out/gpu_check",
                   help="folder for gpu_check.json, .txt and .log (default: $OUT, else out/gpu_check)")
    p.add_argument("--work", help="scratch folder (weights, JPEGs, compiler cache)")
    p.add_argument("--started", type=float, help="epoch seconds the whole check started (the deadline counts from it)")
    p.add_argument("--steps", nargs="+", metavar="STEP",
                   help="only these steps (grid_off grid_reference grid_auto e2e_720 e2e_1080 memory grid_on)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--assets", help=argparse.SUPPRESS)
    p.add_argument("--compile", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    plan = SMOKE if args.smoke else FULL
    unknown = set(args.steps or ()) - set(plan.steps())
    if unknown:
        p.error(f"unknown steps {' '.join(sorted(unknown))}: choose from {' '.join(plan.steps())}")
    args.work = args.work or tempfile.mkdtemp(prefix="gpu-check-")
    runner = Runner(plan, args, args.started or time.time())
    signal.signal(signal.SIGTERM, stop_children)
    try:
        report = runner.main()
    finally:
        runner.save()
    text = table(report)
    (Path(args.out) / "gpu_check.txt").write_text(text + "\n")
    print(text, flush=True)


if __name__ == "__main__":
    main()
