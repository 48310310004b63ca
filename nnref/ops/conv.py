"""2-D convolution, NHWC input and HWIO kernel, exactly as ``tf.nn.conv2d``.

``conv2d_naive`` (plain loops over output positions) is the readable oracle; ``conv2d`` is the
vectorised path: a slab of images at a time, im2col through a strided view in (kh, kw, c)
column order (built transposed when C_in = 1) and one GEMM; the input gradient of a stride-1
convolution is the same forward pass over ``dy`` with the flipped kernel, otherwise GEMMs per
slab give a contiguous block per kernel tap, whose part that lands on the input is added into
strided views of ``dx``, never ``np.add.at``. Padding is never materialized beyond what the
columns cost (see :func:`_slab_pads`), so a padding or dilation far beyond the input costs what
the output does. Where padding takes a sizeable share of the multiply-adds (the seed CNN's conv2:
16%), the forward, the stride-1 ``dx`` and ``dw`` skip them: the outputs are grouped by the taps
at which they read the input, one GEMM per group over those taps (:func:`_tiles`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nnref import _memory
from nnref._threads import Phase, chunks, parallel_gemm_phases
from nnref._validate import (
    as_float,
    check_cotangent,
    check_residuals,
    require_bias,
    require_nonempty,
    require_rank,
    same_dtype,
    shape_str,
)
from nnref._workspace import give, take
from nnref.ops import _dftconv
from nnref.ops._channels import add_bias, add_row_sum, block_row_sums
from nnref.ops._windows import (
    AxisPlan,
    normalize_padding,
    plan_axis,
    spatial_pair,
    tap_classes,
    tap_runs,
)

#: Work is done a slab of images at a time: each thread pads its slab into a scratch buffer,
#: builds the slab's im2col matrix (or its ``dx`` columns) in a buffer of about this many bytes
#: and runs the slab's GEMM on one BLAS thread, so the copies run on every core and stay in
#: cache. A whole-batch column matrix is ``KH*KW`` times the input (160 MB for the seed CNN's
#: conv2 in float64) and a fresh array that size pays page faults on every call. On an Intel
#: Xeon (2 MiB L2 per core), 1.5 MiB against 2 MiB, seed CNN conv2, interleaved: float32 forward
#: 0.87, dx 1.00, dw 1.00 (float64 0.95, 0.96, 0.96); 1 MiB as good in forward, worse in dx; the
#: composed exact step 0.973 [0.938-0.991] (20 alternating 5-step samples). (2 MiB was chosen
#: on an AMD EPYC.)
_SLAB_BYTES = 3 << 19
#: At least this many slabs when the batch allows, so the threads get balanced shares (their
#: count even, :func:`_slabs`). Where it binds (few channels: conv1's 78 KB of columns an image
#: in float32), fewer, larger slabs pay each slab's dozens of small NumPy calls (each a GIL
#: hand-off when both threads run) less often: 8 even slabs against 16 on an Intel Xeon, seed
#: CNN conv1 forward + filter gradient 0.93 [0.90-0.94] in float32 (1.03 in float64: 14 slabs
#: of 9-10 images instead of 16 of 8), the composed exact float32 step 0.976 [0.95-1.02]
#: (processes alternated, 8 pairs).
_MIN_SLABS = 8
#: ``dw`` is summed over images: each of at most this many fixed groups of slabs sums its own
#: slabs in order, then the groups are added in order. The grouping depends on the shapes only,
#: never on the thread count, so ``dw`` has the same bits for any ``NNREF_NUM_THREADS``.
_DW_GROUPS = 8
#: ``dw`` by tiles (:func:`_tiles`) sums this many fixed groups of those groups: a tile of one
#: output per image is one GEMM over the whole group's images, and the tiles' small GEMMs and
#: block additions cost less in few groups.
_DW_TILE_GROUPS = 2
#: An axis's outputs are split into runs that read the input at the same taps (:func:`_tiles`)
#: when that skips at least this fraction of the multiply-adds along it (the seed CNN's conv2,
#: 5x5 SAME on 14x14: 8.6% an axis).
_SKIP_MIN = 1 / 32
#: ... and when that skips at least this many multiply-adds (a call's tiles cost ~0.2-0.4 ms
#: more in Python and small GEMMs: a 6x6 SAME 3x3 forward took 306 us instead of 117, and
#: ``nnref conform nnref`` 22 s instead of 17) ...
_SKIP_MIN_MACS = 1 << 23
#: ... and when that takes at most this many tiles (a 5x5 SAME kernel: 25).
_MAX_TILES = 64


#: ``algorithm="auto"`` takes the DFT path when its estimated FLOPs, times this factor, are
#: below the direct path's, and the direct path has at least ``_DFT_MIN_FLOPS`` to do (below
#: that the DFT path's fixed costs decide). Calibrated by ``benchmarks/calibrate_auto.py`` on
#: fwd + dx + dw, SAME, float32, batch 128 (CPU time, one thread; DFT/direct): 5x5 32->64 at
#: 14x14 0.36, 7x7 0.40, 4x4 0.47, 2x2 0.86; 3x3 32->64 at 14x14 0.83, 8x8 0.85, 6x6 0.63,
#: 3x3 0.68; 5x5 16->32 at 28x28 0.54; 3x3 16->32 at 28x28 1.30, 32->32 1.07; 5x5 1->32 at
#: 28x28 2.9, 3->32 0.82; 3x3 64->64 at 56x56 1.28 (batch 32). The FLOP ratio misjudges by
#: 0.4x (3 input channels) to 2x (transforms under 10); with two threads the small cases tip
#: the other way (wall time: 3x3 32->64 at 8x8 1.01, 2x2 1.19; 5x5 at 4x4 batch 32 1.25).
#: Re-measured after the direct path began skipping padding (:func:`_tiles`), which the FLOP
#: estimate still counts: 0.42, 0.49, 0.77, 3.2; 0.91, 0.86, 0.91, 1.21; 0.61; 1.31, 1.08;
#: 3.1, 0.86; 1.19. Every pick stands (the cases that now favour direct lie below
#: ``_DFT_MIN_FLOPS``), except 5x5 at 4x4 batch 32 (0.99: a tie) and 3 input channels (0.86,
#: as before).
_DFT_PENALTY = 1.7
_DFT_MIN_FLOPS = 10**8
ALGORITHMS = ("direct", "dft", "auto")


class Conv2DResiduals(NamedTuple):
    x: np.ndarray  # the input itself (nnref never mutates it; the caller must not either)
    w: np.ndarray
    strides: tuple[int, int]
    dilations: tuple[int, int]
    plan: tuple[AxisPlan, AxisPlan]
    with_bias: bool = False  # the forward pass added a bias: backward returns its gradient too


class Conv2DDFTResiduals(NamedTuple):
    """Residuals of ``algorithm="dft"``: backward follows the forward's algorithm."""

    x: np.ndarray  # kept for the direct fallback when dy is not finite
    w: np.ndarray
    strides: tuple[int, int]
    dilations: tuple[int, int]
    plan: tuple[AxisPlan, AxisPlan]
    spectra: _dftconv.Spectra  # the input's spectrum, per-image scales
    with_bias: bool = False


