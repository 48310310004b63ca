"""Loading a conformance target and finding the ops it provides, by nnref's names.

A target is a module, an object or a mapping. For a differentiable op ``NAME`` it may provide
``NAME_fwd(*inputs, **hyper) -> (y, residuals)`` with ``NAME_bwd(residuals, dy)`` (forward and
VJP checked) or the plain ``NAME(*inputs, **hyper)`` (forward only); for the other functions
(``argmax``, ``accuracy``, ``one_hot``, ``kfold_sizes``, ``kfold_batches``) and the optimizer
factories (``sgd``, ``adam``, ``rmsprop``) the function itself.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import numbers
import reprlib
import signal
import sys
import threading
import types
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnref._signals import handled
from nnref._validate import BROKEN_CODE
from nnref.cases import TABLES
from nnref.check.compare import first_bit_difference
from nnref.conform._report import entry


class TargetError(ValueError):
    """The target cannot be loaded (a usage error: ``nnref conform`` exits 2)."""


class NoSelectedOpsError(TargetError):
    """The target provides none of the ops selected (``ops=``, ``--op``): nothing to check."""


class OutputError(Exception):
    """The target returned something that is not what the contract asks (not ``(y,
    residuals)``, not an array NumPy can take): its failure, reported in its row, and never a
    refusal of the input."""


@contextlib.contextmanager
def each_warning_once() -> Iterator[None]:
    """The warnings raised inside, shown once each after (same message, category and place),
    under the caller's filters: Hypothesis' examples, and every ``catch_warnings`` around a
    call, reset the registry that shows a warning once per place, and a target's deprecation
    warning was printed for every check and drawn example (202 times for relu's 28 checks at 50
    examples). An ``error`` filter still raises at the call (a finding in its row)."""
    seen: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded:
            try:
                yield
            finally:
                seen += recorded
    finally:  # also when the check failed: its warnings are part of the story
        shown: set[tuple] = set()
        for w in seen:
            key = (str(w.message), w.category, w.filename, w.lineno)
            if key not in shown:
                shown.add(key)
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


class CallTimeout(BaseException):
    """A call of the target ran past the run's ``call_timeout``: raised inside it by SIGALRM,
    where Python next runs (a ``BaseException``, so that the target's ``except Exception``
    does not take it for its own error; raised again every ``call_timeout`` seconds should its
    code catch it anyway). A finding in the call's row, never a refusal of the input."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no result within {seconds:g} s (the run's call_timeout)")
        self.seconds = seconds


class CallTimeoutError(ValueError):
    """``call_timeout`` cannot limit the calls here (its value, the platform, the thread, a
    timer already running)."""


class _Limit(threading.local):
    seconds: float | None = None  # the run's call_timeout, while it runs
    inside: bool = False  # a call of the target is running: an alarm now interrupts it


_LIMIT = _Limit()

#: Accepted ``call_timeout`` values, in seconds. The alarm repeats while a call runs, and at
#: 1 ms it also landed in the finalizers and hooks the interpreter ran meanwhile (pytest's
#: unraisable-exception hook failed); above a million ``setitimer`` overflows on some systems.
TIMEOUT_RANGE = (1e-2, 1e6)


def _alarm(signum: int, frame: Any) -> None:
    # Only the target's code is interrupted: an alarm that lands in nnref's bookkeeping around
    # it (arming, catching, disarming: :func:`call` and :func:`call_limit`'s frames) or after
    # the call ended (``inside`` cleared) does nothing; the interval timer fires again.
    if not _LIMIT.inside or _LIMIT.seconds is None:
        return
    if frame is not None and frame.f_code in _OWN_FRAMES:
        return
    raise CallTimeout(_LIMIT.seconds)


def check_call_timeout(seconds: Any) -> float | None:
    """``seconds`` as a float (None stays None), or the :class:`CallTimeoutError` (a
    ValueError) that says why it cannot limit the calls here."""
    if seconds is None:
        return None
    lo, hi = TIMEOUT_RANGE
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, numbers.Real)
        or not (lo <= seconds <= hi)
    ):
        raise CallTimeoutError(
            f"call_timeout must be a number of seconds from {lo:g} to {hi:g}, got {seconds!r}"
        )
    if not hasattr(signal, "setitimer"):
        raise CallTimeoutError("call_timeout needs SIGALRM and signal.setitimer (POSIX systems)")
    if threading.current_thread() is not threading.main_thread():
        raise CallTimeoutError("call_timeout needs the main thread (Python handles signals there)")
    if _LIMIT.seconds is not None:
        raise CallTimeoutError("call_timeout: a run with a call timeout is already running")
    if signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
        raise CallTimeoutError(
            "call_timeout: the caller's real-time interval timer (SIGALRM) is running"
        )
    return float(seconds)


