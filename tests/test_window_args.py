"""conv2d / max_pool2d with different settings on the two spatial axes, against loop references
written here from TF's documented formulas (not nnref's window code), and the strides /
dilations / padding argument forms and errors, for the fast and the naive paths."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from nnref import ops
from nnref.check import check_vjp
from nnref.ops._windows import plan_axis


def _pads(n: int, k: int, s: int, d: int, padding: Any, axis: int) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":
        out = (n + s - 1) // s
        total = max((out - 1) * s + eff - n, 0)
        return total // 2, total - total // 2
    return tuple(padding[axis + 1])


def _conv_ref(x, w, s, d, padding, fill=0.0, reduce=None):
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2] if reduce is None else w
    (t, b), (lft, r) = _pads(h, kh, s[0], d[0], padding, 0), _pads(wd, kw, s[1], d[1], padding, 1)
    xp = np.full((n, h + t + b, wd + lft + r, c), fill)
    xp[:, t : t + h, lft : lft + wd] = x
    oh = max((h + t + b - (kh - 1) * d[0] - 1) // s[0] + 1, 0)
    ow = max((wd + lft + r - (kw - 1) * d[1] - 1) // s[1] + 1, 0)
    out = np.zeros((n, oh, ow, c if reduce else w.shape[3]))
    for i, j in itertools.product(range(oh), range(ow)):
        win = np.stack(
            [
                xp[:, i * s[0] + a * d[0], j * s[1] + bb * d[1], :]
                for a, bb in itertools.product(range(kh), range(kw))
            ],
            axis=1,
        )  # (N, KH*KW, C)
        if reduce is None:
            out[:, i, j] = np.einsum("npc,pco->no", win, w.reshape(kh * kw, c, -1))
        else:
            out[:, i, j] = win.max(axis=1)
    return out


CONFIGS = [
    ((1, 2), (2, 1), "SAME"),
    ((2, 1), (1, 2), "VALID"),
    ((1, 3), (1, 1), "SAME"),
    ((2, 3), (2, 1), [[0, 0], [1, 2], [0, 3], [0, 0]]),
    ((3, 1), (1, 2), [[0, 0], [2, 0], [1, 1], [0, 0]]),
]


@pytest.mark.parametrize(("strides", "dilations", "padding"), CONFIGS)
@pytest.mark.parametrize("path", ["fast", "naive"])
def test_conv2d_axes_independent(strides, dilations, padding, path, rng) -> None:
    fwd, bwd = {
        "fast": (ops.conv2d_fwd, ops.conv2d_bwd),
        "naive": (ops.conv2d_naive_fwd, ops.conv2d_naive_bwd),
    }[path]
    x = rng.standard_normal((2, 7, 8, 2))
    w = rng.standard_normal((2, 3, 2, 3))
    kw = {"strides": strides, "dilations": dilations, "padding": padding}
    y, _ = fwd(x, w, **kw)
    ref = _conv_ref(x, w, strides, dilations, padding)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-13, atol=1e-13)
    public = ops.conv2d if path == "fast" else ops.conv2d_naive
    np.testing.assert_array_equal(public(x, w, **kw), y)
    check_vjp(fwd, bwd, [x, w], static=kw, mode="exact")
    for axis, (n, k) in enumerate(((7, 2), (8, 3))):
        plan = plan_axis(n, k, strides[axis], dilations[axis], _plan_padding(padding), axis)
        assert (plan.before, plan.after) == _pads(
            n, k, strides[axis], dilations[axis], padding, axis
        )
        assert plan.out == ref.shape[1 + axis]


def _plan_padding(padding: Any) -> Any:
    return padding if isinstance(padding, str) else (tuple(padding[1]), tuple(padding[2]))


@pytest.mark.parametrize(
    ("strides", "ksize", "padding"),
    [
        ((1, 2), (2, 3), "SAME"),
        ((2, 1), (3, 2), "VALID"),
        ((2, 3), (3, 2), [[0, 0], [1, 2], [0, 1], [0, 0]]),
    ],
)
@pytest.mark.parametrize("path", ["fast", "naive"])
def test_max_pool2d_axes_independent(strides, ksize, padding, path, rng) -> None:
    fwd, bwd = {
        "fast": (ops.max_pool2d_fwd, ops.max_pool2d_bwd),
        "naive": (ops.max_pool2d_naive_fwd, ops.max_pool2d_naive_bwd),
    }[path]
    x = rng.permutation(2 * 7 * 8 * 2).reshape(2, 7, 8, 2) / 10.0  # distinct values
    kw = {"ksize": ksize, "strides": strides, "padding": padding}
    y, _ = fwd(x, **kw)
    ref = _conv_ref(x, ksize, strides, (1, 1), padding, fill=-np.inf, reduce="max")
    np.testing.assert_array_equal(y, ref)
    public = ops.max_pool2d if path == "fast" else ops.max_pool2d_naive
    np.testing.assert_array_equal(public(x, **kw), y)
    check_vjp(fwd, bwd, [x], static=kw, mode="exact")


def test_conv2d_defaults_are_stride_1_valid_undilated(rng) -> None:
    x, w = rng.standard_normal((1, 5, 6, 2)), rng.standard_normal((3, 2, 2, 1))
    for f in (ops.conv2d, ops.conv2d_naive):
        y = f(x, w)
        assert y.shape == (1, 3, 5, 1)
        np.testing.assert_allclose(y, _conv_ref(x, w, (1, 1), (1, 1), "VALID"), rtol=1e-13)
    for fwd, public in ((ops.conv2d_fwd, ops.conv2d), (ops.conv2d_naive_fwd, ops.conv2d_naive)):
        np.testing.assert_array_equal(fwd(x, w)[0], public(x, w))


@pytest.mark.parametrize("form", [2, [2], [2, 2], [1, 2, 2, 1], np.int64(2), [np.int32(2), 2]])
def test_int_pair_forms(form, rng) -> None:
    x, w = rng.standard_normal((1, 6, 6, 1)), rng.standard_normal((2, 2, 1, 1))
    np.testing.assert_array_equal(ops.conv2d(x, w, strides=form), ops.conv2d(x, w, strides=(2, 2)))
    np.testing.assert_array_equal(
        ops.conv2d(x, w, dilations=form), ops.conv2d(x, w, dilations=(2, 2))
    )


@pytest.mark.parametrize("op", ["conv2d", "conv2d_naive", "max_pool2d", "max_pool2d_naive"])
@pytest.mark.parametrize(
    ("arg", "value", "exc", "msg"),
    [
        ("strides", (1, 0), ValueError, r"'strides' must be positive, got \(1, 0\)"),
        ("strides", (0, 1), ValueError, r"'strides' must be positive, got \(0, 1\)"),
        ("strides", [1, 2.0], TypeError, r"'strides' must hold ints, got \[1, 2.0\]"),
        ("strides", 1.5, TypeError, r"'strides' must be an int or a list of ints"),
        ("strides", [2, 1, 1, 1], ValueError, r"must be 1 on the batch and channel axes"),
        (
            "strides",
            [1, 1, 1],
            ValueError,
            r"'strides' must have 1, 2 or 4 entries, got \[1, 1, 1\]",
        ),
        ("padding", "same", ValueError, r"'padding' must be 'SAME', 'VALID' or an explicit"),
        ("padding", 3, TypeError, r"'padding' must be a string or a 4x2 list, got 3"),
        (
            "padding",
            [[0, 0], [1.0, 0], [0, 0], [0, 0]],
            TypeError,
            r"explicit 'padding' must hold ints",
        ),
        (
            "padding",
            [[0, 0], [0, 0], [0, 0]],
            ValueError,
            r"explicit 'padding' must be a list of 4 pairs",
        ),
        ("padding", [[1, 0], [0, 0], [0, 0], [0, 0]], ValueError, r"batch or channel dimensions"),
        ("padding", [[0, 0], [0, -1], [0, 0], [0, 0]], ValueError, r"must be nonnegative"),
    ],
)
def test_window_argument_errors_name_op_and_argument(op, arg, value, exc, msg, rng) -> None:
    x = rng.standard_normal((1, 5, 5, 1))
    call = {
        "conv2d": lambda **k: ops.conv2d(x, np.ones((2, 2, 1, 1)), **k),
        "conv2d_naive": lambda **k: ops.conv2d_naive(x, np.ones((2, 2, 1, 1)), **k),
        "max_pool2d": lambda **k: ops.max_pool2d(x, ksize=2, strides=k.pop("strides", 1), **k),
        "max_pool2d_naive": lambda **k: ops.max_pool2d_naive(
            x, ksize=2, strides=k.pop("strides", 1), **k
        ),
    }[op]
    with pytest.raises(exc, match=rf"^{op}: .*{msg}"):
        call(**{arg: value})
    if op.startswith("conv2d") and arg == "strides":
        with pytest.raises(exc, match=rf"^{op}: .*{msg.replace('strides', 'dilations')}"):
            call(dilations=value)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_conv2d_empty_output_keeps_dtype(dt) -> None:
    x, w = np.ones((2, 2, 2, 1), dt), np.ones((3, 3, 1, 4), dt)
    for fwd, bwd in (
        (ops.conv2d_fwd, ops.conv2d_bwd),
        (ops.conv2d_naive_fwd, ops.conv2d_naive_bwd),
    ):
        y, res = fwd(x, w)
        assert y.shape == (2, 0, 0, 4)
        assert y.dtype == dt
        dx, dw = bwd(res, np.zeros(y.shape, dt))
        assert dx.dtype == dw.dtype == dt
        np.testing.assert_array_equal(dx, np.zeros_like(x))
        np.testing.assert_array_equal(dw, np.zeros_like(w))


def test_same_padding_is_zero_when_the_windows_fit() -> None:
    assert plan_axis(4, 1, 1, 1, "SAME", 0) == (0, 0, 4)
    assert plan_axis(6, 2, 2, 1, "SAME", 1) == (0, 0, 3)
    assert plan_axis(7, 2, 2, 1, "SAME", 1) == (0, 1, 4)


def test_numpy_integer_window_arguments_become_python_ints() -> None:
    from nnref.ops._windows import spatial_pair

    got = spatial_pair("conv2d", "strides", [np.int64(2), np.int32(3)])
    assert got == (2, 3)
    assert all(type(v) is int for v in got)


@pytest.mark.parametrize(
    ("op", "kw"),
    [("conv2d", {"algorithm": "direct"}), ("conv2d", {"algorithm": "dft"}), ("conv2d_naive", {})],
    ids=["direct", "dft", "naive"],
)
def test_conv2d_dilation_far_beyond_the_input_is_not_padded(op, kw) -> None:
    """SAME padding grows with the effective kernel: dilations=10**9 once failed inside the
    workspace with NumPy's "array is too big" (10**30: "Maximum allowed dimension exceeded"),
    then was refused. No padding is materialized now: each output reads the input through the
    centre tap only (the others land 10**9 away, in the padding). VALID with the same dilation:
    the empty output, as before. An output beyond NumPy's index range is a MemoryError naming
    the arguments and the shape."""
    fwd = {"conv2d": ops.conv2d_fwd, "conv2d_naive": ops.conv2d_naive_fwd}[op]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 4, 1)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 1)).astype(np.float32)
    for d in (10**9, 10**30):
        y, _ = fwd(x, w, padding="SAME", dilations=d, **kw)
        assert y.shape == x.shape
        np.testing.assert_array_equal(y, x * w[1, 1, 0, 0])
    with pytest.raises(
        MemoryError,
        match=rf"^{op}: 'strides' \(1, 1\), 'dilations' \(1, 1\) and 'padding' \[\[0, 0\], "
        rf"\[{10**19}, 2\], \[0, 0\], \[0, 0\]\] on 'x' \(1, 4, 4, 1\) and 'w' \(3, 3, 1, 1\) "
        rf"gives an output of shape \(1, {10**19 + 4}, 2, 1\) \(float32, 80 EB\), beyond "
        r"NumPy's index range$",
    ):
        fwd(x, w, padding=[[0, 0], [10**19, 2], [0, 0], [0, 0]], **kw)
    y, _ = fwd(x, w, padding="VALID", dilations=10**9, **kw)
    assert y.shape == (1, 0, 0, 1)
