"""Many videos on Ray: ``track_videos()`` and what ``track-video batch`` runs.

Each worker is a Ray actor (:class:`~promptrack.pipeline.batch.worker.VideoWorker`) that loads
the models once and tracks video after video, writing each video's outputs itself. The driver
(this module) hands out one video at a time to whichever worker is free, so long and short
videos balance out.

- Local by default: a Ray instance is started for the job and stopped after it. ``ray_address``
  (``"auto"``, ``"ray://head:10001"``) joins a running cluster; a Ray already initialised in this
  process (a notebook) is used as it is. On a cluster, inputs and the output folder must have the
  same paths on every node (shared storage).
- Resumable: a video whose outputs are complete (see :func:`~.jobs.completed_run`) is
  skipped, without starting Ray when nothing is left to do.
- A worker that dies (killed, out of memory) has its video retried on another worker, up to
  ``max_attempts`` runs per video; a video that fails (a corrupt file) fails alone, not retried.
- ``<output_dir>/batch_summary.json`` records every video: status, frames, tracks, FPS, error.

Example:
    >>> summary = track_videos("videos/*.mp4", "person . car", output_dir="out", workers=2)  # doctest: +SKIP
    >>> summary.counts()                                                                    # doctest: +SKIP
    {'done': 4, 'skipped': 0, 'failed': 1, 'not run': 0}
    >>> [v.source for v in summary.failed]                                                  # doctest: +SKIP
    ['/data/videos/broken.mp4']
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from tqdm.auto import tqdm

from ..api import as_config, prepare_output_dir, with_detector
from .jobs import VideoJob, completed_run, plan_jobs
from .worker import VideoWorker
from ..config import Config, DetectorConfig
from ..errors import ConfigError, PromptrackError

SUMMARY_NAME = "batch_summary.json"
SUMMARY_SCHEMA = "promptrack.batch/1"
STATUSES = ("done", "skipped", "failed", "not run")


class BatchError(PromptrackError):
    """The batch cannot start: Ray missing or unreachable, workers that cannot load the models."""


@dataclass
class VideoOutcome:
    """What happened to one video of a batch."""

    source: str
    stem: str
    prompt: list[str]
    status: str = "not run"  # done | skipped (complete from an earlier run) | failed | not run (interrupted)
    frames: int = 0
    tracks: int = 0
    seconds: float | None = None  # tracking time on its worker (models already loaded)
    attempts: int = 0  # runs started; more than 1 when a worker died during it
    worker: str | None = None  # host:pid of the worker that finished it
    error: str | None = None  # one line, when failed
    failed_keyframes: int = 0  # keyframes whose detector call failed and were skipped (cloud detectors)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> float | None:
        return round(self.frames / self.seconds, 2) if self.status == "done" and self.seconds else None


@dataclass
class BatchSummary:
    """A batch run: every video's outcome, in input order (``out/batch_summary.json``)."""

    output_dir: str
    videos: list[VideoOutcome]
    workers: int = 0  # workers started (0: every video was already complete)
    seconds: float = 0.0  # wall time of the run
    interrupted: bool = False

    @property
    def failed(self) -> list[VideoOutcome]:
        return [v for v in self.videos if v.status == "failed"]

    @property
    def ok(self) -> bool:
        return all(v.status in ("done", "skipped") for v in self.videos)

    def counts(self) -> dict[str, int]:
        return {status: sum(v.status == status for v in self.videos) for status in STATUSES}

    def frames_per_second(self) -> float:
        """Frames tracked in this run per second of wall time, all workers together."""
        frames = sum(v.frames for v in self.videos if v.status == "done")
        return round(frames / self.seconds, 2) if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SUMMARY_SCHEMA, "output_dir": self.output_dir, "workers": self.workers,
                "seconds": round(self.seconds, 3), "frames_per_second": self.frames_per_second(),
                "interrupted": self.interrupted, "counts": self.counts(),
                "videos": [dict(asdict(v), fps=v.fps) for v in self.videos]}

    def write(self, path: str | os.PathLike) -> Path:
        """Write the summary as JSON, atomically."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


def track_videos(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    prompt: str | Sequence[str] | None = None,
    output_dir: str | os.PathLike = "out",
    workers: int | None = None,
    config: Config | str | None = None,
    overrides: Sequence[str] = (),
    gpus_per_worker: float | None = None,
    cpus_per_worker: float | None = None,
    ray_address: str | None = None,
    max_attempts: int = 3,
    force: bool = False,
    progress: bool = True,
    detector: str | os.PathLike | DetectorConfig | None = None,
    **options: Any,
) -> BatchSummary:
    """Track every video of `inputs` on Ray workers; returns the summary (also written to the output folder).

    Args:
        inputs: video files, frame folders, globs ("videos/*.mp4") or manifests (.txt one path a line,
            .csv with a path and an optional prompt column), one or a list.
        prompt: what to track in every video ("person . car"); optional when a manifest gives prompts.
        output_dir: ``<stem>.tracks.json`` / ``.annotated.mp4`` of each video and ``batch_summary.json``.
        workers: Ray actors, each holding its own models (default: one per GPU, else one per 4 CPUs).
        config, overrides, options: as for :func:`track_video`; they apply to every video.
        detector: a detector name (``"yolox"``), a model folder, an ``.onnx`` path or a ``DetectorConfig``,
            as for :func:`track_video` (each worker builds its own; a Detector object or a callable is
            for :func:`track_video`).
        gpus_per_worker: GPU share of a worker, e.g. 0.5 puts two on a GPU (default: 1 when the cluster
            has GPUs, else 0: CPU workers).
        cpus_per_worker: CPUs reserved per worker (default: the cluster's CPUs shared out, at most 4
            per GPU worker).
        ray_address: None starts a local Ray for the job; "auto" or "ray://host:10001" joins a cluster.
        max_attempts: runs of one video when workers die during it, before it is reported failed.
        force: track every video again, even those complete from an earlier run.
    """
    config, own = with_detector(as_config(config, overrides, options), detector)
    if own is not None:
        raise ConfigError("track_videos builds the detector on every worker: pass detector= as a name, a model "
                          "folder, an .onnx path or a DetectorConfig (a Detector object or callable: use track_video)")
    if not config.output.json:
        raise ConfigError("batch needs output.json: the tracks JSON marks a finished video (remove output.json=false)")
    if workers is not None and workers < 1:
        raise ConfigError("--workers must be at least 1")
    if gpus_per_worker is not None and gpus_per_worker < 0 or cpus_per_worker is not None and cpus_per_worker <= 0:
        raise ConfigError("--gpus-per-worker must be 0 or more and --cpus-per-worker more than 0")
    jobs = plan_jobs(inputs, prompt, output_dir)
    out = prepare_output_dir(output_dir).resolve()
    started = time.perf_counter()
    outcomes = {job: VideoOutcome(job.source, job.stem, list(job.phrases),
                                  outputs={k: str(p) for k, p in job.outputs(out, config).items()}) for job in jobs}
    todo = []
    for job in jobs:
        previous = None if force else completed_run(job, out, config)
        if previous is None:
            todo.append(job)
        else:
            outcomes[job].status = "skipped"
            outcomes[job].frames, outcomes[job].tracks = previous["frames"], previous["tracks"]
    summary = BatchSummary(str(out), [outcomes[job] for job in jobs])
    if todo:
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="video", desc="videos",
                   disable=not progress, dynamic_ncols=True)
        try:
            with ray_cluster(ray_address, progress) as ray:
                plan = WorkerPlan.for_cluster(ray.cluster_resources(), config, len(todo), workers,
                                              gpus_per_worker, cpus_per_worker)
                summary.workers = plan.workers
                scheduler = _Scheduler(ray, plan, config, out, max_attempts, outcomes, bar, started)
                try:
                    scheduler.run(todo)
                except KeyboardInterrupt:
                    summary.interrupted = True
                finally:
                    scheduler.stop()
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - started
    summary.write(out / SUMMARY_NAME)
    return summary


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, and the CPUs and GPU share each one reserves on the cluster."""

    workers: int
    cpus: float
    gpus: float

    @classmethod
    def for_cluster(cls, resources: dict[str, float], config: Config, videos: int, workers: int | None = None,
                    gpus_per_worker: float | None = None, cpus_per_worker: float | None = None) -> "WorkerPlan":
        """Defaults that fill the cluster: one worker per GPU (or GPU share), else one per 4 CPUs.

        >>> WorkerPlan.for_cluster({"CPU": 16.0, "GPU": 2.0}, Config(), videos=100, gpus_per_worker=0.5)
        WorkerPlan(workers=4, cpus=4.0, gpus=0.5)
        >>> WorkerPlan.for_cluster({"CPU": 2.0}, Config(), videos=5, workers=2)
        WorkerPlan(workers=2, cpus=1.0, gpus=0.0)
        """
        cpus, gpus = float(resources.get("CPU", 0.0)), float(resources.get("GPU", 0.0))
        if gpus_per_worker is None:
            gpus_per_worker = 1.0 if gpus > 0 and config.device != "cpu" else 0.0
        if gpus_per_worker > 0 and gpus == 0:
            raise BatchError(f"--gpus-per-worker {gpus_per_worker:g} asked for, but the Ray cluster has no GPU: "
                             "leave it out (or 0) for CPU workers")
        if workers is None:
            workers = int(gpus // gpus_per_worker) if gpus_per_worker else int(cpus // 4)
        workers = max(1, min(workers, videos))
        if cpus_per_worker is None:
            share = cpus / workers if cpus else 1.0
            cpus_per_worker = min(4.0, share) if gpus_per_worker else share
        return cls(workers, round(cpus_per_worker, 4), float(gpus_per_worker))


@contextmanager
def ray_cluster(address: str | None = None, progress: bool = True) -> Iterator[Any]:
    """The ``ray`` module, connected: a Ray already initialised here, the cluster at `address`, or a
    local one started for the job (stopped after it).

    Ray's own lines stay out of the results on stdout: its messages about workers ("A worker
    died ...", which Ray prints on stdout) go to stderr while the job runs; a local cluster takes
    Ray's default token authentication without its warning on every run; `progress` False shows
    Ray's errors only."""
    try:
        import ray
    except ImportError:
        raise BatchError("Ray is not installed: pip install 'promptrack[batch]'") from None
    with _ray_messages_on_stderr():
        if ray.is_initialized():  # the caller's Ray (a notebook, tests): used and left as it is
            yield ray
            return
        local = {"include_dashboard": False} if address is None else {}
        if address is None:  # what Ray does for a new local cluster, set explicitly: Ray then says nothing of it
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING if progress else logging.ERROR,
                     **local)
        except Exception as exc:  # ConnectionError, a raylet that did not start in time...: one line, not a traceback
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise BatchError(f"cannot connect to {where}: {str(exc).splitlines()[0][:200]} "
                             "(start a cluster with `ray start --head`, or leave out --ray-address)") from None
        try:
            yield ray
        finally:
            ray.shutdown()


