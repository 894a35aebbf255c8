"""GPU cost of the whole tracking loop per frame, counted on the CPU (``gpu_counts.py --e2e``).

``TrackingPipeline`` runs a clip with video + JSON outputs, YOLOX (the real ONNX model) every
``--detect-every`` frames and random-weight SAM 2.1 small (``tracker.dtype=bfloat16``, CUDA's
behaviour emulated as in ``gpu_counts.py``). Frames ``--first`` to ``--last`` (exclusive) are
counted, each from the start of its ``tracker.step`` to the start of the next: the step, the
association, prompting and back-fill, the hand-off to the writer. Only the tracking thread is
counted (PyTorch's dispatch and function modes are thread-local: the decoder, detector and
writer threads run beside it uncounted; the detector is ONNX, no torch anyway).

Each frame is split in two: what the engine's own calls cost (``step``, ``add``, ``reprompt``,
``remove``, ``backfill``: what ``bench/e2e.py`` replays as "engine alone on the same frames") and
what the loop adds around them (``current()``, appearance vectors, association...); the launch
ratio is loop / engine alone. Keyframes (frames the detector ran on) are reported apart.

Per-mask numpy work on the tracking thread is counted two ways at once, because neither sees
everything: ``sys.setprofile`` on that thread sees every C call, so ndarray methods (``astype``,
``reshape``, ``sum``...) with their array, and numpy's Python functions with their arguments;
numpy 2's public C functions (``np.unpackbits``, ``np.concatenate``...) are dispatcher objects a
profiler does not see, so they are wrapped while counting (calls from other threads are not
recorded). Reported: numpy calls by caller file:line, and those touching at least one
full-resolution mask (H*W elements). Operators on arrays (``a & b``, ``a[mask]``) are seen by neither.

Random weights give random masks: association settings keep objects alive
(``association.birth_max_overlap=1.0``, a huge ``merge_frames``, ``confirm_hits=1``) and the
object count is reported with every number. The default image size is 256 px (launches, syncs
and casts do not depend on it: ``gpu_counts.py`` checks that claim); transfers depend on the
video size (720p), not on the image size.

    python bench/gpu_counts.py --e2e                   # cars 720p, frames 45-75, 256 px
    python bench/gpu_counts.py --e2e --image-size 1024 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections import Counter as Histogram
from pathlib import Path
from typing import Iterator

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from e2e import ASSETS, TimedSource  # noqa: E402
from gpucount import Tally  # noqa: E402
from random_weights import random_sam2_checkpoint  # noqa: E402

ENGINE_CALLS = ("step", "add", "reprompt", "remove", "backfill")
_NUMPY_DIR = str(Path(np.__file__).resolve().parent)
_SITE_SKIP = (_NUMPY_DIR, str(BENCH / "gpucount"), str(Path(__file__).resolve()))


class NumpyCalls:
    """numpy calls made on one thread, by caller file:line, with the largest array each touched
    where it can be seen (an ndarray method's array; a numpy function's arguments and result)."""

    def __init__(self, mask_pixels: int) -> None:
        self.mask_pixels = mask_pixels
        self.calls: Histogram = Histogram()
        self.mask_sized: Histogram = Histogram()

    def profile(self, frame, event: str, arg) -> None:
        if event == "c_call":
            owner = getattr(arg, "__self__", None)
            module = getattr(arg, "__module__", None) or ""
            if isinstance(owner, np.ndarray):
                self._seen(frame, f"ndarray.{arg.__name__}", owner.size)
            elif module.startswith("numpy"):
                self._seen(frame, f"np.{arg.__name__}", 0)  # a C function of numpy's: arguments unseen
        elif event == "call" and frame.f_code.co_filename.startswith(_NUMPY_DIR):
            caller = frame.f_back
            if caller is not None and not caller.f_code.co_filename.startswith(_NUMPY_DIR):
                size = max((v.size for v in frame.f_locals.values() if isinstance(v, np.ndarray)), default=0)
                self._seen(caller, f"np.{frame.f_code.co_name}", size)

    def _seen(self, frame, name: str, size: int) -> None:
        if frame.f_code.co_filename.startswith(_NUMPY_DIR):
            return  # numpy calling itself
        site = _site(frame)
        if site is None:
            return
        self.calls[f"{name} @ {site}"] += 1
        if size >= self.mask_pixels:
            self.mask_sized[f"{name} @ {site}"] += 1


def _site(frame) -> str | None:
    """file:line of the innermost frame outside numpy and this counter (None: the counter's own calls)."""
    from gpucount.counter import _short

    if frame.f_code.co_filename.startswith(_SITE_SKIP[1:]):
        return None
    while frame is not None and frame.f_code.co_filename.startswith(_SITE_SKIP):
        frame = frame.f_back
    return None if frame is None else f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"


@contextlib.contextmanager
def numpy_functions_seen(frames: "FrameCounts") -> Iterator[None]:
    """numpy's public functions, wrapped while counting: in numpy 2 they are C dispatcher objects
    that a profiler does not see being called. Calls from the counting thread are recorded with
    the largest array among their arguments (modules that call ``np.name`` see the wrapper)."""
    owner = threading.get_ident()
    originals = {name: f for name, f in vars(np).items() if type(f).__name__ == "_ArrayFunctionDispatcher"}

    def wrapped(name, function):
        def call(*args, **kwargs):
            out = function(*args, **kwargs)
            calls = frames.numpy_now
            if calls is not None and threading.get_ident() == owner:
                arrays = [a for a in (*args, *kwargs.values(), out) if isinstance(a, np.ndarray)]
                calls._seen(sys._getframe(1), f"np.{name}", max((a.size for a in arrays), default=0))
            return out

        return call

    for name, function in originals.items():
        setattr(np, name, wrapped(name, function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(np, name, function)


class FrameCounts:
    """Per counted frame: the loop's tally, the engine calls' tally, keyframe or not, objects."""

    def __init__(self, counter, first: int, last: int, mask_pixels: int) -> None:
        self.counter, self.first, self.last = counter, first, last
        self.frames: dict[int, dict] = {}
        self.keyframes: set[int] = set()
        self.numpy: dict[int, NumpyCalls] = {}
        self.mask_pixels = mask_pixels
        self._detected: list[np.ndarray] = []  # frames the detector was given (the loop waits for its answer)
        self._frame: np.ndarray | None = None
        self._depth = 0
        self._index: int | None = None
        self.numpy_now: NumpyCalls | None = None  # the counted frame's numpy calls, while one is counted

    def attach(self, tracker, detector) -> None:
        for name in ENGINE_CALLS:
            setattr(tracker, name, self._engine_call(name, getattr(tracker, name), tracker))
        inner = detector.detect

        def detect(frame, phrases):  # on the detector's thread, maybe before the step of its frame
            self._detected.append(frame)
            return inner(frame, phrases)

        detector.detect = detect

    def _engine_call(self, name: str, inner, tracker):
        def call(*args, **kwargs):
            if name == "step":
                self._new_frame(args[0], args[1], len(tracker.ids))
            entry = self.frames.get(self._index) if self._depth == 0 else None
            outer = self.counter.switch(entry["engine"]) if entry is not None else None
            self._depth += 1
            try:
                return inner(*args, **kwargs)
            finally:
                self._depth -= 1
                if outer is not None:
                    self.counter.switch(outer)

        return call

    def _new_frame(self, index: int, frame: np.ndarray, objects: int) -> None:
        self._end_frame()
        self._index, self._frame = index, frame
        if self.first <= index < self.last:
            entry = {"loop": Tally(f"frame {index} loop"), "engine": Tally(f"frame {index} engine"),
                     "objects": objects}
            self.frames[index] = entry
            self.counter.switch(entry["loop"])
            self.numpy[index] = self.numpy_now = NumpyCalls(self.mask_pixels)
            sys.setprofile(self.numpy_now.profile)
        else:
            self.counter.switch(self.counter.tallies[0])

    def _end_frame(self) -> None:
        """The frame in hand is over: was it a keyframe (its answer was waited for within it)?"""
        sys.setprofile(None)
        self.numpy_now = None
        if self._frame is not None and any(f is self._frame for f in self._detected):
            self.keyframes.add(self._index)
        self._detected = [f for f in self._detected if f is not self._frame]

    def stop(self) -> None:
        self._end_frame()


def run(args) -> dict:
    from gpu_counts import counting_as_on_cuda
    from promptrack.pipeline.api import _model_names
    from promptrack.pipeline.config import load_config
    from promptrack.pipeline.detectors import build_detector
    from promptrack.pipeline.loop import TrackingPipeline, build_sam2_tracker
    from promptrack.pipeline.outputs import open_sinks
    from promptrack.pipeline.sources import open_source

    phrases = [s.strip() for s in args.prompt.split(".") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="promptrack-gpucounts-e2e-") as tmp:
        checkpoint = random_sam2_checkpoint(Path(tmp), "small")
        config = load_config("default", [
            f"tracker.sam2={checkpoint}", f"tracker.image_size={args.image_size}", "tracker.dtype=bfloat16",
            "device=cpu", "detector.name=yolox", f"detector.model={args.yolox}", f"detect_every={args.detect_every}",
            "association.birth_max_overlap=1.0", "association.merge_frames=1000000", "association.confirm_hits=1",
            "output.mot=false", "output.video=true", "output.json=true", f"max_frames={args.last + 1}",
            "input.video_decoder=cpu"])
        detector = build_detector(config.detector, "cpu")
        tracker = build_sam2_tracker(config, "cpu")
        pipeline = TrackingPipeline(config, detector=detector, tracker=tracker)
        source = TimedSource(open_source(args.video, max_frames=args.last + 1, decoder=config.input.video_decoder),
                             height=args.height)
        width, height = source.size
        (Path(tmp) / "out").mkdir()
        outputs = open_sinks(config, Path(tmp) / "out", source.info, phrases, _model_names(config))
        started = time.perf_counter()
        with counting_as_on_cuda() as counter:
            frames = FrameCounts(counter, args.first, args.last, width * height)
            frames.attach(pipeline.tracker, pipeline.detector)
            try:
                with numpy_functions_seen(frames):
                    pipeline.run(source, phrases, outputs.sinks, progress=False)
            finally:
                frames.stop()
                outputs.close()
        seconds = time.perf_counter() - started
        written = sorted(p.name for p in (Path(tmp) / "out").iterdir())
    return summarise(frames, args, (width, height), seconds, written)


KEYS = ("launches", "op_calls", "h2d_bytes", "d2h_bytes", "uploads", "casts", "autocast_casts")


def _mean(entries: list[dict], part: str, key: str) -> float:
    if not entries:
        return 0.0
    if key == "syncs":
        values = [len(e[p].syncs) for e in entries for p in _parts(part)]
    else:
        values = [getattr(e[p], key) for e in entries for p in _parts(part)]
    return round(sum(values) / len(entries), 2)


def _parts(part: str) -> tuple[str, ...]:
    return ("loop", "engine") if part == "total" else (part,)


def _group(entries: list[dict], numpy_calls: list[NumpyCalls]) -> dict:
    out: dict = {"frames": len(entries),
                 "objects_tracked": round(sum(e["objects"] for e in entries) / max(len(entries), 1), 2)}
    for part in ("total", "engine", "loop"):
        out[part] = {key: _mean(entries, part, key) for key in ("syncs",) + KEYS}
    out["launch_ratio_total_over_engine"] = round(out["total"]["launches"] / max(out["engine"]["launches"], 1), 3)
    sites: Histogram = Histogram()
    for e in entries:
        for p in ("loop", "engine"):
            for s in e[p].syncs:
                sites[f"{s.kind} @ {s.where} ({'engine call' if p == 'engine' else 'loop'})"] += 1
    out["sync_sites_per_frame"] = {k: round(v / max(len(entries), 1), 2) for k, v in sites.most_common()}
    calls, big = Histogram(), Histogram()
    for n in numpy_calls:
        calls.update(n.calls)
        big.update(n.mask_sized)
    n = max(len(entries), 1)
    out["numpy_calls_per_frame"] = round(sum(calls.values()) / n, 1)
    out["numpy_mask_sized_calls_per_frame"] = round(sum(big.values()) / n, 2)
    out["numpy_mask_sized_sites"] = {k: round(v / n, 2) for k, v in big.most_common(12)}
    out["numpy_top_sites"] = {k: round(v / n, 2) for k, v in calls.most_common(8)}
    return out


def summarise(frames: FrameCounts, args, size: tuple[int, int], seconds: float, written: list[str]) -> dict:
    indices = sorted(frames.frames)
    groups = {"all": indices, "ordinary": [i for i in indices if i not in frames.keyframes],
              "keyframes": [i for i in indices if i in frames.keyframes]}
    report = {"config": {"video": Path(args.video).name, "size": f"{size[0]}x{size[1]}", "frames": [args.first, args.last],
                         "sam2": "sam2.1-hiera-small (random weights), tracker.dtype=bfloat16 (CUDA emulated)",
                         "image_size": args.image_size, "detector": "yolox nano (ONNX, real weights)",
                         "detect_every": args.detect_every, "outputs": written,
                         "association": "birth_max_overlap=1.0, merge_frames=1000000, confirm_hits=1",
                         "threads": "tracking thread only (dispatch modes are thread-local)",
                         "keyframes": sorted(frames.keyframes & set(indices))},
              "seconds": round(seconds, 1)}
    for name, group in groups.items():
        report[name] = _group([frames.frames[i] for i in group], [frames.numpy[i] for i in group])
    return report


def table(report: dict) -> str:
    c = report["config"]
    lines = [f"tracking loop per frame, counted on the CPU: {c['video']} at {c['size']}, frames {c['frames'][0]}-"
             f"{c['frames'][1] - 1}, SAM 2.1 small at {c['image_size']} px, YOLOX every {c['detect_every']}, video + JSON"
             f" (tracking thread only)",
             f"{'frames':<10}{'n':>4}{'objects':>9}{'syncs':>7}{'launches':>10}{'engine':>8}{'ratio':>7}"
             f"{'H2D kB':>8}{'D2H kB':>8}{'np mask calls':>15}"]
    for name in ("all", "ordinary", "keyframes"):
        g = report[name]
        if not g["frames"]:
            continue
        lines.append(f"{name:<10}{g['frames']:>4}{g['objects_tracked']:>9.1f}{g['total']['syncs']:>7.2f}"
                     f"{g['total']['launches']:>10.0f}{g['engine']['launches']:>8.0f}"
                     f"{g['launch_ratio_total_over_engine']:>7.2f}{g['total']['h2d_bytes'] / 1e3:>8.0f}"
                     f"{g['total']['d2h_bytes'] / 1e3:>8.0f}{g['numpy_mask_sized_calls_per_frame']:>15.2f}")
    for name in ("ordinary", "keyframes"):
        g = report[name]
        if g["frames"]:
            lines.append(f"syncs a frame, {name}: " + "; ".join(f"{k} x{v:g}" for k, v in g["sync_sites_per_frame"].items()))
            if g["numpy_mask_sized_sites"]:
                lines.append(f"per-mask numpy calls a frame, {name}: "
                             + "; ".join(f"{k} x{v:g}" for k, v in g["numpy_mask_sized_sites"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="gpu_counts.py --e2e", description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(ASSETS / "videos" / "cars_1080p.mp4"))
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--prompt", default="car . person . truck . bus")
    p.add_argument("--first", type=int, default=45, help="first counted frame")
    p.add_argument("--last", type=int, default=75, help="frames counted: first .. last - 1")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--detect-every", type=int, default=15)
    p.add_argument("--yolox", default=str(ASSETS / "models" / "yolox_nano.onnx"))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=1))
    print(table(report), file=sys.stderr if args.json else sys.stdout)
    return report


if __name__ == "__main__":
    main()
