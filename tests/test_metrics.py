"""accuracy and argmax (tie and NaN rules as TF) and one_hot (as tf.one_hot)."""

from __future__ import annotations

import numpy as np
import pytest

import nnref


def test_argmax_ties_and_nan() -> None:
    x = np.array(
        [
            [0.3, 0.3, 0.1],
            [0.2, 0.4, 0.4],
            [0.5, 0.5, 0.5],
            [0.1, np.nan, 0.5],
            [np.nan, np.nan, np.nan],
        ]
    )
    np.testing.assert_array_equal(nnref.argmax(x), [0, 1, 0, 2, 0])


def test_argmax_refuses_an_out_of_range_or_non_int_axis(rng) -> None:
    x = rng.standard_normal((2, 3))
    for axis in (-2, -1, 0, 1):
        np.testing.assert_array_equal(nnref.argmax(x, axis=axis), np.argmax(x, axis=axis))
    for bad in (2, -3):
        with pytest.raises(
            ValueError, match=rf"^argmax: 'axis' {bad!r} is out of range for x of rank 2$"
        ):
            nnref.argmax(x, axis=bad)
    for bad in (0.5, "0", True, False):  # a bool is an int subclass: True meant axis 1
        with pytest.raises(
            ValueError,
            match=rf"^argmax: 'axis' must be an int, got {type(bad).__name__} {bad!r}$",
        ):
            nnref.argmax(x, axis=bad)
    with pytest.raises(ValueError, match=r"^argmax: argument 'x' must have rank >= 1"):
        nnref.argmax(np.float64(1.0))


def test_accuracy_sparse_onehot_and_squeezed() -> None:
    pred = np.array([[0.3, 0.3, 0.1], [0.2, 0.4, 0.4], [0.5, 0.5, 0.5], [0.1, np.nan, 0.5]])
    assert nnref.accuracy(np.array([0, 1, 0, 2]), pred) == 1.0
    assert nnref.accuracy(np.array([[1], [1], [1], [1]]), pred) == 0.25
    assert nnref.accuracy(nnref.one_hot(np.array([0, 2, 0, 2]), 3), pred.astype(np.float32)) == 0.75


def test_accuracy_errors() -> None:
    pred = np.zeros((4, 3))
    with pytest.raises(
        TypeError,
        match=r"accuracy: sparse 'y_true' must hold integer class indices, got dtype float64 with shape \(4,\)",
    ):
        nnref.accuracy(np.zeros(4), pred)
    with pytest.raises(
        ValueError,
        match=r"accuracy: 'y_true' \(5,\) must be class indices of shape \(4,\) or one-hot rows of shape \(4, 3\)",
    ):
        nnref.accuracy(np.zeros(5, int), pred)
    with pytest.raises(ValueError, match=r"accuracy: argument 'y_pred' is empty"):
        nnref.accuracy(np.zeros(0, int), np.zeros((0, 3)))
    with pytest.raises(TypeError, match="accuracy: argument 'y_pred' must be float32 or float64"):
        nnref.accuracy(np.zeros(4, int), np.zeros((4, 3), int))


@pytest.mark.tf
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_accuracy_matches_keras_metrics(dt, rng) -> None:
    from nnref.oracles.tf import import_keras

    keras = import_keras()
    # Rounded scores make ties common, so the tie rule is exercised.
    pred = np.round(rng.random((200, 4)), 1).astype(dt)
    lab = rng.integers(0, 4, 200)
    m = keras.metrics.SparseCategoricalAccuracy()
    m.update_state(lab, pred)
    assert nnref.accuracy(lab, pred) == pytest.approx(float(m.result()), abs=1e-7)
    c = keras.metrics.CategoricalAccuracy()
    oh = nnref.one_hot(lab, 4, dtype=dt)
    c.update_state(oh, pred)
    assert nnref.accuracy(oh, pred) == pytest.approx(float(c.result()), abs=1e-7)


@pytest.mark.tf
def test_argmax_matches_tf_on_nan(rng) -> None:
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    x = rng.standard_normal((50, 6))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[rng.random(x.shape) < 0.1] = -np.inf
    np.testing.assert_array_equal(nnref.argmax(x), tf.argmax(tf.constant(x), axis=-1).numpy())


def test_one_hot_out_of_range_rows_are_off() -> None:
    np.testing.assert_array_equal(
        nnref.one_hot(np.array([0, 2, -1, 3, 5]), 3),
        [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]],
    )
    out = nnref.one_hot(np.array([0, 7], np.uint8), 3, on_value=5.0, off_value=-1.0)
    np.testing.assert_array_equal(out, [[5, -1, -1], [-1, -1, -1]])
    assert out.dtype == np.float32
    assert nnref.one_hot(np.array([1, 2]), 0).shape == (2, 0)


