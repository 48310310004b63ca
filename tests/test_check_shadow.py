"""The float64 shadow comparison: a float32 VJP that is right in float64 but wrong in its own
precision must fail the check, and the report must say where.

With the shadow on, the finite differences run on a float64 copy of the inputs, so a bug that
only shows in float32 (an overflow, a half-precision accumulation) is invisible to them; only
the entry-wise comparison of the caller's VJP with its float64 run can see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nnref
from nnref.check import check_vjp


def _naive_sigmoid_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 1.0 / (1.0 + np.exp(-np.maximum(x, -80.0))), x


def _naive_sigmoid_bwd(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    e = np.exp(-x)  # overflows in float32 below x ~ -88.7: inf / inf = nan
    return (dy * e / (1.0 + e) ** 2,)


def test_a_float32_overflow_in_the_vjp_fails_and_is_located() -> None:
    x = np.array([[0.5, -1.0, 2.0], [1.5, -0.25, -100.0]], np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        r = check_vjp(_naive_sigmoid_fwd, _naive_sigmoid_bwd, (x,), raise_on_failure=False)
    assert r.shadow
    assert r.n_violations == 0  # float64 finite differences agree with the float64 VJP
    assert not r.ok
    name, entry, low, ref, share = r.precision_worst
    assert (name, entry) == ("x0", (1, 2))
    assert np.isnan(low)
    assert ref == pytest.approx(np.exp(-100.0), rel=1e-12)  # the float64 VJP is right
    assert share == np.inf  # a NaN is the worst possible disagreement, never "no disagreement"
    m = r.message()
    assert "Low-precision gradient vs its float64 shadow: worst dx0[1, 2] nan vs " in m
    assert "(infx the rounding tolerance)." in m
    assert m.endswith("The low-precision VJP disagrees with its float64 shadow beyond rounding.")


def _half_dense_bwd(res, dy):
    """An autocast-style bug: float32 products accumulated in float16."""
    dx, dw, db = nnref.dense_bwd(res, dy)
    if dy.dtype == np.float32:
        w = res[1]
        dx = (dy.astype(np.float16) @ w.T.astype(np.float16)).astype(np.float32)
    return dx, dw, db


def _dense_args(rng: np.random.Generator, dt: type) -> tuple[np.ndarray, ...]:
    return (
        rng.standard_normal((6, 5)).astype(dt),
        (rng.standard_normal((5, 4)) / 2).astype(dt),
        rng.standard_normal(4).astype(dt),
    )


def test_half_precision_accumulation_fails_only_through_the_shadow(rng) -> None:
    args = _dense_args(rng, np.float32)
    r = check_vjp(nnref.dense_fwd, _half_dense_bwd, args, raise_on_failure=False)
    assert r.n_violations == 0  # finite differences (float64) see the float64 VJP, which is right
    assert not r.ok
    name, _, low, ref, share = r.precision_worst
    assert name == "x0"
    # float16 keeps ~3 decimal digits: far beyond 128 float32 ulps, but not a gross error
    assert 1 < share < 1e4
    assert abs(low - ref) < 1e-2 * (abs(ref) + 1)
    # The same VJP without the float16 detour passes with its shares well below 1.
    ok = check_vjp(nnref.dense_fwd, nnref.dense_bwd, args)
    assert ok.precision_worst[4] < 0.1


def test_a_bad_first_input_is_not_forgiven_by_good_later_ones(rng) -> None:
    """dx (input 0) is wrong in float32, dw and db are right: the verdict is a fail."""
    args = _dense_args(rng, np.float32)
    r = check_vjp(nnref.dense_fwd, _half_dense_bwd, args, raise_on_failure=False, linearity=False)
    assert not r.ok
    assert r.precision_worst[0] == "x0"


def _sum_fwd(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, None]:
    return u + v, None


def _half_sum_bwd(_: None, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = dy.astype(np.float16).astype(dy.dtype) if dy.dtype == np.float32 else dy
    return g, g.copy()


def test_equal_disagreements_report_the_first_input(rng) -> None:
    """Both inputs get the very same wrong gradient: the report names the first, so the
    message is a function of the inputs' order, not of floating-point accidents."""
    u = rng.standard_normal((3, 4)).astype(np.float32)
    r = check_vjp(_sum_fwd, _half_sum_bwd, (u, u.copy()), raise_on_failure=False, names="uv")
    assert not r.ok
    assert r.precision_worst[0] == "u"


def _offset_bwd(offset: float):
    """The identity's VJP plus a float32-only constant (a stale buffer, say)."""

    def bwd(_: None, dy: np.ndarray) -> tuple[np.ndarray]:
        if dy.dtype == np.float32:
            return (dy + np.float32(offset),)
        return (dy,)

    return bwd


def _identity_fwd(x: np.ndarray) -> tuple[np.ndarray, None]:
    return x.copy(), None


