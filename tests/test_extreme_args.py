"""Arguments far out of the ordinary: padding, strides and dilations far beyond the input cost
what the output does (the padded input is never materialized), and a result too large to
allocate is a MemoryError naming the op, the arguments, the shape and the size, never NumPy's
"Unable to allocate 284. PiB" from deep inside (nor an int64 arange of ``depth`` in one_hot).

Sizes that must fail are chosen beyond any machine (hundreds of petabytes and more), so that no
test depends on the memory free; the conventions are in ``nnref._memory``."""

from __future__ import annotations

import itertools
import re
import tracemalloc

import numpy as np
import pytest

import nnref
from nnref import init
from nnref.cases import TABLES, make_case
from nnref.check.compare import ORACLE_RTOL, assert_close
from nnref.data import kfold_batches, kfold_sizes, shuffled_batches, toy_two_feature
from nnref.ops import _dftconv, conv
from nnref.ops._windows import tap_runs
from nnref.ops.conv import Conv2DResiduals
from nnref.verify import leg_function

ALGORITHMS = ["direct", "dft", "auto"]
#: 10**8 of padding on each side at stride 10**6: 201 x 201 outputs, of which only (100, 100)
#: meets the input (its window starts at the padded position 10**8, the input's first pixel).
FAR_PADDING = {"strides": 10**6, "padding": [[0, 0], [10**8, 10**8], [10**8, 10**8], [0, 0]]}


def _naive(x, w, static, dy):
    y, res = nnref.conv2d_naive_fwd(x, w, **static)
    return y, *nnref.conv2d_naive_bwd(res, dy)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_padding_far_beyond_the_windows(algorithm, rng) -> None:
    """Once a MemoryError for the 284 PB padded input; the 'dft' transform would be 10**8 long
    (it falls back to 'direct'). Windows of padding only give exactly the bias (0 * w + b)."""
    x = rng.standard_normal((2, 5, 5, 3))
    w = rng.standard_normal((2, 2, 3, 4))
    b = rng.standard_normal(4)
    y, res = nnref.conv2d_fwd(x, w, b, algorithm=algorithm, **FAR_PADDING)
    assert y.shape == (2, 201, 201, 4)
    assert isinstance(res, Conv2DResiduals)
    live = np.einsum("nabc,abco->no", x[:, :2, :2], w)
    dead = np.ones((201, 201), bool)
    dead[100, 100] = False
    np.testing.assert_array_equal(y[:, dead], np.broadcast_to(b, y[:, dead].shape))
    assert_close(y[:, 100, 100], live + b, rtol=1e-13, what="y live")
    dy = rng.standard_normal(y.shape)
    dx, dw, db = nnref.conv2d_bwd(res, dy)
    y_n, dx_n, dw_n = _naive(x, w, FAR_PADDING, dy)
    assert_close(y, y_n + b, rtol=1e-13, what="y vs naive")
    assert_close(dx, dx_n, rtol=1e-13, what="dx vs naive")
    assert_close(dw, dw_n, rtol=1e-13, what="dw vs naive")
    want_dx = np.zeros_like(x)
    want_dx[:, :2, :2] = np.einsum("no,abco->nabc", dy[:, 100, 100], w)
    assert_close(dx, want_dx, rtol=1e-13, what="dx")
    assert not dx[:, 2:].any()
    assert not dx[:, :, 2:].any()
    assert_close(dw, np.einsum("nabc,no->abco", x[:, :2, :2], dy[:, 100, 100]), what="dw")
    assert_close(db, dy.sum(axis=(0, 1, 2)), rtol=1e-13, what="db")
    filt = nnref.conv2d_bwd_filter(res, dy)
    np.testing.assert_array_equal(filt[0], dw)
    np.testing.assert_array_equal(filt[1], db)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize(
    "dilations", [10**9, [3, 10**9], [10**9, 2], 10**30], ids=["1e9", "3-1e9", "1e9-2", "1e30"]
)
def test_conv2d_dilation_far_beyond_the_input(algorithm, dilations, rng) -> None:
    """SAME with dilations 10**9 once asked for a 6.94 EB padded input. A 2-tap axis then
    reads padding only at every output (y = 0, no gradient); a 3-tap axis reads the input
    through its centre tap only."""
    x = rng.standard_normal((2, 5, 6, 3))
    for kh, kw in ((2, 2), (3, 3), (3, 2), (1, 3)):
        w = rng.standard_normal((kh, kw, 3, 4))
        static = {"padding": "SAME", "dilations": dilations}
        y, res = nnref.conv2d_fwd(x, w, algorithm=algorithm, **static)
        assert y.shape == (2, 5, 6, 4)
        dy = rng.standard_normal(y.shape)
        dx, dw = nnref.conv2d_bwd(res, dy)
        y_n, dx_n, dw_n = _naive(x, w, static, dy)
        for what, a, want in (("y", y, y_n), ("dx", dx, dx_n), ("dw", dw, dw_n)):
            assert_close(a, want, rtol=1e-13, what=f"{kh}x{kw} {what}")
        np.testing.assert_array_equal(nnref.conv2d_bwd_filter(res, dy), dw)
        d = (dilations, dilations) if np.ndim(dilations) == 0 else dilations
        far = [dk > 6 for dk in d]  # every tap but one lands beyond the 5x6 input
        if any(f and k % 2 == 0 for f, k in zip(far, (kh, kw), strict=True)):
            # SAME centres the window: an even one's taps fall on both sides of the input
            assert not y.any()
            assert not dx.any()
            assert not dw.any()
        elif all(f or k == 1 for f, k in zip(far, (kh, kw), strict=True)):
            a, c = kh // 2, kw // 2  # the centre tap alone reads the input
            assert_close(y, x @ w[a, c], rtol=1e-13, what="centre tap")
            assert not np.delete(dw.reshape(kh * kw, 3, 4), a * kw + c, axis=0).any()


