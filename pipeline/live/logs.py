"""Live mode's status lines as log records with levels (``logging``), not text to be filtered.

Everything live mode reports goes to the ``promptrack.live`` logger: the stream's size and rate,
the periodic stats line (INFO), drops, failed reconnects and output errors (WARNING). A
:class:`LiveSession` forwards the records of its own stream, at or above its level, to its
``log`` callable (stderr by default), so ``track-video --quiet`` shows warnings only.

Example:
    >>> lines = []
    >>> handler = forward(lines.append, logging.WARNING, uri="rtsp://cam")
    >>> logger.info("live: in 25 fps", extra={"uri": "rtsp://cam"})
    >>> logger.warning("live: rtsp://cam dropped (timeout); reconnecting", extra={"uri": "rtsp://cam"})
    >>> logger.removeHandler(handler); lines
    ['live: rtsp://cam dropped (timeout); reconnecting']
"""

from __future__ import annotations

import logging
from typing import Callable

logger = logging.getLogger("promptrack.live")
logger.setLevel(logging.INFO)
logger.propagate = False  # the session's callable shows these lines; not the root logger's handlers too


class LineHandler(logging.Handler):
    """Passes each record's message, as one line, to a callable; only records of one stream."""

    def __init__(self, sink: Callable[[str], None], level: int, uri: str | None = None) -> None:
        super().__init__(level)
        self.sink, self.uri = sink, uri

    def emit(self, record: logging.LogRecord) -> None:
        if self.uri is not None and getattr(record, "uri", self.uri) != self.uri:
            return  # another session's stream
        try:
            self.sink(record.getMessage())
        except Exception:  # noqa: BLE001 - a failing log sink must not stop tracking
            self.handleError(record)


def forward(sink: Callable[[str], None], level: int = logging.INFO, uri: str | None = None) -> LineHandler:
    """Attach a :class:`LineHandler` to the live logger; remove it with ``logger.removeHandler``."""
    handler = LineHandler(sink, level, uri)
    logger.addHandler(handler)
    return handler
