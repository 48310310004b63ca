"""conv2d(algorithm="dft"): every conv case of ``nnref.verify`` against finite differences, TF
and Keras; agreement with the direct path over the shape table; the documented semantic
differences (exact zeros, ties) pinned; NaN fallback, per-image accuracy, "auto", bad input."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np
import pytest

import nnref
from nnref import _workspace
from nnref.cases import DTYPES, TABLES, make_case, seed_for
from nnref.check import check_vjp
from nnref.check.compare import ORACLE_RTOL, assert_close, max_rel_error
from nnref.ops import _dftconv
from nnref.ops.conv import Conv2DDFTResiduals, Conv2DResiduals
from nnref.verify import leg_function

SPEC = TABLES["conv2d"]
DT = [pytest.param(d, id=d.name) for d in DTYPES]
VERIFY_CASES = [c.id for c in SPEC.cases]


def _dft(static: dict) -> dict:
    return {**static, "algorithm": "dft"}


@pytest.mark.parametrize("case", VERIFY_CASES)
@pytest.mark.parametrize("dtype", DT)
def test_dft_vjp_matches_finite_differences(case: str, dtype) -> None:
    args, static, _ = make_case("conv2d", case, dtype, "fd")
    y, res = nnref.conv2d_fwd(*args, **_dft(static))
    if y.size:
        assert isinstance(res, Conv2DDFTResiduals)
    r = check_vjp(
        nnref.conv2d_fwd,
        nnref.conv2d_bwd,
        args,
        static=_dft(static),
        names=SPEC.names,
        seed=seed_for("conv2d", case, "fd", "dft"),
        raise_on_failure=False,
    )
    assert r.ok, r.message()


@pytest.mark.tf
@pytest.mark.parametrize("case", VERIFY_CASES)
@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("leg", ["tf", "keras"])
def test_dft_forward_and_vjp_match_tensorflow(case: str, dtype, leg: str) -> None:
    dt = np.dtype(dtype)
    args, static, rng = make_case("conv2d", case, dt, leg)
    y, res = nnref.conv2d_fwd(*args, **_dft(static))
    dy = rng.standard_normal(y.shape).astype(dt)
    dx, dw = nnref.conv2d_bwd(res, dy)
    y_ref, (dx_ref, dw_ref) = leg_function("conv2d", leg)(args, static, dy)
    for qty, a, r in (("y", y, y_ref), ("dx", dx, dx_ref), ("dw", dw, dw_ref)):
        r = np.asarray(r)
        assert_close(a, r, rtol=ORACLE_RTOL[dt.name], what=f"conv2d dft {case} {dt.name} {qty}")


EXPLICIT = [[0, 0], [1, 2], [0, 1], [0, 0]]
SHAPES = [
    pytest.param(h, w, kh, kw, s, d, pad, n, id=f"n{n}-{h}x{w}-k{kh}x{kw}-s{s}-d{d}-{tag}")
    for (h, w, kh, kw, s, d, (tag, pad)), n in zip(
        itertools.product(
            [5, 6],
            [4, 7],
            [1, 3],
            [2, 3],
            [1, 2],
            [1, 2],
            [("SAME", "SAME"), ("VALID", "VALID"), ("explicit", EXPLICIT)],
        ),
        itertools.cycle([1, 2, 3]),
        strict=False,
    )
    if not (d > 1 and s > 1)
]


@pytest.mark.parametrize(("h", "w", "kh", "kw", "s", "d", "pad", "n"), SHAPES)
def test_dft_matches_direct(h, w, kh, kw, s, d, pad, n, rng) -> None:
    """Odd and even batches (a last image without a partner), every pad form, strides and
    dilations through the DFT matrices' index sets; float64 within the oracle tolerance."""
    x = rng.standard_normal((n, h, w, 3))
    k = rng.standard_normal((kh, kw, 3, 2))
    st = {"strides": s, "padding": pad, "dilations": d}
    y, res = nnref.conv2d_fwd(x, k, **st)
    yf, resf = nnref.conv2d_fwd(x, k, **st, algorithm="dft")
    assert yf.shape == y.shape
    if y.size == 0:
        return
    assert isinstance(resf, Conv2DDFTResiduals)
    dy = rng.standard_normal(y.shape)
    dx, dw = nnref.conv2d_bwd(res, dy)
    dxf, dwf = nnref.conv2d_bwd(resf, dy)
    for a, b, what in ((yf, y, "y"), (dxf, dx, "dx"), (dwf, dw, "dw")):
        assert_close(a, b, rtol=1e-12, what=what)
    np.testing.assert_array_equal(nnref.conv2d_bwd_filter(resf, dy), dwf)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_dtype_kept_and_plain_forward_takes_the_keyword(dt, rng) -> None:
    x = rng.standard_normal((3, 8, 8, 4)).astype(dt)
    k = rng.standard_normal((3, 3, 4, 5)).astype(dt)
    y, res = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    dx, dw = nnref.conv2d_bwd(res, rng.standard_normal(y.shape).astype(dt))
    assert (y.dtype, dx.dtype, dw.dtype) == (dt, dt, dt)
    np.testing.assert_array_equal(nnref.conv2d(x, k, padding="SAME", algorithm="dft"), y)


