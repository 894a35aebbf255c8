"""Scripted scenes (each one failure mode of association) and random ones.

Every scenario is 320x240 pixels, 300 frames (except ``crowd30``, 480x360, and ``long_5000``,
5000 frames), and comes with its sensor noise. The scripted ones isolate one difficulty;
``random_<seed>`` scenes mix them with random paths, sizes, occluders and noise levels; the
harder ones (``HARD``) add long occlusions, a crowd of 30, a panning camera, exits and re-entries
at the opposite side, detector scores drifting down, and a long run.

Example:
    >>> case = build("reentry", seed=0)
    >>> case.scene.frames, len([a for a in case.scene.actors if a.label])
    (300, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .scene import Actor, Scene
from .sensors import DIM, DetectorNoise, MaskNoise, _unit

W, H, T = 320, 240, 300


@dataclass
class Case:
    scene: Scene
    detector: DetectorNoise = field(default_factory=DetectorNoise)
    masks: MaskNoise = field(default_factory=MaskNoise)
    note: str = ""


def _dress(actors: list[Actor], seed: int, lookalike: bool = False) -> list[Actor]:
    """Give every actor an appearance: same-class objects resemble each other (cosine ~0.55)."""
    rng = np.random.default_rng((seed, 7))
    classes: dict[str | None, np.ndarray] = {}
    for a in actors:
        base = classes.setdefault(a.label, _unit(rng.normal(0, 1, DIM)))
        spread = 0.15 if (lookalike and a.label) else 0.9
        a.appearance = _unit(base + spread * _unit(rng.normal(0, 1, DIM)))
    return actors


def crossing(seed: int) -> Case:
    actors = [
        Actor(0, "person", 34, 80, [(0, 30, 120), (150, 290, 125), (299, 40, 118)], depth=2, wobble=2),
        Actor(1, "person", 32, 76, [(0, 290, 128), (150, 30, 122), (299, 280, 126)], depth=1, wobble=2),
        Actor(2, "car", 70, 40, [(40, -40, 190), (260, 360, 185)], depth=3),
    ]
    return Case(Scene(W, H, T, _dress(actors, seed), "crossing"),
                note="two people cross twice; a car passes in front of both")


def pillar(seed: int) -> Case:
    actors = [
        Actor(-1, None, 46, 400, [(0, 160, 120), (299, 160, 120)], depth=10),
        Actor(0, "person", 30, 70, [(0, 20, 110), (120, 300, 110), (299, 40, 115)], depth=1, wobble=2),
        Actor(1, "person", 28, 66, [(30, 300, 150), (200, 20, 140)], depth=2, wobble=2),
        Actor(2, "dog", 36, 24, [(60, 10, 200), (260, 310, 200)], depth=3),
    ]
    return Case(Scene(W, H, T, _dress(actors, seed), "pillar"),
                note="three objects pass behind a pillar (scenery, not prompted), hidden ~20 frames")


def reentry(seed: int) -> Case:
    actors = [
        Actor(0, "person", 30, 70, [(0, 200, 110), (60, 360, 110), (130, 360, 112), (200, 220, 115), (299, 250, 110)],
              depth=1, wobble=2),
        Actor(1, "car", 60, 36, [(0, 120, 190), (80, -50, 190), (130, -50, 185), (200, 110, 185), (299, 130, 186)],
              depth=2),
        Actor(2, "person", 28, 66, [(0, 60, 60), (299, 280, 70)], depth=0, wobble=2),
    ]
    return Case(Scene(W, H, T, _dress(actors, seed), "reentry"),
                note="a person leaves right and returns ~70 frames later; a car leaves left for ~80 frames")


def _wander(rng: np.random.Generator, n: int, labels: list[str], sizes: tuple[float, float],
            legs: tuple[int, int] = (3, 6), margin: float = 0.0, span: tuple[int, int] = (0, T - 1),
            width: float = W, height: float = H) -> list[Actor]:
    actors = []
    for k in range(n):
        label = labels[k % len(labels)]
        s = rng.uniform(*sizes)
        w, h = (s * 0.45, s) if label == "person" else (s, s * 0.6)
        first, last = span
        times = np.sort(rng.choice(np.arange(first + 1, last), rng.integers(*legs) - 2, replace=False))
        times = [first, *times.tolist(), last]
        pts = [(t, rng.uniform(-margin, width + margin), rng.uniform(30 - margin / 2, height - 30 + margin / 2))
               for t in times]
        actors.append(Actor(k, label, w, h, pts, depth=float(k), wobble=2 if label == "person" else 0))
    return actors


def crowd(seed: int) -> Case:
    rng = np.random.default_rng((seed, 101))
    actors = _wander(rng, 6, ["person", "person", "car"], (40, 80))
    return Case(Scene(W, H, T, _dress(actors, seed), "crowd"), note="six objects wander; many crossings")


def sam2_jumps(seed: int) -> Case:
    case = crossing(seed)
    rng = np.random.default_rng((seed, 103))
    extra = _wander(rng, 3, ["person"], (50, 80))
    for k, a in enumerate(extra):
        a.gt_id, a.depth = 10 + k, 5.0 + k
    case.scene = Scene(W, H, T, _dress(case.scene.actors + extra, seed), "sam2_jumps")
    case.masks = MaskNoise(swap=0.6, refind=0.6)
    case.note = "crossings where the mask often jumps onto the occluder (duplicates to merge)"
    return case


def flaky_detector(seed: int) -> Case:
    rng = np.random.default_rng((seed, 107))
    actors = _wander(rng, 4, ["person", "car", "dog"], (40, 70))
    return Case(Scene(W, H, T, _dress(actors, seed), "flaky_detector"),
                DetectorNoise(p_detect=0.65, label_noise=0.25, fp_rate=1.0, jitter=0.08),
                note="detector misses a third, flips a quarter of labels, ~1 false positive per keyframe")


def lookalikes(seed: int) -> Case:
    rng = np.random.default_rng((seed, 109))
    actors = _wander(rng, 4, ["person"], (55, 85))
    return Case(Scene(W, H, T, _dress(actors, seed, lookalike=True), "lookalikes"),
                note="four people who look alike (appearance cosine ~0.98): position must decide")


def small_fast(seed: int) -> Case:
    rng = np.random.default_rng((seed, 113))
    actors = _wander(rng, 5, ["bird", "ball"], (14, 24), legs=(6, 10))
    return Case(Scene(W, H, T, _dress(actors, seed), "small_fast"), masks=MaskNoise(drift=0.05, scale=0.04),
                note="five small objects changing direction often; stronger mask drift")


def random_scene(seed: int) -> Case:
    rng = np.random.default_rng((seed, 997))
    n = int(rng.integers(3, 8))
    actors = _wander(rng, n, ["person", "car", "dog"][: int(rng.integers(1, 4))], (25, 80), margin=60)
    for k in range(int(rng.integers(0, 3))):
        x, y, w, h = rng.uniform(40, W - 40), rng.uniform(40, H - 40), rng.uniform(30, 70), rng.uniform(60, 200)
        actors.append(Actor(-1 - k, None, w, h, [(0, x, y), (T - 1, x, y)], depth=100.0 + k))
    detector = DetectorNoise(p_detect=rng.uniform(0.7, 0.95), label_noise=rng.uniform(0.0, 0.2),
                             fp_rate=rng.uniform(0.0, 0.8), jitter=rng.uniform(0.03, 0.08))
    masks = MaskNoise(drift=rng.uniform(0.02, 0.05), swap=rng.uniform(0.0, 0.3), refind=rng.uniform(0.3, 0.7))
    return Case(Scene(W, H, T, _dress(actors, seed), f"random_{seed}"), detector, masks,
                note="random paths (some leave the image), sizes, scenery occluders and noise levels")


# -- harder scenes --------------------------------------------------------------------------------
def long_occlusion(seed: int) -> Case:
    actors = [
        Actor(-1, None, 90, 150, [(0, 160, 130), (T - 1, 160, 130)], depth=10),  # a parked van
        # walks behind the van, waits there ~120 frames, comes out on the far side
        Actor(0, "person", 30, 70, [(0, 20, 120), (50, 160, 125), (175, 160, 125), (230, 300, 120), (T - 1, 290, 118)],
              depth=1, wobble=2),
        # stands behind another person for ~110 frames
        Actor(1, "person", 28, 66, [(0, 280, 60), (60, 250, 60), (170, 252, 62), (T - 1, 300, 70)], depth=1, wobble=1),
        Actor(2, "person", 40, 90, [(0, 40, 60), (60, 250, 62), (170, 252, 64), (T - 1, 60, 80)], depth=3, wobble=1),
        Actor(3, "car", 60, 36, [(0, 40, 215), (T - 1, 280, 212)], depth=4),
    ]
    return Case(Scene(W, H, T, _dress(actors, seed), "long_occlusion"),
                note="one person hidden behind a van for ~120 frames, another behind a person for ~110")


def crowd30(seed: int) -> Case:
    rng = np.random.default_rng((seed, 127))
    width, height = 480, 360
    actors = []
    for k in range(30):
        s = rng.uniform(40, 60)
        y0 = 40 + (k % 15) * 19 + rng.uniform(-4, 4)
        y1 = y0 + rng.uniform(-30, 30)
        start = int(rng.integers(0, 60))
        end = int(rng.integers(T - 60, T))
        left, right = -20.0, width + 20.0
        x0, x1 = (left, right) if k < 15 else (right, left)  # two groups walk towards each other
        actors.append(Actor(k, "person", s * 0.42, s, [(start, x0, y0), (end, x1, y1)], depth=float(k % 15) + y0 / 100,
                            wobble=2))
    return Case(Scene(width, height, T, _dress(actors, seed), "crowd30"),
                note="30 people (480x360) in two groups walking through each other")


def _panned(actors: list[Actor], pan, frames: int = T, step: int = 5) -> list[Actor]:
    """The same actors seen by a camera that pans: every position shifts by ``-pan(t)``."""
    for a in actors:
        first, last = int(a.waypoints[0][0]), int(a.waypoints[-1][0])
        times = sorted({*range(first, last + 1, step), last})
        pts = []
        for t in times:
            cx, cy = Actor(a.gt_id, a.label, a.w, a.h, a.waypoints).centre(t)  # without the sway
            dx, dy = pan(t)
            pts.append((t, cx - dx, cy - dy))
        a.waypoints = pts
    return actors


def camera_pan(seed: int) -> Case:
    rng = np.random.default_rng((seed, 131))
    world = 640  # the walk spans twice the image: the camera pans right, then back
    actors = _wander(rng, 6, ["person", "person", "car"], (40, 75), width=world)
    for k in range(2):
        x = rng.uniform(100, world - 100)
        actors.append(Actor(-1 - k, None, 50, 180, [(0, x, 120), (T - 1, x, 120)], depth=100.0 + k))

    def pan(t):  # 0 -> 320 px right by frame 150, back by frame 299 (about 2 px / frame)
        return (320 * (1 - abs(t - 150) / 150), 10 * np.sin(t / 25))

    return Case(Scene(W, H, T, _dress(_panned(actors, pan), seed), "camera_pan"),
                note="the camera pans 320 px right and back: everything moves together, objects leave and return")


def other_side(seed: int) -> Case:
    actors = [
        Actor(0, "person", 30, 70, [(0, 200, 110), (50, 360, 112), (110, 360, 112), (110, -40, 120), (170, 120, 118),
                                    (T - 1, 160, 115)], depth=1, wobble=2),
        Actor(1, "car", 60, 36, [(0, 100, 195), (60, -50, 195), (120, -50, 195), (120, 370, 190), (200, 200, 190),
                                 (T - 1, 240, 188)], depth=2),
        Actor(2, "dog", 36, 24, [(30, 60, 40), (90, 160, -30), (150, 160, -30), (150, 150, 270), (230, 150, 150),
                                 (T - 1, 130, 150)], depth=3),
        Actor(3, "person", 28, 66, [(0, 280, 60), (T - 1, 40, 70)], depth=0, wobble=2),
    ]
    return Case(Scene(W, H, T, _dress(actors, seed), "other_side"),
                note="three objects leave at one side and come back ~60 frames later at the opposite side")


def score_drift(seed: int) -> Case:
    rng = np.random.default_rng((seed, 137))
    actors = _wander(rng, 5, ["person", "car"], (40, 70))
    return Case(Scene(W, H, T, _dress(actors, seed), "score_drift"), DetectorNoise(score_drift=-0.45),
                note="detector scores fall by 45 % over the clip (dusk): late detections sit near the thresholds")


LONG = 5000


def long_run(seed: int) -> Case:
    rng = np.random.default_rng((seed, 139))
    actors: list[Actor] = []
    for k in range(36):  # objects come and go (about seven at a time), some leave and come back
        start = int(rng.integers(0, LONG - 300)) if k >= 4 else 0  # four from the start
        life = int(rng.integers(300, 1500))
        span = (start, min(start + life, LONG - 1))
        [a] = _wander(rng, 1, [["person", "car", "dog"][k % 3]], (30, 70), legs=(4, 9), margin=50, span=span)
        a.gt_id, a.depth = k, float(k % 7)
        actors.append(a)
    actors.append(Actor(-1, None, 50, 160, [(0, 200, 120), (LONG - 1, 200, 120)], depth=100.0))
    return Case(Scene(W, H, LONG, _dress(actors, seed), "long_5000"),
                DetectorNoise(p_detect=0.85, fp_rate=0.4),
                note="5000 frames, 36 objects over time (about seven at once), a pillar: ids and memory over time")


def control_easy(seed: int) -> Case:
    actors = [
        Actor(0, "person", 36, 80, [(0, 40, 80), (299, 100, 90)], depth=0),
        Actor(1, "car", 70, 40, [(0, 160, 190), (299, 260, 185)], depth=1),
        Actor(2, "dog", 40, 26, [(0, 280, 60), (299, 230, 70)], depth=2),
    ]
    return Case(Scene(W, H, T, _dress(actors, seed), "control_easy"),
                DetectorNoise(p_detect=0.98, label_noise=0.0, fp_rate=0.0, jitter=0.02),
                MaskNoise(drift=0.015, scale=0.015),
                note="control: no occlusion, slow, clean detector: both methods should do well")


SCRIPTED: dict[str, Callable[[int], Case]] = {
    "crossing": crossing,
    "pillar": pillar,
    "reentry": reentry,
    "crowd": crowd,
    "sam2_jumps": sam2_jumps,
    "flaky_detector": flaky_detector,
    "lookalikes": lookalikes,
    "small_fast": small_fast,
}
HARD: dict[str, Callable[[int], Case]] = {
    "long_occlusion": long_occlusion,
    "crowd30": crowd30,
    "camera_pan": camera_pan,
    "other_side": other_side,
    "score_drift": score_drift,
    "long_5000": long_run,
}
CONTROLS: dict[str, Callable[[int], Case]] = {"control_easy": control_easy}


def names(seeds: int = 5, controls: bool = False, hard: bool = True) -> list[str]:
    """Scenario names: the scripted ones, ``random_0 .. random_<seeds-1>``, the harder ones, controls."""
    return [*SCRIPTED, *(f"random_{s}" for s in range(seeds)), *(HARD if hard else []), *(CONTROLS if controls else [])]


def build(name: str, seed: int = 0) -> Case:
    """The scenario called `name` (``random_<k>`` is random scene k; `seed` is ignored there)."""
    if name.startswith("random_"):
        return random_scene(int(name.split("_", 1)[1]))
    table = {**SCRIPTED, **HARD, **CONTROLS}
    if name not in table:
        raise KeyError(f"unknown scenario {name!r}: one of {', '.join(names(controls=True))}")
    return table[name](seed)
