"""A second, vectorised NumPy implementation, written as a small library would be.

Independent of nnref and of ``numpy_loops`` (NumPy only): im2col convolution through
``sliding_window_view`` and one GEMM, col2im by kernel taps; max-pool over all windows at once
with TF's routing as an ``argmax``; losses in closed form on whole batches; optimizers as
optax-style pure closures. ``sigmoid`` and ``mean_squared_error`` are provided in plain form
only (no ``_fwd`` / ``_bwd``), as a library may export only a forward function: the report
must say their gradients were not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

EPS = 1e-7


# --------------------------------------------------------------------------- windows


def _hw(v: Any) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(v, dtype=np.int64)).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[1], a[2]) if len(a) == 4 else (a[0], a[1])


def _pads(
    size: tuple[int, int], eff: tuple[int, int], s: tuple[int, int], padding: Any
) -> list[tuple[int, int]]:
    """Top/bottom and left/right pads (TF: SAME puts the odd pad after)."""
    if isinstance(padding, str):
        if padding == "VALID":
            return [(0, 0), (0, 0)]
        totals = [
            max((-(-n // st) - 1) * st + e - n, 0) for n, e, st in zip(size, eff, s, strict=True)
        ]
        return [(t // 2, t - t // 2) for t in totals]
    return [tuple(padding[1]), tuple(padding[2])]


class ConvRes(NamedTuple):
    """What conv2d_bwd needs: the im2col patches, the kernel, the input shape and geometry."""

    cols: np.ndarray  # (N, OH, OW, KH, KW, C)
    w: np.ndarray
    x_shape: tuple[int, ...]
    pads: list[tuple[int, int]]
    strides: tuple[int, int]
    dilations: tuple[int, int]


def _patches(
    xp: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]
) -> np.ndarray:
    """``(N, OH, OW, KH, KW, C)``: every (dilated) window of the padded input."""
    eff = ((k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1)
    win = sliding_window_view(xp, eff, axis=(1, 2))  # (N, H', W', C, effh, effw)
    win = win[:, :: s[0], :: s[1], :, :: d[0], :: d[1]]
    return win.transpose(0, 1, 2, 4, 5, 3)


def conv2d_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, ConvRes]:
    """im2col: ``y = cols (N OH OW, KH KW C) @ w (KH KW C, O)``."""
    s, d = _hw(strides), _hw(dilations)
    kh, kw, _, o = w.shape
    eff = ((kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1)
    pads = _pads(x.shape[1:3], eff, s, padding)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    cols = np.ascontiguousarray(_patches(xp, (kh, kw), s, d))
    n, oh, ow = cols.shape[:3]
    y = (cols.reshape(n * oh * ow, -1) @ w.reshape(-1, o)).reshape(n, oh, ow, o)
    return y, ConvRes(cols, w, x.shape, pads, s, d)


def conv2d_bwd(res: ConvRes, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dw = cols^T dy``; ``dcols = dy w^T`` scattered back tap by tap (col2im)."""
    cols, w, x_shape, pads, s, d = res
    kh, kw, c, o = w.shape
    n, oh, ow = cols.shape[:3]
    g = dy.reshape(-1, o)
    dw = (cols.reshape(-1, kh * kw * c).T @ g).reshape(w.shape)
    dcols = (g @ w.reshape(-1, o).T).reshape(n, oh, ow, kh, kw, c)
    (t, b), (left, r) = pads
    dxp = np.zeros((x_shape[0], x_shape[1] + t + b, x_shape[2] + left + r, c), dy.dtype)
    for a in range(kh):
        for bb in range(kw):
            r0, c0 = a * d[0], bb * d[1]
            dxp[:, r0 : r0 + (oh - 1) * s[0] + 1 : s[0], c0 : c0 + (ow - 1) * s[1] + 1 : s[1]] += (
                dcols[:, :, :, a, bb]
            )
    return dxp[:, t : t + x_shape[1], left : left + x_shape[2]], dw


# --------------------------------------------------------------------------- max_pool2d


class PoolRes(NamedTuple):
    """What max_pool2d_bwd needs: the geometry and each output's picked window offset."""

    x_shape: tuple[int, ...]
    pads: list[tuple[int, int]]
    k: tuple[int, int]
    s: tuple[int, int]
    pick: np.ndarray  # (N, OH, OW, C): row-major offset inside the window


