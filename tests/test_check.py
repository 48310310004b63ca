"""Meta-tests: the gradient checker must reject broken backward passes and accept correct ones.

Each broken VJP below is a bug seen in real hand-written layers. Every rejection runs in the
default mode (``auto``) without tuning tolerances, in float64 and in float32.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnref
from nnref.check import CheckResult, GradientCheckError, check_grad, check_vjp
from nnref.check import _core as check_core

FLOATS = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


def _dense_args(rng, n, i, o, dt):
    return (
        rng.standard_normal((n, i)).astype(dt),
        (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dt),
        rng.standard_normal(o).astype(dt),
    )


def _reject(fwd, bwd, args, **kw) -> CheckResult:
    r = check_vjp(fwd, bwd, args, raise_on_failure=False, **kw)
    assert not r.ok, r.message()
    with pytest.raises(GradientCheckError) as e:
        check_vjp(fwd, bwd, args, **kw)
    assert e.value.result.message() == str(e.value)
    return r


# ----------------------------------------------------------------------------- broken VJPs


def transposed_dw(res, dy):
    dx, dw, db = nnref.dense_bwd(res, dy)
    return dx, dw.T, db


def scaled_dx(res, dy):
    dx, dw, db = nnref.dense_bwd(res, dy)
    return dx * dx.dtype.type(1.001), dw, db


def wrong_db(res, dy):
    dx, dw, db = nnref.dense_bwd(res, dy)
    return dx, dw, db[::-1].copy()


def zero_softmax_grad(res, dy):
    return (np.zeros_like(dy),)


def missing_one_over_n(res, dy):
    none, g = nnref.sparse_categorical_crossentropy_bwd(res, dy)
    return none, g * g.dtype.type(g.shape[0])


@pytest.mark.parametrize("dt", FLOATS)
def test_rejects_transposed_dw(dt, rng) -> None:
    r = _reject(
        nnref.dense_fwd, transposed_dw, _dense_args(rng, 5, 6, 6, dt), names=("x", "w", "b")
    )
    assert r.input_names[r.worst.input] == "w"


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("dt", FLOATS)
def test_inputs_drawn_with_the_checkers_seed_do_not_hide_a_transposed_dw(dt, seed) -> None:
    # The obvious way to draw inputs for a check with seed=s is default_rng(s). Had the
    # checker drawn its cotangent from the same stream, x == dy here, dW = x^T dy = x^T x would
    # be symmetric and its transpose would pass.
    n = 6
    x = np.random.default_rng(seed).standard_normal((n, n)).astype(dt)  # the cotangent's shape
    w = np.random.default_rng(seed + 100).standard_normal((n, n)).astype(dt)
    b = np.zeros(n, dt)
    r = _reject(nnref.dense_fwd, transposed_dw, (x, w, b), seed=seed, names=("x", "w", "b"))
    assert r.input_names[r.worst.input] == "w"


def test_same_seed_gives_bit_identical_results(rng) -> None:
    args = _dense_args(rng, 8, 5, 3, np.float64)
    r1, r2 = (
        check_vjp(nnref.dense_fwd, scaled_dx, args, seed=3, raise_on_failure=False)
        for _ in range(2)
    )
    assert r1.message() == r2.message()
    for g1, g2 in zip(r1.gradients, r2.gradients, strict=True):
        np.testing.assert_array_equal(g1[1], g2[1])  # numeric gradients, bit for bit


@pytest.mark.parametrize("dt", FLOATS)
def test_rejects_gradient_scaled_by_1_001(dt, rng) -> None:
    r = _reject(nnref.dense_fwd, scaled_dx, _dense_args(rng, 8, 5, 3, dt), names=("x", "w", "b"))
    assert r.input_names[r.worst.input] == "x"


@pytest.mark.parametrize("dt", FLOATS)
def test_rejects_gradient_scaled_by_1_001_directional(dt, rng) -> None:
    args = _dense_args(rng, 64, 100, 20, dt)  # 8420 entries: auto picks directional
    r = _reject(nnref.dense_fwd, scaled_dx, args, names=("x", "w", "b"))
    assert r.mode == "directional"


@pytest.mark.parametrize("dt", FLOATS)
def test_rejects_bias_gradient_wrong_while_weight_right(dt, rng) -> None:
    args = _dense_args(rng, 64, 100, 20, dt)  # the big kernel must not hide the small bias
    r = _reject(nnref.dense_fwd, wrong_db, args, names=("x", "w", "b"))
    assert r.input_names[r.worst.input] == "b"


@pytest.mark.parametrize("at", [(123, 45), (123, 46)])
@pytest.mark.parametrize("dt", FLOATS)
def test_rejects_one_wrong_sign_in_a_large_tensor_and_finds_it(dt, at, rng) -> None:
    """Bisection must go down to one entry: the two positions end in either half of a pair."""
    args = _dense_args(rng, 32, 200, 300, dt)  # dW has 60000 entries

    def one_sign(res, dy):
        dx, dw, db = nnref.dense_bwd(res, dy)
        dw = dw.copy()
        dw[at] *= -1
        return dx, dw, db

    r = _reject(nnref.dense_fwd, one_sign, args, names=("x", "w", "b"))
    assert r.mode == "directional"
    assert r.input_names[r.worst.input] == "w"
    assert r.worst.index == at
    assert f"dw[{at[0]}, {at[1]}]" in r.message()


@pytest.mark.parametrize("dt", FLOATS)
def test_rejects_softmax_gradient_replaced_by_zeros(dt, rng) -> None:
    x = rng.standard_normal((4, 6)).astype(dt)
    _reject(nnref.softmax_fwd, zero_softmax_grad, (x,))


@pytest.mark.parametrize("dt", FLOATS)
def test_rejects_gradient_missing_one_over_n(dt, rng) -> None:
    lab = rng.integers(0, 5, 16)
    z = rng.standard_normal((16, 5)).astype(dt)
    _reject(
        nnref.sparse_categorical_crossentropy_fwd,
        missing_one_over_n,
        (lab, z),
        static={"from_logits": True},
    )


def test_rejects_in_native_precision_too(rng) -> None:
    """Without the float64 shadow, float64 resolves 1e-3 easily. Native float32 finite
    differences resolve only about eps32 * sum|y*dy| / (h*|g|), ~1% for this layer (which is why
    the float64 shadow is the default): a 10% error is the bar there."""
    _reject(nnref.dense_fwd, scaled_dx, _dense_args(rng, 8, 5, 3, np.float64), shadow=False)

    def scaled_10pct(res, dy):
        dx, dw, db = nnref.dense_bwd(res, dy)
        return dx * np.float32(1.1), dw, db

    _reject(nnref.dense_fwd, scaled_10pct, _dense_args(rng, 8, 5, 3, np.float32), shadow=False)


def _column_1pct(res, dy):
    dx, dw, db = nnref.dense_bwd(res, dy)
    dw = dw.copy()
    dw[:, 0] *= dw.dtype.type(1.01)
    return dx, dw, db


def _leaky(res, dy):
    return (np.where(res.y > 0, dy, dy * dy.dtype.type(0.01)),)


def test_native_float32_catches_what_the_plain_step_missed() -> None:
    """Natively in float32 each entry's comparison is first made at NATIVE_WIDE (8) times the
    step, where rounding weighs 8x less. Main's plain-step rule passed both of these (its tolerance was ~4%
    of dW for this layer); the wide step rejects them and names the entry."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    w = (rng.standard_normal((5, 4)) / 2).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    r = _reject(nnref.dense_fwd, _column_1pct, (x, w, b), shadow=False, names=("x", "w", "b"))
    assert (r.worst.input, r.worst.index[1]) == (1, 0)  # in dW's first column
    z = rng.standard_normal((4, 6))
    z = (z + np.sign(z) * 0.1).astype(np.float32)
    r = _reject(nnref.relu_fwd, _leaky, (z,), shadow=False, seed=3)
    assert z[r.worst.index] < 0


