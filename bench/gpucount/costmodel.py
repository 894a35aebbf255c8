"""An explicit GPU cost model: t = launches * c + FLOPs / P + bytes moved / BW.

``c`` (seconds of CPU time per eager kernel launch) and ``P`` (effective FLOP/s) are fitted by
least squares on measured frame times; ``BW`` (host <-> device bytes/s) is a stated constant, not
fitted (the anchors move few bytes). With a CUDA graph the launches are replayed by the GPU:
``c`` drops to ~1-2 us.

Example:
    >>> model = CostModel.fit([(1000, 1e12, 0, 0.02), (2000, 2e12, 0, 0.04)], bandwidth=25e9)
    >>> round(model.seconds(1500, 1.5e12, 0), 3)
    0.03
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRAPH_LAUNCH_S = (1e-6, 2e-6)  # a launch replayed from a CUDA graph


@dataclass
class CostModel:
    launch_s: float  # c
    flops_per_s: float  # P
    bandwidth: float  # BW, bytes/s
    residuals: list[float]  # measured - modelled seconds, per anchor

    @classmethod
    def fit(cls, anchors: list[tuple[float, float, float, float]], bandwidth: float) -> "CostModel":
        """Fit c and 1/P on (launches, flops, bytes, measured seconds) anchors (non-negative)."""
        a = np.array([[launches, flops] for launches, flops, _, _ in anchors], dtype=float)
        t = np.array([seconds - moved / bandwidth for _, _, moved, seconds in anchors], dtype=float)
        solution, *_ = np.linalg.lstsq(a, t, rcond=None)
        if (solution < 0).any():  # one term alone explains the anchors best
            fits = []
            for column in (0, 1):
                x = max(float(a[:, column] @ t / (a[:, column] @ a[:, column])), 0.0)
                fits.append((float(np.sum((a[:, column] * x - t) ** 2)), column, x))
            _, column, x = min(fits)
            solution = np.zeros(2)
            solution[column] = x
        c, inv_p = (float(v) for v in solution)
        model = cls(c, 1.0 / inv_p if inv_p > 0 else float("inf"), bandwidth, [])
        model.residuals = [seconds - model.seconds(launches, flops, moved)
                           for launches, flops, moved, seconds in anchors]
        return model

    def seconds(self, launches: float, flops: float, moved: float, launch_s: float | None = None) -> float:
        c = self.launch_s if launch_s is None else launch_s
        return launches * c + flops / self.flops_per_s + moved / self.bandwidth