def _check_algorithm(op: str, algorithm: Any) -> str:
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(
            f"{op}: 'algorithm' must be one of {', '.join(map(repr, ALGORITHMS))}, "
            f"got {algorithm!r}"
        )
    return algorithm


def _dft_flops(x: np.ndarray, w: np.ndarray, plan) -> tuple[int, int]:
    """Estimated FLOPs of a stride-1 undilated convolution's forward pass by DFT (transforms and
    per-frequency products, complex: 8 per multiply-add) and by the direct sum."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    (_, _, oh), (_, _, ow) = plan
    lh = _dftconv.transform_size(h, kh, 1, 1, plan[0])
    lw = _dftconv.transform_size(wd, kw, 1, 1, plan[1])
    pairs = (n + 1) // 2
    transforms = c * (lh * h * wd + lh * lw * wd) + o * (lh * lw * ow + oh * ow * lh)
    return 8 * pairs * (transforms + lh * lw * c * o), 2 * n * oh * ow * kh * kw * c * o


def _dft_wins(x: np.ndarray, w: np.ndarray, s, d, plan) -> bool:
    """``"auto"``: stride 1, no dilation and fewer estimated FLOPs (see ``_DFT_PENALTY``)."""
    if s != (1, 1) or d != (1, 1):
        return False
    dft, direct = _dft_flops(x, w, plan)
    return direct >= _DFT_MIN_FLOPS and dft * _DFT_PENALTY < direct


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


def _transposed(res: Conv2DResiduals) -> bool:
    """Few input channels (conv1 on images: C_in = 1): build the column matrix transposed,
    ``(KH*KW*C_in, rows)``, a strided ``(n, OH, OW)`` block per tap (runs of ``OW`` values
    instead of ``KW*C_in``; measured 1.5x faster for C_in = 1, slower for C_in = 3)."""
    return res.w.shape[2] == 1


def _slabs(res: Conv2DResiduals | Conv2DDFTResiduals) -> list[tuple[int, int]]:
    """Image ranges ``lo:hi`` whose im2col rows (or dx columns) take at most about
    ``_SLAB_BYTES`` (one image at least), at least ``_MIN_SLABS`` of them when the batch has
    that many images, an even count where the batch allows (two threads get equal shares) and
    sizes differing by at most one image, the larger first (the scratch is sized by the first).
    The shapes alone decide them, never the thread count."""
    n, (kh, kw, cin, _) = res.x.shape[0], res.w.shape
    per_image = res.plan[0].out * res.plan[1].out * kh * kw * cin * res.w.dtype.itemsize
    cap = max(1, _SLAB_BYTES // max(per_image, 1))
    k = max(min(n, _MIN_SLABS), -(-n // cap))
    return chunks(n, min(n, k + k % 2))


def _cause(res: Conv2DResiduals | Conv2DDFTResiduals) -> str:
    """The arguments that set the sizes of a convolution's output and columns, for errors."""
    (t, b, _), (left, r, _) = res.plan
    pads = [[0, 0], [t, b], [left, r], [0, 0]]
    return (
        f"'strides' {res.strides}, 'dilations' {res.dilations} and 'padding' {pads} on 'x' "
        f"{shape_str(res.x)} and 'w' {shape_str(res.w)}"
    )


def _output(res: Conv2DResiduals, op: str = "conv2d") -> np.ndarray:
    """An uninitialised ``(N, OH, OW, C_out)`` output (the named MemoryError when it is too
    large to allocate)."""
    shape = (res.x.shape[0], res.plan[0].out, res.plan[1].out, res.w.shape[3])
    return _memory.empty(op, _cause(res), "an output", shape, res.w.dtype)


def _slab_pads(res: Conv2DResiduals) -> bool:
    """Whether columns are built from a zero-padded copy of the slab (strided views of it
    give every tap at once; True) or from the input itself, tap by tap, zero outside each
    tap's run of outputs (False: no padding, or a padded slab larger than its columns). Both
    give the same columns. A pad far beyond what the windows read (``padding`` 10**8 at stride 10**6)
    or a dilation far beyond the input (SAME with ``dilations`` 10**9) then costs what the
    outputs do: the padded input itself could exceed any memory."""
    _, h, w, _ = res.x.shape
    (t, b, oh), (left, r, ow) = res.plan
    kh, kw = res.w.shape[:2]
    return t + b + left + r > 0 and (h + t + b) * (w + left + r) <= oh * ow * kh * kw


def _runs(
    res: Conv2DResiduals, h: int, w: int, before: tuple[int, int]
) -> tuple[dict[int, tuple[slice, slice]], dict[int, tuple[slice, slice]]]:
    """Per kernel row ``a`` (and column ``b``) that meets an ``h x w`` source padded
    ``before``: ``(source rows, output rows)`` it pairs (``tap_runs``)."""
    kh, kw = res.w.shape[:2]
    (sh, sw), (dh, dw) = res.strides, res.dilations
    (_, _, oh), (_, _, ow) = res.plan
    rows = tap_runs(kh, sh, dh, oh, before[0], h)
    cols = tap_runs(kw, sw, dw, ow, before[1], w)
    return {a: (i, o) for a, i, o in rows}, {b: (i, o) for b, i, o in cols}


class _Tile(NamedTuple):
    """Outputs ``rows x cols`` that read the input at kernel rows ``a0:a1`` and columns
    ``b0:b1`` only, and ``x`` the windows of the input they read (``None``: the outputs read
    padding only)."""

    rows: slice
    cols: slice
    a0: int
    a1: int
    b0: int
    b1: int
    x: np.ndarray | None  # (N, rows, cols, a1 - a0, b1 - b0, C_in): a read-only view of x


def _tiles(res: Conv2DResiduals) -> list[_Tile] | None:
    """The outputs grouped by the taps at which they read the input, when skipping the
    products with padding saves at least ``_SKIP_MIN`` along some axis and ``_SKIP_MIN_MACS`` in
    all (else None: every output takes every tap). Not where the columns are built transposed.
    The skipped products are exact zeros when the other factor is finite; callers see to that
    (a finite kernel, or a non-finite result redone in full)."""
    n, h, w, cin = res.x.shape
    kh, kw, _, cout = res.w.shape
    macs = n * res.plan[0].out * res.plan[1].out * kh * kw * cin * cout
    if macs < _SKIP_MIN_MACS:
        return None
    reach = max(
        p.out * s + p.before + (k - 1) * d
        for p, s, d, k in zip(res.plan, res.strides, res.dilations, res.w.shape[:2], strict=True)
    )
    if _transposed(res) or reach + h + w >= 2**62:  # (tap_classes counts in int64)
        return None
    axes, kept = [], []
    for size, k, s, d, plan in zip(
        (h, w), (kh, kw), res.strides, res.dilations, res.plan, strict=True
    ):
        axes.append(tap_classes(k, s, d, plan.out, plan.before, size))
        taps = sum((r.stop - r.start) * (a1 - a0) for r, a0, a1 in axes[-1])
        kept.append(taps / (plan.out * k))
    if (
        min(kept) > 1 - _SKIP_MIN
        or macs * (1 - kept[0] * kept[1]) < _SKIP_MIN_MACS
        or len(axes[0]) * len(axes[1]) > _MAX_TILES
    ):
        return None
    rows, cols = axes
    return [
        _tile(res, r, c, a0, a1, b0, b1) if a0 < a1 and b0 < b1 else _Tile(r, c, 0, 0, 0, 0, None)
        for r, a0, a1 in rows
        for c, b0, b1 in cols
    ]


