"""``nnref verify``: every op's cases against finite differences and every installed oracle.

The cases are the shared tables of :mod:`nnref.cases`; the test suite runs the same functions, so
the README's "verified against" table is measured on exactly what the tests assert. Legs:

- ``fd``: :func:`nnref.check.check_vjp` (Richardson finite differences; float32 through the
  float64 shadow) with a random cotangent, on cases where the VJP is the derivative;
- ``tf``, ``keras``: :mod:`nnref.oracles.tf` / :mod:`nnref.oracles.keras` (``GradientTape`` at a
  random cotangent; the Keras layer, loss, metric or optimizer with nnref's weights);
- ``sklearn``: :mod:`nnref.oracles.sklearn` (KFold);
- ``jax``, ``torch``: :mod:`nnref.oracles.jax` / :mod:`nnref.oracles.torch` when installed.

A leg that does not cover an op is "n/a"; a framework that is not installed is reported as such,
never as a pass. Frameworks are imported only inside their legs.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnref._validate import BROKEN_CODE
from nnref.cases import DTYPES, TABLES, make_case, reference, seed_for
from nnref.check import check_vjp
from nnref.check.compare import ORACLE_RTOL, max_rel_error

#: Every leg, in column order, with the module that implements it and the distribution it needs.
#: The extra that installs each framework (named when it is missing).
EXTRAS: dict[str, str] = {
    "tf": "tf",
    "keras": "tf",
    "sklearn": "data",
    "jax": "jax",
    "torch": "torch",
}

LEGS: dict[str, tuple[str | None, str | None]] = {
    "fd": (None, None),
    "tf": ("nnref.oracles.tf", "tensorflow"),
    "keras": ("nnref.oracles.keras", "keras"),
    "sklearn": ("nnref.oracles.sklearn", "sklearn"),
    "jax": ("nnref.oracles.jax", "jax"),
    "torch": ("nnref.oracles.torch", "torch"),
}

#: Where an oracle reports at a lower precision than the case's dtype.
LEG_RTOL: dict[tuple[str, str], float] = {
    ("accuracy", "keras"): 1e-7,  # Keras metrics accumulate and report in float32
}

__all__ = [
    "DTYPES",
    "LEGS",
    "LegResult",
    "all_cases",
    "installed",
    "leg_function",
    "make_case",
    "run_case",
    "run_fd",
    "run_oracle",
    "seed_for",
    "tolerance",
]


@dataclass(frozen=True)
class LegResult:
    op: str
    case: str
    dtype: str
    leg: str
    error: float  # worst error over the forward value and every gradient (or every step)
    worst: str  # which quantity and index
    ok: bool
    detail: str = ""


def all_cases(*, fd: bool = False, kind: str | None = "vjp") -> list[tuple[str, str]]:
    """Every (op, case) of the given kind (``None``: all kinds); with ``fd=True`` only those
    whose VJP finite differences can confirm."""
    return [
        (op, c.id)
        for op, t in TABLES.items()
        if kind is None or t.kind == kind
        for c in t.cases
        if not (fd and not c.fd)
    ]


def installed(leg: str) -> bool:
    """Whether the framework behind ``leg`` and its oracle module can be imported (checked
    without importing either)."""
    module, dist = LEGS[leg]
    return all(m is None or importlib.util.find_spec(m) is not None for m in (dist, module))


def leg_function(op: str, leg: str) -> Any:
    """The oracle function for ``op`` in ``leg``, or None when that leg does not cover it."""
    if leg not in LEGS:
        raise ValueError(f"unknown oracle leg {leg!r}; legs: {list(LEGS)}")
    module = LEGS[leg][0]
    if module is None:
        return None
    mod = importlib.import_module(module)
    kind = TABLES[op].kind
    table = {"vjp": "LEGS", "optimizer": "OPTIMIZERS"}.get(kind, "FORWARD")
    return getattr(mod, table, {}).get(op)


def tolerance(op: str, dtype: Any, leg: str | None = None) -> float:
    """The error an oracle (or a conforming implementation) may show on ``op`` in ``dtype``."""
    rtol = ORACLE_RTOL[np.dtype(dtype).name]
    return max(rtol, LEG_RTOL.get((op, leg or ""), 0.0))


def run_fd(op: str, case: str, dtype: Any) -> LegResult:
    """nnref's VJP against finite differences (the checker's own verdict and estimate)."""
    t = TABLES[op]
    ref = reference()
    args, static, _ = make_case(op, case, dtype, "fd")
    r = check_vjp(
        ref[op + "_fwd"],
        ref[op + "_bwd"],
        args,
        static=static,
        names=t.names,
        seed=seed_for(op, case, "fd"),
        raise_on_failure=False,
    )
    err, where = 0.0, ""
    for name, pair in zip(t.names, r.gradients or (), strict=False):
        if pair is not None:
            e, idx = max_rel_error(*pair)
            if e >= err:
                err, where = e, f"d{name}{list(idx)}"
    return LegResult(op, case, np.dtype(dtype).name, "fd", err, where, r.ok, r.message())


def _compare(pairs: list[tuple[str, Any, Any]], problems: list[str]) -> tuple[float, str]:
    """Worst error over ``(quantity, nnref, oracle)`` pairs; shape and dtype first."""
    worst = (0.0, "")
    for qty, a, r in pairs:
        if r is None:
            problems.append(f"{qty}: the oracle gave no value")
            continue
        a, r = np.asarray(a), np.asarray(r)
        if a.shape != r.shape:
            problems.append(f"{qty}: shape {a.shape} vs oracle {r.shape}")
            continue
        if a.dtype != r.dtype and not (a.dtype.kind in "iu" and r.dtype.kind in "iu"):
            problems.append(f"{qty}: dtype {a.dtype} vs oracle {r.dtype}")
            continue
        err, idx = max_rel_error(a, r)
        if err >= worst[0]:
            worst = (err, f"{qty}{list(idx)}")
    return worst


#: Errors that say the call itself is broken (an adapter's bug), not that the input was refused:
#: in a case that must raise, one of these is not a refusal (before, any exception counted, so a
#: crashing adapter "agreed"). Besides broken code, nnref's own adapters never refuse an input
#: by an assertion or by leaving a leg unimplemented (a user's code may: ``nnref conform``
#: counts those as refusals).
_BROKEN_CALL = (*BROKEN_CODE, NotImplementedError, AssertionError)


def _raising(fn: Any) -> tuple[str | None, bool]:
    """``(the exception type name fn() raises, whether that is a refusal of the input)``;
    ``(None, False)`` when it returns."""
    try:
        fn()
    except _BROKEN_CALL as e:
        return f"{type(e).__name__} ({e}: a broken call, not a refusal)", False
    except Exception as e:  # any framework's error type counts as refusing the input
        return type(e).__name__, True
    return None, False


def run_case(op: str, case: str, dtype: Any, leg: str, oracle: Any) -> LegResult:
    """nnref against ``oracle`` (a leg function of the op's kind) on one case."""
    t = TABLES[op]
    c = t.case(case)
    dt = np.dtype(dtype)
    ref = reference()
    args, static, rng = make_case(op, case, dt, leg)
    problems: list[str] = []
    conv = _framework_convention(op, c.pins, leg, args, static)
    note = f"compared under the {leg} profile: {conv.says}" if conv is not None else ""
    if c.raises if conv is None else conv.expect(args, static, None).raises:
        ours, ours_ok = (
            _raising(lambda: ref[op + "_fwd"](*args, **static))
            if conv is None
            else (f"({conv.id} refuses)", True)
        )
        dy = np.zeros(np.shape(args[0]), dt)
        theirs, theirs_ok = _raising(lambda: oracle(args, static, dy))
        ok = ours_ok and theirs_ok
        detail = "; ".join(filter(None, [f"nnref raises {ours}, {leg} raises {theirs}", note]))
        return LegResult(op, case, dt.name, leg, 0.0 if ok else np.inf, "", ok, detail)
    if t.kind == "vjp":
        if conv is None:
            y, res = ref[op + "_fwd"](*args, **static)
            dy = rng.standard_normal(np.shape(y)).astype(dt)
            grads = ref[op + "_bwd"](res, dy)
        else:
            shape = np.shape(conv.expect(args, static, None).y)
            dy = rng.standard_normal(shape).astype(dt)
            e = conv.expect(args, static, dy)
            y, grads = e.y, e.grads
        y_ref, g_ref = oracle(args, static, dy)
        pairs = [("y", y, y_ref)] + [
            (f"d{name}", g, r)
            for name, a, g, r in zip(t.names, args, grads, g_ref, strict=False)
            if isinstance(a, np.ndarray) and a.dtype.kind == "f"
        ]
    elif t.kind == "optimizer":
        from nnref.cases.optim import trajectory

        ours = trajectory(ref[op](**static), *args)
        theirs = oracle(args, static)
        pairs = [
            (f"step {s + 1} param {i}", a, r)
            for s, (ps, rs) in enumerate(zip(ours, theirs, strict=True))
            for i, (a, r) in enumerate(zip(ps, rs, strict=True))
        ]
    elif t.kind == "batches":
        ours = ref[op](*args, **static)
        _, _, rng2 = make_case(op, case, dt, leg)  # the oracle draws from the same stream
        theirs = oracle((*args[:-1], rng2), static)
        if len(ours) != len(theirs):
            problems.append(f"{len(ours)} batches vs oracle {len(theirs)}")
        pairs = [(f"batch {i}", a, r) for i, (a, r) in enumerate(zip(ours, theirs, strict=False))]
    else:
        pairs = [("y", ref[op](*args, **static), oracle(args, static))]
    err, where = _compare(pairs, problems)
    ok = not problems and err <= tolerance(op, dt, leg)
    return LegResult(op, case, dt.name, leg, err, where, ok, "; ".join([*problems, note][:2]))


def _framework_convention(
    op: str, pins: tuple[str, ...], leg: str, args: tuple, static: dict
) -> Any:
    """The framework convention the ``leg`` oracle follows on these inputs, if any: its module
    lists the measured differences (``FOLLOWS``, ids of :mod:`nnref.oracles.semantics`) where
    it returns the framework's own behaviour instead of TF's definition."""
    module = LEGS[leg][0]
    if leg not in ("jax", "torch") or module is None:
        return None
    from nnref.cases.conventions import framework_convention

    follows = getattr(importlib.import_module(module), "FOLLOWS", frozenset())
    return framework_convention(op, pins, leg, follows, args, static)


def run_oracle(op: str, case: str, dtype: Any, leg: str) -> LegResult:
    """nnref against the ``leg`` oracle on one case (the leg must cover the op)."""
    fn = leg_function(op, leg)
    if fn is None:
        raise ValueError(f"the {leg} oracle does not cover {op}")
    return run_case(op, case, dtype, leg, fn)


# --------------------------------------------------------------------------- initializers

#: (nnref.init name, shape): Keras' formulas for fans, limits and stddev; NumPy cannot draw
#: TF's Philox streams, so the samples are compared by their statistics.
INITIALIZERS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("glorot_uniform", (784, 300)),
    ("glorot_uniform", (5, 3, 7, 64)),
    ("random_normal", (300, 400)),
    ("uniform", (300, 400)),
    ("zeros", (3, 4)),
    ("ones", (3, 4)),
)

