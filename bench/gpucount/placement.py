"""Where each tensor would sit on a CUDA run whose device is played by the CPU.

Tensors made from host data (numpy arrays, Python lists, ``torch.from_numpy``, ``torch.tensor``
and factories called without a device) are host tensors; results of operators on device tensors,
module weights and buffers, and every tensor made before counting began are device tensors.
The results of an operator whose tensor inputs all sit on the host stay on the host.

Example:
    >>> import torch
    >>> places = Placement(); host = torch.ones(2)
    >>> places.set_host(host); places.on_host(host), places.on_host(torch.ones(2))
    (True, False)
"""

from __future__ import annotations

import torch
from torch.utils.weak import WeakTensorKeyDictionary


class Placement:
    def __init__(self) -> None:
        self._host = WeakTensorKeyDictionary()

    def on_host(self, tensor: torch.Tensor) -> bool:
        return tensor in self._host

    def set_host(self, tensor: torch.Tensor) -> None:
        self._host[tensor] = True

    def set_device(self, tensor: torch.Tensor) -> None:
        self._host.pop(tensor, None)

    def all_host(self, tensors: list[torch.Tensor]) -> bool:
        """True when there are tensors and every one sits on the host."""
        return bool(tensors) and all(t in self._host for t in tensors)
