"""The checks: one :class:`Task` per op x check x case x dtype, each giving a :class:`Row`.

Per differentiable op and case: ``signature`` (output shape and dtype: dtype in = dtype out;
inputs left as given), ``forward`` (values against the expected ones under the profile), ``vjp``
(the target's VJP at a shared random cotangent against the expected VJP; ``dy`` and the
residuals left as given), ``vjp-fd`` (the target's VJP against finite differences of its own
forward, through :func:`nnref.check.check_vjp`: is the backward wrong, or merely different?),
``raises`` (inputs TF refuses); per op and dtype ``property`` (forward and VJP on
Hypothesis-drawn inputs, shrunk). Non-differentiable functions get ``signature`` and
``forward``; ``kfold_batches`` gets ``batches``; optimizers get ``trajectory``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from nnref.cases import TABLES, Case, OpTable, make_case
from nnref.cases.conventions import (
    BY_ID,
    Convention,
    Expected,
    Profile,
    alternatives,
    expected,
    tf_expect,
)
from nnref.check.compare import max_rel_error
from nnref.conform._report import Row, entry, literal, pair, small
from nnref.conform._target import (
    Change,
    OutputError,
    Provided,
    as_array,
    as_gradients,
    backward_change,
    call,
    call_untimed,
    describe,
    first_change,
    is_residual,
    named_args,
    refused,
    residual_arrays,
    shown,
)
from nnref.verify import tolerance


@dataclass(frozen=True)
class Task:
    """One check, runnable alone (``nnref.conform.pytest_cases`` makes each a test)."""

    op: str
    check: str
    case: str
    dtype: str
    run: Callable[[], Row]

    @property
    def id(self) -> str:
        return f"{self.op}/{self.check}/{self.case}/{self.dtype}"


@dataclass
class Context:
    """What every task of one run shares: the target, the profile, seeds, tolerances, and the
    memoised outcomes (each target call is made once per case and dtype)."""

    name: str
    target: Any
    provided: dict[str, Provided]
    profile: Profile
    seed: int
    examples: int | None
    rtol: dict[str, float]
    #: Python source that binds ``impl`` to the target, for repro snippets.
    import_line: str
    outcomes: dict[tuple[str, str, str], Outcome] = field(default_factory=dict)

    def tol(self, op: str, dtype: str) -> float:
        if op in self.rtol:
            return self.rtol[op]
        return tolerance(op, np.float64 if dtype == "-" else dtype)

    def outcome(self, op: str, case: str, dtype: str) -> Outcome:
        key = (op, case, dtype)
        if key not in self.outcomes:
            self.outcomes[key] = Outcome(self, op, case, dtype)
        return self.outcomes[key]


#: What a row adds after "NAME_bwd modified WHAT ARG in place", per WHAT: how it got there,
#: or why a backward may not write into its residuals.
_HOW_BWD_MODIFIED = {
    "its cotangent": "",
    "the forward's input": " (it reached the backward in the residuals)",
    "the forward's residual": " (a second call with the same residuals starts from the changed values)",
}


class Modified(NamedTuple):
    """An argument a call of the target modified in place."""

    message: str
    #: The first changed entry, e.g. ``x[0, 1]``.
    where: str
    #: The argument as the repro snippet binds it (``x``, ``static['sample_weight']``, ``dy``).
    expr: str


def _failed(call_: str, e: BaseException) -> str:
    """What a row says when the target's ``call_`` gave no usable result."""
    return str(e) if isinstance(e, OutputError) else f"the {call_} call raised {describe(e)}"