def test_native_float32_judges_a_tie_within_the_wide_step_at_the_plain_step() -> None:
    """A correct max-pool whose runner-up lies a quarter of the wide step (2**-5) below the
    maximum: the wide differences cross the tie where the kink test cannot see it (between a
    fifth and a third of the step) and disagree with the half-wide ones, so the entry is judged
    at the plain step (2**-8), where nothing is crossed, and passes."""
    x = np.array([1.0, 1.0 - 2.0**-7, 0.25, -0.5], np.float32).reshape(1, 2, 2, 1)
    r = check_vjp(
        lambda a: nnref.max_pool2d_fwd(a, ksize=2, strides=2),
        nnref.max_pool2d_bwd,
        (x,),
        shadow=False,
    )
    assert r.n_evals > 2 + 4 * x.size  # some entries went beyond the wide step
    assert r.worst.step == 2.0**-8


@pytest.mark.parametrize("seed", [10, 20])
def test_native_float32_directions_through_many_zeros_are_not_false_failures(seed) -> None:
    """relu on 600 float32 entries, 70% exactly 0, natively (directional mode). The wide step
    applies to one entry at a time only: along a direction, the zeros' one-sided errors grow with
    the step while the tolerance shrinks, and these two seeds failed when directions took it."""
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(600) < 0.7, 0.0, rng.standard_normal(600)).astype(np.float32)
    r = check_vjp(nnref.relu_fwd, nnref.relu_bwd, (x,), seed=seed, shadow=False)
    assert r.mode == "directional"


