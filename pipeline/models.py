"""Where weights come from: an explicit path, then ``$PROMPTRACK_MODEL_DIR``, then the Hugging Face
cache or hub (with a progress bar). Offline with nothing found: :class:`ModelNotFoundError`, one
line naming the file, the repo id and the environment variable.

Example:
    >>> spec = sam2_spec("tiny")
    >>> spec.repo_id, spec.filename
    ('facebook/sam2.1-hiera-tiny', 'sam2.1_hiera_tiny.pt')
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFoundError, PromptrackError, display_path

MODEL_DIR_ENV = "PROMPTRACK_MODEL_DIR"


@dataclass(frozen=True)
class SAM2Spec:
    repo_id: str
    filename: str
    config: str  # hydra config name inside the sam2 package


_SAM2 = {
    "tiny": SAM2Spec("facebook/sam2.1-hiera-tiny", "sam2.1_hiera_tiny.pt", "configs/sam2.1/sam2.1_hiera_t.yaml"),
    "small": SAM2Spec("facebook/sam2.1-hiera-small", "sam2.1_hiera_small.pt", "configs/sam2.1/sam2.1_hiera_s.yaml"),
    "base_plus": SAM2Spec(
        "facebook/sam2.1-hiera-base-plus", "sam2.1_hiera_base_plus.pt", "configs/sam2.1/sam2.1_hiera_b+.yaml"
    ),
    "large": SAM2Spec("facebook/sam2.1-hiera-large", "sam2.1_hiera_large.pt", "configs/sam2.1/sam2.1_hiera_l.yaml"),
}
SAM2_SIZES = tuple(_SAM2)


def sam2_spec(name: str) -> SAM2Spec:
    """The hub repo, checkpoint file and config of a SAM 2.1 size, or of a checkpoint path."""
    if name in _SAM2:
        return _SAM2[name]
    stem = Path(name).name.lower()
    # A local checkpoint: infer size and generation from the usual names (sam2.1_hiera_small.pt).
    for size, keys in (("base_plus", ("base_plus", "b+")), ("tiny", ("tiny", "_t.")),
                       ("small", ("small", "_s.")), ("large", ("large", "_l."))):
        if any(k in stem for k in keys):
            config = _SAM2[size].config
            if "sam2.1" not in stem:  # SAM 2.0 checkpoints use the sam2/ configs
                config = config.replace("sam2.1/sam2.1_", "sam2/sam2_")
            return SAM2Spec(_SAM2[size].repo_id, name, config)
    raise ModelNotFoundError(
        f"unknown SAM 2 model {name!r}: use one of {', '.join(SAM2_SIZES)} or a checkpoint path like sam2.1_hiera_tiny.pt"
    )


def _model_dir() -> Path | None:
    value = os.environ.get(MODEL_DIR_ENV)
    return Path(value).expanduser() if value else None


def _not_found(filename: str, repo_id: str | None, reason: str = "") -> ModelNotFoundError:
    where = f"download it from the Hugging Face repo {repo_id} or " if repo_id else ""
    hint = f" ({reason})" if reason else ""
    return ModelNotFoundError(
        f"model file {filename} not found{hint}: {where}put it in ${MODEL_DIR_ENV} (or pass its path)"
    )


def resolve_file(filename: str, repo_id: str | None = None, explicit: str | os.PathLike | None = None) -> Path:
    """Path to one weights file: explicit path, ``$PROMPTRACK_MODEL_DIR``, then the hub."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        raise _not_found(str(explicit), repo_id, "no such file")
    model_dir = _model_dir()
    if model_dir is not None:
        for candidate in (model_dir / filename, model_dir / _repo_name(repo_id) / filename if repo_id else None):
            if candidate is not None and candidate.is_file():
                return candidate
    if repo_id is None:
        raise _not_found(filename, None)
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as exc:  # offline, no such repo, network error: all mean "not here"
        raise _not_found(filename, repo_id, _short(exc)) from None


def resolve_folder(repo_id_or_path: str, required: str = "config.json") -> Path:
    """A model folder (transformers layout): a local folder, ``$PROMPTRACK_MODEL_DIR/<name>``, then the hub."""
    path = Path(repo_id_or_path).expanduser()
    if path.is_dir():
        if not (path / required).is_file():
            raise _not_found(str(path / required), None, "folder has no " + required)
        return path
    model_dir = _model_dir()
    if model_dir is not None:
        candidate = model_dir / _repo_name(repo_id_or_path)
        if (candidate / required).is_file():
            return candidate
    if repo_id_or_path.count("/") != 1 or path.is_absolute() or repo_id_or_path.startswith("."):
        raise _not_found(repo_id_or_path, None, "no such folder")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=repo_id_or_path))
    except Exception as exc:
        raise _not_found(required, repo_id_or_path, _short(exc)) from None


def _repo_name(repo_id: str) -> str:
    return repo_id.rsplit("/", 1)[-1]


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    name = type(exc).__name__
    if "offline" in name.lower() or "LocalEntryNotFound" in name or "Connect" in name:
        return "offline and not in the Hugging Face cache"
    return f"{name}: {text[0][:120]}" if text else name


#: What loading a file that is not a checkpoint raises: text or a foreign pickle (weights-only
#: loading refuses anything that would run code), a broken zip, an empty file, wrong contents.
CHECKPOINT_ERRORS = (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, KeyError, TypeError,
                     ValueError, AttributeError, OSError)


def checkpoint_error(path: str | os.PathLike, exc: BaseException) -> PromptrackError:
    """One line for a `--sam2` file that is not a SAM 2 checkpoint."""
    text = str(exc).strip().splitlines()
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in " ".join(text[:3]).lower():
        reason = "not a PyTorch checkpoint of weights (refused: loading it could run code)"
    elif isinstance(exc, (zipfile.BadZipFile, EOFError)):
        reason = "not a PyTorch checkpoint (truncated or not a checkpoint file)"
    else:
        reason = f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__
    return PromptrackError(f"cannot load SAM 2 checkpoint {display_path(path)}: {reason}; "
                           "give a sam2.1_hiera_*.pt file from facebook/sam2.1-hiera-*")
