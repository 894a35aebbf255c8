"""Many videos on Ray: ``track_videos()`` and the ``track-video batch`` command.

    jobs.py     which videos to run, and whether a video's outputs are already complete (resume)
    worker.py   VideoWorker: loads the models once, tracks one video after another (a Ray actor)
    run.py      track_videos(): the driver (Ray up, one video at a time to a free worker, retries, summary)
    cli.py      the ``track-video batch`` subcommand

The public names load lazily, so ``track-video batch --help`` does not import torch.

Example:
    >>> from promptrack.pipeline.batch import track_videos
    >>> summary = track_videos("videos/*.mp4", "person", output_dir="out", workers=2)   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module of this package that defines it
_PUBLIC = {"track_videos": "run", "BatchSummary": "run", "BatchError": "run", "VideoOutcome": "run",
           "WorkerPlan": "run", "VideoJob": "jobs", "plan_jobs": "jobs", "completed_run": "jobs",
           "VideoWorker": "worker"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