def _per_image_error(a: np.ndarray, b: np.ndarray) -> float:
    return max(max_rel_error(a[i], b[i])[0] for i in range(len(a)))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_one_image_magnitude_does_not_spoil_its_partner(dt, rng) -> None:
    """Images 0 and 1 share a complex transform; image 0 is 1e4 times larger, and in backward
    image 1's dy is 1e4 times smaller. Each image's y and dx must be accurate on its own scale
    (without per-image scaling image 1's y error is ~3e-3 in float32; with one shared
    transform of dy, image 1's dx error is ~1e8 times the rounding)."""
    x = rng.standard_normal((4, 10, 10, 6)).astype(dt)
    x[0] *= 1e4
    k = rng.standard_normal((5, 5, 6, 4)).astype(dt)
    y, res = nnref.conv2d_fwd(x, k, padding="SAME")
    yf, resf = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    dy = rng.standard_normal(y.shape).astype(dt)
    dy[1] *= 1e-4
    dx, dw = nnref.conv2d_bwd(res, dy)
    dxf, dwf = nnref.conv2d_bwd(resf, dy)
    tol = ORACLE_RTOL[np.dtype(dt).name]
    assert _per_image_error(yf, y) <= tol
    assert _per_image_error(dxf, dx) <= tol
    assert_close(dwf, dw, rtol=tol, what="dw")


@pytest.mark.parametrize(
    ("dt", "small", "large"), [(np.float32, 1e-25, 1e20), (np.float64, 1e-170, 1e160)]
)
def test_image_beyond_the_scales_range_does_not_lose_accuracy(dt, small, large, rng) -> None:
    """The per-image powers of two are clipped at 2**-60..2**60 (float32; 2**-500..2**500 in
    float64), so products of two scales stay finite. An image (or an image's dy) beyond that
    range stayed far from its partner's magnitude in the shared transform: an image of 1e-25
    beside ordinary ones had y error 0.4 in float32, a dy of 1e20 gave its partner a dx error
    of 6e-5. Such calls take the direct path."""
    x = rng.standard_normal((4, 8, 8, 4)).astype(dt)
    x[0] *= small
    k = rng.standard_normal((3, 3, 4, 4)).astype(dt)
    y, res = nnref.conv2d_fwd(x, k, padding="SAME")
    yf, _ = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    tol = ORACLE_RTOL[np.dtype(dt).name]
    assert _per_image_error(yf, y) <= tol
    x[0] /= small
    y, res = nnref.conv2d_fwd(x, k, padding="SAME")
    _, resf = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    assert isinstance(resf, Conv2DDFTResiduals)
    dy = rng.standard_normal(y.shape).astype(dt)
    dy[1] *= large
    dx, dw = nnref.conv2d_bwd(res, dy)
    dxf, dwf = nnref.conv2d_bwd(resf, dy)
    assert _per_image_error(dxf, dx) <= tol
    assert_close(dwf, dw, rtol=tol, what="dw")


def test_dy_of_similar_scales_shares_one_transform(rng, monkeypatch) -> None:
    """Within ``_SHARE_RATIO`` (float64: 128) one transform of dy serves dx and dw; beyond it
    dx gets its own (counted through the packing calls: one per chunk and stream)."""
    x = rng.standard_normal((4, 6, 6, 2))
    k = rng.standard_normal((3, 3, 2, 3))
    _, res = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    dy = rng.standard_normal((4, 6, 6, 3))
    calls = []
    pack = _dftconv._pack
    monkeypatch.setattr(_dftconv, "_pack", lambda *a, **kw: calls.append(1) or pack(*a, **kw))
    monkeypatch.setattr(_dftconv, "_CHUNK_BYTES", 1)  # one pair per chunk: 2 chunks
    nnref.conv2d_bwd(res, dy)
    assert len(calls) == 2
    calls.clear()
    dy[2] *= 64
    nnref.conv2d_bwd(res, dy)
    assert len(calls) == 2
    dy[2] *= 16
    nnref.conv2d_bwd(res, dy)
    assert len(calls) == 6
    calls.clear()
    nnref.conv2d_bwd_filter(res, dy)  # dw alone never needs the second transform
    assert len(calls) == 2


