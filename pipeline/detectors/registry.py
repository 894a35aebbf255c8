"""The detector table: every fact about a detector family lives in its :class:`DetectorSpec`.

Each family's file (``grounding_dino.py``, ``sam3.py`` ...) declares one or more specs and calls
:func:`register`; this package imports every module in its folder, so adding a detector is one
new file. ``--list-detectors``, :func:`build_detector`, the CLI's ``--detector`` routing (a name,
a model folder or an ``.onnx`` file) and the output header's model name all read this table.
Third-party packages add specs (or plain factories) through the entry-point group
``promptrack.detectors`` (see ``plugins.py``). The spec itself lives in ``spec.py``, which both
this table and the plugins read (neither imports the other's internals).

Example (a detector of one file)::

    from promptrack.pipeline.detectors.registry import DetectorSpec, register

    def build(config, device):
        return MyDetector(config.model or "org/my-weights", config.box_threshold, device)

    register(DetectorSpec("my-detector", build, needs="weights org/my-weights",
                          about="open vocabulary, local", aliases=("mine",), default_model="org/my-weights"))

    >>> spec("gdino").name
    'grounding-dino'
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any, Callable, Sequence

from ..checkpoints import check_folder
from ..errors import ConfigError, ModelNotFoundError, PromptError, PromptrackError, display_path
from ..models import ModelFile, is_repo_id
from .plugins import plugin_specs
from .spec import DetectorSpec


_TABLE: dict[str, DetectorSpec] = {}
_loaded = False


def register(spec: DetectorSpec) -> DetectorSpec:
    """Add a built-in detector to the table (called by each family's module at import)."""
    taken = {n for s in _TABLE.values() if s.name != spec.name for n in (s.name, *s.aliases)}
    clash = {spec.name, *spec.aliases} & taken
    if clash:
        raise ConfigError(f"detector {spec.name!r} reuses the name(s) {sorted(clash)} of another detector")
    _TABLE[spec.name] = spec
    return spec


def _load_builtins() -> None:
    """Import every module of this package once, so each family registers itself."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = __name__.rsplit(".", 1)[0]
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in ("registry", "base", "plugins", "spec"):
            importlib.import_module(f"{package}.{module.name}")


def builtin_specs() -> list[DetectorSpec]:
    """Built-in detectors, in the order their families declare them (default first)."""
    _load_builtins()
    return sorted(_TABLE.values(), key=lambda s: (_ORDER.index(s.name) if s.name in _ORDER else len(_ORDER), s.name))


# The order of --list-detectors; a family not named here is listed after these, by name.
_ORDER = ("grounding-dino", "mm-grounding-dino", "llmdet", "owlv2", "sam3", "omdet-turbo", "yolox", "dino-x",
          "grounding-dino-1.5-pro", "grounding-dino-1.6-pro", "t-rex-2")


def all_specs() -> list[DetectorSpec]:
    """Built-ins, then plugins (a plugin cannot shadow a built-in name or alias)."""
    specs = builtin_specs()
    taken = {n for s in specs for n in (s.name, *s.aliases)}
    return specs + [s for s in plugin_specs() if s.name not in taken]


def spec(name: str) -> DetectorSpec:
    """The spec of a detector name or alias (case folded); one clear line when there is none."""
    key = name.strip().lower()
    specs = all_specs()
    for s in specs:
        if key == s.name or key in s.aliases:
            return s
    names = ", ".join(s.name for s in specs)
    raise ConfigError(f"unknown detector {name!r}: use one of {names} (track-video --list-detectors)")


def spec_for_path(path: str | Path) -> DetectorSpec | None:
    """The family of a weights file (by suffix) or checkpoint folder (by config.json's model_type)."""
    path = Path(path).expanduser()
    specs = builtin_specs()
    if path.suffix:
        for s in specs:
            if path.suffix.lower() in s.file_suffixes:
                return s
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    for s in specs:
        if model_type in s.model_types:
            return s
    return None


def resolve(config) -> DetectorSpec:
    """The spec that builds ``config``: its name, or the family of the folder in ``config.model``.

    A folder given with the default name (the CLI's ``--detector path/to/folder``) is routed by
    its config.json; a folder given with another family's name is left to that family, which
    says what the folder holds.
    """
    named = spec(config.name)
    if config.model and named.name == "grounding-dino":
        return spec_for_path(config.model) or named
    return named


def build(config, device: str = "cpu"):
    """The detector ``config`` names, built by its family."""
    return resolve(config).build(config, device)


def check_prompt(config, phrases: Sequence[str]) -> None:
    """Raise :class:`PromptError` now, before models load, if the detector cannot look for `phrases`."""
    s = resolve(config)
    if s.check_prompt is not None:
        s.check_prompt(phrases)


def weights(config) -> list:
    """The model files (``ModelFile``) the detector ``config`` names loads; none for a cloud detector."""
    s = resolve(config)
    return list(s.weights(config)) if s.weights is not None else []


def check_exemplars(config, exemplars: Sequence) -> None:
    """Raise :class:`PromptError` now, before models load, if the detector cannot take these exemplars."""
    if not exemplars:
        return
    s = resolve(config)
    takers = [t.name for t in builtin_specs() if t.exemplars]
    if not s.exemplars:
        raise PromptError(f"{s.name} does not take exemplars: use --detector {' / '.join(takers)}")
    if any(not e.positive for e in exemplars) and "negative" not in s.exemplars:
        negatives = [t.name for t in builtin_specs() if "negative" in t.exemplars]
        raise PromptError(f"{s.name} takes positive exemplars only: drop the negative ones (-FRAME:...) or use "
                          f"--detector {' / '.join(negatives)}")


def model_name(config) -> str:
    """The detector's name for output headers (``models.detector`` in tracks.json)."""
    try:
        return resolve(config).model_name(config.model)
    except ConfigError:
        return Path(str(config.model or config.name)).name


def cli_values(value: str | None) -> dict:
    """Config values for ``--detector VALUE``: a name, an .onnx file or a checkpoint folder."""
    if value is None:
        return {}
    path = Path(value).expanduser()
    if path.is_dir() or path.suffix.lower() in {sfx for s in builtin_specs() for sfx in s.file_suffixes}:
        family = spec_for_path(path)
        return {"detector__name": family.name if family else "grounding-dino", "detector__model": value}
    return {"detector__name": value}


def folder_weights(family: str, model: str) -> ModelFile:
    """The transformers checkpoint folder (hub repo or local path) a family loads, its weights checked.

    >>> folder_weights("owlv2", "google/owlv2-base-patch16-ensemble").folder
    True
    """
    fix = (f"download it again (hf download {model})" if is_repo_id(model) and not Path(model).expanduser().is_dir()
           else "replace it with the file of a complete checkpoint folder")
    return ModelFile(model, folder=True, check=lambda folder: check_folder(folder, f"{family} weights", fix))


def load_folder(name: str, folder: Path, make: Callable[[], Any]):
    """``make()``, with a failure to read the checkpoint in `folder` as one line naming it.

    The weights files were checked before (:func:`folder_weights`); this catches what is left
    (a config that does not fit its weights, a broken tokenizer file ...).
    """
    try:
        return make()
    except PromptrackError:
        raise
    except Exception as exc:  # noqa: BLE001 - transformers' and safetensors' errors share no base class
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ModelNotFoundError(f"cannot load {name} from {display_path(folder)}: {type(exc).__name__}"
                                 + (f": {first}" if first else "")) from None
