"""conv2d: naive oracle vs fast path over a case table, TF pins, Keras defaults, bad input."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import pytest

import nnref
from nnref.check import check_vjp
from nnref.check.compare import assert_close
from nnref.ops import conv
from nnref.ops._windows import tap_classes

EXPLICIT = [[0, 0], [1, 2], [0, 1], [0, 0]]
CASES = [
    pytest.param(
        h,
        w,
        kh,
        kw,
        s,
        d,
        pad,
        id=f"{h}x{w}-k{kh}x{kw}-s{s}-d{d}-{pad if isinstance(pad, str) else 'explicit'}",
    )
    for h, w, kh, kw, s, d, pad in itertools.product(
        [5, 6], [4, 7], [1, 2, 3], [2, 3], [1, 2, 3], [1, 2], ["SAME", "VALID", EXPLICIT]
    )
    if not (d > 1 and s > 1)
]


@pytest.mark.parametrize("tiles", [False, True], ids=["", "tiles"])
@pytest.mark.parametrize(("h", "w", "kh", "kw", "s", "d", "pad"), CASES)
def test_fast_matches_naive(h, w, kh, kw, s, d, pad, tiles, rng, monkeypatch) -> None:
    if tiles:  # padding skipped wherever it is (_tiles), one image a chunk
        monkeypatch.setattr(conv, "_SKIP_MIN_MACS", 0)
        monkeypatch.setattr(conv, "_SKIP_MIN", 1e-9)
        monkeypatch.setattr(conv, "_SLAB_BYTES", 1)
    x = rng.standard_normal((2, h, w, 3))
    k = rng.standard_normal((kh, kw, 3, 2))
    y, res = nnref.conv2d_fwd(x, k, strides=s, padding=pad, dilations=d)
    yn, resn = nnref.conv2d_naive_fwd(x, k, strides=s, padding=pad, dilations=d)
    assert y.shape == yn.shape
    dy = rng.standard_normal(y.shape)
    for a, b, what in zip(
        (y, *nnref.conv2d_bwd(res, dy)),
        (yn, *nnref.conv2d_naive_bwd(resn, dy)),
        ("y", "dx", "dw"),
        strict=True,
    ):
        assert_close(a, b, rtol=1e-13, what=what)


@pytest.mark.parametrize("cin", [1, 3], ids=["cin1-transposed-cols", "cin3-row-cols"])
@pytest.mark.parametrize("per_slab", [1, 2, 3])
@pytest.mark.parametrize("pad", ["SAME", EXPLICIT])
def test_slabs_match_naive(per_slab, pad, cin, rng, monkeypatch) -> None:
    """The fast path builds im2col rows (transposed for C_in = 1) and dx columns a slab of
    images at a time; 7 images in slabs of at most 1, 2 or 3 (7, 4 and 4 slabs: an even count
    where it can be, sizes differing by one), dw summed over groups of slabs, must give the
    naive loops' numbers."""
    x = rng.standard_normal((7, 6, 5, cin))
    k = rng.standard_normal((3, 2, cin, 4))
    yn, resn = nnref.conv2d_naive_fwd(x, k, strides=2, padding=pad)
    per_image = yn.shape[1] * yn.shape[2] * k[..., 0].size * x.itemsize
    monkeypatch.setattr(conv, "_SLAB_BYTES", per_slab * per_image + per_image // 2)
    monkeypatch.setattr(conv, "_MIN_SLABS", 1)
    monkeypatch.setattr(conv, "_DW_GROUPS", 2)
    slabs = conv._slabs(resn)
    sizes = [hi - lo for lo, hi in slabs]
    assert len(slabs) == {1: 7, 2: 4, 3: 4}[per_slab]
    assert slabs[0][0] == 0
    assert slabs[-1][1] == 7
    assert all(a[1] == b[0] for a, b in itertools.pairwise(slabs))
    assert max(sizes) <= per_slab
    assert max(sizes) - min(sizes) <= 1
    assert sizes[0] == max(sizes)
    y, res = nnref.conv2d_fwd(x, k, strides=2, padding=pad)
    dy = rng.standard_normal(y.shape)
    dxn, dwn = nnref.conv2d_naive_bwd(resn, dy)
    dx, dw = nnref.conv2d_bwd(res, dy)
    assert_close(y, yn, rtol=1e-13, what="y")
    assert_close(dx, dxn, rtol=1e-13, what="dx")
    assert_close(dw, dwn, rtol=1e-13, what="dw")
    assert_close(nnref.conv2d_bwd_filter(res, dy), dwn, rtol=1e-13, what="dw (filter only)")


@pytest.mark.parametrize("cin", [1, 3], ids=["cin1-transposed-cols", "cin3-row-cols"])
@pytest.mark.parametrize(
    ("s", "d", "pad"), [(1, 1, "SAME"), (2, 1, "SAME"), (1, 2, "VALID"), (1, 1, EXPLICIT)]
)
def test_columns_in_one_copy_equal_tap_by_tap(s, d, pad, cin, rng) -> None:
    """Where every tap meets the (padded) slab at every output, the im2col matrix is one copy
    from the windows view (for C_in = 1 transposed: conv1's 25 tap copies a slab were 25 GIL
    hand-offs, and two threads spent most of the columns' time waiting for each other); it
    must equal the tap-by-tap build, entry for entry."""
    x = rng.standard_normal((3, 7, 6, cin))
    k = rng.standard_normal((3, 2, cin, 4))
    _, res = nnref.conv2d_fwd(x, k, strides=s, padding=pad, dilations=d)
    scratch = conv._Scratch(res, 3)
    assert scratch.full
    one_copy = scratch.columns(res, 1, 3).copy()
    scratch.full = False  # the tap loop: every tap's run covers every output here
    np.testing.assert_array_equal(scratch.columns(res, 1, 3), one_copy)
    scratch.release()


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("cin", [1, 5])
@pytest.mark.parametrize("tiles", [False, True])
def test_same_bits_for_any_thread_count(dt, cin, tiles, rng, monkeypatch) -> None:
    """Slabs (or tiles: the padding skipped) spread over threads or run in the caller: y, dx and
    dw must not change by a bit. The GEMMs are large enough that a multithreaded BLAS call would
    split them (and round differently from a single-threaded one)."""
    if tiles:  # this convolution skips 1.2 M multiply-adds, below the default minimum
        monkeypatch.setattr(conv, "_SKIP_MIN_MACS", 0)
    x = rng.standard_normal((32, 20, 20, cin)).astype(dt)
    k = rng.standard_normal((3, 3, cin, 32)).astype(dt)
    dy = rng.standard_normal((32, 20, 20, 32)).astype(dt)
    out = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        y, res = nnref.conv2d_fwd(x, k, padding="SAME")
        assert (conv._tiles(res) is not None) == (tiles and cin > 1)
        out.append((y, *nnref.conv2d_bwd(res, dy)))
    for other in out[1:]:
        for a, b in zip(out[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tiles", [False, True])
def test_backward_hands_dx_dw_and_db_to_the_threads_once(
    tiles, rng, monkeypatch, gemm_handoffs
) -> None:
    """The direct backward's dx, dw and db read dy and write their own arrays: one hand-off to
    the threads for the three (each costs ~0.1-0.25 ms on a VM whose idle vCPUs halt), with
    the bits of running them one after another."""
    import nnref._threads as threads

    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    if tiles:
        monkeypatch.setattr(conv, "_SKIP_MIN_MACS", 0)
    x = rng.standard_normal((16, 9, 9, 4))
    k = rng.standard_normal((3, 3, 4, 8))
    b = rng.standard_normal(8)
    y, res = nnref.conv2d_fwd(x, k, b, padding="SAME")
    assert (conv._tiles(res) is not None) == tiles
    dy = rng.standard_normal(y.shape)
    gemm_handoffs.clear()
    together = nnref.conv2d_bwd(res, dy)
    assert gemm_handoffs == [2]
    monkeypatch.setattr(
        conv, "_run", lambda *ps: [threads.parallel_gemm_phases([p]) for p in ps if p]
    )
    apart = nnref.conv2d_bwd(res, dy)
    assert len(gemm_handoffs) == 1 + (3 if tiles else 2)  # untiled, db is summed beside dw
    for a, c in zip(together, apart, strict=True):
        np.testing.assert_array_equal(a, c)


def test_tap_classes_match_a_brute_force_search() -> None:
    """The direct path's tiles: maximal runs of outputs that read the input at the same taps."""
    for k, s, d, out, before, n in itertools.product(
        range(1, 7), range(1, 4), range(1, 4), range(7), range(6), range(1, 6)
    ):
        case = (k, s, d, out, before, n)
        runs = tap_classes(*case)
        assert [o for r, _, _ in runs for o in range(out)[r]] == list(range(out)), case
        for r, a0, a1 in runs:
            for o in range(out)[r]:
                assert [a for a in range(k) if 0 <= o * s + a * d - before < n] == list(
                    range(a0, a1)
                ), case
        assert all(p[1:] != q[1:] for p, q in itertools.pairwise(runs)), case


@pytest.mark.parametrize("where", ["w", "x", "dy"])
def test_skipped_padding_products_keep_what_non_finite_values_do(
    where: str, rng, monkeypatch
) -> None:
    """The direct path skips the products with padding (``_tiles``) only where they are exact
    zeros: an inf kernel tap (forward) or a NaN in ``dy`` (``dw``) times the zero padding is
    NaN, as in the naive loops; a NaN in ``x`` never meets the padding."""
    monkeypatch.setattr(conv, "_SKIP_MIN_MACS", 0)
    x = rng.standard_normal((2, 6, 6, 3))
    w = rng.standard_normal((3, 3, 3, 2))
    if where == "w":
        w[0, 0, 1, 0] = np.inf
    if where == "x":
        x[0, 0, 0, 1] = np.nan
    y, res = nnref.conv2d_fwd(x, w, padding="SAME")
    assert conv._tiles(res) is not None
    yn, resn = nnref.conv2d_naive_fwd(x, w, padding="SAME")
    dy = rng.standard_normal(y.shape)
    if where == "dy":
        dy[1, 0, 5, 1] = np.nan  # a corner output: its padding taps too must be NaN in dw
    with np.errstate(invalid="ignore"):
        dw = nnref.conv2d_bwd_filter(res, dy)
        _, dwn = nnref.conv2d_naive_bwd(resn, dy)
    for got, want in ((y, yn), (dw, dwn)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(dw if where != "w" else y).any()


def test_reused_scratch_leaks_nothing_between_calls(rng) -> None:
    """The direct path's slabs come from a per-thread workspace: alternating calls whose padded
    slabs have one shape but other borders (SAME's (0, 1) against explicit (1, 0)), and whose
    input gradients leave data in the slab, still give the naive results, and a result is never
    rewritten by a later call."""
    k = rng.standard_normal((2, 2, 3, 4))
    pads = ["SAME", [[0, 0], [1, 0], [1, 0], [0, 0]]]
    outs = []
    for i in range(4):
        x = rng.standard_normal((5, 6, 7, 3))
        pad = pads[i % 2]
        y, res = nnref.conv2d_fwd(x, k, padding=pad)
        dy = rng.standard_normal(y.shape)
        dx, dw = nnref.conv2d_bwd(res, dy)
        yn, rn = nnref.conv2d_naive_fwd(x, k, padding=pad)
        dxn, dwn = nnref.conv2d_naive_bwd(rn, dy)
        for a, b in ((y, yn), (dx, dxn), (dw, dwn)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        outs.append((y, y.copy(), dx, dx.copy()))
    for y, y0, dx, dx0 in outs:
        np.testing.assert_array_equal(y, y0)
        np.testing.assert_array_equal(dx, dx0)


def test_bwd_filter_is_conv2d_bwd_dw_and_checks_dy(rng) -> None:
    x = rng.standard_normal((2, 5, 5, 2)).astype(np.float32)
    k = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    y, res = nnref.conv2d_fwd(x, k, padding="SAME", strides=2)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dw = nnref.conv2d_bwd_filter(res, dy)
    assert dw.dtype == np.float32
    np.testing.assert_array_equal(dw, nnref.conv2d_bwd(res, dy)[1])
    with pytest.raises(ValueError, match=r"^conv2d: .*dy.*\(2, 3, 3, 3\)"):
        nnref.conv2d_bwd_filter(res, dy[:, :2])
    empty_y, empty_res = nnref.conv2d_fwd(x, rng.standard_normal((6, 1, 2, 3)).astype(np.float32))
    assert empty_y.shape == (2, 0, 5, 3)
    empty_dw = nnref.conv2d_bwd_filter(empty_res, empty_y)
    assert empty_dw.shape == (6, 1, 2, 3)
    assert not empty_dw.any()


def test_naive_vjp_matches_finite_differences(rng) -> None:
    x = rng.standard_normal((1, 5, 4, 2))
    k = rng.standard_normal((3, 2, 2, 2))
    for static in ({"padding": "SAME", "strides": 2}, {"padding": EXPLICIT, "dilations": 2}):
        check_vjp(nnref.conv2d_naive_fwd, nnref.conv2d_naive_bwd, (x, k), static=static)


def test_same_padding_puts_the_extra_pad_bottom_right() -> None:
    # 4x4 input, 2x2 kernel of ones: the last row/column sees the zero pad (pad 0 before, 1 after).
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    y = nnref.conv2d(x, np.ones((2, 2, 1, 1)), padding="SAME")
    assert y.shape == (1, 4, 4, 1)
    assert y[0, 0, 0, 0] == 0 + 1 + 4 + 5
    assert y[0, 3, 3, 0] == 15
    # n=5, k=4: total pad 3, split (1, 2).
    y = nnref.conv2d(np.ones((1, 5, 1, 1)), np.ones((4, 1, 1, 1)), padding="SAME")
    np.testing.assert_array_equal(y[0, :, 0, 0], [3, 4, 4, 3, 2])


def test_cross_correlation_not_flipped() -> None:
    x = np.zeros((1, 3, 3, 1))
    x[0, 0, 0, 0] = 1
    k = np.arange(1.0, 10.0).reshape(3, 3, 1, 1)
    assert nnref.conv2d(x, k)[0, 0, 0, 0] == 1.0  # w[0, 0], not w[2, 2]


def test_valid_kernel_larger_than_input_gives_empty_output(rng) -> None:
    x = rng.standard_normal((1, 2, 3, 2))
    k = rng.standard_normal((3, 3, 2, 4))
    y, res = nnref.conv2d_fwd(x, k, padding="VALID")
    assert y.shape == (1, 0, 1, 4)
    dx, dw = nnref.conv2d_bwd(res, np.zeros(y.shape))
    assert not dx.any()
    assert not dw.any()


#: The TF kernels the three pinned defects below call read uninitialised memory; they run in a
#: fresh process (:func:`tf_defects`), so that whatever else they touch cannot corrupt the heap
#: of the tests that share this one (a CI worker once aborted inside NumPy in a later TF test).
_TF_DEFECTS = """
import sys

import numpy as np

from nnref.oracles.tf import import_tf, tape_vjp

tf = import_tf()
out = {}
rng = np.random.default_rng(5)
x, k = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((2, 3, 3, 4))
y, (gx, gw) = tape_vjp(
    lambda a, b: tf.nn.convolution(a, b, 1, "VALID", dilations=2), (x, k), np.zeros((2, 3, 0, 4))
)
out.update(dil_x=x, dil_k=k, dil_y_shape=np.array(y.shape), dil_gx=gx, dil_gw_shape=gw.shape)
x = np.arange(6.0, dtype=np.float32).reshape(1, 2, 3, 1)
k = np.ones((3, 3, 1, 1), np.float32)
out["wide_y32_shape"] = np.array(tf.nn.conv2d(x, k, 1, "VALID").shape)
x = np.array([1.5, 2.75, 3.25, 4.125], np.float32).reshape(2, 2, 1, 1)
k = np.array([1.0, 10.0], np.float32).reshape(1, 2, 1, 1)
out["stride_y32"] = tf.nn.conv2d(x, k, [1, 2], "SAME").numpy()
np.savez(sys.argv[1], **out)
"""


@pytest.fixture(scope="module")
def tf_defects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("tf-defects") / "out.npz"
    subprocess.run([sys.executable, "-c", _TF_DEFECTS, str(path)], check=True)
    with np.load(path) as f:
        return dict(f)


@pytest.mark.tf
def test_empty_dilated_output_tf_filter_gradient_is_uninitialised_ours_is_zero(tf_defects) -> None:
    """TF defect: tf.nn.convolution with dilation 2 and an empty VALID output returns an
    uninitialised filter gradient (there is no output to differentiate): measured 9.1e223 in one
    process and exact zeros in a fresh one, so TF's value is not compared. nnref returns zeros,
    which finite differences confirm; the forward shapes and input gradients agree."""
    x, k = tf_defects["dil_x"], tf_defects["dil_k"]
    y, res = nnref.conv2d_fwd(x, k, padding="VALID", dilations=2)
    assert y.shape == (2, 3, 0, 4) == tuple(tf_defects["dil_y_shape"])
    dx, dw = nnref.conv2d_bwd(res, np.zeros(y.shape))
    np.testing.assert_array_equal(dx, tf_defects["dil_gx"])
    assert not dw.any()
    assert dw.shape == tuple(tf_defects["dil_gw_shape"])


@pytest.mark.tf
def test_kernel_wider_than_valid_input_tf_float32_defect(tf_defects) -> None:
    """Pinned TF behaviour: with the kernel wider than a VALID input, TF's float64 kernel (and
    float32 with TF_ENABLE_ONEDNN_OPTS=0) returns the empty output nnref returns; the default
    float32 oneDNN kernel returns zeros of the *input's* shape on AVX-512 CPUs (measured on an
    Intel SkylakeX guest) and the empty output elsewhere (an AMD EPYC guest without AVX-512).
    Dilated TF raises "Computed output size would be negative"; nnref returns the empty output
    (documented difference)."""
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    x = np.arange(6.0).reshape(1, 2, 3, 1)
    k = np.ones((3, 3, 1, 1))
    assert nnref.conv2d(x, k).shape == (1, 0, 1, 1)
    assert tuple(tf.nn.conv2d(tf.constant(x), tf.constant(k), 1, "VALID").shape) == (1, 0, 1, 1)
    y32_shape = tuple(tf_defects["wide_y32_shape"])  # the same x and k in float32
    avx512 = (
        "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else None
    )
    if avx512 is not None:  # the oneDNN defect shows where its AVX-512 kernel runs
        assert y32_shape == ((1, 2, 3, 1) if avx512 else (1, 0, 1, 1))
    assert nnref.conv2d(np.ones((1, 1, 1, 1)), np.ones((1, 2, 1, 1)), dilations=[1, 2]).shape == (
        1,
        1,
        0,
        1,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="negative"):
        tf.nn.conv2d(
            tf.ones((1, 1, 1, 1), tf.float64),
            tf.ones((1, 2, 1, 1), tf.float64),
            1,
            "VALID",
            dilations=[1, 2],
        )


@pytest.mark.tf
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_dilated_tf_spreads_a_non_finite_kernel_tap_into_dx_ours_is_zero(bad: float) -> None:
    """TF difference: on a 1-row input, SAME with a 2-row kernel at dilation 2 reads only
    padding (rows -1 and 1), so y does not depend on x and dx is 0 (nnref, and the naive loop).
    TF's dilated convolution (space_to_batch around an undilated one) multiplies its internal
    zeros by the non-finite tap and returns NaN in dx's channel 0. Float64: TF's Eigen kernels,
    not the float32 oneDNN ones above."""
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = np.arange(1.0, 7.0).reshape(1, 1, 3, 2)
    w = np.array([bad, -1.0, 2.0, 1.5]).reshape(2, 1, 2, 1)
    y, res = nnref.conv2d_fwd(x, w, padding="SAME", dilations=(2, 1))
    dy = np.ones(y.shape)
    dx, _ = nnref.conv2d_bwd(res, dy)
    _, naive = nnref.conv2d_naive_fwd(x, w, padding="SAME", dilations=(2, 1))
    np.testing.assert_array_equal(dx, nnref.conv2d_naive_bwd(naive, dy)[0])
    assert not dx.any()
    conv = functools.partial(tf.nn.convolution, strides=1, padding="SAME", dilations=(2, 1))
    y_tf, (dx_tf, _) = tape_vjp(conv, (x, w), dy)
    np.testing.assert_array_equal(y, y_tf)  # the forward agrees: 0 * w, NaN in every output
    assert np.isnan(dx_tf[..., 0]).all()
    assert not dx_tf[..., 1].any()


@pytest.mark.tf
def test_one_channel_width_stride_tf_float32_defect(tf_defects) -> None:
    """Pinned TF behaviour, found by the thorough property run: TF's float32 (oneDNN) conv2d
    is wrong for some batches of one-channel images with a width stride: here every image's
    second output row is 0 or uninitialised memory (7.2e-24, 7.1e19, a stale 7 from the
    previous call). TF's float64 kernel agrees with nnref. Measured on an AMD EPYC (Zen 4)
    guest with AVX-512, TF 2.21; an exhaustive scan of small shapes found it only with one
    input channel, N > 1 and a width stride (property_tests/test_tf_agreement.py compares
    there with TF's float64 kernels)."""
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    # Values no other computation is likely to have left in the uninitialised buffer.
    x = np.array([1.5, 2.75, 3.25, 4.125]).reshape(2, 2, 1, 1)
    k = np.array([1.0, 10.0]).reshape(1, 2, 1, 1)  # the second tap reads the right-hand pad
    want = x.copy()
    np.testing.assert_array_equal(nnref.conv2d(x, k, strides=[1, 2], padding="SAME"), want)
    x32, k32 = x.astype(np.float32), k.astype(np.float32)
    np.testing.assert_array_equal(nnref.conv2d(x32, k32, strides=[1, 2], padding="SAME"), want)
    np.testing.assert_array_equal(tf.nn.conv2d(x, k, [1, 2], "SAME").numpy(), want)
    y32 = tf_defects["stride_y32"]  # TF's float32 conv2d of x32 and k32
    np.testing.assert_array_equal(y32[:, 0], want[:, 0])  # first rows right
    avx512 = (
        "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else None
    )
    if avx512:  # where it was measured
        assert not np.any(y32[:, 1] == want[:, 1])


def test_strides_forms_and_keras_defaults(rng) -> None:
    x = rng.standard_normal((1, 5, 5, 2))
    k = rng.standard_normal((3, 3, 2, 1))
    assert nnref.conv2d(x, k, strides=[2, 1], padding="SAME").shape == (1, 3, 5, 1)
    np.testing.assert_array_equal(
        nnref.conv2d(x, k, strides=[1, 2, 1, 1], padding="SAME"),
        nnref.conv2d(x, k, strides=[2, 1], padding="SAME"),
    )
    np.testing.assert_array_equal(
        nnref.conv2d(x, k, strides=2), nnref.conv2d(x, k, strides=(2, 2), padding="VALID")
    )


@pytest.mark.parametrize(
    ("x", "k", "kw", "err", "match"),
    [
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 3, 1),
            {},
            ValueError,
            r"input channels of 'x' \(1, 4, 4, 2\) \(2\) must equal the kernel's C_in in 'w' \(3, 3, 3, 1\) \(3\)",
            id="channel-mismatch",
        ),
        pytest.param(
            (4, 4, 2),
            (3, 3, 2, 1),
            {},
            ValueError,
            r"conv2d: argument 'x' must have rank 4 \(N, H, W, C\), got shape \(4, 4, 2\)",
            id="x-rank",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2),
            {},
            ValueError,
            r"'w' must have rank 4 \(KH, KW, C_in, C_out\)",
            id="w-rank",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"padding": [[0, 0], [-1, 0], [0, 0], [0, 0]]},
            ValueError,
            "must be nonnegative",
            id="negative-pad",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"padding": [[1, 0], [0, 0], [0, 0], [0, 0]]},
            ValueError,
            "batch or channel",
            id="batch-pad",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"padding": [[0, 0], [1, 1]]},
            ValueError,
            "list of 4 pairs",
            id="two-pairs",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"padding": "same"},
            ValueError,
            "upper case",
            id="lowercase",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"padding": "EXPLICIT"},
            ValueError,
            "'padding' must be",
            id="explicit-string",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"strides": 0},
            ValueError,
            "'strides' must be positive",
            id="zero-stride",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"strides": [2, 1, 1]},
            ValueError,
            "1, 2 or 4 entries",
            id="stride-3-list",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"strides": [2, 1, 1, 1]},
            ValueError,
            "must be 1 on the batch and channel axes",
            id="stride-batch",
        ),
        pytest.param(
            (1, 4, 4, 2),
            (3, 3, 2, 1),
            {"dilations": 1.5},
            TypeError,
            "'dilations' must be an int",
            id="float-dilation",
        ),
        pytest.param((0, 4, 4, 2), (3, 3, 2, 1), {}, ValueError, "is empty", id="empty-batch"),
    ],
)
def test_bad_input(x, k, kw, err, match) -> None:
    with pytest.raises(err, match=match):
        nnref.conv2d(np.ones(x), np.ones(k), **kw)


