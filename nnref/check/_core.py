"""Gradient checking by Richardson-extrapolated central differences.

The scalar probe is ``phi(x) = sum_k <f_k(x), dy_k>`` over the floating outputs ``f_k`` for a
random cotangent ``dy``; its gradient is the VJP ``bwd(res, dy)``. A comparison is either one
coordinate (``exact`` mode) or one random Rademacher direction per input tensor (``directional``
mode, "per-input projections").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nnref._validate import is_int
from nnref.check.compare import first_bit_difference

Mode = Literal["auto", "exact", "directional"]

#: Entries up to which ``mode="auto"`` checks every coordinate (4 evaluations per entry).
AUTO_EXACT_MAX_ENTRIES = 512
#: Rounding safety factor: a float computation of ``n`` terms may err by ``gamma * eps`` relative
#: to the sum of absolute terms; 128 covers the contraction lengths of nnref's ops (<= ~4096).
GAMMA = 128.0
#: The same for one evaluation of ``phi``, whose rounding noise the Richardson step-consistency
#: term (``|D(h) - D(h/2)|``) also absorbs: a smaller factor keeps native float32 checks sharp.
GAMMA_FD = 16.0
#: The same for float64 evaluations (the float64 shadow included): functions such as
#: log-sum-exp round relative to internal magnitudes far above their output (400x for a
#: saturated cross-entropy); float64's headroom affords the margin, ~1e-13 relative.
GAMMA_FD64 = 1024.0
#: The shadow comparison's rounding factor for float16 gradients (float32 ones take ``GAMMA``):
#: 128 float16 ulps is 12.5%, and a float16 VJP 20% too large passed. NumPy computes float16
#: sums and products (``np.sum``, ``matmul``, ``einsum``) in float32 and rounds once: a length-n
#: accumulation errs by about ``n * eps32`` of the sum of |terms|, under ``eps16 / 4`` up to
#: n = 2048, where accumulating in float16 itself errs by up to ``n * eps16 / 2`` (150 eps16 at
#: 300 terms: a precision bug, rejected as a float32 VJP accumulated in float16 is). What is
#: left is about one rounding (``eps16 / 2``) per elementwise step of the backward and of the
#: float16 forward that made its residuals: 4 eps16 allows eight. Correct float16 backwards of
#: dense (8 to 500 terms), softmax, log-softmax, log-sum-exp, layer norm, tanh, sigmoid and relu
#: used at most 1.3 eps16 (layer norm; dense 0.7) at 50 seeds; a gradient 2% too large exceeds
#: 4 eps16 by 2.1x or more for dense, tanh, relu, layer norm and log-softmax (not for softmax,
#: whose gradient is small against the ``|dy|`` that its cancellation allowance adds).
GAMMA_HALF = 4.0
#: Native low-precision comparisons first use this multiple of the step: eps32**(1/5) /
#: eps32**(1/3) ~ 8.4, rounded to a power of two so that ``x +- h`` stays exact.
NATIVE_WIDE = 8.0
#: Step multiples at which a violation is judged again (see
#: :meth:`_Input.compare`): rounding inside the function that its output does not show (terms
#: that cancel to ``y = 0``) shrinks as ``1/step``; a wrong gradient's error stays.
RESCUE_WIDE = (8.0, 64.0, 512.0)
#: Step fractions at which a violation whose differences did not converge is judged again: a
#: step that follows a large input (``1000 + z`` into softmax, which varies on the scale 1)
#: leaves truncation far above the convergence threshold.
NARROW = (8.0, 64.0, 512.0)
#: A verdict whose tolerance exceeds this share of the gradient's scale cannot tell a 0.1%
#: error from rounding; it is judged again at ``TIGHTEN_WIDE`` times the step.
LOOSE = 1e-3
#: Step multiples for a loose verdict: rounding (``~1/step``) dominated it, as when an input is
#: tiny beside the others (a bias of 1e-6: steps of 4e-12 against terms of size 1) or the
#: output carries a large constant (``1e5 + tanh(x)``).
TIGHTEN_WIDE = (2.0**6, 2.0**12, 2.0**18)
#: Mixed with ``seed`` into the checker's random streams ("nnref" in ASCII). Without it the
#: cotangent would be ``default_rng(seed).standard_normal(...)``, the very draw a caller makes for
#: inputs with the same seed: with ``x == dy`` a dense layer's ``dW = x^T x`` is symmetric and a
#: transposed ``dW`` passes.
SEED_SALT = 0x6E6E726566


class GradientCheckError(AssertionError):
    """Raised by :func:`check_vjp` / :func:`check_grad` when a gradient is wrong.

    ``.result`` holds the :class:`CheckResult`; the message is built from it.
    """

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message())
        self.result = result


@dataclass(frozen=True)
class Comparison:
    """One analytic-vs-numeric comparison (the worst one is reported)."""

    input: int  # position of the input in ``args``
    index: tuple[int, ...] | None  # entry, in the input's own shape (None: a whole direction)
    direction: int | None
    analytic: float  # <g, delta / step> (exact mode: g_j)
    numeric: float  # Richardson-extrapolated derivative along delta / step
    tol: float
    step: float  # the largest |delta_j| (exact mode: h_j)
    #: "ok"; "kink" (one-sided differences disagree and the analytic value lies between them);
    #: "violation" (outside the tolerance, a kink outside its one-sided range included).
    status: Literal["ok", "kink", "violation"] = "ok"
    kink: bool = False
    #: False: halving the step moved the difference by more than sqrt(eps) of the values, so
    #: finite differences cannot confirm the gradient here (a violation, judged on rounding).
    converged: bool = True
    #: The gradient's scale along delta: sum (|g_j| + rms g) |delta_j| / step.
    scale: float = 0.0

    @property
    def abs_err(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def rel_err(self) -> float:
        return self.abs_err / max(abs(self.numeric), abs(self.analytic), np.finfo(float).tiny)

    @property
    def share(self) -> float:
        """|analytic - numeric| / tolerance: above 1 is a violation (a NaN: infinitely so)."""
        err = self.abs_err
        if math.isnan(err):
            return math.inf
        return err / self.tol if self.tol > 0 else (math.inf if err else 0.0)


@dataclass(frozen=True)
class CheckResult:
    """What a gradient check found. ``ok`` is the verdict; ``message()`` explains it."""

    ok: bool
    function: str
    mode: str
    dtype: str
    shadow: bool
    seed: int
    n_evals: int
    n_checked: int
    n_violations: int
    kinks: tuple[Comparison, ...]
    worst: Comparison | None
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    #: Positions of the inputs differentiated (the floating ones); the others passed through.
    differentiated: tuple[int, ...]
    precision_worst: tuple[str, tuple[int, ...], float, float, float] | None = None
    linearity_error: str | None = None
    #: A gradient whose dtype differs from its input's (dtype in = dtype out): a failure.
    dtype_error: str | None = None
    #: The first direction's VJP, recomputed from the same residuals and cotangent after the
    #: finite differences, differs (residuals a later forward call overwrote): a failure.
    residual_error: str | None = None
    notes: tuple[str, ...] = field(default=())
    #: Exact mode: per input, ``(analytic, numeric)`` gradient arrays in float64 (``None`` for
    #: inputs not differentiated), like ``tf.test.compute_gradient`` but as VJPs.
    gradients: tuple[tuple[np.ndarray, np.ndarray] | None, ...] | None = None

    @property
    def n_kinks(self) -> int:
        return len(self.kinks)

    def message(self) -> str:
        """One readable paragraph: verdict, where, both values, errors, and how it was run."""
        verdict = "passed" if self.ok else "FAILED"
        wrt = [self.input_names[i] for i in self.differentiated]
        wrt_text = " and ".join([", ".join(wrt[:-1]), wrt[-1]] if len(wrt) > 1 else wrt)
        parts = [
            f"Gradient check of {self.function} {verdict} ({self.mode} mode, {self.dtype}"
            f"{', float64 shadow' if self.shadow else ''}, seed {self.seed}, w.r.t. {wrt_text}, "
            f"{self.n_evals} evaluations, {self.n_checked} comparisons, "
            f"{self.n_violations} violations, {self.n_kinks} kinks)."
        ]
        w = self.worst
        if w is not None:
            name = self.input_names[w.input]
            shape = self.input_shapes[w.input]
            if w.index is not None:
                a, n = w.analytic, w.numeric
                where = f"d{name}{list(w.index)} (input {w.input}, shape {shape})"
                vals = f"analytic {a:.10g} vs numeric {n:.10g}"
            else:
                where = (
                    f"d{name} along random direction {w.direction} (input {w.input}, shape {shape})"
                )
                vals = (
                    f"<grad, direction/step> analytic {w.analytic:.10g} vs numeric {w.numeric:.10g}"
                )
            if w.status == "kink":
                kink = "; accepted as a kink: within the one-sided derivatives of each kink"
            elif w.kink:
                kink = "; a kink outside the one-sided derivative range"
            elif not w.converged:
                kink = (
                    "; finite differences did not converge here (halving the step moved them by "
                    "more than sqrt(eps)): the gradient is unconfirmed, not shown wrong"
                )
            else:
                kink = ""
            parts.append(
                f"Worst at {where}: {vals}, abs error {w.abs_err:.3g}, rel error "
                f"{w.rel_err:.3g}, {w.share:.3g}x the tolerance {w.tol:.3g} (step {w.step:.3g})"
                f"{kink}."
            )
        if self.precision_worst is not None:
            name, idx, a32, a64, share = self.precision_worst
            parts.append(
                f"Low-precision gradient vs its float64 shadow: worst d{name}{list(idx)} "
                f"{a32:.8g} vs {a64:.8g} ({share:.3g}x the rounding tolerance)."
            )
        if self.kinks:
            k = self.kinks[0]
            parts.append(
                f"{self.n_kinks} kink(s) where one-sided differences disagree were not counted "
                f"as errors, first at d{self.input_names[k.input]}"
                f"{list(k.index) if k.index is not None else f' direction {k.direction}'}."
            )
        if self.linearity_error:
            parts.append(self.linearity_error)
        if self.dtype_error:
            parts.append(self.dtype_error)
        if self.residual_error:
            parts.append(self.residual_error)
        parts.extend(self.notes)
        return " ".join(parts)

    def raise_if_failed(self) -> CheckResult:
        if not self.ok:
            raise GradientCheckError(self)
        return self


# --------------------------------------------------------------------------- plumbing


def _as_tuple(v: Any) -> tuple[Any, ...]:
    return tuple(v) if isinstance(v, tuple | list) else (v,)


def _as_input(a: Any) -> Any:
    """Arrays, lists and floating scalars (Python's and NumPy's, float16 included) as arrays,
    a scalar as a 0-d one; anything else (ints, None, strings) as it is."""
    return np.asarray(a) if isinstance(a, np.ndarray | list | float | np.floating) else a


def _is_diff(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _modified(before: np.ndarray, after: np.ndarray) -> str | None:
    """Where ``after`` differs from ``before`` bit for bit ("at [i, j]: a became b"), else
    None: NaN equals the same NaN, -0.0 written over 0.0 is a change."""
    if after.shape != before.shape or after.dtype != before.dtype:  # ``x.shape = ...``
        return f"to shape {after.shape} and dtype {after.dtype}"
    diff = first_bit_difference(before, after)
    if diff is None:
        return None
    idx = diff[0]
    return f"at {list(idx)}: {before[idx]} became {after[idx]}"


def _call_fwd(
    fwd: Callable[..., Any], args: Sequence[Any], static: dict[str, Any]
) -> tuple[Any, list[Any]]:
    """``fwd(*args, **static)`` on copies of the array arguments: its output, and the arguments
    it got. The caller's own arrays never reach it (a forward that writes into its input would
    change them, and every later evaluation with them)."""
    passed = [a.copy(order="K") if isinstance(a, np.ndarray) else a for a in args]
    return fwd(*passed, **static), passed


def _accept_fwd(
    out: Any, args: Sequence[Any], passed: Sequence[Any], names: Sequence[str]
) -> tuple[Any, Any]:
    """The pair ``(y, residuals)`` a forward returned, given that it left its inputs as it got
    them (``passed`` against ``args``): finite differences need a pure function."""
    for a, p, name in zip(args, passed, names, strict=True):
        if isinstance(a, np.ndarray) and (where := _modified(a, p)) is not None:
            raise ValueError(
                f"gradient check: fwd modified its input '{name}' in place ({where}); finite "
                "differences need a pure function"
            )
    if isinstance(out, tuple | list) and len(out) == 2:
        return out[0], out[1]
    if isinstance(out, np.ndarray):
        got = f"an array of shape {out.shape}"
    elif isinstance(out, tuple | list):
        got = f"a {type(out).__name__} of {len(out)} items"
    else:
        got = f"a {type(out).__name__}"
    raise TypeError(
        f"gradient check: fwd must return the pair (y, residuals), got {got}; for a plain "
        "function y = f(*args) use check_grad(f, args, grad_f)"
    )


class _Probe:
    """Evaluates ``phi`` and counts evaluations."""

    def __init__(
        self, fwd: Callable[..., Any], static: dict[str, Any], names: Sequence[str]
    ) -> None:
        self.fwd = fwd
        self.static = static
        self.names = names
        self.n_evals = 0
        self.n_terms = 0  # floating output entries summed into phi (set by every evaluation)

    def call(self, args: Sequence[Any]) -> tuple[Any, list[Any]]:
        """One counted forward call: its raw output and the arguments it got. What ``fwd``
        raises propagates; its contract is checked by :meth:`accept`."""
        self.n_evals += 1
        return _call_fwd(self.fwd, args, self.static)

    def accept(
        self, args: Sequence[Any], out: Any, passed: Sequence[Any]
    ) -> tuple[tuple[np.ndarray, ...], Any]:
        y, res = _accept_fwd(out, args, passed, self.names)
        ys = tuple(np.asarray(o) for o in _as_tuple(y))
        self.n_terms = sum(o.size for o in ys if o.dtype.kind == "f")
        return ys, res

    def outputs(self, args: Sequence[Any]) -> tuple[tuple[np.ndarray, ...], Any]:
        return self.accept(args, *self.call(args))

    def phi(self, args: Sequence[Any], dys: Sequence[np.ndarray]) -> float:
        ys, _ = self.outputs(args)
        return float(sum(np.sum(y.astype(np.float64) * d) for y, d in _phi_terms(ys, dys)))


def _phi_terms(
    ys: Sequence[np.ndarray], dys: Sequence[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (output, cotangent) pairs ``phi`` sums: the floating outputs only. An integer or
    boolean side output (an argmax, a mask) has no derivative; it would only add jumps where it
    flips."""
    return [(y, d) for y, d in zip(ys, dys, strict=True) if y.dtype.kind == "f"]


