"""conv2d by discrete Fourier transforms done as GEMMs (``algorithm="dft"``), private.

Circular correlation of a length-``L`` signal turns into a product of spectra. Along one axis,
with the input unpadded at offsets ``[0, H)`` and zeros up to ``L``, the kernel tap ``a`` placed
at ``(a*d - t) mod L`` and output ``i`` read at ``i*s``, every product the convolution needs
lands on its own circular index, and every padded cell it reads maps into the zero tail, when

    L >= max(H + t, m_max + 1, (K - 1)*d + 1, (OH - 1)*s + 1),  m_max = (OH-1)*s + (K-1)*d - t

(the input index ``m = i*s + a*d - t`` spans ``[-t, m_max]``; negative ``m`` wraps to
``L + m >= H``, ``m >= H`` stays below ``L``; taps and outputs are distinct modulo ``L``). That
is ``H + max(pads)`` for SAME, not the padded extent. The 2-D transforms are small dense DFT
matrices applied by GEMM (they skip the zero tail and the cropped rows for free; NumPy's FFT is
single-threaded and slower at these sizes), two real images packed as one complex image
``z = x[2m] + i*x[2m+1]`` (the pair's full spectrum costs what two half-spectra cost), and one
GEMM per frequency over channels.

With ``X = DFT-(z)``, ``K[k] = sum_a w[a] exp(+2 pi i k (a*d - t)/L)``:

- forward: ``Y = X K`` per frequency, ``y = IDFT+(Y)`` at the outputs;
- ``dx``: dy packed with the pair swapped (``g = dy[2m+1] + i*dy[2m]``), ``G = DFT+(g)``,
  ``dx`` (swapped) ``= IDFT-(G K)``: the conjugations of the textbook formulas become plain
  GEMMs;
- ``dw``: ``dw[a] = Im IDFT+(sum_m X_m G_m)`` at the taps (the pair's cross terms are real).

Accuracy: each image is scaled by a power of two (exact) to max-abs below 1 before it is paired,
so an image's rounding error follows its own magnitude, not its partner's; likewise ``dy`` for
``dx``, with a second transform of ``dy`` when the pairs' ``dx`` magnitudes differ by more than
``_SHARE_RATIO`` (``dw`` needs the images' true weights, ``dx`` their own scales). An all-zero
image's ``dy`` gets weight 0 in ``dw``'s transform (its products with the partner image would
otherwise set ``dw``'s error floor), and its ``dx`` the second transform.

Workspace: the op's internal temporaries (output and ``dy`` spectra, per-frequency products,
the kernel spectrum, ``dx``'s spectrum: buffers that never leave the op) come from
:mod:`nnref._workspace`, taken in the calling thread and handed to the op's worker threads by
closure within one call. Five complex buffers (``_ROLES``): two of ``(Lh, Lw, ceil(N/2), O)``,
two of ``(Lh, Lw, C, O)`` and one of ``(Lh, Lw, ceil(N/2), C)``; the seed CNN's conv2 in
float32: 8 + 8 + 4 + 4 + 4 MiB = 28 MiB per calling thread (20 MiB until ``dy`` needs a second
transform). Nothing a caller receives (``y``, ``dx``, ``dw``, the residual spectrum) is in the
workspace; ``nnref._workspace.clear()`` releases the calling thread's buffers. The kernel's
spectrum stays in its buffer after the forward pass, and the backward pass of that same call
(its residuals, in the same thread, with no other DFT forward pass in between and ``w`` not
changed since) uses it instead of transforming ``w`` again (same bits; 0.7 ms of the seed CNN's
conv2 backward).

Exact zeros: an output whose window reads only zero pixels (an input pixel that no non-zero
``dy`` reaches, a kernel tap that meets no non-zero pixel where ``dy`` is non-zero) is set to
exactly 0, as the direct sum gives; whole zero channels of ``x``,
``w`` or ``dy`` give exact zeros in the spectra already. Zeros by cancellation are not kept.
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import NamedTuple

import numpy as np

from nnref._threads import ELEMENTWISE_MIN_CHUNK, Phase, parallel_for, parallel_gemm_phases
from nnref._workspace import give, take
from nnref.check.compare import same_bits
from nnref.ops._channels import add_bias
from nnref.ops._windows import AxisPlan

#: Pairs per work item of a transform: the chunk's temporaries take about this many bytes (at
#: most an eighth of the pairs a chunk). On an Intel Xeon (2 MiB L2 per core), against 512 KiB,
#: seed CNN conv2 fwd+dx+dw, interleaved: float32 0.92 (1-3 MiB alike), float64 0.92; the
#: composed fast step 0.96 [0.96-0.98] (15 alternating 5-step samples).
_CHUNK_BYTES = 3 << 19
#: dy's pairs share one transform for dx and dw while, within every pair, the larger image's
#: ``scale * max|dy|`` is at most this many times the smaller's (the smaller one's dx error then
#: grows at most this much: float32 ~1e-6 -> 8e-6 of ORACLE_RTOL's 2e-5, float64 ~2e-15 ->
#: 2.6e-13 of 1e-12); otherwise dx gets its own transform of dy normalised image by image.
#: Per-image dy scales of a real training step differ widely, so float32 usually takes two.
_SHARE_RATIO = {np.dtype(np.float32): 8.0, np.dtype(np.float64): 128.0}
#: Exponent range of the power-of-two scales: enough to bring any ordinary tensor to max-abs
#: near 1 while products of two scales stay finite in the dtype.
_MAX_EXP = {np.dtype(np.float32): 60, np.dtype(np.float64): 500}


#: The workspace's roles, one buffer each, named by the shape they hold (module docstring):
#: ``(Lh, Lw, C, O)`` the kernel spectrum (``kernel``: kept from a forward pass for its
#: backward, ``_KERNEL``) and backward's per-frequency products ``X^T G``; ``(Lh, Lw, M, O)``
#: the output spectrum, then ``dy``'s (``_2``: its second transform); ``(Lh, Lw, M, C)``
#: ``dx``'s spectrum. A role serves several phases, never two at once.
_ROLES = ("kernel", "per_channel", "per_image", "per_image_2", "per_input")

#: Per thread, what the workspace's ``kernel`` buffer holds: ``(token, buffer, w)``, the
#: :attr:`Spectra.kernel` token of the forward pass whose kernel spectrum it is, a weak
#: reference to the buffer (a cleared workspace's buffer, or a new one, is not it) and a copy of
#: the kernel it transformed (the residuals hold the caller's ``w``, which the caller may have
#: changed since: backward then transforms it again, as it did before it reused the spectrum);
#: None while the buffer is being written.
_KERNEL = threading.local()


class AxisDFT(NamedTuple):
    """The DFT matrices of one spatial axis (complex, the op's precision)."""

    L: int
    fx: np.ndarray  # (L, H)   exp(-2 pi i k m / L)              input -> spectrum
    iy: np.ndarray  # (OH, L)  exp(+2 pi i (i*s) k / L) / L        spectrum -> outputs
    fg: np.ndarray  # (L, OH)  exp(+2 pi i k (i*s) / L)            dy -> spectrum
    ix: np.ndarray  # (H, L)   exp(-2 pi i m k / L) / L           spectrum -> dx
    kf: np.ndarray  # (L, K)   exp(+2 pi i k (a*d - t) / L)        kernel taps -> spectrum
    iw: np.ndarray  # (K, L)   exp(+2 pi i (a*d - t) k / L) / L    spectrum -> dw taps


def transform_size(n: int, k: int, s: int, d: int, p: AxisPlan) -> int:
    """The smallest alias-free ``L`` (module docstring)."""
    m_max = (p.out - 1) * s + (k - 1) * d - p.before
    return max(n + p.before, m_max + 1, (k - 1) * d + 1, (p.out - 1) * s + 1, n)


def _dft(L: int, rows: np.ndarray, cols: np.ndarray, sign: int, scale: float) -> np.ndarray:
    """``exp(sign * 2 pi i * rows[:, None] * cols[None, :] / L) * scale``, in float64 with the
    product reduced modulo ``L`` in integers first (exact angles)."""
    ang = (2 * np.pi / L) * np.mod(np.multiply.outer(rows, cols), L)
    return np.exp(1j * sign * ang) * scale


@functools.lru_cache(maxsize=64)
def axis_dft(n: int, k: int, s: int, d: int, p: AxisPlan, dtype: np.dtype) -> AxisDFT:
    """DFT matrices of one axis, cached by shape (read-only constants)."""
    L = transform_size(n, k, s, d, p)
    freq = np.arange(L)
    data = np.arange(n)
    outs = np.arange(p.out) * s
    taps = np.arange(k) * d - p.before
    cdt = np.result_type(dtype, np.complex64)
    mats = [
        _dft(L, freq, data, -1, 1.0),
        _dft(L, outs, freq, +1, 1.0 / L),
        _dft(L, freq, outs, +1, 1.0),
        _dft(L, data, freq, -1, 1.0 / L),
        _dft(L, freq, taps, +1, 1.0),
        _dft(L, taps, freq, +1, 1.0 / L),
    ]
    out = []
    for m in mats:
        m = np.ascontiguousarray(m.astype(cdt))
        m.flags.writeable = False
        out.append(m)
    return AxisDFT(L, *out)


def pow2_scales(amax: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Powers of two ``>= amax`` (1 for zeros), exponents clipped to ``_MAX_EXP``."""
    _, e = np.frexp(amax.astype(np.float64))
    e = np.clip(np.where(amax > 0, e, 0), -_MAX_EXP[dtype], _MAX_EXP[dtype])
    return np.ldexp(1.0, e).astype(dtype)


def scales_in_range(amax: np.ndarray, dtype: np.dtype) -> bool:
    """Whether every non-zero ``amax`` has its power of two within ``_MAX_EXP`` (not clipped).
    A clipped scale leaves that image far from max-abs 1 beside its partner (float32: an image
    of 1e-25 beside one of 1 came out of the transforms with 40% error), so the caller falls
    back to the direct path."""
    _, e = np.frexp(amax[amax > 0].astype(np.float64))
    return bool(np.all(np.abs(e) <= _MAX_EXP[dtype]))


def image_amax(a: np.ndarray) -> np.ndarray:
    """``max |a[n]|`` per image, (N,) (NaN where the image has a NaN). Whole-image ``max`` and
    ``min`` are contiguous reductions, several times faster than per-pixel ones over channels;
    the images split over the threads (``ELEMENTWISE_MIN_CHUNK`` elements at least a thread)."""
    flat = a.reshape(a.shape[0], -1)
    out = np.empty(len(flat), a.dtype)

    def run(lo: int, hi: int) -> None:
        np.maximum(flat[lo:hi].max(axis=1), -flat[lo:hi].min(axis=1), out=out[lo:hi])

    parallel_for(run, len(flat), min_chunk=max(1, ELEMENTWISE_MIN_CHUNK // max(flat.shape[1], 1)))
    return out


def pixel_support(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(N, H, W): whether pixel ``a[n, h, w, :]`` has a non-zero channel (``a`` finite); into
    ``out`` if given (the transforms' workers fill it chunk by chunk, while the chunk is in
    cache).

    ``+0`` and ``-0`` are the only floats with no bit set but the sign: OR the channels' bit
    patterns and drop the sign, without the full-size boolean temporary of ``a != 0`` (whose
    fresh pages cost more than the comparison)."""
    bits = np.dtype(f"u{a.itemsize}")
    sign = bits.type(1 << (8 * a.itemsize - 1))
    return np.not_equal(np.bitwise_or.reduce(a.view(bits), axis=3) & ~sign, 0, out=out)


def _taps(k: int, s: int, d: int, out: int) -> list[slice]:
    """Per kernel tap, the padded positions it reads for outputs ``0..out-1``."""
    return [slice(a * d, a * d + (out - 1) * s + 1, s) for a in range(k)]


def reads_nonzero(
    support: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], plan
) -> np.ndarray:
    """(N, OH, OW): whether output ``(i, j)``'s window reads any non-zero input pixel, from
    ``support`` (N, H, W) (the direct sum of a window of zeros is exactly 0)."""
    n, h, w = support.shape
    (t, b, oh), (left, r, ow) = plan
    sp = np.zeros((n, h + t + b, w + left + r), bool)
    sp[:, t : t + h, left : left + w] = support
    rows = np.zeros((n, h + t + b, ow), bool)
    for sj in _taps(k[1], s[1], d[1], ow):
        rows |= sp[:, :, sj]
    out = np.zeros((n, oh, ow), bool)
    for si in _taps(k[0], s[0], d[0], oh):
        out |= rows[:, si, :]
    return out


def _real_taps(k: int, s: int, d: int, before: int, n: int, out: int) -> np.ndarray:
    """(k,): whether tap ``a`` reads an input position (not padding) for some output."""
    pos = np.arange(k)[:, None] * d + np.arange(out)[None, :] * s
    return np.any((pos >= before) & (pos < before + n), axis=1)


def taps_reading_nonzero(
    support: np.ndarray,
    dy_support: np.ndarray,
    k: tuple[int, int],
    s: tuple[int, int],
    d: tuple[int, int],
    plan: tuple[AxisPlan, AxisPlan],
) -> np.ndarray:
    """(KH, KW): whether kernel tap ``(a, b)`` reads a non-zero input pixel at an output whose
    ``dy`` is non-zero somewhere, from ``support`` (N, H, W) and ``dy_support`` (N, OH, OW)
    (else its ``dw`` is a sum of zero products: exactly 0 by the direct path)."""
    n, h, w = support.shape
    (t, b, oh), (left, r, ow) = plan
    if support.all() and dy_support.all():  # the common case: the geometry alone decides
        return np.outer(
            _real_taps(k[0], s[0], d[0], t, h, oh), _real_taps(k[1], s[1], d[1], left, w, ow)
        )
    sp = np.zeros((n, h + t + b, w + left + r), bool)
    sp[:, t : t + h, left : left + w] = support
    out = np.zeros(k, bool)
    for a, si in enumerate(_taps(k[0], s[0], d[0], oh)):
        for c, sj in enumerate(_taps(k[1], s[1], d[1], ow)):
            out[a, c] = np.any(sp[:, si, sj] & dy_support)
    return out


def reached_by_nonzero(
    support: np.ndarray, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], plan, hw
) -> np.ndarray:
    """(N, H, W): whether input pixel ``(m, q)`` lies in the window of any output whose ``dy``
    is non-zero somewhere, from ``support`` (N, OH, OW) (else its ``dx`` is exactly 0)."""
    n, oh, ow = support.shape
    (t, b, _), (left, r, _) = plan
    h, w = hw
    cols = np.zeros((n, oh, w + left + r), bool)
    for sj in _taps(k[1], s[1], d[1], ow):
        cols[:, :, sj] |= support
    out = np.zeros((n, h + t + b, w + left + r), bool)
    for si in _taps(k[0], s[0], d[0], oh):
        out[:, si, :] |= cols
    return out[:, t : t + h, left : left + w]