def test_conv2d_non_finite_kernel_over_far_padding_keeps_nan() -> None:
    """A window of padding only still multiplies every tap by 0: an inf tap gives NaN in its
    output channel (as TF, checked with a small dilation in the TF test below), never reaches
    dx (no tap reads the input) and leaves the other channels 0."""
    x = np.ones((1, 5, 5, 1))
    w = np.ones((2, 2, 1, 2))
    w[0, 0, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):
        for algorithm in ALGORITHMS:
            y, res = nnref.conv2d_fwd(x, w, padding="SAME", dilations=10**9, algorithm=algorithm)
            assert np.isnan(y[..., 0]).all()
            np.testing.assert_array_equal(y[..., 1], 0)
            dx, dw = nnref.conv2d_bwd(res, np.ones_like(y))
            np.testing.assert_array_equal(dx, 0)
            np.testing.assert_array_equal(dw, 0)
        y_n = nnref.conv2d_naive(x, w, padding="SAME", dilations=10**9)
    np.testing.assert_array_equal(y_n, y)


#: TF can run these (its padded input is at most 24 MB): padding 10**5 at stride 10**3 on H,
#: dilation 1000 on 5 pixels.
TF_EXTREMES = [
    pytest.param(
        (3, 2),
        {"strides": [10**3, 2], "padding": [[0, 0], [10**5, 10**5], [3, 3], [0, 0]]},
        id="padding-1e5-stride-1e3",
    ),
    pytest.param((3, 2), {"padding": "SAME", "dilations": [1000, 2]}, id="dilation-1000-same"),
    pytest.param((3, 3), {"padding": "SAME", "dilations": 1000}, id="dilation-1000-both"),
]


@pytest.mark.tf
@pytest.mark.parametrize("algorithm", ["direct", "dft"])
@pytest.mark.parametrize(("k", "static"), TF_EXTREMES)
def test_conv2d_far_padding_and_dilation_match_tensorflow(algorithm, k, static, rng) -> None:
    x = rng.standard_normal((2, 5, 5, 3))
    w = rng.standard_normal((*k, 3, 4))
    b = rng.standard_normal(4)
    y, res = nnref.conv2d_fwd(x, w, b, algorithm=algorithm, **static)
    assert y.any()
    dy = rng.standard_normal(y.shape)
    grads = nnref.conv2d_bwd(res, dy)
    y_tf, grads_tf = leg_function("conv2d", "tf")((x, w, b), static, dy)
    for what, a, want in zip(("y", "dx", "dw", "db"), (y, *grads), (y_tf, *grads_tf), strict=True):
        assert_close(a, np.asarray(want), rtol=ORACLE_RTOL["float64"], what=what)


