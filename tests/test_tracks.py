"""The track model: label votes, motion memory, appearance memory."""

from __future__ import annotations

import numpy as np

from promptrack.trackers.tracks import Track, TrackState


def test_label_is_the_score_weighted_vote_winner():
    t = Track(track_id=1, born=0)
    for _ in range(3):
        t.vote("car", 0.8)
    t.vote("truck", 0.95)  # one confident flip
    assert t.label == "car"
    assert abs(t.score - 0.8) < 1e-9
    assert t.detections == 4


def test_label_of_a_track_without_votes_is_empty():
    t = Track(track_id=1, born=0)
    assert (t.label, t.score) == ("", 0.0)


def test_velocity_and_prediction_follow_the_mask_boxes():
    t = Track(track_id=1, born=0)
    for f in range(5):
        t.see(f, np.array([10.0 + 3 * f, 20.0, 30.0 + 3 * f, 40.0]))
    assert t.velocity[0] > 2.0 and abs(t.velocity[1]) < 1e-9
    assert t.predict_box(10)[0] > t.box[0] + 10
    # extrapolation is capped: a long-lost track is not flung across the image
    assert np.allclose(t.predict_box(1000, max_frames=5), t.predict_box(9, max_frames=5))


def test_remember_keeps_a_unit_vector_that_moves_towards_new_views():
    t = Track(track_id=1, born=0)
    t.remember(np.array([1.0, 0.0]))
    t.remember(np.array([0.0, 1.0]), momentum=0.5)
    assert np.isclose(np.linalg.norm(t.embedding), 1.0)
    assert t.embedding[0] > 0 and t.embedding[1] > 0


def test_states():
    t = Track(track_id=1, born=0, state=TrackState.TENTATIVE)
    assert t.has_mask and t.is_live
    t.state = TrackState.LOST
    assert not t.has_mask and t.is_live
    t.state = TrackState.ENDED
    assert not t.is_live