@contextmanager
def _ray_messages_on_stderr() -> Iterator[None]:
    """Ray's driver prints the cluster's messages about this job's workers (``"A worker died or was
    killed ..."``) on stdout, from a thread, into whatever is printed there; inside the block they
    go to stderr. Ray has no setting for it: its printing function is wrapped (when this Ray has
    it under that name; otherwise nothing changes)."""
    import ray._private.worker as ray_worker

    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None:
        yield
        return

    def to_stderr(data: dict, *args: Any, **kwargs: Any) -> None:
        original(dict(data, is_err=True), *args, **kwargs)

    ray_worker.print_to_stdstream = to_stderr
    try:
        yield
    finally:
        ray_worker.print_to_stdstream = original


class _Scheduler:
    """Hands one video at a time to each free worker; replaces workers that die and requeues their video."""

    def __init__(self, ray: Any, plan: WorkerPlan, config: Config, out: Path, max_attempts: int,
                 outcomes: dict[VideoJob, VideoOutcome], bar: tqdm, started: float) -> None:
        self.ray = ray
        self.plan = plan
        self.actor_class = ray.remote(VideoWorker).options(num_cpus=plan.cpus, num_gpus=plan.gpus,
                                                           max_restarts=0, max_task_retries=0)
        self.config = config
        self.out = out
        self.max_attempts = max(1, max_attempts)
        self.outcomes = outcomes
        self.bar = bar
        self.started = started
        self.actors: list[Any] = []
        self.idle: list[Any] = []  # workers loaded and waiting for a video
        self.inflight: dict[Any, tuple[Any, VideoJob | None]] = {}  # ref -> (actor, job); job None: ready()
        self.frames = 0

    def _spawn(self) -> None:
        actor = self.actor_class.remote(self.config, str(self.out))
        self.actors.append(actor)
        self.inflight[actor.ready.remote()] = (actor, None)

    def run(self, jobs: list[VideoJob]) -> None:
        from ray.exceptions import RayActorError, RayError, WorkerCrashedError

        pending = deque(jobs)
        spares = self.plan.workers * self.max_attempts  # replacements for workers that die
        for _ in range(self.plan.workers):
            self._spawn()
        self.bar.set_postfix_str(f"loading models on {self.plan.workers} worker(s)")
        while pending or any(job is not None for _, job in self.inflight.values()):
            self._dispatch(pending)
            if not self.inflight:  # every worker died and no spare is left
                for job in pending:
                    self._fail(job, "no worker left to run it: workers kept dying (out of memory?)")
                return
            [ref], _ = self.ray.wait(list(self.inflight), num_returns=1)
            actor, job = self.inflight.pop(ref)
            try:
                value = self.ray.get(ref)
            except (RayActorError, WorkerCrashedError) as exc:
                self._release(actor)
                if job is not None:
                    self._worker_died(job, exc, pending)
                if spares and len(pending) > len(self.idle):  # keep the pool full while work waits
                    spares -= 1
                    self._spawn()
                continue
            except RayError as exc:  # the call itself failed (e.g. its result could not be sent back)
                value = {"status": "failed", "error": str(exc).strip().splitlines()[-1][:300]}
            if job is None:
                if value["error"]:
                    raise BatchError(f"a worker on {value.get('worker', 'the cluster')} cannot start: {value['error']}")
            else:
                self._record(job, value)
            self.idle.append(actor)

    def _dispatch(self, pending: deque) -> None:
        """Give each idle worker the next video."""
        while pending and self.idle:
            actor, job = self.idle.pop(0), pending.popleft()
            self.outcomes[job].attempts += 1
            self.inflight[actor.track.remote(job)] = (actor, job)

    def _release(self, actor: Any) -> None:
        try:
            self.ray.kill(actor)
        except Exception:  # already gone
            pass
        if actor in self.actors:
            self.actors.remove(actor)

    def _worker_died(self, job: VideoJob, exc: Exception, pending: deque) -> None:
        outcome = self.outcomes[job]
        if outcome.attempts >= self.max_attempts:
            self._fail(job, f"its worker died {outcome.attempts} times ({type(exc).__name__}): "
                            "the process was killed or ran out of memory")
        else:
            pending.appendleft(job)  # next free worker, another than the one that died

    def _record(self, job: VideoJob, value: dict[str, Any]) -> None:
        outcome = self.outcomes[job]
        outcome.status = value["status"]
        for key in ("frames", "tracks", "seconds", "worker", "error", "failed_keyframes"):
            if key in value:
                setattr(outcome, key, value[key])
        if outcome.status == "done":
            self.frames += outcome.frames
        self._tick()

    def _fail(self, job: VideoJob, error: str) -> None:
        self.outcomes[job].status, self.outcomes[job].error = "failed", error
        self._tick()

    def _tick(self) -> None:
        failed = sum(o.status == "failed" for o in self.outcomes.values())
        rate = self.frames / max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(f"{rate:.1f} frames/s" + (f", {failed} failed" if failed else ""))
        self.bar.update(1)

    def stop(self) -> None:
        """Release every worker (their resources go back to the cluster)."""
        for actor in list(self.actors):
            self._release(actor)
        self.idle.clear()
        self.inflight.clear()
