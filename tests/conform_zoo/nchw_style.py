"""A PyTorch-layout implementation: NCHW activations, OIHW kernels, channels on axis 1.

Checked through ``nnref.conform.nchw`` (``--layout nchw`` on the command line), which moves
arrays between nnref's NHWC / HWIO and this layout; hyperparameters keep nnref's form
(``padding`` ``"SAME"`` / ``"VALID"`` / ``[[0, 0], [t, b], [l, r], [0, 0]]``). Independent of
nnref and of the other zoo members (NumPy only). Convolution loops over the kernel taps
(shift, multiply, accumulate), as a port of ``torch.nn.functional.conv2d`` to NumPy often does;
max-pool keeps PyTorch-style flat ``indices`` into ``H * W`` for the backward pass, with TF's
tie, NaN and padding rules. Layout-free ops (``relu``, ``softmax``, ``log_softmax``,
``sparse_softmax_cross_entropy_with_logits``, ``argmax``, ``one_hot``) pass through unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _hw(v: Any) -> tuple[int, int]:
    """``2``, ``[2, 1]`` or ``[1, 2, 1, 1]`` as ``(h, w)``."""
    if np.ndim(v) == 0:
        return int(v), int(v)
    v = [int(u) for u in v]
    return (v[1], v[2]) if len(v) == 4 else (v[0], v[-1])


def same_pads(n: int, eff: int, s: int) -> tuple[int, int]:
    """TF SAME along one axis: ``total // 2`` before, the rest after (not PyTorch's
    symmetric ``padding=k // 2``)."""
    total = max((-(-n // s) - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def _pads(
    hw: tuple[int, int], eff: tuple[int, int], s: tuple[int, int], padding: Any
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Top/bottom and left/right pads for SAME, VALID or explicit padding."""
    if padding == "SAME":
        return same_pads(hw[0], eff[0], s[0]), same_pads(hw[1], eff[1], s[1])
    if padding == "VALID":
        return (0, 0), (0, 0)
    return (padding[1][0], padding[1][1]), (padding[2][0], padding[2][1])


def _taps(
    k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], out: tuple[int, int]
) -> list[tuple[int, int, slice, slice]]:
    """Per kernel tap ``(a, b)``: the strided rows and columns of the padded input it reads."""
    return [
        (
            a,
            b,
            slice(a * d[0], a * d[0] + (out[0] - 1) * s[0] + 1, s[0]),
            slice(b * d[1], b * d[1] + (out[1] - 1) * s[1] + 1, s[1]),
        )
        for a in range(k[0])
        for b in range(k[1])
    ]


# --------------------------------------------------------------------------- conv2d


def conv2d_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, tuple]:
    """``x`` ``(N, C, H, W)``, ``w`` ``(O, C, KH, KW)`` -> ``(N, O, OH, OW)``; cross-correlation:
    ``y = sum_{a, b} w[:, :, a, b] . xpad[:, :, a d + i s, b d + j s]``."""
    s, d = _hw(strides), _hw(dilations)
    o, _, kh, kw = w.shape
    eff = ((kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1)
    pads = _pads(x.shape[2:], eff, s, padding)
    xp = np.pad(x, ((0, 0), (0, 0), *pads))
    out = tuple(max((xp.shape[2 + i] - eff[i]) // s[i] + 1, 0) for i in (0, 1))
    y = np.zeros((x.shape[0], o, *out), x.dtype)
    taps = _taps((kh, kw), s, d, out)
    for a, b, rows, cols in taps:
        y += np.einsum("nchw,oc->nohw", xp[:, :, rows, cols], w[:, :, a, b])
    return y, (xp, w, taps, pads, x.shape)


def conv2d_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dx, dw)``, tap by tap."""
    xp, w, taps, pads, x_shape = res
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for a, b, rows, cols in taps:
        dw[:, :, a, b] = np.einsum("nohw,nchw->oc", dy, xp[:, :, rows, cols])
        dxp[:, :, rows, cols] += np.einsum("nohw,oc->nchw", dy, w[:, :, a, b])
    (t, _), (left, _) = pads
    return dxp[:, :, t : t + x_shape[2], left : left + x_shape[3]], dw


# --------------------------------------------------------------------------- max_pool2d


def max_pool2d_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, tuple]:
    """``(N, C, H, W)`` -> ``(N, C, OH, OW)``, with flat ``indices`` into ``H * W`` (as
    ``return_indices=True``) chosen by TF's rule: the window's first real cell, replaced only
    by a strictly greater one; the value skips NaN and is floored at the lowest finite value."""
    k, s = _hw(ksize), _hw(strides)
    n, c, h, w = x.shape
    (t, b), (left, r) = _pads((h, w), k, s, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=np.nan)
    real = np.pad(np.ones((h, w), bool), ((t, b), (left, r)))
    flat = np.pad(np.arange(h * w).reshape(h, w), ((t, b), (left, r)))
    out = ((h + t + b - k[0]) // s[0] + 1, (w + left + r - k[1]) // s[1] + 1)
    y = np.full((n, c, *out), np.finfo(x.dtype).min, x.dtype)
    best = np.full((n, c, *out), np.nan, x.dtype)
    indices = np.zeros((n, c, *out), np.int64)
    taken = np.zeros(out, bool)
    for _, _, rows, cols in _taps(k, s, (1, 1), out):
        cand, ok = xp[:, :, rows, cols], real[rows, cols]
        y = np.fmax(y, cand)
        take = ok & (~taken | (cand > best))  # NaN compares false: never strictly greater
        best = np.where(take, cand, best)
        indices = np.where(take, flat[rows, cols], indices)
        taken |= ok
    return y, (x.shape, indices)


def max_pool2d_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """Scatter-add ``dy`` at ``indices`` (overlapping windows accumulate)."""
    x_shape, indices = res
    n, c, h, w = x_shape
    dx = np.zeros((n, c, h * w), dy.dtype)
    for bn in range(n):
        for ch in range(c):
            np.add.at(dx[bn, ch], indices[bn, ch].reshape(-1), dy[bn, ch].reshape(-1))
    return (dx.reshape(x_shape),)


# --------------------------------------------------------------------------- bias_add


def _channel_shape(x: np.ndarray) -> tuple[int, ...]:
    """The shape that broadcasts a bias along axis 1."""
    return (-1,) + (1,) * (x.ndim - 2)


def bias_add_fwd(x: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """``x + b`` along axis 1 (``(N, C, ...)``)."""
    return x + b.reshape(_channel_shape(x)), x.ndim


def bias_add_bwd(ndim: int, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dy, dy summed over every axis but 1)``."""
    return dy, dy.sum(axis=tuple(i for i in range(ndim) if i != 1))


# --------------------------------------------------------------------------- layout-free


def relu_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(x, 0)``; the residual is ``x``."""
    return np.where(x <= 0, np.zeros_like(x), x), x  # NaN stays NaN, as tf.nn.relu


def relu_bwd(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dy where x > 0``: relu'(0) = 0."""
    return (np.where(x > 0, dy, np.zeros_like(dy)),)


def softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``exp(x - max) / sum`` over ``axis``."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    y = e / np.sum(e, axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``y dy - y sum(y dy)``."""
    y, axis = res
    return (y * dy - y * np.sum(y * dy, axis=axis, keepdims=True),)


def log_softmax_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``x - max - log sum exp(x - max)`` over ``axis``."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    y = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return y, (y, axis)


def log_softmax_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dy - softmax sum(dy)``."""
    y, axis = res
    return (dy - np.exp(y) * np.sum(dy, axis=axis, keepdims=True),)


def sparse_softmax_cross_entropy_with_logits_fwd(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, tuple]:
    """Per-sample loss; every label outside ``[0, K)`` raises (TF), -100 included."""
    k = logits.shape[1]
    if np.any((labels < 0) | (labels >= k)):
        raise ValueError(f"labels must be in [0, {k}), got {labels.tolist()}")
    logp = log_softmax_fwd(logits, axis=1)[0]
    rows = np.arange(len(labels))
    return -logp[rows, labels], (labels, logp)


def sparse_softmax_cross_entropy_with_logits_bwd(res: tuple, dy: np.ndarray) -> tuple[None, Any]:
    """``(None, dy (softmax - onehot))``."""
    labels, logp = res
    g = np.exp(logp)
    g[np.arange(len(labels)), labels] -= 1
    return None, g * dy[:, None]


def argmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``tf.argmax`` (NaN never wins), not ``torch.argmax`` (NaN wins)."""
    return np.nanargmax(np.where(np.isnan(x).all(axis, keepdims=True), 0, x), axis=axis)


def one_hot(
    indices: np.ndarray,
    depth: int,
    *,
    on_value: float = 1.0,
    off_value: float = 0.0,
    axis: int = -1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``tf.one_hot`` (out-of-range rows all off), not ``F.one_hot`` (which raises)."""
    dt = np.dtype(dtype)
    out = np.full((*indices.shape, depth), off_value, dt)
    inside = (indices >= 0) & (indices < depth)
    out[inside, indices[inside]] = on_value
    return np.moveaxis(out, -1, axis)
