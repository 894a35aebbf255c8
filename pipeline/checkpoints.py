"""Is a weights file loadable? Checked before a loader reads it, without running any of its code.

Every model file a run loads (a detector folder's ``model.safetensors`` or ``pytorch_model.bin``,
its shards, a SAM 2 ``.pt``, a YOLOX ``.onnx``) goes through :func:`check_file` first, so a file
that is truncated, is text (a Git LFS pointer, an HTML error page), or is a pickle that
weights-only loading refuses ends in one line naming the file and why (exit code 2), never in
a traceback from deep inside a loader. Pickles are read only with ``weights_only=True``: a
payload in one is refused, never run.

Example:
    >>> from pathlib import Path; import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "model.safetensors"; _ = bad.write_text("version https://git-lfs")
    >>> check_file(bad, "owlv2 weights")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    promptrack.pipeline.checkpoints.CheckpointError: cannot load owlv2 weights .../model.safetensors: not a safetensors file (text, or another format)
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

from .errors import PromptrackError, display_path

#: The files transformers' from_pretrained reads from a folder, in the order it looks for them.
SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
PYTORCH, PYTORCH_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


class CheckpointError(PromptrackError):
    """A weights file is there but is not a loadable checkpoint (one line: the file and why)."""


def folder_weights(folder: str | os.PathLike) -> list[Path]:
    """The weights files transformers would load from `folder`: safetensors first, then PyTorch's.

    A sharded checkpoint is its index and every shard the index names.
    """
    folder = Path(folder)
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (PYTORCH, PYTORCH_INDEX)):
        if (folder / single).is_file():
            return [folder / single]
        if (folder / index).is_file():
            try:
                shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise CheckpointError(f"cannot read {display_path(folder / index)}: not a weights index "
                                      "(JSON with a weight_map)") from None
            return [folder / index, *(folder / s for s in shards)]
    raise CheckpointError(f"{display_path(folder)} holds no weights file ({SAFETENSORS} or {PYTORCH})")


def check_folder(folder: str | os.PathLike, what: str, fix: str = "") -> list[Path]:
    """Check every weights file of a transformers folder; returns them."""
    files = folder_weights(folder)
    for path in files:
        if not path.is_file():  # a shard the index names
            raise CheckpointError(f"cannot load {what}: {display_path(path)}, named by its index, is missing"
                                  + (f"; {fix}" if fix else ""))
        if not path.name.endswith(".index.json"):
            check_file(path, what, fix)
    return files


def check_file(path: str | os.PathLike, what: str, fix: str = "") -> None:
    """Raise :class:`CheckpointError` (one line) unless `path` is a loadable weights file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"cannot load {what} {display_path(path)}: no such file")
    try:
        if path.suffix == ".safetensors":
            _check_safetensors(path)
        elif path.suffix == ".onnx":
            _check_onnx(path)
        else:
            load_torch(path, lazy=True)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - what each loader raises for a bad file has no common base
        raise checkpoint_error(path, exc, what, fix) from None


def load_torch(path: str | os.PathLike, lazy: bool = False) -> dict:
    """A PyTorch checkpoint's contents, weights only (a pickle that would run code is refused).

    ``lazy``: memory-mapped, so checking a large file reads only its index.
    """
    import torch

    mmap = lazy and zipfile.is_zipfile(path)  # the legacy (pre-zip) format cannot be mapped
    return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def load_weights(folder: str | os.PathLike) -> dict:
    """Every tensor of a transformers folder's (checked) weights files, by name."""
    from safetensors.torch import load_file

    state: dict = {}
    for path in folder_weights(folder):
        if path.name.endswith(".safetensors"):
            state.update(load_file(str(path)))
        elif not path.name.endswith(".index.json"):
            state.update(load_torch(path))
    return state


def _check_safetensors(path: Path) -> None:
    """The header is JSON of the stated length and the file holds every tensor it lists."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise EOFError(f"truncated: {size} bytes, not even a header")
        length = struct.unpack("<Q", head)[0]
        if length > min(_MAX_HEADER, size - 8):
            raise ValueError("not a safetensors file (text, or another format)")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (its header is not a table of tensors)")
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
            and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2]
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        raise EOFError(f"truncated: {size} of {needed} bytes")


def _check_onnx(path: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def reason(exc: BaseException) -> str:
    """Why a file is not a loadable checkpoint, in a few words."""
    text = str(exc).strip().splitlines()
    whole = " ".join(text).lower()
    if isinstance(exc, pickle.UnpicklingError):
        if "unsupported global" in whole or "unsupported class" in whole:
            return "not a PyTorch checkpoint of weights (refused: loading it could run code)"
        return "not a PyTorch checkpoint (text, or another format)"
    if isinstance(exc, EOFError) and text and text[0].startswith("truncated"):
        return text[0]  # "truncated: 1000 of 4096 bytes"
    if isinstance(exc, (zipfile.BadZipFile, EOFError)) or "central directory" in whole:
        return "truncated, or not a checkpoint file"
    if isinstance(exc, ValueError) and text and text[0].startswith("not a safetensors"):
        return text[0]
    if type(exc).__module__.startswith("onnxruntime"):
        return f"not a readable ONNX model ({type(exc).__name__}: {text[0][:120] if text else ''})"
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def checkpoint_error(path: str | os.PathLike, exc: BaseException, what: str, fix: str = "") -> CheckpointError:
    """One line: which file, as what, why it cannot be loaded, and the fix."""
    tail = f"; {fix}" if fix else ""
    return CheckpointError(f"cannot load {what} {display_path(path)}: {reason(exc)}{tail}")
