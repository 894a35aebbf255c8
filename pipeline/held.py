"""Finished frames held back before they are written: look-back and delayed output of new tracks.

Offline, frames wait ``lookback`` frames before the sinks see them, so an object born now can be
carried back over them (``BackfillTracker``). The same window delays the output of new tracks,
as SAM 3's hot-start does: a *tentative* track (one detection so far) is not written until a
later detection confirms it.

- A held frame is written once it is ``lookback`` frames old ...
- ... unless it shows a track still awaiting its verdict (tentative): then it waits for that
  verdict (the next regular keyframe at the latest), until it is ``lookback + detect_every``
  frames old (so a newborn's back-filled frames wait too), and never more than ``3 * lookback``.
- The frames a newborn will be carried back over (:meth:`HeldFrames.wait_for`) wait for its
  verdict the same way, so a tracker may back-fill it only once it is confirmed: no work is spent
  carrying back a false positive that the next keyframe drops.
- When written, tracks never confirmed are left out of it: a false positive dropped as
  unconfirmed never appears in the output; a confirmed track shows from its first held frame.
- Live (``lookback`` 0): nothing is held, nothing is hidden (a new track shows at once).

Memory: at most ``3 * lookback`` frames, whatever the video length. One class for the
frame loop (``pipeline/loop.py``) and the association benchmark (``bench/assocsim``), so the
benchmark scores the output users get.

Example:
    >>> import numpy as np
    >>> from promptrack.trackers.association import Associator
    >>> assoc = Associator()
    >>> held = HeldFrames(2, 10, assoc, ids=lambda e: list(e[1]), without=lambda e, h: (e[0], {i: m for i, m in e[1].items() if i not in h}))
    >>> _ = assoc.update(0, {}, np.array([[0, 0, 8, 8]]), np.array([0.9]), ["car"])  # track 1, tentative
    >>> [held.push((t, {1: "mask"})) for t in range(3)]  # frame 0 waits for track 1's verdict
    [[], [], []]
    >>> _ = assoc.update(3, {1: np.pad(np.ones((8, 8), bool), (0, 8))}, np.array([[0, 0, 8, 8]]), np.array([0.9]), ["car"])
    >>> held.push((3, {1: "mask"}))  # confirmed: frames 0 and 1 are written, with it
    [(0, {1: 'mask'}), (1, {1: 'mask'})]
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Generic, Iterable, Iterator, Protocol, TypeVar

Entry = TypeVar("Entry")


def hold_limit(lookback: int, detect_every: int) -> int:
    """The oldest a held frame can get: ``lookback + detect_every``, at most ``3 * lookback``."""
    lookback = max(0, int(lookback))
    return min(lookback + max(1, int(detect_every)), 3 * lookback)


class Verdicts(Protocol):
    """What the holder asks the associator about a track id."""

    def awaiting_verdict(self, track_id: int) -> bool: ...

    def confirmed(self, track_id: int) -> bool: ...


class HeldFrames(Generic[Entry]):
    """A FIFO of finished frames (any entry type); :meth:`push` returns those now due for writing.

    ``ids(entry)``: the track ids an entry shows; ``without(entry, hidden)``: the entry without
    the ids in ``hidden`` (may modify and return ``entry``).
    """

    def __init__(self, lookback: int, detect_every: int, verdicts: Verdicts,
                 ids: Callable[[Entry], Iterable[int]], without: Callable[[Entry, set[int]], Entry]) -> None:
        self.lookback = max(0, int(lookback))
        self.limit = hold_limit(lookback, detect_every)
        self.verdicts, self._ids, self._without = verdicts, ids, without
        self._held: deque[Entry] = deque()
        self._waits: deque[set[int]] = deque()  # per held entry: ids of newborns it waits for (wait_for)

    def __len__(self) -> int:
        return len(self._held)

    def __iter__(self) -> Iterator[Entry]:
        """The held entries, oldest first (those before a newborn's birth are what it is carried back over)."""
        return iter(self._held)

    def wait_for(self, track_id: int, count: int) -> None:
        """The newest `count` held entries (the frames before a newborn's birth, which it may be
        carried back over once confirmed) also wait for `track_id`'s verdict."""
        for waits in list(self._waits)[-count:] if count > 0 else []:
            waits.add(int(track_id))

    def push(self, entry: Entry) -> list[Entry]:
        """Hold `entry` (the newest frame); the entries now due for writing, oldest first."""
        if not self.lookback:
            return [entry]
        self._held.append(entry)
        self._waits.append(set())
        out = []
        while len(self._held) > self.lookback:
            if len(self._held) <= self.limit and self._awaiting(self._held[0], self._waits[0]):
                break
            self._waits.popleft()
            out.append(self._release(self._held.popleft()))
        return out

    def flush(self) -> list[Entry]:
        """Every held entry, oldest first (end of the run; tracks still tentative are left out)."""
        out = [self._release(e) for e in self._held]
        self._held.clear()
        self._waits.clear()
        return out

    def _awaiting(self, entry: Entry, waits: set[int]) -> bool:
        return any(self.verdicts.awaiting_verdict(int(i)) for i in [*self._ids(entry), *waits])

    def _release(self, entry: Entry) -> Entry:
        hidden = {int(i) for i in self._ids(entry) if not self.verdicts.confirmed(int(i))}
        return self._without(entry, hidden) if hidden else entry