@contextlib.contextmanager
def call_limit(seconds: float | None) -> Iterator[None]:
    """Within, each :func:`call` of the target that runs longer than ``seconds`` has
    :class:`CallTimeout` raised inside it (None: no limit). Uses SIGALRM and the real-time
    interval timer, restored after: POSIX, main thread. A call stuck inside C code that never
    returns to Python (a long BLAS call, a C extension's loop) is interrupted when it does."""
    limit = check_call_timeout(seconds)
    if limit is None:
        yield
        return
    with handled([signal.SIGALRM], _alarm):
        _LIMIT.seconds = limit
        try:
            yield
        finally:  # disarmed first: the handler is put back only once no alarm can come
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
            finally:  # also when Ctrl-C lands as setitimer returns
                _LIMIT.seconds = None
                _LIMIT.inside = False


def _invoke(fn: Callable[[], Any]) -> Any:
    # The target's code runs in frames below this one, never in call()'s own: a C function
    # passed as ``fn`` checks for signals in the frame that called it.
    return fn()


def call(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """``(fn(), None)``, or ``(None, error)`` when the target's code raises: any exception,
    ``sys.exit`` included, is a finding for its row. Ctrl-C still stops the run. Under
    :func:`call_limit`, the outermost call is timed (:class:`CallTimeout` is its error; a
    call nested in it lets the timeout through to the outermost)."""
    limit = _LIMIT.seconds
    if limit is None or _LIMIT.inside:  # no limit, or inside a timed call already
        try:
            return _invoke(fn), None
        except (KeyboardInterrupt, CallTimeout):
            raise
        except BaseException as e:
            return None, e
    try:
        _LIMIT.inside = True
        if signal.getsignal(signal.SIGALRM) is not _alarm:  # the target's code replaced it
            signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, limit, limit)
        try:
            out = _invoke(fn), None
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            out = None, e
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            _LIMIT.inside = False
    return out


