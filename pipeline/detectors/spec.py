"""DetectorSpec: everything promptrack knows about one detector family, in one frozen record.

Read by the built-in table (``registry.py``) and by the plugin loader (``plugins.py``); it imports
neither, so the two never import each other.

Example:
    >>> DetectorSpec("mine", build=lambda config, device: None, needs="nothing", about="demo").model_name(None)
    'mine'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class DetectorSpec:
    """What a detector is and how to build it.

    Attributes:
        name: the ``--detector`` name.
        build: ``build(config, device) -> Detector``; ``config`` is the DetectorConfig.
        needs: what it needs to run (weights, a token, a package), for ``--list-detectors``.
        about: what it is for, one short phrase.
        aliases: other accepted names (case is folded anyway).
        default_model: hub id or file used when ``detector.model`` is not set.
        model_types: ``config.json`` ``model_type`` values of checkpoints this family loads; a
            folder passed to ``--detector`` is routed by them.
        file_suffixes: weight files passed to ``--detector`` routed here (".onnx").
        check_prompt: ``check_prompt(phrases)`` raises :class:`PromptError` for phrases this
            detector cannot look for; called before any model loads.
        weights: ``weights(config) -> [ModelFile]`` (``pipeline/models.py``): the files ``build``
            loads, found and checked before any model loads, so a run missing several files
            names them all in one message.
        exemplars: the example boxes it takes (prompts by example, ``pipeline/exemplars.py``):
            ``("positive",)``, ``("positive", "negative")``, or ``()`` for none. A detector that
            declares any implements ``detect_prompt`` (:class:`~.base.ExemplarDetector`).
        source: where it comes from ("built-in", or the plugin's distribution).
    """

    name: str
    build: Callable[[Any, str], Any]
    needs: str
    about: str
    aliases: tuple[str, ...] = ()
    default_model: str | None = None
    model_types: tuple[str, ...] = ()
    file_suffixes: tuple[str, ...] = ()
    check_prompt: Callable[[Sequence[str]], None] | None = None
    weights: Callable[[Any], Sequence[Any]] | None = None
    exemplars: tuple[str, ...] = ()
    source: str = field(default="built-in", compare=False)

    def model_name(self, model: str | None) -> str:
        """The detector's name in output headers: its weights' name, else the detector's."""
        weights = model or self.default_model
        if not weights:
            return self.name
        return Path(str(weights)).name.removesuffix(".onnx") if model is None else Path(str(weights)).name
