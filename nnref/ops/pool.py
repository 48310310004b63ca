"""2-D max pooling, NHWC, exactly as ``tf.nn.max_pool2d`` and TF's CPU ``MaxPoolGrad``.

Forward: the running maximum starts at the dtype's lowest finite value and skips NaN, so padded
cells never win, ``[nan, 1, 2, 0] -> 2``, and a window of only ``-inf`` and/or NaN gives the
lowest finite value (``-3.4028235e38`` in float32), not ``-inf``.

Backward: each output's gradient goes to one input cell: the window's first valid cell in
row-major order, replaced only by a strictly greater one. Ties go to the first maximum; a NaN in
first place keeps the gradient (``[nan, 1, 2, 0]`` routes to the NaN although ``y = 2``); an all
``-inf`` window routes to its first cell. Overlapping windows accumulate.

Equal values: the first is kept, in the value as in the routing (TF's ``a > max`` replaces it),
which only shows for zeros: ``[+0, -0]`` pools to +0.0, ``[-0, +0]`` to -0.0. ``np.maximum``
returns its second operand when the two are equal (measured: NumPy 2.4, float32 and float64,
SIMD loops and their tails, strided and scalar operands), so the fast paths pass the earlier
value second; ``np.fmax`` keeps either (it varies with length and stride), so the general path
takes the routed cell's value where it equals the maximum. The tests pin both against TF and
the loop oracle.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nnref import _memory
from nnref._threads import parallel_for
from nnref._validate import (
    as_float,
    check_cotangent,
    check_residuals,
    require_nonempty,
    require_rank,
    shape_str,
)
from nnref.ops._windows import AxisPlan, normalize_padding, plan_axis, spatial_pair, tap_runs

#: Input bytes per step of the unpadded path: each thread takes an equal share of the images
#: and walks it in steps this large, so that a step's images and temporaries stay in cache
#: while each window offset is visited. 2x2 fwd+bwd against 1 MiB steps (alternating 5-call
#: samples in one process, medians of the per-pair ratios): 128x28x28x32 0.91-0.97 (float32),
#: 0.91-0.92 (float64); 128x14x14x64 1.00-1.01, 0.82-0.83; 3 and 4 MiB no better.
_CHUNK_BYTES = 1 << 21


class MaxPool2DResiduals(NamedTuple):
    x_shape: tuple[int, ...]
    dtype: np.dtype
    #: (N, OH, OW, C): the row-major window offset that receives each output's gradient
    #: (the narrowest of int8, int16, int32 and int64 that counts the window's cells).
    choice: np.ndarray
    ksize: tuple[int, int]
    strides: tuple[int, int]
    plan: tuple[AxisPlan, AxisPlan]


def _routing_dtype(k: tuple[int, int]) -> np.dtype:
    """The narrowest signed integer dtype that holds every offset of a ``k`` window (signed:
    the padded path marks "no cell yet" with -1)."""
    cells = k[0] * k[1]
    return next(
        np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64) if cells <= np.iinfo(t).max
    )


def _output(
    op: str,
    x: np.ndarray,
    k: tuple[int, int],
    s: tuple[int, int],
    plan: tuple[AxisPlan, AxisPlan],
    what: str,
    dtype: np.dtype,
) -> np.ndarray:
    """An uninitialised output-shaped array (the named MemoryError when it is too large)."""
    (t, b, oh), (left, r, ow) = plan
    pads = [[0, 0], [t, b], [left, r], [0, 0]]
    cause = f"'ksize' {k}, 'strides' {s} and 'padding' {pads} on 'x' {shape_str(x)}"
    shape = (x.shape[0], oh, ow, x.shape[3])
    return _memory.empty(op, cause, what, shape, dtype)


def _setup(x: Any, ksize: Any, strides: Any, padding: Any, op: str):
    x = as_float(op, "x", x)
    require_rank(op, "x", x, 4, "(N, H, W, C)")
    require_nonempty(op, "x", x)
    k = spatial_pair(op, "ksize", ksize)
    if k[0] * k[1] > np.iinfo(np.int64).max:  # the routing names a window cell by its offset
        raise ValueError(
            f"{op}: 'ksize' {k} has {k[0] * k[1]} cells per window, more than an int64 offset "
            "counts"
        )
    s = spatial_pair(op, "strides", strides)
    pad = normalize_padding(op, padding)
    if not isinstance(pad, str):
        for (lo, hi), kk, side in zip(pad, k, ("top/bottom", "left/right"), strict=True):
            if lo >= kk or hi >= kk:
                raise ValueError(
                    f"{op}: explicit {side} padding {(lo, hi)} must be smaller than the window size {kk}"
                )
    plan = (
        plan_axis(x.shape[1], k[0], s[0], 1, pad, 0),
        plan_axis(x.shape[2], k[1], s[1], 1, pad, 1),
    )
    return x, k, s, plan


def _offsets(k: tuple[int, int], s: tuple[int, int], oh: int, ow: int):
    """Row-major window offsets and the strided slices that select them for every output."""
    for a in range(k[0]):
        for b in range(k[1]):
            yield (
                a * k[1] + b,
                (slice(a, a + (oh - 1) * s[0] + 1, s[0]), slice(b, b + (ow - 1) * s[1] + 1, s[1])),
            )


def _blocks(res: MaxPool2DResiduals):
    """Every window offset that meets the input (row-major order) with its cells and outputs:
    ``(offset, (rows, cols) of the input, (rows, cols) of the output)``. Offsets that meet only
    padding (which never wins) are left out, so a window far larger than the input costs what
    its overlap with the input does."""
    xs, k, s, ((t, _, oh), (left, _, ow)) = res.x_shape, res.ksize, res.strides, res.plan
    cols = tap_runs(k[1], s[1], 1, ow, left, xs[2])
    for a, ri, ro in tap_runs(k[0], s[0], 1, oh, t, xs[1]):
        for b, ci, co in cols:
            yield a * k[1] + b, (ri, ci), (ro, co)


def _cells(a: np.ndarray) -> np.ndarray:
    """A contiguous (N, H, W, C) array as an (N, H, W) array of C-channel cells: a strided copy
    between cell views is one memcpy per cell instead of a loop call per C-element run (~1.6x
    faster at C = 32)."""
    return a.view(np.dtype((np.void, a.shape[-1] * a.itemsize)))[..., 0]


def _chunk(x_shape: tuple[int, ...], itemsize: int) -> int:
    """Images per step (see ``_CHUNK_BYTES``)."""
    return max(1, _CHUNK_BYTES // (int(np.prod(x_shape[1:])) * itemsize))


def _settled(y: np.ndarray) -> bool:
    """A step's maxima as TF gives them: False when a NaN reached one (TF skips NaN in the
    value but may route to it: the caller's general path redoes the pass); a window of only
    ``-inf`` gets the lowest finite value."""
    low = y.min()
    if np.isnan(low):
        return False
    lowest = np.finfo(y.dtype).min
    if low < lowest:
        np.maximum(y, lowest, out=y)
    return True


def _unpadded_fwd(
    x: np.ndarray, k: tuple[int, int], s: tuple[int, int], y: np.ndarray, choice: np.ndarray
) -> bool:
    """TF's running maximum over windows that need no padding, chunk by chunk over the threads.

    Each window keeps its first cell, replaced only by a strictly greater one; offsets are
    visited in increasing order, so the routing is the largest offset that replaced the
    maximum (``choice = max(choice, off * take)``: SIMD passes, where a masked copy is ~10x
    slower). Writes ``y`` and ``choice``; returns False when any NaN reached the maximum (TF
    skips NaN in the value but may route to it: the general path handles that).
    """
    n, oh, ow, _ = y.shape
    step = _chunk(x.shape, x.itemsize)
    found_nan = []

    def run(c0: int, c1: int) -> None:
        m = min(step, c1 - c0)
        take = np.empty((m, *y.shape[1:]), bool)
        offs = np.empty((m, *y.shape[1:]), choice.dtype)
        cands = np.empty((m, *y.shape[1:]), x.dtype)
        block = np.empty((m, *x.shape[1:]), x.dtype)
        ycells, candcells, blockcells = _cells(y), _cells(cands), _cells(block)
        for lo in range(c0, c1, step):
            hi = min(lo + step, c1)
            yc, cc, cand = y[lo:hi], choice[lo:hi], cands[: hi - lo]
            tc, oc, xc = take[: hi - lo], offs[: hi - lo], blockcells[: hi - lo]
            # The step's images in one streaming read (any layout), then strided reads from
            # cache: ~1.5x faster than strided reads from memory.
            np.copyto(block[: hi - lo], x[lo:hi])
            for off, (si, sj) in _offsets(k, s, oh, ow):
                if off == 0:
                    np.copyto(ycells[lo:hi], xc[:, si, sj])
                    cc.fill(0)
                    continue
                # A contiguous copy first: ufuncs over the strided window view take ~2x as long
                # as the copy plus the same ufuncs over contiguous memory.
                np.copyto(candcells[: hi - lo], xc[:, si, sj])
                np.greater(cand, yc, out=tc)
                np.maximum(cand, yc, out=yc)  # the earlier value second: module docstring
                np.multiply(tc.view(np.int8), choice.dtype.type(off), out=oc)
                np.maximum(cc, oc, out=cc)
            if not _settled(yc):
                found_nan.append(lo)

    parallel_for(run, n, min_chunk=step)
    return not found_nan


def _pairs_fwd(x: np.ndarray, y: np.ndarray, choice: np.ndarray) -> bool:
    """:func:`_unpadded_fwd` for 2x2 windows with stride 2 that tile the input, in pairs.

    The same first greatest cell as the running maximum: the top pair's (offset 1 only if
    strictly greater than 0), the bottom pair's (3 only if strictly greater than 2), then the
    bottom's only if strictly greater than the top's; the values likewise, the earlier operand
    kept on ties (``-0.0`` beside ``+0.0``: module docstring). The cells are read in place through a view whose
    window rows are runs of 2C values: the running maximum's six float passes, without its
    staging copy and its four strided cell copies.
    Measured on an Intel Xeon against :func:`_unpadded_fwd` (alternating 5-call samples, 30
    pairs, medians of the per-pair ratios), forward: 128x28x28x32 0.81 (float32), 0.72
    (float64), 128x14x14x64 0.76, 0.75; forward + backward 0.95, 0.90, 0.88, 0.87. Writes ``y``
    and ``choice``; returns False when a NaN reached the maximum (the general path handles
    it).
    """
    n, oh, ow, c = y.shape
    step = _chunk(x.shape, x.itemsize)
    found_nan = []

    def run(c0: int, c1: int) -> None:
        shape = (min(step, c1 - c0), oh, ow, c)
        top, bottom = np.empty(shape, x.dtype), np.empty(shape, x.dtype)
        right, lower_right, lower = (np.empty(shape, np.int8) for _ in range(3))
        for lo in range(c0, c1, step):
            hi = min(lo + step, c1)
            m = hi - lo
            rows = x[lo:hi].reshape(m, oh, 2, ow, 2 * c)  # [image, i, a, j, (b, channel)]
            q = [rows[:, :, a, :, b * c : (b + 1) * c] for a in (0, 1) for b in (0, 1)]
            t, bt, r0, r1, low_wins = top[:m], bottom[:m], right[:m], lower_right[:m], lower[:m]
            np.greater(q[1], q[0], out=r0.view(bool))
            np.maximum(q[1], q[0], out=t)  # the earlier value second: module docstring
            np.greater(q[3], q[2], out=r1.view(bool))
            np.maximum(q[3], q[2], out=bt)
            np.greater(bt, t, out=low_wins.view(bool))
            yc = y[lo:hi]
            np.maximum(bt, t, out=yc)
            # choice = 2 + r1 where the bottom wins, else r0: r0 + wins * (2 + r1 - r0)
            np.subtract(r1, r0, out=r1)
            r1 += 2
            r1 *= low_wins
            np.add(r0, r1, out=choice[lo:hi])
            if not _settled(yc):
                found_nan.append(lo)

    parallel_for(run, n, min_chunk=step)
    return not found_nan


def max_pool2d_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, MaxPool2DResiduals]:
    """Max over ``ksize`` windows moved by ``strides``.

    Parameters
    ----------
    x : array, shape (N, H, W, C)
    ksize, strides : int, [h, w] or [1, h, w, 1]
    padding : "SAME", "VALID" or [[0, 0], [t, b], [l, r], [0, 0]] (each pad < window size)

    Returns
    -------
    y : array, shape (N, OH, OW, C)
    residuals : MaxPool2DResiduals
        The routing (which window cell receives each gradient), not ``x`` or ``y``.

    Notes
    -----
    See the module docstring for NaN, ``-inf`` and tie semantics (TF's CPU kernels). Without
    padding the windows are visited a chunk of images at a time, chunks spread over
    ``NNREF_NUM_THREADS`` threads (element-wise work: the same bits for any thread count).

    See Also
    --------
    tf.nn.max_pool2d, keras.layers.MaxPooling2D
    """
    x, k, s, plan = _setup(x, ksize, strides, padding, "max_pool2d")
    oh, ow = plan[0].out, plan[1].out
    y = _output("max_pool2d", x, k, s, plan, "an output", x.dtype)
    choice = _output("max_pool2d", x, k, s, plan, "a routing", _routing_dtype(k))
    res = MaxPool2DResiduals(x.shape, x.dtype, choice, k, s, plan)
    if oh == 0 or ow == 0:  # backward returns zeros without reading the routing
        return y, res
    (t, b, _), (left, r, _) = plan
    if t + b + left + r == 0:
        tiled_2x2 = k == s == (2, 2) and oh * 2 == x.shape[1] and ow * 2 == x.shape[2]
        done = _pairs_fwd(x, y, choice) if tiled_2x2 else _unpadded_fwd(x, k, s, y, choice)
        if done:
            return y, res
    # General path: each window offset updates the outputs whose cell at that offset is in the
    # input (padding never wins, so it is never visited). NaN compares False, so "strictly
    # greater" never picks it, exactly as TF's grad loop; the forward max skips it via fmax.
    y.fill(np.finfo(x.dtype).min)
    # Set with choice at each output's first valid offset (choice < 0).
    best = _output("max_pool2d", x, k, s, plan, "a running maximum", x.dtype)
    choice.fill(-1)
    for off, (ri, ci), (ro, co) in _blocks(res):
        cand = x[:, ri, ci]
        yb, bb, cb = y[:, ro, co], best[:, ro, co], choice[:, ro, co]
        np.fmax(yb, cand, out=yb)
        take = (cb < 0) | (cand > bb)
        np.copyto(bb, cand, where=take)
        np.copyto(cb, off, where=take)
    # fmax keeps either operand of equal zeros (it varies with the array length and stride):
    # the routed cell's value, where it equals the maximum, gives TF's sign of a zero.
    np.copyto(y, best, where=best == y)
    return y, res


def max_pool2d_bwd(res: MaxPool2DResiduals, dy: np.ndarray) -> tuple[np.ndarray]:
    """VJP of :func:`max_pool2d`: returns ``(dx,)`` (gradient mass equals ``sum(dy)``).

    Each output's gradient goes to the input cell its ``choice`` names; cells that receive
    none hold ``+0.0`` (also where ``dy`` is negative), as TF's ``MaxPoolGrad``. Without
    padding the work is split over images as in the forward pass.
    """
    check_residuals("max_pool2d_bwd", res, MaxPool2DResiduals, "max_pool2d_fwd")
    xs, dtype, choice, k, s, plan = res
    oh, ow = plan[0].out, plan[1].out
    dy = check_cotangent("max_pool2d", dy, (xs[0], oh, ow, xs[3]), dtype)
    (t, b, _), (left, r, _) = plan
    if not (oh and ow):
        return (np.zeros(xs, dtype),)
    zero = dtype.type(0)
    if t + b + left + r:  # the forward's general path, offset by offset
        dx = np.zeros(xs, dtype)
        for off, (ri, ci), (ro, co) in _blocks(res):
            dx[:, ri, ci] += np.where(choice[:, ro, co] == off, dy[:, ro, co], zero)
        return (dx,)
    n = xs[0]
    dx = np.empty(xs, dtype)
    disjoint = s[0] >= k[0] and s[1] >= k[1]  # each input cell in at most one window
    tiled = disjoint and k == s and oh * s[0] == xs[1] and ow * s[1] == xs[2]
    step = _chunk(xs, dtype.itemsize)

    bits = np.dtype(f"u{dtype.itemsize}")  # same-size unsigned integers: dy's bit patterns

    offsets = list(_offsets(k, s, oh, ow))
    c = xs[3]

    def run(c0: int, c1: int) -> None:
        shape = (min(step, c1 - c0), oh, ow, c)
        grad, hit = np.empty(shape, dtype), np.empty(shape, bits)
        part = None if tiled else np.empty(shape, dtype)
        for lo in range(c0, c1, step):
            hi = min(lo + step, c1)
            m = hi - lo
            dst, cc, gc, hc = dx[lo:hi], choice[lo:hi], grad[:m], hit[:m]
            if not tiled:  # cells outside every window (or in several) need a zeroed start
                dst.fill(0)
            np.add(dy[lo:hi], zero, out=gc)  # TF adds dy to a zero: -0.0 becomes +0.0
            # Tiled: [image, i, a, j, (b, channel)], an offset's cells are runs of C values.
            rows = dst.reshape(m, oh, k[0], ow, k[1] * c) if tiled else None
            for off, (si, sj) in offsets:
                # Each offset's share, dy where it won and +0.0 elsewhere, as dy's bit pattern
                # times 0 or 1 (exact, and ~1.3x faster than a float times a bool mask, which
                # casts); tiled, written straight into its cells of dx (on the Xeon, against
                # building the shares contiguously and interleaving them with one copy, 30
                # interleaved pairs: 2x2 on 128x28x28x32 0.87 / 0.81 in float32 / float64,
                # on 128x14x14x64 0.99 / 0.91; 3x3 on 128x27x27x32 1.03 / 1.00).
                np.equal(cc, off, out=hc)
                if tiled:
                    a, b = divmod(off, k[1])
                    np.multiply(
                        gc.view(bits), hc, out=rows[:, :, a, :, b * c : (b + 1) * c].view(bits)
                    )
                    continue
                pc = part[:m]
                np.multiply(gc.view(bits), hc, out=pc.view(bits))
                if disjoint:  # whole channel cells: one memcpy each
                    np.copyto(_cells(dst)[:, si, sj], _cells(pc))
                else:
                    dst[:, si, sj, :] += pc

    parallel_for(run, n, min_chunk=step)
    return (dx,)


def max_pool2d(x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID") -> np.ndarray:
    """Forward value of :func:`max_pool2d_fwd`."""
    return max_pool2d_fwd(x, ksize=ksize, strides=strides, padding=padding)[0]


# --------------------------------------------------------------------------- naive oracle


def max_pool2d_naive_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, MaxPool2DResiduals]:
    """Loop version: for every output, walk its window's valid cells in row-major order."""
    x, k, s, plan = _setup(x, ksize, strides, padding, "max_pool2d_naive")
    n, h, w, c = x.shape
    (t, _, oh), (left, _, ow) = plan
    lowest = np.finfo(x.dtype).min
    y = _output("max_pool2d_naive", x, k, s, plan, "an output", x.dtype)
    y.fill(lowest)
    # Every window has a valid cell: set below.
    choice = _output("max_pool2d_naive", x, k, s, plan, "a routing", _routing_dtype(k))
    for bn in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best = None
                    # Padding never wins: only the window's cells inside the input.
                    for a in range(max(0, t - i * s[0]), min(k[0], h + t - i * s[0])):
                        for b in range(max(0, left - j * s[1]), min(k[1], w + left - j * s[1])):
                            r, q = i * s[0] + a - t, j * s[1] + b - left
                            v = x[bn, r, q, ch]
                            if not np.isnan(v) and v > y[bn, i, j, ch]:
                                y[bn, i, j, ch] = v
                            if best is None or v > best:
                                best = v
                                choice[bn, i, j, ch] = a * k[1] + b
    return y, MaxPool2DResiduals(x.shape, x.dtype, choice, k, s, plan)


def max_pool2d_naive_bwd(res: MaxPool2DResiduals, dy: np.ndarray) -> tuple[np.ndarray]:
    """Loop version of :func:`max_pool2d_bwd`."""
    check_residuals("max_pool2d_naive_bwd", res, MaxPool2DResiduals, "max_pool2d_naive_fwd")
    xs, dtype, choice, k, s, plan = res[:6]
    (t, _, oh), (left, _, ow) = plan
    dy = check_cotangent("max_pool2d_naive", dy, (xs[0], oh, ow, xs[3]), dtype)
    dx = np.zeros(xs, dtype)
    for bn in range(xs[0]):
        for i in range(oh):
            for j in range(ow):
                for ch in range(xs[3]):
                    a, b = divmod(int(choice[bn, i, j, ch]), k[1])
                    dx[bn, i * s[0] + a - t, j * s[1] + b - left, ch] += dy[bn, i, j, ch]
    return (dx,)


def max_pool2d_naive(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> np.ndarray:
    return max_pool2d_naive_fwd(x, ksize=ksize, strides=strides, padding=padding)[0]
