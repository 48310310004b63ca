"""Layout adapters: present an NCHW-input / OIHW-kernel implementation (PyTorch's layout) in
nnref's NHWC / HWIO contract, so it needs no hand transposes.

Only array layouts change; hyperparameters keep nnref's form (``strides``, ``dilations`` and
``ksize`` as ``[h, w]``, padding ``"SAME"`` / ``"VALID"`` / ``[[0, 0], [t, b], [l, r], [0, 0]]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


def _to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def _to_nhwc(x: Any) -> Any:
    return None if x is None else np.ascontiguousarray(np.moveaxis(np.asarray(x), 1, -1))


def _hwio_to_oihw(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _oihw_to_hwio(w: Any) -> Any:
    return None if w is None else np.ascontiguousarray(np.asarray(w).transpose(2, 3, 1, 0))


#: Per op: how each positional input goes in, how the output comes back, and how each
#: gradient comes back (its input's inverse).
_ADAPT: dict[str, tuple[tuple[Callable, ...], Callable, tuple[Callable, ...]]] = {
    "conv2d": ((_to_nchw, _hwio_to_oihw), _to_nhwc, (_to_nhwc, _oihw_to_hwio)),
    "max_pool2d": ((_to_nchw,), _to_nhwc, (_to_nhwc,)),
    "bias_add": ((_to_nchw, np.asarray), _to_nhwc, (_to_nhwc, np.asarray)),
}


class NCHW(Mapping):
    """``target``'s ops, with ``conv2d``, ``max_pool2d`` and ``bias_add`` taking NCHW inputs
    (and OIHW kernels) inside, NHWC / HWIO outside. Every other name passes through."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.__name__ = f"NCHW({getattr(target, '__name__', type(target).__name__)})"

    def _get(self, name: str) -> Any:
        if isinstance(self.target, Mapping):
            return self.target.get(name)
        return getattr(self.target, name, None)

    def __getitem__(self, name: str) -> Any:
        fn = self._get(name)
        if fn is None:
            raise KeyError(name)
        for base, (ins, out, grads) in _ADAPT.items():
            if name == base:
                return lambda *a, **st: out(fn(*(f(x) for f, x in zip(ins, a, strict=True)), **st))
            if name == base + "_fwd":

                def fwd(
                    *a: Any, _fn: Callable = fn, _ins: tuple = ins, _out: Callable = out, **st: Any
                ):
                    y, res = _fn(*(f(x) for f, x in zip(_ins, a, strict=True)), **st)
                    return _out(y), res

                return fwd
            if name == base + "_bwd":

                def bwd(res: Any, dy: Any, _fn: Callable = fn, _g: tuple = grads) -> tuple:
                    gs = _fn(res, _to_nchw(np.asarray(dy)))
                    gs = gs if isinstance(gs, tuple | list) else (gs,)
                    return tuple(f(g) for f, g in zip(_g, gs, strict=False))

                return bwd
        return fn

    def __iter__(self) -> Iterator[str]:
        names = self.target.keys() if isinstance(self.target, Mapping) else dir(self.target)
        return iter(list(names))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def nchw(target: Any) -> NCHW:
    """Wrap an NCHW / OIHW implementation for :func:`nnref.conform.run`."""
    return NCHW(target)