def _rms(x: np.ndarray) -> float:
    """Root mean square of the finite entries (0 for none), scaled so squares cannot underflow."""
    xf = np.abs(x.astype(np.float64))
    finite = xf[np.isfinite(xf)]
    top = float(finite.max()) if finite.size else 0.0
    return top * float(np.sqrt(np.mean((finite / top) ** 2))) if top > 0 else 0.0


def _steps(x: np.ndarray, eps: float, fallback: float) -> np.ndarray:
    """Per-entry power-of-two steps ~ eps**(1/3) * max(|x_j|, rms(x) / 1024).

    The step follows each entry's own magnitude (functions like ``log p`` curve on the scale of
    ``p``); the RMS floor only serves entries at or near zero. An all-zero input takes the scale
    of the other inputs (``fallback``; 1 when every input is zero). A power of two at least a
    few ulps of ``x_j`` makes ``x_j +- h`` exact in nearly every case.
    """
    xf = np.abs(x.astype(np.float64))
    rms = _rms(x)
    scale = np.maximum(xf, (rms if rms > 0 else fallback) / 1024.0)
    scale = np.where(np.isfinite(scale), scale, 1.0)
    return np.exp2(np.round(np.log2(scale * eps ** (1.0 / 3.0))))


@dataclass
class _Setup:
    args: list[Any]  # evaluation arguments (float64 shadow where used)
    diff: list[int]  # positions of differentiable inputs
    dtype: np.dtype  # the caller's float dtype
    eval_dtype: np.dtype
    shadow: bool


