"""The ``property`` check: forward values and VJPs on Hypothesis-drawn inputs, seeded and shrunk."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from nnref.cases import TABLES, seed_for
from nnref.cases.conventions import CONVENTIONS, Expected, expected
from nnref.check.compare import max_rel_error
from nnref.conform._report import Row, entry, literal, pair
from nnref.conform._target import (
    CallTimeout,
    OutputError,
    as_gradients,
    backward_change,
    call,
    describe,
    first_change,
    named_args,
    refused,
    residual_arrays,
)

#: Ops with a strategy in :func:`nnref.strategies.op_inputs`.
STRATEGIES: tuple[str, ...] = (
    "dense",
    "bias_add",
    "conv2d",
    "max_pool2d",
    "relu",
    "sigmoid",
    "softmax",
    "log_softmax",
    "mean_squared_error",
    "argmax",
    "one_hot",
    "sparse_softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
)


def _call_target(op: str, p: Any, args: tuple, static: dict, dy: Any) -> tuple[Any, Any, Any]:
    """``(y, grads, error)`` from the target (grads None without a VJP or cotangent, or when
    the output's shape is not the cotangent's: the forward comparison reports it); y and the
    gradients are arrays, else the error is an :class:`OutputError` (a :class:`Modified` when
    a call modified an argument in place: ``args``, ``static`` and ``dy`` are the pristine
    copies, never passed)."""
    given, given_static = copy.deepcopy(args), copy.deepcopy(static)
    named = named_args(TABLES[op].names, (args, static), (given, given_static))
    fwd = p.forward_name
    out, e = call(lambda: p.forward(*given, **given_static))
    if (c := first_change(named)) is not None:
        return (
            None,
            None,
            Modified(f"{c.where}: {fwd} modified its input {c.arg} in place, {c.what}"),
        )
    if e is not None:  # the target refusing an input is a finding (or a convention)
        return None, None, e
    y, res = out
    if not (TABLES[op].kind == "vjp" and p.has_vjp and dy is not None) or y.shape != dy.shape:
        return y, None, None
    passed = dy.copy()
    kept = residual_arrays(res)
    grads, e = call(lambda: as_gradients(f"{op}_bwd", p.bwd(res, passed)))
    if (found := backward_change(dy, passed, named, kept)) is not None:
        what, c = found
        return (
            None,
            None,
            Modified(f"{c.where}: {op}_bwd modified {what} {c.arg} in place, {c.what}"),
        )
    return (None, None, e) if e else (y, grads, None)


class Modified(OutputError):
    """A call of the target modified an argument in place (never a refusal of the input)."""


#: Ulps of max |dy| a drawn gradient entry may differ by before the relative measure counts
#: (see :func:`_compare`).
_ROUNDING_ULPS = 8


def _compare(
    op: str,
    args: tuple,
    got: tuple[Any, Any, Any],
    exp: Expected,
    who: str,
    tol: float,
    dy: Any,
) -> str | None:
    """None when the target's ``got = (y, grads, error)`` on ``args`` at the cotangent ``dy``
    is ``exp``, else what differs."""
    y, grads, e = got
    # A gradient entry is a sum of terms of the cotangent's size that may cancel (softmax's
    # y (dy - sum(dy y)), sigmoid's 1 - y near 1): it may carry rounding of a few ulps of |dy|
    # whatever its own size (a float32 softmax computed in float64 and rounded once failed at
    # 2.05e-5, JAX's at 2.9e-5). That much of a difference is not counted (``_ROUNDING_ULPS``
    # of max |dy|); beyond it the measure is the strict one, so a dropped small gradient (a
    # sigmoid's tail) still fails. The cases keep the strict measure without slack.
    slack = 0.0
    if dy is not None and np.size(dy) and np.asarray(dy).dtype.kind == "f":
        ulp = float(np.finfo(np.asarray(dy).dtype).eps)
        slack = _ROUNDING_ULPS * ulp * float(np.max(np.abs(dy)))
    if exp.raises and refused(e):
        return None
    if e is not None:
        return str(e) if isinstance(e, OutputError) else f"raised {describe(e)}"
    if exp.raises:
        return f"returned a value where {who} refuses the input"
    kind = TABLES[op].kind
    pairs = [("y", y, exp.y)]
    pairs += [
        (f"d{n}", g, r)
        for n, a, g, r in zip(TABLES[op].names, args, grads or (), exp.grads or (), strict=False)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f"
    ]
    for qty, a, r in pairs:
        a = np.asarray(a)
        if a.shape != np.shape(r):
            return f"{qty}: shape {a.shape}, expected {np.shape(r)}"
        if kind == "vjp" and a.dtype != np.asarray(r).dtype:
            return f"{qty}: dtype {a.dtype}, expected {np.asarray(r).dtype}"
        err, idx = max_rel_error(a, r, slack=0.0 if qty == "y" else slack)
        if err > tol:
            return f"{entry(qty, idx)}: {pair(a, r, idx)} (error {err:.3g} > {tol:.3g})"
    return None


def run_property(ctx: Any, op: str, dtype: str) -> Row:
    """Draw ``ctx.examples`` inputs (Hypothesis' profile when None), seeded from the run's
    seed, and compare the target with what the profile expects on each; on a failure
    Hypothesis shrinks it, and the row shows the smallest one, the conventions the target
    matches there and their pins."""
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    from nnref.strategies import no_source_constants, op_inputs

    p = ctx.provided[op]
    tol = ctx.tol(op, dtype)
    dt = np.dtype(dtype)
    failures: list[tuple[tuple, dict, Any, str, tuple, str]] = []
    hung: list[int] = []  # the failure whose call ran past the run's call_timeout
    count = [0]
    kind = TABLES[op].kind
    #: Every pin the profile decides for this op: drawn inputs belong to no case.
    pins = tuple(pin for o, pin in ctx.profile.choose if o == op)

    def check(inputs: tuple, dy_seed: int) -> str | None:
        args, static = inputs
        count[0] += 1
        expect, cid = expected(op, pins, ctx.profile, args, static)
        dy = None
        if kind == "vjp" and p.has_vjp:  # a random cotangent: its values need no shrinking
            y = expect(args, static, None)
            if not y.raises:
                rng = np.random.default_rng(dy_seed)
                dy = rng.standard_normal(np.shape(y.y)).astype(dt)
        got = _call_target(op, p, args, static, dy)
        who = "TF" if cid == "tf" else cid
        problem = _compare(op, args, got, expect(args, static, dy), who, tol, dy)
        if problem is not None:
            if isinstance(got[2], CallTimeout):
                hung.append(len(failures))
            failures.append((args, static, dy, problem, got, cid))
        return problem

    @seed(seed_for("conform-property", op, dtype, ctx.seed))
    @settings(
        max_examples=ctx.examples if ctx.examples is not None else settings().max_examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(op_inputs(op, dtype=dt), st.integers(0, 2**32 - 1))
    def prop(inputs: tuple, dy_seed: int) -> None:
        # Once a call ran past the run's call_timeout, no more calls: shrinking would wait out
        # each one. Every later example fails at once, from the same raise (Hypothesis takes
        # a failure from another line for a flaky test).
        problem = failures[hung[0]][3] if hung else check(inputs, dy_seed)
        if problem is not None:
            raise AssertionError(problem)

    checked = "forward and VJP" if kind == "vjp" and p.has_vjp else "forward"
    try:
        with no_source_constants():
            prop()
    except AssertionError:
        # Hypothesis replays the shrunk example last. A call that timed out is not shrunk:
        # the row shows it as drawn, or the smallest failure drawn before it (Hypothesis may
        # have drawn more examples, or begun shrinking, when the call hung).
        if not hung:
            pick, how = -1, "shrunk"
        elif hung[0] == 0:
            pick, how = 0, "as drawn"
        else:
            pick = min(range(hung[0]), key=lambda i: sum(np.size(a) for a in failures[i][0]))
            how = "the smallest failing input drawn before a later call timed out"
        args, static, dy, problem, (y, grads, e), cid = failures[pick]
        from nnref.conform._checks import match_conventions

        matches = match_conventions(op, args, static, dy, (y, grads, refused(e)), tol, cid)
        says = {c.says: c for c in CONVENTIONS}
        found = tuple(dict.fromkeys(pin for m in matches if m in says for pin in says[m].pins))
        names = TABLES[op].names
        lines = ["import numpy as np", ctx.import_line]
        lines += [f"{n} = {literal(a)}" for n, a in zip(names, args, strict=True)]
        lines.append(f"static = {literal(static)}")
        if dy is not None:
            lines.append(f"dy = {literal(dy)}")
        lines.append(f"# compare with nnref.{op}{'_fwd / _bwd' if dy is not None else ''}")
        return Row(
            op,
            "property",
            "drawn",
            dtype,
            False,
            None,
            tol,
            problem.split(":")[0],
            f"on a drawn input ({how}, {checked}): {problem}",
            "\n".join(lines),
            status="fail",
            pins=found,
            convention=cid,
            matches=matches,
        )
    return Row(
        op,
        "property",
        "drawn",
        dtype,
        True,
        None,
        tol,
        "",
        f"{count[0]} drawn inputs agree ({checked})",
        "",
    )
