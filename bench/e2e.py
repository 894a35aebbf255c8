"""Benchmark: the whole pipeline on a clip, stage by stage, next to the Grounded-SAM-2 demo's rule.

Four runs on the same clip, models and device, side by side in one process (in turn, so a load
that changes hits all alike):

- ``promptrack, no outputs``: decode -> SAM 2 engine -> keyframe detector -> associator;
- ``promptrack, video + JSON``: the same, plus the writer stage (drawing, H.264, RLE, JSON);
- ``engine alone, same frames and objects``: the SAM 2 engine's calls of the run above (steps,
  births, re-prompts, removals, back-fills) replayed on a fresh engine from decoded frames, so
  the end-to-end overhead over the engine is one division;
- ``gsam2 rule, no outputs``: the cost structure of Grounded-SAM-2's continuous-id demo
  (``grounded_sam2_tracking_demo_with_continuous_id.py``), written here on the same models: all
  frames dumped to JPEG, all loaded by ``SAM2VideoPredictor.init_state``; every ``gsam2_every``
  frames the detector runs, one extra ``SAM2ImagePredictor`` pass segments its boxes, masks take
  the id of the first tracked mask they overlap at IoU > 0.8, then the video state is reset and
  propagated ``gsam2_every`` frames from the new masks.

``--warmup N`` adds ``steady_fps`` to the promptrack and engine runs: the frames after the first N
over the seconds from the tracker's step of frame N to the run's end (outputs flushed), and
``warmup_s``, the seconds before that step (compiling, CUDA graph capture and first allocations fall
there). Step times, not output times: offline output holds frames back and writes them in bursts.
``--runs`` picks the runs (``engine`` replays the ``outputs`` run's calls, so needs it).

Per-stage seconds of the promptrack runs come from the loop's own clocks
(``TrackingPipeline.times``) plus timers around the sinks: ``decode`` is the decoder thread's
time and ``decode_wait`` what the loop waited for it; ``write`` is the writer thread's time
(``annotate`` + ``encode`` + ``json``) and ``write_wait`` what the loop waited for it. A writer
hidden behind tracking has ``write_wait`` near 0.

With random weights, SAM 2's masks cover much of the frame and merge, so speed runs keep objects
alive (``association.birth_max_overlap=1.0``, a huge ``association.merge_frames``) and report the
mean object count a frame: objects written (``mean_objects``) and, for promptrack, objects SAM 2
carried (``tracked_objects``: offline output holds a new track back until a second detection
confirms it, and random masks seldom meet one; the tracking time follows the carried count).

    python bench/e2e.py --json                                   # CPU: fake hub, 256 px, bedroom, 60 frames
    python bench/e2e.py --annotation                             # drawing only: 1080p, 16 objects
    python bench/e2e.py --hub ~/.cache/huggingface --image-size 1024 --device cuda --sam2 small --json \
        --video cars_1080p.mp4 --height 720                      # GPU; also --height 540 and 1080
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT.parent / "shared" / "assets"
if not ASSETS.exists():
    ASSETS = Path("/work/shared/assets")


# --runs names -> the runs' names in the report.
RUNS = {"no-outputs": "promptrack, no outputs", "outputs": "promptrack, video + JSON",
        "engine": "engine alone, same frames and objects", "gsam2": "gsam2 rule, no outputs"}


def scaled_size(width: int, height: int, to_height: int | None) -> tuple[int, int]:
    """(width, height) scaled to `to_height` rows, aspect kept, width even (None: unchanged)."""
    if not to_height or to_height == height:
        return width, height
    return 2 * round(width * to_height / height / 2), int(to_height)


def scaled(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame at `size` (width, height): a clip read at 540p, 720p or 1080p from one file."""
    import cv2

    if frame.shape[1::-1] == size:
        return frame
    shrink = size[1] < frame.shape[0]
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class TimedSource:
    """A frame source whose decoding (and scaling to `height`) time is counted (it runs in the decoder thread)."""

    def __init__(self, source, height: int | None = None) -> None:
        from dataclasses import replace

        self.source, self.seconds = source, 0.0
        self.size = scaled_size(source.info.width, source.info.height, height)
        self.start, self.info = source.start, replace(source.info, width=self.size[0], height=self.size[1])

    def __len__(self) -> int:
        return len(self.source)

    def frame_time(self, index: int) -> float:
        return self.source.frame_time(index)

    def __iter__(self):
        frames = iter(self.source)
        while True:
            started = time.perf_counter()
            try:
                index, frame = next(frames)
                frame = scaled(frame, self.size)
            except StopIteration:
                return
            finally:
                self.seconds += time.perf_counter() - started
            yield index, frame