class Outcome:
    """One case and dtype: inputs, the shared cotangent, the expected values under the profile
    and the target's results, each computed on first use."""

    def __init__(self, ctx: Context, op: str, case: str, dtype: str) -> None:
        self.ctx, self.op, self.dtype = ctx, op, dtype
        self.table: OpTable = TABLES[op]
        self.case: Case = self.table.case(case)
        self.p = ctx.provided[op]
        self.args, self.static, self.dy, self.expect_fn, self.convention = case_inputs(
            op, case, dtype, seed=ctx.seed, profile=ctx.profile
        )

    @cached_property
    def expected(self) -> Expected:
        return self.expect_fn(self.args, self.static, self.dy)

    @cached_property
    def forward(self) -> tuple[Any, Any, BaseException | None]:
        """``(y, residuals, error)`` from the target's forward (residuals None for plain); y
        is an array, else the error is an :class:`OutputError` saying what was returned.
        Whether it modified the copies it was given is :attr:`fwd_modified`."""
        args, static = copy.deepcopy(self.args), copy.deepcopy(self.static)
        out, e = call(lambda: self.p.forward(*args, **static))
        self._given = (args, static)
        # self.args / self.static never reach the target: they are the pristine copies.
        change = first_change(self._named(args, static))
        if change is not None:
            self.fwd_modified = self.modified_message(self.p.forward_name, "its input", change)
        return (None, None, e) if e else (*out, None)

    #: What the forward (or plain form) did to its inputs, when it modified one in place.
    fwd_modified: Modified | None = None
    #: What the backward did to ``dy``, to the forward's inputs (through the residuals) or to
    #: another array of the residuals.
    bwd_modified: Modified | None = None

    @cached_property
    def grads(self) -> tuple[Any, BaseException | None]:
        """``(gradients, error)`` from the target's backward: arrays (None where the target
        gives none), else the error. Whether it modified ``dy``, the forward's inputs its
        residuals may hold, or another array of the residuals, is :attr:`bwd_modified`."""
        _y, res, e = self.forward
        if e is not None or not self.p.has_vjp:
            return None, e
        if self.dy is None:  # the expected result is a refusal: no cotangent, no backward
            return None, None
        dy = self.dy.copy()
        kept = residual_arrays(res)
        out = call(lambda: as_gradients(f"{self.op}_bwd", self.p.bwd(res, dy)))
        # The forward's inputs, which it may have kept (aliased) in its residuals; unless the
        # forward itself modified them (its own row reports that).
        named = self._named(*self._given) if self.fwd_modified is None else []
        found = backward_change(self.dy, dy, named, kept)
        if found is not None:
            what, change = found
            self.bwd_modified = self.modified_message(
                f"{self.op}_bwd", what, change, _HOW_BWD_MODIFIED[what]
            )
        return out

    def _named(self, args: tuple[Any, ...], static: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        return named_args(self.table.names, (self.args, self.static), (args, static))

    def modification(self, check: str) -> Modified | None:
        """The in-place modification ``check``'s row reports: the forward's for ``signature``
        and ``raises``, the backward's for ``vjp`` (``vjp-fd`` names both, in its row)."""
        return self.bwd_modified if check == "vjp" else self.fwd_modified

    def modified_message(self, fn: str, what: str, c: Change, how: str = "") -> Modified:
        """Which call modified which argument on which case, and where."""
        msg = (
            f"{fn} modified {what} {c.arg} in place{how} on case {self.case.id} ({self.dtype}), "
            f"at {c.where}: {c.what}; nnref's contract: inputs are never modified, return new "
            "arrays"
        )
        if c.arg in self.static:
            expr = f"static[{c.arg!r}]"
        elif c.arg in ("dy", *self.table.names) or is_residual(c.arg):
            expr = c.arg
        else:  # past the table's names: not bound in the repro
            expr = ""
        return Modified(msg, c.where, expr)

    #: The backward raised in the gradient check when called again with residuals it had
    #: already taken (a PyTorch graph freed by the first ``torch.autograd.grad``).
    bwd_not_repeatable: bool = False

    @cached_property
    def fd(self) -> Any:
        """The target's VJP against finite differences of its own forward."""
        from nnref.check import check_vjp

        # The residuals a backward call has returned from, held (an id could be reused once
        # the check drops residuals from an earlier forward call).
        taken: list[Any] = []

        def bwd(res: Any, dy: Any) -> Any:
            try:
                g = self.p.bwd(res, dy)
            except Exception:
                self.bwd_not_repeatable = any(r is res for r in taken)
                raise
            taken.append(res)
            return g

        return check_vjp(
            self.p.fwd,
            bwd,
            copy.deepcopy(self.args),
            static=copy.deepcopy(self.static),
            names=self.table.names,
            seed=self.ctx.seed,
            raise_on_failure=False,
        )

    # ----------------------------------------------------------------- rows

    def row(self, check: str, ok: bool, **kw: Any) -> Row:
        kw.setdefault("error", None)
        kw.setdefault("tolerance", None)
        kw.setdefault("where", "")
        kw.setdefault("message", "ok")
        kw.setdefault("status", "pass" if ok else "fail")
        repro = self.repro(check) if not ok and kw["status"] == "fail" else ""
        return Row(
            self.op,
            check,
            self.case.id,
            self.dtype,
            ok,
            repro=repro,
            pins=self.case.pins,
            convention=self.convention,
            **kw,
        )

    def matches(self, y: Any, grads: Any, raised: bool) -> tuple[str, ...]:
        """The known conventions (TF's included, when the profile chose another) that the
        target's results match on this input."""
        return match_conventions(
            self.op,
            self.args,
            self.static,
            self.dy,
            (y, grads, raised),
            self.ctx.tol(self.op, self.dtype),
            self.convention,
        )

    def repro(self, check: str) -> str:
        return repro_snippet(self, check)


def match_conventions(
    op: str,
    args: tuple[Any, ...],
    static: dict[str, Any],
    dy: Any,
    result: tuple[Any, Any, bool],
    tol: float,
    convention: str,
) -> tuple[str, ...]:
    """How the report names each known convention (TF's included, unless ``convention`` is
    TF's) that gives ``result`` = ``(y, grads, raised)`` on these inputs; ``convention`` (the
    one expected) is left out."""
    y, grads, raised = result
    cands: list[Convention | None] = [
        c for c in alternatives(op, args, static) if c.id != convention
    ]
    if convention != "tf":
        cands.append(None)  # TF's own
    found = []
    for c in cands:
        fn = tf_expect(op) if c is None else c.expect
        exp, e = call_untimed(lambda fn=fn: fn(args, static, dy))
        if e is not None:
            continue
        if exp.raises or raised:
            same = exp.raises and raised
        else:
            same = _close(y, exp.y, tol)
            if same and grads is not None and exp.grads is not None:
                same = all(
                    _close(g, r, tol)
                    for g, r, a in zip(grads, exp.grads, args, strict=False)
                    if _is_float(a)
                )
        if same:
            found.append("TF's convention" if c is None else c.says)
    return tuple(found)


def _is_float(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(b, list):  # a trajectory: steps of parameter lists
        return (
            isinstance(a, list | tuple)
            and len(a) == len(b)
            and all(_close(u, v, tol) for u, v in zip(a, b, strict=True))
        )
    try:
        a, b = np.asarray(a), np.asarray(b)
    except Exception:  # an output NumPy cannot take is no match
        return False
    if a.shape != b.shape or a.dtype.kind not in "iufb":
        return False
    return max_rel_error(a, b)[0] <= tol


def _worst(qty: str, actual: np.ndarray, desired: np.ndarray) -> tuple[float, str, str]:
    """Error, where, and "a vs expected b" at the worst entry."""
    err, idx = max_rel_error(actual, desired)
    return err, entry(qty, idx), pair(actual, desired, idx) if actual.size else ""


def case_inputs(
    op: str, case: str, dtype: str, *, seed: int, profile: Profile
) -> tuple[tuple[Any, ...], dict[str, Any], Any, Any, str]:
    """``(args, static, dy, expect, convention)`` of one case as the checks see it: inputs
    seeded from the case's name and ``seed``, the cotangent drawn after them (differentiable
    ops; shaped like the output the profile's convention gives), the reference under
    ``profile`` and the convention it follows."""
    dt = np.float64 if dtype == "-" else dtype
    args, static, rng = make_case(op, case, dt, "conform", seed)
    expect, convention = expected(op, TABLES[op].case(case).pins, profile, args, static)
    dy = None
    if TABLES[op].kind == "vjp":
        y = expect(args, static, None)
        if not y.raises:
            dy = rng.standard_normal(np.shape(y.y)).astype(np.asarray(y.y).dtype)
    return args, static, dy, expect, convention


# --------------------------------------------------------------------------- vjp ops


def _refused(o: Outcome, check: str, e: BaseException) -> Row:
    """The target gave no value on an input the profile's convention accepts: a failure; when
    it raised an exception, that may still be a known convention (PyTorch's one_hot refuses
    out-of-range indices)."""
    m = o.matches(None, None, True) if refused(e) else ()
    return o.row(check, False, message=_failed("forward", e), matches=m)


def _refuser(o: Outcome) -> str:
    return "TF" if o.convention == "tf" else o.convention


def _differs(o: Outcome) -> str:
    """What the target's values differ from: the convention the profile expects."""
    return "differs from TF's" if o.convention == "tf" else f"differs from {o.convention}"


def _signature(o: Outcome) -> Row:
    """Shape, dtype, and the inputs left as they were given: the call's contract, apart from
    its values (so an in-place forward with the right values fails here, and only here)."""
    return _with_modification(o, "signature", _signature_unmodified(o))


def _with_modification(o: Outcome, check: str, row: Row) -> Row:
    """``row`` (computed first: its calls record the modifications), failed instead when the
    call ``check`` reports modified an input in place, with what else it found."""
    modified = o.modification(check)
    if modified is None:
        return row
    msg, where = modified.message, modified.where
    if not row.ok and row.status == "fail":
        msg = f"{msg}; also: {row.message}"
    return _replace(row, ok=False, status="fail", message=msg, where=where, repro=o.repro(check))


def _signature_unmodified(o: Outcome) -> Row:
    y, _, e = o.forward
    if e is not None:
        return _refused(o, "signature", e)
    exp = o.expected
    if exp.raises:
        msg = f"returned a value where {_refuser(o)} refuses the input"
        return o.row("signature", False, message=msg)
    ey = np.asarray(exp.y)
    problems = []
    if y.shape != ey.shape:
        problems.append(f"shape {y.shape}, expected {ey.shape}")
    if y.dtype != ey.dtype and not (o.table.kind != "vjp" and y.dtype.kind == ey.dtype.kind == "i"):
        problems.append(f"dtype {y.dtype}, expected {ey.dtype} (dtype in = dtype out)")
    if problems:
        m = o.matches(y, None, False) if y.shape != ey.shape else ()
        return o.row("signature", False, message="; ".join(problems), matches=m)
    return o.row("signature", True, message=f"shape {y.shape}, dtype {y.dtype}")


def _values_row(
    o: Outcome, check: str, pairs: list[tuple[str, Any, Any]], grads: Any, prefix: str
) -> Row:
    tol = o.ctx.tol(o.op, o.dtype)
    worst = (0.0, "", "")
    for qty, a, r in pairs:
        a, r = np.asarray(a), np.asarray(r)
        if a.shape != r.shape:
            return o.row(
                check,
                False,
                status="not compared",
                message=f"{qty}: shape {a.shape}, expected {r.shape}; values not compared",
            )
        if a.dtype.kind not in "iufb":
            return o.row(check, False, message=f"{qty}: not a numeric array (dtype {a.dtype})")
        w = _worst(qty, a, r)
        if w[0] >= worst[0]:
            worst = w
    err, where, both = worst
    if err <= tol:
        return o.row(check, True, error=err, tolerance=tol, where=where)
    y = o.forward[0]
    m = o.matches(y, grads, False)
    msg = f"{prefix} at {where}: {both} (error {err:.3g} > tolerance {tol:.3g})"
    return o.row(check, False, error=err, tolerance=tol, where=where, message=msg, matches=m)


def _forward(o: Outcome) -> Row:
    y, _, e = o.forward
    if isinstance(e, OutputError):  # signature reports it
        return o.row("forward", False, status="not compared", message=f"{e} (see signature)")
    if e is not None:
        return _refused(o, "forward", e)
    exp = o.expected
    if exp.raises:
        msg = f"returned a value where {_refuser(o)} refuses the input"
        return o.row("forward", False, message=msg)
    return _values_row(o, "forward", [("y", y, exp.y)], None, f"the forward value {_differs(o)}")


def _vjp(o: Outcome) -> Row:
    """The VJP's values, and ``dy`` (and the inputs, which residuals may hold) left as the
    backward got them."""
    return _with_modification(o, "vjp", _vjp_unmodified(o))


def _vjp_unmodified(o: Outcome) -> Row:
    y, _, e = o.forward
    exp = o.expected
    if e is None and not exp.raises and np.shape(y) != np.shape(exp.y):
        # The cotangent has the expected output's shape: the backward would fail on it, which
        # says nothing about the backward.
        return o.row(
            "vjp",
            False,
            status="not compared",
            message=f"the forward's output has shape {np.shape(y)}, expected "
            f"{np.shape(exp.y)} (see signature): the VJP is not compared",
        )
    if isinstance(e, OutputError):
        return o.row(
            "vjp",
            False,
            status="not compared",
            message=f"{e} (see signature): the VJP is not compared",
        )
    g, e = o.grads
    if e is not None:
        if o.forward[2] is not None:  # the forward refused: maybe a convention, as in signature
            return _refused(o, "vjp", e)
        return o.row("vjp", False, message=_failed("backward", e))
    if exp.grads is None:
        return o.row(
            "vjp", True, status="not checked", message=f"{o.convention} defines no VJP reference"
        )
    names = o.table.names
    if len(g) != len(names):
        return o.row(
            "vjp",
            False,
            message=f"{o.op}_bwd returned {len(g)} gradients for {len(names)} inputs {names}",
        )
    pairs = [
        (f"d{n}", gi, ri)
        for n, a, gi, ri in zip(names, o.args, g, exp.grads, strict=True)
        if _is_float(a)
    ]
    bad = [q for q, gi, _ in pairs if gi is None]
    if bad:
        return o.row("vjp", False, message=f"no gradient returned for {', '.join(bad)}")
    for q, gi, ri in pairs:
        if gi.shape != np.shape(ri):  # no other check covers a gradient's shape
            return o.row(
                "vjp",
                False,
                where=q,
                message=f"{q} has shape {gi.shape}, expected {np.shape(ri)} (its input's shape)",
            )
        if gi.dtype != ri.dtype:
            return o.row(
                "vjp",
                False,
                where=q,
                message=f"{q} has dtype {gi.dtype}, expected {ri.dtype} (dtype in = dtype out)",
            )
    row = _values_row(o, "vjp", pairs, g, f"the VJP {_differs(o)}")
    if not row.ok and row.status == "fail" and o.case.fd:
        fd, e = call(lambda: o.fd)  # the target's forward runs again, at perturbed inputs
        if e is not None:
            verdict = f"finite differences could not be evaluated ({_fd_raised(o, e)})"
        elif fd.ok:
            verdict = (
                "finite differences confirm it as the derivative of your forward: your "
                f"backward matches your forward, which {_differs(o)}"
            )
        else:
            verdict = "finite differences reject it too: your backward is wrong"
        row = _replace(row, message=f"{row.message}; {verdict}")
    return row


def _fd_raised(o: Outcome, e: BaseException) -> str:
    """The gradient check's exception, and when the backward raised it on residuals it had
    already taken, why the check calls it again."""
    if not o.bwd_not_repeatable:
        return describe(e)
    return (
        f"{describe(e)}, in {o.op}_bwd called again with the same residuals: the check calls "
        "the backward once per cotangent, and nnref's contract is a pure backward that can be "
        "called again (PyTorch: torch.autograd.grad(..., retain_graph=True))"
    )


def _vjp_fd(o: Outcome) -> Row:
    y, _, e = o.forward
    if e is not None:
        return o.row("vjp-fd", False, message=_failed("forward", e))
    # Finite differences need a pure function (nnref.check refuses the others): the row that
    # reports the modification says it, and this one is not compared.
    if o.fwd_modified is None and o.dy is not None and y.shape == o.dy.shape:
        _ = o.grads  # the vjp row's call (memoised): did it modify dy?
    for row in ("signature", "vjp"):
        modified = o.modification(row)
        if modified is not None:
            return o.row(
                "vjp-fd",
                False,
                status="not compared",
                message=f"{modified.message} (see {row}): finite differences need a pure function",
            )
    r, e = call(lambda: o.fd)
    if e is not None:
        return o.row("vjp-fd", False, message=f"the gradient check raised {_fd_raised(o, e)}")
    w = r.worst
    where = ""
    if w is not None and w.index is not None:
        where = f"d{r.input_names[w.input]}[{', '.join(map(str, w.index))}]"
    share = None if w is None else float(w.share)
    return o.row("vjp-fd", r.ok, error=share, tolerance=1.0, where=where, message=r.message())


def _raises(o: Outcome) -> Row:
    return _with_modification(o, "raises", _raises_unmodified(o))


def _raises_unmodified(o: Outcome) -> Row:
    y, _, e = o.forward
    if refused(e):
        return o.row("raises", True, message=f"refused: {describe(e)}")
    if o.convention == "tf":
        why = f"TF raises ({o.case.what})"
    else:
        why = f"the {o.ctx.profile.name} profile expects {BY_ID[o.convention].says}"
    if e is not None:  # sys.exit, a malformed result, broken code: none refuses the input
        what = _failed("forward", e)
        must = "it must raise an exception" + (
            " that refuses it" if isinstance(e, Exception) else ""
        )
        return o.row("raises", False, message=f"{what}, where {why}; {must}")
    m = o.matches(y, o.grads[0] if o.p.has_vjp else None, False)
    return o.row(
        "raises",
        False,
        message=f"returned a value where {why}; an implementation must refuse these inputs",
        matches=m,
    )


def _replace(row: Row, **kw: Any) -> Row:
    from dataclasses import replace

    return replace(row, **kw)


# --------------------------------------------------------------------------- other kinds


def _batches(o: Outcome) -> Row:
    from nnref.data.batching import kfold_sizes

    n, b, _ = o.args
    parts, e = call(lambda: _batch_arrays(o.op, o.p.plain(*o.args)))
    if e is not None:
        return o.row("batches", False, message=_failed(o.op, e))
    bad = [i for i, p in enumerate(parts) if p.ndim != 1 or p.dtype.kind not in "iu"]
    if bad:
        p = parts[bad[0]]
        return o.row(
            "batches",
            False,
            message=f"batches must be 1-D arrays of integer sample indices; batch {bad[0]} is "
            f"{p.dtype} of shape {p.shape}",
        )
    flat = np.sort(np.concatenate(parts)) if parts else np.array([], np.int64)
    want = kfold_sizes(n, max(1, int(n / b)))
    sizes = [len(p) for p in parts]
    if not np.array_equal(flat, np.arange(n)):
        return o.row(
            "batches",
            False,
            message=f"the batches are not a partition of range({n}): every sample exactly once",
        )
    if sizes != want:
        slicing = [min(b, n - i) for i in range(0, n, b)]
        m = ("plain slicing into batches of batch_size (a short last batch)",)
        return o.row(
            "batches",
            False,
            message=f"batch sizes {sizes}, expected KFold's {want}",
            matches=m if sizes == slicing else (),
        )
    return o.row("batches", True, message=f"{len(parts)} batches, sizes {want[0]}/{want[-1]}")


def _batch_arrays(op: str, out: Any) -> list[np.ndarray]:
    """A batching function's result as arrays, else :class:`OutputError` saying what it
    returned."""
    items, e = call(lambda: list(out))
    if e is not None:
        raise OutputError(f"{op} returned {shown(out)}, not a list of batches ({describe(e)})")
    return [as_array(f"{op} (batch {i})", v) for i, v in enumerate(items)]


def _update_result(what: str, out: Any, n: int) -> tuple[list[np.ndarray], Any]:
    """``update``'s ``(new params, state)``, else :class:`OutputError` saying what it
    returned."""
    pair, e = call(lambda: tuple(out))
    if e is not None or len(pair) != 2:
        raise OutputError(f"{what} returned {shown(out)}, not (params, state)")
    new, e = call(lambda: list(pair[0]))
    if e is not None:
        raise OutputError(f"{what} returned params {shown(pair[0])}, not a list of arrays")
    if len(new) != n:
        raise OutputError(f"{what} returned {len(new)} params, expected {n}")
    return [as_array(f"{what} (param {i})", a) for i, a in enumerate(new)], pair[1]


def _run_optimizer(o: Outcome) -> tuple[list[list[np.ndarray]], str, Any]:
    """The target's trajectory on the case: ``(steps, problem, factory error)``; ``problem`` is
    empty when every step ran, else what went wrong (the steps so far are kept)."""
    from nnref.cases.optim import gradients

    params, curvature, noise = o.args
    opt, e = call(lambda: o.p.plain(**o.static))
    if e is not None:
        return [], f"{o.op}(**{o.static}) raised {describe(e)}", e
    state, e = call(lambda: opt.init([p.copy() for p in params]))
    if e is not None:
        return [], f"init raised {describe(e)}", None
    steps: list[list[np.ndarray]] = []
    cur = [p.copy() for p in params]
    for t in range(len(noise[0])):
        g = gradients(cur, curvature, noise, t)
        given = [("params", [p.copy() for p in cur], cur), ("grads", [a.copy() for a in g], g)]
        given += residual_arrays(state, "state")  # an update that advances its state in place
        out, e = call(lambda g=g, s=state, c=cur: opt.update(g, s, c))
        if e is not None:
            return steps, f"update at step {t + 1} raised {describe(e)}", None
        change = first_change(given)
        if change is not None:
            how = f" at step {t + 1}"
            return steps, o.modified_message("update", "its input", change, how).message, None
        result, e = call(
            lambda out=out, t=t: _update_result(f"update at step {t + 1}", out, len(params))
        )
        if e is not None:  # a malformed result, or its conversion ran past the call_timeout
            if isinstance(e, OutputError):
                return steps, str(e), None
            return steps, f"update at step {t + 1}: its result raised {describe(e)}", None
        cur, state = result
        steps.append(cur)
    return steps, "", None


def _trajectory(o: Outcome) -> Row:
    """The target's optimizer against the expected trajectory, step by step; on a failure,
    the conventions whose whole trajectory (or refusal) the target's matches."""
    steps, problem, factory_error = _run_optimizer(o)
    exp = o.expected
    if factory_error is not None:
        if exp.raises and refused(factory_error):
            return o.row("trajectory", True, message=f"refused: {describe(factory_error)}")
        m = o.matches(None, None, True) if refused(factory_error) else ()
        return o.row("trajectory", False, message=problem, matches=m)
    if exp.raises:
        return o.row(
            "trajectory",
            False,
            message=f"{o.op}(**{o.static}) built an optimizer where {_refuser(o)} refuses",
            matches=o.matches(steps, None, False),
        )
    if problem and not steps:
        return o.row("trajectory", False, message=problem)
    tol = o.ctx.tol(o.op, o.dtype)
    for t, (ours, ref) in enumerate(zip(steps, exp.y, strict=False)):
        for i, (a, r) in enumerate(zip(ours, ref, strict=True)):
            where = f"step {t + 1} param {i}"
            if a.shape != r.shape or a.dtype != r.dtype:
                return o.row(
                    "trajectory",
                    False,
                    where=where,
                    message=f"param {i} after step {t + 1} is {a.dtype}{a.shape}, expected "
                    f"{r.dtype}{r.shape}",
                )
            err, where, both = _worst(where, a, r)
            if err > tol:
                leaves = "TF's" if o.convention == "tf" else f"{o.convention}'s"
                return o.row(
                    "trajectory",
                    False,
                    error=err,
                    tolerance=tol,
                    where=where,
                    message=f"the trajectory leaves {leaves} at {where}: {both} (error "
                    f"{err:.3g} > tolerance {tol:.3g})",
                    matches=() if problem else o.matches(steps, None, False),
                )
    if problem:
        return o.row("trajectory", False, where=f"step {len(steps) + 1}", message=problem)
    return o.row("trajectory", True, error=0.0, tolerance=tol, message=f"{len(steps)} steps")


# --------------------------------------------------------------------------- planning


def tasks_for(ctx: Context, op: str, dtypes: list[str]) -> list[Task]:
    """Every task of one provided op."""
    t = TABLES[op]
    p = ctx.provided[op]
    out: list[Task] = []
    for dt in dtypes if t.dtyped else ["-"]:
        for c in t.cases:

            def add(check: str, fn: Callable[[Outcome], Row], c: Case = c, dt: str = dt) -> None:
                out.append(Task(op, check, c.id, dt, lambda: fn(ctx.outcome(op, c.id, dt))))

            if t.kind == "batches":
                add("batches", _batches)
                continue
            if t.kind == "optimizer":
                add("trajectory", _trajectory)
                continue
            if _expects_raise(op, c, ctx.profile):
                add("raises", _raises)
                continue
            add("signature", _signature)
            add("forward", _forward)
            if t.kind == "vjp" and p.has_vjp:
                add("vjp", _vjp)
                if c.fd:
                    add("vjp-fd", _vjp_fd)
        if t.kind in ("vjp", "forward") and ctx.examples != 0 and op in _property_ops():
            out.append(Task(op, "property", "drawn", dt, _property_task(ctx, op, dt)))
    return out


def _expects_raise(op: str, c: Case, profile: Profile) -> bool:
    """Whether the profile's convention refuses the case's inputs: TF refuses the ``raises``
    cases (PyTorch's convention keeps label -100, for one), and a convention may refuse inputs
    TF accepts (``F.one_hot`` out of range)."""
    if not c.raises and not any((op, pin) in profile.choose for pin in c.pins):
        return False
    args, static, _ = make_case(op, c.id, np.float64, "conform-profile")
    _, cid = expected(op, c.pins, profile, args, static)
    if cid == "tf":
        return c.raises
    return bool(BY_ID[cid].expect(args, static, None).raises)


def _property_ops() -> set[str]:
    from nnref.conform._strategies import STRATEGIES

    return set(STRATEGIES)


def _property_task(ctx: Context, op: str, dt: str) -> Callable[[], Row]:
    def run() -> Row:
        from nnref.conform._strategies import run_property

        return run_property(ctx, op, dt)

    return run


# --------------------------------------------------------------------------- repro


def repro_snippet(o: Outcome, check: str) -> str:
    """A copy-paste script: the inputs (literals when small, else regenerated from the case
    table by seed), the call, the expected values and the comparison."""
    lines = ["import numpy as np", o.ctx.import_line]
    names = o.table.names
    if small((o.args, o.static, o.dy)):
        for n, a in zip(names, o.args, strict=True):
            lines.append(f"{n} = {literal(a)}")
        lines.append(f"static = {literal(o.static)}")
        if o.dy is not None:
            lines.append(f"dy = {literal(o.dy)}")
        exp_src = None
    else:
        lines.append("from nnref.conform import case_inputs, expected_values")
        lines.append(
            f"args, static, dy = case_inputs({o.op!r}, {o.case.id!r}, {o.dtype!r}, "
            f"seed={o.ctx.seed})"
        )
        lines.append(f"{', '.join(names)}, = args")
        exp_src = (
            f"expected = expected_values({o.op!r}, {o.case.id!r}, {o.dtype!r}, "
            f"seed={o.ctx.seed}, profile={o.ctx.profile.name!r})"
        )
    call_args = ", ".join(names)
    get = _getter(o.ctx.target)
    if o.table.kind == "optimizer":
        lines.append(f"opt = {get(o.op)}(**static)")
        lines.append("# run opt.init / opt.update as nnref.cases.optim.trajectory does")
        lines.append("from nnref.cases.optim import trajectory")
        lines.append(f"ours = trajectory(opt, {call_args})")
        lines.append("import nnref.cases")
        lines.append(f"ref = trajectory(nnref.cases.reference()[{o.op!r}](**static), {call_args})")
        return "\n".join(lines)
    if o.table.kind == "batches":
        lines.append(f"batches = {get(o.op)}({call_args})")
        lines.append("print([len(b) for b in batches])")
        return "\n".join(lines)
    modified = o.modification(check)
    watch = modified.expr if modified is not None and check != "vjp-fd" else ""
    copy_watch = f"given = np.copy({watch})  # does the call modify it?"
    if watch and not is_residual(watch):  # an argument: copied before the calls
        lines.append(copy_watch)
    if check == "vjp" or (check == "vjp-fd"):
        lines.append(f"y, res = {get(o.op + '_fwd')}({call_args}, **static)")
        if watch and is_residual(watch):  # in the residuals: copied before the backward
            lines.append(copy_watch)
        lines.append(f"grads = {get(o.op + '_bwd')}(res, dy)")
    elif o.p.fwd is not None:
        lines.append(f"y, res = {get(o.op + '_fwd')}({call_args}, **static)")
    else:
        lines.append(f"y = {get(o.op)}({call_args}, **static)")
    if watch:  # bit for bit, as the check compares (0.0 == -0.0, NaN != NaN)
        lines.append(
            f"print({watch!r}, 'modified in place:', "
            f"np.asarray({watch}).tobytes() != given.tobytes())"
        )
    if check == "raises":
        lines.append("# TF raises here; this call should raise too")
        return "\n".join(lines)
    if check == "vjp-fd":
        lines.append("from nnref.check import check_vjp")
        lines.append(
            f"print(check_vjp({get(o.op + '_fwd')}, {get(o.op + '_bwd')}, ({call_args},), "
            f"static=static, seed={o.ctx.seed}, raise_on_failure=False).message())"
        )
        return "\n".join(lines)
    exp = o.expected
    if exp_src is not None:
        lines.append(exp_src)
        lines.append("y_expected, grads_expected = expected.y, expected.grads")
    else:
        lines.append(f"y_expected = {literal(np.asarray(exp.y))}")
        if check == "vjp" and exp.grads is not None:
            lines.append(f"grads_expected = {literal([_opt(g) for g in exp.grads])}")
    lines.append(
        "err = lambda a, b: float(np.max(np.abs(np.asarray(a, float) - b) / "
        "(np.abs(b) + np.sqrt(np.mean(np.square(b))) + 1e-300)))"
    )
    tol = o.ctx.tol(o.op, o.dtype)
    if check == "vjp":
        lines.append(
            "for g, r in zip(grads, grads_expected):\n"
            f"    if r is not None: print(err(g, r), 'tolerance {tol:.3g}')"
        )
    else:
        lines.append(f"print(err(y, y_expected), 'tolerance {tol:.3g}')")
    return "\n".join(lines)


def _opt(g: Any) -> Any:
    return None if g is None else np.asarray(g)


def _getter(target: Any) -> Callable[[str], str]:
    from collections.abc import Mapping

    if isinstance(target, Mapping):
        return lambda name: f"impl[{name!r}]"
    return lambda name: f"impl.{name}"
