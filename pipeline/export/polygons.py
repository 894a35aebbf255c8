"""Masks as polygons, for formats that hold polygons (COCO polygons, YOLO-seg, CVAT video).

Two outlines, for the two ways readers turn a polygon back into pixels:

- ``outline="edges"`` runs along the pixels' edges (``[3, 7]`` for pixels 3 to 6): the mask's exact
  outline in continuous coordinates, whose extent is the mask's box (pycocotools ``toBbox``).
  pycocotools (``frPyObjects``: COCO readers, Detectron2, MMDetection, datumaro) and CVAT take a
  pixel in when its centre is inside, so it gives back the mask exactly.
- ``outline="centres"`` runs through the centres of the mask's boundary pixels (OpenCV's
  ``findContours``), for rasterisers that draw the outline itself (``cv2.fillPoly``: Ultralytics,
  supervision), which give back the mask exactly from it.

One polygon holds many loops (pieces and holes) by zero-width seams: from a point of one loop to
the nearest point of the next, once round that loop, and back. A seam covers no area, so centre-
inside rasterisers ignore it and a hole stays a hole (even-odd and non-zero: holes wind the other
way). Rasterisers that draw edges draw a seam too, as a line across the gap it spans: seams are
the shortest gaps between the pieces (holes hang on their own piece, across mask pixels), so
``cv2.fillPoly`` adds only the pixels of those gaps.

Why not supervision's ``approximate_mask_with_polygons(bridge_holes=True)``: it returns one
polygon per piece (``as_yolo`` then writes one line per piece: one object becomes several), and
its search for seams inside the mask takes about a second per ragged mask.

Example:
    >>> import numpy as np
    >>> m = np.zeros((20, 30), bool); m[2:8, 2:8] = True; m[12:18, 20:28] = True
    >>> outline = mask_to_polygon(m, outline="edges")
    >>> outline.min(axis=0).tolist(), outline.max(axis=0).tolist()   # the mask's extent
    ([2.0, 2.0], [28.0, 18.0])
    >>> len(mask_to_polygons(m))   # one polygon per piece (COCO)
    2
"""

from __future__ import annotations

from typing import Iterator, Literal

import cv2
import numpy as np
from scipy.spatial import cKDTree

Outline = Literal["edges", "centres"]
CANDIDATES = 4  # earlier pieces (nearest by centre) a piece may hang on: the seam takes the shortest gap


