"""dense and bias_add: pinned values and bad input."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import nnref


def _xwb(rng, n=3, i=4, o=2, dt=np.float64):
    return (
        rng.standard_normal((n, i)).astype(dt),
        rng.standard_normal((i, o)).astype(dt),
        rng.standard_normal(o).astype(dt),
    )


def test_dense_value_and_dtype(rng) -> None:
    for dt in (np.float32, np.float64):
        x, w, b = _xwb(rng, dt=dt)
        y = nnref.dense(x, w, b)
        assert y.shape == (3, 2)
        assert y.dtype == dt
        np.testing.assert_allclose(y, x.astype(np.float64) @ w + b, rtol=1e-5)


def test_dense_vjp_pinned() -> None:
    x = np.array([[1.0, 2.0]])
    w = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.5]])
    b = np.array([0.5, -0.5, 0.0])
    y, res = nnref.dense_fwd(x, w, b)
    np.testing.assert_array_equal(y, [[5.5, 1.5, 0.0]])
    dx, dw, db = nnref.dense_bwd(res, np.array([[1.0, -1.0, 2.0]]))
    np.testing.assert_array_equal(dx, [[-1.0, 2.0]])
    np.testing.assert_array_equal(dw, [[1.0, -1.0, 2.0], [2.0, -2.0, 4.0]])
    np.testing.assert_array_equal(db, [1.0, -1.0, 2.0])


@pytest.mark.parametrize(
    ("x", "w", "b", "err", "match"),
    [
        pytest.param(
            (3,),
            (3, 2),
            (2,),
            ValueError,
            r"dense: argument 'x' must have rank >= 2, got shape \(3,\)",
            id="x-rank-1",
        ),
        pytest.param(
            (3, 4), (4,), (2,), ValueError, r"'w' must have rank 2, got shape \(4,\)", id="w-rank-1"
        ),
        pytest.param(
            (3, 4),
            (5, 2),
            (2,),
            ValueError,
            r"last axis of 'x' \(3, 4\) must equal the first axis of 'w' \(5, 2\)",
            id="inner-mismatch",
        ),
        pytest.param(
            (3, 4),
            (4, 2),
            (3,),
            ValueError,
            r"bias 'b' \(3,\) must match the last axis of 'w' \(4, 2\)",
            id="bias-mismatch",
        ),
        pytest.param((3, 4), (4, 2), (1, 2), ValueError, r"'b' must have rank 1", id="bias-rank-2"),
        pytest.param(
            (0, 4),
            (4, 2),
            (2,),
            ValueError,
            r"dense: argument 'x' is empty \(shape \(0, 4\)\)",
            id="empty-batch",
        ),
    ],
)
def test_dense_bad_shapes(x, w, b, err, match) -> None:
    with pytest.raises(err, match=match):
        nnref.dense(np.ones(x), np.ones(w), np.ones(b))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("lead", [(2,), (2, 4)], ids=["rank-2", "rank-3"])
def test_dense_with_zero_units_is_empty_as_tf(dt, lead, rng) -> None:
    """``tf.matmul(x, w) + b`` with ``w`` of shape ``(in, 0)`` gives an empty ``(..., 0)``
    result (the bias add once divided by the channel count); its VJP has ``dx = 0``."""
    x = rng.standard_normal((*lead, 3)).astype(dt)
    y, res = nnref.dense_fwd(x, np.ones((3, 0), dt), np.ones(0, dt))
    assert y.shape == (*lead, 0)
    assert y.dtype == dt
    dx, dw, db = nnref.dense_bwd(res, np.ones(y.shape, dt))
    assert (dx.shape, dw.shape, db.shape) == (x.shape, (3, 0), (0,))
    assert dx.dtype == dw.dtype == db.dtype == dt
    np.testing.assert_array_equal(dx, np.zeros_like(x))
    pw, pb = nnref.dense_bwd_params(res, np.ones(y.shape, dt))
    assert (pw.shape, pb.shape) == ((3, 0), (0,))


def test_bias_add_and_conv2d_refuse_zero_channels() -> None:
    """Not an empty result as dense's: bias_add refuses an empty 'x' (documented), TF's conv2d
    refuses a kernel with zero elements, and so does nnref's."""
    with pytest.raises(ValueError, match=r"^bias_add: argument 'x' is empty \(shape \(2, 0\)\)"):
        nnref.bias_add(np.ones((2, 0)), np.ones(0))
    with pytest.raises(ValueError, match=r"^conv2d: kernel 'w' is empty"):
        nnref.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 0)), np.ones(0))


