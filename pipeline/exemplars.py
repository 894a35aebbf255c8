"""Exemplars: prompts by example ("track everything that looks like this").

An :class:`Exemplar` is a box drawn on a frame of the input (``frame`` + ``box``), or an image of
the thing (:meth:`Exemplar.from_image`, :meth:`Exemplar.from_array`), with a ``label`` (the
tracks' label) and a polarity (``positive=False``: "not this", where the detector takes it).
Before a run, exemplars are *resolved* into :class:`Example` objects that hold their pixels: a
frame exemplar reads frame F of the input once, before the first keyframe (:func:`read_frames`:
decord seeks to F, PyAV decodes up to it), so look-alikes are found from frame 0 on, also those
gone before F. Why not take F from the tracking pass itself: the keyframes before F would miss
the example, and holding frames until F is reached would make memory grow with F. An image is
read once, when the exemplar is made. The detector then turns each example
into its own query once (OWLv2: a class embedding; SAM 3: prompt tokens; DINO-X: a visual prompt)
and reuses it on every keyframe.

A :class:`VisualPrompt` is what the detector gets on a keyframe: the text phrases and the
examples. Its ``labels`` are the phrases, then each example label not among them; detections'
class ids index ``labels``. Examples that share a label are one concept (with the phrase of that
name, when there is one).

Example:
    >>> ex = Exemplar.parse("pallet=12:10,20,50,60")
    >>> ex.frame, ex.box, ex.label, ex.positive
    (12, (10.0, 20.0, 50.0, 60.0), 'pallet', True)
    >>> Exemplar.parse("-12:10,20,50,60").positive
    False
    >>> prompt = VisualPrompt(("person",), (Example("pallet", True, np.zeros((80, 80, 3), np.uint8),
    ...                                             (10.0, 20.0, 50.0, 60.0)),))
    >>> prompt.labels
    ('person', 'pallet')
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import InputError, PromptError, display_path

DEFAULT_LABEL = "exemplar"
Box = tuple[float, float, float, float]

_SPEC = re.compile(r"^(?:(?P<label>[^=]+)=)?(?P<neg>-)?(?P<frame>\d+):(?P<box>[^:]+)$")


@dataclass(frozen=True)
class Exemplar:
    """An example of what to track: a box on frame ``frame`` of the input, or an image of it.

    Attributes:
        frame: a frame of the input (0-based, as in tracks.json); None for an image exemplar.
        box: (x1, y1, x2, y2) in pixels of that frame (or of the image; None: the whole image).
        label: the tracks' label; None: the single text phrase given with it, else "exemplar".
        positive: False for a negative example ("not this"), where the detector takes them.
        image: the image's RGB pixels (image exemplars only).
        image_name: the image's file name, for tracks.json.
        image_sha256: the hash of the image file (or of the pixels), for tracks.json.
    """

    frame: int | None = None
    box: Box | None = None
    label: str | None = None
    positive: bool = True
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    image_name: str | None = None
    image_sha256: str | None = None

    def __post_init__(self) -> None:
        if (self.frame is None) == (self.image is None):
            raise PromptError("an exemplar is a frame and a box (Exemplar(frame=12, box=(x1, y1, x2, y2))) or an "
                              "image (Exemplar.from_image(path))")
        if self.frame is not None and (self.box is None or self.frame < 0):
            raise PromptError("a frame exemplar needs a frame >= 0 and a box: Exemplar(frame=12, box=(x1, y1, x2, y2))")
        if self.box is not None:
            box = tuple(float(v) for v in self.box)
            if len(box) != 4 or not all(np.isfinite(box)):
                raise PromptError(f"an exemplar box is four numbers x1,y1,x2,y2, not {self.box!r}")
            object.__setattr__(self, "box", box)
        if self.label is not None:
            label = " ".join(str(self.label).split()).lower()
            if not label:
                raise PromptError("an exemplar's label is empty: name it (pallet=12:x1,y1,x2,y2) or leave it out")
            object.__setattr__(self, "label", label)

    # -- making one ------------------------------------------------------------------------
    @classmethod
    def from_image(cls, path: str | os.PathLike, label: str | None = None, box: Box | None = None,
                   positive: bool = True) -> "Exemplar":
        """An exemplar from an image file (a crop of the thing, or a picture with ``box`` on it); read once here."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read exemplar image {display_path(path)}: {exc.strerror or exc}") from None
        image = _decode_image(raw)
        if image is None:
            raise InputError(f"cannot read exemplar image {display_path(path)}: not an image (give a .png or .jpg)")
        return cls(image=image, box=box, label=label, positive=positive, image_name=path.name,
                   image_sha256=hashlib.sha256(raw).hexdigest())

    @classmethod
    def from_array(cls, image: np.ndarray, box: Box | None = None, label: str | None = None, positive: bool = True,
                   name: str = "array") -> "Exemplar":
        """An exemplar from RGB pixels in memory, e.g. a live frame (``result.frame``) and a box drawn on it."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"an exemplar image is RGB uint8 (H, W, 3), not {image.dtype} {image.shape}")
        image = np.ascontiguousarray(image)
        return cls(image=image, box=box, label=label, positive=positive, image_name=name,
                   image_sha256=hashlib.sha256(image.tobytes()).hexdigest())

    @classmethod
    def parse(cls, text: str) -> "Exemplar":
        """``[name=][-]FRAME:x1,y1,x2,y2`` (the CLI's ``--exemplar``)."""
        match = _SPEC.match(text.strip())
        numbers = match.group("box").split(",") if match else []
        try:
            box = tuple(float(v) for v in numbers)
        except ValueError:
            box = ()
        if not match or len(box) != 4:
            raise PromptError(f"--exemplar {text!r}: write [name=][-]FRAME:x1,y1,x2,y2 "
                              "(e.g. pallet=12:40,60,200,180; a leading - marks a negative example)")
        return cls(frame=int(match.group("frame")), box=box, label=match.group("label"),
                   positive=not match.group("neg"))

    @classmethod
    def parse_image(cls, text: str) -> "Exemplar":
        """``crop.png[=name]`` (the CLI's ``--exemplar-image``); the image is read now."""
        path, _, label = text.rpartition("=") if "=" in text and not Path(text).exists() else (text, "", "")
        return cls.from_image(path, label=label or None)

    def record(self, label: str) -> dict[str, Any]:
        """What tracks.json says of this exemplar (under ``prompt``), with its resolved `label`."""
        where: dict[str, Any] = ({"frame": self.frame} if self.frame is not None
                                 else {"image": self.image_name, "sha256": self.image_sha256})
        box = {"box": [round(v, 2) for v in self.box]} if self.box is not None else {}
        return {"exemplar": {**where, **box, "label": label, "positive": self.positive}}


@dataclass(frozen=True, eq=False)
class Example:
    """A resolved exemplar: its pixels (`image`, RGB) and the `box` (x1, y1, x2, y2) on them."""

    label: str
    positive: bool
    image: np.ndarray = field(repr=False)
    box: Box


@dataclass(frozen=True)
class Concept:
    """One thing to look for: a label, its text phrase (None: by example only) and its examples."""

    label: str
    text: str | None
    positives: tuple[Example, ...] = ()
    negatives: tuple[Example, ...] = ()


@dataclass(frozen=True, eq=False)
class VisualPrompt:
    """Text phrases and examples, as a detector gets them on a keyframe (identity: the detector's cache key)."""

    phrases: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The phrases, then the examples' labels not among them: what class ids index."""
        extra = [e.label for e in self.examples if e.label not in self.phrases]
        return tuple(self.phrases) + tuple(dict.fromkeys(extra))

    def concepts(self) -> list[Concept]:
        """One :class:`Concept` per label, in ``labels`` order."""
        return [Concept(label, label if label in self.phrases else None,
                        tuple(e for e in self.examples if e.label == label and e.positive),
                        tuple(e for e in self.examples if e.label == label and not e.positive))
                for label in self.labels]


def default_label(phrases: Sequence[str]) -> str:
    """An unnamed exemplar's label: the text phrase it is given with (one phrase), else "exemplar"."""
    return phrases[0] if len(phrases) == 1 else DEFAULT_LABEL


def labelled(exemplars: Iterable[Exemplar], phrases: Sequence[str]) -> list[tuple[Exemplar, str]]:
    """Each exemplar with its label resolved."""
    return [(e, e.label or default_label(phrases)) for e in exemplars]


def check(exemplars: Sequence[Exemplar], phrases: Sequence[str]) -> None:
    """Fail now (one line) on a label with only negative examples and no phrase: nothing to look for."""
    positive = {label for e, label in labelled(exemplars, phrases) if e.positive}
    for e, label in labelled(exemplars, phrases):
        if not e.positive and label not in positive and label not in phrases:
            raise PromptError(f"negative exemplar {label!r} has no positive example or text phrase of that name: "
                              f"name it after what it should not be mistaken for ({label}=-FRAME:...)")


def prompt_record(phrases: Sequence[str], exemplars: Sequence[Exemplar]) -> list:
    """``prompt`` in tracks.json: the phrases, then one ``{"exemplar": {...}}`` per exemplar."""
    return [*phrases, *(e.record(label) for e, label in labelled(exemplars, phrases))]


def resolve(exemplars: Sequence[Exemplar], phrases: Sequence[str],
            read: Callable[[list[int]], dict[int, np.ndarray]] | None = None) -> VisualPrompt:
    """The :class:`VisualPrompt` of `phrases` and `exemplars`, each example with its pixels.

    `read(frames) -> {frame: RGB}` gives the frames that frame exemplars are drawn on
    (:func:`read_frames` for a file); None (a live stream) accepts image exemplars only.
    Boxes are checked against their image: inside it, not empty.
    """
    check(exemplars, phrases)
    frames_wanted = sorted({e.frame for e in exemplars if e.frame is not None})
    if frames_wanted and read is None:
        raise InputError(f"exemplar frame {frames_wanted[0]}: a live stream cannot go back to a frame; give the "
                         "example's pixels: Exemplar.from_array(result.frame, box) or --exemplar-image crop.png")
    frames = read(frames_wanted) if frames_wanted else {}
    examples = []
    for e, label in labelled(exemplars, phrases):
        image = frames[e.frame] if e.frame is not None else e.image
        h, w = image.shape[:2]
        box = e.box if e.box is not None else (0.0, 0.0, float(w), float(h))
        where = f"frame {e.frame}" if e.frame is not None else f"image {e.image_name}"
        _check_box(box, w, h, where)
        examples.append(Example(label, e.positive, image, box))
    return VisualPrompt(tuple(phrases), tuple(examples))


def read_frames(uri: str | os.PathLike, frames: Sequence[int], total: int | None,
                decoder: str | None = None) -> dict[int, np.ndarray]:
    """Frames `frames` of a video file or frame folder, each read once (decord: a seek; PyAV: decoded up to it)."""
    from .sources import open_source

    out: dict[int, np.ndarray] = {}
    for index in frames:
        past = InputError(f"exemplar frame {index} is past the end of {display_path(uri)}"
                          + (f" ({total} frames, 0-{total - 1})" if total else "") + ": pick a frame of the input")
        if total is not None and index >= total:
            raise past
        try:
            for found, frame in open_source(uri, start=index, max_frames=1, decoder=decoder):
                out[found] = frame
        except InputError:
            raise past from None
        if index not in out:
            raise past
    return out


def _check_box(box: Box, w: int, h: int, where: str) -> None:
    x1, y1, x2, y2 = box
    shown = ",".join(f"{v:g}" for v in box)
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"exemplar box {shown} on {where} is empty: write x1,y1,x2,y2 with x2 > x1 and y2 > y1")
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        raise InputError(f"exemplar box {shown} is outside {where} ({w}x{h}): keep 0 <= x1 < x2 <= {w} and "
                         f"0 <= y1 < y2 <= {h}")


def _decode_image(raw: bytes) -> np.ndarray | None:
    import cv2

    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.ascontiguousarray(image[..., ::-1])
