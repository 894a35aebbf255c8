"""Other libraries' output during a run: their progress bars and advisory warnings.

transformers draws a "Loading weights" bar on every model load, even from the local cache, and
logs advisory warnings (such as its torchvision fallback); the hub draws download bars. A run
(:func:`library_output`) says how much of that the user sees:

- ``progress=False`` (``--quiet``): none of it: no bars (downloads included) and no transformers
  warnings below errors.
- ``progress=True``: the hub's download bars stay (a first download takes a while), the
  "Loading weights" bar goes (loading cached weights is not worth a bar on every run);
  transformers' warnings show as transformers sends them (its advisories once a process).

The settings take effect when transformers is in use (now, or when a model folder is resolved,
:func:`before_model_load`), so a run without a transformers model never imports it, and are
restored when the run ends: a notebook keeps its own settings between runs.

Example:
    >>> with library_output(progress=False):
    ...     pass  # build the detector, track the frames
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator


class _Run:
    """One run's wish, and how to undo what it changed."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self.undo: Callable[[], None] | None = None  # set once applied


_runs: list[_Run] = []  # the runs in progress, innermost last


@contextmanager
def library_output(progress: bool) -> Iterator[None]:
    """Inside the block, other libraries' bars and warnings follow `progress` (see the module)."""
    run = _Run(progress)
    _runs.append(run)
    try:
        if "transformers" in sys.modules:
            before_model_load()
        yield
    finally:
        _runs.remove(run)
        if run.undo is not None:
            run.undo()


def before_model_load() -> None:
    """Apply the current run's wish to transformers and the hub (idempotent; nothing outside a run).

    Called where a transformers model folder is resolved (``models.resolve_folder``), before
    anything from it loads."""
    if not _runs or _runs[-1].undo is not None:
        return
    run = _runs[-1]
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    hub_bars_off = hub_utils.are_progress_bars_disabled()
    bars_on = transformers_logging.is_progress_bar_enabled()
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.disable_progress_bar()  # this turns the hub's bars off too:
    if run.progress and not hub_bars_off:
        hub_utils.enable_progress_bars()  # a download keeps its bar
    if not run.progress:
        transformers_logging.set_verbosity_error()

    def undo() -> None:
        if bars_on:
            transformers_logging.enable_progress_bar()  # the hub's too
        if hub_bars_off:
            hub_utils.disable_progress_bars()
        elif not bars_on:
            hub_utils.enable_progress_bars()
        transformers_logging.set_verbosity(verbosity)

    run.undo = undo
