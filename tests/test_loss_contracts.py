"""Loss contracts the first mutation run found unpinned: plain forms equal the forward value
(sample weights included), rank-1 inputs, row-wise stabilisation, error messages naming the
op and the argument on every path, and a zero gradient through Keras' probability clip."""

from __future__ import annotations

import numpy as np
import pytest

import nnref
from nnref.cases import TABLES, differentiable, reference, seed_for

F64 = np.dtype(np.float64)


@pytest.mark.parametrize("op", differentiable())
def test_plain_form_is_the_forward_value(op: str) -> None:
    fwd = reference()[op + "_fwd"]
    for case in TABLES[op].cases:
        if case.raises:
            continue
        args, static = case.make(np.random.default_rng(seed_for(op, case.id)), F64)
        np.testing.assert_array_equal(getattr(nnref, op)(*args, **static), fwd(*args, **static)[0])


KERAS_LOSSES = {
    "sparse_categorical_crossentropy": lambda rng: (
        np.array([0, 2, 1]),
        rng.dirichlet(np.ones(3), 3),
    ),
    "categorical_crossentropy": lambda rng: (
        rng.dirichlet(np.ones(3), 3),
        rng.dirichlet(np.ones(3), 3),
    ),
    "mean_squared_error": lambda rng: (rng.standard_normal((3, 2)), rng.standard_normal((3, 2))),
}


@pytest.mark.parametrize("op", list(KERAS_LOSSES))
def test_plain_form_passes_sample_weight(op: str, rng) -> None:
    y_true, y_pred = KERAS_LOSSES[op](rng)
    sw = np.array([0.5, 2.0, 0.0])
    weighted = getattr(nnref, op)(y_true, y_pred, sample_weight=sw)
    assert weighted == getattr(nnref, f"{op}_fwd")(y_true, y_pred, sample_weight=sw)[0]
    assert weighted != getattr(nnref, op)(y_true, y_pred)


def test_rank1_inputs_are_one_sample() -> None:
    """tf.nn.softmax_cross_entropy_with_logits and keras MSE take a single (C,) vector."""
    logits, labels = np.array([1.0, 2.0, 0.5]), np.array([0.2, 0.5, 0.3])
    want = -(labels * (logits - np.log(np.exp(logits).sum()))).sum()
    got = nnref.softmax_cross_entropy_with_logits(labels, logits)
    assert got.shape == ()
    np.testing.assert_allclose(got, want, rtol=1e-15)
    got = nnref.mean_squared_error(np.array([1.0, 2.0]), np.array([0.0, 4.0]))
    assert got.shape == ()
    assert got == 2.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_row_is_shifted_by_its_own_max(dtype) -> None:
    """Rows 1e4 apart: a shift by the global max would underflow the small row to -inf."""
    z = np.array([[1e4, 1e4 - 1, 1e4 - 3], [0.0, -1.0, -3.0]], dtype)
    per_row = np.array([0.0, -1.0, -3.0]) - np.log(np.exp([0.0, -1.0, -3.0]).sum())
    want = -per_row[[1, 1]]
    for got in (
        nnref.sparse_softmax_cross_entropy_with_logits(np.array([1, 1]), z),
        nnref.softmax_cross_entropy_with_logits(np.array([[0, 1, 0], [0, 1, 0]], dtype), z),
        nnref.categorical_crossentropy(
            np.array([[0, 1, 0], [0, 1, 0]], dtype), z, from_logits=True, reduction="none"
        ),
        nnref.sparse_categorical_crossentropy(
            np.array([1, 1]), z, from_logits=True, reduction="none"
        ),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-13)


SPARSE = [
    ("sparse_softmax_cross_entropy_with_logits", "labels", "logits"),
    ("sparse_categorical_crossentropy", "y_true", "y_pred"),
]


@pytest.mark.parametrize(("op", "lname", "zname"), SPARSE)
def test_sparse_label_errors_name_op_and_arguments(op: str, lname: str, zname: str) -> None:
    p = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    f = getattr(nnref, f"{op}_fwd")
    with pytest.raises(ValueError, match=rf"^{op}: argument '{lname}' has a label value of 5"):
        f(np.array([2, 5]), p)
    with pytest.raises(
        ValueError, match=rf"^{op}: '{lname}' \(3,\) must have the shape of '{zname}' \(2, 3\)"
    ):
        f(np.array([1, 2, 0]), p)


@pytest.mark.parametrize("op", ["categorical_crossentropy", "mean_squared_error"])
def test_shape_mismatch_names_both_arguments(op: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^{op}: arguments 'y_true' \(2, 4\) and 'y_pred' \(2, 3\) must have"
    ):
        getattr(nnref, op)(np.full((2, 4), 0.25), np.full((2, 3), 1 / 3))


@pytest.mark.parametrize("op", list(KERAS_LOSSES))
def test_sample_weight_and_per_sample_dy_errors_name_the_op(op: str, rng) -> None:
    y_true, y_pred = KERAS_LOSSES[op](rng)
    fwd, bwd = getattr(nnref, f"{op}_fwd"), getattr(nnref, f"{op}_bwd")
    with pytest.raises(ValueError, match=rf"^{op}: 'sample_weight' \(2,\) does not broadcast"):
        fwd(y_true, y_pred, sample_weight=np.ones(2))
    y, res = fwd(y_true, y_pred, reduction="none")
    assert y.shape == (3,)
    with pytest.raises(ValueError, match=rf"^{op}: argument 'dy' must have the output's shape"):
        bwd(res, np.ones(2))


def test_probability_clip_stops_the_gradient() -> None:
    """Keras clips y_pred / sum to [eps, 1 - eps]; with the true class clipped the loss is the
    constant -log(eps) and every y_pred gradient is zero."""
    y_true, y_pred = np.array([[1.0, 0.0, 0.0]]), np.array([[1e-9, 0.6, 0.4 - 1e-9]])
    y, res = nnref.categorical_crossentropy_fwd(y_true, y_pred)
    np.testing.assert_allclose(y, -np.log(1e-7), rtol=1e-12)
    _, dp = nnref.categorical_crossentropy_bwd(res, np.ones_like(y))
    assert not dp.any()
