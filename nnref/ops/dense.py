"""Fully connected layer and bias addition.

Counterparts: ``keras.layers.Dense`` (kernel ``(in, units)``, ``y = x @ W + b``) and
``tf.nn.bias_add``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nnref._threads import ELEMENTWISE_MIN_CHUNK, parallel_for
from nnref._validate import (
    as_float,
    check_cotangent,
    check_residuals,
    require_bias,
    require_min_rank,
    require_nonempty,
    require_rank,
    same_dtype,
    shape_str,
)
from nnref.ops._channels import add_bias


def _add_bias_rows(x2: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = x2 + b`` row by row (``out`` may be ``x2``), rows split over the threads, each
    range tiled as conv's bias (:func:`nnref.ops._channels.add_bias`)."""

    def run(lo: int, hi: int) -> None:
        add_bias(out[lo:hi], b, x2[lo:hi])

    parallel_for(run, len(out), min_chunk=max(1, ELEMENTWISE_MIN_CHUNK // max(out.shape[1], 1)))


class DenseResiduals(NamedTuple):
    x: np.ndarray
    w: np.ndarray


class BiasAddResiduals(NamedTuple):
    x_shape: tuple[int, ...]
    dtype: np.dtype


def dense_fwd(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, DenseResiduals]:
    """Affine map ``y = x @ w + b`` over the last axis of ``x``.

    Parameters
    ----------
    x : array, shape (..., in)
        Input, rank >= 2 (as ``keras.layers.Dense``).
    w : array, shape (in, units)
        Kernel, same dtype as ``x``; ``units`` may be 0 (an empty result, as TF's).
    b : array, shape (units,)
        Bias, same dtype as ``x``.

    Returns
    -------
    y : array, shape (..., units)
    residuals : DenseResiduals

    Notes
    -----
    Forward ``y = x W + b``. VJP with cotangent ``g``: ``dx = g W^T``, ``dW = x^T g`` (leading
    axes flattened), ``db = sum(g)`` over all axes but the last.

    See Also
    --------
    keras.layers.Dense, tf.linalg.matmul, tf.nn.bias_add
    """
    op = "dense"
    x, w, b = as_float(op, "x", x), as_float(op, "w", w), as_float(op, "b", b)
    same_dtype(op, x=x, w=w, b=b)
    require_min_rank(op, "x", x, 2)
    require_nonempty(op, "x", x)
    require_rank(op, "w", w, 2)
    if x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"{op}: last axis of 'x' {shape_str(x)} must equal the first axis of 'w' {shape_str(w)}"
        )
    require_bias(op, b, "w", w)
    # Reshape to 2-D before matmul: a batched matmul runs one GEMM per leading index.
    x2 = x.reshape(-1, x.shape[-1])
    y = x2 @ w
    _add_bias_rows(y, b, y)  # in place into the GEMM's fresh output: no second array
    return y.reshape(*x.shape[:-1], w.shape[1]), DenseResiduals(x, w)


def dense_bwd(res: DenseResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VJP of :func:`dense`: returns ``(dx, dw, db)``."""
    g2 = _cotangent_rows("dense_bwd", res, dy)
    dw, db = _param_grads(res.x, g2)
    return (g2 @ res.w.T).reshape(res.x.shape), dw, db


def dense_bwd_params(res: DenseResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dw, db)`` alone, the values :func:`dense_bwd` returns: for a first layer, whose input
    needs no gradient, it saves the ``dx`` GEMM (as :func:`~nnref.conv2d_bwd_filter` for a
    convolution; TF's tape skips that gradient too)."""
    g2 = _cotangent_rows("dense_bwd_params", res, dy)
    return _param_grads(res.x, g2)


def _cotangent_rows(fn: str, res: DenseResiduals, dy: np.ndarray) -> np.ndarray:
    """``dy`` checked against the output's shape and dtype, as ``(rows, units)``."""
    check_residuals(fn, res, DenseResiduals, "dense_fwd")
    x, w = res
    dy = check_cotangent("dense", dy, (*x.shape[:-1], w.shape[1]), x.dtype)
    return dy.reshape(x.size // x.shape[-1], w.shape[1])  # not -1: ambiguous for 0 units


def _param_grads(x: np.ndarray, g2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dw, db)`` from the input and the cotangent rows."""
    return x.reshape(-1, x.shape[-1]).T @ g2, g2.sum(axis=0)


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Forward value of :func:`dense_fwd`."""
    return dense_fwd(x, w, b)[0]


def bias_add_fwd(x: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, BiasAddResiduals]:
    """Add a bias along the last (channel) axis, as ``tf.nn.bias_add`` in NHWC/NC layout.

    Parameters
    ----------
    x : array, shape (..., C), rank >= 2
    b : array, shape (C,)

    Notes
    -----
    Forward ``y = x + b``. VJP: ``dx = g``, ``db = sum(g)`` over all axes but the last.

    See Also
    --------
    tf.nn.bias_add
    """
    op = "bias_add"
    x, b = as_float(op, "x", x), as_float(op, "b", b)
    same_dtype(op, x=x, b=b)
    require_min_rank(op, "x", x, 2)
    require_nonempty(op, "x", x)
    require_bias(op, b, "x", x)
    y = np.empty(x.shape, x.dtype)
    _add_bias_rows(x.reshape(-1, x.shape[-1]), b, y.reshape(-1, x.shape[-1]))
    return y, BiasAddResiduals(x.shape, x.dtype)


def bias_add_bwd(res: BiasAddResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VJP of :func:`bias_add`: returns ``(dx, db)``."""
    check_residuals("bias_add_bwd", res, BiasAddResiduals, "bias_add_fwd")
    dy = check_cotangent("bias_add", dy, res.x_shape, res.dtype)
    return dy.copy(), dy.reshape(-1, res.x_shape[-1]).sum(axis=0)


def bias_add(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Forward value of :func:`bias_add_fwd`."""
    return bias_add_fwd(x, b)[0]
