"""Scripted scenes (each one failure mode of association) and random ones.

Every scenario is 320x240 pixels, 300 frames, and comes with its sensor noise. The scripted ones
isolate one difficulty; ``random_<seed>`` scenes mix them with random paths, sizes, occluders
and noise levels.

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
            legs: tuple[int, int] = (3, 6), margin: float = 0.0) -> list[Actor]:
    actors = []
    for k in range(n):
        label = labels[k % len(labels)]
        s = rng.uniform(*sizes)
        w, h = (s * 0.45, s) if label == "person" else (s, s * 0.6)
        times = np.sort(rng.choice(np.arange(1, T - 1), rng.integers(*legs) - 2, replace=False))
        times = [0, *times.tolist(), T - 1]
        pts = [(t, rng.uniform(-margin, W + margin), rng.uniform(30 - margin / 2, H - 30 + margin / 2)) for t in times]
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
CONTROLS: dict[str, Callable[[int], Case]] = {"control_easy": control_easy}


def names(seeds: int = 5, controls: bool = False) -> list[str]:
    """Scenario names: the scripted ones, then ``random_0 .. random_<seeds-1>`` (then controls)."""
    return [*SCRIPTED, *(f"random_{s}" for s in range(seeds)), *(CONTROLS if controls else [])]


def build(name: str, seed: int = 0) -> Case:
    """The scenario called `name` (``random_<k>`` is random scene k; `seed` is ignored there)."""
    if name.startswith("random_"):
        return random_scene(int(name.split("_", 1)[1]))
    table = {**SCRIPTED, **CONTROLS}
    if name not in table:
        raise KeyError(f"unknown scenario {name!r}: one of {', '.join(names(controls=True))}")
    return table[name](seed)