def test_dense_bad_dtypes() -> None:
    f32, f64 = np.ones((2, 3), np.float32), np.ones((3, 2))
    with pytest.raises(
        TypeError,
        match=r"dense: arguments 'x' float32\(2, 3\) and 'w' float64\(3, 2\) must have the same dtype",
    ):
        nnref.dense(f32, f64, np.ones(2))
    with pytest.raises(
        TypeError,
        match=r"dense: argument 'x' must be float32 or float64, got dtype int64 with shape \(2, 3\)",
    ):
        nnref.dense(np.ones((2, 3), np.int64), f64, np.ones(2))
    with pytest.raises(TypeError, match="float16"):
        nnref.dense(np.ones((2, 3), np.float16), f64, np.ones(2))
    with pytest.raises(TypeError, match="dtype bool"):
        nnref.bias_add(np.ones((2, 3), bool), np.ones(3))


def test_dense_bwd_checks_cotangent(rng) -> None:
    x, w, b = _xwb(rng)
    _, res = nnref.dense_fwd(x, w, b)
    with pytest.raises(
        ValueError,
        match=r"dense: argument 'dy' must have the output's shape \(3, 2\), got \(2, 3\)",
    ):
        nnref.dense_bwd(res, np.ones((2, 3)))
    with pytest.raises(
        TypeError, match="dense: argument 'dy' must have the output's dtype float64, got float32"
    ):
        nnref.dense_bwd(res, np.ones((3, 2), np.float32))


def test_bias_add_nhwc_and_errors(rng) -> None:
    x = rng.standard_normal((2, 3, 3, 4))
    b = rng.standard_normal(4)
    y, res = nnref.bias_add_fwd(x, b)
    np.testing.assert_array_equal(y, x + b)
    dy = rng.standard_normal(y.shape)
    dx, db = nnref.bias_add_bwd(res, dy)
    np.testing.assert_array_equal(dx, dy)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1, 2)), rtol=1e-14)
    with pytest.raises(
        ValueError,
        match=r"bias_add: bias 'b' \(3,\) must match the last axis of 'x' \(2, 3, 3, 4\)",
    ):
        nnref.bias_add(x, np.ones(3))
    with pytest.raises(ValueError, match="rank >= 2"):
        nnref.bias_add(np.ones(4), np.ones(4))


def test_python_lists_are_accepted_as_float64() -> None:
    y = nnref.dense([[1.0, 2.0]], [[1.0], [1.0]], [0.5])
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[3.5]])
    with pytest.raises(TypeError, match="int64"):
        nnref.dense([[1, 2]], [[1.0], [1.0]], [0.5])


def test_inputs_are_not_mutated(rng) -> None:
    x, w, b = _xwb(rng)
    for a in (x, w, b):
        a.setflags(write=False)
    y, res = nnref.dense_fwd(x, w, b)
    dy = rng.standard_normal(y.shape)
    dy.setflags(write=False)
    nnref.dense_bwd(res, dy)
    _y2, res2 = nnref.bias_add_fwd(y, b)
    nnref.bias_add_bwd(res2, dy)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_bias_adds_and_dense_bwd_params_bits_for_any_thread_count(dt, rng, monkeypatch) -> None:
    """The row-split bias adds equal ``x @ w + b`` and ``x + b``; ``dense_bwd_params`` returns
    ``dense_bwd``'s ``(dw, db)``; read-only inputs are only read."""
    dense_mod = importlib.import_module("nnref.ops.dense")  # nnref.ops.dense is the function

    monkeypatch.setattr(dense_mod, "ELEMENTWISE_MIN_CHUNK", 6)  # a few rows per range
    x, w, b = _xwb(rng, n=11, i=3, o=4, dt=dt)
    dy = rng.standard_normal((11, 4)).astype(dt)
    for a in (x, w, b, dy):
        a.setflags(write=False)
    want = x @ w
    want += b
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        y, res = nnref.dense_fwd(x, w, b)
        assert y.tobytes() == want.tobytes(), threads
        xs = x[::2]  # strided
        assert nnref.bias_add(xs, w[:, 0]).tobytes() == (xs + w[:, 0]).tobytes(), threads
        _, dw, db = nnref.dense_bwd(res, dy)
        pw, pb = nnref.dense_bwd_params(res, dy)
        assert pw.tobytes() == dw.tobytes()
        assert pb.tobytes() == db.tobytes()
    with pytest.raises(ValueError, match=r"dense: argument 'dy' must have the output's shape"):
        nnref.dense_bwd_params(res, dy[:3])