class Count:
    """A sink counting objects a frame."""

    def __init__(self) -> None:
        self.frames, self.objects = 0, 0

    def write(self, index, frame, detections) -> None:
        self.frames += 1
        self.objects += len(detections)

    def close(self) -> None:
        pass


def steady(started: float, ended: float, steps: list[float], warmup: int) -> dict:
    """``warmup_s`` (from `started` to the step of frame `warmup`) and ``steady_fps`` (frames from
    that step to `ended`), from the times the tracker's steps began; empty when `warmup` is 0 or
    leaves fewer than 2 frames.

    >>> steady(0.0, 8.0, [0.1, 5.0, 6.0, 7.0], warmup=2)
    {'warmup_frames': 2, 'warmup_s': 6.0, 'steady_fps': 1.0}
    """
    if warmup <= 0 or len(steps) < warmup + 2:
        return {}
    return {"warmup_frames": warmup, "warmup_s": round(steps[warmup] - started, 3),
            "steady_fps": round((len(steps) - warmup) / (ended - steps[warmup]), 3)}


def _timed(obj, name: str, clock: dict, key: str) -> None:
    """Wrap obj.name so its calls add to clock[key]."""
    inner = getattr(obj, name)

    def call(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            clock[key] = clock.get(key, 0.0) + time.perf_counter() - started

    setattr(obj, name, call)


class TrackerLog:
    """Records a mask tracker's calls in a run (frames included), to replay them on a fresh engine:
    the engine alone on the same frames, objects, prompts and back-fills, without decoding,
    detection, association or writing."""

    METHODS = ("step", "add", "reprompt", "remove", "backfill")

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def attach(self, tracker) -> None:
        """Record `tracker`'s calls from now on."""
        for name in self.METHODS:
            setattr(tracker, name, self._recorded(name, getattr(tracker, name)))

    def _recorded(self, name: str, inner):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return inner(*args, **kwargs)

        return call

    def replay(self, tracker) -> tuple[float, float]:
        """When `tracker` started and ended the recorded calls (each step returns the frame's host
        masks, as in the run)."""
        import torch

        started = time.perf_counter()
        for name, args, kwargs in self.calls:
            getattr(tracker, name)(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return started, time.perf_counter()


def overrides(args) -> list[str]:
    return [f"tracker.image_size={args.image_size}", f"tracker.sam2={args.sam2}", f"device={args.device}",
            "detector.name=yolox", f"detector.model={args.yolox}", f"detect_every={args.detect_every}",
            "association.birth_max_overlap=1.0", "association.merge_frames=1000000", "output.mot=false",
            f"max_frames={args.frames}", *args.set]


def run_engine_alone(args, config, log: TrackerLog) -> dict:
    """The recorded run's tracker calls replayed on a fresh engine (same weights): what the end-to-end
    run costs over its engine is its seconds against these."""
    from promptrack.pipeline.loop import build_sam2_tracker

    tracker = build_sam2_tracker(config, args.device)
    carried, steps = _count_carried(tracker)  # one entry a step
    started, ended = log.replay(tracker)
    frames, seconds = len(carried), ended - started
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 3),
            **steady(started, ended, steps, args.warmup),
            "mean_objects": None, "tracked_objects": round(sum(carried) / max(len(carried), 1), 2),
            "calls": {m: sum(1 for name, _, _ in log.calls if name == m) for m in TrackerLog.METHODS},
            "stages_s": {"track": round(seconds, 3)}}


