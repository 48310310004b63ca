"""relu, sigmoid, softmax, log_softmax: pinned values for what random tests avoid."""

from __future__ import annotations

import numpy as np
import pytest

import nnref
from nnref.check.compare import assert_close

FLOATS = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]


@pytest.mark.parametrize("dt", FLOATS)
def test_relu_gradient_at_zero_and_nan(dt) -> None:
    x = np.array([-1.0, -0.0, 0.0, 1e-30, np.inf, np.nan, 2.0], dt)
    y, res = nnref.relu_fwd(x)
    np.testing.assert_array_equal(
        y, [0, 0, 0, 1e-30 if dt == np.float64 else dt(1e-30), np.inf, np.nan, 2]
    )
    (dx,) = nnref.relu_bwd(res, np.full(x.shape, 3.0, dt))
    np.testing.assert_array_equal(dx, [0, 0, 0, 3, 3, 0, 3])  # 0 at 0 and -0.0 and NaN, as TF


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_relu_kink_and_nan_match_tf(dt) -> None:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = np.array([-1.0, -0.0, 0.0, 1e-30, np.inf, np.nan, 2.0], dt)
    dy = np.arange(1, 8).astype(dt)
    y_tf, (g_tf,) = tape_vjp(tf.nn.relu, (x,), dy)
    y, res = nnref.relu_fwd(x)
    np.testing.assert_array_equal(y, y_tf)
    np.testing.assert_array_equal(nnref.relu_bwd(res, dy)[0], g_tf)


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_relu_gradient_is_tfs_product_for_nan_inf_and_signed_cotangents(dt) -> None:
    """TF's ReluGrad multiplies ``dy`` by ``(y > 0)``: where the unit is off a NaN or infinite
    ``dy`` gives NaN and a negative one -0.0 (an adversarial probe: nnref selected +0.0 there,
    as JAX and PyTorch do). Compared bit for bit, signs of zero included."""
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = np.array([-1.0, 2.0, 0.0, -0.0, 3.0, -2.0, -4.0, 5.0, np.nan], dt)
    dy = np.array([np.nan, np.nan, np.inf, 5.0, -0.0, -3.0, -np.inf, -np.inf, -1.0], dt)
    _, (g_tf,) = tape_vjp(tf.nn.relu, (x,), dy)
    (dx,) = nnref.relu_bwd(nnref.relu_fwd(x)[1], dy)
    want = np.array([np.nan, np.nan, np.nan, 0.0, -0.0, -0.0, np.nan, -np.inf, -0.0], dt)
    finite = ~np.isnan(want)
    for got in (dx, np.asarray(g_tf)):
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got[finite]), np.signbit(want[finite]))


