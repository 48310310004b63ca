"""2-D convolution, NHWC input and HWIO kernel, exactly as ``tf.nn.conv2d``.

``conv2d_naive`` (plain loops over output positions) is the readable oracle; ``conv2d`` is the
vectorised path (im2col through a strided view in (kh, kw, c) column order and one GEMM, a slab
of images at a time; the input gradient by per-offset GEMM blocks added into strided views of the
padded input, never ``np.add.at``).
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

#: Rows of the im2col matrix are built a slab of images at a time, about this many bytes per
#: slab, into one buffer reused across slabs (and likewise the per-offset blocks of ``dx``): a
#: whole-batch matrix is ``KH*KW`` times the input (160 MB for the seed CNN's conv2 in float64),
#: and a fresh array that size pays page faults and cache misses on every call.
_SLAB_BYTES = 1 << 22


class Conv2DResiduals(NamedTuple):
    x_shape: tuple[int, ...]
    w: np.ndarray
    xp: np.ndarray | None  # the padded input (None when the output is empty)
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
    xp: np.ndarray, kh: int, kw: int, s: tuple[int, int], d: tuple[int, int]
) -> np.ndarray:
    """View (N, OH, OW, KH, KW, C) of the padded input: window (i, j) starts at (i*sh, j*sw).

    The plan pads so that the ``P = Hp - eh + 1`` window positions give exactly
    ``OH = ceil(P / sh)`` strided ones (likewise for W): no trailing position to cut.
    """
    eh, ew = (kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1
    v = sliding_window_view(xp, (eh, ew), axis=(1, 2))  # (N, Hp-eh+1, Wp-ew+1, C, eh, ew)
    return v[:, :: s[0], :: s[1], :, :: d[0], :: d[1]].transpose(0, 1, 2, 4, 5, 3)


def _slabs(res: Conv2DResiduals) -> list[tuple[int, int]]:
    """Image ranges ``lo:hi`` whose im2col rows (or dx blocks) take about ``_SLAB_BYTES``."""
    n, (kh, kw, cin, _) = res.x_shape[0], res.w.shape
    per_image = res.plan[0].out * res.plan[1].out * kh * kw * cin * res.w.dtype.itemsize
    step = max(1, min(n, _SLAB_BYTES // per_image))
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


def _im2col_slabs(res: Conv2DResiduals):
    """Yield ``(lo, hi, cols)``: the ``((hi-lo)*OH*OW, KH*KW*C)`` im2col rows of images
    ``lo:hi`` in (kh, kw, c) column order (each copied run is ``KW*C`` contiguous values, and the
    HWIO kernel reshapes to the GEMM operand without a copy), built in one reused buffer."""
    kh, kw, cin, _ = res.w.shape
    oh, ow = res.plan[0].out, res.plan[1].out
    k = kh * kw * cin
    win = _windows(res.xp, kh, kw, res.strides, res.dilations)
    slabs = _slabs(res)
    buf = np.empty((slabs[0][1] * oh * ow, k), res.w.dtype)
    for lo, hi in slabs:
        cols = buf[: (hi - lo) * oh * ow]
        np.copyto(cols.reshape(win[lo:hi].shape), win[lo:hi])
        yield lo, hi, cols


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
    n, cout = x.shape[0], w.shape[3]
    oh, ow = plan[0].out, plan[1].out
    if oh == 0 or ow == 0:
        return np.zeros((n, oh, ow, cout), x.dtype), Conv2DResiduals(x.shape, w, None, s, d, plan)
    res = Conv2DResiduals(x.shape, w, _pad(x, plan), s, d, plan)
    y = np.empty((n, oh, ow, cout), x.dtype)
    w2 = w.reshape(-1, cout)
    for lo, hi, cols in _im2col_slabs(res):
        np.matmul(cols, w2, out=y[lo:hi].reshape(-1, cout))
    return y, res


def _filter_grad(res: Conv2DResiduals, dy: np.ndarray) -> np.ndarray:
    """``dw = cols^T @ g``, summed over the slabs in order."""
    kh, kw, cin, cout = res.w.shape
    dw = np.zeros((kh * kw * cin, cout), res.w.dtype)
    part = np.empty_like(dw)
    for lo, hi, cols in _im2col_slabs(res):
        np.matmul(cols.T, dy[lo:hi].reshape(-1, cout), out=part)
        dw += part
    return dw.reshape(res.w.shape)


def _input_grad(res: Conv2DResiduals, dy: np.ndarray) -> np.ndarray:
    """``dx``: per slab, one batched GEMM gives a contiguous (rows, C_in) block per kernel
    offset, added into the strided view of the padded input it came from (never ``np.add.at``)."""
    _, h, wd, cin = res.x_shape
    kh, kw, _, cout = res.w.shape
    (t, _, oh), (left, _, ow) = res.plan
    s, d = res.strides, res.dilations
    wt = res.w.reshape(kh * kw, cin, cout).transpose(0, 2, 1)  # (KH*KW, C_out, C_in)
    dxp = np.zeros(res.xp.shape, res.w.dtype)
    slabs = _slabs(res)
    buf = np.empty((kh * kw, slabs[0][1] * oh * ow, cin), res.w.dtype)
    for lo, hi in slabs:
        g = dy[lo:hi].reshape(-1, cout)
        blocks = buf[:, : len(g)]
        np.matmul(g[None], wt, out=blocks)
        blocks = blocks.reshape(kh, kw, hi - lo, oh, ow, cin)
        dst = dxp[lo:hi]
        for a in range(kh):
            for b in range(kw):
                i0, j0 = a * d[0], b * d[1]
                dst[
                    :, i0 : i0 + (oh - 1) * s[0] + 1 : s[0], j0 : j0 + (ow - 1) * s[1] + 1 : s[1]
                ] += blocks[a, b]
    if dxp.shape == res.x_shape:
        return dxp
    return dxp[:, t : t + h, left : left + wd].copy()


def _cotangent(res: Conv2DResiduals, dy: Any, op: str = "conv2d") -> np.ndarray:
    (_, _, oh), (_, _, ow) = res.plan
    shape = (res.x_shape[0], oh, ow, res.w.shape[3])
    return check_cotangent(op, dy, shape, res.w.dtype)


def conv2d_bwd(res: Conv2DResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VJP of :func:`conv2d`: returns ``(dx, dw)``."""
    dy = _cotangent(res, dy)
    if res.xp is None:  # empty output
        return np.zeros(res.x_shape, res.w.dtype), np.zeros_like(res.w)
    return _input_grad(res, dy), _filter_grad(res, dy)


def conv2d_bwd_filter(res: Conv2DResiduals, dy: np.ndarray) -> np.ndarray:
    """``dw`` alone, as TF's ``conv2d_backprop_filter``: for a first layer, whose input needs
    no gradient (saves the ``dx`` GEMM and scatter)."""
    dy = _cotangent(res, dy)
    if res.xp is None:
        return np.zeros_like(res.w)
    return _filter_grad(res, dy)


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
    return y, Conv2DResiduals(x.shape, w, xp, s, d, plan)


def conv2d_naive_bwd(res: Conv2DResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loop version of :func:`conv2d_bwd`."""
    xs, w, xp, s, d, plan = res
    dy = _cotangent(res, dy, "conv2d_naive")
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