def test_one_hot_axis_and_errors() -> None:
    idx = np.array([[0, 1], [2, 0]])
    assert nnref.one_hot(idx, 3, axis=1).shape == (2, 3, 2)
    assert nnref.one_hot(idx, 3, axis=0).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="one_hot: 'depth' must be non-negative, got: -1"):
        nnref.one_hot(idx, -1)
    with pytest.raises(
        TypeError,
        match="one_hot: argument 'indices' must hold integer class indices, got dtype float64",
    ):
        nnref.one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(TypeError, match="'depth' must be an int"):
        nnref.one_hot(idx, 3.0)
    with pytest.raises(ValueError, match="'axis' 3 is out of range"):
        nnref.one_hot(idx, 3, axis=3)


def test_one_hot_refuses_values_its_dtype_would_change() -> None:
    """tf.one_hot raises TypeError on a float on_value with an integer dtype; np.int32(2.7) is
    2, which nnref once returned. Exactly representable values (the 1.0/0.0 defaults too) pass."""
    for kw, arg, value_dtype, dtype in (
        ({"on_value": 2.7, "dtype": np.int32}, "on_value", "float64", "int32"),
        ({"off_value": np.float32(0.5), "dtype": np.int64}, "off_value", "float32", "int64"),
        ({"on_value": float("nan"), "dtype": np.int32}, "on_value", "float64", "int32"),
        ({"on_value": 300, "dtype": np.int8}, "on_value", "int64", "int8"),
        ({"off_value": -1, "dtype": np.uint8}, "off_value", "int64", "uint8"),
        ({"on_value": 2, "dtype": bool}, "on_value", "int64", "bool"),
    ):
        with pytest.raises(
            TypeError,
            match=rf"^one_hot: '{arg}' .* of dtype {value_dtype} cannot be represented exactly "
            rf"in dtype {dtype}",
        ):
            nnref.one_hot([1, 0], 3, **kw)
    np.testing.assert_array_equal(nnref.one_hot([1], 3, dtype=np.int32), [[0, 1, 0]])
    ours = nnref.one_hot([1], 3, on_value=2.0, off_value=np.float32(-1.0), dtype=np.int8)
    assert ours.dtype == np.int8
    np.testing.assert_array_equal(ours, [[-1, 2, -1]])
    with pytest.raises(ValueError, match=r"^one_hot: 'on_value' 1e\+300 overflows dtype float32"):
        nnref.one_hot([1], 3, on_value=1e300)
    np.testing.assert_array_equal(nnref.one_hot([1], 2, on_value=np.inf), [[0, np.inf]])


def test_one_hot_refuses_a_float_axis_and_non_scalar_values() -> None:
    with pytest.raises(TypeError, match=r"^one_hot: 'axis' must be an int, got float$"):
        nnref.one_hot([1], 3, axis=0.0)
    with pytest.raises(
        ValueError, match=r"^one_hot: 'on_value' must be a scalar, got shape \(2,\)"
    ):
        nnref.one_hot([1], 3, on_value=np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^one_hot: 'off_value' must be a real number, got 'a'"):
        nnref.one_hot([1], 3, off_value="a")
    np.testing.assert_array_equal(nnref.one_hot([1], 2, on_value=np.array(3.0)), [[0, 3]])


@pytest.mark.tf
@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("idx_dtype", [np.uint8, np.int8, np.int32, np.int64])
def test_one_hot_matches_tf_and_keras(axis, idx_dtype, rng) -> None:
    from nnref.oracles.tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    lo = 0 if np.dtype(idx_dtype).kind == "u" else -3
    idx = rng.integers(lo, 8, (4, 5)).astype(idx_dtype)
    ours = nnref.one_hot(idx, 6, axis=axis, on_value=2.0, off_value=-0.5, dtype=np.float64)
    want = tf.one_hot(
        tf.constant(idx), 6, axis=axis, on_value=2.0, off_value=-0.5, dtype=tf.float64
    ).numpy()
    assert ours.shape == want.shape
    assert ours.dtype == want.dtype
    np.testing.assert_array_equal(ours, want)
    k = np.asarray(keras.ops.one_hot(idx.astype(np.int64), 6, axis=axis))
    np.testing.assert_array_equal(nnref.one_hot(idx, 6, axis=axis), k)


def test_one_hot_dtype_none_is_tfs_float32_and_bad_dtypes_are_named() -> None:
    """``tf.one_hot(dtype=None)`` gives float32; nnref passed None to ``np.dtype`` and returned
    float64, and let NumPy's bare TypeError through for an unknown dtype (an adversarial
    probe)."""
    out = nnref.one_hot([0, 2, -1], 3, dtype=None)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    with pytest.raises(TypeError, match=r"^one_hot: 'dtype' must be a NumPy dtype, got 'junk'$"):
        nnref.one_hot([0], 3, dtype="junk")
    with pytest.raises(TypeError, match=r"^one_hot: 'dtype' must be a bool, integer, float"):
        nnref.one_hot([0], 3, dtype=object)
