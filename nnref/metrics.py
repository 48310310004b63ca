"""Classification metrics (not differentiable): ``argmax`` with TF's rules and ``accuracy``."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref._validate import (
    as_float,
    normalize_axis,
    require_min_rank,
    require_nonempty,
    shape_str,
)


def argmax(x: Any, *, axis: int = -1) -> np.ndarray:
    """Index of the largest value along ``axis``, as ``tf.argmax``.

    Ties go to the first index. NaN never wins (``tf.argmax([0.1, nan, 0.5]) == 2``, where
    ``np.argmax`` returns 1); a slice of only NaN and ``-inf`` gives 0.

    Returns
    -------
    int64 array with ``axis`` removed.
    """
    x = as_float("argmax", "x", x)
    ax = normalize_axis("argmax", x, axis)
    if x.shape[ax] == 0:
        raise ValueError(f"argmax: axis {axis} of 'x' {shape_str(x)} is empty")
    if np.isnan(x).any():
        x = np.where(np.isnan(x), -np.inf, x)
    return np.argmax(x, axis=ax).astype(np.int64)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of rows whose predicted class (argmax of ``y_pred``) equals the true class.

    Parameters
    ----------
    y_true : int array, shape (N,) or (N, 1), or array of shape (N, K)
        Sparse class indices (``keras.metrics.SparseCategoricalAccuracy``; a trailing axis of
        1 is squeezed) or one-hot / probability rows (``keras.metrics.CategoricalAccuracy``,
        whose class is their argmax). Sparse labels must be integers.
    y_pred : float array, shape (N, K)
        Scores, probabilities or logits; argmax follows :func:`argmax` (ties to the first
        index, NaN skipped).

    Returns
    -------
    float
        ``mean(class_true == argmax(y_pred))``, exact (not float32-rounded as Keras reports).

    See Also
    --------
    keras.metrics.SparseCategoricalAccuracy, keras.metrics.CategoricalAccuracy
    """
    op = "accuracy"
    pred = as_float(op, "y_pred", y_pred)
    require_min_rank(op, "y_pred", pred, 1)
    require_nonempty(op, "y_pred", pred)
    true = np.asarray(y_true)
    if true.shape == pred.shape and pred.shape[-1] > 1:
        if true.dtype.kind not in "iuf":
            raise TypeError(f"{op}: one-hot 'y_true' must be numeric, got dtype {true.dtype}")
        cls = argmax(true.astype(pred.dtype, copy=False))
    else:
        if true.shape == (*pred.shape[:-1], 1):
            true = true[..., 0]
        if true.shape != pred.shape[:-1]:
            raise ValueError(
                f"{op}: 'y_true' {shape_str(true)} must be class indices of shape "
                f"{tuple(pred.shape[:-1])} or one-hot rows of shape {tuple(pred.shape)} "
                f"for 'y_pred' {shape_str(pred)}"
            )
        if true.dtype.kind not in "iu":
            raise TypeError(
                f"{op}: sparse 'y_true' must hold integer class indices, got dtype {true.dtype} "
                f"with shape {shape_str(true)}"
            )
        cls = true
    return float(np.mean(cls == argmax(pred)))
