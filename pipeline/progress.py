"""The tracking progress bar, which also says once, after the first frames, when a CPU run will be long.

A newcomer's first run is often on a CPU, where a frame can take seconds: rather than let them
wait minutes without knowing, the bar prints one line once the first frames have shown the pace,
only when the whole run would take longer than :data:`LONG_RUN` seconds, with the quicker ways:

    ~6 s a frame, ~7 min for 72 frames: --config fast or --max-frames for a quick look

Nothing is printed without a bar (``--quiet``, ``progress=False``), on a GPU, or for a stream
of unknown length.

Example:
    >>> import io
    >>> times, terminal = iter(range(0, 1000, 6)), io.StringIO()  # a clock that moves 6 s a frame
    >>> bar = TrackingBar(total=72, device="cpu", clock=lambda: next(times), file=terminal)
    >>> for _ in range(4): _ = bar.update(1)
    >>> bar.close(); "~6 s a frame, ~7 min for 72 frames: --config fast" in terminal.getvalue()
    True
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from tqdm.auto import tqdm

LONG_RUN = 180.0  # seconds: a run expected to take longer gets the line (a first look should take a minute or two)
PACE_FRAMES = 4  # frames timed before estimating (the first one, a keyframe, is in them: the estimate errs long)
PACE_SECONDS = 30.0  # ... or fewer, at least 2, when they already took this long
HINT = "--config fast or --max-frames for a quick look"
CLOCK = time.monotonic  # the bar's default clock (tests replace it to run slow frames instantly)


def duration(seconds: float) -> str:
    """A rough duration: ``~45 s``, ``~7 min``, ``~2.5 h``.

    >>> duration(0.84), duration(6.2), duration(445), duration(9000)
    ('~0.8 s', '~6 s', '~7 min', '~2.5 h')
    """
    if seconds < 2:
        return f"~{seconds:.1f} s"
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


class TrackingBar(tqdm):
    """tqdm's bar over the frames of a run, plus the one-line estimate of a long CPU run.

    `clock` (monotonic seconds; default :data:`CLOCK`) lets tests run slow frames instantly.
    """

    def __init__(self, total: int | None, device: str = "cpu", clock: Callable[[], float] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("file", sys.stderr)
        super().__init__(total=total, unit="frame", desc="tracking", dynamic_ncols=True, **kwargs)
        self._clock = clock or CLOCK
        self._started = self._clock()
        self._frames = 0
        # Only for a bar that shows, on the CPU, over a known number of frames.
        self._estimating = not self.disable and bool(total) and not device.startswith(("cuda", "mps"))

    def update(self, n: float | None = 1) -> bool | None:
        shown = super().update(n)
        if self._estimating:
            self._frames += int(n or 0)
            self._maybe_estimate()
        return shown

    def _maybe_estimate(self) -> None:
        elapsed = self._clock() - self._started
        if self._frames < PACE_FRAMES and (self._frames < 2 or elapsed < PACE_SECONDS):
            return
        self._estimating = False  # once a run
        per_frame = elapsed / self._frames
        if per_frame * self.total >= LONG_RUN:
            self.write(f"{duration(per_frame)} a frame, {duration(per_frame * self.total)} for {self.total} frames: "
                       f"{HINT}", file=self.fp)
