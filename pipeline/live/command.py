"""``track-video URL --prompt ...`` for live sources: runs a :class:`LiveSession` until stopped.

Exit codes as for files: 0 when ``--max-frames`` frames are done, 130 after Ctrl-C/SIGTERM
(outputs closed, valid up to the last frame), 2 for a user error (one line).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import Sequence

from ..config import Config


def run_live(url: str, prompt: str | None, output: str, config: Config, quiet: bool = False,
             exemplars: Sequence = ()) -> int:
    """Track `url` into `output` until stopped; returns the process exit code."""
    from .session import LiveSession

    if quiet:  # no stats line (the live progress bar); warnings about the stream still show
        config = replace(config, live=replace(config.live, stats_every=0))
    level = logging.WARNING if quiet else logging.INFO  # quiet: drops, reconnects and errors still show
    session = LiveSession(url, prompt, output_dir=output, config=config, log=_stderr, log_level=level,
                          exemplars=exemplars)
    frames = session.run()
    outputs = ", ".join(str(p) for kind, p in session.outputs.items() if kind != "session")
    if config.max_frames is None or frames < config.max_frames:
        print(f"track-video: stopped after {frames} frames; outputs are complete: {outputs}", file=sys.stderr)
        return 130
    if not quiet:
        print(f"{frames} frames; outputs: {outputs}")
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
