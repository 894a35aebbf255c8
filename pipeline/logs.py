"""One readable format for the package's log lines on the command line.

``track-video: warning: boxes.mp4: 1 damaged frame(s) could not be decoded and were skipped``
instead of Python's ``WARNING:promptrack.pipeline.sources:...``. Lines go through tqdm, so a
progress bar on the terminal is not torn. Library users keep their own logging setup: only the
command calls :func:`configure_logging`.

Example:
    >>> configure_logging("track-video")
    >>> logging.getLogger("promptrack.pipeline.sources").warning("hello")  # doctest: +SKIP
    track-video: warning: hello
"""

from __future__ import annotations

import logging
import sys

from .errors import mask_password


class _Lines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - a log line must never end the run
            self.handleError(record)


class _Format(logging.Formatter):
    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        text = mask_password(record.getMessage()).splitlines()[0] if record.getMessage() else ""
        return f"{self.prog}: {record.levelname.lower()}: {text}"


def configure_logging(prog: str = "promptrack", level: int = logging.WARNING) -> None:
    """Send the ``promptrack`` loggers to stderr as ``<prog>: <level>: <message>``, one line each."""
    logger = logging.getLogger("promptrack")
    for handler in list(logger.handlers):
        if isinstance(handler, _Lines):
            logger.removeHandler(handler)
    handler = _Lines()
    handler.setFormatter(_Format(prog))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
