"""nnref.check.compare: the error measure and assert_close, on values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnref.check.compare import ORACLE_RTOL, assert_close, max_rel_error

TINY = float(np.finfo(np.float64).tiny)


def test_error_is_relative_per_entry_with_the_rms_floor() -> None:
    rms = math.sqrt((1 + 2.5**2 + 4**2) / 3)
    err, idx = max_rel_error([1.0, 2.0, 4.0], [1.0, 2.5, 4.0])
    assert err == pytest.approx(0.5 / (2.5 + rms), rel=1e-15)
    assert idx == (1,)
    err, idx = max_rel_error([[1.0, 2.0], [4.0, 1.0]], [[1.0, 2.5], [4.0, 1.0]], floor=1.0)
    rms2 = math.sqrt((1 + 2.5**2 + 16 + 1) / 4)
    assert err == pytest.approx(0.5 / (2.5 + rms2 + 1.0), rel=1e-15)
    assert idx == (0, 1)


def test_slack_discounts_small_differences_and_keeps_the_measure_beyond_them() -> None:
    """``slack`` comes off each absolute difference before dividing: a difference within it is
    no error, and a larger one is measured strictly (a floor would divide it away)."""
    d = [1e-6, 1.0, 1.0]
    rms = math.sqrt((1e-12 + 2) / 3)
    assert max_rel_error([1e-6 + 5e-7, 1.0, 1.0], d, slack=1e-6) == (0.0, (0,))
    err, idx = max_rel_error([0.0, 1.0, 1.0], d, slack=1e-7)  # the small entry dropped
    assert err == pytest.approx((1e-6 - 1e-7) / (1e-6 + rms), rel=1e-12)
    assert idx == (0,)
    assert max_rel_error([0.0, 1.0, 1.0], d, floor=1.0)[0] < 1e-6  # what a floor lets through


def test_all_zero_desired_is_judged_against_the_smallest_normal() -> None:
    err, idx = max_rel_error([0.0, 1.0], [0.0, 0.0])
    assert err == pytest.approx(1.0 / TINY, rel=1e-12)
    assert idx == (1,)


def test_integer_inputs_are_compared_in_float64_without_wraparound() -> None:
    err, idx = max_rel_error(np.array([100], np.int8), np.array([-100], np.int8))
    assert err == pytest.approx(200 / 200, rel=1e-15)
    assert idx == (0,)


def test_float32_inputs_are_compared_in_float64() -> None:
    a = np.array([1.0, 16777217.0], np.float64).astype(np.float32)  # 2**24 + 1 rounds to 2**24
    d = np.array([1.0, 16777218.0], np.float32)
    err, _ = max_rel_error(a, d)
    assert err > 0


def test_flush_to_zero_allowance_is_64_smallest_normals() -> None:
    assert max_rel_error([0.0], [32 * TINY]) == (0.0, (0,))
    assert max_rel_error([0.0], [64 * TINY])[0] == 0.0
    assert max_rel_error([0.0], [64.5 * TINY])[0] > 0.0
    tiny32 = float(np.finfo(np.float32).tiny)
    assert max_rel_error(np.float32([0.0]), np.float32([32 * tiny32]))[0] == 0.0
    assert max_rel_error(np.float32([0.0]), np.float32([65 * tiny32]))[0] > 0.0


@pytest.mark.parametrize(
    ("a", "d", "expected"),
    [
        ([np.nan], [np.nan], 0.0),
        ([np.inf], [np.inf], 0.0),
        ([-np.inf, 1.0], [-np.inf, 1.0], 0.0),
        ([np.nan], [1.0], math.inf),
        ([1.0], [np.nan], math.inf),
        ([np.inf], [-np.inf], math.inf),
        ([np.inf], [1.0], math.inf),
        ([1e308], [-1e308], math.inf),
    ],
)
def test_non_finite_entries(a, d, expected) -> None:
    assert max_rel_error(a, d)[0] == expected


def test_shape_mismatch_and_empty() -> None:
    with pytest.raises(ValueError, match=r"^max_rel_error: shapes differ: \(2,\) vs \(3,\)$"):
        max_rel_error(np.zeros(2), np.zeros(3))
    assert max_rel_error(np.zeros((0, 3)), np.zeros((0, 3))) == (0.0, ())


def test_assert_close_checks_shape_then_dtype_then_value() -> None:
    d = np.array([1.0, 2.0])
    with pytest.raises(AssertionError, match=r"^value: shape \(1,\) != expected \(2,\)$"):
        assert_close(d[:1], d)
    with pytest.raises(AssertionError, match=r"^value: dtype float32 != expected float64$"):
        assert_close(d.astype(np.float32), d)
    assert assert_close(d.astype(np.float32), d, check_dtype=False) == 0.0
    with pytest.raises(AssertionError, match=r"^dx: error 0.2\d* > 1e-12 at index \[1\]: "):
        assert_close([1.0, 3.0], d, what="dx")


def test_assert_close_default_tolerance_follows_the_desired_dtype() -> None:
    d64 = np.array([1.0, 2.0])
    near = d64 * (1 + 1e-6)
    with pytest.raises(AssertionError):
        assert_close(near, d64)
    err = assert_close(near.astype(np.float32), d64.astype(np.float32))
    assert 0 < err <= ORACLE_RTOL["float32"]
    d16 = np.array([1.0, 2.0], np.float16)  # no table entry: the float64 tolerance applies
    with pytest.raises(AssertionError, match="> 1e-12"):
        assert_close(np.array([1.0, 2.01], np.float16), d16)


def test_assert_close_tolerance_is_inclusive() -> None:
    a, d = [1.0, 2.1], [1.0, 2.0]
    err = max_rel_error(a, d)[0]
    assert assert_close(a, d, rtol=err) == err
    with pytest.raises(AssertionError):
        assert_close(a, d, rtol=err * (1 - 1e-12))


def test_desired_is_widened_before_the_rms_floor() -> None:
    """|int8(-128)| wraps to -128 in int8; in float64 the floor is 128 and the error 0.5."""
    err, _ = max_rel_error(np.array([0], np.int8), np.array([-128], np.int8))
    assert err == 0.5


def test_rms_floor_uses_finite_entries_only() -> None:
    err, idx = max_rel_error([np.inf, 1.1], [np.inf, 1.0])
    assert err == pytest.approx(0.1 / (1.0 + 1.0), rel=1e-12)
    assert idx == (1,)


def test_rms_floor_applies_below_one() -> None:
    err, _ = max_rel_error([0.3], [0.2])
    assert err == pytest.approx(0.1 / (0.2 + 0.2), rel=1e-12)


def test_assert_close_against_an_all_zero_reference_reports_the_difference() -> None:
    with pytest.raises(AssertionError) as e:
        assert_close(np.array([0.0, 3e-3, 0.0]), np.zeros(3), what="relu dx")
    msg = str(e.value)
    assert msg.startswith(
        "relu dx: the reference has no nonzero entry, so no relative error; at index [1]: "
    )
    assert msg.endswith("(absolute difference 0.003)")
    assert "e+30" not in msg
    assert assert_close(np.zeros(3), np.zeros(3)) == 0.0