@pytest.mark.parametrize(
    "static",
    [{"padding": "SAME"}, {"padding": "VALID", "strides": 2}, {"padding": "SAME", "dilations": 2}],
    ids=["same", "valid-s2", "same-d2"],
)
def test_windows_of_zeros_give_exact_zeros(static, rng) -> None:
    """MNIST backgrounds: where a window reads only zero pixels the direct sum is exactly 0, and
    so is the DFT's (the transforms would leave rounding there, which flips relu and max-pool
    decisions downstream); likewise dx where no non-zero dy reaches."""
    x = np.zeros((3, 13, 13, 4), np.float32)
    x[:, :4, :4] = rng.standard_normal((3, 4, 4, 4))
    k = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    y, res = nnref.conv2d_fwd(x, k, **static)
    yf, resf = nnref.conv2d_fwd(x, k, **static, algorithm="dft")
    assert (y == 0).any()
    np.testing.assert_array_equal(yf == 0, y == 0)
    dy = np.zeros(y.shape, np.float32)
    dy[:, -2:, -2:] = rng.standard_normal((3, 2, 2, 2))
    dx, _ = nnref.conv2d_bwd(res, dy)
    dxf, _ = nnref.conv2d_bwd(resf, dy)
    assert (dx == 0).any()
    np.testing.assert_array_equal(dxf == 0, dx == 0)


def test_zeros_by_cancellation_are_not_kept() -> None:
    """Documented difference: a constant image under a kernel whose taps sum to 0 gives exact
    zeros by the direct sum (x - x) and rounding noise by the DFT (the window is not zero)."""
    x = np.full((2, 8, 8, 1), 3.0, np.float32)
    k = np.array([1.0, -1.0], np.float32).reshape(1, 2, 1, 1)
    y = nnref.conv2d(x, k, padding="VALID")
    yf = nnref.conv2d(x, k, padding="VALID", algorithm="dft")
    assert not y.any()
    assert yf.any()  # if this fails, the DFT keeps these zeros too: update the docstring
    assert np.abs(yf).max() <= 1e-6 * 3.0


def test_zero_images_keep_exact_zeros(rng) -> None:
    """An all-zero image (or an image whose dy is zero) shares a transform with a non-zero
    partner; its outputs (its dx) are exactly 0, not the partner's rounding."""
    x = rng.standard_normal((3, 8, 8, 3))
    x[0] = 0
    k = rng.standard_normal((3, 3, 3, 2))
    y, res = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    assert not y[0].any()
    dy = rng.standard_normal(y.shape)
    dy[1] = 0
    dx, _ = nnref.conv2d_bwd(res, dy)
    assert not dx[1].any()
    assert dx[0].all()


def test_ties_are_not_kept(rng) -> None:
    """Documented difference: a constant image gives one interior value by the direct sum and
    several (equal to rounding) by the DFT, so max-pool's tie routing may differ."""
    x = np.ones((2, 10, 10, 3), np.float32)
    k = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    y = nnref.conv2d(x, k, padding="SAME")[:, 1:-1, 1:-1]
    yf = nnref.conv2d(x, k, padding="SAME", algorithm="dft")[:, 1:-1, 1:-1]
    assert all(len(np.unique(y[..., o])) == 1 for o in range(2))
    assert any(len(np.unique(yf[..., o])) > 1 for o in range(2))
    assert_close(yf, y, what="constant image")


