"""Where weights come from: an explicit path, then ``$PROMPTRACK_MODEL_DIR``, then the Hugging Face
cache, then the hub. Offline with nothing found: :class:`ModelNotFoundError`, one line naming the
file, the repo id and the environment variable.

The cache is read first and without the network, so a run whose weights are cached prints nothing
about them and works offline (a newer revision on the hub is not looked for: delete the cache
entry to update). Only a missing file goes to the hub: first one quick request without retries
(a network that is down or a gated repo ends in a second, with one line), then the download with
the hub's progress bar.

Example:
    >>> spec = sam2_spec("tiny")
    >>> spec.repo_id, spec.filename
    ('facebook/sam2.1-hiera-tiny', 'sam2.1_hiera_tiny.pt')
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import ModelNotFoundError, PromptrackError, display_path
from .quiet import before_model_load

MODEL_DIR_ENV = "PROMPTRACK_MODEL_DIR"
_quiet_loads = False  # set by quiet_model_loading(): the CLI owns its terminal, a notebook keeps its settings


def quiet_model_loading() -> None:
    """Make loading weights already on disk print nothing (for the CLI).

    transformers draws a "Loading weights" bar and advisory warnings (such as its torchvision
    fallback) on every load, even from a local folder; only a first download deserves a bar, and
    the hub's download bar is kept. Applied when a model folder is resolved, so a run that uses no
    transformers model never imports it.
    """
    global _quiet_loads
    _quiet_loads = True


def _apply_quiet_loads() -> None:
    before_model_load()  # the run's own wish (track_video's progress=, --quiet): pipeline/quiet.py
    if _quiet_loads:
        from huggingface_hub import utils as hub_utils
        from transformers.utils import logging as transformers_logging

        hub_bars_off = hub_utils.are_progress_bars_disabled()
        transformers_logging.disable_progress_bar()  # this turns the hub's bars off too:
        if not hub_bars_off:
            hub_utils.enable_progress_bars()  # a later download (SAM 2) keeps its bar
        transformers_logging.set_verbosity_error()


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
SAM2_FIX = "give a sam2.1_hiera_*.pt file from facebook/sam2.1-hiera-*"


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


def _not_found(filename: str, repo_id: str | None, reason: str = "", origin: str | None = None) -> ModelNotFoundError:
    where = (f"download it from the Hugging Face repo {repo_id} or " if repo_id
             else f"download it from {origin} and " if origin else "")
    hint = f" ({reason})" if reason else ""
    error = ModelNotFoundError(
        f"model file {filename} not found{hint}: {where}put it in ${MODEL_DIR_ENV} (or pass its path)"
    )
    error.reason = reason  # read by MissingModels, which lists every missing file of a run at once
    return error


def resolve_file(filename: str, repo_id: str | None = None, explicit: str | os.PathLike | None = None,
                 origin: str | None = None) -> Path:
    """Path to one weights file: explicit path, ``$PROMPTRACK_MODEL_DIR``, then the hub.

    ``origin``: where a file that is on no hub repo comes from (a URL), for the error.
    """
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
        raise _not_found(filename, None, "not in $" + MODEL_DIR_ENV if model_dir else MODEL_DIR_ENV + " is not set",
                         origin)
    return _from_hub(repo_id, filename)


def resolve_folder(repo_id_or_path: str, required: str = "config.json") -> Path:
    """A model folder (transformers layout): a local folder, ``$PROMPTRACK_MODEL_DIR/<name>``, then the hub."""
    path = Path(repo_id_or_path).expanduser()
    if path.is_dir():
        if not (path / required).is_file():
            raise _not_found(str(path / required), None, "folder has no " + required)
        _apply_quiet_loads()
        return path
    model_dir = _model_dir()
    if model_dir is not None:
        candidate = model_dir / _repo_name(repo_id_or_path)
        if (candidate / required).is_file():
            _apply_quiet_loads()
            return candidate
    if not is_repo_id(repo_id_or_path):
        raise _not_found(repo_id_or_path, None, "no such folder")
    folder = _from_hub(repo_id_or_path, required, folder=True)
    _apply_quiet_loads()
    return folder


def is_repo_id(value: str) -> bool:
    """Is `value` a hub repo id ("org/name") rather than a local path?"""
    return value.count("/") == 1 and not Path(value).is_absolute() and not value.startswith((".", "~"))


@dataclass(frozen=True)
class ModelFile:
    """One file or folder a run loads, and where it comes from.

    ``name`` is a file name (``sam2.1_hiera_tiny.pt``), or for a folder a hub repo id or a local
    path; ``repo_id`` the hub repo of a file; ``explicit`` a path the user gave; ``origin`` where a
    file on no hub repo comes from (a URL); ``check`` is ``check(path)``, raising a one-line error
    when what is there cannot be loaded.

    >>> ModelFile("sam2.1_hiera_tiny.pt", "facebook/sam2.1-hiera-tiny").layout()[0]
    'sam2.1_hiera_tiny.pt'
    """

    name: str
    repo_id: str | None = None
    explicit: str | None = None
    folder: bool = False
    origin: str | None = None
    check: Callable[[Path], Any] | None = field(default=None, compare=False)

    def resolve(self) -> Path:
        """Where it is: a local path, ``$PROMPTRACK_MODEL_DIR``, the Hugging Face cache, the hub."""
        if self.folder:
            return resolve_folder(self.name)
        return resolve_file(self.name, self.repo_id, self.explicit, self.origin)

    def layout(self) -> tuple[str, str]:
        """(path under ``$PROMPTRACK_MODEL_DIR``, where to get it) for the missing-models message."""
        if self.explicit is not None or (self.folder and not is_repo_id(self.name)):
            return display_path(self.explicit or self.name), "the path given"
        if self.folder:
            local = _repo_name(self.name) + "/"
            return local, (f"every file of https://huggingface.co/{self.name}: hf download {self.name} "
                           f"--local-dir ${MODEL_DIR_ENV}/{_repo_name(self.name)}")
        if self.repo_id:
            return self.name, (f"from https://huggingface.co/{self.repo_id}: hf download {self.repo_id} {self.name} "
                               f"--local-dir ${MODEL_DIR_ENV}")
        return self.name, f"from {self.origin}" if self.origin else "no known source: pass its path"


class MissingModels(ModelNotFoundError):
    """Every model file of a run that could not be found, in one message with the layout to fix it.

    One missing file: one line. Several: a first line naming them all, then the layout of
    ``$PROMPTRACK_MODEL_DIR`` with each one's place and source.
    """

    def __init__(self, missing: Sequence[tuple[ModelFile, str]]) -> None:
        self.missing = list(missing)
        reasons = {reason for _, reason in missing}
        common = reasons.pop() if len(reasons) == 1 else ""
        names = ", ".join(m.name if m.folder or not m.repo_id else f"{m.repo_id}/{m.name}" for m, _ in missing)
        model_dir = os.environ.get(MODEL_DIR_ENV)
        where = f"${MODEL_DIR_ENV} ({display_path(model_dir)})" if model_dir else f"${MODEL_DIR_ENV} (not set)"
        online = (", or run once with the network to fill the Hugging Face cache"
                  if any(m.repo_id or (m.folder and is_repo_id(m.name)) for m, _ in missing) else "")
        if len(missing) == 1:  # one line, as every error: where it goes and where it comes from
            (need, reason), = missing
            local, source = need.layout()
            given = need.explicit is not None or (need.folder and not is_repo_id(need.name))
            place = "" if given else f": put it in {where} as {local} ({source}){online}"
            super().__init__(f"model {'folder' if need.folder else 'file'} {names} not found"
                             + (f" ({reason})" if reason else "") + (place or ": check the path"))
            return
        rows = [(*m.layout(), reason) for m, reason in missing]
        width = max(len(local) for local, _, _ in rows)
        lines = [f"{len(missing)} model files not found" + (f" ({common})" if common else "")
                 + f": {names}. Put them in {where} like this{online}:",
                 f"  ${MODEL_DIR_ENV}/"]
        for local, source, reason in rows:
            lines.append(f"    {local.ljust(width)}  {source}" + (f" ({reason})" if not common and reason else ""))
        super().__init__("\n".join(lines))


def resolve_all(needs: Sequence[ModelFile]) -> list[Path]:
    """Every file a run loads, found and checked before any loads: one message naming all missing ones.

    A file that is there but cannot be loaded (``need.check``) fails at once, in one line.
    """
    found: list[Path] = []
    missing: list[tuple[ModelFile, str]] = []
    for need in needs:
        try:
            path = need.resolve()
        except ModelNotFoundError as exc:
            missing.append((need, getattr(exc, "reason", "") or str(exc)))
            continue
        if need.check is not None:
            need.check(path)
        found.append(path)
    if missing:
        raise MissingModels(missing)
    return found


def _hub_timeout() -> float:
    """Seconds for the hub probe: ``$HF_HUB_ETAG_TIMEOUT`` when set, else 5."""
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT", "5"))
    except ValueError:
        return 5.0


def _from_hub(repo_id: str, filename: str, folder: bool = False) -> Path:
    """``filename`` of ``repo_id`` (or the repo's whole snapshot when ``folder``): cache, then the hub."""
    import huggingface_hub as hub
    from huggingface_hub import constants

    def fetch(local_only: bool) -> Path:
        if folder:
            snapshot = Path(hub.snapshot_download(repo_id=repo_id, local_files_only=local_only))
            if not (snapshot / filename).is_file():
                raise FileNotFoundError(f"{filename} missing from the snapshot")
            return snapshot
        return Path(hub.hf_hub_download(repo_id=repo_id, filename=filename, local_files_only=local_only))

    try:
        return fetch(local_only=True)
    except Exception:  # not cached (or a partial snapshot): ask the hub below
        pass
    if constants.is_offline_mode():
        raise _not_found(filename, repo_id, "offline and not in the Hugging Face cache")
    try:
        # One request, no retries: the hub's own download retries a dead network for ~25 s.
        hub.get_hf_file_metadata(hub.hf_hub_url(repo_id, filename), timeout=_hub_timeout(), retry_on_errors=False)
        return fetch(local_only=False)
    except Exception as exc:  # network down, gated, no such repo or file: one line each
        raise _not_found(filename, repo_id, _short(exc, repo_id)) from None


def _repo_name(repo_id: str) -> str:
    return repo_id.rsplit("/", 1)[-1]


def _short(exc: Exception, repo_id: str | None = None) -> str:
    """The reason a hub request failed, in a few words a user can act on."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    page = f"https://huggingface.co/{repo_id}" if repo_id else "the repo's page"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if "GatedRepoError" in names or status in (401, 403):  # gated (facebook/sam3): no access for this account
        return (f"the repo is gated: accept its licence on {page} (same account), then log in with "
                "`hf auth login` or set HF_TOKEN")
    if "RepositoryNotFoundError" in names:
        return "no such repo on the hub, or it is private: check the name, or log in with `hf auth login`"
    if names & {"RemoteEntryNotFoundError", "EntryNotFoundError"} and "LocalEntryNotFoundError" not in names:
        return "the repo has no such file"
    if names & {"OfflineModeIsEnabled", "LocalEntryNotFoundError"}:
        return "offline and not in the Hugging Face cache"
    if names & {"TransportError", "ConnectionError", "Timeout", "TimeoutException", "ConnectError", "ProxyError"}:
        return "the Hugging Face hub is unreachable (network down?) and it is not in the cache"
    text = str(exc).strip().splitlines()
    name = type(exc).__name__
    return f"{name}: {text[0][:120]}" if text else name


#: What loading a file that is not a checkpoint raises: text or a foreign pickle (weights-only
#: loading refuses anything that would run code), a broken zip, an empty file, wrong contents.
CHECKPOINT_ERRORS = (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, KeyError, TypeError,
                     ValueError, AttributeError, OSError)


def checkpoint_error(path: str | os.PathLike, exc: BaseException) -> PromptrackError:
    """One line for a `--sam2` file that is not a SAM 2 checkpoint."""
    from .checkpoints import checkpoint_error as one_line

    return one_line(path, exc, "SAM 2 checkpoint", SAM2_FIX)