def run_promptrack(args, config, detector, outputs_dir: Path | None, log: TrackerLog | None = None) -> dict:
    from promptrack.pipeline.api import _model_names
    from promptrack.pipeline.loop import TrackingPipeline, build_sam2_tracker
    from promptrack.pipeline.outputs import open_sinks
    from promptrack.pipeline.sources import open_source

    if outputs_dir is None:
        config = _with_outputs(config, False)
    # A fresh engine on the same weights; the detector is shared (loaded once).
    pipeline = TrackingPipeline(config, detector=detector, tracker=build_sam2_tracker(config, args.device))
    if log is not None:
        log.attach(pipeline.tracker)
    source = TimedSource(open_source(args.video, max_frames=args.frames, decoder=config.input.video_decoder),
                         height=args.height)
    carried, steps = _count_carried(pipeline.tracker)
    count = Count()
    outputs = open_sinks(config, outputs_dir, source.info, args.phrases, _model_names(config), extra=[count])
    clock: dict[str, float] = {}
    for sink in outputs.sinks:
        kind = type(sink).__name__
        if kind == "AnnotatedVideoSink":
            _timed(sink, "annotate", clock, "annotate")
            _timed(sink, "write", clock, "video")
        elif kind == "JsonSink":
            _timed(sink, "write", clock, "json")
    started = time.perf_counter()
    frames = pipeline.run(source, args.phrases, outputs.sinks, progress=False)
    outputs.close()
    seconds = time.perf_counter() - started
    stages = dict(pipeline.times.seconds)
    stages["decode"] = source.seconds
    if "video" in clock:
        stages["annotate"] = clock["annotate"]
        stages["encode"] = clock["video"] - clock["annotate"]
    if "json" in clock:
        stages["json"] = clock["json"]
    return {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 3),
            **steady(started, started + seconds, steps, args.warmup),
            "mean_objects": round(count.objects / max(count.frames, 1), 2),
            "tracked_objects": round(sum(carried) / max(len(carried), 1), 2),
            "stages_s": {k: round(v, 3) for k, v in sorted(stages.items())}}


def _count_carried(tracker) -> tuple[list[int], list[float]]:
    """Objects SAM 2 carries onto each frame (what its time scales with), recorded per step.

    Offline output shows a new track only once a second detection confirms it, so the objects
    written a frame (``mean_objects``) can be fewer than the objects tracked (``tracked_objects``)."""
    carried: list[int] = []
    steps: list[float] = []  # when each step began
    step = tracker.step

    def counted(index, frame):
        carried.append(len(tracker.ids))
        steps.append(time.perf_counter())
        return step(index, frame)

    tracker.step = counted
    return carried, steps


def _with_outputs(config, on: bool):
    from dataclasses import replace

    return replace(config, output=replace(config.output, video=on, json=on))


