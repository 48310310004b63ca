"""The checker's step rule and RMS, pinned by value: ``h_j`` is the power of two nearest to
``eps**(1/3) * max(|x_j|, rms(x) / 1024)`` (documented in ``check_vjp``)."""

from __future__ import annotations

import numpy as np
import pytest

from nnref.check._core import _rms, _steps

EPS = float(np.finfo(np.float64).eps)
C = EPS ** (1.0 / 3.0)  # 6.06e-6


def test_rms_of_finite_entries_without_underflow() -> None:
    assert _rms(np.array([3.0, -4.0])) == pytest.approx(np.sqrt(12.5), rel=1e-15)
    assert _rms(np.array([2.0, np.inf, np.nan, -2.0])) == 2.0  # finite entries only
    assert _rms(np.array([1e-200, -1e-200])) == 1e-200  # squares would underflow unscaled
    assert _rms(np.array([1e300, 1e300])) == 1e300  # or overflow
    assert _rms(np.array([0.5, 0.0, 0.0, 0.0])) == 0.25


@pytest.mark.parametrize(
    "x", [np.zeros(3), np.array([np.nan, np.inf]), np.empty(0)], ids=["zeros", "none", "empty"]
)
def test_rms_is_zero_without_finite_nonzero_entries(x) -> None:
    assert _rms(x) == 0.0


def test_steps_follow_each_entry_and_the_rms_floor() -> None:
    x = np.array([0.0, 3.0, -4.0, 1e-12])
    h = _steps(x, EPS, fallback=99.0)
    rms = np.sqrt(25.0 / 4)
    expected = [rms / 1024, 3.0, 4.0, rms / 1024]
    np.testing.assert_array_equal(h, [2.0 ** np.round(np.log2(v * C)) for v in expected])
    assert h[1] == 2.0**-16
    assert h[2] == 2.0**-15


def test_a_small_rms_is_still_the_floor_and_zeros_take_the_fallback() -> None:
    h = _steps(np.array([0.0, 0.5]), EPS, fallback=4096.0)
    assert h[0] == 2.0 ** np.round(np.log2(np.sqrt(0.125) / 1024 * C))  # rms 0.354 < 1
    h0 = _steps(np.zeros(2), EPS, fallback=4096.0)
    np.testing.assert_array_equal(h0, 2.0 ** np.round(np.log2(4.0 * C)))


def test_the_floor_divides_by_exactly_1024() -> None:
    """An rms placed just above a rounding boundary of log2: 1024 rounds up, 1025 would not."""
    r = 1024 * 2.0 ** (-20 + 0.5 + 0.0007) / C
    h = _steps(np.array([0.0, r * np.sqrt(2)]), EPS, fallback=1.0)
    assert h[0] == 2.0**-19


def test_non_finite_entries_take_a_unit_scale() -> None:
    h = _steps(np.array([np.inf, np.nan, 1.0]), EPS, fallback=1.0)
    np.testing.assert_array_equal(h, [2.0**-17] * 3)
