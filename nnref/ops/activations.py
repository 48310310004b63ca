"""Element-wise and normalising activations: relu, sigmoid, softmax, log_softmax.

Counterparts: ``tf.nn.relu``, ``tf.nn.sigmoid``, ``tf.nn.softmax``, ``tf.nn.log_softmax``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nnref._threads import ELEMENTWISE_MIN_CHUNK, parallel_for
from nnref._validate import (
    as_float,
    check_cotangent,
    check_residuals,
    normalize_axis,
    require_nonempty,
)

# Each op keeps the forward output, from which TF takes the VJP too; one type per op, so that a
# backward refuses another op's residuals instead of computing a wrong gradient from them.


class ReluResiduals(NamedTuple):
    y: np.ndarray


class SigmoidResiduals(NamedTuple):
    y: np.ndarray


class SoftmaxResiduals(NamedTuple):
    y: np.ndarray
    axis: int


class LogSoftmaxResiduals(NamedTuple):
    y: np.ndarray
    axis: int


def _prepare(op: str, x: np.ndarray) -> np.ndarray:
    x = as_float(op, "x", x)
    require_nonempty(op, "x", x)
    return x


def _flush_subnormal(a: np.ndarray) -> np.ndarray:
    """Zero subnormal results, as TF's CPU kernels do (they run with flush-to-zero). A 0-d
    input arrives as a NumPy scalar, which cannot be assigned to, hence ``asarray``."""
    a = np.asarray(a)
    a[np.abs(a) < np.finfo(a.dtype).tiny] = 0
    return a


def relu_fwd(x: np.ndarray) -> tuple[np.ndarray, ReluResiduals]:
    """Rectified linear unit ``y = max(x, 0)``.

    Notes
    -----
    VJP: ``dx = g * (y > 0)``. The gradient is 0 at ``x = 0`` and ``x = -0.0`` and for NaN
    inputs (whose forward value is NaN), exactly as ``tf.nn.relu``'s ``ReluGrad``.

    See Also
    --------
    tf.nn.relu, keras.activations.relu
    """
    x = _prepare("relu", x)
    y = np.empty(x.shape, x.dtype)
    xf, yf, zero = x.reshape(-1), y.reshape(-1), x.dtype.type(0)

    def run(lo: int, hi: int) -> None:
        np.maximum(xf[lo:hi], zero, out=yf[lo:hi])  # propagates NaN like TF

    parallel_for(run, yf.size, min_chunk=ELEMENTWISE_MIN_CHUNK)
    return y, ReluResiduals(y)


def relu_bwd(res: ReluResiduals, dy: np.ndarray) -> tuple[np.ndarray]:
    """VJP of :func:`relu`: returns ``(dx,)``, ``dy * (y > 0)`` as TF's ``ReluGrad`` computes it
    (a product, not a select): where the unit is off a NaN or infinite ``dy`` gives NaN and a
    negative one ``-0.0`` (JAX and PyTorch select 0 there)."""
    check_residuals("relu_bwd", res, ReluResiduals, "relu_fwd")
    y = res.y
    dy = check_cotangent("relu", dy, y.shape, y.dtype)
    dx = np.empty(y.shape, y.dtype)
    yf, gf, of = y.reshape(-1), dy.reshape(-1), dx.reshape(-1)
    zero = y.dtype.type(0)

    def run(lo: int, hi: int) -> None:
        on = np.greater(yf[lo:hi], zero)
        with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in TF
            np.multiply(gf[lo:hi], on, out=of[lo:hi])

    parallel_for(run, of.size, min_chunk=ELEMENTWISE_MIN_CHUNK)
    return (dx,)


def relu(x: np.ndarray) -> np.ndarray:
    """Forward value of :func:`relu_fwd`."""
    return relu_fwd(x)[0]


def sigmoid_fwd(x: np.ndarray) -> tuple[np.ndarray, SigmoidResiduals]:
    """Logistic function ``y = 1 / (1 + exp(-x))``, evaluated without overflow.

    Notes
    -----
    For ``x < 0`` the equivalent ``exp(x) / (1 + exp(x))`` avoids overflowing ``exp(-x)``.
    VJP from the output, as TF: ``dx = g * y * (1 - y)``; it is exactly 0 wherever ``y``
    rounds to 1 (float32 from ``x = 17``). Subnormal results (forward and VJP) are flushed to 0
    as TF's flush-to-zero CPU kernels do: ``sigmoid(-100) == 0`` in float32 (``x < -87.33``),
    ``3.72e-44`` in float64.

    See Also
    --------
    tf.nn.sigmoid, keras.activations.sigmoid
    """
    x = _prepare("sigmoid", x)
    one = x.dtype.type(1)
    neg = x < 0
    e = np.exp(np.where(neg, x, -x))  # exp(-|x|) never overflows
    y = _flush_subnormal(np.where(neg, e / (one + e), one / (one + e)))
    return y, SigmoidResiduals(y)


def sigmoid_bwd(res: SigmoidResiduals, dy: np.ndarray) -> tuple[np.ndarray]:
    """VJP of :func:`sigmoid`: returns ``(dx,)``."""
    check_residuals("sigmoid_bwd", res, SigmoidResiduals, "sigmoid_fwd")
    y = res.y
    dy = check_cotangent("sigmoid", dy, y.shape, y.dtype)
    return (_flush_subnormal(dy * (y * (y.dtype.type(1) - y))),)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Forward value of :func:`sigmoid_fwd`."""
    return sigmoid_fwd(x)[0]


def softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, SoftmaxResiduals]:
    """Softmax along ``axis``: ``y = exp(x - max x) / sum(exp(x - max x))``.

    Notes
    -----
    Shifting by the maximum keeps logits of +-1e4 finite (``[1e4, -1e4, 0] -> [1, 0, 0]``).
    VJP: ``dx = y * (g - sum(g * y))`` with the sum along ``axis``.

    See Also
    --------
    tf.nn.softmax, keras.activations.softmax
    """
    op = "softmax"
    x = _prepare(op, x)
    ax = normalize_axis(op, x, axis)
    e = np.exp(x - x.max(axis=ax, keepdims=True))
    e /= e.sum(axis=ax, keepdims=True)
    return e, SoftmaxResiduals(e, ax)


def softmax_bwd(res: SoftmaxResiduals, dy: np.ndarray) -> tuple[np.ndarray]:
    """VJP of :func:`softmax`: returns ``(dx,)``."""
    check_residuals("softmax_bwd", res, SoftmaxResiduals, "softmax_fwd")
    y, ax = res
    dy = check_cotangent("softmax", dy, y.shape, y.dtype)
    return (y * (dy - (dy * y).sum(axis=ax, keepdims=True)),)


def softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Forward value of :func:`softmax_fwd`."""
    return softmax_fwd(x, axis=axis)[0]


def log_softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, LogSoftmaxResiduals]:
    """Log-softmax along ``axis``: ``y = s - log(sum(exp(s)))`` with ``s = x - max x``.

    Notes
    -----
    Stable for logits of +-1e4: ``[1e4, -1e4, 0] -> [0, -2e4, -1e4]``, no inf or NaN.
    VJP: ``dx = g - exp(y) * sum(g)`` with the sum along ``axis``.

    See Also
    --------
    tf.nn.log_softmax, keras.activations.log_softmax
    """
    op = "log_softmax"
    x = _prepare(op, x)
    ax = normalize_axis(op, x, axis)
    s = x - x.max(axis=ax, keepdims=True)
    y = s - np.log(np.exp(s).sum(axis=ax, keepdims=True))
    return y, LogSoftmaxResiduals(y, ax)


def log_softmax_bwd(res: LogSoftmaxResiduals, dy: np.ndarray) -> tuple[np.ndarray]:
    """VJP of :func:`log_softmax`: returns ``(dx,)``."""
    check_residuals("log_softmax_bwd", res, LogSoftmaxResiduals, "log_softmax_fwd")
    y, ax = res
    dy = check_cotangent("log_softmax", dy, y.shape, y.dtype)
    return (dy - np.exp(y) * dy.sum(axis=ax, keepdims=True),)


def log_softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Forward value of :func:`log_softmax_fwd`."""
    return log_softmax_fwd(x, axis=axis)[0]
