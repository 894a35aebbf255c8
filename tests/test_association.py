"""Association rules, one small deterministic scene each (pure numpy, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from promptrack.trackers.association import (
    AssociationParams,
    Associator,
    Plan,
    box_iou,
)
from promptrack.trackers.mask_frame import HostMasks, mask_box_iou, mask_to_box
from promptrack.trackers.tracks import TrackState

H, W = 120, 160


def mask(x1, y1, x2, y2):
    m = np.zeros((H, W), bool)
    m[y1:y2, x1:x2] = True
    return m


def box(*xyxy):
    return np.array([xyxy], dtype=float)


def step(assoc, frame, masks, boxes=None, scores=None, labels=None, **kw):
    """One frame as the loop runs it: observe, then (keyframe) update."""
    removed = assoc.observe(frame, masks, kw.pop("track_embeddings", None))
    if boxes is None:
        return removed, None
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9) if scores is None else np.asarray(scores, float)
    labels = ["person"] * len(boxes) if labels is None else labels
    return removed, assoc.update(frame, masks, boxes, scores, labels, **kw)


def born(assoc, b=(20, 20, 50, 80), frame=0, label="person"):
    plan = assoc.update(frame, {}, box(*b), np.array([0.9]), [label])
    return plan.births[0].track_id


def test_births_start_at_one_and_ids_are_never_reused():
    assoc = Associator()
    plan = assoc.update(0, {}, np.array([[10, 10, 40, 40], [80, 10, 120, 60]]), np.array([0.9, 0.8]), ["a", "b"])
    assert [b.track_id for b in plan.births] == [1, 2]
    assoc.tracks[1].state = TrackState.ENDED
    plan = assoc.update(1, {2: mask(80, 10, 120, 60)}, box(10, 10, 40, 40), np.array([0.9]), ["a"])
    assert [b.track_id for b in plan.births] == [3]


def test_low_score_and_covered_boxes_are_no_births():
    assoc = Associator()
    tid = born(assoc)
    m = {tid: mask(20, 20, 50, 80)}
    plan = assoc.update(1, m, np.array([[100, 10, 130, 40], [22, 40, 48, 78]]), np.array([0.2, 0.9]), ["a", "a"])
    assert plan.births == []  # first too weak; second: already tracked (and matched)
    plan = assoc.update(2, m, np.array([[25, 25, 45, 60]]), np.array([0.9]), ["a"])
    assert plan.births == []


def test_match_keeps_the_id_and_one_to_one():
    assoc = Associator()
    a, b = born(assoc, (10, 10, 40, 70)), born(assoc, (90, 10, 120, 70))
    masks = {a: mask(12, 10, 42, 70), b: mask(92, 12, 122, 72)}
    _, plan = step(assoc, 5, masks, [[91, 12, 121, 72], [11, 10, 41, 70]])
    assert plan.matches == {a: 1, b: 0}
    assert plan.births == [] and plan.reprompts == {}


def test_box_around_a_half_segmented_mask_matches_and_reprompts_it():
    assoc = Associator()
    tid = born(assoc, (20, 20, 60, 100))
    half = {tid: mask(20, 20, 60, 45)}  # SAM 2 kept only the head: IoU with the box ~0.3
    _, plan = step(assoc, 10, half, [[20, 20, 60, 100]])
    assert plan.matches == {tid: 0}
    assert tid in plan.reprompts and plan.births == []


def test_drifted_mask_is_reprompted_with_the_box():
    assoc = Associator(AssociationParams(reprompt_iou=0.6))
    tid = born(assoc, (20, 20, 60, 80))
    _, plan = step(assoc, 10, {tid: mask(32, 20, 72, 80)}, [[20, 20, 60, 80]])
    assert plan.matches == {tid: 0}
    np.testing.assert_allclose(plan.reprompts[tid], [20, 20, 60, 80])


def test_a_missed_detection_never_ends_an_established_track():
    assoc = Associator(AssociationParams(confirm_hits=1))
    tid = born(assoc)
    for f in (10, 20):  # detected a few times: an object, not a chance overlap
        step(assoc, f, {tid: mask(20, 20, 50, 80)}, [[20, 20, 50, 80]])
    for f in range(21, 400):
        removed, plan = step(assoc, f, {tid: mask(20, 20, 50, 80)}, np.zeros((0, 4)) if f % 10 == 0 else None)
        assert removed == [] and (plan is None or plan.removals == [])
    assert assoc.tracks[tid].state is TrackState.ACTIVE


def test_scenery_a_chance_overlap_confirmed_leaves_the_tracker_and_stays_revivable():
    assoc = Associator(AssociationParams(unsupported_keyframes=4, unsupported_hits=3))
    tid = born(assoc, (100, 60, 140, 100))  # a false positive: SAM 2 tracks a patch of wall
    wall = {tid: mask(100, 60, 140, 100)}
    step(assoc, 10, wall, [[102, 62, 138, 98]])  # a second false positive on the same wall confirms it
    assert assoc.tracks[tid].state is TrackState.ACTIVE
    for f in (20, 30, 40):
        _, plan = step(assoc, f, wall, np.zeros((0, 4)))
        assert plan.removals == []
    _, plan = step(assoc, 50, wall, np.zeros((0, 4)))  # the 4th keyframe in a row no detection vouches for it
    assert plan.removals == [tid]
    track = assoc.tracks[tid]
    assert track.state is TrackState.LOST and not track.held
    # were it an object after all, a detection where it was brings the id back (re-added)
    _, plan = step(assoc, 60, {}, [[101, 61, 139, 99]])
    assert [(r.track_id, r.readd) for r in plan.revivals] == [(tid, True)] and plan.births == []


def test_occlusion_keeps_the_id_when_sam2_refinds_it():
    assoc = Associator(AssociationParams(confirm_hits=1))
    tid = born(assoc)
    step(assoc, 1, {tid: mask(20, 20, 50, 80)})
    removed, _ = step(assoc, 2, {tid: np.zeros((H, W), bool)})
    assert removed == [] and assoc.tracks[tid].state is TrackState.LOST
    assert assoc.newly_lost == [tid]
    step(assoc, 30, {tid: mask(24, 20, 54, 80)})
    assert assoc.tracks[tid].state is TrackState.ACTIVE


def test_occlusion_keeps_the_id_when_the_detector_finds_it_again():
    assoc = Associator()
    tid = born(assoc, (10, 30, 40, 90))
    for f in range(1, 6):  # walking right at 2 px/frame
        step(assoc, f, {tid: mask(10 + 2 * f, 30, 40 + 2 * f, 90)})
    for f in range(6, 30):  # hidden behind something
        step(assoc, f, {tid: np.zeros((H, W), bool)})
    # reappears further right, where its motion would have taken it
    _, plan = step(assoc, 30, {tid: np.zeros((H, W), bool)}, [[60, 30, 90, 90]])
    assert plan.births == []
    assert [r.track_id for r in plan.revivals] == [tid] and not plan.revivals[0].readd
    assert tid in plan.reprompts  # SAM 2 still holds the id: a re-prompt brings it back
    assert assoc.tracks[tid].state is TrackState.ACTIVE


def test_reentry_within_the_lost_time_revives_the_id_after_it_gets_a_new_one():
    for gap, revived in ((100, True), (200, False)):
        assoc = Associator(AssociationParams(lost_ttl=150, confirm_hits=1))
        tid = born(assoc, (120, 30, 150, 90))
        step(assoc, 1, {tid: mask(125, 30, 155, 90)})
        ended = []
        for f in range(2, 2 + gap):  # left the image on the right
            ended += step(assoc, f, {tid: np.zeros((H, W), bool)} if tid not in ended else {})[0]
        _, plan = step(assoc, 2 + gap, {}, [[128, 30, 158, 90]])
        if revived:
            assert [r.track_id for r in plan.revivals] == [tid] and plan.births == []
        else:
            assert ended == [tid] and assoc.tracks[tid].state is TrackState.ENDED
            assert plan.revivals == [] and [b.track_id for b in plan.births] == [tid + 1]


def test_a_different_object_far_away_is_not_a_revival():
    assoc = Associator()
    tid = born(assoc, (10, 10, 30, 50))
    step(assoc, 1, {tid: mask(10, 10, 30, 50)})
    step(assoc, 2, {tid: np.zeros((H, W), bool)})
    _, plan = step(assoc, 5, {tid: np.zeros((H, W), bool)}, [[120, 60, 158, 118]])
    assert plan.revivals == [] and len(plan.births) == 1


def test_a_label_flip_leaves_the_label():
    assoc = Associator()
    tid = born(assoc, label="car")
    m = {tid: mask(20, 20, 50, 80)}
    for f, label in ((10, "car"), (20, "truck"), (30, "car")):
        step(assoc, f, m, [[20, 20, 50, 80]], [0.8 if label == "car" else 0.95], [label])
        assert assoc.tracks[tid].label == "car"


def test_duplicates_are_merged_after_several_frames_older_id_stays():
    assoc = Associator(AssociationParams(merge_frames=3))
    a = born(assoc, (10, 10, 50, 70))
    b = born(assoc, (100, 10, 140, 70), frame=1)
    same = mask(30, 10, 70, 70)
    assert step(assoc, 2, {a: same, b: mask(32, 10, 72, 70)})[0] == []
    assert step(assoc, 3, {a: same, b: mask(30, 12, 70, 70)})[0] == []
    removed, _ = step(assoc, 4, {a: same, b: same})
    assert removed == [b]
    assert assoc.merges[0].keep == a and assoc.merges[0].remove == b
    tb = assoc.tracks[b]
    assert tb.state is TrackState.LOST and not tb.held and tb.merged_into == a


def test_overlap_must_last_to_merge():
    assoc = Associator(AssociationParams(merge_frames=3))
    a, b = born(assoc, (10, 10, 50, 70)), born(assoc, (100, 10, 140, 70))
    for f in range(1, 10):  # they touch every other frame only (a crossing)
        together = f % 2 == 0
        removed, _ = step(assoc, f, {a: mask(10, 10, 50, 70), b: mask(12, 10, 52, 70) if together else mask(100, 10, 140, 70)})
        assert removed == []


def test_a_merged_away_id_is_readded_when_its_object_shows_up_again():
    assoc = Associator(AssociationParams(merge_frames=2))
    a = born(assoc, (10, 10, 40, 70))
    b = born(assoc, (45, 10, 75, 70), frame=1)
    for f in range(2, 6):  # b stands next to a, goes behind it; SAM 2 jumps onto a with b's id
        step(assoc, f, {a: mask(10, 10, 40, 70), b: mask(45, 10, 75, 70) if f < 4 else mask(10, 10, 40, 70)})
    assert assoc.tracks[b].merged_into == a
    # b's object steps out from behind a
    _, plan = step(assoc, 8, {a: mask(10, 10, 40, 70)}, [[10, 10, 40, 70], [44, 10, 74, 70]])
    assert plan.matches[a] == 0
    assert [(r.track_id, r.readd) for r in plan.revivals] == [(b, True)]
    assert list(plan.additions) == [b] and b not in plan.reprompts
    assert assoc.tracks[b].held


def test_appearance_picks_which_lost_track_a_detection_is():
    params = AssociationParams()
    assoc = Associator(params)
    red, blue = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    a, b = born(assoc, (40, 30, 70, 90)), born(assoc, (72, 30, 102, 90))
    # what they look like is learnt at keyframes, from detections that match them
    step(assoc, 1, {a: mask(40, 30, 70, 90), b: mask(72, 30, 102, 90)}, [[40, 30, 70, 90], [72, 30, 102, 90]],
         detection_embeddings=np.array([red, blue]))
    step(assoc, 2, {a: np.zeros((H, W), bool), b: np.zeros((H, W), bool)}, track_embeddings={})
    dets = [[60, 30, 90, 90]]  # right between where both were
    _, plan = step(assoc, 10, {}, dets, detection_embeddings=np.array([blue]))
    assert [r.track_id for r in plan.revivals] == [b]
    # a detection that looks like neither is a new object, whatever its position
    _, plan = step(assoc, 20, {b: mask(60, 30, 90, 90)}, [[40, 30, 58, 90]],
                   detection_embeddings=np.array([[0.0, 0.0, 1.0]]))
    assert plan.revivals == [] and len(plan.births) == 1


def test_merge_keeps_the_younger_id_when_appearance_says_the_older_jumped():
    assoc = Associator(AssociationParams(merge_frames=2))
    red, blue = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    a, b = born(assoc, (10, 10, 40, 70)), born(assoc, (60, 10, 90, 70))
    step(assoc, 1, {a: mask(10, 10, 40, 70), b: mask(60, 10, 90, 70)}, [[10, 10, 40, 70], [60, 10, 90, 70]],
         detection_embeddings=np.array([red, blue]))
    same = mask(60, 10, 90, 70)  # a's mask jumped onto b (blue)
    step(assoc, 2, {a: same, b: same}, track_embeddings={a: blue, b: blue})
    removed, _ = step(assoc, 3, {a: same, b: same}, track_embeddings={a: blue, b: blue})
    assert removed == [a] and assoc.merges[-1].keep == b


def test_an_unconfirmed_track_that_vanishes_ends_after_the_window():
    assoc = Associator(AssociationParams(confirm_hits=2, confirm_window=30))
    tid = born(assoc)
    assert step(assoc, 5, {tid: np.zeros((H, W), bool)})[0] == []
    assert assoc.tracks[tid].state is TrackState.LOST
    assert step(assoc, 31, {tid: np.zeros((H, W), bool)})[0] == [tid]
    assert assoc.tracks[tid].state is TrackState.ENDED


@pytest.mark.parametrize("misses, dropped_at", [(1, 12), (3, 40)])
def test_tentative_tracks_need_confirmation(misses, dropped_at):
    assoc = Associator(AssociationParams(confirm_hits=2, confirm_window=30, confirm_misses=misses, confirm_min_age=10))
    real, ghost = born(assoc, (10, 10, 40, 70)), born(assoc, (100, 10, 130, 70))
    assert assoc.tracks[real].state is TrackState.TENTATIVE
    masks = {real: mask(10, 10, 40, 70), ghost: mask(100, 10, 130, 70)}
    _, plan = step(assoc, 5, masks, [[10, 10, 40, 70]])  # an extra keyframe right after its birth
    assert assoc.tracks[real].state is TrackState.ACTIVE
    assert plan.removals == [] and assoc.tracks[ghost].state is TrackState.TENTATIVE  # it may wait ...
    for f in (12, 40):
        _, plan = step(assoc, f, masks, [[10, 10, 40, 70]])
        assert plan.removals == ([ghost] if f == dropped_at else [])
    ghost_track = assoc.tracks[ghost]  # ... one keyframe interval (then hidden, revivable), or the window at most
    if dropped_at < 40:
        assert ghost_track.state is TrackState.LOST and not ghost_track.held
    else:
        assert ghost_track.state is TrackState.ENDED


def test_a_real_object_the_detector_missed_once_gets_its_tentative_id_back():
    assoc = Associator(AssociationParams(confirm_misses=1, confirm_min_age=10))
    tid = born(assoc, (40, 20, 70, 80))
    _, plan = step(assoc, 20, {tid: mask(42, 20, 72, 80)}, np.zeros((0, 4)))  # missed: hidden
    assert plan.removals == [tid]
    _, plan = step(assoc, 40, {}, [[46, 20, 76, 80]])  # found again where it was: same id, re-added
    assert [(r.track_id, r.readd) for r in plan.revivals] == [(tid, True)] and plan.births == []
    assert assoc.tracks[tid].state is TrackState.ACTIVE  # two detections: confirmed


def test_plan_additions_and_truth():
    assert not Plan()
    assoc = Associator()
    plan = assoc.update(0, {}, box(1, 1, 30, 30), np.array([0.9]), ["x"])
    assert plan and list(plan.additions) == [1]


def test_geometry_helpers():
    m = mask(10, 20, 30, 60)
    np.testing.assert_allclose(mask_to_box(m), [10, 20, 30, 60])
    np.testing.assert_allclose(mask_to_box(np.zeros((4, 4), bool)), [0, 0, 0, 0])
    boxes = np.array([[10, 20, 30, 60], [10, 20, 30, 40]])
    inside, _ = HostMasks({1: m}).box_cover(boxes, [1])
    iou = mask_box_iou(inside, [m.sum()], boxes, m.shape)
    np.testing.assert_allclose(iou[0], [1.0, 0.5])
    np.testing.assert_allclose(inside[0], [800, 400])
    assert box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10]))[0, 0] == pytest.approx(1 / 3)


def test_the_track_table_stays_bounded_over_a_long_run():
    assoc = Associator(AssociationParams(confirm_hits=1, lost_ttl=20, keep_ended=3))
    sizes = []
    for k in range(100):  # 100 objects, one after the other, each seen for 10 frames then gone
        f0 = k * 40
        tid = born(assoc, (20, 20, 50, 80), frame=f0)
        for f in range(f0 + 1, f0 + 40):
            step(assoc, f, {tid: mask(20, 20, 50, 80) if f < f0 + 10 else np.zeros((H, W), bool)})
        sizes.append(len(assoc.tracks))
    assert max(sizes) <= 3 + 2 and assoc._next_id == 101  # ids still never reused
    assert sorted(assoc.tracks) == [98, 99, 100]  # the newest ended ones are remembered
