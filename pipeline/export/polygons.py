"""A mask as ONE polygon, for formats that hold one polygon per object (YOLO-seg, CVAT video).

OpenCV traces every outline of the mask, outer ones and holes (``RETR_CCOMP``), and the loops
are joined into one polygon by zero-width seams: from a vertex of one loop to the nearest vertex
of the next, once round that loop, and back. A seam covers no area, so filling the polygon
(``cv2.fillPoly``, ``sv.polygon_to_mask``: even-odd; SVG/CVAT: non-zero, holes wind the other
way) gives back the mask, a mask in several pieces stays one object, and a hole stays a hole.

Why not supervision's ``approximate_mask_with_polygons(bridge_holes=True)``: it returns one
polygon per piece (``as_yolo`` then writes one line per piece: one object becomes several), and
its search for seams inside the mask takes about a second per ragged mask.

Example:
    >>> import numpy as np
    >>> m = np.zeros((20, 30), bool); m[2:8, 2:8] = True; m[12:18, 20:28] = True
    >>> import supervision as sv
    >>> back = sv.polygon_to_mask(mask_to_polygon(m).astype(int), (30, 20)).astype(bool)
    >>> int((back & m).sum()), int(m.sum())
    (84, 84)
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np
from scipy.spatial import cKDTree


def _loops(mask: np.ndarray) -> list[np.ndarray]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    loops = [c[:, 0, :].astype(np.float64) for c in contours]
    loops.sort(key=lambda c: -abs(cv2.contourArea(c.astype(np.float32))) if len(c) >= 3 else 0.0)
    return loops


def _seams(loops: list[np.ndarray]) -> list[dict[int, list[tuple[int, int]]]]:
    """For each loop, vertex -> [(child loop, its vertex)]: every loop after the first hangs on
    the nearest earlier loop (by centre) at their closest pair of vertices (a tree of seams)."""
    attached: list[dict[int, list[tuple[int, int]]]] = [{} for _ in loops]
    centres = np.array([loop.mean(axis=0) for loop in loops])
    trees: dict[int, cKDTree] = {}
    for k in range(1, len(loops)):
        parent = int(((centres[:k] - centres[k]) ** 2).sum(axis=1).argmin())
        if parent not in trees:  # unbalanced, uncompacted: 40x faster to build on staircase outlines
            trees[parent] = cKDTree(loops[parent], balanced_tree=False, compact_nodes=False)
        tree = trees[parent]
        distance, nearest = tree.query(loops[k])
        child_vertex = int(np.argmin(distance))
        attached[parent].setdefault(int(nearest[child_vertex]), []).append((k, child_vertex))
    return attached


def _walk(loop: int, start: int, size: int, attached: dict[int, list[tuple[int, int]]]) -> Iterator[tuple]:
    """One loop's vertex indices from ``start`` round to ``start``, in runs; at a seam vertex the child
    loop is entered, and the walk comes back to that vertex before going on."""
    order = (start + np.arange(size + 1)) % size
    stops = sorted(((v - start) % size, v) for v in attached)
    done = 0
    for position, vertex in stops:
        yield ("run", loop, order[done: position + 1])
        for child, child_vertex in attached[vertex]:
            yield ("enter", child, child_vertex)
            yield ("run", loop, order[position: position + 1])
        done = position + 1
    yield ("run", loop, order[done:])


def mask_to_polygon(mask: np.ndarray) -> np.ndarray | None:
    """The (N, 2) polygon in pixels covering every piece of ``mask`` (holes kept); None when empty."""
    loops = _loops(mask)
    if not loops:
        return None
    attached = _seams(loops)
    points = []
    walks = [_walk(0, 0, len(loops[0]), attached[0])]  # a stack, not recursion: masks may have 1000s of loops
    while walks:
        step = next(walks[-1], None)
        if step is None:
            walks.pop()
        elif step[0] == "run":
            points.append(loops[step[1]][step[2]])
        else:
            _, child, child_vertex = step
            walks.append(_walk(child, child_vertex, len(loops[child]), attached[child]))
    return np.concatenate(points)