def _tile(
    res: Conv2DResiduals, rows: slice, cols: slice, a0: int, a1: int, b0: int, b1: int
) -> _Tile:
    """The tile of outputs ``rows x cols`` that read the input at taps ``a0:a1 x b0:b1``, with
    the windows of ``x`` they read (strides set by hand: ``sliding_window_view`` costs ~20 us
    a call and ``as_strided`` ~3.5, the ndarray constructor over a contiguous ``x`` ~1, and a
    call has a view per tile; every index lies in ``x``)."""
    (sh, sw), (dh, dw) = res.strides, res.dilations
    (t, _, _), (left, _, _) = res.plan
    n, _, _, cin = res.x.shape
    r0 = rows.start * sh + a0 * dh - t
    c0 = cols.start * sw + b0 * dw - left
    s_n, s_h, s_w, s_c = res.x.strides
    shape = (n, rows.stop - rows.start, cols.stop - cols.start, a1 - a0, b1 - b0, cin)
    strides = (s_n, sh * s_h, sw * s_w, dh * s_h, dw * s_w, s_c)
    if res.x.flags.c_contiguous:
        offset = r0 * s_h + c0 * s_w
        view = np.ndarray(shape, res.x.dtype, res.x, offset, strides)
        view.flags.writeable = False
    else:
        base = res.x[:, r0:, c0:]
        view = np.lib.stride_tricks.as_strided(base, shape, strides, writeable=False)
    return _Tile(rows, cols, a0, a1, b0, b1, view)