# ----------------------------------------------------------------------------- acceptance


@pytest.mark.parametrize(
    "shape", [(8, 5, 3), (64, 100, 20), (128, 256, 64)], ids=["exact", "directional", "large"]
)
def test_accepts_correct_float32_without_tuning(shape, rng) -> None:
    r = check_vjp(nnref.dense_fwd, nnref.dense_bwd, _dense_args(rng, *shape, np.float32))
    assert r.ok
    assert r.shadow
    assert r.precision_worst[4] < 1


def test_accepts_correct_float32_in_native_precision(rng) -> None:
    r = check_vjp(
        nnref.dense_fwd, nnref.dense_bwd, _dense_args(rng, 8, 5, 3, np.float32), shadow=False
    )
    assert r.ok
    assert not r.shadow


def test_integer_inputs_are_skipped(rng) -> None:
    lab = rng.integers(0, 4, 6)
    z = rng.standard_normal((6, 4))
    r = check_vjp(
        nnref.sparse_softmax_cross_entropy_with_logits_fwd,
        nnref.sparse_softmax_cross_entropy_with_logits_bwd,
        (lab, z),
    )
    assert r.ok
    assert r.n_checked == z.size
    assert r.gradients[0] is None


def test_multiple_outputs(rng) -> None:
    def fwd(x):
        return (np.sin(x), x * x), x

    def bwd(x, dys):
        ds, dq = dys
        return (np.cos(x) * ds + 2 * x * dq,)

    def bad_bwd(x, dys):
        ds, dq = dys
        return (np.cos(x) * ds + x * dq,)

    x = rng.standard_normal((3, 4))
    assert check_vjp(fwd, bwd, (x,)).ok
    assert not check_vjp(fwd, bad_bwd, (x,), raise_on_failure=False).ok


def test_check_grad_plain_functions(rng) -> None:
    x = rng.standard_normal(5)
    y = rng.standard_normal(5)

    def f(a, b):
        return np.sum(a**3 * b)

    assert check_grad(f, (x, y), lambda a, b: (3 * a**2 * b, a**3)).ok
    r = check_grad(f, (x, y), lambda a, b: (3 * a**2 * b, a**2), raise_on_failure=False)
    assert not r.ok
    assert r.input_names[r.worst.input] == "x1"
    with pytest.raises(ValueError, match="f must return a scalar"):
        check_grad(lambda a: a, (x,), lambda a: (np.ones_like(a),))


# ----------------------------------------------------------------------------- kinks


def test_relu_at_zero_is_a_kink_not_an_error() -> None:
    x = np.array([[-1.0, 0.0, 2.0, 0.0], [0.5, -0.25, 0.0, 3.0]])
    r = check_vjp(nnref.relu_fwd, nnref.relu_bwd, (x,))
    assert r.ok
    assert r.n_kinks == 3
    assert {k.index for k in r.kinks} == {(0, 1), (0, 3), (1, 2)}
    assert "kink" in r.message()


def test_gradient_outside_the_one_sided_range_at_a_kink_is_an_error() -> None:
    x = np.array([0.0, 1.0, -1.0])

    def bad_bwd(res, dy):  # claims slope 2 at the kink: outside [0, 1]
        (g,) = nnref.relu_bwd(res, dy)
        return (np.where(x == 0, 2.0 * dy, g),)

    r = check_vjp(nnref.relu_fwd, bad_bwd, (x,), raise_on_failure=False)
    assert not r.ok
    assert r.worst.kink
    assert r.worst.index == (0,)