def _pool_windows(
    x: np.ndarray, k: tuple[int, int], s: tuple[int, int], padding: Any
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Windows ``(N, OH, OW, C, KH*KW)`` with padding as NaN, and which cells are real."""
    pads = _pads(x.shape[1:3], k, s, padding)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=np.nan)
    real = np.pad(np.ones(x.shape[1:3], bool), pads)
    win = sliding_window_view(xp, k, axis=(1, 2))[:, :: s[0], :: s[1]]
    rw = sliding_window_view(real, k)[:: s[0], :: s[1]]
    sh = win.shape
    return win.reshape(*sh[:4], -1), rw.reshape(*rw.shape[:2], -1), pads


def max_pool2d_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, PoolRes]:
    """``fmax`` over each window (NaN and padding skipped), floored at the lowest finite value.

    Routing, as TF's ``MaxPoolGrad``: the first real cell unless a later one is strictly
    greater, i.e. the first maximum of the real cells with NaN as ``-inf``, except that a NaN
    first cell keeps the gradient.
    """
    k, s = _hw(ksize), _hw(strides)
    win, real, pads = _pool_windows(x, k, s, padding)
    lowest = np.finfo(x.dtype).min
    y = np.fmax(np.fmax.reduce(win, axis=-1), lowest).astype(x.dtype)
    key = np.where(np.isnan(win), -np.inf, win)  # NaN (and padding) never strictly greater
    best = np.argmax(key, axis=-1)
    first = np.broadcast_to(np.argmax(real, axis=-1)[None, :, :, None], best.shape)
    first_val = np.take_along_axis(win, first[..., None], -1)[..., 0]
    best_val = np.take_along_axis(key, best[..., None], -1)[..., 0]
    # The first real cell keeps the gradient when it is NaN, or when nothing beats -inf (an
    # argmax over an all -inf key would land on a padded cell).
    pick = np.where(np.isnan(first_val) | (best_val == -np.inf), first, best)
    return y, PoolRes(x.shape, pads, k, s, pick)


def max_pool2d_bwd(res: PoolRes, dy: np.ndarray) -> tuple[np.ndarray]:
    """Scatter each output's gradient to its picked cell (``np.add.at``: overlaps add)."""
    x_shape, pads, k, s, pick = res
    n, c = dy.shape[0], dy.shape[3]
    (t, b), (left, r) = pads
    dxp = np.zeros((n, x_shape[1] + t + b, x_shape[2] + left + r, c), dy.dtype)
    bi, i, j, ci = np.indices(dy.shape)
    np.add.at(dxp, (bi, i * s[0] + pick // k[1], j * s[1] + pick % k[1], ci), dy)
    return (dxp[:, t : t + x_shape[1], left : left + x_shape[2]],)


# --------------------------------------------------------------------------- dense, bias_add


def dense_fwd(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``y = x w + b`` over the last axis (``einsum('...i,io->...o')``)."""
    return np.einsum("...i,io->...o", x, w) + b, (x, w)


def dense_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dy w^T, x^T dy, sum dy)``, summed over every leading axis."""
    x, w = res
    lead = tuple(range(dy.ndim - 1))
    return dy @ w.T, np.tensordot(x, dy, axes=(lead, lead)), dy.sum(axis=lead)


def bias_add_fwd(x: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, None]:
    """``x + b`` along the last axis."""
    return x + b, None


def bias_add_bwd(res: None, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dy, dy summed over all but the last axis)``."""
    return dy, dy.reshape(-1, dy.shape[-1]).sum(axis=0)


# --------------------------------------------------------------------------- activations


def relu_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(x, 0)``; the residual is the mask ``x > 0`` (relu'(0) = 0)."""
    return np.maximum(x, x.dtype.type(0)), x > 0


def relu_bwd(mask: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dy * mask``."""
    return (dy * mask,)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Plain form only: ``exp(min(x, 0)) / (1 + exp(-|x|))``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``exp(x - max) / sum`` over ``axis``."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``y (dy - sum(dy y))``."""
    y, axis = res
    return (y * (dy - (dy * y).sum(axis=axis, keepdims=True)),)


def log_softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``x - max - log sum exp(x - max)`` over ``axis``."""
    z = x - x.max(axis=axis, keepdims=True)
    y = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return y, (y, axis)


def log_softmax_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dy - softmax sum(dy)``."""
    y, axis = res
    return (dy - np.exp(y) * dy.sum(axis=axis, keepdims=True),)


# --------------------------------------------------------------------------- cross-entropy


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log_softmax over the last axis."""
    return log_softmax_fwd(z)[0]


def _labels_ok(labels: np.ndarray, k: int) -> None:
    """Refuse labels outside ``[0, k)``, as TF on CPU."""
    bad = (labels < 0) | (labels >= k)
    if bad.any():
        raise ValueError(f"labels {labels[bad].tolist()} outside [0, {k})")


def _onehot(labels: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray:
    """``labels`` as one-hot rows in ``dtype``."""
    return (labels[..., None] == np.arange(k)).astype(dtype)


def sparse_softmax_cross_entropy_with_logits_fwd(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """``-log_softmax(z)[y]`` per row; the residual is ``softmax(z) - onehot(y)``."""
    _labels_ok(labels, logits.shape[-1])
    ls = _log_softmax(logits)
    hot = _onehot(labels, logits.shape[-1], logits.dtype)
    return -(ls * hot).sum(-1), (np.exp(ls) - hot,)


def sparse_softmax_cross_entropy_with_logits_bwd(res: tuple, dy: np.ndarray) -> tuple[None, Any]:
    """``(None, dy (softmax(z) - onehot(y)))``."""
    return None, res[0] * dy[:, None]


def softmax_cross_entropy_with_logits_fwd(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """``-sum p log_softmax(z)`` per row."""
    ls = _log_softmax(logits)
    return -(labels * ls).sum(-1), (labels, ls)


def softmax_cross_entropy_with_logits_bwd(
    res: tuple, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(-dy log_softmax(z), dy (softmax(z) - p))``: TF's dlogits."""
    p, ls = res
    g = dy[:, None]
    return -g * ls, g * (np.exp(ls) - p)


def _reduce(per: np.ndarray, reduction: str, sample_weight: Any) -> tuple[np.ndarray, Callable]:
    """The reduced loss and the map from its cotangent to the per-sample cotangent."""
    w = np.ones_like(per) if sample_weight is None else np.asarray(sample_weight, per.dtype)
    scale = {"none": None, "sum": 1, "sum_over_batch_size": per.size}[reduction]
    if scale is None:
        return per * w, lambda dy: dy * w
    total = (per * w).sum() / per.dtype.type(scale)
    return np.asarray(
        total, per.dtype
    ), lambda dy: np.full_like(per, dy) / per.dtype.type(scale) * w


def sparse_categorical_crossentropy_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> tuple[np.ndarray, tuple]:
    """Keras' SCCE: logits through log_softmax; probabilities clipped (not renormalised),
    then ``log sum q - log q_y``."""
    k = y_pred.shape[-1]
    labels = y_true.reshape(y_pred.shape[:-1])
    _labels_ok(labels, k)
    hot = _onehot(labels, k, y_pred.dtype)
    if from_logits:
        ls = _log_softmax(y_pred)
        per, dper = -(ls * hot).sum(-1), np.exp(ls) - hot
    else:
        lo, hi = y_pred.dtype.type(EPS), y_pred.dtype.type(1) - y_pred.dtype.type(EPS)
        q = np.clip(y_pred, lo, hi)
        total = q.sum(-1, keepdims=True)
        per = np.log(total[:, 0]) - np.log((q * hot).sum(-1))
        dper = np.where((y_pred >= lo) & (y_pred <= hi), 1 / total - hot / q, 0)
    out, back = _reduce(per, reduction, sample_weight)
    return out, (dper.astype(y_pred.dtype), back)


def sparse_categorical_crossentropy_bwd(res: tuple, dy: np.ndarray) -> tuple[None, np.ndarray]:
    """``(None, dy_pred)``."""
    dper, back = res
    return None, dper * back(dy)[:, None]


def categorical_crossentropy_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> tuple[np.ndarray, tuple]:
    """Keras' CCE: smoothed labels; probabilities divided by their row sum, clipped, then
    ``-sum t log q``."""
    dt = y_pred.dtype.type
    k = y_pred.shape[-1]
    t = y_true * dt(1 - label_smoothing) + dt(label_smoothing / k) if label_smoothing else y_true
    if from_logits:
        logq = _log_softmax(y_pred)
        dper = np.exp(logq) - t
    else:
        total = y_pred.sum(-1, keepdims=True)
        r = y_pred / total
        lo, hi = dt(EPS), dt(1) - dt(EPS)
        logq = np.log(np.clip(r, lo, hi))
        dr = np.where((r >= lo) & (r <= hi), -t / np.exp(logq), 0)
        dper = (dr - (dr * r).sum(-1, keepdims=True)) / total
    per = -(t * logq).sum(-1)
    out, back = _reduce(per, reduction, sample_weight)
    return out, (logq, dper, dt(1 - label_smoothing), back)


def categorical_crossentropy_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dy_true, dy_pred)``."""
    logq, dper, scale, back = res
    g = back(dy)[:, None]
    return -g * logq * scale, g * dper


def mean_squared_error(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> np.ndarray:
    """Plain form only: ``mean((y_pred - y_true)^2, -1)`` and Keras' reduction."""
    return _reduce(np.square(y_pred - y_true).mean(-1), reduction, sample_weight)[0]


# --------------------------------------------------------------------------- metrics, data


def argmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """NaN replaced by -inf, then NumPy's first-maximum argmax."""
    return np.argmax(np.where(np.isnan(x), -np.inf, x), axis=axis).astype(np.int64)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """One-hot rows (same shape as ``y_pred``) or sparse labels ``(N,)`` / ``(N, 1)``."""
    onehot = y_true.shape == y_pred.shape
    cls = argmax(y_true) if onehot else y_true.reshape(y_pred.shape[:-1])
    return float(np.mean(cls == argmax(y_pred)))


def one_hot(
    indices: np.ndarray,
    depth: int,
    *,
    on_value: float = 1.0,
    off_value: float = 0.0,
    axis: int = -1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``tf.one_hot``: indices outside ``[0, depth)`` match no class."""
    hot = indices[..., None] == np.arange(depth)
    dt = np.dtype(dtype)
    return np.moveaxis(np.where(hot, dt.type(on_value), dt.type(off_value)), -1, axis)


def kfold_sizes(n: int, k: int) -> list[int]:
    """``KFold(k)`` sizes: the first ``n % k`` folds get one more."""
    return (n // k + (np.arange(k) < n % k)).tolist()


def kfold_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``KFold(n // batch_size)`` test folds of a permutation (``array_split``)."""
    return np.array_split(rng.permutation(n), max(1, n // batch_size))


# --------------------------------------------------------------------------- optimizers


class GradientTransformation(NamedTuple):
    """optax-style pure pair: ``init(params) -> state``, ``update(grads, state, params)``."""

    init: Callable[[list[np.ndarray]], Any]
    update: Callable[[list[np.ndarray], Any, list[np.ndarray]], tuple[list[np.ndarray], Any]]


def _f32(v: float, like: np.ndarray) -> Any:
    """A Python float as Keras' float32 variable, in ``like``'s dtype."""
    return like.dtype.type(np.float32(v))


def sgd(
    learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False
) -> GradientTransformation:
    """``keras.optimizers.SGD`` as an optax-style pair."""

    def init(params: list[np.ndarray]) -> list[np.ndarray]:
        return [np.zeros_like(p) for p in params]

    def update(
        grads: list[np.ndarray], state: list[np.ndarray], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        out, vel = [], []
        for g, m, p in zip(grads, state, params, strict=True):
            lr, mu = _f32(learning_rate, p), _f32(momentum, p)
            m = mu * m - lr * g
            step = (mu * m - lr * g if nesterov else m) if momentum else -lr * g
            out.append(p + step)
            vel.append(m)
        return out, vel

    return GradientTransformation(init, update)


def adam(
    learning_rate: float = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
) -> GradientTransformation:
    """``keras.optimizers.Adam`` as an optax-style pair (epsilon added to ``sqrt(v)``)."""

    def init(params: list[np.ndarray]) -> tuple:
        z = [np.zeros_like(p) for p in params]
        return 0, z, z, z

    def update(
        grads: list[np.ndarray], state: tuple, params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], tuple]:
        t, ms, vs, vmaxs = state
        t += 1
        out, new = [], ([], [], [])
        for g, m, v, vmax, p in zip(grads, ms, vs, vmaxs, params, strict=True):
            dt = p.dtype.type
            m = m + (g - m) * dt(1 - beta_1)
            v = v + (g * g - v) * dt(1 - beta_2)
            vmax = np.maximum(vmax, v)
            b1t, b2t = _f32(beta_1, p) ** dt(t), _f32(beta_2, p) ** dt(t)
            alpha = _f32(learning_rate, p) * np.sqrt(1 - b2t) / (1 - b1t)
            out.append(p - m * alpha / (np.sqrt(vmax if amsgrad else v) + dt(epsilon)))
            for slot, val in zip(new, (m, v, vmax), strict=True):
                slot.append(val)
        return out, (t, *new)

    return GradientTransformation(init, update)


def rmsprop(
    learning_rate: float = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
) -> GradientTransformation:
    """``keras.optimizers.RMSprop`` as an optax-style pair (epsilon inside the root)."""

    def init(params: list[np.ndarray]) -> tuple:
        z = [np.zeros_like(p) for p in params]
        return z, z, z

    def update(
        grads: list[np.ndarray], state: tuple, params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], tuple]:
        out, new = [], ([], [], [])
        for g, v, mg, mom, p in zip(grads, *state, params, strict=True):
            dt = p.dtype.type
            v = dt(rho) * v + dt(1 - rho) * np.square(g)
            mg = dt(rho) * mg + dt(1 - rho) * g
            inc = (
                _f32(learning_rate, p)
                * g
                / np.sqrt((v - np.square(mg) if centered else v) + dt(epsilon))
            )
            mom = dt(momentum) * mom + inc
            out.append(p - (mom if momentum > 0 else inc))
            for slot, val in zip(new, (v, mg, mom), strict=True):
                slot.append(val)
        return out, new

    return GradientTransformation(init, update)