@pytest.mark.tf
def test_conv2d_non_finite_kernel_over_padding_matches_tensorflow() -> None:
    """TF too multiplies padding by the kernel: 0 * inf = NaN in windows of padding only."""
    x = np.ones((1, 5, 5, 1))
    w = np.ones((2, 2, 1, 2))
    w[0, 0, 0, 0] = np.inf
    static = {"padding": "SAME", "dilations": 100}
    with np.errstate(invalid="ignore"):
        y = nnref.conv2d(x, w, **static)
    y_tf, _ = leg_function("conv2d", "tf")((x, w), static, np.ones_like(y))
    np.testing.assert_array_equal(y, np.asarray(y_tf))
    assert np.isnan(y[..., 0]).all()


CASES = [c.id for c in TABLES["conv2d"].cases]
#: Beyond the case table: strides beyond the window with padding (columns from the input, not a
#: padded slab), one input channel (transposed columns), taps reading padding only.
EXTRA = [
    ((1, 7, 8, c), (kh, kw, c, 2), s, d, pad)
    for c, (kh, kw), s, d, pad in itertools.product(
        (1, 3),
        ((1, 1), (2, 3), (3, 3)),
        (1, 3, (2, 4)),
        (1, 2),
        ("SAME", [[0, 0], [4, 0], [1, 5], [0, 0]]),
    )
]


def _direct(x, w, static, dy):
    y, res = nnref.conv2d_fwd(x, w, **static)
    with np.errstate(invalid="ignore"):
        return [a.tobytes() for a in (y, *nnref.conv2d_bwd(res, dy))]


@pytest.mark.parametrize("case", [*CASES, *range(len(EXTRA))])
def test_conv2d_columns_from_a_padded_slab_or_the_input_give_the_same_bits(
    case, rng, monkeypatch
) -> None:
    """The direct path builds columns from a padded copy of the slab when that costs no more
    than the columns, else from the input tap by tap: the same columns, so the same bits for
    y, dx and dw (also with an inf tap, whose 0 * inf must stay where padding is read)."""
    if isinstance(case, str):
        (x, w), static, _ = make_case("conv2d", case, np.float64)
    else:
        xs, ws, s, d, pad = EXTRA[case]
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        static = {"strides": s, "dilations": d, "padding": pad}
    y = nnref.conv2d(x, w, **static)
    if y.size == 0:
        return
    dy = rng.standard_normal(y.shape)
    w_inf = w.copy()
    w_inf[0, -1, 0, 0] = np.inf
    got = {}
    for pads in (True, False):
        monkeypatch.setattr(conv, "_slab_pads", lambda res, pads=pads: pads)
        got[pads] = [_direct(x, k, static, dy) for k in (w, w_inf)]
    assert got[True] == got[False]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_output_too_large_is_a_named_memory_error(algorithm) -> None:
    """An output of 6.4 EB (case 3 of the report asked for 64 GB: the same code path at a size
    no machine has). The message names the op, the arguments, the shape and the size."""
    x, w = np.ones((1, 5, 5, 1)), np.ones((2, 2, 1, 1))
    pad = [[0, 0], [10**17, 10**17], [0, 0], [0, 0]]
    msg = re.escape(
        f"conv2d: 'strides' (1, 1), 'dilations' (1, 1) and 'padding' {pad} on 'x' (1, 5, 5, 1) "
        f"and 'w' (2, 2, 1, 1) gives an output of shape (1, {2 * 10**17 + 4}, 4, 1) (float64, "
        "6.4 EB), which cannot be allocated"
    )
    with pytest.raises(MemoryError, match=f"^{msg}$") as info:
        nnref.conv2d(x, w, padding=pad, algorithm=algorithm)
    assert isinstance(info.value.__cause__, MemoryError)  # NumPy's, kept as the cause
    with pytest.raises(MemoryError, match=r"^conv2d_naive: 'strides' .* 6.4 EB"):
        nnref.conv2d_naive(x, w, padding=pad)


