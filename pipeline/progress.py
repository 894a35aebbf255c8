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
PACE_FRAMES = 4  # frames timed before estimating: the first (a keyframe) and three others
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

    The first frame is a keyframe (the detector runs on it, and the models warm up): its time
    stands for every keyframe (one in `detect_every`), the frames after it for the others.
    `clock` (monotonic seconds; default :data:`CLOCK`) lets tests run slow frames instantly.
    """

    def __init__(self, total: int | None, device: str = "cpu", detect_every: int = 1,
                 clock: Callable[[], float] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("file", sys.stderr)
        super().__init__(total=total, unit="frame", desc="tracking", dynamic_ncols=True, **kwargs)
        self.detect_every = max(1, int(detect_every))
        self._clock = clock or CLOCK
        self._times = [self._clock()]  # the start, then the end of each frame until the estimate
        # Only for a bar that shows, on the CPU, over a known number of frames.
        self._estimating = not self.disable and bool(total) and not device.startswith(("cuda", "mps"))

    def update(self, n: float | None = 1) -> bool | None:
        shown = super().update(n)
        if self._estimating:
            self._times.append(self._clock())
            self._maybe_estimate()
        return shown

    def estimate(self) -> float:
        """Seconds for the whole run, from the frames timed so far (at least two)."""
        first = self._times[1] - self._times[0]
        rest = (self._times[-1] - self._times[1]) / (len(self._times) - 2)
        keyframes = min(self.total, -(-self.total // self.detect_every))
        return first * keyframes + rest * (self.total - keyframes)

    def _maybe_estimate(self) -> None:
        frames, elapsed = len(self._times) - 1, self._times[-1] - self._times[0]
        if frames < PACE_FRAMES and (frames < 2 or elapsed < PACE_SECONDS):
            return
        self._estimating = False  # once a run
        seconds = self.estimate()
        if seconds >= LONG_RUN:
            self.write(f"{duration(seconds / self.total)} a frame, {duration(seconds)} for {self.total} frames: "
                       f"{HINT}", file=self.fp)