def test_dtype_mix_and_ints() -> None:
    with pytest.raises(
        TypeError,
        match=r"conv2d: arguments 'x' float64\(1, 4, 4, 1\) and 'w' float32\(2, 2, 1, 1\)",
    ):
        nnref.conv2d(np.ones((1, 4, 4, 1)), np.ones((2, 2, 1, 1), np.float32))
    with pytest.raises(TypeError, match="int64"):
        nnref.conv2d(np.ones((1, 4, 4, 1), np.int64), np.ones((2, 2, 1, 1)))


@pytest.mark.tf
def test_keras_conv2d_defaults_match_the_model_helper() -> None:
    from nnref.oracles.tf import import_keras
    from nnref.train import model

    keras = import_keras()
    cfg = keras.layers.Conv2D(8, 3).get_config()
    helper = model.conv2d(8, 3).config
    assert cfg["padding"] == helper["padding"].lower() == "valid"
    assert tuple(cfg["strides"]) == (helper["strides"],) * 2 == (1, 1)
    assert cfg["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert helper["kernel"] == "glorot_uniform"
    assert cfg["bias_initializer"]["class_name"] == "Zeros"
    assert helper["bias"] == "zeros"
    pool = keras.layers.MaxPooling2D().get_config()
    p = model.max_pool2d().config
    assert tuple(pool["pool_size"]) == (p["ksize"],) * 2 == (2, 2)
    assert pool["padding"] == p["padding"].lower() == "valid"


@pytest.mark.parametrize(
    "pads", [(1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1), (1, 1, 1, 0), (2, 0, 0, 2)]
)
@pytest.mark.parametrize(
    ("fwd", "bwd"),
    [
        (nnref.conv2d_fwd, nnref.conv2d_bwd),
        (nnref.conv2d_naive_fwd, nnref.conv2d_naive_bwd),
    ],
    ids=["fast", "naive"],
)
def test_explicit_padding_equals_valid_on_the_padded_input(pads, fwd, bwd, rng) -> None:
    """Independent of nnref's own padding: pad with np.pad, convolve VALID, crop dx back."""
    t, b, left, r = pads
    x = rng.standard_normal((2, 5, 4, 3))
    k = rng.standard_normal((2, 3, 3, 2))
    y, res = fwd(x, k, strides=1, padding=[[0, 0], [t, b], [left, r], [0, 0]])
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
    y_ref, res_ref = fwd(xp, k, strides=1, padding="VALID")
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-13)
    dy = rng.standard_normal(y.shape)
    dx, dw = bwd(res, dy)
    dxp, dw_ref = bwd(res_ref, dy)
    np.testing.assert_allclose(dx, dxp[:, t : t + 5, left : left + 4], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize(
    "static",
    [
        {"padding": "SAME", "strides": 2},
        {"padding": "VALID", "strides": 1},
        {"padding": EXPLICIT, "dilations": 2},
    ],
    ids=["same-s2", "valid", "explicit-d2"],
)
def test_every_result_keeps_the_input_dtype(dt, static, rng) -> None:
    x = rng.standard_normal((3, 7, 6, 2)).astype(dt)
    k = rng.standard_normal((3, 2, 2, 4)).astype(dt)
    for fwd, bwd in (
        (nnref.conv2d_fwd, nnref.conv2d_bwd),
        (nnref.conv2d_naive_fwd, nnref.conv2d_naive_bwd),
    ):
        y, res = fwd(x, k, **static)
        dx, dw = bwd(res, np.ones_like(y))
        assert (y.dtype, dx.dtype, dw.dtype) == (dt, dt, dt)
    assert nnref.conv2d_bwd_filter(res, np.ones_like(y)).dtype == dt


def test_naive_conv_names_itself_in_cotangent_errors(rng) -> None:
    _, res = nnref.conv2d_naive_fwd(
        rng.standard_normal((1, 4, 4, 1)), rng.standard_normal((2, 2, 1, 1)), padding="VALID"
    )
    with pytest.raises(ValueError, match=r"^conv2d_naive: argument 'dy' must have the output's"):
        nnref.conv2d_naive_bwd(res, np.zeros((1, 2, 2, 1)))


@pytest.mark.parametrize(
    ("h", "k", "d", "pads"),
    [
        (1, 2, 5, (4, 3)),  # the only input row falls between the dilated taps: dx = 0
        (3, 1, 1, (4, 2)),  # pads wider than the kernel: dy is cropped before the correlation
        (4, 3, 2, (0, 6)),
        (2, 2, 3, (5, 5)),
    ],
)
def test_stride_one_dx_by_correlation_at_extreme_padding(h, k, d, pads, rng) -> None:
    """Stride-1 dx is dy correlated with the flipped kernel (dy padded, or cropped where the
    pads exceed the kernel's extent); the naive scatter is the reference."""
    x = rng.standard_normal((2, h, h + 1, 3))
    w = rng.standard_normal((k, k, 3, 4))
    pad = [[0, 0], list(pads), list(pads[::-1]), [0, 0]]
    y, res = nnref.conv2d_fwd(x, w, padding=pad, dilations=d)
    _, resn = nnref.conv2d_naive_fwd(x, w, padding=pad, dilations=d)
    dy = rng.standard_normal(y.shape)
    dx, _ = nnref.conv2d_bwd(res, dy)
    dxn, _ = nnref.conv2d_naive_bwd(resn, dy)
    assert_close(dx, dxn, rtol=1e-13, what="dx")
    if (h, k, d) == (1, 2, 5):
        assert not dx.any()


@pytest.mark.parametrize("algorithm", ["direct", "dft"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize(
    ("h", "k", "d", "pad"),
    [
        (6, 3, 1, "SAME"),  # undilated: the last tap row reads the bottom pad for the last output
        (6, 2, 2, "SAME"),
        (1, 4, 2, "SAME"),  # no tap reads the only input row: dx = 0
        (5, 2, 1, [[0, 0], [0, 3], [1, 0], [0, 0]]),  # the NaN tap row never reads row 0
        (7, 3, 2, "VALID"),
    ],
)
def test_non_finite_kernel_tap_reaches_only_the_pixels_it_reads_in_dx(
    h, k, d, pad, bad, algorithm, rng
) -> None:
    """A NaN or inf kernel tap reaches ``dx`` only at the input pixels that tap reads for some
    output (the naive scatter; TF's float64 kernels agree without dilation). The stride-1
    correlation of ``dy`` with the flipped kernel multiplies the tap by ``dy``'s zero padding
    and spread NaN over every input pixel of the channel."""
    x = rng.standard_normal((2, h, h + 1, 3))
    w = rng.standard_normal((k, k, 3, 2))
    w[k - 1, 0, 1, 0] = bad
    y, res = nnref.conv2d_fwd(x, w, padding=pad, dilations=d, algorithm=algorithm)
    _, resn = nnref.conv2d_naive_fwd(x, w, padding=pad, dilations=d)
    dy = rng.standard_normal(y.shape)
    with np.errstate(invalid="ignore"):
        dx, _ = nnref.conv2d_bwd(res, dy)
        dxn, _ = nnref.conv2d_naive_bwd(resn, dy)
    np.testing.assert_array_equal(np.isfinite(dx), np.isfinite(dxn))
    assert_close(
        np.where(np.isfinite(dxn), dx, 0), np.where(np.isfinite(dxn), dxn, 0), rtol=1e-13, what="dx"
    )


@pytest.mark.tf
def test_non_finite_kernel_tap_in_dx_matches_tensorflow() -> None:
    """Pinned against TF (float64): x of width 3, kernel [1, NaN] on channel 0, SAME, stride 1:
    the NaN tap reads x[1], x[2] and the right pad, so dx[0] stays finite (two input channels:
    one-channel inputs take another dx path)."""
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape(1, 1, 3, 2)
    w = np.array([1.0, 3.0, np.nan, 5.0]).reshape(1, 2, 2, 1)
    dy = np.array([0.5, 0.25, 2.0]).reshape(1, 1, 3, 1)
    _, (dx_tf, _) = tape_vjp(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"), (x, w), dy)
    _, res = nnref.conv2d_fwd(x, w, padding="SAME")
    with np.errstate(invalid="ignore"):
        dx, _ = nnref.conv2d_bwd(res, dy)
    np.testing.assert_array_equal(dx_tf[..., 0].ravel(), [0.5, np.nan, np.nan])
    np.testing.assert_array_equal(dx, dx_tf)
