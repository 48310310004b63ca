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