def _trace(mask: np.ndarray, outline: Outline) -> tuple[list[np.ndarray], list[int]]:
    """Every loop (pieces and holes, each as all its boundary points) and, for each, the piece
    it belongs to: itself for a piece, its enclosing piece for a hole."""
    mask = mask.astype(np.uint8)
    if outline == "edges":
        # On a grid twice as fine, pixel centres at odd, edges and corners at even coordinates: the
        # cells next to a mask pixel (its edges and corners) are traced, halved back to pixels.
        height, width = mask.shape
        grid = np.zeros((2 * height + 1, 2 * width + 1), np.uint8)
        grid[1::2, 1::2] = mask
        grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
        contours, hierarchy = cv2.findContours(grid, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        scale = 0.5
    else:
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        scale = 1.0
    if not contours:
        return [], []
    loops = [c[:, 0, :].astype(np.float64) * scale for c in contours]
    parent = hierarchy[0][:, 3]  # RETR_CCOMP: outer loops have no parent, holes their outer loop
    owners = [int(p) if p >= 0 else k for k, p in enumerate(parent)]
    return loops, owners


def _compress(loop: np.ndarray, keep: set[int]) -> tuple[np.ndarray, dict[int, int]]:
    """The loop without points in the middle of straight runs (as CHAIN_APPROX_SIMPLE), keeping the
    points in ``keep``; returns it and the new index of each kept point."""
    if len(loop) < 3:
        return loop, {i: i for i in range(len(loop))}
    before = loop - np.roll(loop, 1, axis=0)
    after = np.roll(loop, -1, axis=0) - loop
    corner = (before != after).any(axis=1)
    corner[list(keep)] = True
    corner[0] = True
    new_index = np.cumsum(corner) - 1
    return loop[corner], {i: int(new_index[i]) for i in keep}


def _seams(loops: list[np.ndarray], order: list[int], owners: list[int]) -> list[tuple[int, int, int, int]]:
    """(parent loop, its point, child loop, its point) for every loop of ``order`` after the first:
    a hole hangs on its piece, a piece on the nearest earlier piece (shortest gap among the
    nearest few by centre)."""
    centres = np.array([loops[k].mean(axis=0) for k in order])
    trees: dict[int, cKDTree] = {}
    pieces: list[int] = []  # positions in order
    seams = []
    for position, k in enumerate(order):
        if owners[k] != k and owners[k] in order:
            candidates = [owners[k]]
        else:
            if pieces:
                distance = ((centres[pieces] - centres[position]) ** 2).sum(axis=1)
                candidates = [order[pieces[i]] for i in np.argsort(distance)[:CANDIDATES]]
            else:
                candidates = []
            pieces.append(position)
        best = None
        for parent in candidates:
            if parent not in trees:  # unbalanced, uncompacted: 40x faster to build on staircase outlines
                trees[parent] = cKDTree(loops[parent], balanced_tree=False, compact_nodes=False)
            gap, nearest = trees[parent].query(loops[k])
            child_point = int(np.argmin(gap))
            if best is None or gap[child_point] < best[0]:
                best = (float(gap[child_point]), parent, int(nearest[child_point]), child_point)
        if best is not None:
            seams.append(best[1:3] + (k, best[3]))
    return seams


def _walk(loop: int, start: int, size: int, attached: dict[int, list[tuple[int, int]]]) -> Iterator[tuple]:
    """One loop's point indices from ``start`` round to ``start``, in runs; at a seam point the child
    loop is entered, and the walk comes back to that point before going on."""
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


def _join(loops: list[np.ndarray], order: list[int], owners: list[int]) -> np.ndarray:
    """The loops of ``order`` (the first is the root) as one polygon, joined by seams."""
    seams = _seams(loops, order, owners)
    ends: dict[int, set[int]] = {k: set() for k in order}
    for parent, parent_point, child, child_point in seams:
        ends[parent].add(parent_point)
        ends[child].add(child_point)
    compact, index = {}, {}
    for k in order:
        compact[k], index[k] = _compress(loops[k], ends[k])
    attached: dict[int, dict[int, list[tuple[int, int]]]] = {k: {} for k in order}
    for parent, parent_point, child, child_point in seams:
        attached[parent].setdefault(index[parent][parent_point], []).append((child, index[child][child_point]))
    root = order[0]
    points = []
    walks = [_walk(root, 0, len(compact[root]), attached[root])]  # a stack: masks may have 1000s of loops
    while walks:
        step = next(walks[-1], None)
        if step is None:
            walks.pop()
        elif step[0] == "run":
            points.append(compact[step[1]][step[2]])
        else:
            _, child, child_point = step
            walks.append(_walk(child, child_point, len(compact[child]), attached[child]))
    return np.concatenate(points)


def _by_area(loops: list[np.ndarray], keys: list[int]) -> list[int]:
    def area(k: int) -> float:
        return abs(cv2.contourArea(loops[k].astype(np.float32))) if len(loops[k]) >= 3 else 0.0
    return sorted(keys, key=lambda k: -area(k))


def mask_to_polygon(mask: np.ndarray, outline: Outline = "centres") -> np.ndarray | None:
    """The (N, 2) polygon in pixels covering every piece of ``mask`` (holes kept); None when empty."""
    loops, owners = _trace(mask, outline)
    if not loops:
        return None
    pieces = _by_area(loops, [k for k in range(len(loops)) if owners[k] == k])
    holes = [k for k in range(len(loops)) if owners[k] != k]
    return _join(loops, pieces + holes, owners)


def mask_to_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """One edge-outline polygon per piece of ``mask``, its holes joined to it by seams (COCO's
    polygons: a reader takes their union, so a hole must be inside its piece's polygon)."""
    loops, owners = _trace(mask, "edges")
    polygons = []
    for piece in _by_area(loops, [k for k in range(len(loops)) if owners[k] == k]):
        polygons.append(_join(loops, [piece] + [k for k in range(len(loops)) if owners[k] == piece and k != piece],
                              owners))
    return polygons