def _take(res: Conv2DResiduals, role: str, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The workspace's ``role`` buffer (the named MemoryError when it is too large)."""
    try:
        return take(role, shape, res.w.dtype)
    except _memory.TOO_LARGE as e:
        raise _memory.too_large("conv2d", _cause(res), what, shape, res.w.dtype) from e


class _Scratch:
    """One thread's buffers: the column matrix and, when :func:`_slab_pads` and columns are
    built, the padded slab (zero border written once per call, interior per slab). They come
    from the running thread's workspace (:mod:`nnref._workspace`; the pool's worker threads
    keep theirs between calls) and go back with :meth:`release`: fresh slabs each call made
    glibc trim and refault its heap (~9,500 minor faults per seed-CNN step)."""

    def __init__(
        self, res: Conv2DResiduals, images: int, called: Conv2DResiduals | None = None
    ) -> None:
        """``called``: the user's call whose ``dx`` this is, when ``res`` is the correlation's
        (the MemoryErrors name the user's arguments, not ``dy`` and the flipped kernel)."""
        _, h, w, cin = res.x.shape
        (t, b, oh), (left, r, ow) = res.plan
        kh, kw = res.w.shape[:2]
        self.images = images
        self.called = called or res
        self.of = "" if called is None else " of dy for the input gradient"
        self.xp: np.ndarray | None = None  # taken at the first slab that needs it
        shape = (kh, kw, cin, images, oh, ow) if _transposed(res) else (images, oh, ow, kh, kw, cin)
        what = f"im2col columns{self.of} for {images} image(s)"
        self.cols = _take(self.called, "direct-cols", shape, what)
        self.pads = _slab_pads(res)
        if self.pads:
            self.rows, self.cols_of = _runs(res, h + t + b, w + left + r, (0, 0))
        else:
            self.rows, self.cols_of = _runs(res, h, w, (t, left))
        # Every tap meets the source at every output: the strided windows view copies them all.
        self.full = len(self.rows) * len(self.cols_of) == kh * kw and all(
            o == slice(0, n)
            for runs, n in ((self.rows, oh), (self.cols_of, ow))
            for _, o in runs.values()
        )

    def release(self) -> None:
        """Return the buffers to the running thread's workspace."""
        if self.xp is not None:
            give("direct-xp", self.xp)
        give("direct-cols", self.cols)

    def source(self, res: Conv2DResiduals, lo: int, hi: int) -> np.ndarray:
        """Images ``lo:hi``: a copy in the padded slab when :func:`_slab_pads`, else the input
        itself."""
        if not self.pads:
            return res.x[lo:hi]
        _, h, w, cin = res.x.shape
        (t, b, _), (left, r, _) = res.plan
        if self.xp is None:  # zeroed: a reused buffer holds another call's interior and border
            shape = (self.images, h + t + b, w + left + r, cin)
            what = f"a padded slab{self.of} of {self.images} image(s)"
            self.xp = _take(self.called, "direct-xp", shape, what)
            self.xp.fill(0)
        xp = self.xp[: hi - lo]
        xp[:, t : t + h, left : left + w] = res.x[lo:hi]
        return xp

    def columns(self, res: Conv2DResiduals, lo: int, hi: int) -> np.ndarray:
        """The im2col matrix of images ``lo:hi``: ``(rows, K)``, or ``(K, rows)`` when
        :func:`_transposed`, columns in (kh, kw, c) order (the HWIO kernel reshapes to the GEMM
        operand without a copy)."""
        kh, kw, cin, _ = res.w.shape
        src = self.source(res, lo, hi)
        nb = hi - lo
        if self.full:  # one copy from the windows view: one GIL hand-off, not one per tap
            win = _windows(src, kh, kw, res.strides, res.dilations)
            if _transposed(res):
                cols = self.cols[:, :, :, :nb]
                np.copyto(cols, win.transpose(3, 4, 5, 0, 1, 2))
                return cols.reshape(kh * kw * cin, -1)
            cols = self.cols[:nb]
            np.copyto(cols, win)
            return cols.reshape(-1, kh * kw * cin)
        # Tap by tap, output positions first: (KH, KW, OH, OW, ...) and (H, W, ...).
        if _transposed(res):
            cols = self.cols[:, :, :, :nb]
            dst, img = cols.transpose(0, 1, 4, 5, 2, 3), src.transpose(1, 2, 3, 0)
        else:
            cols = self.cols[:nb]
            dst, img = cols.transpose(3, 4, 1, 2, 0, 5), src.transpose(1, 2, 0, 3)
        for a in range(kh):
            for b in range(kw):
                tap = dst[a, b]
                if a not in self.rows or b not in self.cols_of:
                    tap.fill(0)  # a tap that reads padding only, at every output
                    continue
                (ri, ro), (ci, co) = self.rows[a], self.cols_of[b]
                if not self.full:  # zero the outputs whose tap reads padding
                    tap[: ro.start] = 0
                    tap[ro.stop :] = 0
                    tap[ro, : co.start] = 0
                    tap[ro, co.stop :] = 0
                np.copyto(tap[ro, co], img[ri, ci])
        if _transposed(res):
            return cols.reshape(kh * kw * cin, -1)
        return cols.reshape(-1, kh * kw * cin)


class _TileScratch:
    """One thread's buffers for :func:`_tiles`' GEMMs: a tile's columns for a chunk of images
    (about ``_SLAB_BYTES``, see :func:`_tile_items`) and its ``(rows, C_out)`` output or ``dy``
    rows, from the running thread's workspace as :class:`_Scratch`'s."""

    def __init__(
        self,
        res: Conv2DResiduals,
        items: list[tuple[_Tile, int, int]],
        called: Conv2DResiduals | None = None,
    ) -> None:
        """``called``: as :class:`_Scratch`'s."""
        of = "" if called is None else " of dy for the input gradient"
        # A chunk's columns are its view of the input: (images, rows, cols, taps, C_in).
        rows = max((hi - lo) * math.prod(t.x.shape[1:3]) for t, lo, hi in items)
        size = max((hi - lo) * math.prod(t.x.shape[1:]) for t, lo, hi in items)
        called = called or res
        self.cols = _take(called, "direct-cols", (size,), f"im2col columns{of} of a tile")
        shape = (rows, res.w.shape[3])
        self.rows = _take(called, "direct-rows", shape, f"output rows{of} of a tile")

    def release(self) -> None:
        give("direct-cols", self.cols)
        give("direct-rows", self.rows)

    def columns(self, tile: _Tile, lo: int, hi: int) -> np.ndarray:
        """The im2col matrix of ``tile``'s outputs of images ``lo:hi`` over its taps:
        ``(rows, taps * C_in)``, rows in (n, i, j) order."""
        view = tile.x[lo:hi]
        cols = self.cols[: view.size].reshape(view.shape)
        np.copyto(cols, view)
        return cols.reshape(len(cols) * math.prod(view.shape[1:3]), -1)


def _tile_items(
    res: Conv2DResiduals, tiles: list[_Tile], lo: int, hi: int
) -> list[tuple[_Tile, int, int]]:
    """``(tile, lo, hi)``: images ``lo:hi`` cut per tile into chunks whose columns take about
    ``_SLAB_BYTES`` (a tile of one output per image takes many images a GEMM, the interior
    few); tiles that read padding only are left out. Depends on the shapes alone."""
    items = []
    for tile in tiles:
        if tile.x is None:
            continue
        per_image = math.prod(tile.x.shape[1:]) * tile.x.itemsize
        step = max(1, _SLAB_BYTES // per_image)
        items += [(tile, a, min(a + step, hi)) for a in range(lo, hi, step)]
    return items


def _taps(tile: _Tile) -> tuple[int, int, int, int]:
    return tile.a0, tile.a1, tile.b0, tile.b1


def _forward_tiles(
    res: Conv2DResiduals,
    tiles: list[_Tile],
    y: np.ndarray,
    bias: np.ndarray | None,
    called: Conv2DResiduals | None,
) -> Phase | None:
    """``y`` tile by tile: per chunk of images a GEMM over the tile's taps only, written (with
    ``bias`` added) into the tile's outputs; the chunks over the threads (every other one to
    each, so both get interior and border tiles). Fills the tiles that read padding only and
    returns the phase that computes the rest (None: nothing left)."""
    for tile in tiles:
        if tile.x is None:  # padding only: the sum of no products (+0.0, as the GEMM's)
            dst = y[:, tile.rows, tile.cols]
            dst.fill(0)
            if bias is not None:
                dst += bias
    items = _tile_items(res, tiles, 0, res.x.shape[0])
    if not items:
        return None
    items = items[::2] + items[1::2]
    # Each tile's block of the kernel, (taps * C_in, C_out): a copy where it takes some columns.
    blocks = {
        _taps(t): res.w[t.a0 : t.a1, t.b0 : t.b1].reshape(-1, res.w.shape[3])
        for t in tiles
        if t.x is not None
    }

    def run(a: int, b: int) -> None:
        scratch = _TileScratch(res, items[a:b], called)
        for tile, lo, hi in items[a:b]:
            cols = scratch.columns(tile, lo, hi)
            out = scratch.rows[: len(cols)]
            np.matmul(cols, blocks[_taps(tile)], out=out)
            dst = y[lo:hi, tile.rows, tile.cols]
            if bias is None:
                np.copyto(dst, out.reshape(dst.shape))
            else:
                np.add(out.reshape(dst.shape), bias, out=dst)
        scratch.release()

    return run, len(items), 1


def _forward(
    res: Conv2DResiduals,
    y: np.ndarray,
    bias: np.ndarray | None = None,
    called: Conv2DResiduals | None = None,
) -> Phase | None:
    """The phase that writes ``y`` slab by slab: im2col and one GEMM per slab (``bias`` added
    to the slab's output while it is in cache), slabs spread over the threads; ``called`` as
    :class:`_Scratch`. With a finite kernel and :func:`_tiles`, tile by tile instead
    (:func:`_forward_tiles`)."""
    tiles = _tiles(res)
    if tiles is not None and np.isfinite(res.w).all():  # else 0 * inf at the padding: every tap
        return _forward_tiles(res, tiles, y, bias, called)
    cout = res.w.shape[3]
    w2 = res.w.reshape(-1, cout)
    slabs = _slabs(res)

    def run(a: int, b: int) -> None:
        scratch = _Scratch(res, slabs[0][1], called)
        for lo, hi in slabs[a:b]:
            cols = scratch.columns(res, lo, hi)
            out = y[lo:hi].reshape(-1, cout)
            np.matmul(cols.T if _transposed(res) else cols, w2, out=out)
            if bias is not None:
                add_bias(out, bias)
        scratch.release()

    return run, len(slabs), 1


def _run(*phases: Phase | None) -> None:
    """The phases (slabs, tiles' chunks or groups of slabs; None: nothing to run) in one
    hand-off to the threads (:func:`~nnref._threads.parallel_gemm_phases`): several at once
    where they are independent (a backward pass's ``dx``, ``dw`` and ``db``)."""
    parallel_gemm_phases([p for p in phases if p is not None])


def _slab_groups(res: Conv2DResiduals | Conv2DDFTResiduals) -> tuple[list, list]:
    """The slabs and the fixed groups of slabs that ``dw`` and ``db`` are summed over."""
    slabs = _slabs(res)
    return slabs, chunks(len(slabs), min(len(slabs), _DW_GROUPS))


def _in_order(parts: np.ndarray) -> np.ndarray:
    """The groups' partial sums added in group order (into the first)."""
    total = parts[0]
    for p in parts[1:]:
        total += p
    return total


def _filter_grad(
    res: Conv2DResiduals, dy: np.ndarray, with_bias: bool = False, skip: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dw, db)`` (``db`` None without ``with_bias``): :func:`_filter_grad_phases` run."""
    phases, finish = _filter_grad_phases(res, dy, with_bias, skip)
    _run(*phases)
    return finish()


def _filter_grad_phases(
    res: Conv2DResiduals, dy: np.ndarray, with_bias: bool = False, skip: bool = True
) -> tuple[list[Phase], Callable[[], tuple[np.ndarray, np.ndarray | None]]]:
    """The phases of ``dw = cols^T @ g`` summed over fixed groups of slabs (see
    ``_DW_GROUPS``), and with ``with_bias`` ``db``, each slab's ``dy`` summed while the GEMM has
    it in cache, in the order :func:`_bias_grad_phase` sums (the same bits), and the function
    that gives ``(dw, db)`` once they have run. With ``skip`` and :func:`_tiles`, ``dw`` tile by
    tile over the taps that read the input, in ``_DW_TILE_GROUPS`` groups of those groups, and
    ``db`` by :func:`_bias_grad_phase`; a non-finite ``dw`` (or ``dy`` at outputs that read
    padding only) is redone over every tap, where padding times a non-finite ``dy`` is NaN."""
    kh, kw, cin, cout = res.w.shape
    slabs, groups = _slab_groups(res)
    tiles = _tiles(res) if skip else None

    if tiles is not None:
        tgroups = chunks(len(groups), min(len(groups), _DW_TILE_GROUPS))
        parts = np.empty((len(tgroups), kh * kw * cin, cout), res.w.dtype)

        def run_tiles(a: int, b: int) -> None:
            for ti in range(a, b):
                g0, g1 = tgroups[ti]
                lo, hi = slabs[groups[g0][0]][0], slabs[groups[g1 - 1][1] - 1][1]
                _filter_grad_tiles(res, _tile_items(res, tiles, lo, hi), dy, parts[ti])

        phases: list[Phase] = [(run_tiles, len(tgroups), 1)]
        bias_sum = None
        if with_bias:
            bias_phase, bias_sum = _bias_grad_phase(res, dy)
            phases.append(bias_phase)

        def finish_tiles() -> tuple[np.ndarray, np.ndarray | None]:
            dw = _in_order(parts)
            if np.isfinite(dw).all() and all(
                np.isfinite(dy[:, t.rows, t.cols]).all() for t in tiles if t.x is None
            ):
                return dw.reshape(res.w.shape), None if bias_sum is None else bias_sum()
            return _filter_grad(res, dy, with_bias, skip=False)

        return phases, finish_tiles

    parts = np.empty((len(groups), kh * kw * cin, cout), res.w.dtype)
    bparts = np.empty((len(groups), cout), res.w.dtype) if with_bias else None

    def run(a: int, b: int) -> None:
        scratch = _Scratch(res, slabs[0][1])
        tmp = take("direct-dw", parts.shape[1:], res.w.dtype)
        for gi in range(a, b):
            g_lo, g_hi = groups[gi]
            for j, (lo, hi) in enumerate(slabs[g_lo:g_hi]):
                cols = scratch.columns(res, lo, hi)
                g = dy[lo:hi].reshape(-1, cout)
                np.matmul(cols if _transposed(res) else cols.T, g, out=tmp if j else parts[gi])
                if j:
                    parts[gi] += tmp
                if bparts is not None:  # while the GEMM has the slab's dy in cache
                    add_row_sum(g, bparts[gi], j == 0)
        give("direct-dw", tmp)
        scratch.release()

    def finish() -> tuple[np.ndarray, np.ndarray | None]:
        return _in_order(parts).reshape(res.w.shape), None if bparts is None else _in_order(bparts)

    return [(run, len(groups), 1)], finish


def _filter_grad_tiles(
    res: Conv2DResiduals, items: list[tuple[_Tile, int, int]], dy: np.ndarray, part: np.ndarray
) -> None:
    """``part`` (zeroed first): ``dw`` of the images in ``items``, item by item the tile's
    columns over its taps times its rows of ``dy``, added into the kernel block of its taps."""
    kh, kw, cin, cout = res.w.shape
    blocks = part.reshape(kh, kw, cin, cout)
    part.fill(0)
    if not items:
        return
    scratch = _TileScratch(res, items)
    tmp = take("direct-dw", part.shape, res.w.dtype)
    for tile, lo, hi in items:
        cols = scratch.columns(tile, lo, hi)
        g = scratch.rows[: len(cols)]
        src = dy[lo:hi, tile.rows, tile.cols]
        np.copyto(g.reshape(src.shape), src)
        t = tmp[: cols.shape[1]]
        np.matmul(cols.T, g, out=t)
        blocks[tile.a0 : tile.a1, tile.b0 : tile.b1] += t.reshape(
            tile.a1 - tile.a0, tile.b1 - tile.b0, cin, cout
        )
    give("direct-dw", tmp)
    scratch.release()


def _bias_grad_phase(
    res: Conv2DResiduals | Conv2DDFTResiduals, dy: np.ndarray
) -> tuple[Phase, Callable[[], np.ndarray]]:
    """The phase of ``db``, ``dy`` summed over images and positions, slab by slab within the
    fixed groups of :func:`_filter_grad` (whatever the algorithm: ``db`` has the same bits on
    every path and for any thread count), and the function that gives ``db`` once it has run.
    A group's slabs of one size are summed in one call (``block_row_sums``, the bits of
    ``add_row_sum`` slab by slab): the seed CNN's conv2 has 64 slabs of two images, and their
    ~200 small calls took 0.86 ms against 0.41 (two threads)."""
    cout = dy.shape[3]
    pixels = dy.shape[1] * dy.shape[2]
    slabs, groups = _slab_groups(res)
    parts = np.empty((len(groups), cout), dy.dtype)

    def run(a: int, b: int) -> None:
        for gi in range(a, b):
            g_lo, g_hi = groups[gi]
            sums = []
            i = g_lo
            while i < g_hi:  # runs of slabs of one size (slab sizes differ by one image)
                lo, hi = slabs[i]
                j = i + 1
                while j < g_hi and slabs[j][1] - slabs[j][0] == hi - lo:
                    j += 1
                run_dy = dy[lo : slabs[j - 1][1]].reshape(j - i, (hi - lo) * pixels, cout)
                sums.extend(block_row_sums(run_dy))
                i = j
            parts[gi] = sums[0]
            for s in sums[1:]:  # in slab order, as add_row_sum accumulates
                parts[gi] += s

    return (run, len(groups), 1), lambda: _in_order(parts)


def _flipped_axis(n: int, k: int, d: int, plan: AxisPlan) -> tuple[slice, AxisPlan]:
    """Along one axis of a stride-1 convolution, ``dx[h] = sum_a dy[h + t - a*d] w[a]`` is a
    correlation of ``dy`` (zero outside its ``out`` rows) with the flipped kernel: ``dy``
    padded ``(k - 1) * d - t`` before (cropped when that is negative: rows whose windows lie in
    the padding), output length ``n``. Returns the rows of ``dy`` it reads (never none: with
    ``n >= 1``, ``out = n + t + b - (k - 1) * d > t - (k - 1) * d``) and its plan."""
    before = (k - 1) * d - plan.before
    lo = max(0, -before)
    hi = min(plan.out, n + plan.before)
    pad = max(before, 0)
    return slice(lo, hi), AxisPlan(pad, n + (k - 1) * d - pad - (hi - lo), n)


def _input_grad_by_correlation(
    res: Conv2DResiduals, dy: np.ndarray
) -> tuple[np.ndarray, Phase | None]:
    """``dx`` of a stride-1 convolution (written once the returned phase has run): ``dy``
    correlated with the kernel flipped in space and transposed in channels, by :func:`_forward`
    (im2col over ``KH*KW*C_out`` columns and one GEMM per slab), so the column gradients are
    never scattered back tap by tap. Each ``dx`` entry is one dot product over ``(a, b, o)``;
    measured per image against the per-tap GEMMs and 25 strided adds: 15% faster in float32,
    23% in float64."""
    _, h, wd, _ = res.x.shape
    kh, kw = res.w.shape[:2]
    rows, ph = _flipped_axis(h, kh, res.dilations[0], res.plan[0])
    cols, pw = _flipped_axis(wd, kw, res.dilations[1], res.plan[1])
    wf = np.ascontiguousarray(res.w[::-1, ::-1].transpose(0, 1, 3, 2))  # (KH, KW, C_out, C_in)
    dx = np.empty(res.x.shape, res.w.dtype)
    corr = Conv2DResiduals(dy[:, rows, cols], wf, (1, 1), res.dilations, (ph, pw))
    return dx, _forward(corr, dx, None, res)


def _input_grad_phase(res: Conv2DResiduals, dy: np.ndarray) -> tuple[np.ndarray, Phase | None]:
    """``dx`` (written once the phase has run) and its phase: stride 1 (and more than one input
    channel) by :func:`_input_grad_by_correlation`; otherwise per slab the column gradients
    ``g @ w^T``, as one contiguous ``(rows, C_in)`` block per kernel tap (a batched GEMM;
    transposed layout: one 2-D GEMM whose rows are the taps), whose part that lands on the input
    is added into the strided view of ``dx`` it came from (never ``np.add.at``). Contiguous
    blocks measured 17% faster in float32 than one 2-D GEMM whose tap columns are read with a
    stride (equal in float64).
    A kernel holding NaN or inf takes the scatter too: the correlation multiplies every tap by
    ``dy``'s zero padding, and ``0 * nan`` would reach input pixels the tap never reads."""
    transposed = _transposed(res)
    if res.strides == (1, 1) and not transposed and np.isfinite(res.w).all():
        return _input_grad_by_correlation(res, dy)
    _, h, wd, cin = res.x.shape
    kh, kw, _, cout = res.w.shape
    (t, _, oh), (left, _, ow) = res.plan
    rows, cols = _runs(res, h, wd, (t, left))
    w2 = res.w.reshape(-1, cout)
    wt = res.w.reshape(kh * kw, cin, cout).transpose(0, 2, 1)  # (KH*KW, C_out, C_in)
    dx = np.empty(res.x.shape, res.w.dtype)
    slabs = _slabs(res)

    def run(a0: int, b0: int) -> None:
        scratch = _Scratch(res, slabs[0][1])
        if not transposed:  # the scratch's column buffer has the im2col layout
            shape = (kh * kw, slabs[0][1] * oh * ow, cin)
            what = f"column gradients for {slabs[0][1]} image(s)"
            blocks = _take(res, "direct-dx", shape, what)
        for lo, hi in slabs[a0:b0]:
            nb = hi - lo
            g = dy[lo:hi].reshape(-1, cout)
            dst = dx[lo:hi]
            dst.fill(0)
            if transposed:  # (KH, KW, C_in = 1, nb, OH, OW): rows of w2 @ g^T
                dcols = scratch.cols[:, :, :, :nb]
                np.matmul(w2, g.T, out=dcols.reshape(kh * kw * cin, -1))
                taps = dcols.reshape(kh, kw, cin, nb, oh, ow).transpose(0, 1, 3, 4, 5, 2)
            else:  # (KH*KW, rows, C_in)
                part = blocks[:, : len(g)]
                np.matmul(g[None], wt, out=part)
                taps = part.reshape(kh, kw, nb, oh, ow, cin)
            # Only the parts of each tap's run that land on the input: what lands on padding
            # is never read, so no padded slab is needed (the same sum, in the same tap order,
            # for every input pixel).
            for a, (ri, ro) in rows.items():
                for b, (ci, co) in cols.items():
                    dst[:, ri, ci, :] += taps[a, b][:, ro, co]
        if not transposed:
            give("direct-dx", blocks)
        scratch.release()

    return dx, (run, len(slabs), 1)


def conv2d_fwd(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    strides: Any = 1,
    padding: Any = "VALID",
    dilations: Any = 1,
    algorithm: str = "direct",
) -> tuple[np.ndarray, Conv2DResiduals | Conv2DDFTResiduals]:
    """Cross-correlation ``y[n,i,j,o] = sum_{a,b,c} xpad[n, i*sh + a*dh, j*sw + b*dw, c] w[a,b,c,o]``
    (``+ b[o]`` with a bias).

    Parameters
    ----------
    x : array, shape (N, H, W, C_in)
    w : array, shape (KH, KW, C_in, C_out), same dtype as ``x``
    b : array, shape (C_out,), optional
        A bias, as ``keras.layers.Conv2D(use_bias=True)`` or ``tf.nn.bias_add`` after the
        convolution: the same bits as adding it to the output afterwards, without the extra
        pass over memory (it is added to each slab while the slab is in cache). With a bias,
        :func:`conv2d_bwd` returns ``(dx, dw, db)`` and :func:`conv2d_bwd_filter` ``(dw, db)``.
    strides, dilations : int, [h, w] or [1, h, w, 1]
    padding : "SAME", "VALID" or [[0, 0], [top, bottom], [left, right], [0, 0]]
        ``SAME`` puts the odd extra pad bottom/right. ``VALID`` with a (dilated) kernel larger
        than the input gives an empty output, as TF. Padding is read as zeros, never
        materialized beyond what the im2col columns cost: ``padding`` 10**8 at ``strides``
        10**6, or SAME with ``dilations`` 10**9, costs what its output does. An output whose
        window reads padding only is ``sum 0 * w`` plus the bias: 0, but NaN in an output
        channel whose kernel holds NaN or inf (``0 * inf``), as TF.
    algorithm : "direct" (default), "dft" or "auto"
        ``"direct"`` sums the products window by window (im2col and GEMM): the reference.
        ``"dft"`` multiplies spectra (see Notes): fewer FLOPs with many channels, not exact.
        ``"auto"`` takes ``"dft"`` for stride-1 undilated convolutions whose estimated cost is
        lower (the seed CNN's conv2, on MNIST and on 8x8 digits at batch 128; not its
        one-channel conv1, nor convolutions of under 1e8 FLOPs), ``"direct"`` elsewhere.

    Returns
    -------
    y : array, shape (N, OH, OW, C_out)
    residuals : Conv2DResiduals or Conv2DDFTResiduals
        Holds ``x`` itself (not a copy) and ``w``; ``conv2d_bwd`` and ``conv2d_bwd_filter``
        use the algorithm the forward pass used.

    Notes
    -----
    VJP: ``dw[a,b,c,o] = sum xpad[n, i*sh + a*dh, j*sw + b*dw, c] g[n,i,j,o]`` and ``dx`` scatters
    ``g @ w^T`` back through the same windows (padding cropped). The kernel is not flipped.
    ``db[o] = sum g[n,i,j,o]``, summed slab by slab in a fixed order: the same bits on every
    algorithm and for any thread count.
    Differences from TF: grouped convolution (C_in a multiple of the kernel's) is refused.

    ``"direct"`` runs im2col and GEMM a slab of images at a time, slabs spread over
    ``NNREF_NUM_THREADS`` threads with BLAS held at one thread per GEMM (also with one thread:
    a multithreaded BLAS call rounds differently); every output entry is the same sum in the
    same order whatever the thread count, so results are bit-identical.

    ``"dft"`` (any strides, dilations and pads) transforms images, kernel and ``dy`` with
    small DFT matrices by GEMM, two images per complex transform, one GEMM per frequency over
    channels; its VJP is the exact adjoint of the same linear map. It agrees with
    ``"direct"`` to rounding (float32 ~1e-6, float64 ~1e-15 in the error measure of
    ``nnref.check.compare``, within ``ORACLE_RTOL``), with these differences:

    - an output whose window reads only zeros is exactly 0 (as are ``dx`` entries no non-zero
      ``dy`` reaches, and zero channels), but zeros by cancellation (a constant image under
      taps that sum to 0) are rounding noise, ~1e-7 (float32) of the image's scale, so a relu
      or max-pool downstream may decide differently there;
    - ties are not kept: outputs the direct sum makes equal (a constant image) differ by
      rounding, so max-pool's tie routing downstream may pick another cell;
    - each image (and each image's ``dy``) is scaled by a power of two before pairing, so its
      error follows its own magnitude, not its partner's; an image (or, for ``dx``, an
      image's ``dy``) beyond the scales' range, 2**+-60 in float32 and 2**+-500 in float64,
      sends the call to ``"direct"``;
    - a NaN or inf in ``x`` or ``w`` (or ``dy`` in backward) would spread over whole images:
      that call falls back to ``"direct"`` (residuals of the direct path), NaN stays local;
    - a transform longer along an axis than its input, output and kernel put end to end
      (padding, a stride or a dilation far beyond the input: the transforms would hold mostly
      padding) sends the call to ``"direct"``.

    An output (or, for ``"dft"``, transforms, forward's or backward's; for ``"direct"``, a
    slab's columns) that cannot be allocated raises MemoryError naming the arguments, the shape
    and the size. ``"dft"`` does not fall back to ``"direct"`` then: the results would depend
    on the memory free.

    Peak memory of ``"dft"``: the input's spectrum (kept as a residual), the output's and the
    kernel's and, in backward, ``dy``'s and ``dx``'s; each about ``Lh*Lw / (H*W)`` times its
    tensor (complex, two images per entry; the kernel's ``2*Lh*Lw / (KH*KW)``), ``L = H +
    max(pads)`` for SAME, plus about 1.5 MB of transform temporaries per thread. All but the
    residual are internal and kept between calls in a per-thread workspace (one buffer per
    role, the last call's shapes; fresh buffers each call cost more in first-write page faults
    than the GEMMs that fill them): two output-sized spectra, two kernel-sized (the kernel's
    spectrum, kept from a forward pass for its backward, and dw's per-frequency products) and
    one input-sized. Measured (tracemalloc) for the seed CNN's conv2, 128x14x14x32 -> 64,
    L = 16, float32: the workspace holds 29 MB (28 MiB; 21 MB until ``dy`` needs its second
    transform) per calling thread between calls; on top of it the forward pass keeps 10.6 MB
    (y 6.4 MB, the residual spectrum 4.2 MB; 13.7 MB at its peak) and the backward pass 3.4 MB
    (dx 3.2 MB; 5.2 MB at its peak). float64 twice that. The
    direct path keeps its slab buffers (padded slab, columns, a strided dx's blocks, a dw
    part) the same way in each thread that runs a slab range: 1.7 MiB per thread for conv2 in
    float32, 0.6 MiB for conv1 (~9,500 page faults per seed-CNN step without them).
    ``nnref._workspace.clear()`` releases the calling thread's buffers.

    See Also
    --------
    tf.nn.conv2d, tf.nn.convolution, keras.layers.Conv2D
    """
    x, w, s, d, plan = _setup(x, w, strides, padding, dilations)
    if b is not None:
        b = as_float("conv2d", "b", b)
        same_dtype("conv2d", x=x, b=b)
        require_bias("conv2d", b, "w", w, "(C_out,)")
    algorithm = _check_algorithm("conv2d", algorithm)
    res = Conv2DResiduals(x, w, s, d, plan, b is not None)
    y = _output(res)
    if y.size == 0:
        return y, res
    if algorithm == "dft" or (algorithm == "auto" and _dft_wins(x, w, s, d, plan)):
        try:
            spectra = _dftconv.forward(x, w, s, d, plan, y, b)
        except MemoryError as e:  # not a fallback: the bits would follow the memory free
            raise _dft_too_large(res, (algorithm, y)) from e
        if spectra is not None:
            return y, Conv2DDFTResiduals(x, w, s, d, plan, spectra, b is not None)
    _run(_forward(res, y, b))
    return y, res


def _dft_too_large(
    res: Conv2DResiduals | Conv2DDFTResiduals, forward: tuple[str, np.ndarray] | None = None
) -> MemoryError:
    """The DFT path's transforms could not be allocated: the forward's, with ``forward`` the
    user's ``algorithm`` and the output (allocated), or else the backward's (``res`` the
    forward's, which took the DFT path whether ``algorithm`` was "dft" or "auto")."""
    (n, h, w, c), (kh, kw, _, o) = res.x.shape, res.w.shape
    lh = _dftconv.transform_size(h, kh, res.strides[0], res.dilations[0], res.plan[0])
    lw = _dftconv.transform_size(w, kw, res.strides[1], res.dilations[1], res.plan[1])
    if forward is None:
        path, which = "the DFT path its forward pass took", "its backward transforms"
        of, spec = "dy's spectrum", (lh, lw, (n + 1) // 2, o)
        direct = "the backward of algorithm='direct' needs per-slab buffers besides the gradients"
    else:
        algorithm, y = forward
        path, which = f"algorithm={algorithm!r}", "its transforms"
        of, spec = "the input's spectrum", (lh, lw, (n + 1) // 2, c)
        direct = (
            f"algorithm='direct' needs the output ({_memory.size_str(y.nbytes)}, allocated) "
            "and per-slab buffers only"
        )
    cdt = np.result_type(res.x.dtype, np.complex64)
    return MemoryError(
        f"conv2d: {path} cannot allocate {which} for {_cause(res)}: "
        f"length {lh}x{lw}, {of} alone of shape {spec} ({cdt}, "
        f"{_memory.size_str(math.prod(spec) * cdt.itemsize)}); {direct}"
    )


def _cotangent(
    fn: str, res: Conv2DResiduals | Conv2DDFTResiduals, dy: Any, op: str = "conv2d"
) -> np.ndarray:
    """``dy`` checked against the output's shape and dtype (``fn``: the calling backward)."""
    check_residuals(fn, res, (Conv2DResiduals, Conv2DDFTResiduals), f"{op}_fwd")
    (_, _, oh), (_, _, ow) = res.plan
    shape = (res.x.shape[0], oh, ow, res.w.shape[3])
    return check_cotangent(op, dy, shape, res.w.dtype)


def _empty_output(res: Conv2DResiduals | Conv2DDFTResiduals) -> bool:
    return res.plan[0].out == 0 or res.plan[1].out == 0


def _param_grads(
    res: Conv2DResiduals | Conv2DDFTResiduals, dy: np.ndarray, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx or None, dw, db or None)`` by the forward pass's algorithm (``dy`` checked)."""
    if _empty_output(res):
        dx = np.zeros(res.x.shape, res.w.dtype) if need_dx else None
        db = np.zeros(res.w.shape[3], res.w.dtype) if res.with_bias else None
        return dx, np.zeros_like(res.w), db
    if isinstance(res, Conv2DDFTResiduals):
        # db beside dy's transform (one hand-off to the threads for both)
        bias, bias_sum = _bias_grad_phase(res, dy) if res.with_bias else (None, None)
        try:
            out = _dftconv.backward(
                res.x.shape, res.w, res.spectra, dy, need_dx, None if bias is None else [bias]
            )
        except MemoryError as e:  # not a fallback either, as in conv2d_fwd
            raise _dft_too_large(res) from e
        if out is not None:
            return out[0], out[1], None if bias_sum is None else bias_sum()
        # dy holds NaN or inf: the direct path keeps it local (the DFT path ran no phase)
        res = Conv2DResiduals(*res[:5], res.with_bias)
    # dx, dw and db in one hand-off to the threads: each thread runs its share of the three.
    phases, finish = _filter_grad_phases(res, dy, res.with_bias)
    dx = None
    if need_dx:
        dx, dx_phase = _input_grad_phase(res, dy)
        phases = [dx_phase, *phases]
    _run(*phases)
    dw, db = finish()
    return dx, dw, db


def conv2d_bwd(res: Conv2DResiduals | Conv2DDFTResiduals, dy: np.ndarray) -> tuple[np.ndarray, ...]:
    """VJP of :func:`conv2d`: ``(dx, dw)``, or ``(dx, dw, db)`` when the forward pass had a
    bias; by the forward pass's algorithm."""
    grads = _param_grads(res, _cotangent("conv2d_bwd", res, dy), need_dx=True)
    return tuple(g for g in grads if g is not None)


def conv2d_bwd_filter(
    res: Conv2DResiduals | Conv2DDFTResiduals, dy: np.ndarray
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``dw`` alone (``(dw, db)`` when the forward pass had a bias), as TF's
    ``conv2d_backprop_filter``: for a first layer, whose input needs no gradient (saves the
    ``dx`` GEMM and scatter)."""
    _, dw, db = _param_grads(res, _cotangent("conv2d_bwd_filter", res, dy), need_dx=False)
    return dw if db is None else (dw, db)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    strides: Any = 1,
    padding: Any = "VALID",
    dilations: Any = 1,
    algorithm: str = "direct",
) -> np.ndarray:
    """Forward value of :func:`conv2d_fwd` (``b`` and ``algorithm`` as there)."""
    return conv2d_fwd(
        x, w, b, strides=strides, padding=padding, dilations=dilations, algorithm=algorithm
    )[0]


# --------------------------------------------------------------------------- naive oracle


def _pixel(x: np.ndarray, plan: tuple[AxisPlan, AxisPlan], r: int, c: int) -> np.ndarray | None:
    """``xpad[:, r, c, :]`` (N, C_in) of the padded input, ``None`` in the padding (read as
    zeros, never materialized: a padding of 10**8 costs nothing)."""
    (t, _, _), (left, _, _) = plan
    if 0 <= r - t < x.shape[1] and 0 <= c - left < x.shape[2]:
        return x[:, r - t, c - left, :]
    return None


def conv2d_naive_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, Conv2DResiduals]:
    """Loop version of :func:`conv2d_fwd`: one explicit window per output position."""
    x, w, s, d, plan = _setup(x, w, strides, padding, dilations, "conv2d_naive")
    res = Conv2DResiduals(x, w, s, d, plan)
    kh, kw = w.shape[:2]
    zero = np.zeros((x.shape[0], x.shape[3]), x.dtype)
    y = _output(res, "conv2d_naive")
    y.fill(0)
    for i in range(plan[0].out):
        for j in range(plan[1].out):
            for a in range(kh):
                for b in range(kw):
                    pixel = _pixel(x, plan, i * s[0] + a * d[0], j * s[1] + b * d[1])
                    y[:, i, j, :] += (zero if pixel is None else pixel) @ w[a, b]
    return y, res


def conv2d_naive_bwd(res: Conv2DResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Loop version of :func:`conv2d_bwd`."""
    dy = _cotangent("conv2d_naive_bwd", res, dy, "conv2d_naive")
    x, w, s, d, plan = res[:5]
    (t, _, _), (left, _, _) = plan
    zero = np.zeros((x.shape[0], x.shape[3]), x.dtype)
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for i in range(plan[0].out):
        for j in range(plan[1].out):
            for a in range(w.shape[0]):
                for b in range(w.shape[1]):
                    r, c = i * s[0] + a * d[0], j * s[1] + b * d[1]
                    pixel = _pixel(x, plan, r, c)
                    dw[a, b] += (zero if pixel is None else pixel).T @ dy[:, i, j, :]
                    if pixel is not None:  # what lands on padding is dropped
                        dx[:, r - t, c - left, :] += dy[:, i, j, :] @ w[a, b].T
    return dx, dw


def conv2d_naive(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> np.ndarray:
    return conv2d_naive_fwd(x, w, strides=strides, padding=padding, dilations=dilations)[0]
