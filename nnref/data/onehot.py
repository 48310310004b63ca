"""``one_hot`` with ``tf.one_hot``'s semantics."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref._validate import as_int


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
    axis : int
        Where the new axis goes, ``-1`` (default) appends it, as ``tf.one_hot``.
    dtype : numpy dtype, default float32 (TF's default)

    Returns
    -------
    array of shape ``indices.shape`` with ``depth`` inserted at ``axis``.

    See Also
    --------
    tf.one_hot
    """
    op = "one_hot"
    idx = as_int(op, "indices", indices)
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer):
        raise TypeError(f"{op}: 'depth' must be an int, got {type(depth).__name__}")
    if depth < 0:
        raise ValueError(f"{op}: 'depth' must be non-negative, got: {depth}")
    out_ndim = idx.ndim + 1
    if not -out_ndim <= axis < out_ndim:
        raise ValueError(
            f"{op}: 'axis' {axis} is out of range for indices of shape {idx.shape} "
            f"(the result has rank {out_ndim})"
        )
    dt = np.dtype(dtype)
    hot = idx[..., None] == np.arange(depth)  # out-of-range rows match nothing
    out = np.where(hot, dt.type(on_value), dt.type(off_value)).astype(dt, copy=False)
    return np.moveaxis(out, -1, axis)
