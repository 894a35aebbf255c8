"""Held (look-back) output of the frame loop: pipeline/held.py, pure logic."""

from __future__ import annotations

import numpy as np

from promptrack.pipeline.held import HeldFrames
from promptrack.trackers.association import Associator


class Verdicts:
    """Track id -> "tentative" | "confirmed" | "dropped", as the associator would answer."""

    def __init__(self, **states: str) -> None:
        self.states = {int(k[1:]): v for k, v in states.items()}

    def awaiting_verdict(self, track_id: int) -> bool:
        return self.states.get(track_id) == "tentative"

    def confirmed(self, track_id: int) -> bool:
        return self.states.get(track_id, "confirmed") == "confirmed"


def holder(lookback: int, detect_every: int, verdicts) -> HeldFrames:
    return HeldFrames(lookback, detect_every, verdicts, ids=lambda e: e[1],
                      without=lambda e, hidden: (e[0], [i for i in e[1] if i not in hidden]))


def test_live_writes_every_frame_at_once_tentative_tracks_included():
    held = holder(0, 10, Verdicts(t1="tentative"))
    assert held.push((0, [1, 2])) == [(0, [1, 2])] and len(held) == 0 and held.flush() == []


def test_a_frame_is_written_lookback_frames_later_when_nothing_awaits_a_verdict():
    held = holder(3, 10, Verdicts())
    written = [held.push((t, [1])) for t in range(6)]
    assert written == [[], [], [], [(0, [1])], [(1, [1])], [(2, [1])]]
    assert held.flush() == [(3, [1]), (4, [1]), (5, [1])]


def test_frames_showing_a_tentative_track_wait_for_its_verdict_then_show_it_when_confirmed():
    verdicts = Verdicts(t2="tentative")
    held = holder(2, 5, verdicts)
    assert [held.push((t, [1, 2])) for t in range(5)] == [[]] * 5  # frame 0 waits (limit 2 + 5)
    verdicts.states[2] = "confirmed"  # a keyframe matched it
    assert held.push((5, [1, 2])) == [(t, [1, 2]) for t in range(4)]


def test_a_dropped_tentative_track_is_never_written():
    verdicts = Verdicts(t2="tentative")
    held = holder(2, 5, verdicts)
    [held.push((t, [1, 2])) for t in range(4)]
    verdicts.states[2] = "dropped"  # unmatched at the next keyframe: hidden, kept lost
    assert held.push((4, [1])) == [(0, [1]), (1, [1]), (2, [1])]


def test_the_wait_is_bounded_by_lookback_plus_detect_every_and_three_lookbacks():
    for lookback, every, limit in [(3, 5, 8), (2, 100, 6)]:
        held = holder(lookback, every, Verdicts(t1="tentative"))
        out = [held.push((t, [1])) for t in range(limit + 1)]
        assert out[:limit] == [[]] * limit and out[limit] == [(0, [])]  # written without the tentative track
        assert len(held) == limit


def test_frames_before_a_birth_wait_for_the_newborns_verdict_when_asked():
    verdicts = Verdicts(t9="tentative")
    held = holder(2, 5, verdicts)
    [held.push((t, [1])) for t in range(4)]  # frames 0, 1 written; 2, 3 held
    held.wait_for(9, 2)  # track 9 born on frame 4: frames 2 and 3 wait for its verdict
    assert [held.push((t, [1, 9])) for t in range(4, 7)] == [[]] * 3
    verdicts.states[9] = "confirmed"
    assert held.push((7, [1, 9])) == [(2, [1]), (3, [1]), (4, [1, 9]), (5, [1, 9])]


def test_flush_leaves_out_tracks_still_tentative_at_the_end():
    held = holder(4, 10, Verdicts(t1="tentative", t2="confirmed"))
    [held.push((t, [1, 2])) for t in range(3)]
    assert held.flush() == [(0, [2]), (1, [2]), (2, [2])] and len(held) == 0


def test_the_associator_answers_the_verdicts():
    assoc = Associator()
    box = np.array([[10.0, 10.0, 30.0, 30.0]])
    plan = assoc.update(0, {}, box, np.array([0.9]), ["car"])
    tid = plan.births[0].track_id
    assert assoc.awaiting_verdict(tid) and not assoc.confirmed(tid)
    mask = np.zeros((48, 48), bool)
    mask[10:30, 10:30] = True
    assoc.observe(1, {tid: mask})
    assoc.update(1, {tid: mask}, box, np.array([0.9]), ["car"])
    assert assoc.confirmed(tid) and not assoc.awaiting_verdict(tid)
    # a false positive unmatched at a keyframe `confirm_min_age` frames later: dropped, not awaiting
    fp = assoc.update(2, {tid: mask}, np.array([[0.0, 0.0, 8.0, 8.0]]), np.array([0.9]), ["car"]).births[0].track_id
    blob = np.zeros((48, 48), bool)
    blob[0:8, 0:8] = True
    later = 2 + assoc.params.confirm_min_age
    assoc.observe(later, {tid: mask, fp: blob})
    plan = assoc.update(later, {tid: mask, fp: blob}, box, np.array([0.9]), ["car"])
    assert fp in plan.removals and not assoc.awaiting_verdict(fp) and not assoc.confirmed(fp)
    assert assoc.confirmed(12345)  # an id no longer remembered is never hidden