def _prepare(
    args: Sequence[Any],
    shadow: bool | str,
    probe: _Probe,
    names: Sequence[str],
    bwd: Callable[..., Any],
) -> _Setup:
    arrs = [_as_input(a) for a in args]
    diff = [i for i, a in enumerate(arrs) if _is_diff(a)]
    if not diff:
        got = ", ".join(
            type(a).__name__ + (f" {a.dtype}" if hasattr(a, "dtype") else "") for a in args
        )
        raise ValueError(
            f"gradient check: no floating-point input to differentiate (args: {got or 'none'})"
        )
    for i in diff:
        bad = ~np.isfinite(arrs[i])
        if bad.any():
            j = int(np.argmax(bad))
            entry = [int(v) for v in np.unravel_index(j, arrs[i].shape)]
            raise ValueError(
                f"gradient check: input '{names[i]}' holds {arrs[i].flat[j]} at {entry} "
                f"({int(bad.sum())} non-finite entries of {arrs[i].size}): finite differences "
                "need finite inputs"
            )
    # The narrowest input sets the precision: a float32 input beside float64 ones makes the
    # function round in float32, which float64 steps and tolerances read as kinks (a correct
    # tanh(x32) @ w64 failed at every seed). It takes the shadow, or native steps at its eps.
    dtype = min({arrs[i].dtype for i in diff}, key=lambda d: d.itemsize)
    low = dtype.itemsize < 8
    use_shadow = low and shadow in (True, "auto")
    if use_shadow:
        sargs = [a.astype(np.float64) if i in diff else a for i, a in enumerate(arrs)]
        # Whatever a float32-only function raises in float64 (a TypeError, a KeyError from a
        # kernel table, an assert) means: no shadow. What the checker raises about the forward's
        # contract (modified inputs, no pair) is not caught here.
        try:
            out, passed = probe.call(sargs)
        except Exception as e:
            if shadow is True:
                raise ValueError(
                    "gradient check: shadow=True but the function fails in float64 "
                    f"({type(e).__name__}: {e})"
                ) from e
        else:
            ys, res = probe.accept(sargs, out, passed)
            # Integer and boolean side outputs (an argmax) do not count: phi ignores them.
            narrow = [k for k, y in enumerate(ys) if y.dtype.kind == "f" and y.dtype != np.float64]
            if narrow and shadow is True:
                k = narrow[0]
                raise ValueError(
                    f"gradient check: shadow=True but for float64 inputs the function's output "
                    f"{k} is {ys[k].dtype}"
                )
            if not narrow:
                # A backward that casts its gradients to fixed dtypes cannot serve as the shadow.
                grads = _grads(bwd, res, [np.zeros_like(y) for y in ys], len(args))
                fixed = [i for i in diff if np.asarray(grads[i]).dtype != np.float64]
                if not fixed:
                    return _Setup(sargs, diff, dtype, np.dtype(np.float64), True)
                if shadow is True:
                    i = fixed[0]
                    raise ValueError(
                        f"gradient check: shadow=True but for float64 inputs the backward "
                        f"returns a {np.asarray(grads[i]).dtype} gradient for '{names[i]}'"
                    )
    return _Setup(arrs, diff, dtype, dtype, False)