def test_conv2d_dft_transforms_too_large_is_a_named_memory_error(monkeypatch) -> None:
    """The DFT path does not fall back to 'direct' when its transforms cannot be allocated
    (the bits would follow the memory free): it says what it needed."""

    def forward(*args):
        raise MemoryError("Unable to allocate")

    monkeypatch.setattr(_dftconv, "forward", forward)
    with pytest.raises(
        MemoryError,
        match=r"^conv2d: algorithm='dft' cannot allocate its transforms for 'strides' \(1, 1\).*"
        r": length 6x6, the input's spectrum alone of shape \(6, 6, 2, 3\) \(complex128, "
        r"3.46 kB\); algorithm='direct' needs the output \(4.8 kB, allocated\)",
    ):
        nnref.conv2d(np.ones((3, 5, 5, 3)), np.ones((3, 3, 3, 8)), padding="SAME", algorithm="dft")


class _RefusingNumPy:
    """``numpy`` for a module under test, whose ``empty`` refuses one shape (MemoryError)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __getattr__(self, name: str):
        return getattr(np, name)

    def empty(self, shape, dtype=float):
        if (tuple(shape) if np.iterable(shape) else (shape,)) == self.shape:
            raise MemoryError("Unable to allocate")
        return np.empty(shape, dtype)


@pytest.mark.parametrize(
    ("buffer", "bwd"),
    [
        pytest.param("per_image", nnref.conv2d_bwd, id="dy-spectrum"),
        pytest.param("per_image_2", nnref.conv2d_bwd, id="dy-second-transform-for-dx"),
        pytest.param("per_channel", nnref.conv2d_bwd, id="dw-per-frequency-products"),
        pytest.param("per_input", nnref.conv2d_bwd, id="dx-spectrum"),
        pytest.param((3, 5, 5, 3), nnref.conv2d_bwd, id="dx"),
        pytest.param("per_image", nnref.conv2d_bwd_filter, id="filter-only-dy-spectrum"),
        pytest.param("per_channel", nnref.conv2d_bwd_filter, id="filter-only-products"),
        pytest.param((3, 3, 24), nnref.conv2d_bwd_filter, id="filter-only-dw"),  # (KH, KW, C*O)
    ],
)
@pytest.mark.parametrize("algorithm", ["dft", "auto"])
def test_conv2d_dft_backward_too_large_names_the_users_call(
    monkeypatch, buffer, bwd, algorithm
) -> None:
    """The DFT path's backward raised NumPy's bare error from its workspace buffers and its
    gradients; it names the user's call, as the forward's transforms do (and no fallback).
    It names the path the forward took, which "auto" may have picked: not algorithm='dft'."""
    monkeypatch.setattr(conv, "_dft_wins", lambda *a: True)  # "auto" picks the DFT here
    x, w = np.ones((3, 5, 5, 3)), np.ones((3, 3, 3, 8))
    y, res = nnref.conv2d_fwd(x, w, padding="SAME", algorithm=algorithm)
    assert isinstance(res, conv.Conv2DDFTResiduals)
    dy = np.ones_like(y)
    dy[1] *= 1e4  # the first pair's dy scales differ: dx takes its own transform of dy
    if isinstance(buffer, str):
        real = _dftconv.take

        def take(role, shape, dtype):
            if role == buffer:
                raise MemoryError("Unable to allocate")
            return real(role, shape, dtype)

        monkeypatch.setattr(_dftconv, "take", take)
    else:
        monkeypatch.setattr(_dftconv, "np", _RefusingNumPy(buffer))
    msg = re.escape(
        "conv2d: the DFT path its forward pass took cannot allocate its backward transforms for "
        "'strides' (1, 1), "
        "'dilations' (1, 1) and 'padding' [[0, 0], [1, 1], [1, 1], [0, 0]] on 'x' (3, 5, 5, 3) "
        "and 'w' (3, 3, 3, 8): length 6x6, dy's spectrum alone of shape (6, 6, 2, 8) "
        "(complex128, 9.22 kB); the backward of algorithm='direct' needs per-slab buffers "
        "besides the gradients"
    )
    with pytest.raises(MemoryError, match=f"^{msg}$") as info:
        bwd(res, dy)
    assert str(info.value.__cause__) == "Unable to allocate"  # the allocator's, kept as the cause


@pytest.mark.parametrize(
    ("padding", "what"),
    [
        (
            "VALID",
            r"im2col columns for 1 image\(s\) of shape \(1, 3, 3, 3, 3, 3\) \(float64, 1.94 kB\)",
        ),
        # SAME: tiles that skip the padding (_tiles); the largest, the interior 3x3 outputs
        ("SAME", r"im2col columns of a tile of shape \(243,\) \(float64, 1.94 kB\)"),
    ],
)
def test_conv2d_columns_too_large_is_a_named_memory_error(
    monkeypatch, padding: str, what: str
) -> None:
    def take(role, shape, dtype):
        raise MemoryError("Unable to allocate")

    monkeypatch.setattr(conv, "take", take)
    monkeypatch.setattr(conv, "_SKIP_MIN_MACS", 0)  # tiles even for this small a convolution
    with pytest.raises(
        MemoryError,
        match=rf"^conv2d: 'strides' \(1, 1\).* gives {what}, which cannot be allocated$",
    ):
        nnref.conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 8)), padding=padding)


@pytest.mark.parametrize(
    ("strides", "skip", "what"),
    [
        (1, conv._SKIP_MIN_MACS, r"im2col columns of dy for the input gradient for 1 image\(s\)"),
        (1, 0, r"im2col columns of dy for the input gradient of a tile"),  # padding skipped
        (2, conv._SKIP_MIN_MACS, r"column gradients for 1 image\(s\)"),  # per-tap scatter
    ],
)
def test_conv2d_input_gradient_too_large_names_the_users_call(
    monkeypatch, strides: int, skip: int, what: str
) -> None:
    """The stride-1 dx runs the forward over dy with the flipped kernel: its error named dy as
    'x', the flipped kernel as 'w' and an internal padding; the strided dx's column gradients
    raised NumPy's bare error."""
    monkeypatch.setattr(conv, "_SKIP_MIN_MACS", skip)
    x, w = np.ones((1, 6, 6, 2)), np.ones((3, 3, 2, 4))
    y, res = nnref.conv2d_fwd(x, w, strides=strides, padding="VALID")
    real = conv.take

    def take(role, shape, dtype):  # dx's buffers only: dw's columns end in C_in = 2
        if role == "direct-dx" or (role == "direct-cols" and shape[-1] != 2):
            raise MemoryError("Unable to allocate")
        return real(role, shape, dtype)

    monkeypatch.setattr(conv, "take", take)
    cause = re.escape(
        f"conv2d: 'strides' ({strides}, {strides}), 'dilations' (1, 1) and 'padding' "
        "[[0, 0], [0, 0], [0, 0], [0, 0]] on 'x' (1, 6, 6, 2) and 'w' (3, 3, 2, 4) gives "
    )
    with pytest.raises(MemoryError, match=f"^{cause}{what} of shape "):
        nnref.conv2d_bwd(res, np.ones_like(y))


