"""2-D convolution, NHWC input and HWIO kernel, exactly as ``tf.nn.conv2d``.

``conv2d_naive`` (plain loops over output positions) is the readable oracle; ``conv2d`` is the
vectorised path (im2col through a strided view in (kh, kw, c) column order, one GEMM; the input
gradient by per-offset GEMMs added into strided views of the padded input, never ``np.add.at``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnref._validate import (
    as_float,
    check_cotangent,
    require_nonempty,
    require_rank,
    same_dtype,
    shape_str,
)
from nnref.ops._windows import AxisPlan, normalize_padding, plan_axis, spatial_pair


class Conv2DResiduals(NamedTuple):
    x_shape: tuple[int, ...]
    w: np.ndarray
    cols: np.ndarray | None  # (N*OH*OW, KH*KW*C) im2col matrix (None for the naive path)
    x: np.ndarray | None  # the input (naive path only)
    strides: tuple[int, int]
    dilations: tuple[int, int]
    plan: tuple[AxisPlan, AxisPlan]


def _setup(x: Any, w: Any, strides: Any, padding: Any, dilations: Any, op: str = "conv2d"):
    x, w = as_float(op, "x", x), as_float(op, "w", w)
    same_dtype(op, x=x, w=w)
    require_rank(op, "x", x, 4, "(N, H, W, C)")
    require_rank(op, "w", w, 4, "(KH, KW, C_in, C_out)")
    require_nonempty(op, "x", x)
    if w.size == 0:
        raise ValueError(f"{op}: kernel 'w' is empty (shape {shape_str(w)})")
    if x.shape[3] != w.shape[2]:
        raise ValueError(
            f"{op}: input channels of 'x' {shape_str(x)} ({x.shape[3]}) must equal the kernel's "
            f"C_in in 'w' {shape_str(w)} ({w.shape[2]}) (grouped convolution is not supported)"
        )
    s = spatial_pair(op, "strides", strides)
    d = spatial_pair(op, "dilations", dilations)
    pad = normalize_padding(op, padding)
    plan = (
        plan_axis(x.shape[1], w.shape[0], s[0], d[0], pad, 0),
        plan_axis(x.shape[2], w.shape[1], s[1], d[1], pad, 1),
    )
    return x, w, s, d, plan


def _pad(x: np.ndarray, plan: tuple[AxisPlan, AxisPlan]) -> np.ndarray:
    (t, b, _), (left, r, _) = plan
    if t == b == left == r == 0:
        return x
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))


def _windows(
    xp: np.ndarray, kh: int, kw: int, s: tuple[int, int], d: tuple[int, int], oh: int, ow: int
) -> np.ndarray:
    """View (N, OH, OW, KH, KW, C) of the padded input: window (i, j) starts at (i*sh, j*sw)."""
    eh, ew = (kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1
    v = sliding_window_view(xp, (eh, ew), axis=(1, 2))  # (N, Hp-eh+1, Wp-ew+1, C, eh, ew)
    v = v[:, : (oh - 1) * s[0] + 1 : s[0], : (ow - 1) * s[1] + 1 : s[1], :, :: d[0], :: d[1]]
    return v.transpose(0, 1, 2, 4, 5, 3)


def conv2d_fwd(
    x: np.ndarray,
    w: np.ndarray,
    *,
    strides: Any = 1,
    padding: Any = "VALID",
    dilations: Any = 1,
) -> tuple[np.ndarray, Conv2DResiduals]:
    """Cross-correlation ``y[n,i,j,o] = sum_{a,b,c} xpad[n, i*sh + a*dh, j*sw + b*dw, c] w[a,b,c,o]``.

    Parameters
    ----------
    x : array, shape (N, H, W, C_in)
    w : array, shape (KH, KW, C_in, C_out), same dtype as ``x``
    strides, dilations : int, [h, w] or [1, h, w, 1]
    padding : "SAME", "VALID" or [[0, 0], [top, bottom], [left, right], [0, 0]]
        ``SAME`` puts the odd extra pad bottom/right. ``VALID`` with a (dilated) kernel larger
        than the input gives an empty output, as TF.

    Notes
    -----
    VJP: ``dw[a,b,c,o] = sum xpad[n, i*sh + a*dh, j*sw + b*dw, c] g[n,i,j,o]`` and ``dx`` scatters
    ``g @ w^T`` back through the same windows (padding cropped). The kernel is not flipped.
    Differences from TF: grouped convolution (C_in a multiple of the kernel's) is refused.

    See Also
    --------
    tf.nn.conv2d, tf.nn.convolution, keras.layers.Conv2D
    """
    x, w, s, d, plan = _setup(x, w, strides, padding, dilations)
    n, kh, kw, cin, cout = x.shape[0], w.shape[0], w.shape[1], w.shape[2], w.shape[3]
    oh, ow = plan[0].out, plan[1].out
    if oh == 0 or ow == 0:
        return np.zeros((n, oh, ow, cout), x.dtype), Conv2DResiduals(
            x.shape, w, None, None, s, d, plan
        )
    cols = _windows(_pad(x, plan), kh, kw, s, d, oh, ow).reshape(n * oh * ow, kh * kw * cin)
    y = cols @ w.reshape(kh * kw * cin, cout)
    return y.reshape(n, oh, ow, cout), Conv2DResiduals(x.shape, w, cols, None, s, d, plan)


def conv2d_bwd(res: Conv2DResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VJP of :func:`conv2d`: returns ``(dx, dw)``."""
    xs, w, cols, _, s, d, plan = res
    n, h, wd, cin = xs
    kh, kw, _, cout = w.shape
    oh, ow = plan[0].out, plan[1].out
    dy = check_cotangent("conv2d", dy, (n, oh, ow, cout), w.dtype)
    if cols is None:  # empty output
        return np.zeros(xs, w.dtype), np.zeros_like(w)
    g = dy.reshape(n * oh * ow, cout)
    dw = (cols.T @ g).reshape(w.shape)
    # One batched GEMM gives a contiguous (N*OH*OW, C_in) block per kernel offset.
    blocks = np.matmul(g[None], w.reshape(kh * kw, cin, cout).transpose(0, 2, 1))
    blocks = blocks.reshape(kh, kw, n, oh, ow, cin)
    (t, b, _), (left, r, _) = plan
    dxp = np.zeros((n, h + t + b, wd + left + r, cin), w.dtype)
    for a in range(kh):
        for c in range(kw):
            i0, j0 = a * d[0], c * d[1]
            dxp[
                :, i0 : i0 + (oh - 1) * s[0] + 1 : s[0], j0 : j0 + (ow - 1) * s[1] + 1 : s[1], :
            ] += blocks[a, c]
    return dxp[:, t : t + h, left : left + wd, :].copy(), dw


def conv2d(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> np.ndarray:
    """Forward value of :func:`conv2d_fwd`."""
    return conv2d_fwd(x, w, strides=strides, padding=padding, dilations=dilations)[0]


# --------------------------------------------------------------------------- naive oracle


def conv2d_naive_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, Conv2DResiduals]:
    """Loop version of :func:`conv2d_fwd`: one explicit window per output position."""
    x, w, s, d, plan = _setup(x, w, strides, padding, dilations, "conv2d_naive")
    xp = _pad(x, plan)
    kh, kw = w.shape[:2]
    y = np.zeros((x.shape[0], plan[0].out, plan[1].out, w.shape[3]), x.dtype)
    for i in range(plan[0].out):
        for j in range(plan[1].out):
            for a in range(kh):
                for b in range(kw):
                    pixel = xp[:, i * s[0] + a * d[0], j * s[1] + b * d[1], :]  # (N, C_in)
                    y[:, i, j, :] += pixel @ w[a, b]
    return y, Conv2DResiduals(x.shape, w, None, x, s, d, plan)


def conv2d_naive_bwd(res: Conv2DResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loop version of :func:`conv2d_bwd`."""
    xs, w, _, x, s, d, plan = res
    dy = check_cotangent("conv2d_naive", dy, (xs[0], plan[0].out, plan[1].out, w.shape[3]), w.dtype)
    xp = _pad(x, plan)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(plan[0].out):
        for j in range(plan[1].out):
            for a in range(w.shape[0]):
                for b in range(w.shape[1]):
                    r, c = i * s[0] + a * d[0], j * s[1] + b * d[1]
                    dw[a, b] += xp[:, r, c, :].T @ dy[:, i, j, :]
                    dxp[:, r, c, :] += dy[:, i, j, :] @ w[a, b].T
    (t, _, _), (left, _, _) = plan
    return dxp[:, t : t + xs[1], left : left + xs[2], :].copy(), dw


def conv2d_naive(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> np.ndarray:
    return conv2d_naive_fwd(x, w, strides=strides, padding=padding, dilations=dilations)[0]