def test_max_tie_is_a_kink() -> None:
    def fwd(x):
        return x.max(axis=1), x

    def bwd(x, dy):  # first maximum, as TF
        g = np.zeros_like(x)
        g[np.arange(x.shape[0]), x.argmax(1)] = dy
        return (g,)

    x = np.array([[1.0, 3.0, 3.0], [2.0, 1.0, 0.0]])
    r = check_vjp(fwd, bwd, (x,))
    assert r.ok
    assert {k.index for k in r.kinks} == {(0, 1), (0, 2)}


# ----------------------------------------------------------------------------- linearity


def test_backward_must_be_linear_in_the_cotangent(rng) -> None:
    x = rng.standard_normal((3, 4))

    def affine_bwd(res, dy):  # right at the probed cotangents? no: an offset breaks linearity
        (g,) = nnref.sigmoid_bwd(res, dy)
        return (g + 1e-3,)

    r = check_vjp(nnref.sigmoid_fwd, affine_bwd, (x,), raise_on_failure=False)
    assert not r.ok
    assert "not linear" in r.linearity_error or "zero cotangent" in r.linearity_error


def test_zero_cotangent_must_give_zero_gradient(rng) -> None:
    x = rng.standard_normal((3, 4))
    calls = {"n": 0}

    def nan_on_zero(res, dy):
        calls["n"] += 1
        (g,) = nnref.sigmoid_bwd(res, dy)
        return (np.where(np.all(dy == 0), np.nan, g),)

    r = check_vjp(nnref.sigmoid_fwd, nan_on_zero, (x,), raise_on_failure=False)
    assert not r.ok
    assert "zero cotangent is not zero" in r.linearity_error


# ----------------------------------------------------------------------------- reporting


def test_result_and_message_are_deterministic_and_complete(rng) -> None:
    args = _dense_args(rng, 8, 5, 3, np.float64)
    r1 = check_vjp(
        nnref.dense_fwd, scaled_dx, args, seed=7, raise_on_failure=False, names=("x", "w", "b")
    )
    r2 = check_vjp(
        nnref.dense_fwd, scaled_dx, args, seed=7, raise_on_failure=False, names=("x", "w", "b")
    )
    assert r1.message() == r2.message()
    m = r1.message()
    for part in (
        "FAILED",
        "exact mode",
        "seed 7",
        "evaluations",
        "Worst at dx[",
        "analytic",
        "numeric",
        "tolerance",
        "step",
    ):
        assert part in m
    assert r1.n_violations > 0
    assert r1.worst.share > 1
    assert r1.n_evals == r2.n_evals > 4 * (8 * 5 + 5 * 3 + 3)


def test_modes_and_bad_arguments(rng) -> None:
    args = _dense_args(rng, 4, 3, 2, np.float64)
    assert (
        check_vjp(nnref.dense_fwd, nnref.dense_bwd, args, mode="directional").mode == "directional"
    )
    assert check_vjp(nnref.dense_fwd, nnref.dense_bwd, args, mode="exact").mode == "exact"
    with pytest.raises(ValueError, match="unknown mode"):
        check_vjp(nnref.dense_fwd, nnref.dense_bwd, args, mode="fast")
    with pytest.raises(ValueError, match="no floating-point input"):
        check_vjp(nnref.dense_fwd, nnref.dense_bwd, (np.arange(3),))
    with pytest.raises(ValueError, match="backward returned 2 gradients for 3 inputs"):
        check_vjp(nnref.dense_fwd, lambda res, dy: nnref.dense_bwd(res, dy)[:2], args)
    with pytest.raises(
        ValueError, match=r"gradient for 'w' has shape \(2, 3\), input has \(3, 2\)"
    ):
        check_vjp(nnref.dense_fwd, transposed_dw, args, names=("x", "w", "b"))
    with pytest.raises(ValueError, match="'names' must name every positional argument"):
        check_vjp(nnref.dense_fwd, nnref.dense_bwd, args, names=("x",))


def _tanh_fwd(x):
    y = np.tanh(x)
    return y, y


def _tanh_bwd(y, dy):
    return (dy * (1 - y * y),)