def test_max_pool2d_output_too_large_is_a_named_memory_error() -> None:
    x = np.ones((1, 5, 5, 1))
    k, pad = 10**9, [[0, 0], [10**9 - 1, 10**9 - 1], [10**9 - 1, 10**9 - 1], [0, 0]]
    for op in (nnref.max_pool2d, nnref.max_pool2d_naive):
        name = op.__name__
        msg = re.escape(
            f"{name}: 'ksize' ({k}, {k}), 'strides' (1, 1) and 'padding' {pad} on 'x' "
            f"(1, 5, 5, 1) gives an output of shape (1, {k + 4}, {k + 4}, 1) (float64, 8 EB), "
            "which cannot be allocated"
        )
        with pytest.raises(MemoryError, match=f"^{msg}$"):
            op(x, ksize=k, strides=1, padding=pad)


def test_max_pool2d_window_beyond_int64_offsets_is_refused_by_name() -> None:
    """Once a bare StopIteration from choosing the routing's integer type."""
    for padding in ("SAME", "VALID"):
        with pytest.raises(ValueError, match=r"^max_pool2d: 'ksize' \(10{30}, 2\) has 2 ?0{30}"):
            nnref.max_pool2d(np.ones((1, 5, 5, 1)), ksize=[10**30, 2], strides=1, padding=padding)