@pytest.mark.parametrize(
    ("k", "passes"), [(0.0, True), (1.0, True), (1.5, False), (3.0, False), (2.0**20, False)]
)
def test_shadow_tolerance_is_inclusive_and_floored_at_tiny(k, passes) -> None:
    """With a zero cotangent and a zero float64 gradient the tolerance is float32's tiny
    (documented: ``|g32 - g64| <= GAMMA*eps32*(|g64| + rms g64 + rms dy) + tiny32``): an
    offset of exactly tiny passes, 1.5 tiny does not."""
    tiny = np.finfo(np.float32).tiny
    x = np.array([0.25, -2.0, 1.0], np.float32)
    r = check_vjp(
        _identity_fwd,
        _offset_bwd(k * tiny),
        (x,),
        cotangent=np.zeros(3, np.float32),
        linearity=False,
        raise_on_failure=False,
    )
    assert r.n_violations == 0
    assert r.ok is passes
    assert r.precision_worst[4] == k


def _tanh_with_side_output_fwd(x: np.ndarray, side: str) -> tuple[tuple[np.ndarray, ...], Any]:
    y = np.tanh(x)
    aux = np.argmax(x, axis=1) if side == "argmax" else x > 0
    return (y, aux), y


def _tanh_with_side_output_bwd(scale: float, seen: list[np.ndarray] | None = None):
    def bwd(y: np.ndarray, dys: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray]:
        dy, daux = dys
        if seen is not None:
            seen.append(daux)
        return (dy * (1 - y * y) * y.dtype.type(scale),)

    return bwd


@pytest.mark.parametrize("side", ["argmax", "mask"])
def test_an_integer_side_output_keeps_the_shadow(side, rng) -> None:
    """A float32 function with an int (or bool) side output lost its float64 shadow (the
    float64 run's outputs were not all float64), and a gradient 0.1% off passed natively at 10
    of 10 seeds. Only floating outputs decide the shadow; the others get a zero cotangent."""
    x = rng.standard_normal((4, 6)).astype(np.float32)
    static = {"side": side}
    seen: list[np.ndarray] = []
    r = check_vjp(
        _tanh_with_side_output_fwd, _tanh_with_side_output_bwd(1.0, seen), (x,), static=static
    )
    assert (r.ok, r.shadow) == (True, True)
    assert all(d.dtype == ("int64" if side == "argmax" else bool) and not d.any() for d in seen)
    assert check_vjp(
        _tanh_with_side_output_fwd,
        _tanh_with_side_output_bwd(1.0),
        (x,),
        static=static,
        shadow=True,
    ).shadow
    wrong = check_vjp(
        _tanh_with_side_output_fwd,
        _tanh_with_side_output_bwd(1.001),
        (x,),
        static=static,
        raise_on_failure=False,
    )
    assert (wrong.ok, wrong.shadow) == (False, True)


def test_phi_sums_the_floating_outputs_only(rng) -> None:
    """A tie for the maximum flips the argmax side output under the smallest perturbation:
    with a caller's cotangent of ones for it, phi jumped there. phi ignores non-floating
    outputs, as the backward does."""
    x = rng.standard_normal((4, 6))
    x[1, 2] = x[1, 4] = np.max(x[1]) + 0.5  # a tie for row 1's maximum
    dy = (rng.standard_normal((4, 6)), np.ones(4, np.int64))
    r = check_vjp(
        _tanh_with_side_output_fwd,
        _tanh_with_side_output_bwd(1.0),
        (x,),
        static={"side": "argmax"},
        cotangent=dy,
    )
    assert (r.ok, r.n_kinks) == (True, 0)


# ------------------------------------------------------------------------------- float16
# nnref's ops refuse float16; these NumPy ones compute in it as a float16 layer would.


def _tanh16_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.tanh(x)
    return y, y