def call_untimed(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """:func:`call` for nnref's own code between the target's calls (the conventions'
    expected values): never timed."""
    try:
        return fn(), None
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        return None, e


#: nnref's own frames around a timed call, where an alarm is ignored (see :func:`_alarm`).
_OWN_FRAMES = frozenset({call.__code__, call_limit.__wrapped__.__code__})


def refused(e: BaseException | None) -> bool:
    """Whether the target refused the input: it raised an exception (not ``sys.exit``, not a
    malformed result, not one that says its own code is broken: ``BROKEN_CODE``, a NameError
    from a typo in the branch that was to raise). An ``assert`` on the input or a
    NotImplementedError is a user's way of refusing it, and counts."""
    return isinstance(e, Exception) and not isinstance(e, (OutputError, *BROKEN_CODE))


def describe(e: BaseException) -> str:
    """How a row names the target's exception."""
    if isinstance(e, SystemExit):
        return f"SystemExit (it called sys.exit({e.code!r}))"
    if isinstance(e, BROKEN_CODE):
        return f"{type(e).__name__}: {e} (its code is broken: not a refusal of the input)"
    return f"{type(e).__name__}: {e}"


def shown(v: Any) -> str:
    """A value the target returned, as a row shows it: its type and a short repr."""
    return f"{type(v).__name__} {reprlib.repr(v)}"


def as_array(what: str, v: Any) -> np.ndarray:
    """``v`` as an array, else :class:`OutputError` naming ``what`` returned it and the value
    (a ragged list, an object whose ``__array__`` raises)."""
    a, e = call(lambda: np.asarray(v))
    if e is not None:
        raise OutputError(
            f"{what} returned {shown(v)}, which NumPy cannot take as an array ({describe(e)})"
        )
    return a


def as_gradients(what: str, g: Any) -> tuple[np.ndarray | None, ...]:
    """A backward's result as a tuple of arrays (None kept, for integer inputs); a
    single-input op may return the gradient alone."""
    g = tuple(g) if isinstance(g, tuple | list) else (g,)
    return tuple(
        None if gi is None else as_array(f"{what} (gradient {i})", gi) for i, gi in enumerate(g)
    )


@dataclass(frozen=True)
class Change:
    """An argument the target modified in place: its name, the first changed entry, and how it
    changed (``arg="x"``, ``where="x[0, 1]"``, ``what="-0.5 became 0.0 (3 of 12 entries
    changed)"``)."""

    arg: str
    where: str
    what: str


def first_change(args: Sequence[tuple[str, Any, Any]]) -> Change | None:
    """The first of ``(name, pristine, given)`` whose ``given`` (what the target got) no longer
    equals ``pristine`` (nnref's own copy, never passed): arrays bit for bit (so NaN equals the
    same NaN, and -0.0 written over 0.0 counts), with shape and dtype; lists, tuples and dicts
    item by item. Other values are immutable (numbers, strings) or opaque, and not compared."""
    for name, p, g in args:
        change = _change(name, p, g)
        if change is not None:
            return Change(name, *change)
    return None


def backward_change(
    dy: np.ndarray,
    passed: np.ndarray,
    named: Sequence[tuple[str, Any, Any]],
    kept: Sequence[tuple[str, Any, Any]],
) -> tuple[str, Change] | None:
    """What a backward call modified in place, as ``(what, change)``: its cotangent (``dy``
    pristine, ``passed`` what it got), else one of the forward's inputs (``named``: reached
    through the residuals), else another array of the residuals (``kept``, from
    :func:`residual_arrays` before the call); None when it left all of them as they were."""
    for what, args in (
        ("its cotangent", [("dy", dy, passed)]),
        ("the forward's input", named),
        ("the forward's residual", kept),
    ):
        change = first_change(args)
        if change is not None:
            return what, change
    return None


def named_args(
    names: Sequence[str],
    pristine: tuple[tuple[Any, ...], dict[str, Any]],
    given: tuple[tuple[Any, ...], dict[str, Any]],
) -> list[tuple[str, Any, Any]]:
    """``(name, pristine, given)`` per argument of a call, for :func:`first_change`: positional
    ones by the op's ``names`` (``argument i`` past them), keyword ones by keyword."""
    (args, static), (gargs, gstatic) = pristine, given
    out = [
        (names[i] if i < len(names) else f"argument {i}", a, g)
        for i, (a, g) in enumerate(zip(args, gargs, strict=True))
    ]
    return out + [(k, v, gstatic.get(k)) for k, v in static.items()]


#: How the checks name a backward's residuals (the repro snippets bind them to ``res``).
RES = "res"
#: How many steps from :data:`RES` :func:`residual_arrays` goes (``res.a[0]['k'].y`` is 4).
RES_DEPTH = 4
#: Values the walk does not look into: immutable ones, and modules, classes and functions
#: (whose attributes are globals, not what a forward saved).
_OPAQUE = (
    str,
    bytes,
    int,
    float,
    complex,
    np.generic,
    np.dtype,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)


def is_residual(where: str) -> bool:
    """Whether ``where`` names something in the residuals (``res``, ``res.y``, ``res[0]``)."""
    return where == RES or where.startswith((f"{RES}.", f"{RES}["))


def residual_arrays(res: Any, root: str = RES) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(where, copy, array)`` for every array reachable in a forward's residuals (or another
    opaque value, such as an optimizer's state, named ``root``), for :func:`first_change` after
    the call: ``where`` names it from ``root`` (``res.y``, ``res[0]``, ``res['mask']``,
    ``res.saved[1].y``), ``copy`` is its pristine copy.

    The walk goes through tuples (NamedTuples by field name), lists, dicts and object
    attributes (``__dict__`` and ``__slots__``, dataclasses included), at most
    :data:`RES_DEPTH` steps, breadth first (each object once, by its shortest path: cycles
    end, and an object also reachable further down is not cut off by the depth there), reading
    attributes without calling anything (no property, no ``__getattr__``, no pickling). Object
    arrays (references, not values) and other values are skipped."""
    out: list[tuple[str, np.ndarray, np.ndarray]] = []
    seen: set[int] = set()
    todo: deque[tuple[str, Any, int]] = deque([(root, res, 0)])
    while todo:
        where, v, depth = todo.popleft()
        if id(v) in seen or isinstance(v, _OPAQUE) or v is None:
            continue
        seen.add(id(v))
        if isinstance(v, np.ndarray):
            if v.dtype.kind != "O":
                out.append((where, v.copy(), v))
        elif depth < RES_DEPTH:
            todo.extend((w, u, depth + 1) for w, u in _items(where, v))
    return out


def _items(where: str, v: Any) -> list[tuple[str, Any]]:
    """The items of a container or an object's attributes, each named from ``where``."""
    if isinstance(v, tuple) and hasattr(type(v), "_fields"):  # a NamedTuple
        return [(f"{where}.{f}", u) for f, u in zip(type(v)._fields, v, strict=False)]
    if isinstance(v, list | tuple):
        return [(f"{where}[{i}]", u) for i, u in enumerate(v)]
    if isinstance(v, dict):
        return [(f"{where}[{k!r}]", u) for k, u in dict.items(v)]
    attrs: dict[str, Any] = {}
    with contextlib.suppress(AttributeError, TypeError):
        attrs.update(object.__getattribute__(v, "__dict__"))
    for cls in type(v).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in [slots] if isinstance(slots, str) else slots:
            if name not in attrs and name not in ("__dict__", "__weakref__"):
                with contextlib.suppress(AttributeError):  # an unset slot
                    attrs[name] = object.__getattribute__(v, name)
    return [(f"{where}.{k}", u) for k, u in attrs.items() if isinstance(k, str)]


def _change(where: str, p: Any, g: Any) -> tuple[str, str] | None:
    if isinstance(p, np.ndarray):
        return _array_change(where, p, g)
    if isinstance(p, list | tuple | dict):
        if type(g) is not type(p) or len(g) != len(p):
            return where, f"{shown(p)} became {shown(g)}"
        if isinstance(p, dict):
            if set(g) != set(p):
                return where, f"keys {sorted(map(str, p))} became {sorted(map(str, g))}"
            items = [(f"{where}[{k!r}]", p[k], g[k]) for k in p]
        else:
            items = [(f"{where}[{i}]", u, v) for i, (u, v) in enumerate(zip(p, g, strict=True))]
        for w, u, v in items:
            if isinstance(u, np.ndarray | list | tuple | dict):
                change = _change(w, u, v)
            else:  # an item replaced: x[0] = 5 in a list
                change = None if _same_scalar(u, v) else (w, f"{u!r} became {v!r}")
            if change is not None:
                return change
    return None


def _same_scalar(u: Any, v: Any) -> bool:
    if type(u) is not type(v):
        return False
    try:
        return bool(u is v or u == v or (u != u and v != v))  # NaN stays NaN
    except Exception:  # an opaque object: not compared
        return True


def _array_change(where: str, p: np.ndarray, g: Any) -> tuple[str, str] | None:
    if not isinstance(g, np.ndarray):
        return where, f"an array became {shown(g)}"
    if g.shape != p.shape or g.dtype != p.dtype:  # ``x.shape = ...``, ``x.dtype = ...``
        return where, f"{p.dtype}{list(p.shape)} became {g.dtype}{list(g.shape)}"
    diff = first_bit_difference(p, g)
    if diff is None:
        return None
    idx, n = diff
    # str: a float32 shown with its own shortest digits (format() would widen it to float64)
    return entry(where, idx), f"{p[idx]!s} became {g[idx]!s} ({n} of {p.size} entries changed)"


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

    @property
    def forward_name(self) -> str:
        """The function :meth:`forward` calls, as rows name it: ``NAME_fwd`` or ``NAME``."""
        return f"{self.op}_fwd" if self.fwd is not None else self.op

    def forward(self, *args: Any, **static: Any) -> tuple[np.ndarray, Any]:
        """``(y, residuals)`` through ``NAME_fwd`` when provided, else ``(y, None)`` through
        the plain form; :class:`OutputError` when the result breaks the contract."""
        if self.fwd is not None:
            out = self.fwd(*args, **static)
            if not isinstance(out, tuple) or len(out) != 2:
                raise OutputError(
                    f"{self.op}_fwd must return (y, residuals), got {type(out).__name__}"
                    + (f" of length {len(out)}" if isinstance(out, tuple) else "")
                )
            y, res = out
        else:
            assert self.plain is not None  # a Provided always has fwd or plain
            y, res = self.plain(*args, **static), None
        return as_array(self.forward_name, y), res


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
    except (TargetError, KeyboardInterrupt):
        raise
    except SystemExit as e:  # caught, or main() would exit with the target's code, silently
        raise TargetError(f"target {spec!r} called sys.exit({e.code!r}) while imported") from e
    except BaseException as e:  # the target's own import failed: report it, no traceback
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
