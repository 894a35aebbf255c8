"""Host <-> device copies of the engine, in one place, so each frame's traffic is what it looks like.

On CUDA an upload goes through pinned (page-locked) host memory with ``non_blocking=True``: the CPU
queues the copy and goes on, the GPU's queue is not drained (no host synchronisation). A
download is the one point a frame waits for the GPU; the engine does one a frame, after the step.
On the CPU both are plain copies (or no copy at all).

``bench/gpu_counts.py`` counts calls of :func:`upload` as non-blocking uploads; any other copy of
host data to the device is counted as a blocking one.

Example:
    >>> import numpy as np, torch
    >>> upload(np.arange(4, dtype=np.int64), torch.device("cpu")).tolist()
    [0, 1, 2, 3]
    >>> frame, slots = upload_packed([np.ones((2, 3), np.uint8), np.arange(3)], torch.device("cpu"))
    >>> frame.shape, slots.tolist()
    (torch.Size([2, 3]), [0, 1, 2])
"""

from __future__ import annotations

import numpy as np
import torch


def upload(data: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host array on `device` without a host synchronisation (pinned, non-blocking on CUDA).

    The caller must not change `data` until the device has read it: pass a fresh array, or one
    that the next upload of the same kind overwrites only after the step that read it."""
    tensor = torch.from_numpy(np.ascontiguousarray(data)) if isinstance(data, np.ndarray) else data
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def upload_packed(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Several host arrays in ONE upload: packed into one byte buffer (each 8-byte aligned), typed
    views of it on `device` (the frame and the step's small inputs travel together)."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    offsets, total = [], 0
    for a in arrays:
        offsets.append(total)
        total += -(-a.nbytes // 8) * 8
    buffer = np.empty(total, np.uint8)
    for a, at in zip(arrays, offsets):
        buffer[at:at + a.nbytes] = a.reshape(-1).view(np.uint8)
    device_buffer = upload(buffer, device)
    return [device_buffer[at:at + a.nbytes].view(_TORCH_DTYPES[a.dtype]).view(a.shape)
            for a, at in zip(arrays, offsets)]


_TORCH_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool, np.dtype(np.int64): torch.int64,
                 np.dtype(np.float32): torch.float32, np.dtype(np.int32): torch.int32}


def download(tensor: torch.Tensor) -> np.ndarray:
    """A device tensor as a host array: the frame's one wait for the device."""
    return tensor.cpu().numpy()