def _tanh16_bwd(y: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    return (dy * (1 - y * y),)


def _dense16_fwd(x, w, b):
    return x @ w + b, (x, w)


def _dense16_bwd(res, dy):
    x, w = res
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def _softmax16_fwd(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return y, y


def _softmax16_bwd(y, dy):
    return (y * (dy - (y * dy).sum(axis=-1, keepdims=True)),)


def _relu16_fwd(x):
    return np.maximum(x, x.dtype.type(0)), x


def _relu16_bwd(x, dy):
    return (dy * (x > 0),)


def _scaled16(bwd, factor: float):
    """``bwd`` with its float16 gradients ``factor`` times too large (float64 ones right)."""

    def wrong(res, dy):
        return tuple(g * g.dtype.type(factor) if g.dtype == np.float16 else g for g in bwd(res, dy))

    return wrong


def _f16_cases(rng: np.random.Generator):
    h = np.float16
    relu_x = rng.standard_normal((5, 6))
    relu_x[np.abs(relu_x) < 0.1] = 0.5  # away from relu's kink
    return {
        "tanh": (_tanh16_fwd, _tanh16_bwd, (rng.standard_normal((3, 4)).astype(h),)),
        "dense-300": (
            _dense16_fwd,
            _dense16_bwd,
            (
                rng.standard_normal((4, 300)).astype(h),
                (rng.standard_normal((300, 3)) / np.sqrt(300)).astype(h),
                rng.standard_normal(3).astype(h),
            ),
        ),
        "softmax": (
            _softmax16_fwd,
            _softmax16_bwd,
            ((2 * rng.standard_normal((4, 10))).astype(h),),
        ),
        "relu": (_relu16_fwd, _relu16_bwd, (relu_x.astype(h),)),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("case", ["tanh", "dense-300", "relu"])
def test_a_float16_gradient_2_percent_off_fails_the_shadow(case, seed) -> None:
    """128 float16 ulps (GAMMA) was 12.5%: a float16 VJP 20% too large passed at 10 of 10
    seeds. float16 gradients are held to GAMMA_HALF = 4 ulps: 2% and 20% errors fail, and
    only through the shadow (its finite differences see the right float64 VJP)."""
    fwd, bwd, args = _f16_cases(np.random.default_rng(seed))[case]
    for factor in (1.02, 1.2):
        r = check_vjp(fwd, _scaled16(bwd, factor), args, seed=seed, raise_on_failure=False)
        assert (r.ok, r.shadow, r.n_violations) == (False, True, 0)
        assert r.precision_worst[4] > 1.5
    assert check_vjp(fwd, bwd, args, seed=seed).ok


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("case", ["tanh", "dense-300", "softmax", "relu"])
def test_correct_float16_backwards_pass_the_shadow_well_within_it(case, seed) -> None:
    fwd, bwd, args = _f16_cases(np.random.default_rng(seed))[case]
    r = check_vjp(fwd, bwd, args, seed=seed)
    assert (r.ok, r.shadow, r.dtype) == (True, True, "float16")
    assert r.precision_worst[4] < 0.25  # measured: at most 0.17 for these, 0.31 for layer norm


@pytest.mark.parametrize(("factor", "passes"), [(1.0, True), (1.02, False)])
def test_each_gradient_is_held_to_its_own_inputs_precision(factor, passes, rng) -> None:
    """A float16 input beside a float32 one: its gradient was held to float32's rounding (128
    float32 ulps, 0.0015%), a false failure for any float16 gradient. Now to float16's, the
    narrowest input's (the check reports that dtype)."""
    u = rng.standard_normal((3, 4)).astype(np.float32)
    v = rng.standard_normal((3, 4)).astype(np.float16)

    def fwd(a, b):
        return a * b.astype(np.float32), (a, b)

    def bwd(res, dy):
        a, b = res
        off = factor if b.dtype == np.float16 else 1.0  # the float64 shadow's VJP is right
        return dy * b.astype(dy.dtype), (dy * a * dy.dtype.type(off)).astype(b.dtype)

    r = check_vjp(fwd, bwd, (u, v), names="uv", raise_on_failure=False)
    assert (r.ok, r.shadow, r.dtype, r.n_violations) == (passes, True, "float16", 0)
    assert r.precision_worst[0] == "v"


def _mixed_fwd(x, w):
    h = np.tanh(x)  # float32 activations, float64 weights
    return h @ w, (h, w)


def _mixed_bwd(scale: float, rigid: bool):
    def bwd(res, dy):
        h, w = res
        dx = (dy @ w.T) * (1 - h.astype(dy.dtype) ** 2) * scale
        return (dx.astype(np.float32) if rigid else dx.astype(h.dtype)), h.T @ dy

    return bwd


@pytest.mark.parametrize("rigid", [False, True], ids=["generic-bwd", "float32-cast-bwd"])
def test_float32_input_beside_float64_ones_sets_the_precision(rigid: bool) -> None:
    """``tanh(x32) @ w64`` rounds in float32; float64 steps and tolerances read that as kinks,
    and a correct backward failed at every seed (an adversarial probe). The narrowest input
    decides: the float64 shadow when the backward follows its inputs' dtypes, native float32
    steps when it casts to fixed ones. A 3% error in dx is still rejected."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        args = (rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 2)))
        r = check_vjp(_mixed_fwd, _mixed_bwd(1.0, rigid), args, seed=seed)
        assert (r.dtype, r.shadow) == ("float32", not rigid)
        bad = check_vjp(
            _mixed_fwd, _mixed_bwd(1.03, rigid), args, seed=seed, raise_on_failure=False
        )
        assert not bad.ok
    with pytest.raises(ValueError, match="the backward returns a float32 gradient for 'x0'"):
        check_vjp(_mixed_fwd, _mixed_bwd(1.0, True), args, shadow=True)