#: A statistic may differ from Keras' by this many standard errors of the difference of two
#: independent samples' statistics (a wrong fan, bound or stddev moves them by hundreds).
INIT_Z = 5.0

#: Kurtosis of the distributions (the standard error of a sample's std depends on it).
_KURTOSIS = {"glorot_uniform": 1.8, "uniform": 1.8, "random_normal": 3.0}


def run_initializer(name: str, shape: tuple[int, ...], dtype: Any = np.float64) -> LegResult:
    """nnref's sample against ``keras.initializers``' (same shape and dtype), by statistics:
    the error is the worst difference in mean and standard deviation (and, for uniform
    distributions, largest magnitude) in standard errors of that difference; exact for the
    constant initializers."""
    from nnref import init
    from nnref.oracles.keras import initializer_sample

    dt = np.dtype(dtype)
    ours = getattr(init, name)(seed_for("init", name, shape), shape, dt)
    theirs = initializer_sample(name, shape, dt)
    case = "x".join(map(str, shape))
    if name in ("zeros", "ones"):
        err = float(np.max(np.abs(ours - theirs))) if ours.shape == theirs.shape else np.inf
        return LegResult("initializers", f"{name} {case}", dt.name, "keras", err, "", err == 0)
    n, sd = ours.size, float(theirs.std())
    se = {  # standard errors of the difference of the two samples' statistics
        "mean": sd * np.sqrt(2 / n),
        "std": sd * np.sqrt(2 * (_KURTOSIS[name] - 1) / (4 * n)),
    }
    stats = {"mean": (ours.mean(), theirs.mean()), "std": (ours.std(), theirs.std())}
    if _KURTOSIS[name] < 2:  # uniform: the largest magnitude is within ~limit / n of the limit
        se["max|w|"] = float(np.abs(theirs).max()) * 4 / n
        stats["max|w|"] = (np.abs(ours).max(), np.abs(theirs).max())
    z = {k: abs(float(a) - float(b)) / se[k] for k, (a, b) in stats.items()}
    worst = max(z, key=z.__getitem__)
    ok = ours.dtype == theirs.dtype and z[worst] <= INIT_Z
    detail = ", ".join(f"{k} {float(a):.5g} vs {float(b):.5g}" for k, (a, b) in stats.items())
    return LegResult(
        "initializers", f"{name} {case}", dt.name, "keras", z[worst], worst, ok, detail
    )
