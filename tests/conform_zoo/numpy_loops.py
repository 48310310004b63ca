"""A student's loop-based NumPy implementation of every op in nnref's contract.

Written from TF's documented behaviour, not from nnref: it imports NumPy only, so
``python -m nnref conform tests/conform_zoo/numpy_loops.py`` loads it as any user's file. Loops
go over output pixels, rows or elements, the way a first implementation (CS231n's
``layers.py``) is written; a loop body is vectorised over the batch and channel axes (and a
pooling window's cells) only.

Contract: ``NAME_fwd(*inputs, **hyper) -> (y, residuals)`` and ``NAME_bwd(residuals, dy)`` ->
one gradient per input (``None`` for integer labels) for the differentiable ops; ``argmax``,
``accuracy``, ``one_hot``, ``kfold_sizes``, ``kfold_batches``; ``sgd`` / ``adam`` / ``rmsprop``
factories whose result has ``init(params)`` and ``update(grads, state, params)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: ``keras.config.epsilon()``: the probability losses clip to ``[EPS, 1 - EPS]``.
EPS = 1e-7


# --------------------------------------------------------------------------- windows


def pair(v: Any) -> tuple[int, int]:
    """``2``, ``[2, 1]`` or ``[1, 2, 1, 1]`` as ``(h, w)``."""
    if isinstance(v, int | np.integer):
        return int(v), int(v)
    v = [int(u) for u in v]
    if len(v) == 4:
        return v[1], v[2]
    if len(v) == 1:
        return v[0], v[0]
    return v[0], v[1]


def axis_pads(n: int, k: int, s: int, d: int, padding: Any, axis: int) -> tuple[int, int, int]:
    """``(before, after, out)`` along one spatial axis, TF's rule: SAME pads
    ``total = max((ceil(n / s) - 1) s + (k - 1) d + 1 - n, 0)``, ``total // 2`` before."""
    eff = (k - 1) * d + 1
    if isinstance(padding, str):
        if padding == "VALID":
            return 0, 0, max((n - eff) // s + 1, 0)
        if padding != "SAME":
            raise ValueError(f"padding must be 'SAME', 'VALID' or explicit, got {padding!r}")
        out = math.ceil(n / s)
        total = max((out - 1) * s + eff - n, 0)
        return total // 2, total - total // 2, out
    before, after = padding[1 + axis]
    return before, after, max((n + before + after - eff) // s + 1, 0)


@dataclass
class Geometry:
    """Strides, dilations, pads and output sizes of one conv or pool call."""

    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    out: tuple[int, int]


def geometry(
    x_shape: tuple[int, ...], k: tuple[int, int], strides: Any, dilations: Any, padding: Any
) -> Geometry:
    """The geometry of a window ``k`` over an NHWC input of shape ``x_shape``."""
    s, d = pair(strides), pair(dilations)
    h = axis_pads(x_shape[1], k[0], s[0], d[0], padding, 0)
    w = axis_pads(x_shape[2], k[1], s[1], d[1], padding, 1)
    return Geometry(s, d, ((h[0], h[1]), (w[0], w[1])), (h[2], w[2]))


def pad_zeros(x: np.ndarray, g: Geometry) -> np.ndarray:
    """``x`` with ``g``'s pads of zeros on H and W."""
    (t, b), (left, r) = g.pads
    xp = np.zeros((x.shape[0], x.shape[1] + t + b, x.shape[2] + left + r, x.shape[3]), x.dtype)
    xp[:, t : t + x.shape[1], left : left + x.shape[2], :] = x
    return xp


def window(g: Geometry, k: tuple[int, int], i: int, j: int) -> tuple[slice, slice]:
    """The (dilated) rows and columns of the padded input that output pixel ``(i, j)`` reads."""
    (sh, sw), (dh, dw) = g.strides, g.dilations
    return (
        slice(i * sh, i * sh + (k[0] - 1) * dh + 1, dh),
        slice(j * sw, j * sw + (k[1] - 1) * dw + 1, dw),
    )


# --------------------------------------------------------------------------- conv2d


def conv2d_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, tuple]:
    """Cross-correlation, NHWC input ``(N, H, W, C)``, HWIO kernel ``(KH, KW, C, O)``:
    ``y[n, i, j, o] = sum_{a, b, c} xpad[n, i sh + a dh, j sw + b dw, c] w[a, b, c, o]``."""
    k = (w.shape[0], w.shape[1])
    g = geometry(x.shape, k, strides, dilations, padding)
    xp = pad_zeros(x, g)
    y = np.zeros((x.shape[0], *g.out, w.shape[3]), x.dtype)
    for i in range(g.out[0]):
        for j in range(g.out[1]):
            rows, cols = window(g, k, i, j)
            y[:, i, j, :] = np.tensordot(xp[:, rows, cols, :], w, axes=3)
    return y, (xp, w, g, x.shape)


def conv2d_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dx, dw)``: each output pixel sends ``dy w`` back to its window and adds
    ``window (x) dy`` to the kernel gradient."""
    xp, w, g, x_shape = res
    k = (w.shape[0], w.shape[1])
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(g.out[0]):
        for j in range(g.out[1]):
            rows, cols = window(g, k, i, j)
            dw += np.tensordot(xp[:, rows, cols, :], dy[:, i, j, :], axes=([0], [0]))
            dxp[:, rows, cols, :] += np.tensordot(dy[:, i, j, :], w, axes=([1], [3]))
    (t, _), (left, _) = g.pads
    return dxp[:, t : t + x_shape[1], left : left + x_shape[2], :], dw


# --------------------------------------------------------------------------- max_pool2d


def max_pool2d_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, tuple]:
    """Max over each window, TF's CPU rules: padded cells never take part; the running max
    starts at the dtype's lowest finite value and skips NaN; the gradient goes to the window's
    first cell, replaced only by a strictly greater one (ties: the first maximum)."""
    k = pair(ksize)
    g = geometry(x.shape, k, strides, 1, padding)
    n, h, w, c = x.shape
    y = np.empty((n, *g.out, c), x.dtype)
    # (row, col) of the input cell that takes each output's gradient.
    chosen = np.zeros((2, n, *g.out, c), np.int64)
    for i in range(g.out[0]):
        for j in range(g.out[1]):
            rows, cols = window_cells(g, k, i, j, h, w)
            cells = x[:, rows, cols, :].reshape(n, -1, c)  # the real cells, row-major
            y[:, i, j, :] = np.fmax(np.fmax.reduce(cells, axis=1), np.finfo(x.dtype).min)
            # "First cell, then strictly greater": NaN never replaces (comparisons with NaN
            # are false) and, in first place, is never replaced.
            first = np.argmax(np.where(np.isnan(cells), -np.inf, cells), axis=1)
            pick = np.where(np.isnan(cells[:, 0, :]), 0, first)
            chosen[0, :, i, j, :] = rows.start + pick // (cols.stop - cols.start)
            chosen[1, :, i, j, :] = cols.start + pick % (cols.stop - cols.start)
    return y, (x.shape, x.dtype, chosen)


def window_cells(
    g: Geometry, k: tuple[int, int], i: int, j: int, h: int, w: int
) -> tuple[slice, slice]:
    """The rows and columns of the unpadded input inside pooling window ``(i, j)``."""
    (t, _), (left, _) = g.pads
    r0, c0 = i * g.strides[0] - t, j * g.strides[1] - left
    return slice(max(r0, 0), min(r0 + k[0], h)), slice(max(c0, 0), min(c0 + k[1], w))


def max_pool2d_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``(dx,)``: each output's gradient added to its chosen cell (overlaps accumulate)."""
    shape, dtype, chosen = res
    dx = np.zeros(shape, dtype)
    n, oh, ow, c = dy.shape
    for bn in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    dx[bn, chosen[0, bn, i, j, ch], chosen[1, bn, i, j, ch], ch] += dy[bn, i, j, ch]
    return (dx,)