def run_gsam2_rule(args, model, detector) -> dict:
    """The continuous-id demo's cost structure on our models: JPEG dump, init_state, image predictor
    pass per keyframe, IoU > 0.8 id hand-over, state reset and propagation every `every` frames."""
    import cv2
    import torch

    from promptrack.pipeline.sources import open_source

    every, stages = args.gsam2_every, {}
    device = args.device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else _null()
    image_predictor = ImagePredictor(model, device)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        frames = []
        for index, frame in TimedSource(open_source(args.video, max_frames=args.frames), height=args.height):
            cv2.imwrite(str(Path(folder) / f"{index:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            frames.append(frame)  # the demo reads each keyframe's image again for the detector
        stages["decode+jpeg"] = time.perf_counter() - t
        with torch.inference_mode(), autocast:
            t = time.perf_counter()
            state = model.init_state(folder)
            stages["init_state"] = time.perf_counter() - t
            tracked: dict[int, np.ndarray] = {}  # id -> mask on the last frame propagated
            next_id, objects, counted = 0, 0, 0
            for start in range(0, len(frames), every):
                t = time.perf_counter()
                found = detector(frames[start], args.phrases)
                stages["detect"] = stages.get("detect", 0.0) + time.perf_counter() - t
                t = time.perf_counter()
                masks = np.zeros((0,) + frames[start].shape[:2], bool)
                if len(found):
                    masks = image_predictor.predict(frames[start], found.xyxy)
                stages["image_predictor"] = stages.get("image_predictor", 0.0) + time.perf_counter() - t
                t = time.perf_counter()
                new: dict[int, np.ndarray] = {}
                for mask in masks:
                    if not mask.any():
                        continue
                    flag = next((i for i, m in tracked.items() if _iou(mask, m) > 0.8), None)
                    if flag is None:
                        next_id += 1
                        flag = next_id
                    new[flag] = mask
                stages["ids"] = stages.get("ids", 0.0) + time.perf_counter() - t
                t = time.perf_counter()
                model.reset_state(state)
                for obj_id, mask in new.items():
                    model.add_new_mask(state, start, obj_id, torch.from_numpy(mask))
                tracked = {}
                if new:
                    for index, ids, logits in model.propagate_in_video(state, start_frame_idx=start,
                                                                       max_frame_num_to_track=every):
                        host = (logits[:, 0] > 0).cpu().numpy()
                        tracked = {int(i): m for i, m in zip(ids, host)}
                        objects += len(tracked)
                        counted += 1
                stages["propagate"] = stages.get("propagate", 0.0) + time.perf_counter() - t
    seconds = time.perf_counter() - started
    return {"frames": len(frames), "seconds": round(seconds, 3), "fps": round(len(frames) / seconds, 3),
            "mean_objects": round(objects / max(counted, 1), 2),
            "stages_s": {k: round(v, 3) for k, v in sorted(stages.items())}}


class ImagePredictor:
    """What ``SAM2ImagePredictor.set_image`` + ``predict(box=...)`` compute (one image-encoder pass,
    the prompt encoder and the mask decoder for every box, single mask output), on the model's own
    modules: sam2's image predictor needs torchvision, which this project does not install."""

    def __init__(self, model, device: str) -> None:
        import torch

        self.model, self.device = model, device
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def predict(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        model, size = self.model, self.model.image_size
        h, w = frame.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device).permute(2, 0, 1)[None].float() / 255
        image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
        image = (image - self.mean) / self.std
        backbone = model.forward_image(image)
        _, feats, _, sizes = model._prepare_backbone_features(backbone)
        if model.directly_add_no_mem_embed:
            feats[-1] = feats[-1] + model.no_mem_embed
        maps = [f.permute(1, 2, 0).view(1, -1, *s) for f, s in zip(feats[::-1], sizes[::-1])][::-1]
        corners = torch.as_tensor(boxes, dtype=torch.float32, device=self.device).view(-1, 2, 2)
        corners = corners / torch.tensor([w, h], device=self.device) * size
        labels = torch.tensor([[2, 3]], device=self.device).repeat(len(boxes), 1)
        sparse, dense = model.sam_prompt_encoder(points=(corners, labels), boxes=None, masks=None)
        low_res, _, _, _ = model.sam_mask_decoder(
            image_embeddings=maps[-1], image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
            repeat_image=True, high_res_features=maps[:-1])
        masks = F.interpolate(low_res.float(), size=(h, w), mode="bilinear", align_corners=False)[:, 0] > 0
        return masks.cpu().numpy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def annotation_bench(height: int = 1080, width: int = 1920, objects: int = 16, repeats: int = 50) -> dict:
    """Milliseconds to draw one frame (masks, boxes, ``#id label``): supervision's three annotators
    (5 runs: ~0.1 s each) against :class:`FrameAnnotator` (`repeats` runs), on `objects` elliptic
    masks of 80-400 px boxes. One thread: OpenCV's own pool ignores ``OMP_NUM_THREADS``, so it is
    set to 1 here (and restored)."""
    import cv2
    import supervision as sv

    from promptrack.pipeline.annotate import FrameAnnotator

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    masks = np.zeros((objects, height, width), bool)
    for k in range(objects):
        w, h = int(rng.integers(80, 400)), int(rng.integers(80, 300))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        yy, xx = np.ogrid[:h, :w]
        masks[k, y:y + h, x:x + w] = ((yy - h / 2) ** 2 / (h / 2) ** 2 + (xx - w / 2) ** 2 / (w / 2) ** 2) < 1
    dets = sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks,
                         tracker_id=np.arange(1, objects + 1), data={"class_name": np.array(["person"] * objects),
                                                                     "area": masks.reshape(objects, -1).sum(1)})
    lookup = sv.ColorLookup.TRACK
    mask_a = sv.MaskAnnotator(color_lookup=lookup, opacity=0.45)
    box_a = sv.BoxAnnotator(color_lookup=lookup, thickness=2)
    label_a = sv.LabelAnnotator(color_lookup=lookup, text_scale=0.5, text_padding=4)
    labels = [f"#{i} person" for i in dets.tracker_id]

    def supervision_draw():
        image = np.ascontiguousarray(frame[..., ::-1])
        image = mask_a.annotate(image, dets)
        return label_a.annotate(box_a.annotate(image, dets), dets, labels=labels)

    ours = FrameAnnotator(0.45)
    timings = {}
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    for name, draw, runs in (("supervision", supervision_draw, 5), ("promptrack", lambda: ours.annotate(frame, dets),
                                                                   repeats)):
        draw()
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            draw()
            samples.append(1000 * (time.perf_counter() - started))
        timings[name] = {"median_ms": round(float(np.median(samples)), 2), "min_ms": round(min(samples), 2),
                         "runs": runs}
    cv2.setNumThreads(cv2_threads)
    diff = np.abs(supervision_draw().astype(int) - ours.annotate(frame, dets).astype(int)).max()
    return {"size": f"{width}x{height}", "objects": objects, **timings, "max_pixel_difference": int(diff)}


def main(argv: list[str] | None = None, progress=None) -> dict:
    """Run the benchmark; `progress(result)` (if given) is called after each run with the result so far."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(ASSETS / "videos" / "bedroom.mp4"))
    p.add_argument("--prompt", default="person . bed . chair . potted plant . tv . book")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--height", type=int, help="scale the clip to this many rows first (e.g. 540, 720, 1080)")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--sam2", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--yolox", default=str(ASSETS / "models" / "yolox_nano.onnx"))
    p.add_argument("--detect-every", type=int, default=15)
    p.add_argument("--gsam2-every", type=int, default=20, help="the demo's step: keyframe and reset period")
    p.add_argument("--warmup", type=int, default=0,
                   help="frames before steady_fps is timed (compiling and first allocations; 0: no steady_fps)")
    p.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS),
                   help="which runs, in this order (engine replays the outputs run: after it)")
    p.add_argument("--hub", help="HF_HOME with the SAM 2 weights (default: a fake hub with random weights)")
    p.add_argument("--annotation", action="store_true", help="only time drawing a 1080p frame with 16 objects")
    p.add_argument("--json", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. output.video_encoder=libx264 or input.video_decoder=cpu")
    args = p.parse_args(argv)
    if "engine" in args.runs and "outputs" not in args.runs[:args.runs.index("engine")]:
        p.error("--runs engine replays the outputs run: put outputs before it")
    if args.annotation:
        result = annotation_bench()
        print(json.dumps(result, indent=1))
        return result
    args.phrases = [s.strip() for s in args.prompt.split(".") if s.strip()]

    if args.hub:
        os.environ["HF_HOME"] = args.hub
    else:  # random-weight SAM 2.1 tiny in the hub's layout, as the tests build it
        sys.path.insert(0, str(ROOT / "tests"))
        from fake_hub import write_sam2

        home = Path(tempfile.mkdtemp(prefix="promptrack-e2e-hf-"))
        write_sam2(home)
        os.environ["HF_HOME"] = str(home)
        os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    from promptrack.pipeline.config import load_config
    from promptrack.pipeline.detectors import build_detector
    from promptrack.pipeline.loop import build_sam2_tracker

    torch.manual_seed(0)
    config = load_config("default", overrides(args))
    detector = build_detector(config.detector, args.device)
    runs: dict[str, dict] = {}
    result = {"config": {"video": Path(args.video).name, "height": args.height, "frames": args.frames,
                         "image_size": args.image_size,
                         "sam2": args.sam2, "device": args.device, "detect_every": args.detect_every,
                         "gsam2_every": args.gsam2_every, "warmup": args.warmup,
                         "compile": config.tracker.compile, "overrides": args.set, "prompt": args.phrases,
                         "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                         "cpu": platform.processor() or platform.machine(), "hub": "real" if args.hub else "fake"},
              "runs": runs}
    log = None
    with tempfile.TemporaryDirectory() as out:
        for run in args.runs:  # in the order given
            if run == "no-outputs":
                runs[RUNS[run]] = run_promptrack(args, config, detector, None)
            elif run == "outputs":
                log = TrackerLog() if "engine" in args.runs else None
                runs[RUNS[run]] = run_promptrack(args, config, detector, Path(out), log)
            elif run == "engine":
                runs[RUNS[run]] = run_engine_alone(args, config, log)
                log = None  # the recorded frames
            else:  # the rule on the very same SAM 2 weights and detector
                runs[RUNS[run]] = run_gsam2_rule(args, build_sam2_tracker(config, args.device).model,
                                                 detector.detect)
            if progress is not None:
                progress(result)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for name, run in runs.items():
            written = "-" if run["mean_objects"] is None else f"{run['mean_objects']:.1f}"
            print(f"{name:38s} {run['fps']:7.2f} FPS  {written:>5s} objects written "
                  f"({run.get('tracked_objects', run['mean_objects']):.1f} tracked)  {run['stages_s']}")
    return result


if __name__ == "__main__":
    main()
