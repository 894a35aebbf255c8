"""The counter: what a CUDA run of some Python code would cost the GPU and the host, counted on the CPU.

Two modes watch the counted thread (PyTorch's modes are thread-local: other threads are not
counted). A ``TorchFunctionMode`` sees the Python-level calls (``torch.tensor(..., device=)``,
``.to(device)``, ``.cpu()``, ``.numpy()``, ``.tolist()``, scaled-dot-product attention); a
``TorchDispatchMode`` sees every ATen operator after composite operators decomposed, applies CUDA
autocast's rules (``autocast``) and tallies launches, syncs, casts and FLOPs. The device is
played by the CPU: which tensor would sit on the host is tracked (``placement``).

Example:
    >>> import torch
    >>> with count() as counter:
    ...     with counter.section("frame"):
    ...         x = torch.ones(4, device="cpu")    # a device tensor (explicit device)
    ...         y = (x * 2).sum().item()           # two launches, one sync
    >>> tally = counter.tallies[-1]
    >>> tally.launches, len(tally.syncs), tally.syncs[0].kind
    (3, 1, '.item()')
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
import warnings
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

from . import aten
from .autocast import FP32, FP32_BY_DTYPE, LOWER, LOWER_DTYPES, PROMOTE, AutocastState, eligible
from .flops import op_flops, sdpa_flops
from .placement import Placement
from .shapes import run_shapes_only

_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd
_TORCH_DIR = str(Path(torch.__file__).resolve().parent)
_HERE = str(Path(__file__).resolve().parent)
_FACTORIES = frozenset({torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.linspace,
                        torch.logspace, torch.eye, torch.rand, torch.randn, torch.randint, torch.randperm,
                        torch.empty_strided, torch.scalar_tensor})
_FROM_DATA = frozenset({torch.tensor, torch.as_tensor, torch.asarray})
_SCALAR_READS = {torch.Tensor.item: ".item()", torch.Tensor.__bool__: "bool()", torch.Tensor.__int__: "int()",
                 torch.Tensor.__float__: "float()", torch.Tensor.__index__: "int()"}
_HOST_READS = {torch.Tensor.numpy: ".numpy()", torch.Tensor.__array__: ".numpy()", torch.Tensor.tolist: ".tolist()"}


@dataclass
class Sync:
    """One host synchronisation: why, where (file:line of the innermost frame outside torch and
    the counter) and the bytes it copied, if any."""

    kind: str
    where: str
    bytes: int = 0


@dataclass
class Tally:
    """What one section (a call, a frame) costs."""

    label: str
    op_calls: int = 0  # ATen operator calls, views included
    launches: int = 0  # kernel launches (device operators that are not views)
    host_ops: int = 0  # operators whose tensors all sit on the host (CPU work, no launch)
    syncs: list[Sync] = field(default_factory=list)
    h2d_bytes: int = 0
    d2h_bytes: int = 0
    uploads: int = 0  # non-blocking (pinned) uploads: no sync
    casts: int = 0  # explicit dtype conversions (.to(dtype), .float(), ...)
    cast_bytes: int = 0  # bytes read + written by them
    autocast_casts: int = 0  # casts CUDA autocast inserts (each a launch)
    autocast_cast_bytes: int = 0
    weight_casts: int = 0  # of which casts of weights (cached while one autocast context is open)
    flops: int = 0
    attention: list[dict] = field(default_factory=list)  # scaled-dot-product attention calls
    ops: collections.Counter = field(default_factory=collections.Counter)  # launches by operator

    def to_dict(self, ops: int = 0) -> dict:
        out = asdict(self)
        out["syncs"] = [asdict(s) for s in self.syncs]
        out["ops"] = dict(self.ops.most_common(ops)) if ops else {}
        return out


class Counter:
    """The tallies of one ``count()``; ``section(label)`` starts a new one for the code inside."""

    def __init__(self, autocast: torch.dtype | None, shapes_only: bool, nonblocking: Sequence[Callable],
                 skip_files: Sequence[str]) -> None:
        self.tallies: list[Tally] = [Tally("(outside sections)")]
        self.current = self.tallies[0]
        self.autocast = AutocastState(autocast)
        self.places = Placement()
        self.shapes_only = shapes_only
        self.suppress = 0  # > 0: operators run uncounted (inside an operator counted as a whole)
        self.scalar_kind: str | None = None
        self.thread = threading.get_ident()
        self._nonblocking = {f.__code__ for f in nonblocking}
        self._skip = (_TORCH_DIR, _HERE, *skip_files)
        self._view_of: dict[int, tuple] = {}  # id(view of a weight) -> (ref, base, view op, args, kwargs)

    @contextlib.contextmanager
    def section(self, label: str) -> Iterator[Tally]:
        outer = self.current
        self.current = Tally(label)
        self.tallies.append(self.current)
        try:
            yield self.current
        finally:
            self.current = outer

    def start(self, label: str) -> Tally:
        """A new tally for everything from now on (until the next ``start`` or ``switch``)."""
        tally = Tally(label)
        self.tallies.append(tally)
        self.current = tally
        return tally

    def switch(self, tally: Tally) -> Tally:
        """Count into `tally` from now on; returns the tally counted into until now."""
        outer, self.current = self.current, tally
        return outer

    # ------------------------------------------------------------------ where and what
    def where(self) -> str:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(self._skip):
            frame = frame.f_back
        if frame is None:
            return "?"
        return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"

    def _in_nonblocking(self) -> bool:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code in self._nonblocking:
                return True
            frame = frame.f_back
        return False

    def sync(self, kind: str, nbytes: int = 0, d2h: bool = True) -> None:
        self.current.syncs.append(Sync(kind, self.where(), nbytes))
        if d2h:
            self.current.d2h_bytes += nbytes
        else:
            self.current.h2d_bytes += nbytes

    def upload(self, tensor: torch.Tensor) -> None:
        """`tensor` (host data) copied to the device: blocking unless inside a non-blocking upload."""
        nbytes = aten.nbytes(tensor)
        if self._in_nonblocking():
            self.current.uploads += 1
            self.current.h2d_bytes += nbytes
        else:
            self.sync("blocking upload", nbytes, d2h=False)

    # ------------------------------------------------------------------ running operators
    def run(self, func, args: tuple, kwargs: dict):
        """Run one ATen operator (for real, or shapes only), tagging placement and views."""
        if self.shapes_only and not aten.is_view(func):
            out = run_shapes_only(func, args, kwargs)
        else:
            out = func(*args, **kwargs)
        inputs = _tensors(args) + _tensors(kwargs.values())
        host = (self.places.all_host(inputs) if inputs else False) or aten.name(func) in ("lift_fresh", "lift")
        if host:
            for x in _tensors(out if isinstance(out, (tuple, list)) else (out,)):
                self.places.set_host(x)
        if aten.is_view(func) and isinstance(out, torch.Tensor) and args and isinstance(args[0], torch.Tensor):
            base = args[0]
            if isinstance(base, torch.nn.Parameter) or id(base) in self._view_of:
                if len(self._view_of) > 50_000:  # forget views that died
                    self._view_of = {k: e for k, e in self._view_of.items() if e[0]() is not None}
                self._view_of[id(out)] = (weakref.ref(out), base, func, args[1:], kwargs)
        return out, inputs, host

    def account(self, func, args: tuple, kwargs: dict, out, inputs: list, host: bool) -> None:
        tally = self.current
        tally.op_calls += 1
        op = aten.name(func)
        kind = aten.sync_kind(func, args, kwargs)
        on_device = inputs and not host
        if op == aten.SCALAR_READ:
            if on_device:
                self.sync(self.scalar_kind or ".item()", aten.nbytes(args[0]))
            self.scalar_kind = None
            return
        if kind is not None and on_device:
            self.sync(kind)
        if not aten.is_launch(func):
            return
        if host:
            tally.host_ops += 1
            return
        tally.launches += 1
        tally.ops[op] += 1
        if aten.cast_change(func, args, out):
            tally.casts += 1
            tally.cast_bytes += aten.nbytes(args[0]) + aten.nbytes(out)
        tally.flops += op_flops(func, args, kwargs, out)

    # ------------------------------------------------------------------ autocast
    def _weight_chain(self, tensor: torch.Tensor):
        """(weight, views from it to `tensor`) when `tensor` is a parameter or a view of one."""
        chain = []
        while not isinstance(tensor, torch.nn.Parameter):
            entry = self._view_of.get(id(tensor))
            if entry is None or entry[0]() is not tensor:
                return None, []
            _, tensor, func, rest, kwargs = entry
            chain.append((func, rest, kwargs))
        return tensor, chain[::-1]

    def cast(self, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Autocast's cast of `tensor` to `dtype` (a launch; weights cached per autocast context)."""
        if not eligible(tensor) or tensor.dtype == dtype or self.places.on_host(tensor):
            return tensor
        weight, chain = self._weight_chain(tensor) if dtype in LOWER_DTYPES else (None, [])
        if weight is not None and weight.dtype == torch.float32 and weight.requires_grad:
            cached = self.autocast.cache.get(id(weight))
            if cached is None or cached[0] is not weight:
                cached = (weight, self._cast_now(weight, dtype, weight=True))
                self.autocast.cache[id(weight)] = cached
            result = cached[1]
            for func, rest, kwargs in chain:
                result = func(result, *rest, **kwargs)
            return result
        return self._cast_now(tensor, dtype)

    def _cast_now(self, tensor: torch.Tensor, dtype: torch.dtype, weight: bool = False) -> torch.Tensor:
        self.suppress += 1
        try:
            out, _, _ = self.run(torch.ops.aten._to_copy.default, (tensor,), {"dtype": dtype})
        finally:
            self.suppress -= 1
        tally = self.current
        tally.op_calls += 1
        tally.launches += 1
        tally.ops["_to_copy (autocast)"] += 1
        tally.autocast_casts += 1
        tally.autocast_cast_bytes += aten.nbytes(tensor) + aten.nbytes(out)
        tally.weight_casts += weight
        return out

    def apply_autocast(self, func, args: tuple, kwargs: dict, dtype: torch.dtype) -> tuple[tuple, dict]:
        op = aten.name(func)
        if op in LOWER:
            to = dtype
        elif op in FP32:
            to = torch.float32
        elif op in FP32_BY_DTYPE:
            if args and isinstance(args[0], torch.Tensor) and args[0].dtype in LOWER_DTYPES \
                    and kwargs.get("dtype") is None and not self.places.on_host(args[0]):
                kwargs = {**kwargs, "dtype": torch.float32}
            return args, kwargs
        elif op in PROMOTE:
            floats = [x for x in tree_flatten((args, kwargs))[0] if eligible(x)]
            if not floats:
                return args, kwargs
            to = torch.float32 if any(x.dtype == torch.float32 for x in floats) else floats[0].dtype
        else:
            return args, kwargs
        if op in FP32 and not any(eligible(x) and x.dtype in LOWER_DTYPES for x in tree_flatten(args)[0]):
            return args, kwargs
        cast = lambda x: self.cast(x, to) if eligible(x) else x  # noqa: E731
        return tree_map(cast, args), tree_map(cast, kwargs)