# --------------------------------------------------------------------------- dense, bias_add


def dense_fwd(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``y = x w + b`` over the last axis of ``x`` (``(..., I) -> (..., O)``)."""
    rows = x.reshape(-1, x.shape[-1])
    y = np.zeros((rows.shape[0], w.shape[1]), x.dtype)
    for r in range(rows.shape[0]):
        y[r] = rows[r] @ w + b
    return y.reshape(*x.shape[:-1], w.shape[1]), (x, w)


def dense_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dy w^T, sum_rows x^T dy, sum_rows dy)``."""
    x, w = res
    rows, g = x.reshape(-1, x.shape[-1]), dy.reshape(-1, w.shape[1])
    dx = np.zeros_like(rows)
    dw = np.zeros_like(w)
    db = np.zeros(w.shape[1], w.dtype)
    for r in range(rows.shape[0]):
        dx[r] = w @ g[r]
        dw += np.outer(rows[r], g[r])
        db += g[r]
    return dx.reshape(x.shape), dw, db


def bias_add_fwd(x: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``y = x + b`` along the last (channel) axis."""
    y = x.copy()
    for ch in range(b.shape[0]):
        y[..., ch] += b[ch]
    return y, (b.shape[0],)


def bias_add_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dy, dy summed over every axis but the last)``."""
    (c,) = res
    db = np.array([dy[..., ch].sum() for ch in range(c)], dy.dtype)
    return dy.copy(), db


# --------------------------------------------------------------------------- activations


def relu_fwd(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``max(x, 0)``; the gradient is 1 where ``x > 0`` and 0 elsewhere (0 at ``x = 0``)."""
    y = x.copy()
    for idx in np.ndindex(x.shape):
        if x[idx] < 0:
            y[idx] = 0
    return y, (x,)


def relu_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``(dy where x > 0, else 0)``: relu'(0) = 0, as TF's ReluGrad."""
    (x,) = res
    dx = np.zeros_like(dy)
    for idx in np.ndindex(x.shape):
        if x[idx] > 0:
            dx[idx] = dy[idx]
    return (dx,)


def sigmoid_fwd(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``1 / (1 + exp(-x))``, written per sign so that ``exp`` never overflows."""
    y = np.empty_like(x)
    one = x.dtype.type(1)
    for idx in np.ndindex(x.shape):
        v = x[idx]
        if v >= 0:
            y[idx] = one / (one + np.exp(-v))
        else:
            e = np.exp(v)
            y[idx] = e / (one + e)
    return y, (y,)


def sigmoid_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dy y (1 - y)`` from the output, as TF's SigmoidGrad."""
    (y,) = res
    return (dy * y * (y.dtype.type(1) - y),)


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    """A view with ``axis`` last, to loop over its 1-D slices."""
    return np.moveaxis(x, axis, -1)


def softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``exp(x - max) / sum exp(x - max)`` over ``axis``."""
    y = np.empty_like(x)
    xs, ys = _rows(x, axis), _rows(y, axis)
    for idx in np.ndindex(xs.shape[:-1]):
        e = np.exp(xs[idx] - xs[idx].max())
        ys[idx] = e / e.sum()
    return y, (y, axis)


def softmax_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``y (dy - sum(dy y))`` per slice."""
    y, axis = res
    dx = np.empty_like(dy)
    ys, gs, ds = _rows(y, axis), _rows(dy, axis), _rows(dx, axis)
    for idx in np.ndindex(ys.shape[:-1]):
        ds[idx] = ys[idx] * (gs[idx] - (gs[idx] * ys[idx]).sum())
    return (dx,)


def log_softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``x - max - log sum exp(x - max)`` over ``axis``."""
    y = np.empty_like(x)
    xs, ys = _rows(x, axis), _rows(y, axis)
    for idx in np.ndindex(xs.shape[:-1]):
        z = xs[idx] - xs[idx].max()
        ys[idx] = z - np.log(np.exp(z).sum())
    return y, (y, axis)


def log_softmax_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dy - softmax sum(dy)`` per slice."""
    y, axis = res
    dx = np.empty_like(dy)
    ys, gs, ds = _rows(y, axis), _rows(dy, axis), _rows(dx, axis)
    for idx in np.ndindex(ys.shape[:-1]):
        ds[idx] = gs[idx] - np.exp(ys[idx]) * gs[idx].sum()
    return (dx,)


# --------------------------------------------------------------------------- cross-entropy


def check_labels(labels: np.ndarray, k: int) -> None:
    """TF on CPU refuses labels outside ``[0, k)``."""
    for v in labels.reshape(-1):
        if not 0 <= v < k:
            raise ValueError(f"label {v} is outside the valid range [0, {k})")


def log_softmax_row(z: np.ndarray) -> np.ndarray:
    """``z - max - log sum exp(z - max)`` of one row."""
    s = z - z.max()
    return s - np.log(np.exp(s).sum())


def sparse_softmax_cross_entropy_with_logits_fwd(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """Per row ``log sum exp(z - m) - (z_y - m)``."""
    check_labels(labels, logits.shape[-1])
    loss = np.empty(logits.shape[0], logits.dtype)
    probs = np.empty_like(logits)
    for r in range(logits.shape[0]):
        ls = log_softmax_row(logits[r])
        loss[r] = -ls[labels[r]]
        probs[r] = np.exp(ls)
    return loss, (labels, probs)


def sparse_softmax_cross_entropy_with_logits_bwd(res: tuple, dy: np.ndarray) -> tuple[None, Any]:
    """``(None, dy (softmax(z) - onehot(y)))``."""
    labels, probs = res
    dz = probs.copy()
    for r in range(dz.shape[0]):
        dz[r, labels[r]] -= 1
        dz[r] *= dy[r]
    return None, dz


def softmax_cross_entropy_with_logits_fwd(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """Per row ``-sum p log_softmax(z)``."""
    loss = np.empty(logits.shape[0], logits.dtype)
    logp = np.empty_like(logits)
    for r in range(logits.shape[0]):
        logp[r] = log_softmax_row(logits[r])
        loss[r] = -(labels[r] * logp[r]).sum()
    return loss, (labels, logp)


def softmax_cross_entropy_with_logits_bwd(
    res: tuple, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(-dy log_softmax(z), dy (softmax(z) - p))``: TF's dlogits, even when rows of ``p``
    do not sum to 1."""
    p, logp = res
    dp, dz = np.empty_like(p), np.empty_like(p)
    for r in range(p.shape[0]):
        dp[r] = -dy[r] * logp[r]
        dz[r] = dy[r] * (np.exp(logp[r]) - p[r])
    return dp, dz


def reduce(per: np.ndarray, reduction: str, sample_weight: Any) -> tuple[np.ndarray, tuple]:
    """Keras' reductions of per-sample losses (weights first): ``sum_over_batch_size`` divides
    by the number of losses, ``sum``, ``none``."""
    w = None if sample_weight is None else np.asarray(sample_weight, per.dtype)
    weighted = per if w is None else per * w
    if reduction == "none":
        out = weighted
    elif reduction == "sum":
        out = np.asarray(weighted.sum(), per.dtype)
    elif reduction == "sum_over_batch_size":
        out = np.asarray(weighted.sum() / per.dtype.type(per.size), per.dtype)
    else:
        raise ValueError(f"unknown reduction {reduction!r}")
    return out, (reduction, w, per.shape)


def per_sample_cotangent(red: tuple, dy: np.ndarray) -> np.ndarray:
    """The cotangent of each per-sample loss from that of the reduced loss."""
    reduction, w, shape = red
    g = np.broadcast_to(np.asarray(dy), shape).astype(dy.dtype)
    if reduction == "sum_over_batch_size":
        g = g / dy.dtype.type(int(np.prod(shape)))
    return g if w is None else g * w


def clip_probs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``clip(p, 1e-7, 1 - 1e-7)`` and where the gradient passes (inside the clip)."""
    lo, hi = p.dtype.type(EPS), p.dtype.type(1) - p.dtype.type(EPS)
    return np.clip(p, lo, hi), (p >= lo) & (p <= hi)


def sparse_categorical_crossentropy_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> tuple[np.ndarray, tuple]:
    """Keras' SCCE: logits through the TF op; probabilities clipped (not renormalised first),
    then ``log sum q - log q_y``."""
    labels = y_true.reshape(y_pred.shape[:-1])
    check_labels(labels, y_pred.shape[-1])
    per = np.empty(y_pred.shape[0], y_pred.dtype)
    grad = np.empty_like(y_pred)  # d per / d y_pred, row by row
    for r in range(y_pred.shape[0]):
        y = labels[r]
        if from_logits:
            ls = log_softmax_row(y_pred[r])
            per[r] = -ls[y]
            grad[r] = np.exp(ls)
            grad[r, y] -= 1
        else:
            q, passes = clip_probs(y_pred[r])
            total = q.sum()
            per[r] = np.log(total) - np.log(q[y])
            g = np.full_like(q, 1 / total)
            g[y] -= 1 / q[y]
            grad[r] = np.where(passes, g, 0)
    out, red = reduce(per, reduction, sample_weight)
    return out, (grad, red)


def sparse_categorical_crossentropy_bwd(res: tuple, dy: np.ndarray) -> tuple[None, np.ndarray]:
    """``(None, dy_pred)``: the per-row gradients times the per-sample cotangent."""
    grad, red = res
    return None, grad * per_sample_cotangent(red, dy)[:, None]


def categorical_crossentropy_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> tuple[np.ndarray, tuple]:
    """Keras' CCE: labels smoothed ``y (1 - ls) + ls / K``; logits through the TF op;
    probabilities divided by their row sum, then clipped, then ``-sum y log q``."""
    k = y_pred.shape[-1]
    t = y_true
    if label_smoothing:
        dt = y_pred.dtype.type
        t = y_true * dt(1 - label_smoothing) + dt(label_smoothing / k)
    per = np.empty(y_pred.shape[0], y_pred.dtype)
    logq = np.empty_like(y_pred)
    dpred = np.empty_like(y_pred)  # d per / d y_pred
    for r in range(y_pred.shape[0]):
        if from_logits:
            logq[r] = log_softmax_row(y_pred[r])
            dpred[r] = np.exp(logq[r]) - t[r]
        else:
            total = y_pred[r].sum()
            share = y_pred[r] / total
            q, passes = clip_probs(share)
            logq[r] = np.log(q)
            dq = np.where(passes, -t[r] / q, 0)
            dpred[r] = (dq - (dq * share).sum()) / total
        per[r] = -(t[r] * logq[r]).sum()
    out, red = reduce(per, reduction, sample_weight)
    return out, (logq, dpred, 1 - label_smoothing, red)


def categorical_crossentropy_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dy_true, dy_pred)``: ``dy_true = -g log q (1 - ls)``."""
    logq, dpred, scale, red = res
    g = per_sample_cotangent(red, dy)[:, None]
    return -g * logq * logq.dtype.type(scale), g * dpred


def mean_squared_error_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> tuple[np.ndarray, tuple]:
    """Per sample ``mean((y_pred - y_true)^2)`` over the last axis, then Keras' reduction."""
    per = np.empty(y_pred.shape[:-1], y_pred.dtype)
    for idx in np.ndindex(per.shape):
        diff = y_pred[idx] - y_true[idx]
        per[idx] = (diff * diff).mean()
    out, red = reduce(per, reduction, sample_weight)
    return out, (y_pred - y_true, red)


def mean_squared_error_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(-dp, dp)`` with ``dp = g 2 (y_pred - y_true) / D``."""
    diff, red = res
    dp = per_sample_cotangent(red, dy)[..., None] * diff * diff.dtype.type(2 / diff.shape[-1])
    return -dp, dp


# --------------------------------------------------------------------------- metrics, data


def argmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``tf.argmax``: ties to the first index, NaN never wins, only NaN / -inf gives 0."""
    xs = _rows(x, axis)
    out = np.zeros(xs.shape[:-1], np.int64)
    for idx in np.ndindex(xs.shape[:-1]):
        best = -np.inf
        for j, v in enumerate(xs[idx]):
            if v > best:
                best, out[idx] = v, j
    return out


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of rows whose argmax matches: sparse labels (``(N,)`` or ``(N, 1)``) or one-hot."""
    onehot = y_true.shape == y_pred.shape
    cls = argmax(y_true) if onehot else y_true.reshape(y_pred.shape[:-1])
    pred = argmax(y_pred)
    hits = sum(int(c == p) for c, p in zip(cls.reshape(-1), pred.reshape(-1), strict=True))
    return hits / pred.size


def one_hot(
    indices: np.ndarray,
    depth: int,
    *,
    on_value: float = 1.0,
    off_value: float = 0.0,
    axis: int = -1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``tf.one_hot``: indices outside ``[0, depth)``, negatives included, give all-off rows."""
    dt = np.dtype(dtype)
    out = np.full((*indices.shape, depth), off_value, dt)
    for idx in np.ndindex(indices.shape):
        v = indices[idx]
        if 0 <= v < depth:
            out[(*idx, v)] = on_value
    return np.moveaxis(out, -1, axis)


def kfold_sizes(n: int, k: int) -> list[int]:
    """``KFold(k)`` on ``n`` samples: the first ``n % k`` folds get one extra sample."""
    return [n // k + (1 if f < n % k else 0) for f in range(k)]


def kfold_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Test folds of ``KFold(int(n / batch_size))`` over a random permutation of ``range(n)``."""
    perm = rng.permutation(n)
    batches, start = [], 0
    for size in kfold_sizes(n, max(1, int(n / batch_size))):
        batches.append(perm[start : start + size])
        start += size
    return batches


# --------------------------------------------------------------------------- optimizers


def as_keras_float32(c: float, dtype: np.dtype) -> Any:
    """Keras keeps the learning rate (and SGD momentum, Adam betas) as float32."""
    return dtype.type(np.float32(c))


class SGD:
    """``keras.optimizers.SGD``: ``m = mu m - lr g``; ``x += m`` (Nesterov: ``mu m - lr g``)."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        self.lr, self.momentum, self.nesterov = learning_rate, momentum, nesterov

    def init(self, params: list[np.ndarray]) -> dict[str, Any]:
        return {"m": [np.zeros_like(p) for p in params]}

    def update(
        self, grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        new_params, new_m = [], []
        for p, g, m in zip(params, grads, state["m"], strict=True):
            lr = as_keras_float32(self.lr, p.dtype)
            if not self.momentum:
                new_params.append(p - lr * g)
                new_m.append(m)
                continue
            mu = as_keras_float32(self.momentum, p.dtype)
            m = mu * m - lr * g
            new_m.append(m)
            new_params.append(p + (mu * m - lr * g) if self.nesterov else p + m)
        return new_params, {"m": new_m}


class Adam:
    """``keras.optimizers.Adam``: epsilon added to ``sqrt(v)`` before bias correction,
    ``x -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
    ):
        self.lr, self.b1, self.b2, self.eps, self.amsgrad = (
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        )

    def init(self, params: list[np.ndarray]) -> dict[str, Any]:
        zeros = [np.zeros_like(p) for p in params]
        return {"t": 0, "m": zeros, "v": zeros, "vmax": zeros}

    def update(
        self, grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        t = state["t"] + 1
        new: dict[str, Any] = {"t": t, "m": [], "v": [], "vmax": []}
        out = []
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            dt = p.dtype.type
            b1, b2 = as_keras_float32(self.b1, p.dtype), as_keras_float32(self.b2, p.dtype)
            lr = as_keras_float32(self.lr, p.dtype)
            alpha = lr * np.sqrt(dt(1) - b2 ** dt(t)) / (dt(1) - b1 ** dt(t))
            m = state["m"][k] + (g - state["m"][k]) * dt(1 - self.b1)
            v = state["v"][k] + (g * g - state["v"][k]) * dt(1 - self.b2)
            vmax = np.maximum(state["vmax"][k], v)
            used = vmax if self.amsgrad else v
            out.append(p - m * alpha / (np.sqrt(used) + dt(self.eps)))
            new["m"].append(m)
            new["v"].append(v)
            new["vmax"].append(vmax)
        return out, new


class RMSprop:
    """``keras.optimizers.RMSprop``: epsilon inside the square root, ``g / sqrt(v + eps)``."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
    ):
        self.lr, self.rho, self.momentum, self.eps, self.centered = (
            learning_rate,
            rho,
            momentum,
            epsilon,
            centered,
        )

    def init(self, params: list[np.ndarray]) -> dict[str, Any]:
        zeros = [np.zeros_like(p) for p in params]
        return {"v": zeros, "mg": zeros, "mom": zeros}

    def update(
        self, grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        new: dict[str, Any] = {"v": [], "mg": [], "mom": []}
        out = []
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            dt = p.dtype.type
            v = dt(self.rho) * state["v"][k] + dt(1 - self.rho) * g * g
            mg = dt(self.rho) * state["mg"][k] + dt(1 - self.rho) * g
            den = v - mg * mg + dt(self.eps) if self.centered else v + dt(self.eps)
            inc = as_keras_float32(self.lr, p.dtype) * g / np.sqrt(den)
            mom = dt(self.momentum) * state["mom"][k] + inc
            out.append(p - mom if self.momentum > 0 else p - inc)
            new["v"].append(v)
            new["mg"].append(mg)
            new["mom"].append(mom)
        return out, new


def sgd(**config: Any) -> SGD:
    """``keras.optimizers.SGD(**config)``."""
    return SGD(**config)


def adam(**config: Any) -> Adam:
    """``keras.optimizers.Adam(**config)``."""
    return Adam(**config)


def rmsprop(**config: Any) -> RMSprop:
    """``keras.optimizers.RMSprop(**config)``."""
    return RMSprop(**config)
