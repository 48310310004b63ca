"""Comparing nnref's values with an oracle's: one error measure, one tolerance table.

The error of ``actual`` against ``desired`` is ``max_j |a_j - d_j| / (|d_j| + rms(d))``: relative
per entry, with the tensor's RMS as a floor so entries that cancel to nearly zero are judged on
the tensor's scale (a GEMM's rounding is relative to its terms, not to its result). Differences
up to 64 times the dtype's smallest normal number are not counted: TF flushes subnormals to zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Oracle tolerances by dtype: two correct implementations (different summation order, fused
#: kernels, oneDNN) may differ by this much in the error measure above.
ORACLE_RTOL: dict[str, float] = {"float64": 1e-12, "float32": 2e-5}


def max_rel_error(
    actual: Any, desired: Any, *, floor: float = 0.0, slack: float = 0.0
) -> tuple[float, tuple[int, ...]]:
    """The error measure and the index (in the arrays' shape) where it is attained.

    ``floor`` is added to the denominator: the scale of the terms that produced the values
    when the result itself may cancel to zero (for a VJP, the cotangent's magnitude: the
    log-softmax VJP of ``dy = 1`` is exactly 0, and TF returns 6e-8 of float32 rounding).
    ``slack`` is subtracted from each absolute difference instead: the rounding a result of
    cancelling terms may carry, without loosening the measure of the entries that are far
    larger than it (a floor passes any error below ``rtol * floor``, a dropped small entry
    included).
    Matching non-finite entries (same inf, both NaN) count as equal; a non-finite mismatch
    gives ``inf``.
    """
    a = np.asarray(actual, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    if a.shape != d.shape:
        raise ValueError(f"max_rel_error: shapes differ: {a.shape} vs {d.shape}")
    if a.size == 0:
        return 0.0, ()
    same = (a == d) | (np.isnan(a) & np.isnan(d))
    fin = np.isfinite(d)
    with np.errstate(invalid="ignore", over="ignore"):
        rms = _rms(d[fin])
        # Differences within 64 smallest normal numbers are flush-to-zero artifacts (TF's CPU
        # kernels treat subnormal inputs and results as zero; NumPy keeps gradual underflow).
        dt = np.asarray(desired).dtype
        ftz = 64 * float(np.finfo(dt).tiny) if dt.kind == "f" else 0.0
        err = np.maximum(np.abs(a - d) - max(ftz, slack), 0.0) / (
            np.abs(d) + rms + floor + np.finfo(np.float64).tiny
        )
    err = np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))
    j = int(np.argmax(err))
    return float(err.flat[j]), tuple(int(v) for v in np.unravel_index(j, a.shape))


def same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per entry, whether ``a`` and ``b`` (one shape and dtype) hold the same bits: how the
    checks tell an argument a call modified in place. A NaN equals the same NaN, and -0.0
    differs from 0.0 (a write of either over the other is a write: ``1 / x`` and ``copysign``
    read the sign). Dtypes without an unsigned view of their size (complex128, strings,
    objects) are compared by value, NaN equal to NaN."""
    if a.dtype.kind in "biufcmM" and a.dtype.itemsize in (1, 2, 4, 8):
        # One comparison of the bits (a same-size view works at any strides): NaN-aware, and
        # the common case of an untouched argument costs one pass.
        bits = np.dtype(f"u{a.dtype.itemsize}")
        return np.asarray(a.view(bits) == b.view(bits))
    same = np.asarray(a == b, dtype=bool)
    if a.dtype.kind in "fc":
        same |= np.isnan(a) & np.isnan(b)
    return same


def first_bit_difference(a: np.ndarray, b: np.ndarray) -> tuple[tuple[int, ...], int] | None:
    """Where ``a`` and ``b`` (one shape and dtype) first differ by :func:`same_bits`, in
    row-major order, and in how many entries: ``(index, count)``, or None when every entry holds
    the same bits."""
    same = same_bits(a, b)
    if np.all(same):
        return None
    j = int(np.argmin(same))
    index = tuple(int(v) for v in np.unravel_index(j, a.shape))
    return index, int(same.size - np.count_nonzero(same))


def _rms(v: np.ndarray) -> float:
    """Root mean square without overflow for values near the float64 maximum."""
    big = float(np.max(np.abs(v))) if v.size else 0.0
    return big * float(np.sqrt(np.mean((v / big) ** 2))) if big > 0 else 0.0


def assert_close(
    actual: Any,
    desired: Any,
    *,
    rtol: float | None = None,
    what: str = "value",
    check_dtype: bool = True,
) -> float:
    """Assert shape, then dtype, then values; return the measured error.

    ``rtol`` defaults to :data:`ORACLE_RTOL` for the desired dtype. The failure message names
    ``what`` (op, case, dtype, quantity), the worst index and both values.
    """
    a, d = np.asarray(actual), np.asarray(desired)
    if a.shape != d.shape:
        raise AssertionError(f"{what}: shape {a.shape} != expected {d.shape}")
    if check_dtype and a.dtype != d.dtype:
        raise AssertionError(f"{what}: dtype {a.dtype} != expected {d.dtype}")
    if rtol is None:
        rtol = ORACLE_RTOL.get(str(d.dtype), ORACLE_RTOL["float64"])
    err, idx = max_rel_error(a, d)
    if not err <= rtol:
        if not np.any(d[np.isfinite(d)]):
            # No nonzero reference entry, so no scale: the relative measure is |a| / tiny
            # (1e+307 and the like), which says nothing. Report the absolute difference.
            diff = abs(float(a[idx]) - float(d[idx]))
            raise AssertionError(
                f"{what}: the reference has no nonzero entry, so no relative error; at index "
                f"{list(idx)}: {a[idx]!r} vs expected {d[idx]!r} (absolute difference {diff:.3g})"
            )
        raise AssertionError(
            f"{what}: error {err:.3g} > {rtol:.3g} at index {list(idx)}: "
            f"{a[idx]!r} vs expected {d[idx]!r}"
        )
    return err
