"""DAVIS J (region IoU) and F (boundary F-measure) on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from promptrack.pipeline.metrics import (boundary_f_measure, boundary_map, evaluate_sequence, per_frame_scores,
                                         region_similarity)


def box_mask(shape, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def brute_force_f(pred: np.ndarray, gt: np.ndarray, tolerance: float) -> float:
    """F by definition, pixel by pixel: boundary pixels matched within `tolerance` of the other's."""
    def boundary(m):
        h, w = m.shape
        out = np.zeros_like(m)
        for y in range(h):
            for x in range(w):
                if m[y, x] and any(0 <= y + dy < h and 0 <= x + dx < w and not m[y + dy, x + dx]
                                   for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))):
                    out[y, x] = True
        return out

    pb, gb = np.argwhere(boundary(pred)), np.argwhere(boundary(gt))
    dist = np.sqrt(((pb[:, None, :] - gb[None, :, :]) ** 2).sum(-1))
    precision = (dist.min(1) <= tolerance).mean()
    recall = (dist.min(0) <= tolerance).mean()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_region_similarity_is_iou():
    gt = box_mask((10, 10), 0, 10, 0, 4)         # 40 pixels
    pred = box_mask((10, 10), 0, 10, 2, 6)       # 40 pixels, 20 shared
    assert region_similarity(pred, gt) == pytest.approx(20 / 60)
    assert region_similarity(gt, gt) == 1.0
    assert region_similarity(gt, ~gt) == 0.0
    assert region_similarity(pred.astype(np.uint8) * 255, gt) == pytest.approx(20 / 60)  # 0/255 PNG masks


def test_empty_masks():
    empty, some = np.zeros((8, 8), bool), box_mask((8, 8), 2, 5, 2, 5)
    assert region_similarity(empty, empty) == 1.0 and boundary_f_measure(empty, empty) == 1.0
    assert region_similarity(empty, some) == 0.0 and boundary_f_measure(empty, some) == 0.0
    assert region_similarity(some, empty) == 0.0 and boundary_f_measure(some, empty) == 0.0


def test_boundary_map_is_the_inner_ring_and_ignores_the_image_border():
    square = box_mask((10, 10), 2, 7, 3, 8)      # 5x5
    ring = boundary_map(square)
    assert ring.sum() == 16 and not ring[3:6, 4:7].any() and not (ring & ~square).any()
    assert not boundary_map(np.ones((6, 6), bool)).any()           # the whole frame: no boundary
    left = boundary_map(box_mask((6, 8), 0, 6, 0, 3))
    assert left.sum() == 6 and left[:, 2].all()                     # only the inner edge, column 2


def test_boundary_f_tolerance():
    gt = box_mask((40, 40), 10, 30, 10, 30)
    shifted = box_mask((40, 40), 11, 31, 11, 31)   # one pixel down and right
    assert boundary_f_measure(gt, gt) == 1.0
    assert boundary_f_measure(shifted, gt, bound_th=2) == 1.0      # within 2 pixels everywhere
    far = box_mask((40, 40), 0, 5, 0, 5)
    assert boundary_f_measure(far, gt, bound_th=2) == 0.0
    # Default tolerance: 0.008 of the diagonal, rounded up (1 pixel at 40x40): the shift still matches.
    assert boundary_f_measure(shifted, gt) == pytest.approx(brute_force_f(shifted, gt, 1.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tolerance", [1, 2, 3.5])
def test_boundary_f_matches_the_definition(seed, tolerance):
    rng = np.random.default_rng(seed)
    shape = (24, 30)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    gt = (yy - 12) ** 2 / 64 + (xx - 14) ** 2 / 100 <= 1              # an ellipse
    pred = gt.copy()
    pred[rng.integers(0, 24, 40), rng.integers(0, 30, 40)] ^= True   # salt and pepper
    pred[3:7, 20:27] = True                                          # a false blob
    expected = brute_force_f(pred, gt, tolerance)
    assert 0.0 < expected < 1.0
    assert boundary_f_measure(pred, gt, bound_th=tolerance) == pytest.approx(expected)


def test_evaluate_sequence_means_recalls_and_ends():
    gt = box_mask((20, 20), 5, 15, 5, 15)
    good, bad = gt.copy(), np.zeros_like(gt)
    preds = [bad, good, good, bad, bad]       # first and last frames are left out by default
    j, f = per_frame_scores(preds, [gt] * 5)
    assert j.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0] and f.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    scores = evaluate_sequence(preds, [gt] * 5)
    assert scores["frames"] == 3
    assert scores["J_mean"] == pytest.approx(2 / 3) and scores["F_mean"] == pytest.approx(2 / 3)
    assert scores["J_recall"] == pytest.approx(2 / 3) and scores["J&F"] == pytest.approx(2 / 3)
    every = evaluate_sequence(preds, [gt] * 5, skip_ends=False)
    assert every["frames"] == 5 and every["J&F"] == pytest.approx(0.4)
    half = box_mask((20, 20), 5, 15, 5, 10)   # IoU 0.5 exactly: not above 0.5, no recall
    assert evaluate_sequence([half], [gt])["J_recall"] == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="one size"):
        region_similarity(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="2 predicted masks for 1"):
        evaluate_sequence([np.zeros((4, 4))] * 2, [np.zeros((4, 4))])
    with pytest.raises(ValueError, match="no frames"):
        evaluate_sequence([], [])


def test_real_davis_annotation(assets):
    from PIL import Image

    folder = assets / "davis2016" / "Annotations" / "480p" / "dog"
    gt = np.array(Image.open(folder / "00000.png")) > 127
    assert gt.any()
    assert region_similarity(gt, gt) == 1.0 and boundary_f_measure(gt, gt) == 1.0
    moved = np.roll(gt, 4, axis=1)            # 4 pixels: inside the 8-pixel tolerance at 854x480
    assert boundary_f_measure(moved, gt) > 0.95 > region_similarity(moved, gt)