@pytest.mark.parametrize("dt", FLOATS)
def test_sigmoid_extremes(dt) -> None:
    x = np.array([-np.inf, -100.0, -17.0, 0.0, 16.0, 17.0, np.inf, np.nan], dt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow on the way
        y, res = nnref.sigmoid_fwd(x)
    assert y.dtype == dt
    assert y[0] == 0
    assert y[3] == 0.5
    assert y[6] == 1
    assert np.isnan(y[7])
    if dt == np.float32:
        assert y[1] == 0
        assert y[5] == 1
    else:
        np.testing.assert_allclose(y[1], 3.720075976020836e-44, rtol=1e-14)
    (dx,) = nnref.sigmoid_bwd(res, np.ones_like(x))
    # Gradient from the output, as TF: exactly 0 wherever y rounds to 1.
    np.testing.assert_array_equal(dx, y * (1 - y))
    if dt == np.float32:
        assert dx[5] == 0
        assert dx[4] > 0


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_sigmoid_extremes_match_tf(dt) -> None:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = np.array([-np.inf, -100.0, -87.4, -87.3, -17.0, -3.0, 0.0, 16.0, 17.0, 40.0, np.inf], dt)
    dy = np.linspace(0.5, 2.0, x.size).astype(dt)
    y_tf, (g_tf,) = tape_vjp(tf.nn.sigmoid, (x,), dy)
    y, res = nnref.sigmoid_fwd(x)
    # Zeros (flushed subnormals, saturation) must match exactly; values to the oracle tolerance
    # (in float64 the saturated y(1-y) amplifies a 1-ulp difference in y to ~3e-9 relative).
    (dx,) = nnref.sigmoid_bwd(res, dy)
    np.testing.assert_array_equal(y == 0, y_tf == 0)
    np.testing.assert_array_equal(dx == 0, g_tf == 0)
    assert_close(y, y_tf, what=f"sigmoid {dt.__name__} y")
    assert_close(dx, g_tf, what=f"sigmoid {dt.__name__} dx")


@pytest.mark.parametrize("dt", FLOATS)
def test_softmax_huge_logits(dt) -> None:
    x = np.array([[1e4, -1e4, 0.0], [1000.0, 1000.0, 1000.0], [-1e4, -1e4, -1e4]], dt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = nnref.softmax(x)
        ls = nnref.log_softmax(x)
    np.testing.assert_array_equal(y[0], [1, 0, 0])
    np.testing.assert_allclose(y[1:], 1 / 3, rtol=1e-7)
    np.testing.assert_array_equal(ls[0], [0, -20000, -10000])
    assert np.isfinite(ls).all()


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("scale", [1e4, 1e30])
def test_log_softmax_gradient_stays_finite(dt, scale) -> None:
    x = np.array([[scale, -scale, 0.0], [scale, scale, -scale]], dt)
    y, res = nnref.log_softmax_fwd(x)
    (dx,) = nnref.log_softmax_bwd(res, np.ones_like(y))
    assert np.isfinite(y).all()
    assert np.isfinite(dx).all()
    np.testing.assert_allclose(dx, [[-2, 1, 1], [-0.5, -0.5, 1]], rtol=1e-7)


def test_softmax_vjp_pinned() -> None:
    y, res = nnref.softmax_fwd(np.log(np.array([[1.0, 1.0, 2.0]])))
    np.testing.assert_allclose(y, [[0.25, 0.25, 0.5]], rtol=1e-15)
    (dx,) = nnref.softmax_bwd(res, np.array([[1.0, 0.0, 0.0]]))
    # y * (v - <v, y>) = [.25*(1-.25), .25*(-.25), .5*(-.25)]
    np.testing.assert_allclose(dx, [[0.1875, -0.0625, -0.125]], rtol=1e-15)


@pytest.mark.parametrize("fn", [nnref.softmax, nnref.log_softmax])
@pytest.mark.parametrize("axis", [True, False])
def test_softmax_refuses_a_bool_axis(fn, axis: bool) -> None:
    # bool is an int subclass: axis=True silently meant axis=1.
    op = fn.__name__
    with pytest.raises(ValueError, match=rf"^{op}: 'axis' must be an int, got bool {axis}$"):
        fn(np.arange(6.0).reshape(2, 3), axis=axis)


def test_softmax_axis_and_errors() -> None:
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(nnref.softmax(x, axis=0), nnref.softmax(x.T).T, rtol=1e-15)
    with pytest.raises(ValueError, match="softmax: 'axis' 2 is out of range for x of rank 2"):
        nnref.softmax(x, axis=2)
    with pytest.raises(ValueError, match=r"log_softmax: argument 'x' is empty \(shape \(0, 3\)\)"):
        nnref.log_softmax(np.ones((0, 3)))
    with pytest.raises(
        TypeError, match="softmax: argument 'x' must be float32 or float64, got dtype int64"
    ):
        nnref.softmax(np.arange(3))
    with pytest.raises(ValueError, match="rank >= 1"):
        nnref.softmax(np.float64(1.0))


@pytest.mark.parametrize(
    ("fwd", "bwd"),
    [
        (nnref.relu_fwd, nnref.relu_bwd),
        (nnref.sigmoid_fwd, nnref.sigmoid_bwd),
        (nnref.softmax_fwd, nnref.softmax_bwd),
        (nnref.log_softmax_fwd, nnref.log_softmax_bwd),
    ],
    ids=["relu", "sigmoid", "softmax", "log_softmax"],
)
def test_activations_keep_dtype_and_do_not_mutate(fwd, bwd, rng) -> None:
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((3, 4)).astype(dt)
        x.setflags(write=False)
        x0 = x.copy()
        y, res = fwd(x)
        dy = rng.standard_normal(y.shape).astype(dt)
        dy.setflags(write=False)
        (dx,) = bwd(res, dy)
        assert y.dtype == dt
        assert dx.dtype == dt
        np.testing.assert_array_equal(x, x0)


@pytest.mark.tf
def test_subnormal_inputs_differ_from_tf_documented() -> None:
    """TF's CPU kernels run with denormals-are-zero: relu(5e-324) is 0 there with slope 0.
    nnref keeps IEEE gradual underflow: relu(5e-324) = 5e-324 with slope 1 (documented
    difference; values differ by less than the smallest normal number)."""
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = np.array([5e-324, -5e-324, 1e-310])
    y_tf, (g_tf,) = tape_vjp(tf.nn.relu, (x,), np.ones(3))
    y, res = nnref.relu_fwd(x)
    np.testing.assert_array_equal(y, [5e-324, 0, 1e-310])
    np.testing.assert_array_equal(nnref.relu_bwd(res, np.ones(3))[0], [1, 0, 1])
    np.testing.assert_array_equal(g_tf, [0, 0, 0])
    assert np.abs(y - y_tf).max() < np.finfo(np.float64).tiny


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_formula_switches_at_zero(dtype) -> None:
    """1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) below, bit for bit (the two
    round differently on about a third of [0, 1))."""
    one = dtype(1)
    x = np.linspace(-1, 1, 2001, dtype=dtype)
    e = np.exp(np.where(x < 0, x, -x))
    want = np.where(x < 0, e / (one + e), one / (one + e))
    np.testing.assert_array_equal(nnref.sigmoid(x), want)
    pos = x[x >= 0]
    assert (nnref.sigmoid(pos) != np.exp(pos) / (one + np.exp(pos))).sum() > 100


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_grad_keeps_the_smallest_normal(dtype) -> None:
    """Flush-to-zero zeroes subnormals only: 4 * tiny * 0.5 * 0.5 is exactly tiny and stays."""
    tiny = np.finfo(dtype).tiny
    _, res = nnref.sigmoid_fwd(np.zeros(2, dtype))
    (g,) = nnref.sigmoid_bwd(res, np.array([4 * tiny, 2 * tiny], dtype))
    np.testing.assert_array_equal(g, np.array([tiny, 0], dtype))


def test_plain_forms_are_the_forward_values(rng) -> None:
    x = rng.standard_normal((3, 4))
    x[0, 0] = 0.0
    np.testing.assert_array_equal(nnref.relu(x), nnref.relu_fwd(x)[0])
    np.testing.assert_array_equal(nnref.relu(x), np.maximum(x, 0.0))
    np.testing.assert_array_equal(nnref.sigmoid(x), nnref.sigmoid_fwd(x)[0])
    for axis in (0, -1):
        np.testing.assert_array_equal(
            nnref.softmax(x, axis=axis), nnref.softmax_fwd(x, axis=axis)[0]
        )
        np.testing.assert_array_equal(
            nnref.log_softmax(x, axis=axis), nnref.log_softmax_fwd(x, axis=axis)[0]
        )


@pytest.mark.parametrize("dt", FLOATS)
def test_relu_bits_equal_the_plain_formulas_for_any_thread_count(dt, rng, monkeypatch) -> None:
    """relu's split passes and bit-mask VJP against ``max(x, 0)`` and ``where(y > 0, dy, 0)``:
    the same bits for dy's NaN, inf and -0.0, on strided and read-only inputs, 1-3 threads."""
    import nnref.ops.activations as act

    monkeypatch.setattr(act, "ELEMENTWISE_MIN_CHUNK", 5)  # ranges start and end mid-row
    x = rng.standard_normal((9, 4)).astype(dt)
    dy = rng.standard_normal((9, 4)).astype(dt)
    x.flat[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, -np.nan]
    dy.flat[:8] = [1, 2, np.nan, -0.0, -5, np.inf, -np.inf, -0.0]
    dy.flat[10:13] = [np.nan, -np.inf, -0.0]
    for a in (x, dy):
        a.setflags(write=False)
    want_y = np.maximum(x.T, dt(0))
    with np.errstate(invalid="ignore"):  # TF's ReluGrad: inf * 0 is NaN, -5 * 0 is -0.0
        want_dx = dy.T * (want_y > 0)
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        y, res = nnref.relu_fwd(x.T)  # strided input
        (dx,) = nnref.relu_bwd(res, dy.T)
        assert y.dtype == dx.dtype == dt
        assert y.tobytes() == np.ascontiguousarray(want_y).tobytes(), threads
        assert dx.tobytes() == np.ascontiguousarray(want_dx).tobytes(), threads
