"""Loading a conformance target and finding the ops it provides, by nnref's names.

A target is a module, an object or a mapping. For a differentiable op ``NAME`` it may provide
``NAME_fwd(*inputs, **hyper) -> (y, residuals)`` with ``NAME_bwd(residuals, dy)`` (forward and
VJP checked) or the plain ``NAME(*inputs, **hyper)`` (forward only); for the other functions
(``argmax``, ``accuracy``, ``one_hot``, ``kfold_sizes``, ``kfold_batches``) and the optimizer
factories (``sgd``, ``adam``, ``rmsprop``) the function itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnref.cases import TABLES


class TargetError(ValueError):
    """The target cannot be loaded (a usage error: ``nnref conform`` exits 2)."""


#: Built-in targets: nnref itself, and the frameworks' adapters (``nnref.oracles.*``).
BUILTIN: dict[str, str] = {
    "nnref": "nnref.cases:reference",
    "jax": "nnref.oracles.jax:conform_target",
    "torch": "nnref.oracles.torch:conform_target",
}


@dataclass(frozen=True)
class Provided:
    """What a target offers for one op: ``fwd``/``bwd`` pair, ``plain`` function, or both."""

    op: str
    fwd: Callable[..., Any] | None
    bwd: Callable[..., Any] | None
    plain: Callable[..., Any] | None

    @property
    def has_vjp(self) -> bool:
        return self.fwd is not None and self.bwd is not None

    def forward(self, *args: Any, **static: Any) -> Any:
        """The forward value, through ``NAME_fwd`` when provided, else the plain form."""
        if self.fwd is not None:
            out = self.fwd(*args, **static)
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError(
                    f"{self.op}_fwd must return (y, residuals), got {type(out).__name__}"
                    + (f" of length {len(out)}" if isinstance(out, tuple) else "")
                )
            return out[0]
        assert self.plain is not None  # a Provided always has fwd or plain
        return self.plain(*args, **static)


def _import_path(path: Path) -> Any:
    name = f"nnref_conform_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_target(spec: Any) -> tuple[str, Any]:
    """``(name, object)`` for a target given as an object, or as a string: a built-in name
    (``nnref``, ``jax``, ``torch``), ``module``, ``module:attribute`` or a ``.py`` path."""
    if not isinstance(spec, str):
        return getattr(spec, "__name__", type(spec).__name__), spec
    text = BUILTIN.get(spec, spec)
    try:
        if text.endswith(".py") or Path(text).is_file():
            path = Path(text)
            if not path.is_file():
                raise TargetError(f"target file {text} does not exist")
            return spec, _import_path(path)
        module_name, _, attr = text.partition(":")
        if not module_name:
            raise TargetError(f"target {spec!r} names no module")
        if importlib.util.find_spec(module_name.split(".")[0]) is None:
            hint = " (a .py path must exist)" if "/" in module_name else ""
            raise TargetError(f"no module named {module_name!r}{hint}")
        obj = importlib.import_module(module_name)
        for part in filter(None, attr.split(".")):
            if not hasattr(obj, part):
                raise TargetError(f"module {module_name!r} has no attribute {part!r}")
            obj = getattr(obj, part)
    except TargetError:
        raise
    except Exception as e:  # the target's own import failed: report it, no traceback
        raise TargetError(f"importing target {spec!r} failed: {type(e).__name__}: {e}") from e
    if spec in BUILTIN and callable(obj):
        obj = obj()  # built-in targets are factories (frameworks are imported on use)
    return spec, obj


def _lookup(target: Any, name: str) -> Any:
    if isinstance(target, Mapping):
        return target.get(name)
    return getattr(target, name, None)


def provided_ops(target: Any) -> dict[str, Provided]:
    """Every op of the case tables the target provides, by nnref's names."""
    out = {}
    for op, table in TABLES.items():
        if table.kind == "vjp":
            fwd, bwd, plain = (_lookup(target, op + s) for s in ("_fwd", "_bwd", ""))
            if fwd is not None or plain is not None:
                out[op] = Provided(op, fwd, bwd if fwd is not None else None, plain)
        else:
            fn = _lookup(target, op)
            if fn is not None:
                out[op] = Provided(op, None, None, fn)
    return out