def test_one_hot_depth_too_large_is_a_named_memory_error() -> None:
    """Once a MemoryError (10**11) or ValueError (10**19) from an int64 arange of depth."""
    idx = np.array([1, 2])
    with pytest.raises(
        MemoryError,
        match=r"^one_hot: 'depth' 100000000000000000 gives an output of shape "
        r"\(2, 100000000000000000\) \(float32, 800 PB\), which cannot be allocated$",
    ):
        nnref.one_hot(idx, 10**17)
    with pytest.raises(
        MemoryError, match=r"\(10000000000000000000, 1, 2\) \(uint8, 20 EB\), beyond"
    ):
        nnref.one_hot(idx[None], 10**19, dtype=np.uint8, axis=0)


def test_one_hot_allocates_its_output_only() -> None:
    """An int64 arange of depth and a boolean mask of the output's size came on top of the
    output (uint8 here: 10.8x its size at the peak)."""
    idx = np.arange(-5, 45) % 9
    tracemalloc.start()
    try:
        out = nnref.one_hot(idx, 200_000, dtype=np.uint8, on_value=7, off_value=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.nbytes == 10**7
    assert peak < out.nbytes + 10**5


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.bool_, np.complex64])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_one_hot_same_bits_as_the_mask_formula(dtype, axis, rng) -> None:
    """The fill-then-scatter implementation against ``where(indices == arange(depth))``:
    out-of-range and negative indices, every axis, the same strides."""
    idx = rng.integers(-3, 9, (4, 5)).astype(np.int16)
    on, off = (True, False) if dtype is np.bool_ else (3, -2)
    got = nnref.one_hot(idx, 7, on_value=on, off_value=off, axis=axis, dtype=dtype)
    dt = np.dtype(dtype)
    want = np.moveaxis(
        np.where(idx[..., None] == np.arange(7), dt.type(on), dt.type(off)), -1, axis
    )
    assert got.dtype == want.dtype
    assert got.strides == want.strides
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize(
    "fn", [init.glorot_uniform, init.random_normal, init.uniform, init.zeros, init.ones]
)
def test_initializer_shape_too_large_is_a_named_memory_error(fn) -> None:
    """The random initializers' failing allocation is their float64 draw: its size is
    reported (once the float32 result's, half of it)."""
    name = fn.__name__
    what, dt, size = ("an array", "float32", 4)
    if name not in ("zeros", "ones"):
        what, dt, size = ("a float64 draw (then cast to float32)", "float64", 8)
    with pytest.raises(
        MemoryError,
        match=re.escape(
            f"{name}: 'shape' (1000000000, 1000000000) gives {what} of shape "
            f"(1000000000, 1000000000) ({dt}, {size} EB), which cannot be allocated"
        ),
    ):
        fn(0, (10**9, 10**9))
    with pytest.raises(MemoryError, match=rf"^{name}: .*\({dt}, {size}e\+06 YB\), beyond NumPy's"):
        fn(0, (10**15, 10**15))


@pytest.mark.parametrize("fn", [init.glorot_uniform, init.random_normal, init.uniform])
def test_initializer_draw_beyond_index_range_is_reported_as_the_draw(fn) -> None:
    """2e18 float32 entries (8 EB) are within NumPy's index range, their float64 draw (16 EB)
    is not: NumPy refused the draw, and the message said the float32 array merely could not be
    allocated. A float64 result is the draw itself, nothing cast."""
    name, s = fn.__name__, (2 * 10**9, 10**9)
    with pytest.raises(
        MemoryError,
        match="^"
        + re.escape(
            f"{name}: 'shape' {s} gives a float64 draw (then cast to float32) of shape {s} "
            "(float64, 16 EB), beyond NumPy's index range"
        )
        + "$",
    ) as info:
        fn(0, s)
    assert isinstance(info.value.__cause__, ValueError)  # NumPy's "array is too big"
    with pytest.raises(
        MemoryError, match=re.escape(f"gives a float64 draw of shape {s} (float64, 16 EB), beyond")
    ):
        fn(0, s, np.float64)


