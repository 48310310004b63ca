"""The ``property`` check: forward values and VJPs on Hypothesis-drawn inputs, seeded and shrunk."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from nnref.cases import TABLES, reference, seed_for
from nnref.check.compare import max_rel_error
from nnref.conform._report import Row, literal

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


def _compare(op: str, p: Any, args: tuple, static: dict, dy: Any, tol: float) -> str | None:
    """None when the target agrees with nnref on this input, else what differs."""
    ref = reference()
    kind = TABLES[op].kind
    try:
        if kind == "vjp" and p.has_vjp:
            y, res = p.fwd(*copy.deepcopy(args), **copy.deepcopy(static))
            grads = p.bwd(res, dy.copy())
            if not isinstance(grads, tuple | list):
                grads = (grads,)
        else:
            y, grads = p.forward(*copy.deepcopy(args), **copy.deepcopy(static)), None
    except Exception as e:  # the target refusing a valid input is a finding
        return f"raised {type(e).__name__}: {e}"
    if kind == "vjp":
        ey, eres = ref[op + "_fwd"](*args, **static)
        eg = ref[op + "_bwd"](eres, dy) if grads is not None else ()
    else:
        ey, eg = ref[op](*args, **static), ()
    pairs = [("y", y, ey)]
    pairs += [
        (f"d{n}", g, r)
        for n, a, g, r in zip(TABLES[op].names, args, grads or (), eg, strict=False)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f"
    ]
    for qty, a, r in pairs:
        a = np.asarray(a)
        if a.shape != np.shape(r):
            return f"{qty}: shape {a.shape}, expected {np.shape(r)}"
        if kind == "vjp" and a.dtype != np.asarray(r).dtype:
            return f"{qty}: dtype {a.dtype}, expected {np.asarray(r).dtype}"
        err, idx = max_rel_error(a, r)
        if err > tol:
            return f"{qty}[{', '.join(map(str, idx))}]: {a[idx]!r} vs expected {np.asarray(r)[idx]!r} (error {err:.3g} > {tol:.3g})"
    return None


def run_property(ctx: Any, op: str, dtype: str) -> Row:
    """Draw ``ctx.examples`` inputs (Hypothesis' profile when None), seeded from the run's
    seed; on a failure Hypothesis shrinks it and the row shows the smallest one."""
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    from nnref.strategies import op_inputs

    p = ctx.provided[op]
    tol = ctx.tol(op, dtype)
    dt = np.dtype(dtype)
    failures: list[tuple[tuple, dict, Any, str]] = []
    count = [0]
    kind = TABLES[op].kind
    ref = reference()

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
        args, static = inputs
        count[0] += 1
        dy = None
        if kind == "vjp" and p.has_vjp:  # a random cotangent: its values need no shrinking
            y = ref[op + "_fwd"](*args, **static)[0]
            rng = np.random.default_rng(dy_seed)
            dy = rng.standard_normal(np.shape(y)).astype(dt)
        problem = _compare(op, p, args, static, dy, tol)
        if problem is not None:
            failures.append((args, static, dy, problem))
            raise AssertionError(problem)

    checked = "forward and VJP" if kind == "vjp" and p.has_vjp else "forward"
    try:
        prop()
    except AssertionError:
        args, static, dy, problem = failures[-1]  # Hypothesis replays the shrunk example last
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
            f"on a drawn input (shrunk, {checked}): {problem}",
            "\n".join(lines),
            status="fail",
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