def _cotangents(ys: tuple[np.ndarray, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Random normal cotangents for the floating outputs, zeros for the others (phi ignores
    them: an integer output has no gradient to weigh)."""
    return [
        rng.standard_normal(y.shape).astype(y.dtype) if y.dtype.kind == "f" else np.zeros_like(y)
        for y in ys
    ]


def _given_cotangents(cotangent: Any, ys: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """The caller's cotangent, one array per output, each of its output's shape and dtype, and
    finite in that dtype."""
    ds = _as_tuple(cotangent)
    if len(ds) != len(ys):
        raise ValueError(
            f"gradient check: 'cotangent' has {len(ds)} array(s) for {len(ys)} output(s)"
        )
    out = []
    for k, (d, y) in enumerate(zip(ds, ys, strict=True)):
        a = np.asarray(d)
        if a.shape != y.shape:
            raise ValueError(
                f"gradient check: 'cotangent' {k} has shape {a.shape}, output {k} has shape "
                f"{y.shape}"
            )
        # NaN cast to an int output, or 1e39 to float32, is refused below, not warned about.
        with np.errstate(invalid="ignore", over="ignore"):
            c = a.astype(y.dtype)
        bad = ~np.isfinite(a) if a.dtype.kind in "fc" else np.zeros(a.shape, bool)
        if c.dtype.kind == "f":
            bad |= ~np.isfinite(c)
        if bad.any():
            j = int(np.argmax(bad))
            entry = [int(v) for v in np.unravel_index(j, a.shape)]
            raise ValueError(
                f"gradient check: 'cotangent' {k} holds {a.flat[j]} at {entry} "
                f"({int(bad.sum())} non-finite entries of {a.size} as {y.dtype}): finite "
                "differences need a finite cotangent"
            )
        out.append(c)
    return out


def _grads(bwd: Callable[..., Any], res: Any, dys: Sequence[np.ndarray], n_args: int) -> list[Any]:
    """``bwd(res, dy)`` on a copy of the cotangent, which it must leave as it got it: phi and
    later calls use the same cotangent."""
    passed = [d.copy() for d in dys]
    g = _as_tuple(bwd(res, passed[0] if len(passed) == 1 else tuple(passed)))
    for k, (d, p) in enumerate(zip(dys, passed, strict=True)):
        if (where := _modified(d, p)) is not None:
            which = "" if len(dys) == 1 else f" {k}"
            raise ValueError(
                f"gradient check: bwd modified its cotangent{which} in place ({where}); a VJP "
                "must leave dy as it got it"
            )
    if len(g) != n_args:
        raise ValueError(
            f"gradient check: backward returned {len(g)} gradients for {n_args} inputs"
        )
    return list(g)


def _dtype_mismatch(
    grads: Sequence[Any], args: Sequence[Any], diff: Sequence[int], names: Sequence[str]
) -> str | None:
    """A sentence naming the first gradient whose dtype is not its input's, else None."""
    for i in diff:
        g = grads[i]
        if g is not None and np.asarray(g).dtype != args[i].dtype:
            return (
                f"Backward returned a {np.asarray(g).dtype} gradient for {args[i].dtype} input "
                f"'{names[i]}': a gradient keeps its input's dtype."
            )
    return None


def _check_grad_shape(g: Any, a: np.ndarray, name: str) -> np.ndarray:
    if g is None:
        raise ValueError(f"gradient check: backward returned None for float input '{name}'")
    g = np.asarray(g)
    if g.shape != a.shape:
        raise ValueError(
            f"gradient check: gradient for '{name}' has shape {g.shape}, input has {a.shape}"
        )
    return g


# --------------------------------------------------------------------------- one comparison


@dataclass(frozen=True)
class _Input:
    """What every comparison along a direction of input ``i`` needs: the probe, the setup, the
    cotangents, the analytic gradient ``g`` and the scales of phi and of ``g``."""

    probe: _Probe
    s: _Setup
    dys: Sequence[np.ndarray]
    i: int
    g: np.ndarray
    phi_scale: float
    g_floor: float

    def compare(
        self,
        delta: np.ndarray,
        phi0: float | None,
        index: tuple[int, ...] | None,
        direction: int | None,
    ) -> Comparison:
        """Compare <g, delta> with the derivative of phi along delta (see :meth:`_at`).

        Natively in low precision, rounding (``~eps/h``) dominates the tolerance and truncation
        (``~h^2``, the Richardson estimate) is far below it, so a comparison of one entry is first
        made at ``NATIVE_WIDE`` times the step (``~eps^(1/5)``, the optimum of a fourth-order
        difference). Not along a direction of several entries: there the one-sided errors of many
        kinks near zero (relu's, on the RMS-floor steps) grow with the step while the tolerance
        shrinks, and a direction through 70% zeros failed at 2-3 of 40 seeds.
        A converged, kink-free pass at the wide step is the verdict. A converged, kink-free
        violation is the verdict when the differences at half the wide step confirm it (they lie
        closer to the wide step's than to the analytic value): a kink within reach that the kink
        test misses (a tie crossed between a fifth and a third of the step) moves the wide
        differences away from the narrower ones. Anything else is judged at the plain step.
        """
        rest = (phi0, index, direction)
        if self.s.eval_dtype == np.float64:
            c = self._rescued(self._at(delta, *rest), delta, rest)
            return self._tightened(self._narrowed(c, delta, rest), delta, rest)
        if np.count_nonzero(delta) > 1:
            return self._rescued(self._at(delta, *rest), delta, rest)
        wide = self._at((delta * NATIVE_WIDE).astype(delta.dtype), *rest)
        clean = wide.converged and not wide.kink
        if wide.status == "ok" and clean:
            return wide
        if wide.status == "violation" and clean:
            half = self._at((delta * (NATIVE_WIDE / 2)).astype(delta.dtype), *rest)
            if abs(wide.numeric - half.numeric) < abs(wide.analytic - half.numeric):
                return wide
        return self._at(delta, *rest)

    def _rescued(self, plain: Comparison, delta: np.ndarray, rest: tuple[Any, ...]) -> Comparison:
        """``plain``, unless it is a violation whose error shrinks like rounding at a wider step
        (``RESCUE_WIDE``). There, with differences converged and no kink, the verdict is a pass
        when the error is within the wide step's tolerance and at most half the plain one, or at
        most ``2 / width`` of the plain one whatever the tolerance.

        The tolerance bounds rounding by the values of ``phi``; a function whose terms cancel
        (a dense layer at ``x w = -b``: ``y = 0`` from terms of size 1) rounds relative to the
        terms, ``1/step`` times larger in the differences, and failed at 5x its tolerance with
        a relative error of 4e-12 (3.0e-12 at the plain step, 6.1e-13 at 8x, 2.3e-13 at 64x).
        Rounding is the only error that shrinks as the step grows: truncation and a kink's bias
        grow, and a wrong gradient's error ``E`` stays. ``|E + r_wide| <= |E + r_plain| / 2``
        needs rounding ``r_plain`` at the plain step of about ``E`` or more, where the plain
        step could not judge it either; shrinking by ``width / 2`` bounds ``E`` by about
        ``2 r_plain / width``. Such rounding also poses as a kink (second differences that grow
        as the step shrinks) or as unconverged differences, so those violations are judged again
        too; a true kink within the plain step lies within the wider ones, which then see it.
        Errors above ``eps^(1/3)`` relative (the step's own scale) are not tried (cancellation
        left 1e-12 to 5e-8 in float64): a gradient that far off fails without the extra
        evaluations.
        """
        err = abs(plain.analytic - plain.numeric)
        eps = float(np.finfo(self.s.eval_dtype).eps)
        scale = abs(plain.analytic) + abs(plain.numeric)
        if (
            plain.status != "violation"
            or not math.isfinite(scale)
            or not err <= eps ** (1 / 3) * scale
        ):
            return plain
        for width in RESCUE_WIDE:
            wide = self._at((delta * width).astype(delta.dtype), *rest)
            e = abs(wide.analytic - wide.numeric)
            if wide.status == "ok" and e <= err / 2.0:
                return wide
            if wide.converged and not wide.kink and e <= err * 2.0 / width:
                # Judged against the scaling bound it met (its own tolerance may be smaller).
                return dataclasses.replace(wide, tol=max(wide.tol, err * 2.0 / width), status="ok")
        return plain

    def _narrowed(self, c: Comparison, delta: np.ndarray, rest: tuple[Any, ...]) -> Comparison:
        """``c``, unless it is a violation whose differences did not converge and that is
        judged at a narrower step (``step / NARROW``): its first comparison there that
        converges without a kink is the verdict when it is a violation, or a pass that is not
        loose (:meth:`_loose`). The step follows ``|x_j|``, and an input far from zero on the
        scale the function varies on (logits ``1000 + z``) left truncation 1e-5 of the values
        at the plain step while the extrapolated derivative was good to 1e-12: a correct softmax
        failed at every seed. A narrower step is an ordinary comparison with its own, larger,
        rounding tolerance; a wrong gradient's error stays.
        """
        if c.status != "violation" or c.converged or c.kink or not self._finite(c):
            return c
        x = self.s.args[self.i]
        for f in NARROW:
            d = (delta / f).astype(delta.dtype)
            moved = d != 0
            if not np.all(x[moved] + d[moved] != x[moved]):  # below the entries' ulps
                break
            n = self._at(d, *rest)
            if n.kink or not self._finite(n):
                break
            if n.converged and (n.status == "violation" or not self._loose(n)):
                return n
        return c

    def _tightened(self, c: Comparison, delta: np.ndarray, rest: tuple[Any, ...]) -> Comparison:
        """``c``, unless it is a loose pass (:meth:`_loose`) that is judged at a wider step
        (``TIGHTEN_WIDE``): the first comparison there that is not loose is the verdict, pass or
        violation, when its differences converge without a kink and its derivative lies within
        both tolerances of the plain one (where the plain step's is good, as a pass says, the
        wider step's must agree with it); a step that meets a kink, does not converge or
        disagrees ends the search with ``c``.

        Rounding sets the plain tolerance, ``~eps S / step`` with ``S`` the size of phi's terms,
        and it can exceed the gradient: a dense layer's bias of 1e-6 takes steps of 4e-12, and
        with terms of size 1 the tolerance was 22.6 against a gradient of 4.1, so a backward
        that dropped the bias gradient passed at every seed (as did a 5% error in
        ``1e5 + tanh(x)``). Rounding shrinks as the step grows while truncation, checked by
        the convergence test, grows.
        """
        if c.status != "ok" or not self._loose(c):
            return c
        for width in TIGHTEN_WIDE:
            w = self._at((delta * width).astype(delta.dtype), *rest)
            clean = w.converged and not w.kink and self._finite(w)
            if not clean or abs(w.numeric - c.numeric) > c.tol + w.tol:
                break
            if not self._loose(w):
                return w
        return c

    @staticmethod
    def _finite(c: Comparison) -> bool:
        return math.isfinite(c.analytic) and math.isfinite(c.numeric) and math.isfinite(c.tol)

    @staticmethod
    def _loose(c: Comparison) -> bool:
        """The tolerance exceeds ``LOOSE`` of the gradient's scale (analytic with the RMS
        floor, and numeric)."""
        return c.tol > LOOSE * (c.scale + abs(c.numeric))

    def _at(
        self,
        delta: np.ndarray,
        phi0: float | None,
        index: tuple[int, ...] | None,
        direction: int | None,
    ) -> Comparison:
        """Compare <g, delta> with the Richardson-extrapolated derivative of phi along delta."""
        probe, s, dys, i, g = self.probe, self.s, self.dys, self.i, self.g
        phi_scale, g_floor = self.phi_scale, self.g_floor
        eps = float(np.finfo(s.eval_dtype).eps)
        x = s.args[i]
        vals = {}
        for t in (1.0, 0.5):
            for sign in (1.0, -1.0):
                a = list(s.args)
                a[i] = np.asarray(x + (sign * t) * delta, dtype=x.dtype)  # 0-d stays an array
                vals[t, sign] = probe.phi(a, dys)
        # Everything per unit step (delta / max|delta|): products g * delta never underflow, and in
        # exact mode the comparison is directly g_j against the finite-difference slope.
        step = float(np.max(np.abs(delta.astype(np.float64))))
        d1 = (vals[1.0, 1.0] - vals[1.0, -1.0]) / 2.0 / step
        d2 = (vals[0.5, 1.0] - vals[0.5, -1.0]) / 1.0 / step
        numeric = (4.0 * d2 - d1) / 3.0
        trunc = abs(d2 - d1) / 3.0
        # Only the perturbed entries: an inf elsewhere in g must not turn 0 * inf into a NaN here.
        nz = np.flatnonzero(delta)
        dd = delta.flat[nz].astype(np.float64) / step
        gd = g.flat[nz].astype(np.float64)
        analytic = float(np.sum(gd * dd))
        a_abs = float(np.sum((np.abs(gd) + g_floor) * np.abs(dd)))
        g_eps = float(np.finfo(s.dtype if not s.shadow else np.float64).eps)
        # The perturbed evaluations may be far larger than phi(x) (other entries' h^2 terms).
        scale = phi_scale + max(abs(v) for v in vals.values())
        # Each phi evaluation errs by <= gamma*eps*scale; R = (4 d2 - d1)/3 combines 4 of them.
        gamma_fd = GAMMA_FD64 if s.eval_dtype == np.float64 else GAMMA_FD
        round_num = gamma_fd * eps * scale * (4.0 * 2.0 + 1.0) / 3.0 / step
        # phi sums its terms: below the smallest normal number each may be off by a subnormal step.
        round_num += 8 * probe.n_terms * float(np.finfo(s.eval_dtype).smallest_subnormal) / step
        # Plus a few subnormal steps: below the smallest normal number, relative precision is lost.
        round_an = GAMMA * g_eps * a_abs + 8 * float(np.finfo(s.eval_dtype).smallest_subnormal)
        tol = round_num + round_an + 2.0 * trunc
        converged = trunc <= math.sqrt(eps) * (a_abs + abs(numeric)) + round_num
        if not math.isfinite(analytic):
            # A NaN or infinite gradient: finite differences can confirm neither. Never pass.
            return Comparison(
                i, index, direction, analytic, numeric, round_num, step, "violation", scale=a_abs
            )
        if scale < float(np.finfo(s.eval_dtype).tiny) and abs(analytic) > round_an:
            # Every evaluation underflows: finite differences resolve nothing here. Never pass.
            return Comparison(
                i, index, direction, analytic, numeric, round_an, step, "violation", scale=a_abs
            )
        if abs(analytic - numeric) <= tol and converged:
            return Comparison(i, index, direction, analytic, numeric, tol, step, scale=a_abs)
        # Kink: one-sided differences that do not shrink together with the step.
        if phi0 is None:
            phi0 = probe.phi(s.args, dys)
        jump1 = ((vals[1.0, 1.0] - phi0) - (phi0 - vals[1.0, -1.0])) / step
        jump2 = ((vals[0.5, 1.0] - phi0) - (phi0 - vals[0.5, -1.0])) * 2.0 / step
        if abs(jump2) > round_num + round_an and abs(jump2) > 0.75 * abs(jump1):
            lo, hi = sorted(
                ((phi0 - vals[0.5, -1.0]) * 2.0 / step, (vals[0.5, 1.0] - phi0) * 2.0 / step)
            )
            inside = lo - tol <= analytic <= hi + tol
            return Comparison(
                i,
                index,
                direction,
                analytic,
                numeric,
                tol,
                step,
                status="kink" if inside else "violation",
                kink=True,
                scale=a_abs,
            )
        # Outside the tolerance, or finite differences that did not converge: never a silent pass
        # (unconverged differences are judged against the rounding terms alone).
        return Comparison(
            i,
            index,
            direction,
            analytic,
            numeric,
            tol if converged else round_num + round_an,
            step,
            status="violation",
            converged=converged,
            scale=a_abs,
        )


# --------------------------------------------------------------------------- drivers


@dataclass(frozen=True)
class _Line:
    """One failing direction ``delta`` along an input."""

    along: _Input
    delta: np.ndarray

    def part(self, idx: np.ndarray) -> Comparison:
        """The comparison along ``delta`` restricted to the flat entries ``idx`` (one entry: its
        index is recorded)."""
        d = np.zeros_like(self.delta)
        d.flat[idx] = self.delta.flat[idx]
        entry = tuple(int(v) for v in np.unravel_index(int(idx[0]), self.delta.shape))
        index = entry if idx.size == 1 else None
        return self.along.compare(d, None, index, None)

    def split(self, idx: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], list[Comparison]]:
        """The two halves of ``idx`` and their comparisons."""
        halves = (idx[: idx.size // 2], idx[idx.size // 2 :])
        return halves, [self.part(h) for h in halves]


def _localize(line: _Line, idx: np.ndarray) -> Comparison:
    """Bisect the failing part ``idx`` of a direction down to one entry (O(log n) comparisons).

    Each step follows the half that is a violation without kinks (a plain error), else a
    violation, else the larger share of its tolerance.
    """
    while idx.size > 1:
        halves, cs = line.split(idx)
        worse = max(
            range(2),
            key=lambda k: (
                cs[k].status == "violation" and not cs[k].kink,
                cs[k].status == "violation",
                cs[k].share,
            ),
        )
        idx = halves[worse]
    return line.part(idx)


def _resolve(line: _Line, idx: np.ndarray, c: Comparison) -> Comparison | None:
    """Judge a violation ``c`` along the direction restricted to ``idx``.

    Finite differences along a direction through several kinks are ambiguous: each kink's
    subgradient may lie anywhere in its own one-sided range, their sum need not lie between the
    direction's one-sided derivatives, and kinks whose jumps cancel do not even show as a kink
    (relu's 0 at 0 on many zeros, max-pool ties). So the part is split and its violating halves
    are judged in turn, worst first, down to single entries, which are judged exactly. Returns
    the first violation found (located to one entry), or None when every violating half is
    explained by kinks. A part whose halves both pass while no kink was seen fails itself: an
    error spread too thinly over its entries to show in one of them.
    """
    if idx.size == 1:  # one entry is judged exactly: c is its verdict
        return c
    halves, cs = line.split(idx)
    explained = c.kink or any(h.kink for h in cs)
    for k in sorted(range(2), key=lambda k: (cs[k].kink, -cs[k].share)):
        if cs[k].status == "violation":
            v = _resolve(line, halves[k], cs[k])
            if v is not None:
                return v
            explained = True  # None means: explained by kinks
    return None if explained else _localize(line, idx)


def _precision_check(
    diff: Sequence[int],
    args: Sequence[Any],
    g_low: list[Any],
    g_ref: list[Any],
    names: Sequence[str],
    dy_scale: float,
) -> tuple[tuple[str, tuple[int, ...], float, float, float] | None, bool]:
    """Entry-wise comparison of the caller's low-precision VJP with its float64 shadow, every
    gradient at the precision of the narrowest differentiable input (``args``: the caller's
    inputs): a float64 weight's gradient from float32 activations carries float32 rounding.

    Rounding is relative to the gradient and to the cotangent's magnitude: a VJP that cancels
    terms of size |dy| (softmax of a saturated row) keeps their absolute rounding error.
    """
    worst: tuple[str, tuple[int, ...], float, float, float] | None = None
    ok = True
    own = max((np.finfo(args[i].dtype) for i in diff), key=lambda f: f.eps)
    gamma = GAMMA_HALF if own.bits == 16 else GAMMA
    for i in diff:
        lo = np.asarray(g_low[i]).astype(np.float64)
        hi = np.asarray(g_ref[i]).astype(np.float64)
        tol = gamma * float(own.eps) * (np.abs(hi) + _rms(hi) + dy_scale) + float(own.tiny)
        share = np.abs(lo - hi) / tol
        share = np.where(np.isnan(share), np.inf, share)
        j = int(np.argmax(share))
        entry = tuple(int(v) for v in np.unravel_index(j, lo.shape))
        if worst is None or share.flat[j] > worst[4]:
            worst = (names[i], entry, float(lo.flat[j]), float(hi.flat[j]), float(share.flat[j]))
        ok &= bool(share.flat[j] <= 1.0)
    return worst, ok


@dataclass(frozen=True)
class _Replay:
    """One backward call to repeat after the finite differences: its residuals, its cotangent,
    copies of the gradients it gave (by input position), and the forward calls made until then.
    """

    res: Any
    dys: Sequence[np.ndarray]
    n_args: int
    grads: dict[int, np.ndarray]
    n_evals: int


def _replay(
    res: Any, dys: Sequence[np.ndarray], grads: Sequence[Any], diff: Sequence[int], n_evals: int
) -> _Replay:
    # Copies: a backward that returns one reused output buffer would change these too.
    return _Replay(res, dys, len(grads), {i: np.array(grads[i]) for i in diff}, n_evals)


def _replayed(
    bwd: Callable[..., Any], replays: Sequence[_Replay], names: Sequence[str], n_evals: int
) -> str | None:
    """Call ``bwd`` again as each replay did; a sentence naming the first gradient that changed.

    A forward whose residual is a workspace the next call overwrites (or a backward that
    consumes its residuals) gives the right VJP right after its forward and another one later;
    exact mode calls the backward once per residual, so only this repetition sees it. The
    backward is deterministic, as the rest of the check assumes: any change of the bits fails
    (NaN equal to the same NaN).
    """
    for rp in replays:
        again = _grads(bwd, rp.res, rp.dys, rp.n_args)
        for i, before in rp.grads.items():
            changed = _modified(before, np.asarray(again[i]))
            if changed is not None:
                return (
                    "Backward depends on state that later forward calls changed (residuals "
                    "overwritten or reused): called again with the same residuals and cotangent "
                    f"after {n_evals - rp.n_evals} more forward calls, its {before.dtype} "
                    f"d{names[i]} changed {changed}."
                )
    return None


def _linearity(
    bwd: Callable[..., Any],
    res: Any,
    ys: tuple[np.ndarray, ...],
    s: _Setup,
    n_args: int,
    rng: np.random.Generator,
    names: Sequence[str],
) -> str | None:
    """bwd(a g1 + b g2) == a bwd(g1) + b bwd(g2), and bwd(0) == 0."""
    a, b = 0.75, -1.25  # exact in binary
    g1, g2 = _cotangents(ys, rng), _cotangents(ys, rng)
    mix = [(a * u + b * v).astype(u.dtype) for u, v in zip(g1, g2, strict=True)]
    r1, r2, rm = (_grads(bwd, res, d, n_args) for d in (g1, g2, mix))
    rz = _grads(bwd, res, [np.zeros_like(u) for u in g1], n_args)
    for i in s.diff:
        # Rounding at the gradient's own precision (a float32 input among float64 ones).
        own = np.asarray(r1[i]).dtype
        eps = float(
            np.finfo(own if own.kind == "f" and own.itemsize < s.dtype.itemsize else s.dtype).eps
        )
        u, v, w = (np.asarray(r[i]).astype(np.float64) for r in (r1, r2, rm))
        want = a * u + b * v
        dys = max(_rms(d) for d in (*g1, *g2))  # cancellation keeps rounding relative to |dy|
        scale = abs(a) * (np.abs(u) + _rms(u) + dys) + abs(b) * (np.abs(v) + _rms(v) + dys)
        excess = np.abs(w - want) - GAMMA * eps * scale
        excess = np.where(np.isnan(excess), np.inf, excess)  # a NaN anywhere is the worst
        if np.any(excess > 0):
            j = int(np.argmax(excess))
            entry = tuple(int(q) for q in np.unravel_index(j, u.shape))
            return (
                f"Backward is not linear in the cotangent: d{names[i]}{list(entry)} of "
                f"bwd({a}*g1 {b:+}*g2) is {w.flat[j]:.10g}, expected {want.flat[j]:.10g}."
            )
        z = np.asarray(rz[i])
        if np.any(z != 0):
            j = int(np.argmax(z != 0))
            entry = tuple(int(q) for q in np.unravel_index(j, z.shape))
            return (
                f"Backward of a zero cotangent is not zero: d{names[i]}{list(entry)} = "
                f"{z.flat[j]:.10g}."
            )
    return None


def _validate_options(
    mode: Any, directions: Any, seed: Any, shadow: Any, linearity: Any, raise_on_failure: Any
) -> None:
    """Refuse a bad option before any evaluation: ``directions=0`` would compare nothing and
    pass, and ``shadow="on"`` would silently mean False."""
    if mode not in ("auto", "exact", "directional"):
        raise ValueError(
            f"gradient check: unknown mode {mode!r} (expected 'auto', 'exact' or 'directional')"
        )
    if not (is_int(directions) and directions > 0):
        raise ValueError(f"gradient check: 'directions' must be a positive int, got {directions!r}")
    if not (is_int(seed) and seed >= 0):
        raise ValueError(f"gradient check: 'seed' must be a non-negative int, got {seed!r}")
    if not (isinstance(shadow, bool) or shadow == "auto"):
        raise ValueError(f"gradient check: 'shadow' must be True, False or 'auto', got {shadow!r}")
    for name, flag in (("linearity", linearity), ("raise_on_failure", raise_on_failure)):
        if not isinstance(flag, bool):
            raise ValueError(f"gradient check: {name!r} must be True or False, got {flag!r}")


def check_vjp(
    fwd: Callable[..., Any],
    bwd: Callable[..., Any],
    args: Sequence[Any],
    *,
    static: dict[str, Any] | None = None,
    mode: Mode = "auto",
    directions: int = 4,
    seed: int = 0,
    shadow: bool | Literal["auto"] = "auto",
    linearity: bool = True,
    names: Sequence[str] | None = None,
    cotangent: Any = None,
    raise_on_failure: bool = True,
) -> CheckResult:
    """Check a forward/backward pair against finite differences.

    Parameters
    ----------
    fwd : callable
        ``fwd(*args, **static) -> (y, residuals)``; ``y`` an array or a tuple of arrays. It
        gets copies of the array arguments; one that it modifies in place is a ``ValueError``
        (finite differences need a pure function). Integer and boolean outputs (an argmax, a
        mask) are not differentiated: their cotangent is zero and phi leaves them out.
    bwd : callable
        ``bwd(residuals, dy) -> gradients``, one entry per positional argument (``None`` for
        integer inputs, which are not differentiated). ``dy`` is an array, or a tuple for
        tuple outputs: a copy, which a backward that modifies is a ``ValueError``.
    args : sequence
        Positional inputs. Floating arrays, lists and floating scalars (NumPy's included, as
        0-d arrays) are differentiated, and listed in the report; anything else (integer
        labels, None, strings) is passed as is.
    static : dict, optional
        Keyword (hyper)parameters for ``fwd``.
    mode : {"auto", "exact", "directional"}
        ``exact`` checks every coordinate (4 evaluations per entry). ``directional`` checks
        ``directions`` random +-1 directions per input tensor (4 evaluations each), with a
        fresh random cotangent per direction, and bisects a failing direction down to one
        entry. ``auto`` is exact up to 512 differentiable entries.
    directions : int
        Random directions per input tensor in directional mode, at least 1.
    seed : int
        A non-negative int. Seeds cotangents and directions (mixed with a fixed salt,
        ``SEED_SALT``, so they never coincide with ``np.random.default_rng(seed)``); the same
        seed gives the same verdict bit for bit.
    shadow : bool or "auto"
        For float32 (or float16) inputs, evaluate the finite differences on a float64 copy
        and compare the caller's VJP entry-wise with the float64 VJP. ``"auto"`` falls back to
        native precision when the function does not run in float64 (raises any exception, or
        returns outputs that are not float64); ``True`` then raises a ``ValueError`` saying
        which.
    linearity : bool
        Also check ``bwd(a g1 + b g2) == a bwd(g1) + b bwd(g2)`` and ``bwd(0) == 0``.
    cotangent : array or tuple of arrays, optional
        Use this cotangent (in every direction) instead of random ones, e.g. to compare with
        another oracle's VJP at the same ``dy``: one array per output, of its shape, finite
        once cast to its dtype (else ``ValueError``).
    raise_on_failure : bool
        Raise :class:`GradientCheckError` (message built from the result) on failure.

    Notes
    -----
    Steps are powers of two, ``h_j ~ eps**(1/3) * max(|x_j|, rms(x)/1024)`` (an all-zero input
    takes the other inputs' scale). The numeric value is the Richardson extrapolation of central
    differences at ``h`` and ``h/2``; their difference ``trunc`` estimates its error. Everything is
    per unit step (``delta / max|delta|``). A comparison passes when
    ``|analytic - numeric| <= 2*trunc + gamma*eps*3*S/step + GAMMA*eps*sum(|g|+rms g)|delta/step|``
    plus subnormal floors, with ``S = sum|y*dy| + |phi| + max|phi(x +- t*delta)|`` and ``gamma``
    = ``GAMMA_FD64`` for float64 evaluations, ``GAMMA_FD`` otherwise. Natively in low precision
    (no shadow) one entry's comparison is first made at ``NATIVE_WIDE`` (8) times the step,
    ``~eps^(1/5)``, where rounding weighs 8x less: its clean pass stands, its clean violation
    stands when the differences at half that step confirm it, and anything else is judged at the
    plain step. Every other comparison (float64 evaluations, the shadow, directions) that is a
    violation within ``eps^(1/3)`` relative is judged again at ``RESCUE_WIDE`` (8, 64, then
    512) times the step: with converged, kink-free differences there, an error within that
    step's tolerance and at most half the plain one, or at most ``2 / width`` of the plain one,
    passes. Rounding inside the function that its values do not show (terms that cancel to
    ``y = 0``) shrinks as the step grows; truncation, kinks and a wrong gradient's error do not.
    With float64 differences, an unconverged violation is judged again at ``1 / NARROW`` (1/8,
    1/64, 1/512) of the step, and a pass whose tolerance exceeds ``LOOSE`` (0.1%) of the
    gradient's scale at ``TIGHTEN_WIDE`` (2^6, 2^12, 2^18) times it, where the first
    comparison that converges without a kink, is not loose and agrees with the plain one is
    the verdict (see :meth:`_Input._narrowed`, :meth:`_Input._tightened`).
    Unconverged differences never pass; nor does a function whose values all underflow, nor a
    NaN or infinite gradient.
    After the finite differences the first direction's backward calls are repeated with the same
    residuals and cotangents; a gradient that changed (residuals a later forward call
    overwrote) fails the check.
    Entries whose one-sided differences disagree at both step sizes are kinks: reported, and
    accepted when the analytic value lies between the one-sided derivatives. A failing direction
    is split in halves down to single entries where several kinks make it ambiguous (their
    one-sided ranges add up beyond the direction's own); an error spread too thinly to show in
    one entry still fails its direction. With the shadow, an entry of the caller's VJP passes
    when ``|g_low - g64| <= gamma*eps_low*(|g64| + rms g64 + rms dy) + tiny_low``, at the
    narrowest differentiable input's precision, ``gamma`` = ``GAMMA`` for float32 and
    ``GAMMA_HALF`` for float16.
    """
    if not isinstance(args, tuple | list):
        got = (
            f"an array of shape {args.shape}"
            if isinstance(args, np.ndarray)
            else f"a {type(args).__name__}"
        )
        raise TypeError(
            f"gradient check: 'args' must be a tuple or list of positional inputs, got {got}; "
            "pass a single input as (x,)"
        )
    _validate_options(mode, directions, seed, shadow, linearity, raise_on_failure)
    static = dict(static or {})
    rng = np.random.default_rng([seed, SEED_SALT])  # never the caller's default_rng(seed)
    nm = tuple(names) if names is not None else tuple(f"x{k}" for k in range(len(args)))
    if len(nm) != len(args):
        raise ValueError("gradient check: 'names' must name every positional argument")
    probe = _Probe(fwd, static, nm)
    s = _prepare(args, shadow, probe, nm, bwd)
    n_entries = sum(s.args[i].size for i in s.diff)
    chosen = mode
    if mode == "auto":
        chosen = "exact" if n_entries <= AUTO_EXACT_MAX_ENTRIES else "directional"
    eps = float(np.finfo(s.eval_dtype).eps)

    # The caller's own-precision pass (for the shadow comparison and linearity).
    low_args = [_as_input(a) for a in args]
    ys_low, res_low = probe.outputs(low_args)

    rms_all = [r for r in (_rms(s.args[i]) for i in s.diff) if r > 0]
    fallback = max(rms_all) if rms_all else 1024.0
    underflow = False
    comparisons: list[Comparison] = []
    exact_grads: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(args)
    precision_worst = None
    precision_ok = True
    dtype_error: str | None = None
    replays: list[_Replay] = []  # the first direction's backward calls, repeated at the end
    n_dir = 1 if chosen == "exact" else directions
    ys, res = probe.outputs(s.args)  # deterministic and bwd is pure: one forward serves all
    # Cast to the caller's precision: the shadow's cotangent is the float64 image of that one.
    given = None if cotangent is None else _given_cotangents(cotangent, ys_low)
    for k in range(n_dir):
        dys = _cotangents(ys, rng) if given is None else given
        if s.shadow:
            dlow = [d.astype(y.dtype) for d, y in zip(dys, ys_low, strict=True)]
            # The float64 image of the same cotangent (an integer output's stays integer).
            dys = [d.astype(np.float64) if d.dtype.kind == "f" else d for d in dlow]
        grads = _grads(bwd, res, dys, len(args))
        if k == 0:
            replays.append(_replay(res, dys, grads, s.diff, probe.n_evals))
        dtype_error = dtype_error or _dtype_mismatch(grads, s.args, s.diff, nm)
        if s.shadow:
            glow = _grads(bwd, res_low, dlow, len(args))
            if k == 0:
                replays.append(_replay(res_low, dlow, glow, s.diff, probe.n_evals))
            for i in s.diff:
                _check_grad_shape(glow[i], s.args[i], nm[i])
            dtype_error = dtype_error or _dtype_mismatch(glow, low_args, s.diff, nm)
            dy_scale = max(_rms(d) for d in dlow)
            pw, pok = _precision_check(s.diff, low_args, glow, grads, nm, dy_scale)
            if precision_worst is None or (pw is not None and pw[4] > precision_worst[4]):
                precision_worst = pw
            precision_ok &= pok
        terms = _phi_terms(ys, dys)
        phi_scale = float(sum(np.sum(np.abs(y.astype(np.float64) * d)) for y, d in terms))
        phi0 = float(sum(np.sum(y.astype(np.float64) * d) for y, d in terms))
        phi_scale += abs(phi0)
        underflow = phi_scale < float(np.finfo(s.eval_dtype).tiny)
        for i in s.diff:
            g = _check_grad_shape(grads[i], s.args[i], nm[i])
            x = s.args[i]
            h = _steps(x, eps, fallback).astype(x.dtype)
            along = _Input(probe, s, dys, i, g, phi_scale, _rms(g))
            if chosen == "exact":
                an = np.asarray(g, dtype=np.float64).copy()
                nu = np.empty_like(an)
                exact_grads[i] = (an, nu)
                for j in range(x.size):
                    delta = np.zeros_like(x)
                    delta.flat[j] = h.flat[j]
                    entry = tuple(int(v) for v in np.unravel_index(j, x.shape))
                    c = along.compare(delta, phi0, entry, None)
                    nu.flat[j] = c.numeric
                    comparisons.append(c)
            else:
                delta = (h * rng.choice(np.array([-1.0, 1.0]), size=x.shape)).astype(x.dtype)
                c = along.compare(delta, phi0, None, k)
                if c.status == "violation":
                    line = _Line(along, delta)
                    loc = _resolve(line, np.flatnonzero(delta), c)
                    if loc is None:  # explained by several kinks, each within its own range
                        comparisons.append(dataclasses.replace(c, status="kink", kink=True))
                        continue
                    comparisons.append(loc)  # the entry it was located at ...
                    c = dataclasses.replace(c, index=loc.index)  # ... which the direction names
                comparisons.append(c)

    violations = [c for c in comparisons if c.status == "violation"]
    kinks = tuple(c for c in comparisons if c.status == "kink")
    # A failure is reported at an entry: exact mode's own or a direction's located one, if it
    # fails alone (an error spread thinly over a direction does not; the direction is reported).
    located = [c for c in violations if c.direction is None]
    scored = located or violations or [c for c in comparisons if c.status == "ok"] or list(kinks)
    worst = max(scored, key=lambda c: c.share) if scored else None
    residual_error = _replayed(bwd, replays, nm, probe.n_evals)
    lin_err = _linearity(bwd, res_low, ys_low, s, len(args), rng, nm) if linearity else None
    notes = []
    if violations and underflow:
        notes.append(
            "The function's values at this input are zero or underflow (sum |y * dy| is below the "
            "smallest normal number): the tolerance rests on the values at the perturbed inputs, and "
            "finite differences may not resolve the gradient here; rescale or move the input."
        )
    crossed = [c for c in kinks if c.direction is not None]
    if crossed:
        notes.append(
            f"{len(crossed)} direction(s) crossed kinks and were accepted within their one-sided "
            "derivatives: an error smaller than the kinks' jumps can hide there (mode='exact' "
            "checks each entry)."
        )
    if not precision_ok and precision_worst is not None:
        notes.append("The low-precision VJP disagrees with its float64 shadow beyond rounding.")
    ok = (
        not violations
        and precision_ok
        and lin_err is None
        and dtype_error is None
        and residual_error is None
    )
    result = CheckResult(
        ok=ok,
        function=getattr(fwd, "__name__", repr(fwd)),
        mode=chosen,
        dtype=str(s.dtype),
        shadow=s.shadow,
        seed=seed,
        n_evals=probe.n_evals,
        n_checked=len(comparisons),
        # Directional mode: failing directions (their bisection leaves are locations, not more).
        n_violations=len([c for c in violations if c.direction is not None])
        if chosen == "directional"
        else len(violations),
        kinks=kinks,
        worst=worst,
        input_names=nm,
        input_shapes=tuple(tuple(np.shape(a)) for a in args),
        differentiated=tuple(s.diff),
        precision_worst=precision_worst,
        linearity_error=lin_err,
        dtype_error=dtype_error,
        residual_error=residual_error,
        notes=tuple(notes),
        gradients=tuple(exact_grads) if chosen == "exact" else None,
    )
    if raise_on_failure:
        result.raise_if_failed()
    return result


def check_grad(
    f: Callable[..., Any],
    args: Sequence[Any],
    grad_f: Callable[..., Any],
    *,
    mode: Mode = "auto",
    seed: int = 0,
    shadow: bool | Literal["auto"] = "auto",
    names: Sequence[str] | None = None,
    raise_on_failure: bool = True,
) -> CheckResult:
    """Check ``grad_f(*args)`` (one gradient per argument) for a scalar function ``f``.

    Integer arguments are passed through and their gradient entries (``None``) ignored. See
    :func:`check_vjp` for the method and the options.
    """

    def fwd(*a: Any) -> tuple[np.ndarray, tuple[Any, ...]]:
        y = np.asarray(f(*a))
        if y.shape != ():
            raise ValueError(f"check_grad: f must return a scalar, got shape {y.shape}")
        return y, a

    def bwd(res: tuple[Any, ...], dy: np.ndarray) -> tuple[Any, ...]:
        gs = _as_tuple(grad_f(*res))
        return tuple(None if g is None else np.asarray(g) * dy for g in gs)

    fwd.__name__ = getattr(f, "__name__", "f")
    return check_vjp(
        fwd,
        bwd,
        args,
        mode=mode,
        seed=seed,
        shadow=shadow,
        names=names,
        linearity=False,
        raise_on_failure=raise_on_failure,
    )
