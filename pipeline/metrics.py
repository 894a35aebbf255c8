"""Video object segmentation scores of the DAVIS benchmark: J (region) and F (boundary).

J is the intersection over union of a predicted and a ground-truth mask. F is the F-measure of
their boundaries: a boundary pixel of one mask counts as matched when a boundary pixel of the
other lies within a tolerance of ``bound_th`` x the image diagonal (0.008, DAVIS's default: 8
pixels at 854x480). Both are 1.0 when both masks are empty and 0.0 when only one is.

A sequence is summed up as DAVIS does: the mean (M) of J and of F over frames, their recall (R,
the share of frames scoring above 0.5), and J&F, the mean of J-mean and F-mean. The
semi-supervised protocol leaves out the first frame (it holds the prompt) and the last one.

Example:
    >>> import numpy as np
    >>> gt = np.zeros((48, 64), bool); gt[10:30, 10:40] = True
    >>> pred = np.zeros_like(gt); pred[10:30, 10:35] = True
    >>> round(region_similarity(pred, gt), 3)
    0.833
    >>> boundary_f_measure(gt, gt)
    1.0
    >>> scores = evaluate_sequence([pred] * 3, [gt] * 3, skip_ends=False)
    >>> sorted(scores)
    ['F_mean', 'F_recall', 'J&F', 'J_mean', 'J_recall', 'frames']
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

BOUND_TH = 0.008  # DAVIS boundary tolerance, as a share of the image diagonal


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J: intersection over union of two boolean HxW masks (1.0 when both are empty)."""
    pred, gt = _pair(pred, gt)
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, gt).sum() / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary: its pixels with a 4-neighbour outside it, one pixel wide.

    The image border is not a boundary: a mask that touches the frame's edge ends there
    because the picture does, not because the object does.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros_like(mask)
    padded = np.pad(mask, 1, mode="edge")
    inner = ndimage.binary_erosion(padded, structure=ndimage.generate_binary_structure(2, 1))[1:-1, 1:-1]
    return mask & ~inner


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F: boundary F-measure of two boolean HxW masks.

    Args:
        bound_th: match tolerance; below 1, a share of the image diagonal; from 1 up, pixels.
    """
    pred, gt = _pair(pred, gt)
    tolerance = bound_th if bound_th >= 1 else float(np.ceil(bound_th * np.hypot(*gt.shape)))
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    # Distance from every pixel to the nearest boundary pixel of the other mask.
    to_gt = ndimage.distance_transform_edt(~gt_b)
    to_pred = ndimage.distance_transform_edt(~pred_b)
    precision = float((to_gt[pred_b] <= tolerance).sum() / n_pred)
    recall = float((to_pred[gt_b] <= tolerance).sum() / n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def evaluate_sequence(preds: Iterable[np.ndarray], gts: Iterable[np.ndarray], skip_ends: bool = True,
                      bound_th: float = BOUND_TH) -> dict[str, float]:
    """DAVIS scores of one sequence: J/F mean and recall, and J&F.

    Args:
        preds, gts: boolean HxW masks, frame by frame, equally many.
        skip_ends: leave out the first and last frame (the semi-supervised protocol: the first
            frame holds the prompt); ignored for sequences shorter than three frames.
    """
    j, f = per_frame_scores(preds, gts, bound_th)
    if skip_ends and len(j) >= 3:
        j, f = j[1:-1], f[1:-1]
    j_mean, f_mean = float(np.mean(j)), float(np.mean(f))
    return {"J_mean": j_mean, "J_recall": float(np.mean(j > 0.5)), "F_mean": f_mean,
            "F_recall": float(np.mean(f > 0.5)), "J&F": (j_mean + f_mean) / 2, "frames": int(len(j))}


def per_frame_scores(preds: Iterable[np.ndarray], gts: Iterable[np.ndarray],
                     bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every frame, as two float arrays."""
    preds, gts = list(preds), list(gts)
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predicted masks for {len(gts)} ground-truth masks")
    if not preds:
        raise ValueError("no frames to score")
    j = np.array([region_similarity(p, g) for p, g in zip(preds, gts)])
    f = np.array([boundary_f_measure(p, g, bound_th) for p, g in zip(preds, gts)])
    return j, f


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"masks must be two HxW arrays of one size, got {pred.shape} and {gt.shape}")
    return pred, gt


__all__: Sequence[str] = ("BOUND_TH", "boundary_f_measure", "boundary_map", "evaluate_sequence", "per_frame_scores",
                          "region_similarity")