def _tensors(values) -> list[torch.Tensor]:
    """The tensors among `values`, one level of lists/tuples opened (ATen arguments are no deeper)."""
    out = []
    for value in values:
        if isinstance(value, torch.Tensor):
            out.append(value)
        elif isinstance(value, (list, tuple)):
            out.extend(x for x in value if isinstance(x, torch.Tensor))
    return out


def _short(path: str) -> str:
    """A readable path: relative to the repository or to site-packages."""
    p = Path(path)
    for marker in ("site-packages",):
        if marker in p.parts:
            return str(Path(*p.parts[p.parts.index(marker) + 1:]))
    root = Path(__file__).resolve().parents[2]
    try:
        return str(p.resolve().relative_to(root))
    except ValueError:
        return path


def _kernel_on_cuda(func) -> bool:
    """Composite overloads that CUDA runs as one kernel: ``upsample_*.vec`` (``F.interpolate``) reaches
    the CUDA upsampling kernel, while its Python decomposition (torch._decomp) computes index tables
    with float/int conversions and a float32 round trip that no CUDA run makes."""
    return aten.name(func).startswith(("upsample_", "_upsample_"))


class _Dispatch(TorchDispatchMode):
    def __init__(self, counter: Counter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        counter, kwargs = self.counter, kwargs or {}
        if counter.suppress:
            return counter.run(func, args, kwargs)[0]
        dtype = counter.autocast.active()
        if dtype is not None:
            args, kwargs = counter.apply_autocast(func, args, kwargs, dtype)
        if torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), _COMPOSITE) and not _kernel_on_cuda(func):
            # Under inference_mode a composite operator (linear, conv2d, layer_norm, normalize...)
            # reaches this mode whole: count the operators it is made of, as a grad-mode run would.
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out, inputs, host = counter.run(func, args, kwargs)
        counter.account(func, args, kwargs, out, inputs, host)
        return out