#: Columns per work item of the kernel transforms (fixed, so the bits do not depend on threads).
_COLUMN_BLOCK = 256


def _column_blocks(cols: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + _COLUMN_BLOCK, cols)) for lo in range(0, cols, _COLUMN_BLOCK)]


def _chunks(pairs: int, per_pair: int) -> list[tuple[int, int]]:
    step = max(1, min(_CHUNK_BYTES // max(per_pair, 1), -(-pairs // 8)))
    return [(lo, min(lo + step, pairs)) for lo in range(0, pairs, step)]


def _pack(a: np.ndarray, inv: np.ndarray, m0: int, m1: int, z: np.ndarray, swap: bool) -> None:
    """``z[h, w, m - m0, c] = a[2m, h, w, c] inv[2m] + i a[2m+1, h, w, c] inv[2m+1]`` (``swap``:
    the two images exchanged); a missing last partner is zero. ``z`` is (H, W, m1-m0, C)."""
    n = a.shape[0]
    zr = z.view(z.real.dtype).reshape(*z.shape, 2)
    for part, first in ((1, 0), (0, 1)) if swap else ((0, 0), (1, 1)):
        lo, hi = 2 * m0 + first, min(2 * m1, n)
        src = a[lo:hi:2]
        dst = zr[:, :, : len(src), :, part]
        np.multiply(src.transpose(1, 2, 0, 3), inv[lo:hi:2, None], out=dst)
        if len(src) < m1 - m0:
            zr[:, :, len(src) :, :, part] = 0


def _unpack(z: np.ndarray, scale: np.ndarray, m0: int, m1: int, out: np.ndarray, swap: bool):
    """Inverse of :func:`_pack`: ``out[2m] = Re z * scale[2m]``, ``out[2m+1] = Im z * ...``."""
    n = out.shape[0]
    zr = z.view(z.real.dtype).reshape(*z.shape, 2)
    for part, first in ((1, 0), (0, 1)) if swap else ((0, 0), (1, 1)):
        lo, hi = 2 * m0 + first, min(2 * m1, n)
        k = len(range(lo, hi, 2))
        np.multiply(
            zr[:, :, :k, :, part].transpose(2, 0, 1, 3),
            scale[lo:hi:2, None, None, None],
            out=out[lo:hi:2],
        )


def _forward_2d(ah: np.ndarray, aw: np.ndarray, z: np.ndarray, out: np.ndarray) -> None:
    """``out[p, q, r] = sum_{h, w} ah[p, h] aw[q, w] z[h, w, r]``: one GEMM over rows, then one
    per transformed row. ``z`` (H, W, R) contiguous; ``out`` (P, Q, R) may be a column slice."""
    h, w, r = z.shape
    t1 = np.matmul(ah, z.reshape(h, w * r)).reshape(ah.shape[0], w, r)
    np.matmul(aw, t1, out=out)


def _inverse_2d(bh: np.ndarray, bw: np.ndarray, spec: np.ndarray, out: np.ndarray) -> None:
    """``out[i, j, r] = sum_{p, q} bh[i, p] bw[j, q] spec[p, q, r]``: one GEMM per spectrum row,
    then one over rows. ``spec`` (P, Q, R) may be a column slice; ``out`` (I, J, R) contiguous."""
    u1 = np.matmul(bw, spec)  # (P, J, R)
    np.matmul(bh, u1.reshape(spec.shape[0], -1), out=out.reshape(bh.shape[0], -1))


class Spectra(NamedTuple):
    """What the forward pass keeps for backward."""

    spec: np.ndarray  # (Lh, Lw, M, C): transform of the packed, per-image scaled input
    scale: np.ndarray  # (N,): the input's per-image powers of two
    # (N,): dy_n's multiplier in dw's transform: scale_n, or 0 for an all-zero image, which adds
    # nothing to dw; at any other weight its dy's products with the partner image (which cancel
    # only to rounding) would set dw's error floor (x = [3e-50], [0] gave dw 4e-17 for 0).
    dw_weight: np.ndarray
    wscale: np.ndarray  # (): the kernel's power of two
    axes: tuple[AxisDFT, AxisDFT]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    plan: tuple[AxisPlan, AxisPlan]
    support: np.ndarray  # (N, H, W): the input's non-zero pixels (pixel_support)
    kernel: object  # this forward pass's token for its kernel spectrum (_KERNEL)


def _kernel_spectrum(
    w: np.ndarray,
    axes: tuple[AxisDFT, AxisDFT],
    wscale,
    token: object,
    beside: list[Phase] | None = None,
) -> np.ndarray:
    """``K[p, q] = sum_{a, b} kf_h[p, a] kf_w[q, b] w[a, b] / wscale``, one axis at a time (a
    quarter of the FLOPs of one GEMM by the ``(Lh Lw, KH KW)`` Kronecker matrix), in the
    workspace's ``"kernel"`` buffer (the caller gives it back), for the forward pass of
    ``token``. The buffer already holds it when the last kernel spectrum written in this thread
    was that forward pass's (its backward, next): not transformed again. Not kept as a
    residual: every forward would hand the caller a fresh multi-megabyte array. ``beside``:
    independent phases run with the transform (or alone where it is not needed)."""
    kh, kw, c, o = w.shape
    ah, aw = axes
    kspec = take("kernel", (ah.L, aw.L, c, o), ah.kf.dtype)
    last = getattr(_KERNEL, "last", None)
    if (
        last is not None
        and last[0] is token
        and last[1]() is kspec
        and last[2].shape == w.shape
        and np.all(same_bits(w, last[2]))  # a zero's sign counts
    ):
        parallel_gemm_phases(beside or [])
        return kspec
    _KERNEL.last = None  # until the buffer holds the whole spectrum
    wf = w.reshape(kh, kw, c * o)
    out = kspec.reshape(ah.L, aw.L, c * o)
    blocks = _column_blocks(c * o)

    def run(lo: int, hi: int) -> None:
        for c0, c1 in blocks[lo:hi]:
            block = (wf[:, :, c0:c1] / wscale).astype(out.dtype)
            _forward_2d(ah.kf, aw.kf, block, out[:, :, c0:c1])

    # Single-threaded GEMMs over blocks, like every other GEMM here: a multithreaded BLAS call
    # on a shared machine can stall on a busy core.
    parallel_gemm_phases([(run, len(blocks), 1), *(beside or [])])
    _KERNEL.last = (token, weakref.ref(kspec), w.copy())
    return kspec


def fits(n: int, k: int, s: int, d: int, p: AxisPlan) -> bool:
    """Whether one axis's transform is no longer than its input, output and kernel put end to
    end (``L <= n + out + k``). ``L`` spans the strided outputs, the dilated taps and the pad
    before the input, so it is longer only where these reach beyond the input by more than
    the counts of outputs and taps (a 1-row input padded 5 rows after at stride 3 and
    dilation 2; ``padding`` 10**8 at stride 10**6, ``L`` = 2*10**8 + 1 for 5 pixels and 201
    outputs): the transforms would multiply mostly padding, and could exceed any memory."""
    return transform_size(n, k, s, d, p) <= n + p.out + k


def forward(
    x: np.ndarray,
    w: np.ndarray,
    strides: tuple[int, int],
    dilations: tuple[int, int],
    plan: tuple[AxisPlan, AxisPlan],
    y: np.ndarray,
    bias: np.ndarray | None = None,
) -> Spectra | None:
    """``conv2d_fwd`` by DFT (plus ``bias``) into ``y`` (N, OH, OW, O); ``None``, ``y``
    untouched, when ``x`` or ``w`` is not finite (the caller falls back to the direct path: a
    transform would spread one NaN over two whole images), when an image's magnitude is beyond
    the scales' range (``scales_in_range``) or when an axis's transform does not :func:`fits`."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    if not (
        fits(h, kh, strides[0], dilations[0], plan[0])
        and fits(wd, kw, strides[1], dilations[1], plan[1])
    ):
        return None
    amax = image_amax(x)
    wmax = np.max(np.abs(w))
    dt = x.dtype
    if not (np.isfinite(amax).all() and np.isfinite(wmax) and scales_in_range(amax, dt)):
        return None
    scale = pow2_scales(amax, dt)
    wscale = pow2_scales(np.asarray(wmax), dt)
    axes = (
        axis_dft(h, kh, strides[0], dilations[0], plan[0], dt),
        axis_dft(wd, kw, strides[1], dilations[1], plan[1], dt),
    )
    ah, aw = axes
    oh, ow = plan[0].out, plan[1].out
    cdt = ah.fx.dtype
    m = (n + 1) // 2
    inv = (1 / scale.astype(np.float64)).astype(dt)
    spec = np.empty((ah.L, aw.L, m, c), cdt)
    token = object()
    yscale = scale * wscale
    chunks = _chunks(m, h * wd * c * cdt.itemsize + ah.L * wd * c * cdt.itemsize)

    # A window of zeros sums to exactly 0 by the direct path: the non-zero pixels, found by
    # each chunk while it is in cache.
    support = np.empty((n, h, wd), bool)

    def transform_in(a: int, b: int) -> None:
        for m0, m1 in chunks[a:b]:
            lo, hi = 2 * m0, min(2 * m1, n)
            pixel_support(x[lo:hi], out=support[lo:hi])
            z = np.empty((h, wd, m1 - m0, c), cdt)
            _pack(x, inv, m0, m1, z, swap=False)
            _forward_2d(
                ah.fx, aw.fx, z.reshape(h, wd, -1), spec[:, :, m0:m1].reshape(ah.L, aw.L, -1)
            )

    # The input's transform beside the kernel's (one hand-off to the threads for both).
    kspec = _kernel_spectrum(w, axes, wscale, token, [(transform_in, len(chunks), 1)])
    ys = take("per_image", (ah.L, aw.L, m, o), cdt)
    parallel_gemm_phases([_per_frequency(spec, kspec, ys)])
    give("kernel", kspec)
    chunks = _chunks(m, oh * ow * o * cdt.itemsize + ah.L * ow * o * cdt.itemsize)
    # The transforms leave rounding (the image's own and its partner's) in windows of zeros:
    # each chunk restores their zeros (then adds the bias: the direct path's bits there too)
    # while it is in cache.
    dead = ~reads_nonzero(support, (kh, kw), strides, dilations, plan)

    def transform_out(a: int, b: int) -> None:
        for m0, m1 in chunks[a:b]:
            z = np.empty((oh, ow, m1 - m0, o), cdt)
            _inverse_2d(
                ah.iy, aw.iy, ys[:, :, m0:m1].reshape(ah.L, aw.L, -1), z.reshape(oh, ow, -1)
            )
            _unpack(z, yscale, m0, m1, y, swap=False)
            lo, hi = 2 * m0, min(2 * m1, n)
            y[lo:hi][dead[lo:hi]] = 0
            if bias is not None:
                add_bias(y[lo:hi], bias)

    parallel_gemm_phases([(transform_out, len(chunks), 1)])
    give("per_image", ys)
    dw_weight = np.where(amax > 0, scale, 0).astype(dt)
    return Spectra(spec, scale, dw_weight, wscale, axes, strides, dilations, plan, support, token)


def _per_frequency(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, *, transpose_a: bool = False
) -> Phase:
    """The phase of ``out[f] = a[f] @ b[f]`` (or ``a[f].T @ b[f]``) over the flattened
    frequencies, split over the threads by frequency (independent GEMMs, disjoint outputs)."""
    f = a.shape[0] * a.shape[1]
    a2 = a.reshape(f, *a.shape[2:])
    b2 = b.reshape(f, *b.shape[2:])
    o2 = out.reshape(f, *out.shape[2:])
    if transpose_a:
        a2 = a2.transpose(0, 2, 1)

    def run(lo: int, hi: int) -> None:
        np.matmul(a2[lo:hi], b2[lo:hi], out=o2[lo:hi])

    return run, f, 16


def _filter_taps(
    axes: tuple[AxisDFT, AxisDFT], p: np.ndarray, k: tuple[int, int], dt: np.dtype
) -> tuple[np.ndarray, Phase]:
    """``dw`` (written once the phase has run) from its per-frequency products ``P[f] = X[f]^T
    G[f]`` (C, O): the inverse at the kernel taps, whose Im is dw's sum."""
    ah, aw = axes
    _, _, c, o = p.shape
    pf = p.reshape(ah.L, aw.L, c * o)
    dw = np.empty((*k, c * o), dt)
    blocks = _column_blocks(c * o)

    def run(lo: int, hi: int) -> None:
        for c0, c1 in blocks[lo:hi]:
            r = np.empty((*k, c1 - c0), p.dtype)
            _inverse_2d(ah.iw, aw.iw, pf[:, :, c0:c1], r)
            dw[:, :, c0:c1] = r.imag

    return dw.reshape(*k, c, o), (run, len(blocks), 1)


def backward(
    x_shape: tuple[int, ...],
    w: np.ndarray,
    sp: Spectra,
    dy: np.ndarray,
    need_dx: bool,
    beside: list[Phase] | None = None,
) -> tuple[np.ndarray | None, np.ndarray] | None:
    """``(dx, dw)`` (``dx`` None unless ``need_dx``); ``None`` when ``dy`` is not finite, or when
    ``dx`` needs ``dy`` normalised image by image and an image's ``dy`` is beyond the scales'
    range (``scales_in_range``). ``w`` is the forward's kernel (``dx`` uses the spectrum the
    forward pass left in the workspace, or transforms ``w`` again: :func:`_kernel_spectrum`).
    ``beside``: phases that only read ``dy`` (the bias gradient), run with ``dy``'s transform
    (not run when the result is None).

    Three hand-offs to the threads (each costs ~0.1-0.25 ms where idle vCPUs halt): ``dy``'s
    transform; ``dw``'s and ``dx``'s per-frequency products; ``dw``'s inverse at the taps and
    ``dx``'s at the input rows."""
    n, h, wd, c = x_shape
    _, oh, ow, o = dy.shape
    ah, aw = sp.axes
    kh, kw = ah.kf.shape[1], aw.kf.shape[1]
    dt = dy.dtype
    cdt = ah.fx.dtype
    m = (n + 1) // 2
    amax = image_amax(dy)
    if not np.isfinite(amax).all():
        return None
    # dw = sum_n x_n * dy_n and the spectrum holds x_n / scale_n: dy_n is packed times scale_n
    # (a power of two: exact), so every image keeps its true weight in the sum (an all-zero
    # image weight 0: Spectra.dw_weight).
    weight = amax.astype(np.float64) * sp.dw_weight
    own = None  # dy_n / its own power of two, for dx, when pairs differ too much in weight
    if need_dx:
        a, b = weight[0 : 2 * (n // 2) : 2], weight[1::2]
        # dy times the images' scales can also fall out of range on its own: a tiny image
        # (scale clipped at 2**-_MAX_EXP) times a tiny dy underflowed (x and dy 2.6e-193 gave
        # dx 0 for 2.6e-193), while dx = dy w needs only dy's own magnitude. An all-zero image
        # with a non-zero dy (weight 0) needs its own transform too.
        tiny = (amax > 0) & (weight < 2.0 ** -_MAX_EXP[dt])
        if tiny.any() or not np.all(np.maximum(a, b) <= _SHARE_RATIO[dt] * np.minimum(a, b)):
            if not scales_in_range(amax, dt):
                return None
            own = pow2_scales(amax, dt)
    streams = [(sp.dw_weight, take("per_image", (ah.L, aw.L, m, o), cdt))]
    if own is not None:
        own_g = take("per_image_2", (ah.L, aw.L, m, o), cdt)
        streams.append(((1 / own.astype(np.float64)).astype(dt), own_g))
    chunks = _chunks(m, oh * ow * o * cdt.itemsize + ah.L * ow * o * cdt.itemsize)

    dy_support = np.empty((n, oh, ow), bool)

    def transform_dy(lo: int, hi: int) -> None:
        for m0, m1 in chunks[lo:hi]:
            pixel_support(dy[2 * m0 : min(2 * m1, n)], out=dy_support[2 * m0 : min(2 * m1, n)])
            z = np.empty((oh, ow, m1 - m0, o), cdt)
            for mult, dst in streams:
                _pack(dy, mult, m0, m1, z, swap=True)
                out = dst[:, :, m0:m1].reshape(ah.L, aw.L, -1)
                _forward_2d(ah.fg, aw.fg, z.reshape(oh, ow, -1), out)

    parallel_gemm_phases([(transform_dy, len(chunks), 1), *(beside or [])])
    # dw's products P[f] = X[f]^T G[f] (C, O) and dx's DX[f] = G[f] K[f]^T (M, C).
    products = []
    if need_dx:
        g = streams[-1][1]
        kspec = _kernel_spectrum(w, sp.axes, sp.wscale, sp.kernel)
        dxs = take("per_input", (ah.L, aw.L, m, c), cdt)
        products.append(_per_frequency(g, kspec.transpose(0, 1, 3, 2), dxs))
    p = take("per_channel", (ah.L, aw.L, c, o), cdt)
    products.append(_per_frequency(sp.spec, streams[0][1], p, transpose_a=True))
    parallel_gemm_phases(products)
    give("per_image", streams[0][1])
    if own is not None:
        give("per_image_2", own_g)
    # dw's inverse at the taps, dx's at the input rows (pairs swapped).
    dw, taps = _filter_taps(sp.axes, p, (kh, kw), dt)
    inverses = [taps]
    if need_dx:
        give("kernel", kspec)
        back = own.astype(np.float64) if own is not None else 1 / sp.scale.astype(np.float64)
        back = (back * np.float64(sp.wscale)).astype(dt)
        dx = np.empty(x_shape, dt)
        chunks = _chunks(m, h * wd * c * cdt.itemsize + ah.L * wd * c * cdt.itemsize)

        def transform_dx(lo: int, hi: int) -> None:
            for m0, m1 in chunks[lo:hi]:
                z = np.empty((h, wd, m1 - m0, c), cdt)
                spec = dxs[:, :, m0:m1].reshape(ah.L, aw.L, -1)
                _inverse_2d(ah.ix, aw.ix, spec, z.reshape(h, wd, -1))
                _unpack(z, back, m0, m1, dx, swap=True)

        inverses.append((transform_dx, len(chunks), 1))
    parallel_gemm_phases(inverses)
    give("per_channel", p)
    # Taps whose windows meet no non-zero pixel where dy is non-zero (padding alone, as when
    # a stride skips every real row) get the transforms' rounding: exactly 0, as direct.
    dw[
        ~taps_reading_nonzero(sp.support, dy_support, (kh, kw), sp.strides, sp.dilations, sp.plan)
    ] = 0
    if not need_dx:
        return None, dw
    give("per_input", dxs)
    live = reached_by_nonzero(dy_support, (kh, kw), sp.strides, sp.dilations, sp.plan, (h, wd))
    dx[~live] = 0  # input pixels no non-zero dy reaches: exactly 0, as direct
    return dx, dw