def _seven_bwd(y, dy):  # completely wrong: tanh's derivative is 1 - y^2
    return (7.0 * dy,)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"directions": 0}, "'directions' must be a positive int, got 0"),
        ({"directions": -3}, "'directions' must be a positive int, got -3"),
        ({"directions": 2.0}, "'directions' must be a positive int, got 2.0"),
        ({"directions": True}, "'directions' must be a positive int, got True"),
        ({"seed": None}, "'seed' must be a non-negative int, got None"),
        ({"seed": -1}, "'seed' must be a non-negative int, got -1"),
        ({"shadow": "on"}, "'shadow' must be True, False or 'auto', got 'on'"),
        ({"shadow": 1}, "'shadow' must be True, False or 'auto', got 1"),
        ({"mode": "fast"}, "unknown mode 'fast' (expected 'auto', 'exact' or 'directional')"),
        ({"linearity": "yes"}, "'linearity' must be True or False, got 'yes'"),
        ({"raise_on_failure": None}, "'raise_on_failure' must be True or False, got None"),
    ],
)
def test_bad_options_are_refused_before_any_evaluation(option, message, rng) -> None:
    """directions=0 once ran no comparison and passed a wrong gradient; seed=None raised a bare
    TypeError; shadow="on" silently meant False. Each is now a ValueError naming the option."""
    x = rng.standard_normal((30, 40))
    calls = []

    def fwd(a):
        calls.append(1)
        return _tanh_fwd(a)

    with pytest.raises(ValueError, match=f"^gradient check: {re.escape(message)}$"):
        check_vjp(fwd, _seven_bwd, (x,), **{"raise_on_failure": False, **option})
    assert not calls


def test_one_direction_is_enough_to_reject_a_wrong_gradient(rng) -> None:
    x = rng.standard_normal((30, 40))
    assert not check_vjp(_tanh_fwd, _seven_bwd, (x,), directions=1, raise_on_failure=False).ok
    assert check_vjp(_tanh_fwd, _tanh_bwd, (x,), directions=1, seed=np.int64(5)).ok


def test_underflowing_function_is_reported_not_passed() -> None:
    t = np.full((2, 3), 1.3e-265)
    p = np.zeros((2, 3))
    r = check_vjp(
        nnref.mean_squared_error_fwd, nnref.mean_squared_error_bwd, (t, p), raise_on_failure=False
    )
    assert not r.ok
    assert "underflow" in r.message()


# A dense layer at x w = -b: y = 0 exactly, from terms of size 0.75.
_CANCELLING = ([[0.753]], [[-1.0]], [0.753])


@pytest.mark.parametrize("mode", ["exact", "directional"])
def test_output_that_cancels_to_zero_is_not_a_false_failure(mode, monkeypatch) -> None:
    """The tolerance bounds rounding by the values of phi, here 0; the differences round
    relative to the terms (3.0e-12 against a tolerance of 5.5e-13 in float64, a relative error
    of 4e-12). Such a violation is judged again at wider steps, where its error shrinks as
    rounding does (found by the thorough Hypothesis profile). Without them it FAILED, and
    said the values underflow; with the float32 shadow it passes either way."""
    args = tuple(np.array(a) for a in _CANCELLING)
    assert nnref.dense(*args)[0, 0] == 0
    r = check_vjp(nnref.dense_fwd, nnref.dense_bwd, args, mode=mode, directions=2)
    assert r.ok, r.message()
    shadowed = tuple(a.astype(np.float32) for a in args)
    assert check_vjp(nnref.dense_fwd, nnref.dense_bwd, shadowed, mode=mode, directions=2).ok
    monkeypatch.setattr(check_core, "RESCUE_WIDE", ())
    r = check_vjp(
        nnref.dense_fwd, nnref.dense_bwd, args, mode=mode, directions=2, raise_on_failure=False
    )
    assert not r.ok
    assert "underflow" in r.message()


def test_rows_whose_outputs_all_cancel_mostly_pass(monkeypatch) -> None:
    """float64 dense rows x (1, 4), w (4, 3) with b = -(x @ w): every output is 0, each from
    four terms. Rounding there also poses as kinks and shrinks irregularly; the wider steps
    pass 23 of these 24 checks (12 seeds, exact and directional), 8 without them. The one left
    (seed 4, exact) has an entry of x near 0, a plain step of 3e-8."""

    def failures() -> int:
        bad = 0
        for seed in range(12):
            rng = np.random.default_rng(seed)
            x, w = rng.standard_normal((1, 4)), rng.standard_normal((4, 3))
            args = (x, w, -(x @ w)[0])
            assert not nnref.dense(*args).any()
            for mode in ("exact", "directional"):
                r = check_vjp(
                    nnref.dense_fwd,
                    nnref.dense_bwd,
                    args,
                    mode=mode,
                    seed=seed,
                    raise_on_failure=False,
                )
                bad += not r.ok
        return bad

    assert failures() <= 1
    monkeypatch.setattr(check_core, "RESCUE_WIDE", ())
    assert failures() >= 16