@pytest.mark.parametrize("where", ["x", "w"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_falls_back_to_direct(where, bad, rng) -> None:
    """A transform would spread one NaN over both images of its pair; the fallback keeps it
    local, bit for bit as the direct path."""
    x = rng.standard_normal((4, 7, 7, 2))
    k = rng.standard_normal((3, 3, 2, 2))
    (x if where == "x" else k)[1, 2, 1, 0] = bad
    with np.errstate(invalid="ignore"):  # inf times a zero pad is NaN, as TF
        y = nnref.conv2d(x, k, padding="SAME")
        yf, resf = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    assert isinstance(resf, Conv2DResiduals)
    np.testing.assert_array_equal(yf, y)
    if where == "x":
        assert np.isfinite(yf[0]).all()  # the partner image stays clean


def test_non_finite_dy_falls_back_to_direct_in_backward(rng) -> None:
    x = rng.standard_normal((4, 7, 7, 2))
    k = rng.standard_normal((3, 3, 2, 2))
    y, res = nnref.conv2d_fwd(x, k, padding="SAME")
    _, resf = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    assert isinstance(resf, Conv2DDFTResiduals)
    dy = rng.standard_normal(y.shape)
    dy[2, 3, 3, 1] = np.nan
    for a, b in zip(nnref.conv2d_bwd(resf, dy), nnref.conv2d_bwd(res, dy), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        nnref.conv2d_bwd_filter(resf, dy), nnref.conv2d_bwd_filter(res, dy)
    )
    assert np.isfinite(nnref.conv2d_bwd(resf, dy)[0][3]).all()


def test_huge_inputs_do_not_overflow_in_the_transforms(rng) -> None:
    """Power-of-two scaling: unscaled, the spectrum of 64 pixels of 1e37 times the kernel's
    overflows float32 although every direct output is finite (~1e38)."""
    x = (rng.standard_normal((2, 8, 8, 3)) * 1e37).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    y = nnref.conv2d(x, k, padding="SAME")
    assert_close(nnref.conv2d(x, k, padding="SAME", algorithm="dft"), y, what="y")


def test_auto_picks_dft_where_it_wins() -> None:
    """At batch 128 (``benchmarks/calibrate_auto.py``): the seed CNN's conv2 on MNIST (32 -> 64
    channels, 14x14), at 7x7 and on 8x8 digits (4x4) and a 3x3 kernel at 8x8 go to the DFT; its
    conv1 (one input channel: 32 inverse transforms cost more than the direct sum), small work
    (fixed costs decide: the 4x4 conv2 at batch 32, a 3x3 kernel at 3x3) and strided or dilated
    convolutions stay direct."""
    f32 = np.float32

    def kind(h, c, o, k, n=128, **st):
        x, w = np.zeros((n, h, h, c), f32), np.zeros((k, k, c, o), f32)
        return type(nnref.conv2d_fwd(x, w, padding="SAME", algorithm="auto", **st)[1])

    dft, direct = Conv2DDFTResiduals, Conv2DResiduals
    assert [kind(14, 32, 64, 5), kind(7, 32, 64, 5), kind(4, 32, 64, 5)] == [dft] * 3
    assert kind(8, 32, 64, 3) == dft
    assert [kind(28, 1, 32, 5), kind(4, 32, 64, 5, n=32), kind(3, 32, 64, 3)] == [direct] * 3
    assert [kind(14, 32, 64, 5, strides=2), kind(14, 32, 64, 5, dilations=2)] == [direct] * 2


@pytest.mark.parametrize("bad", ["fft", "DFT", None, 1])
def test_unknown_algorithm_is_refused(bad) -> None:
    with pytest.raises(ValueError, match=r"^conv2d: 'algorithm' must be one of 'direct', 'dft'"):
        nnref.conv2d(np.ones((1, 4, 4, 1)), np.ones((2, 2, 1, 1)), algorithm=bad)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_dft_same_bits_for_any_thread_count(dt, rng, monkeypatch) -> None:
    """Transforms split over image pairs and GEMMs over frequencies: disjoint outputs, BLAS
    at one thread even when one thread runs them all (its GEMMs are large enough to split)."""
    x = rng.standard_normal((32, 20, 20, 16)).astype(dt)
    k = rng.standard_normal((3, 3, 16, 16)).astype(dt)
    b = rng.standard_normal(16).astype(dt)
    dy = rng.standard_normal((32, 20, 20, 16)).astype(dt)
    out = []
    for threads in ("1", "2"):
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        y, res = nnref.conv2d_fwd(x, k, b, padding="SAME", algorithm="dft")
        out.append((y, *nnref.conv2d_bwd(res, dy)))
    for a, c in zip(*out, strict=True):
        np.testing.assert_array_equal(a, c)


def test_dft_hands_its_work_to_the_threads_three_times_each_way(
    rng, monkeypatch, gemm_handoffs
) -> None:
    """Forward: the kernel's transform beside the input's, the per-frequency products, the
    output's transform. Backward (the kernel spectrum kept from its forward pass): dy's
    transform beside db, dw's and dx's per-frequency products, dw's and dx's inverse
    transforms. Each hand-off to an idle worker costs ~0.1-0.25 ms where idle vCPUs halt."""
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    x, k, dy = (rng.standard_normal(s) for s in ((8, 10, 10, 4), (3, 3, 4, 6), (8, 10, 10, 6)))
    want = _step(x, k, dy, padding="SAME")
    gemm_handoffs.clear()
    _, res = nnref.conv2d_fwd(x, k, rng.standard_normal(6), padding="SAME", algorithm="dft")
    assert isinstance(res, Conv2DDFTResiduals)
    assert len(gemm_handoffs) == 3
    grads = nnref.conv2d_bwd(res, dy)
    assert len(gemm_handoffs) == 6
    for g, w in zip(grads[:2], want[1:3], strict=True):  # the bias changes neither
        np.testing.assert_array_equal(g, w)
    assert_close(grads[2], dy.sum(axis=(0, 1, 2)), rtol=1e-13, what="db")


@pytest.mark.parametrize("poison", [False, True])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_reductions_split_over_threads_and_chunks_give_the_whole_tensors(
    threads, poison, rng, monkeypatch
) -> None:
    """``image_amax`` over image ranges (one image a thread at ``ELEMENTWISE_MIN_CHUNK`` 1) and the
    supports filled chunk by chunk in the transforms' workers (a pair a chunk) equal the whole-
    tensor reductions: NaN and -0.0 included, an odd batch's unpaired last image too. Fresh
    boolean buffers start all ``poison`` (both ways), so a chunk left unfilled shows whatever
    the allocator hands out."""
    empty = np.empty

    def poisoned(shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
        a = empty(shape, dtype, *args, **kwargs)
        if a.dtype == bool:
            a.fill(poison)
        return a

    monkeypatch.setattr(np, "empty", poisoned)
    monkeypatch.setenv("NNREF_NUM_THREADS", threads)
    monkeypatch.setattr(_dftconv, "ELEMENTWISE_MIN_CHUNK", 1)
    monkeypatch.setattr(_dftconv, "_CHUNK_BYTES", 1)
    a = rng.standard_normal((5, 3, 4, 2))
    a[4, 2, 3, 1] = np.nan
    a[1, 0, 0, 0] = -7.0  # the image's max-abs from its min
    flat = a.reshape(5, -1)
    expected = np.where(np.isnan(flat).any(axis=1), np.nan, np.abs(flat).max(axis=1))
    np.testing.assert_array_equal(_dftconv.image_amax(a), expected)

    x = rng.standard_normal((5, 6, 6, 3))
    x[:, :2] = 0.0
    x[1, 4, 4] = -0.0
    x[3, 5, 5, 1:] = 0.0  # one non-zero channel keeps the pixel
    dy = rng.standard_normal((5, 6, 6, 2))
    dy[2] = 0.0
    dy[0, 3:, :, :] = -0.0
    k = rng.standard_normal((3, 3, 3, 2))
    _, res = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    np.testing.assert_array_equal(res.spectra.support, np.any(x != 0, axis=3))
    seen = []
    reached = _dftconv.reached_by_nonzero
    monkeypatch.setattr(
        _dftconv, "reached_by_nonzero", lambda sup, *a: seen.append(sup.copy()) or reached(sup, *a)
    )
    nnref.conv2d_bwd(res, dy)
    np.testing.assert_array_equal(seen[0], np.any(dy != 0, axis=3))


def test_transform_size_is_alias_free_and_minimal() -> None:
    """SAME 5x5 on 14: L = 14 + 2 = 16 (not the padded 18); a kernel larger than the input
    needs L >= its extent; strides and dilations follow the largest index read."""
    from nnref.ops._windows import plan_axis

    def size(n, k, s, d, pad):
        return _dftconv.transform_size(n, k, s, d, plan_axis(n, k, s, d, pad, 0))

    assert size(14, 5, 1, 1, "SAME") == 16
    assert size(28, 5, 1, 1, "SAME") == 30
    assert size(14, 5, 1, 1, "VALID") == 14
    assert size(2, 5, 1, 1, "SAME") == 5
    assert size(7, 3, 1, 2, "SAME") == 9
    assert size(7, 3, 2, 1, "VALID") == 7


def test_read_only_and_strided_inputs(rng) -> None:
    """Inputs are never written, and a non-contiguous view gives the contiguous copy's bits."""
    big = rng.standard_normal((3, 14, 9, 6))
    x = big[:, ::2, :, ::2]
    k = rng.standard_normal((6, 3, 3, 4))[::2, :, :, ::2]
    dy = rng.standard_normal((3, 7, 9, 4))[..., ::2]
    for a in (big, k, dy):
        a.flags.writeable = False
    y, res = nnref.conv2d_fwd(x, k, padding="SAME", algorithm="dft")
    yc, resc = nnref.conv2d_fwd(x.copy(), k.copy(), padding="SAME", algorithm="dft")
    np.testing.assert_array_equal(y, yc)
    for a, b in zip(nnref.conv2d_bwd(res, dy), nnref.conv2d_bwd(resc, dy.copy()), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- workspace (internal buffers)


def _step(x, k, dy, **static):
    y, res = nnref.conv2d_fwd(x, k, algorithm="dft", **static)
    return (y, *nnref.conv2d_bwd(res, dy), nnref.conv2d_bwd_filter(res, dy))


def test_workspace_leaks_no_stale_data_and_never_writes_returned_arrays(rng) -> None:
    """Repeated calls of one shape reuse the internal buffers: each result equals a first call
    on an empty workspace (nothing of the previous inputs leaks in), and arrays already returned,
    the residual spectrum included, stay untouched by later calls."""
    shape = {"x": (6, 9, 9, 4), "k": (3, 3, 4, 5), "dy": (6, 9, 9, 5)}
    draws = [
        {
            n: rng.standard_normal(s) * 2.0 ** rng.integers(-4, 4, (s[0], 1, 1, 1))
            for n, s in shape.items()
        }
        for _ in range(3)
    ]
    draws[1]["x"][:, :4] = 0  # exact-zero windows in one call, none in the others
    fresh = []
    for d in draws:
        _workspace.clear()
        fresh.append(_step(d["x"], d["k"], d["dy"], padding="SAME"))
    _workspace.clear()
    kept, specs = [], []
    for d in draws:
        _, res = nnref.conv2d_fwd(d["x"], d["k"], padding="SAME", algorithm="dft")
        specs.append((res.spectra.spec, res.spectra.spec.copy()))
        out = _step(d["x"], d["k"], d["dy"], padding="SAME")
        kept.append((out, [a.copy() for a in out]))
        nnref.conv2d_bwd(res, d["dy"])
    for (out, snap), ref in zip(kept, fresh, strict=True):
        for a, s, r in zip(out, snap, ref, strict=True):
            np.testing.assert_array_equal(a, s)  # not written by a later call
            np.testing.assert_array_equal(a, r)  # no stale data from an earlier call
    for spec, snap in specs:
        np.testing.assert_array_equal(spec, snap)


def test_workspace_is_per_thread_and_concurrent_calls_give_sequential_bits(rng) -> None:
    """Two Python threads calling the dft conv at once (same shapes, so the same workspace
    roles) get the bits of sequential calls: each thread has its own buffers."""
    import threading

    inputs = [
        (
            rng.standard_normal((8, 12, 12, 6)),
            rng.standard_normal((3, 3, 6, 8)),
            rng.standard_normal((8, 12, 12, 8)),
        )
        for _ in range(2)
    ]
    want = [_step(*a, padding="SAME") for a in inputs]
    got: list[list] = [[], []]
    start = threading.Barrier(2)

    def worker(i: int) -> None:
        start.wait()
        for _ in range(5):
            got[i].append(_step(*inputs[i], padding="SAME"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert len(got[i]) == 5
        for out in got[i]:
            for a, b in zip(out, want[i], strict=True):
                np.testing.assert_array_equal(a, b)


def test_workspace_is_bounded_after_many_shapes(rng) -> None:
    """One buffer per role, the last shape's: after calls of many shapes the workspace holds
    no more than one call of the last shape needs, and _workspace.clear() empties it."""
    _workspace.clear()
    for hw in range(5, 17):
        x = rng.standard_normal((4, hw, hw, 3)).astype(np.float32)
        k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
        dy = rng.standard_normal((4, hw, hw, 4)).astype(np.float32)
        dy[1] *= 1e4  # pairs of very different dy scales: dx's own transform of dy too
        _step(x, k, dy, padding="SAME")
    roles = _workspace.roles()
    assert roles <= set(_dftconv._ROLES)
    lh = lw = 16 + 1  # SAME 3x3 on 16: L = 16 + 1
    m = 2  # image pairs
    c8 = np.dtype(np.complex64).itemsize
    bound = (2 * lh * lw * m * 4 + 2 * lh * lw * 3 * 4 + lh * lw * m * 3) * c8  # 2 per-channel
    assert _workspace.nbytes() == bound
    assert roles == set(_dftconv._ROLES)
    _workspace.clear()
    assert _workspace.nbytes() == 0


def test_workspace_reentrant_call_gets_its_own_buffers(rng, monkeypatch) -> None:
    """A call made while another holds the workspace's buffers (here from inside its
    per-frequency GEMMs, as a callback or signal handler could) finds the slots empty and
    allocates afresh: both give the bits of sequential calls."""
    a = [rng.standard_normal(s) for s in ((4, 7, 7, 3), (3, 3, 3, 5), (4, 7, 7, 5))]
    b = [rng.standard_normal(v.shape) for v in a]
    want_a, want_b = _step(*a, padding="SAME"), _step(*b, padding="SAME")
    nested = []
    inner = _dftconv._per_frequency

    def reenter(*args, **kw):
        if not nested:
            nested.append(None)
            nested.append(_step(*b, padding="SAME"))
        return inner(*args, **kw)

    monkeypatch.setattr(_dftconv, "_per_frequency", reenter)
    got_a = _step(*a, padding="SAME")
    for got, want in ((got_a, want_a), (nested[1], want_b)):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dy_value", [2.5855581982936937e-193, 1e-300])
def test_tiny_image_times_tiny_dy_keeps_dx(dy_value: float) -> None:
    """Found by Hypothesis: an image at 2.6e-193 (its scale clipped at 2**-500) times a dy of
    the same size underflowed in the shared dy transform, and dx came out 0; dx = dy w needs
    only dy's magnitude, so dy takes its own transform there."""
    x = np.full((1, 1, 1, 1), 2.5855581982936937e-193)
    w = np.ones((1, 1, 1, 1))
    dy = np.full((1, 1, 1, 1), dy_value)
    _, res = nnref.conv2d_fwd(x, w, padding="SAME", algorithm="dft")
    dx, _ = nnref.conv2d_bwd(res, dy)
    np.testing.assert_array_equal(dx, dy)


@pytest.mark.parametrize("n", [2, 3], ids=["zero-partner", "zero-partner-and-unpaired-zero"])
def test_zero_image_adds_no_rounding_to_dw(n: int) -> None:
    """Found by Hypothesis (thorough profile): x = [3e-50], [0] under a 2x1 kernel, dy of ones.
    The zero image's dy entered dw's transform at weight 1 (its scale), 2**165 times its tiny
    partner's; their products cancel in the pair only to rounding, and dw read 4.3e-17 where it
    is 0 (a tap that reads only padding) for a true dw of 3e-50. A zero image adds nothing to dw:
    its dy now goes in at weight 0 (and its dx takes dy's own transform)."""
    x = np.zeros((n, 1, 1, 1))
    x[0] = 3.03670786e-50
    w = np.array([0.7, -0.3]).reshape(2, 1, 1, 1)
    y, res = nnref.conv2d_fwd(x, w, padding="SAME")
    yf, resf = nnref.conv2d_fwd(x, w, padding="SAME", algorithm="dft")
    assert isinstance(resf, Conv2DDFTResiduals)
    dy = np.ones_like(y)
    (dx, dw), (dxf, dwf) = nnref.conv2d_bwd(res, dy), nnref.conv2d_bwd(resf, dy)
    assert dw[1, 0, 0, 0] == dwf[1, 0, 0, 0] == 0.0
    assert_close(dwf, dw, rtol=1e-14, what="dw")
    assert_close(dxf, dx, rtol=1e-14, what="dx")
    assert_close(yf, y, rtol=1e-14, what="y")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_taps_that_read_only_padding_have_exactly_zero_dw(dt) -> None:
    """Kernel taps whose windows meet only padding where dy is non-zero have dw = 0 exactly by
    the direct sum; the transforms left rounding there (3.6e-7 in float32 for a stride that
    skips every real row: an adversarial probe; against the exact 0, any relative tolerance
    fails). Here a 3x3 kernel at stride 3 over a 3x3 image padded 2 before: taps 0 and 1 of
    each axis read padding only, tap 2 real pixels; with every pixel non-zero (the geometry
    decides) and with a zero image (pixel by pixel)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3, 3, 2)).astype(dt)
    w = rng.standard_normal((3, 3, 2, 4)).astype(dt)
    pad = [[0, 0], [2, 0], [2, 0], [0, 0]]
    for zero_image in (False, True):
        x[0] = 0 if zero_image else x[0]
        y, res = nnref.conv2d_fwd(x, w, strides=3, padding=pad)
        yf, resf = nnref.conv2d_fwd(x, w, strides=3, padding=pad, algorithm="dft")
        assert isinstance(resf, Conv2DDFTResiduals)
        dy = rng.standard_normal(y.shape).astype(dt)
        dw, dwf = nnref.conv2d_bwd_filter(res, dy), nnref.conv2d_bwd_filter(resf, dy)
        assert not dw[:2].any()
        assert not dw[:, :2].any()
        assert dwf[:2].tobytes() == dw[:2].tobytes()
        assert dwf[:, :2].tobytes() == dw[:, :2].tobytes()
        assert_close(dwf, dw, rtol=ORACLE_RTOL[np.dtype(dt).name], what="dw")
        assert dw[2, 2].all()
    # The probe's case: every window reads padding only (y is 0 on both paths).
    x = rng.standard_normal((2, 2, 9, 2)).astype(dt)
    w = rng.standard_normal((1, 4, 2, 2)).astype(dt)
    pad = [[0, 0], [1, 0], [0, 2], [0, 0]]
    yf, resf = nnref.conv2d_fwd(x, w, strides=3, padding=pad, algorithm="dft")
    assert not yf.any()
    dxf, dwf = nnref.conv2d_bwd(resf, np.ones_like(yf))
    assert not dwf.any()
    assert not dxf.any()


def test_backward_reuses_its_forward_kernel_spectrum_and_no_other(rng, monkeypatch) -> None:
    """The kernel's spectrum stays in the workspace from a forward pass to its backward, which
    then skips transforming w again; after another forward pass (another kernel of the same
    shape), after a cleared workspace, or from another thread's residuals, backward transforms
    w itself. Every way gives the bits of a backward right after its own forward."""
    shapes = ((4, 7, 7, 3), (3, 3, 3, 5), (4, 7, 7, 5))
    a = [rng.standard_normal(s) for s in shapes]
    b = [rng.standard_normal(s) for s in shapes]
    kernel_transforms = []
    inner = _dftconv._forward_2d

    def counting(ah, aw, z, out):
        if ah.shape[1] == 3:  # the kernel's (L, KH) matrix: the inputs have 7 rows
            kernel_transforms.append(None)
        inner(ah, aw, z, out)

    monkeypatch.setattr(_dftconv, "_forward_2d", counting)
    _workspace.clear()
    want = _step(*a, padding="SAME")
    assert len(kernel_transforms) == 1
    del kernel_transforms[:]
    _, res_a = nnref.conv2d_fwd(a[0], a[1], padding="SAME", algorithm="dft")
    nnref.conv2d_fwd(b[0], b[1], padding="SAME", algorithm="dft")
    assert len(kernel_transforms) == 2
    got = nnref.conv2d_bwd(res_a, a[2])  # b's spectrum in the buffer: a's transformed again
    assert len(kernel_transforms) == 3
    for g, w in zip(got, want[1:3], strict=True):
        np.testing.assert_array_equal(g, w)
    nnref.conv2d_bwd(res_a, a[2])  # a's again now
    assert len(kernel_transforms) == 3
    _workspace.clear()
    got = nnref.conv2d_bwd(res_a, a[2])
    assert len(kernel_transforms) == 4
    for g, w in zip(got, want[1:3], strict=True):
        np.testing.assert_array_equal(g, w)
    _, res_a = nnref.conv2d_fwd(a[0], a[1], padding="SAME", algorithm="dft")
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(nnref.conv2d_bwd(res_a, a[2])))
    thread.start()
    thread.join()
    assert len(kernel_transforms) == 6
    for g, w in zip(elsewhere[0], want[1:3], strict=True):
        np.testing.assert_array_equal(g, w)


def test_backward_transforms_a_kernel_changed_since_its_forward_pass(rng) -> None:
    """The residuals hold the caller's w: changed in place after the forward pass, backward
    transforms it again (as the direct path reads it again), not the spectrum the forward left
    in the workspace. A change of sign of a zero counts."""
    x, w, dy = (rng.standard_normal(s) for s in ((2, 6, 6, 2), (3, 3, 2, 3), (2, 6, 6, 3)))
    w[0, 0, 0, 0] = 0.0
    for change in (lambda k: k.__imul__(2), lambda k: k.__setitem__((0, 0, 0, 0), -0.0)):
        _, res = nnref.conv2d_fwd(x, w, padding="SAME", algorithm="dft")
        change(w)
        got = nnref.conv2d_bwd(res, dy)
        _workspace.clear()  # nothing left to reuse: w transformed as it is now
        want = nnref.conv2d_bwd(res, dy)
        for g, r in zip(got, want, strict=True):
            assert g.tobytes() == r.tobytes()
