"""Multi-object tracking metrics: HOTA, IDF1, CLEAR (MOTA, ID switches, fragmentations).

Written from the metric definitions (Luiten et al. 2020 for HOTA, Ristani et al. 2016 for IDF1,
Bernardin & Stiefelhagen 2008 for CLEAR) with the matching conventions of TrackEval, the
reference implementation; ``tests/test_bench_association.py`` checks it against the
``trackeval`` package when that is installed, and against hand-computed small cases.

A sequence is a list of frames, each ``(gt_ids, tracker_ids, similarity)`` with
``similarity[i, j]`` the IoU between ground-truth object ``gt_ids[i]`` and tracker output
``tracker_ids[j]`` on that frame. Ids may be any integers.

Example:
    >>> import numpy as np
    >>> one = np.ones((1, 1))
    >>> seq = [([1], [7], one), ([1], [7], one), ([1], [8], one)]  # the id changes on frame 3
    >>> m = evaluate(seq)
    >>> m["id_switches"], round(m["idf1"], 3), m["fragmentations"]
    (1, 0.667, 0)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

Frame = tuple[Sequence[int], Sequence[int], np.ndarray]
EPS = np.finfo(float).eps
ALPHAS = np.arange(0.05, 0.99, 0.05)  # HOTA localisation thresholds 0.05 .. 0.95


def _compact(frames: Sequence[Frame]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], int, int]:
    """Relabel ids to 0..n-1 (per side) so that counts can live in dense arrays."""
    gt_map: dict[int, int] = {}
    tr_map: dict[int, int] = {}
    gts, trs, sims = [], [], []
    for gt_ids, tr_ids, sim in frames:
        gts.append(np.array([gt_map.setdefault(int(i), len(gt_map)) for i in gt_ids], dtype=int))
        trs.append(np.array([tr_map.setdefault(int(i), len(tr_map)) for i in tr_ids], dtype=int))
        sims.append(np.asarray(sim, dtype=float).reshape(len(gt_ids), len(tr_ids)))
    return gts, trs, sims, len(gt_map), len(tr_map)


def clear(frames: Sequence[Frame], threshold: float = 0.5) -> dict[str, float]:
    """MOTA, ID switches and fragmentations.

    Per frame, pairs with IoU >= threshold are matched one-to-one, preferring to keep the pair
    of the previous frame, then the higher IoU. An ID switch: a ground-truth object matched to a
    different id than the last time it was matched. A fragmentation: a ground-truth trajectory
    resumes being tracked after at least one frame untracked (counted per resumption).
    """
    gts, trs, sims, n_gt, _ = _compact(frames)
    tp = fn = fp = idsw = 0
    last_id = np.full(n_gt, -1)  # id at the last match, any number of frames ago
    prev_id = np.full(n_gt, -1)  # id on the previous frame only (-1: untracked then)
    starts = np.zeros(n_gt, dtype=int)  # how many times each trajectory starts being tracked
    for g, t, s in zip(gts, trs, sims):
        if not len(g) or not len(t):
            # As TrackEval: a frame with nothing on one side leaves the continuity untouched.
            fn += len(g)
            fp += len(t)
            continue
        score = s + 1000.0 * (t[None, :] == prev_id[g][:, None])
        score[s < threshold - EPS] = 0.0
        rows, cols = linear_sum_assignment(-score)
        keep = score[rows, cols] > EPS
        matched_g, matched_t = g[rows[keep]], t[cols[keep]]
        switched = (last_id[matched_g] >= 0) & (last_id[matched_g] != matched_t)
        idsw += int(switched.sum())
        starts[matched_g] += prev_id[matched_g] < 0
        last_id[matched_g] = matched_t
        prev_id[:] = -1
        prev_id[matched_g] = matched_t
        tp += len(matched_g)
        fn += len(g) - len(matched_g)
        fp += len(t) - len(matched_g)
    frag = int(np.maximum(starts - 1, 0).sum())
    mota = (tp - fp - idsw) / max(1, tp + fn)
    return {"mota": float(mota), "id_switches": idsw, "fragmentations": frag, "tp": tp, "fn": fn, "fp": fp}


def identity(frames: Sequence[Frame], threshold: float = 0.5) -> dict[str, float]:
    """IDF1: the F1 of detections under the one-to-one id mapping that maximises it globally."""
    gts, trs, sims, n_gt, n_tr = _compact(frames)
    gt_count = np.zeros(n_gt)
    tr_count = np.zeros(n_tr)
    both = np.zeros((n_gt, n_tr))  # frames where the pair overlaps at >= threshold
    for g, t, s in zip(gts, trs, sims):
        gt_count[g] += 1
        tr_count[t] += 1
        i, j = np.nonzero(s >= threshold)
        np.add.at(both, (g[i], t[j]), 1)
    total_gt, total_tr = gt_count.sum(), tr_count.sum()
    if total_gt == 0 or total_tr == 0:
        return {"idf1": 0.0, "idp": 0.0, "idr": 0.0, "idtp": 0}
    # Each pair (g, t) assigned earns `both` true positives; the best global assignment is a
    # max-weight bipartite matching (unmatched ids simply earn nothing).
    rows, cols = linear_sum_assignment(-both)
    idtp = float(both[rows, cols].sum())
    idp, idr = idtp / total_tr, idtp / total_gt
    idf1 = 2 * idtp / (total_gt + total_tr)
    return {"idf1": float(idf1), "idp": float(idp), "idr": float(idr), "idtp": int(idtp)}


def hota(frames: Sequence[Frame]) -> dict[str, float]:
    """HOTA = sqrt(DetA * AssA), averaged over localisation thresholds 0.05 .. 0.95.

    Per frame, pairs are matched one-to-one maximising IoU weighted by how well the two ids
    align over the whole sequence (their soft global Jaccard); a match counts at threshold
    alpha when its IoU is at least alpha.
    """
    gts, trs, sims, n_gt, n_tr = _compact(frames)
    gt_count = np.zeros((n_gt, 1))
    tr_count = np.zeros((1, n_tr))
    soft = np.zeros((n_gt, n_tr))
    for g, t, s in zip(gts, trs, sims):
        gt_count[g, 0] += 1
        tr_count[0, t] += 1
        if s.size:
            # Share of each pair's IoU in its row and column: a soft one-to-one count.
            denom = s.sum(0, keepdims=True) + s.sum(1, keepdims=True) - s
            np.add.at(soft, (g[:, None], t[None, :]), np.divide(s, denom, out=np.zeros_like(s), where=denom > EPS))
    if gt_count.sum() == 0 or tr_count.sum() == 0:
        return {"hota": 0.0, "deta": 0.0, "assa": 0.0}
    alignment = soft / np.maximum(gt_count + tr_count - soft, EPS)
    tp = np.zeros(len(ALPHAS))
    fn = np.zeros(len(ALPHAS))
    fp = np.zeros(len(ALPHAS))
    pair_tp = np.zeros((len(ALPHAS), n_gt, n_tr))
    for g, t, s in zip(gts, trs, sims):
        if not len(g) or not len(t):
            fn += len(g)
            fp += len(t)
            continue
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], t[None, :]] * s))
        iou = s[rows, cols]
        for a, alpha in enumerate(ALPHAS):
            ok = iou >= alpha - EPS
            tp[a] += ok.sum()
            fn[a] += len(g) - ok.sum()
            fp[a] += len(t) - ok.sum()
            np.add.at(pair_tp[a], (g[rows[ok]], t[cols[ok]]), 1)
    det_a = tp / np.maximum(1, tp + fn + fp)
    ass_a = np.zeros(len(ALPHAS))
    for a in range(len(ALPHAS)):
        m = pair_tp[a]
        ass_a[a] = (m * m / np.maximum(1, gt_count + tr_count - m)).sum() / max(1.0, tp[a])
    h = np.sqrt(det_a * ass_a)
    return {"hota": float(h.mean()), "deta": float(det_a.mean()), "assa": float(ass_a.mean())}


def evaluate(frames: Sequence[Frame]) -> dict[str, float]:
    """HOTA, IDF1, MOTA, ID switches and fragmentations of one sequence."""
    out: dict[str, float] = {}
    out.update(hota(frames))
    out.update(identity(frames))
    out.update(clear(frames))
    return out