@pytest.mark.parametrize("rel", [1e-9, 1e-6])
@pytest.mark.parametrize("mode", ["exact", "directional"])
def test_wrong_gradient_where_the_output_cancels_is_still_rejected(mode, rel) -> None:
    """The wider steps rescue an error that shrinks with the step; a wrong gradient's does not:
    dW 1e-9 too large (7.5e-10, 250 times the rounding of 3e-12 there) still fails, at dW."""

    def off(res, dy):
        dx, dw, db = nnref.dense_bwd(res, dy)
        return dx, dw * (1 + rel), db

    args = tuple(np.array(a) for a in _CANCELLING)
    r = _reject(nnref.dense_fwd, off, args, mode=mode, directions=2, names=("x", "w", "b"))
    assert r.worst.input == 1


def _dropped_db(res, dy):
    dx, dw, _ = nnref.dense_bwd(res, dy)
    return dx, dw, np.zeros_like(dw[0])


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("mode", ["exact", "directional"])
def test_dropped_bias_gradient_is_rejected_when_the_bias_is_tiny(dt, mode, monkeypatch) -> None:
    """A bias of 1e-6 takes steps of ~4e-12 (they follow |b_j|), and rounding of terms of size
    1 made the tolerance 22.6 against a gradient of 4.1: a backward that dropped db passed at
    every seed (an adversarial probe). The loose pass is judged again at wider steps, where it
    fails; the right backward passes, and without the wider steps the wrong one passed (exact
    mode; a direction through all of b and x can show the error at the plain step)."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        x, w = rng.standard_normal((8, 6)), rng.standard_normal((6, 5))
        args = tuple(a.astype(dt) for a in (x, w, 1e-6 * rng.standard_normal(5)))
        kw = {"mode": mode, "seed": seed, "names": ("x", "w", "b")}
        r = _reject(nnref.dense_fwd, _dropped_db, args, **kw)
        assert r.worst.input == 2
        assert check_vjp(nnref.dense_fwd, nnref.dense_bwd, args, **kw).ok
    if mode == "exact":
        monkeypatch.setattr(check_core, "TIGHTEN_WIDE", ())
        assert check_vjp(nnref.dense_fwd, _dropped_db, args, raise_on_failure=False, **kw).ok


def test_error_under_a_large_constant_output_is_rejected(monkeypatch) -> None:
    """``y = 1e5 + tanh(x)``: the tolerance follows the values (0.25 against gradients of 0.7),
    and a 5% error passed; at the wider steps it fails, and the right gradient passes."""

    def fwd(x):
        t = np.tanh(x)
        return 1e5 + t, t

    def bwd(t, dy, k=1.0):
        return (dy * (1 - t * t) * k,)

    for seed in range(4):
        x = np.random.default_rng(seed).standard_normal((4, 5))
        assert check_vjp(fwd, bwd, (x,), seed=seed).ok
        _reject(fwd, lambda t, dy: bwd(t, dy, 1.05), (x,), seed=seed)
    monkeypatch.setattr(check_core, "TIGHTEN_WIDE", ())
    assert check_vjp(fwd, lambda t, dy: bwd(t, dy, 1.05), (x,), seed=seed).ok


@pytest.mark.parametrize("mode", ["exact", "directional"])
def test_shifted_logits_are_judged_at_a_narrower_step(mode, monkeypatch) -> None:
    """Logits ``1000 + z``: the step follows |x_j| (2^-7), softmax varies on the scale 1, and
    the differences there did not converge (truncation ~1e-5 of the values) although their
    extrapolation was good to 1e-12: a correct softmax failed at every seed. Narrower steps
    converge; an error of 1e-6 is still rejected, and without them the right one failed."""
    for seed in range(3):
        x = 1000.0 + np.random.default_rng(seed).standard_normal((4, 10))
        kw = {"mode": mode, "seed": seed}
        assert check_vjp(nnref.softmax_fwd, nnref.softmax_bwd, (x,), **kw).ok
        off = lambda res, dy: (nnref.softmax_bwd(res, dy)[0] * (1 + 1e-6),)  # noqa: E731
        r = _reject(nnref.softmax_fwd, off, (x,), **kw)
        assert r.worst.converged
    monkeypatch.setattr(check_core, "NARROW", ())
    assert not check_vjp(
        nnref.softmax_fwd, nnref.softmax_bwd, (x,), raise_on_failure=False, **kw
    ).ok
