"""The frame loop's side stages: a decoder thread ahead of it, a writer thread behind it.

The tracking stage (SAM 2, detector, associator) is the critical path; it runs in the caller's
thread. Decoding runs ahead of it in a :class:`Prefetcher`, and everything a finished frame
needs to become files (RLE, drawing, H.264, JSON, MOT) runs behind it in a :class:`Writer`.
Both talk to the loop through bounded queues, so memory stays flat: at most ``depth`` frames
wait on each side.

Errors cross back to the loop's thread: a decoder error is raised where the loop takes its next
frame, a sink error (a full disk) where the loop hands over its next frame or closes the writer.

Example:
    >>> frames = Prefetcher(iter([(0, "a"), (1, "b")]), depth=2)
    >>> [index for index, _ in frames]
    [0, 1]
    >>> class Print:
    ...     def write(self, index, frame, detections): print("wrote", index)
    >>> with Writer([Print()], depth=2) as writer:
    ...     writer.put(0, None, None)
    wrote 0
    >>> writer.written
    1
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

_END = object()


class StageTimes:
    """Seconds spent per stage of a run, added from any thread.

    Names used by the loop: ``track`` (SAM 2 steps), ``associate`` (observe, plans, their
    application), ``detect`` (detector calls, in their own thread), ``detect_wait`` (the loop
    waiting for a detector answer: detection not hidden behind tracking), ``backfill``,
    ``decode_wait`` (the loop waiting for a decoded frame), ``write`` (the writer thread's time:
    drawing, encoding, JSON) and ``write_wait`` (the loop waiting on a full writer queue).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)
_POLL = 0.1  # seconds between looks at the other side's state while a queue is full or empty


class Prefetcher:
    """Iterates `frames` (an iterable of ``(index, frame)``) in a thread, `depth` items ahead.

    ``close()`` stops the thread (it ends after the frame it is decoding); iteration re-raises
    the decoder's exception in the consumer's thread. With ``depth=0`` nothing runs ahead: the
    frames are read in the consumer's thread (a live source already has its own capture thread,
    and reading ahead there only adds latency).
    """

    def __init__(self, frames: Iterable[tuple[int, Any]], depth: int = 4) -> None:
        self.frames = frames
        self.depth = depth
        self.waited = 0.0  # seconds the consumer waited for a decoded frame (decode not hidden)
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._closed = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            for item in self.frames:
                if not self._offer(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
            self._error = exc
        self._offer(_END)

    def _offer(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if self.depth <= 0:
            yield from self.frames
            return
        self._thread = threading.Thread(target=self._run, name="promptrack-decode", daemon=True)
        self._thread.start()
        try:
            while True:
                start = time.perf_counter()
                item = self._queue.get()
                self.waited += time.perf_counter() - start
                if item is _END:
                    if self._error is not None:
                        raise self._error
                    return
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            while self._thread.is_alive():  # unblock a decoder waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(_POLL)


class Writer:
    """Hands finished frames to `sinks` in a thread, in order, at most `depth` frames behind.

    ``prepare(frame, detections)`` runs once a frame before the sinks, in the writer thread (the
    pipeline unpacks bit-packed masks there). A sink's exception stops the writer: the frames after it are not written,
    and the exception is raised in the loop's thread by the next :meth:`put` or by :meth:`close`.
    Every sink sees every frame the writer took, so all outputs cover the same frames.

    ``close()`` waits until every frame handed over is written. A second interrupt while it waits
    (``KeyboardInterrupt``) makes the writer stop after the frame in hand, then re-raises.
    """

    def __init__(self, sinks: Sequence, depth: int = 8,
                 prepare: Callable[[Any, Any], Any] | None = None) -> None:
        self.sinks = list(sinks)
        self.prepare = prepare
        self.written = 0
        self.busy = 0.0  # seconds the writer thread spent writing (hidden behind tracking when it runs beside)
        self.blocked = 0.0  # seconds the loop waited on a full queue (the writer was the slower stage)
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="promptrack-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END or self._abort.is_set():
                return
            index, frame, detections = item
            start = time.perf_counter()
            try:
                if self.prepare is not None:
                    self.prepare(frame, detections)
                for sink in self.sinks:
                    sink.write(index, frame, detections)
            except BaseException as exc:  # noqa: BLE001 - raised again in the loop's thread
                self._error = exc
                self._abort.set()
                return
            self.busy += time.perf_counter() - start
            self.written += 1

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def failed(self) -> bool:
        """A sink failed: nothing more can be written (the error is raised once, by put or close)."""
        return self._abort.is_set()

    def put(self, index: int, frame: Any, detections: Any) -> None:
        """Queue one finished frame; raises a sink's error from an earlier frame."""
        start = time.perf_counter()
        while True:
            self._raise_error()
            if self._abort.is_set() or not self._thread.is_alive():
                raise RuntimeError("the writer has stopped")
            try:
                self._queue.put((index, frame, detections), timeout=_POLL)
                break
            except queue.Full:
                continue
        self.blocked += time.perf_counter() - start

    def close(self) -> None:
        """Write what is queued, stop the thread; raises a sink's error."""
        try:
            while self._thread.is_alive():
                try:
                    self._queue.put(_END, timeout=_POLL)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        except BaseException:
            self._abort.set()  # interrupted while draining: stop after the frame in hand
            try:
                self._queue.put_nowait(_END)  # wake a writer waiting for work
            except queue.Full:
                pass
            self._thread.join()
            raise
        self._raise_error()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
