"""``one_hot`` with ``tf.one_hot``'s semantics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnref import _memory
from nnref._validate import as_int, is_int, shape_str


def _fill(op: str, name: str, value: Any, dt: np.dtype) -> np.generic:
    """``value`` in ``dt``, refused rather than changed: a non-scalar, a non-number, a value an
    integer or bool ``dt`` cannot hold exactly (``tf.one_hot`` raises TypeError on a float
    ``on_value`` with an integer ``dtype``; ``np.int32(2.7)`` would be 2) or one a float ``dt``
    cannot hold finitely."""
    arr = np.asarray(value)
    if arr.ndim != 0:
        raise ValueError(f"{op}: '{name}' must be a scalar, got shape {shape_str(arr)}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{op}: '{name}' must be a real number, got {value!r}")
    if dt.kind in "biu":
        v = arr.item()
        lo, hi = (0, 1) if dt.kind == "b" else (np.iinfo(dt).min, np.iinfo(dt).max)
        if not (math.isfinite(v) and v == int(v) and lo <= int(v) <= hi):
            raise TypeError(
                f"{op}: '{name}' {value!r} of dtype {arr.dtype} cannot be represented exactly "
                f"in dtype {dt} (nnref does not cast silently)"
            )
    elif dt.kind == "f":
        with np.errstate(over="ignore"):
            cast = dt.type(value)
        if np.isinf(cast) and not np.isinf(arr):
            raise ValueError(f"{op}: '{name}' {value!r} overflows dtype {dt}")
        return cast
    return dt.type(value)


def _dtype(op: str, dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype, ``None`` as TF's default float32."""
    try:
        dt = np.dtype(np.float32 if dtype is None else dtype)
    except TypeError:
        raise TypeError(f"{op}: 'dtype' must be a NumPy dtype, got {dtype!r}") from None
    if dt.kind not in "biufc":
        raise TypeError(f"{op}: 'dtype' must be a bool, integer, float or complex dtype, got {dt}")
    return dt


def one_hot(
    indices: Any,
    depth: int,
    *,
    on_value: float = 1.0,
    off_value: float = 0.0,
    axis: int = -1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """One-hot encode integer ``indices`` into a new axis of size ``depth``.

    Parameters
    ----------
    indices : int array, any shape
        Values outside ``[0, depth)``, negatives included, give all-``off_value`` rows, as
        ``tf.one_hot`` (``np.eye(depth)[-1]`` would wrap around instead).
    depth : int >= 0
    on_value, off_value : scalars cast to ``dtype``
        Refused when the cast would change them: a fractional or out-of-range value for an
        integer ``dtype`` (TypeError, as ``tf.one_hot`` refuses a float for an integer
        ``dtype``) or an overflow to inf.
    axis : int
        Where the new axis goes, ``-1`` (default) appends it, as ``tf.one_hot``.
    dtype : numpy dtype, default float32 (TF's default)
        ``None`` is float32 too, as ``tf.one_hot(dtype=None)`` (``np.dtype(None)`` would be
        float64). Bool, integer, float and complex dtypes only.

    Returns
    -------
    array of shape ``indices.shape`` with ``depth`` inserted at ``axis``.

    Notes
    -----
    The output is the only allocation of ``depth`` entries per index; one too large to
    allocate raises MemoryError naming ``depth``, the shape and the size.

    See Also
    --------
    tf.one_hot
    """
    op = "one_hot"
    idx = as_int(op, "indices", indices)
    if not is_int(depth):
        raise TypeError(f"{op}: 'depth' must be an int, got {type(depth).__name__}")
    if depth < 0:
        raise ValueError(f"{op}: 'depth' must be non-negative, got: {depth}")
    out_ndim = idx.ndim + 1
    if not is_int(axis):
        raise TypeError(f"{op}: 'axis' must be an int, got {type(axis).__name__}")
    if not -out_ndim <= axis < out_ndim:
        raise ValueError(
            f"{op}: 'axis' {axis} is out of range for indices of shape {idx.shape} "
            f"(the result has rank {out_ndim})"
        )
    dt = _dtype(op, dtype)
    on, off = _fill(op, "on_value", on_value, dt), _fill(op, "off_value", off_value, dt)
    # The output is the only depth-sized allocation (an arange of depth int64 and a boolean
    # mask once took 9x the memory of a float32 output): off everywhere, then on at each
    # in-range index. Out-of-range rows stay off.
    try:
        out = np.empty((*idx.shape, depth), dt)
    except _memory.TOO_LARGE as e:
        shape = list(idx.shape)
        shape.insert(axis % out_ndim, depth)
        raise _memory.too_large(op, f"'depth' {depth}", "an output", tuple(shape), dt) from e
    out.fill(off)
    flat = idx.reshape(-1)
    rows = np.flatnonzero((flat >= 0) & (flat < depth))
    out.reshape(flat.size, depth)[rows, flat[rows]] = on
    return np.moveaxis(out, -1, axis)
