"""Live mode: RTSP, cameras and any stream URL PyAV opens, with bounded latency and memory.

    capture.py   PyAV reader thread: newest frame wins, reconnect with backoff
    source.py    the capture as a FrameSource for the frame loop, with per-frame timestamps
    server.py    the MJPEG live view (stdlib http.server)
    sinks.py     live sinks: JSON Lines, video segments, the MJPEG view (drawn by pipeline/annotate.py)
    outputs.py   LiveLayout: which of those sinks a live run opens (open_sinks' live layout)
    logs.py      status lines as ``promptrack.live`` log records with levels
    stats.py     input/processed fps, drops, latency p50/p95
    session.py   LiveSession: the loop over a live source, from Python
    command.py   the CLI's live branch

Example:
    >>> from promptrack.pipeline import LiveSession
    >>> for result in LiveSession("rtsp://127.0.0.1:8554/cam", prompt="person"):   # doctest: +SKIP
    ...     print(result.index, result.detections.tracker_id)
"""

from .capture import LiveCapture, is_live_uri, live_name
from .session import LiveResult, LiveSession

__all__ = ["LiveCapture", "LiveResult", "LiveSession", "is_live_uri", "live_name"]
