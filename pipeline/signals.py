"""Interrupts (Ctrl-C, SIGTERM, SIGHUP) that never break the outputs.

Three small context managers, used from the main thread (Python runs signal handlers there;
elsewhere they do nothing):

- :func:`interrupt_on_signals`: SIGTERM and SIGHUP raise ``KeyboardInterrupt`` like Ctrl-C does,
  so a run stopped while models load ends with one line and exit code 130, not a silent kill.
- :func:`stop_on_signals`: while frames are tracked, the first signal sets a ``threading.Event``
  (the loop ends after the frame in hand, so every output covers the same finished frames); a
  second one raises ``KeyboardInterrupt`` at once.
- :func:`shielded`: a signal that arrives inside the block (writing one frame to every sink,
  closing the files) is held back and delivered when the block ends, so no file is left half
  closed and no sink holds a frame that another lacks.

Example:
    >>> import threading
    >>> stop = threading.Event()
    >>> with stop_on_signals(stop):
    ...     with shielded():
    ...         pass  # write one frame to every sink
    >>> stop.is_set()
    False
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

#: The signals that mean "stop": Ctrl-C, ``kill``, a closed terminal.
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _watched() -> list[int]:
    """The stop signals not ignored: under ``nohup`` SIGHUP is ignored, and must stay so."""
    return [sig for sig in STOP_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN]


@contextmanager
def _handlers(handler) -> Iterator[dict]:
    previous = {sig: signal.signal(sig, handler) for sig in _watched()}
    try:
        yield previous
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Inside the block SIGINT, SIGTERM and SIGHUP all raise ``KeyboardInterrupt``."""
    if not _main_thread():
        yield
        return
    with _handlers(_raise_interrupt):
        yield


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """First SIGINT/SIGTERM/SIGHUP sets `stop`; a second one raises ``KeyboardInterrupt``."""
    if not _main_thread():
        yield stop
        return

    def _handle(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    with _handlers(_handle):
        yield stop


@contextmanager
def shielded() -> Iterator[None]:
    """Hold back stop signals until the block ends, then deliver them to the handlers in place before."""
    if not _main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in _watched()}
    failed = True
    try:
        yield
        failed = False
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        for signum in caught:
            try:
                _deliver(previous[signum], signum)
            except KeyboardInterrupt:
                if not failed:  # when the block itself failed, its error is the one to report
                    raise


def _deliver(handler, signum: int) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        raise KeyboardInterrupt
    # SIG_IGN: ignored, as it would have been
