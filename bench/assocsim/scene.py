"""Ground truth of a simulated scene: actors that move, cross, occlude each other, leave, re-enter.

An actor is an ellipse following a piecewise-linear path through timed waypoints (positions may
lie outside the image: that is how actors leave and re-enter). Depth decides who hides whom.
Actors with a label are prompted objects (ground truth); actors without one are scenery that
only occludes (a pillar, a passing bus).

Example:
    >>> scene = Scene(64, 48, 10, [Actor(0, "car", 16, 12, [(0, 10, 24), (9, 54, 24)])])
    >>> view = scene.view(0)
    >>> bool(view.visible[0].any()), round(float(view.visibility[0]), 1)
    (True, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class Actor:
    gt_id: int  # ground-truth identity (>= 0), or -1 for scenery
    label: str | None  # prompted class; None: scenery, never detected, never in the ground truth
    w: float  # ellipse width / height in pixels
    h: float
    waypoints: Sequence[tuple[float, float, float]]  # (frame, cx, cy), frames ascending
    depth: float = 0.0  # larger is nearer the camera (in front)
    wobble: float = 0.0  # sideways sinusoidal sway, pixels (walking gait)
    appearance: np.ndarray | None = None  # identity vector (unit), set by the scenario

    def centre(self, t: int) -> np.ndarray:
        f = np.array([w[0] for w in self.waypoints], dtype=float)
        x = np.interp(t, f, [w[1] for w in self.waypoints])
        y = np.interp(t, f, [w[2] for w in self.waypoints])
        if self.wobble:
            y += self.wobble * np.sin(t / 5.0 + self.gt_id)
        return np.array([x, y])

    def present(self, t: int) -> bool:
        return self.waypoints[0][0] <= t <= self.waypoints[-1][0]


@dataclass
class View:
    """Everything true about one frame."""

    t: int
    full: list[np.ndarray]  # per actor: amodal mask (in-image part), all-False when absent
    visible: list[np.ndarray]  # per actor: what the camera sees
    visibility: np.ndarray  # per actor: visible pixels / amodal (whole-ellipse) area
    front: list[np.ndarray]  # per actor: union of the actors in front of it


@dataclass
class Scene:
    width: int
    height: int
    frames: int
    actors: list[Actor]
    name: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def ellipse(self, cx: float, cy: float, w: float, h: float) -> np.ndarray:
        """Boolean mask of an axis-aligned ellipse, clipped to the image."""
        out = np.zeros((self.height, self.width), bool)
        a, b = max(w / 2, 0.5), max(h / 2, 0.5)
        x0, x1 = max(int(cx - a), 0), min(int(cx + a) + 1, self.width)
        y0, y1 = max(int(cy - b), 0), min(int(cy + b) + 1, self.height)
        if x1 <= x0 or y1 <= y0:
            return out
        xs = (np.arange(x0, x1) + 0.5 - cx) / a  # only the ellipse's bounding box is computed
        ys = (np.arange(y0, y1) + 0.5 - cy) / b
        out[y0:y1, x0:x1] = ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0
        return out

    def view(self, t: int) -> View:
        if t in self._cache:
            return self._cache[t]
        empty = np.zeros((self.height, self.width), bool)
        full = []
        for a in self.actors:
            if a.present(t):
                cx, cy = a.centre(t)
                full.append(self.ellipse(cx, cy, a.w, a.h))
            else:
                full.append(empty)
        n = len(self.actors)
        front: list[np.ndarray] = [empty] * n
        cover, depth = empty.copy(), None
        layer = empty.copy()  # actors at the current depth: equal depths do not hide each other
        for i in sorted(range(n), key=lambda k: -self.actors[k].depth):  # nearest first
            if self.actors[i].depth != depth:
                cover |= layer
                layer, depth = empty.copy(), self.actors[i].depth
            front[i] = cover.copy()
            layer |= full[i]
        visible = [full[i] & ~front[i] for i in range(n)]
        visibility = [np.count_nonzero(visible[i]) / (np.pi * a.w * a.h / 4) for i, a in enumerate(self.actors)]
        view = View(t, full, visible, np.clip(np.array(visibility), 0, 1), front)
        self._cache = {t: view}  # frames are visited in order: keep one
        return view

    @property
    def labels(self) -> list[str]:
        return sorted({a.label for a in self.actors if a.label})

    def ground_truth(self, t: int, min_visibility: float = 0.1) -> dict[int, np.ndarray]:
        """gt id -> visible mask, for prompted actors at least `min_visibility` visible."""
        view = self.view(t)
        return {
            a.gt_id: view.visible[i]
            for i, a in enumerate(self.actors)
            if a.label and view.visibility[i] >= min_visibility
        }