class _Function(TorchFunctionMode):
    def __init__(self, counter: Counter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        counter, kwargs = self.counter, kwargs or {}
        if counter.suppress:
            return func(*args, **kwargs)
        places = counter.places
        if func is F.scaled_dot_product_attention:
            return self._attention(func, args, kwargs)
        if func in _FROM_DATA:
            data, device = args[0] if args else kwargs.get("data"), kwargs.get("device")
            out = func(*args, **kwargs)
            from_device = isinstance(data, torch.Tensor) and not places.on_host(data)
            if device is None:
                if not from_device:
                    places.set_host(out)
            elif not from_device:
                counter.upload(out)
                places.set_device(out)
            return out
        if func in _FACTORIES:
            out = func(*args, **kwargs)
            if kwargs.get("device") is None:
                places.set_host(out)
            return out
        if func is torch.Tensor.to or func is torch.Tensor.cuda:
            return self._to(func, args, kwargs)
        if func is torch.Tensor.cpu:
            tensor = args[0]
            if not places.on_host(tensor):
                counter.sync(".cpu()", aten.nbytes(tensor))
            out = func(*args, **kwargs)
            if counter.shapes_only:  # uninitialised values must not reach the host (NaN boxes...)
                with _disable_current_modes():  # really zeros, not a shape-only result
                    out = torch.zeros_like(out)
            elif out is tensor:
                out = torch.ops.aten.alias.default(tensor)
            places.set_host(out)
            return out
        if func in _HOST_READS:
            tensor = args[0]
            if not places.on_host(tensor):
                counter.sync(_HOST_READS[func], aten.nbytes(tensor))
            return func(*args, **kwargs)
        if func in _SCALAR_READS:
            counter.scalar_kind = _SCALAR_READS[func]
        return func(*args, **kwargs)

    def _to(self, func, args, kwargs):
        counter, tensor = self.counter, args[0]
        if func is torch.Tensor.cuda:
            device = torch.device("cuda")
        else:
            device = torch._C._nn._parse_to(*args[1:], **kwargs)[0]
        out = func(*args, **kwargs)
        if device is not None and counter.places.on_host(tensor):
            counter.upload(tensor)
            if out is tensor:
                out = torch.ops.aten.alias.default(tensor)
            counter.places.set_device(out)
        return out

    def _attention(self, func, args, kwargs):
        """Scaled-dot-product attention as one launch (a fused kernel on CUDA), FLOPs counted here."""
        counter = self.counter
        names = ("query", "key", "value", "attn_mask")
        given = dict(zip(names, args))
        given.update({k: v for k, v in kwargs.items() if k in names})
        rest = {k: v for k, v in kwargs.items() if k not in names}
        q, k, v, mask = given["query"], given["key"], given["value"], given.get("attn_mask")
        dtype = counter.autocast.active()
        if dtype is not None:
            q, k, v = (counter.cast(x, dtype) for x in (q, k, v))
            if mask is not None and mask.is_floating_point():
                mask = counter.cast(mask, dtype)
        tally = counter.current
        tally.op_calls += 1
        tally.launches += 1
        tally.ops["scaled_dot_product_attention"] += 1
        tally.flops += sdpa_flops(q, k, v)
        tally.attention.append({"query": list(q.shape), "key": list(k.shape), "masked": mask is not None,
                                "dtype": str(q.dtype).replace("torch.", ""), "where": counter.where()})
        counter.suppress += 1
        try:
            if counter.shapes_only:
                out = torch.empty((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
            else:
                out = func(q, k, v, mask, **rest)
        finally:
            counter.suppress -= 1
        if counter.places.all_host([q, k, v]):
            counter.places.set_host(out)
        return out


@contextlib.contextmanager
def _emulated_autocast(counter: Counter) -> Iterator[None]:
    """``torch.autocast`` contexts opened on the counted thread are emulated (CUDA's rules), not run."""
    cls = torch.amp.autocast_mode.autocast
    init, enter, exit_ = cls.__init__, cls.__enter__, cls.__exit__

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            init(self, device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)
        if dtype is None:
            dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
        self._counted = (bool(enabled), dtype)

    def __enter__(self):
        if threading.get_ident() != counter.thread or not hasattr(self, "_counted"):
            return enter(self)
        counter.autocast.enter(*self._counted)
        return self

    def __exit__(self, *exc):
        if threading.get_ident() != counter.thread or not hasattr(self, "_counted"):
            return exit_(self, *exc)
        counter.autocast.exit()
        return False

    cls.__init__, cls.__enter__, cls.__exit__ = __init__, __enter__, __exit__
    try:
        yield
    finally:
        cls.__init__, cls.__enter__, cls.__exit__ = init, enter, exit_


@contextlib.contextmanager
def count(autocast: torch.dtype | None = None, shapes_only: bool = False,
          nonblocking_uploads: Sequence[Callable] = (), skip_files: Sequence[str] = ()) -> Iterator[Counter]:
    """Count the GPU cost of the code run inside, on this thread.

    Args:
        autocast: emulate ``torch.autocast("cuda", dtype)`` around everything (the reference
            predictor is run by users that way); contexts the code opens itself are always emulated.
        shapes_only: run operators on the meta device with uninitialised results (``shapes``).
        nonblocking_uploads: functions whose host->device copies are pinned and non-blocking
            (promptrack's ``trackers.transfer.upload``): their bytes count, not as syncs.
        skip_files: path prefixes skipped (besides torch and this package) when locating a sync.
    """
    counter = Counter(autocast, shapes_only, nonblocking_uploads, skip_files)
    with _emulated_autocast(counter), _Function(counter), _Dispatch(counter):
        yield counter
