"""Simulated sensors: an open-set detector and a SAM 2-like mask tracker, both noisy.

Both compared methods see the very same sensors: the detector's output depends only on the
frame (and the seed), never on who asks; the mask tracker follows the same rules for every
object, whoever prompted it.

Detector: misses (more when an object is hidden), false positives, box jitter, label flips,
scores.

Mask tracker (what SAM 2 does, coarsely):
- a prompted box segments the object it mostly covers (or a patch of background);
- the mask then drifts (a slow random walk around the object, stronger under partial occlusion)
  and never covers what is in front of the object;
- when the object is mostly hidden or leaves the image, the mask vanishes (the object is lost),
  or, sometimes, the mask jumps onto the occluder;
- a lost object is re-found by memory with some probability once it is visible again;
- a background patch either stays (SAM 2 happily tracks a wall) or fades after a while.

Example:
    >>> from assocsim.scenarios import build
    >>> case = build("crossing", seed=0)
    >>> det = SimDetector(case.scene, seed=0, noise=case.detector)
    >>> boxes, scores, labels = det.detect(0)
    >>> masks = SimMaskTracker(case.scene, seed=0)
    >>> masks.step(0), masks.box_embeddings(boxes).shape == (len(boxes), DIM)
    ({}, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promptrack.trackers.association import box_iou

from .scene import Scene

DIM = 32  # appearance vector size


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(np.linalg.norm(v), 1e-12)


def _bbox(mask: np.ndarray) -> np.ndarray | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=float)


@dataclass
class DetectorNoise:
    p_detect: float = 0.9  # chance to detect a fully visible object
    min_visibility: float = 0.3  # never detected below this visible share
    jitter: float = 0.05  # box-corner noise, in object sizes
    label_noise: float = 0.1  # chance the label is another prompt's
    fp_rate: float = 0.3  # false positives per keyframe (Poisson mean)
    box_threshold: float = 0.35  # the detector's own score cut (as detector.box_threshold)
    score_drift: float = 0.0  # relative change of every score from the first to the last frame
    # (-0.4: scores end 40 % lower, as at dusk or as the prompt fits the scene less and less)


class SimDetector:
    """Detections on frame ``t``: ``(boxes (N,4), scores (N,), labels)``."""

    def __init__(self, scene: Scene, seed: int = 0, noise: DetectorNoise | None = None) -> None:
        self.scene, self.seed, self.noise = scene, seed, noise or DetectorNoise()
        self.calls = 0

    def detect(self, t: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        self.calls += 1
        n = self.noise
        rng = np.random.default_rng((self.seed, t, 17))  # same answer for whoever asks
        view = self.scene.view(t)
        labels_all = self.scene.labels
        boxes, scores, labels = [], [], []
        for i, actor in enumerate(self.scene.actors):
            draws = rng.random(4)  # drawn for every actor so one miss does not reshuffle the rest
            if not actor.label:
                continue
            v = view.visibility[i]
            p = n.p_detect * np.clip((v - n.min_visibility) / 0.3, 0, 1)
            box = _bbox(view.visible[i])
            if box is None or draws[0] >= p:
                continue
            size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
            box = box + rng.normal(0, n.jitter, 4) * size
            drift = 1.0 + n.score_drift * t / max(self.scene.frames - 1, 1)
            score = float(np.clip(rng.normal(0.72, 0.1) * (0.7 + 0.3 * v) * drift, 0.05, 0.99))
            label = actor.label
            if draws[1] < n.label_noise and len(labels_all) > 1:
                label = [x for x in labels_all if x != actor.label][int(draws[2] * (len(labels_all) - 1))]
            boxes.append(box)
            scores.append(score)
            labels.append(label)
        for _ in range(rng.poisson(n.fp_rate)):
            w, h = rng.uniform(12, 50, 2)
            x, y = rng.uniform(0, self.scene.width - w), rng.uniform(0, self.scene.height - h)
            boxes.append(np.array([x, y, x + w, y + h]))
            scores.append(float(rng.uniform(0.3, 0.6)))
            labels.append(labels_all[rng.integers(len(labels_all))])
        keep = [k for k, s in enumerate(scores) if s >= n.box_threshold]
        return (
            np.array([boxes[k] for k in keep]).reshape(-1, 4),
            np.array([scores[k] for k in keep]),
            [labels[k] for k in keep],
        )


@dataclass
class MaskNoise:
    drift: float = 0.03  # stationary std of the mask centre's error, in object sizes
    drift_rho: float = 0.95  # per-frame persistence of that error (slow wander, not jitter)
    scale: float = 0.03  # stationary std of the log-size error
    prompt_noise: float = 0.02  # the same errors right after a box prompt
    occluded_drift: float = 2.0  # drift multiplier while partly hidden (visible share < 0.7)
    lose_visibility: float = 0.3  # below this visible share the mask vanishes ...
    swap: float = 0.15  # ... or, with this chance, jumps onto the occluder
    refind: float = 0.5  # chance a lost object is re-found by memory ...
    refind_visibility: float = 0.6  # ... once at least this visible ...
    refind_delay: tuple[int, int] = (2, 20)  # ... for this many frames
    blob_persist: float = 0.5  # a background prompt persists (else fades after 5..60 frames)
    app_noise: float = 0.35  # appearance noise of the pooled mask features


@dataclass
class _Object:
    actor: int | None  # scene actor it follows; None: a background patch
    blob: np.ndarray | None  # background patch (cx, cy, w, h)
    blob_until: int
    offset: np.ndarray  # centre error, in object sizes
    log_scale: float
    lost: bool = False
    will_refind: bool = False
    wait: int = 0
    vector: np.ndarray | None = None  # appearance of a background patch


class SimMaskTracker:
    """A SAM 2 stand-in holding objects by id; ``step(t)`` returns id -> boolean mask (may be empty).

    Honours ``add`` / ``reprompt`` / ``remove`` on the current frame like the real engine.
    """

    def __init__(self, scene: Scene, seed: int = 0, noise: MaskNoise | None = None) -> None:
        self.scene, self.noise = scene, noise or MaskNoise()
        self.rng = np.random.default_rng((seed, 29))
        self.app_rng = np.random.default_rng((seed, 31))  # separate: asking for appearance changes nothing else
        self.objects: dict[int, _Object] = {}
        self.t = -1
        self._masks: dict[int, np.ndarray] = {}
        self._boxes_t: int | None = None
        self._boxes: tuple[list[int], np.ndarray] = ([], np.zeros((0, 4)))

    @property
    def ids(self) -> list[int]:
        return list(self.objects)

    # -- prompts -------------------------------------------------------------------------------
    def prompt(self, box: np.ndarray) -> _Object:
        """What a box prompt on the current frame segments (not yet held)."""
        best = self._bind(box)
        n = self.noise
        obj = _Object(best, None, 10**9, self.rng.normal(0, n.prompt_noise, 2), float(self.rng.normal(0, n.prompt_noise)))
        if best is None:
            box = np.asarray(box, float)
            obj.blob = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]])
            if self.rng.random() >= n.blob_persist:
                obj.blob_until = self.t + int(self.rng.integers(5, 60))
            obj.vector = _unit(self.rng.normal(0, 1, DIM))
        return obj

    def _bind(self, box: np.ndarray) -> int | None:
        """The actor a box prompt segments: the one whose visible box it fits best, if any fits."""
        if self._boxes_t != self.t:  # the actors' visible boxes, once per frame (crowds prompt many boxes)
            view = self.scene.view(self.t)
            found = [(i, _bbox(m)) for i, m in enumerate(view.visible)]
            found = [(i, b) for i, b in found if b is not None]
            self._boxes = ([i for i, _ in found], np.array([b for _, b in found]).reshape(-1, 4))
            self._boxes_t = self.t
        actors, vboxes = self._boxes
        if not actors:
            return None
        iou = box_iou(vboxes, box)[:, 0]
        k = int(np.argmax(iou))  # the first of equals, as a scan in actor order
        return actors[k] if iou[k] > 0.35 else None

    def render(self, obj: _Object) -> np.ndarray:
        """The mask of `obj` on the current frame."""
        view = self.scene.view(self.t)
        if obj.lost:
            return np.zeros((self.scene.height, self.scene.width), bool)
        if obj.actor is None:
            cx, cy, w, h = obj.blob
            return self.scene.ellipse(cx + obj.offset[0] * w, cy + obj.offset[1] * h, w, h)
        a = self.scene.actors[obj.actor]
        if not a.present(self.t):
            return np.zeros((self.scene.height, self.scene.width), bool)
        cx, cy = a.centre(self.t)
        s = np.exp(obj.log_scale)
        mask = self.scene.ellipse(cx + obj.offset[0] * a.w, cy + obj.offset[1] * a.h, a.w * s, a.h * s)
        return mask & ~view.front[obj.actor]

    def add(self, ids, boxes) -> None:
        for i, box in zip(ids, np.asarray(boxes, float).reshape(-1, 4)):
            self.objects[int(i)] = self.prompt(box)
            self._masks[int(i)] = self.render(self.objects[int(i)])

    reprompt = add  # a new box replaces the object's state; its id stays

    def adopt(self, ids, objects) -> None:
        """Hold already-prompted objects (see :meth:`prompt`) under `ids`."""
        for i, obj in zip(ids, objects):
            self.objects[int(i)] = obj
            self._masks[int(i)] = self.render(obj)

    def remove(self, ids) -> None:
        for i in ids:
            self.objects.pop(int(i), None)
            self._masks.pop(int(i), None)

    def reset(self) -> None:
        self.objects.clear()
        self._masks.clear()

    def current(self) -> dict[int, np.ndarray]:
        return {i: self._masks[i] for i in self.objects}

    # -- propagation -----------------------------------------------------------------------
    def step(self, t: int) -> dict[int, np.ndarray]:
        self.t = t
        view = self.scene.view(t)
        n = self.noise
        for obj in self.objects.values():
            if obj.actor is None:
                obj.lost = obj.lost or t >= obj.blob_until
                continue
            v = view.visibility[obj.actor]
            if not obj.lost and v < n.lose_visibility:
                occluder = self._occluder(view, obj.actor)
                if occluder is not None and self.rng.random() < n.swap:
                    obj.actor = occluder  # SAM 2 jumped onto what hid its object
                    obj.offset = self.rng.normal(0, n.prompt_noise, 2)
                else:
                    obj.lost = True
                    obj.will_refind = self.rng.random() < n.refind
                    obj.wait = int(self.rng.integers(*n.refind_delay))
            elif obj.lost and obj.will_refind and v >= n.refind_visibility:
                obj.wait -= 1
                if obj.wait <= 0:
                    obj.lost = False
                    obj.offset = self.rng.normal(0, n.prompt_noise, 2)
            v = view.visibility[obj.actor]
            k = n.occluded_drift if v < 0.7 else 1.0
            shake = np.sqrt(1 - n.drift_rho**2)
            obj.offset = n.drift_rho * obj.offset + self.rng.normal(0, n.drift * shake * k, 2)
            obj.log_scale = n.drift_rho * obj.log_scale + float(self.rng.normal(0, n.scale * shake * k))
        self._masks = {i: self.render(o) for i, o in self.objects.items()}
        return dict(self._masks)

    def _occluder(self, view, i: int) -> int | None:
        overlaps = [
            (float((view.full[j] & view.full[i]).sum()), j)
            for j, b in enumerate(self.scene.actors)
            if j != i and b.depth > self.scene.actors[i].depth
        ]
        best = max(overlaps, default=(0.0, None))
        return best[1] if best[0] > 0.3 * max(view.full[i].sum(), 1) else None

    def track_embeddings(self) -> dict[int, np.ndarray]:
        """Appearance pooled under each visible mask (L2-normalised), as the SAM 2 engine gives."""
        out = {}
        for i, obj in self.objects.items():
            if self._masks.get(i) is None or not self._masks[i].any():
                continue
            base = obj.vector if obj.actor is None else self.scene.actors[obj.actor].appearance
            out[i] = _unit(base + self.app_rng.normal(0, self.noise.app_noise / np.sqrt(DIM), DIM))
        return out

    def box_embeddings(self, boxes: np.ndarray) -> np.ndarray:
        """Appearance pooled inside each box (N, DIM): the object the box holds, else background."""
        out = []
        for box in np.asarray(boxes, float).reshape(-1, 4):
            actor = self._bind(box)
            base = _unit(self.app_rng.normal(0, 1, DIM)) if actor is None else self.scene.actors[actor].appearance
            out.append(_unit(base + self.app_rng.normal(0, self.noise.app_noise / np.sqrt(DIM), DIM)))
        return np.array(out).reshape(-1, DIM)
