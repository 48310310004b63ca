"""``nnref conform``: run nnref's verified cases against anyone's implementation.

An implementation (a module, an object or a mapping) provides ops by nnref's names in nnref's
contract: ``NAME_fwd(*inputs, **hyper) -> (y, residuals)`` with ``NAME_bwd(residuals, dy)``
(forward and VJP checked) or the plain ``NAME(*inputs, **hyper)`` (forward only); ops it does
not provide are listed as such, never failed. Every case comes from :mod:`nnref.cases`, whose
expected values nnref's own tests check against TF / Keras / scikit-learn.

>>> import nnref.conform
>>> report = nnref.conform.run("my_layers", ops=["conv2d"])  # doctest: +SKIP
>>> print(report.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnref._validate import is_int
from nnref.cases import TABLES
from nnref.cases.conventions import CONVENTIONS, PROFILES, Convention, Expected, Profile
from nnref.conform._checks import Context, Task, tasks_for
from nnref.conform._checks import case_inputs as _case_inputs
from nnref.conform._layout import NCHW, nchw
from nnref.conform._report import CHECKS, ConformanceReport, Row
from nnref.conform._target import (
    BUILTIN,
    CallTimeout,
    CallTimeoutError,
    NoSelectedOpsError,
    TargetError,
    call,
    call_limit,
    check_call_timeout,
    describe,
    each_warning_once,
    load_target,
    provided_ops,
)
from nnref.conform._vectors import export_vectors as _export

__all__ = [
    "BUILTIN",
    "CHECKS",
    "CONVENTIONS",
    "NCHW",
    "PROFILES",
    "CallTimeout",
    "CallTimeoutError",
    "ConformInterrupted",
    "ConformanceReport",
    "Convention",
    "Expected",
    "NoSelectedOpsError",
    "Profile",
    "Row",
    "TargetError",
    "Task",
    "case_inputs",
    "expected_values",
    "export_vectors",
    "load_target",
    "nchw",
    "plan",
    "pytest_cases",
    "run",
    "run_plan",
]

DTYPE_NAMES = ("float64", "float32")


def _profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; profiles: {sorted(PROFILES)}")
    return PROFILES[name]


def _names(what: str, v: Any) -> list[str] | None:
    """``ops`` or ``dtypes`` as a list: one name alone is that name (not its letters), a NumPy
    dtype its name, a name given twice once."""
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if what == "dtypes":
        return list(dict.fromkeys(d if isinstance(d, str) else _dtype_name(d) for d in v))
    return list(dict.fromkeys(v))


def _dtype_name(d: Any) -> Any:
    try:
        return np.dtype(d).name
    except TypeError:
        return d


def _check_int(name: str, v: Any) -> None:
    if not is_int(v) or v < 0:
        raise ValueError(f"{name} must be an int >= 0, got {v!r}")


def _check_selection(ops: Sequence[str] | None, dtypes: Sequence[str] | None) -> None:
    unknown = sorted(set(ops or ()) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown op(s) {unknown}; ops: {sorted(TABLES)}")
    bad = sorted(set(dtypes or ()) - set(DTYPE_NAMES))
    if bad:
        raise ValueError(f"unknown dtype(s) {bad}; dtypes: {list(DTYPE_NAMES)}")


def _import_line(spec: Any, name: str) -> str:
    if not isinstance(spec, str):
        return "impl = ...  # your implementation (the object passed to nnref.conform.run)"
    if spec in BUILTIN:
        return f"from nnref.conform import load_target\nimpl = load_target({spec!r})[1]"
    if spec.endswith(".py"):
        return (
            "import importlib.util\n"
            f"_spec = importlib.util.spec_from_file_location('impl', {spec!r})\n"
            "impl = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(impl)"
        )
    module, _, attr = spec.partition(":")
    return f"import importlib\nimpl = importlib.import_module({module!r})" + "".join(
        f".{a}" for a in attr.split(".") if a
    )


def plan(
    target: Any,
    *,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    profile: str | Profile = "tf",
    examples: int | None = None,
    seed: int = 0,
    rtol: dict[str, float] | None = None,
) -> tuple[Context, list[Task], list[str]]:
    """Load ``target`` and list its tasks: ``(context, tasks, ops not provided)``."""
    prof = _profile(profile)
    ops, dtypes = _names("ops", ops), _names("dtypes", dtypes)
    _check_selection(ops, dtypes)
    for op, v in (rtol or {}).items():
        if op not in TABLES or not (isinstance(v, float | int) and 0 <= v < np.inf):
            raise ValueError(f"rtol: {op}={v!r} needs a known op and a finite tolerance >= 0")
    if examples is not None:
        _check_int("examples", examples)
    _check_int("seed", seed)  # a negative seed failed every vjp-fd row (the checker refuses it)
    name, obj = load_target(target)
    provided, e = call(lambda: provided_ops(obj))  # the target's __getattr__ runs here
    if e is not None:
        raise TargetError(f"looking up the ops of target {name!r} failed: {describe(e)}")
    if not provided:  # a function or the wrong object, e.g. my_layers:relu: no report to pass
        raise TargetError(
            f"target {name!r} ({type(obj).__name__}) provides none of nnref's ops: give a "
            "module, an object or a mapping with functions named NAME_fwd / NAME_bwd or NAME"
        )
    if ops and not set(ops) & set(provided):  # `--op conv2d` on a ReLU: nothing would be checked
        raise NoSelectedOpsError(
            f"target {name!r} provides none of the selected ops {list(ops)}; it provides "
            f"{sorted(provided)}"
        )
    ctx = Context(
        name,
        obj,
        provided,
        prof,
        int(seed),
        examples,
        dict(rtol or {}),
        _import_line(target, name),
    )
    wanted = list(ops) if ops else list(TABLES)
    tasks: list[Task] = []
    for op in wanted:
        if op in provided:
            tasks += tasks_for(ctx, op, list(dtypes or DTYPE_NAMES))
    return ctx, tasks, [op for op in wanted if op not in provided]


def run(
    target: Any,
    *,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    profile: str | Profile = "tf",
    examples: int | None = None,
    seed: int = 0,
    rtol: dict[str, float] | None = None,
    call_timeout: float | None = None,
) -> ConformanceReport:
    """Run every check of every provided op and return the report.

    Parameters
    ----------
    target : str or object
        A module name, ``module:attribute``, a ``.py`` path, a built-in (``nnref``, ``jax``,
        ``torch``), or the module / object / mapping itself (wrap NCHW implementations with
        :func:`nchw`).
    ops, dtypes : optional
        Restrict to these ops (``nnref.cases.TABLES``) and dtypes (``float64``, ``float32``).
    profile : str
        Which conventions are expected (``tf``, ``torch``, ``jax``: :data:`PROFILES`).
    examples : int, optional
        Hypothesis examples per op and dtype for the ``property`` check (None: the loaded
        Hypothesis profile's ``max_examples``; 0 skips the check).
    seed : int
        Seeds the case inputs, cotangents and Hypothesis: same seed, same report.
    rtol : dict, optional
        Per-op tolerance overrides (default: ``nnref.verify.tolerance``, 1e-12 for float64
        and 2e-5 for float32, in the error ``max |a - b| / (|b| + rms(b))``).
    call_timeout : float, optional
        Seconds one call of the target may take (a forward, a backward, an optimizer step, a
        finite-difference sweep of forwards); past it :class:`CallTimeout` is raised inside the
        call, which becomes that call's finding, and the run goes on. None: no limit. POSIX
        only, main thread (SIGALRM); code stuck in C without returning to Python is stopped
        only when it returns. A ``property`` check whose call timed out stops drawing there.
    """
    t0 = time.perf_counter()
    check_call_timeout(call_timeout)  # refused before the target is loaded
    ctx, tasks, missing = plan(
        target, ops=ops, dtypes=dtypes, profile=profile, examples=examples, seed=seed, rtol=rtol
    )
    return run_plan(
        ctx, tasks, missing, planning=time.perf_counter() - t0, call_timeout=call_timeout
    )


def run_plan(
    ctx: Context,
    tasks: list[Task],
    missing: list[str],
    *,
    planning: float = 0.0,
    call_timeout: float | None = None,
) -> ConformanceReport:
    """Run the tasks of :func:`plan` (its result, unpacked) and return the report, as
    :func:`run` does; ``planning`` (seconds) is added to the report's time."""
    t0 = time.perf_counter()
    rows: list[Row] = []
    stopped, cause = None, None
    with each_warning_once(), call_limit(call_timeout):
        for t in tasks:
            try:
                rows.append(t.run())
            except KeyboardInterrupt as e:
                stopped, cause = f"{t.id} (after {len(rows)} of {len(tasks)} checks)", e
                break
    notes = {
        op: f"gradients not checked: only {'the plain ' + op if p.plain else op + '_fwd'} is provided"
        for op, p in ctx.provided.items()
        if TABLES[op].kind == "vjp" and not p.has_vjp and op in {r.op for r in rows}
    }
    seconds = planning + time.perf_counter() - t0
    report = ConformanceReport(ctx.name, ctx.profile.name, rows, missing, notes, seconds, stopped)
    if stopped is not None:
        raise ConformInterrupted(report) from cause
    return report


class ConformInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`run` (or :func:`run_plan`); ``report`` holds the checks made
    before it (``report.interrupted`` names the one that was running). Its ``__cause__`` is the
    ``KeyboardInterrupt`` that stopped it."""

    def __init__(self, report: ConformanceReport) -> None:
        super().__init__(f"interrupted at {report.interrupted}")
        self.report = report


def case_inputs(
    op: str, case: str, dtype: str, *, seed: int = 0, profile: str | Profile = "tf"
) -> tuple[tuple[Any, ...], dict[str, Any], Any]:
    """``(args, static, dy)`` of a case exactly as ``nnref conform --seed`` draws them."""
    _check_case(op, dtype)
    args, static, dy, _, _ = _case_inputs(op, case, dtype, seed=seed, profile=_profile(profile))
    return args, static, dy


def _check_case(op: str, dtype: str) -> None:
    """A known op, and a dtype of ``DTYPE_NAMES`` (``-`` for the ops without one), before a
    bare ``KeyError`` or the op's own refusal of a float16 input."""
    _check_selection([op], None)
    if dtype not in (*DTYPE_NAMES, "-"):
        raise ValueError(f"unknown dtype {dtype!r}; dtypes: {list(DTYPE_NAMES)} (or '-')")


def expected_values(
    op: str, case: str, dtype: str, *, seed: int = 0, profile: str | Profile = "tf"
) -> Expected:
    """What a conforming implementation returns on that case: ``y``, the VJP at its ``dy``
    (``grads``), or ``raises``."""
    _check_case(op, dtype)
    args, static, dy, expect, _ = _case_inputs(
        op, case, dtype, seed=seed, profile=_profile(profile)
    )
    return expect(args, static, dy)


def export_vectors(
    directory: Any,
    *,
    ops: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    profile: str | Profile = "tf",
    seed: int = 0,
) -> Any:
    """Write every case as ``.npz`` test vectors plus ``manifest.json``; return its path.
    Unknown ops, dtypes or profile are a ``ValueError`` before anything is written."""
    prof = _profile(profile)
    ops, dtypes = _names("ops", ops), _names("dtypes", dtypes)
    _check_selection(ops, dtypes)
    return _export(
        directory,
        ops=list(ops) if ops else None,
        dtypes=list(dtypes) if dtypes else None,
        profile=prof,
        seed=seed,
    )


def pytest_cases(target: Any, **kwargs: Any) -> list[Any]:
    """One ``pytest.param`` per op x check x case x dtype, for ``@pytest.mark.parametrize``::

        @pytest.mark.parametrize("task", nnref.conform.pytest_cases("my_layers"))
        def test_conforms(task):
            task.check()

    ``kwargs`` as :func:`plan` (:func:`run`'s but ``call_timeout``: under pytest a plugin
    such as pytest-timeout bounds a test). Each param's value has ``check()``, which raises
    ``AssertionError`` with the row's message and repro on failure.
    """
    import pytest

    _, tasks, _ = plan(target, **kwargs)
    return [pytest.param(_Checkable(t), id=t.id) for t in tasks]


class _Checkable:
    def __init__(self, task: Task) -> None:
        self.task = task

    def check(self) -> Row:
        row = self.task.run()
        if not row.ok:
            extra = f"\nmatches {'; '.join(row.matches)}" if row.matches else ""
            raise AssertionError(f"{row.id}: {row.message}{extra}\nrepro:\n{row.repro}")
        return row

    def __repr__(self) -> str:
        return self.task.id