def test_initializer_cast_too_large_is_reported_as_the_result() -> None:
    """When the draw could be allocated and its cast not, the cast's result is reported."""

    class Drawn:  # a float64 draw whose float32 copy cannot be allocated
        def astype(self, dtype, copy=True):
            raise MemoryError("Unable to allocate")

    class Generator(np.random.Generator):
        def uniform(self, low=0.0, high=1.0, size=None):
            return Drawn()

    with pytest.raises(
        MemoryError,
        match="^"
        + re.escape(
            "uniform: 'shape' (1000000000, 1000000000) gives an array (drawn in float64, then "
            "cast) of shape (1000000000, 1000000000) (float32, 4 EB), which cannot be allocated"
        )
        + "$",
    ):
        init.uniform(Generator(np.random.PCG64(0)), (10**9, 10**9))


def test_batching_sizes_too_large_are_named_memory_errors() -> None:
    n = 10**17
    with pytest.raises(
        MemoryError,
        match=rf"^kfold_batches: 'n' {n} with 'batch_size' 64 gives 1562500000000000 batches of a "
        rf"permutation of shape \({n},\) \(int64, 800 PB\), which cannot be allocated$",
    ):
        kfold_batches(n, 64, 0)
    with pytest.raises(
        MemoryError,
        match=rf"^shuffled_batches: 'n' {n} with 'batch_size' 3 gives 33333333333333334 batches",
    ):
        shuffled_batches(n, 3, 0)
    with pytest.raises(MemoryError, match=r"^shuffled_batches: .*\(int64, 80 EB\), beyond NumPy's"):
        shuffled_batches(10**19, 3, 0)
    with pytest.raises(
        MemoryError,
        match=rf"^kfold_sizes: 'k' {n} gives a list of {n} fold sizes \(800 PB of pointers\), "
        "which cannot be allocated$",
    ):
        kfold_sizes(n, n)


def test_toy_dataset_size_too_large_is_a_named_memory_error() -> None:
    with pytest.raises(
        MemoryError,
        match=r"^toy_two_feature: 'n' 100000000000000000 gives inputs of shape "
        r"\(100000000000000000, 2\) \(float64, 1.6 EB\), which cannot be allocated$",
    ):
        toy_two_feature(n=10**17)


def _tap_runs_by_brute_force(k, s, d, out, before, n):
    runs = []
    for a in range(k):
        outs = [o for o in range(out) if 0 <= o * s + a * d - before < n]
        if outs:
            o0, o1 = outs[0], outs[-1] + 1
            r0 = o0 * s + a * d - before
            runs.append((a, slice(r0, r0 + (o1 - o0 - 1) * s + 1, s), slice(o0, o1)))
    return runs


def test_tap_runs_match_a_brute_force_search() -> None:
    # strides beyond the input (s > n) leave taps between the outputs' reaches: skipped now
    for k, s, d, out, before, n in itertools.product(
        range(1, 8), range(1, 8), range(1, 4), range(6), range(8), range(1, 6)
    ):
        assert tap_runs(k, s, d, out, before, n) == _tap_runs_by_brute_force(
            k, s, d, out, before, n
        ), (k, s, d, out, before, n)


def test_max_pool2d_stride_far_beyond_the_input_skips_the_taps_between() -> None:
    """A window of 10**8 rows at stride 10**6 over 5 rows: 101 outputs, each meeting the input
    at a few taps, but the taps between their reaches (about 10**8 of them) were each visited
    in Python (30 s)."""
    x = np.arange(5.0).reshape(1, 5, 1, 1)
    k, s, before = 10**8, 10**6, 10**8 - 1
    y = nnref.max_pool2d(
        x, ksize=[k, 1], strides=[s, 1], padding=[[0, 0], [before] * 2, [0, 0], [0, 0]]
    )
    rows = [range(max(0, o * s - before), min(5, o * s - before + k)) for o in range(y.shape[1])]
    assert all(rows)  # every window meets the input
    np.testing.assert_array_equal(y[0, :, 0, 0], [x[0, r[-1], 0, 0] for r in rows])
