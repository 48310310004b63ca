"""Input validation shared by every op.

Every error names the op, the argument and the shapes involved, so a user who passes the wrong
thing learns what to fix without reading nnref's source. nnref never casts silently: integer,
bool, complex and float16 arrays are refused where a float32/float64 tensor is expected, and two
float tensors of different precision are refused (TF does not promote either).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Exceptions that say a call's own code is broken (a typo, a missing attribute or module,
#: runaway recursion), never that it refused its input: where a case must raise, one of these
#: is a failure, not agreement (``nnref verify`` and ``nnref conform``).
BROKEN_CODE: tuple[type[Exception], ...] = (
    AttributeError,
    NameError,
    ImportError,
    RecursionError,
)


def shape_str(x: np.ndarray) -> str:
    return str(tuple(int(d) for d in x.shape))


def _array(op: str, name: str, x: Any) -> np.ndarray:
    """``np.asarray(x)``, a ragged nested sequence refused naming the op and the argument
    (NumPy's own ValueError names neither)."""
    try:
        return np.asarray(x)
    except ValueError:
        raise ValueError(
            f"{op}: argument '{name}' must be a rectangular array, got a ragged "
            f"{type(x).__name__} (rows of different lengths)"
        ) from None


def as_float(op: str, name: str, x: Any) -> np.ndarray:
    """Return ``x`` as an ndarray, requiring float32 or float64 (never casting)."""
    arr = _array(op, name, x)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: argument '{name}' must be float32 or float64, got dtype {arr.dtype} "
            f"with shape {shape_str(arr)} (nnref does not cast silently; convert it explicitly)"
        )
    return arr


def is_int(v: Any) -> bool:
    """Whether ``v`` is an int (Python's or NumPy's), not a bool."""
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    """Whether ``v`` is a real number: an int or a float, Python's or NumPy's, not a bool
    (``np.bool_`` is neither ``np.integer`` nor ``np.floating``)."""
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def as_int(op: str, name: str, x: Any) -> np.ndarray:
    """Return ``x`` as an integer ndarray (int8..int64, uint8..uint64); floats and bools refused."""
    arr = _array(op, name, x)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: argument '{name}' must hold integer class indices, got dtype {arr.dtype} "
            f"with shape {shape_str(arr)}"
        )
    return arr


def same_dtype(op: str, **arrays: np.ndarray) -> np.dtype:
    """Require all arrays to share one float dtype; return it."""
    items = list(arrays.items())
    first_name, first = items[0]
    for name, arr in items[1:]:
        if arr.dtype != first.dtype:
            raise TypeError(
                f"{op}: arguments '{first_name}' {first.dtype}{shape_str(first)} and "
                f"'{name}' {arr.dtype}{shape_str(arr)} must have the same dtype "
                "(nnref does not promote, as TF does not)"
            )
    return first.dtype


def require_rank(op: str, name: str, x: np.ndarray, rank: int, layout: str = "") -> None:
    if x.ndim != rank:
        hint = f" {layout}" if layout else ""
        raise ValueError(
            f"{op}: argument '{name}' must have rank {rank}{hint}, got shape {shape_str(x)}"
        )


def require_bias(
    op: str, b: np.ndarray, other_name: str, other: np.ndarray, layout: str = ""
) -> None:
    """A bias ``b``: rank 1, one entry per index of ``other``'s last axis."""
    require_rank(op, "b", b, 1, layout)
    if b.shape[0] != other.shape[-1]:
        raise ValueError(
            f"{op}: bias 'b' {shape_str(b)} must match the last axis of "
            f"'{other_name}' {shape_str(other)}"
        )


def require_min_rank(op: str, name: str, x: np.ndarray, rank: int) -> None:
    if x.ndim < rank:
        raise ValueError(
            f"{op}: argument '{name}' must have rank >= {rank}, got shape {shape_str(x)}"
        )


def normalize_axis(op: str, x: np.ndarray, axis: Any) -> int:
    """``axis`` of ``x`` (rank >= 1) as a non-negative int; a non-int or out-of-range axis is
    refused here, by name (NumPy would raise a bare IndexError, AxisError or TypeError), a bool
    too (an int subclass: ``axis=True`` would act as axis 1)."""
    require_min_rank(op, "x", x, 1)
    if not is_int(axis):
        raise ValueError(f"{op}: 'axis' must be an int, got {type(axis).__name__} {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: 'axis' {axis!r} is out of range for x of rank {x.ndim}")
    return int(axis) % x.ndim


def require_nonempty(op: str, name: str, x: np.ndarray) -> None:
    """Refuse empty tensors (an empty batch or a zero-sized class axis).

    TF returns empty results or NaN means here; nnref refuses, because an empty batch in a
    reference computation is nearly always a slicing bug upstream (documented difference).
    """
    if x.size == 0:
        raise ValueError(f"{op}: argument '{name}' is empty (shape {shape_str(x)})")


def require_same_shape(op: str, a_name: str, a: np.ndarray, b_name: str, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{op}: arguments '{a_name}' {shape_str(a)} and '{b_name}' {shape_str(b)} "
            "must have the same shape"
        )


def check_labels_in_range(op: str, name: str, labels: np.ndarray, num_classes: int) -> None:
    """TF's CPU kernels raise on out-of-range sparse labels; so does nnref, naming the value."""
    bad = (labels < 0) | (labels >= num_classes)
    if np.any(bad):
        first = labels[bad].flat[0]
        raise ValueError(
            f"{op}: argument '{name}' has a label value of {int(first)} which is outside the "
            f"valid range of [0, {num_classes}) (labels shape {shape_str(labels)}, "
            f"{int(np.count_nonzero(bad))} out-of-range value(s))"
        )


def check_residuals(fn: str, res: Any, expected: type | tuple[type, ...], fwd: str) -> None:
    """Refuse residuals that ``fwd`` did not return (another op's, or not residuals at all):
    ``softmax_bwd`` fed ``log_softmax_fwd``'s would compute a wrong gradient without a word."""
    types = expected if isinstance(expected, tuple) else (expected,)
    if not isinstance(res, types):
        names = " or ".join(t.__name__ for t in types)
        raise TypeError(
            f"{fn}: 'res' must be the residuals {fwd} returned ({names}), got {type(res).__name__}"
        )


def check_cotangent(op: str, dy: Any, y_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Validate the upstream gradient passed to a ``*_bwd`` function.

    A Python ``float`` (e.g. ``1.0`` for a scalar loss) takes the output's dtype, unless it
    overflows it (it never becomes inf silently); arrays and NumPy scalars (``np.float64`` is a
    subclass of ``float``) must already have it.
    """
    if isinstance(dy, float) and not isinstance(dy, np.generic):
        with np.errstate(over="ignore"):
            cast = np.asarray(dy, dtype=dtype)
        if np.isinf(cast) and not math.isinf(dy):
            raise ValueError(
                f"{op}: argument 'dy' {dy!r} overflows the output's dtype {dtype} "
                f"(largest finite value {np.finfo(dtype).max!s})"
            )
        dy = cast
    dy = as_float(op, "dy", dy)
    if dy.shape != tuple(y_shape):
        raise ValueError(
            f"{op}: argument 'dy' must have the output's shape {tuple(y_shape)}, "
            f"got {shape_str(dy)}"
        )
    if dy.dtype != dtype:
        raise TypeError(f"{op}: argument 'dy' must have the output's dtype {dtype}, got {dy.dtype}")
    return dy
