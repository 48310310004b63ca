"""The public strategies: valid outputs and InvalidArgument on bad arguments."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, NonInteractiveExampleWarning

import nnref
from nnref import strategies as nst


@pytest.mark.parametrize(
    "make",
    [
        lambda: nst.finite_arrays(min_value=1, max_value=0),
        lambda: nst.finite_arrays(min_magnitude=20),
        lambda: nst.distinct_arrays(spread=0),
        lambda: nst.logits(scale=-1),
        lambda: nst.dense_args(max_side=0),
        lambda: nst.conv2d_args(max_side=1),
        lambda: nst.max_pool2d_args(max_side=0),
        lambda: nst.kfold_params(max_n=0),
        lambda: nst.finite_arrays(dtype=[1, 2]),
        # A truthy string once turned the option on.
        lambda: nst.finite_arrays(allow_subnormal="no"),
        lambda: nst.logits(allow_subnormal="no"),
        lambda: nst.conv2d_args(bias="no"),
        lambda: nst.conv2d_args(allow_empty="no"),
        lambda: nst.xent_args(sparse="no"),
    ],
)
def test_bad_arguments_raise_invalid_argument(make) -> None:
    with pytest.raises(InvalidArgument):
        make().example()


@given(x=nst.distinct_arrays())
def test_distinct_arrays_have_no_ties(x) -> None:
    assert len(np.unique(x)) == x.size


@given(args=nst.conv2d_args())
def test_conv2d_args_are_valid_and_nonempty(args) -> None:
    assert "b" not in args
    assert nnref.conv2d(args["x"], args["w"], **args["static"]).size > 0


@given(args=nst.conv2d_args(bias=True))
def test_conv2d_args_bias_fits_the_kernel(args) -> None:
    b, w = args["b"], args["w"]
    assert (b.shape, b.dtype) == ((w.shape[3],), w.dtype)
    assert np.all(np.abs(b) <= 2)
    assert nnref.conv2d(args["x"], w, b, **args["static"]).size > 0


@given(x=nst.finite_arrays(min_magnitude=0.5, allow_subnormal=False))
def test_min_magnitude(x) -> None:
    assert np.all(np.abs(x) >= 0.5)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        # silently wrong draws before: float16 arrays, integer "distinct" arrays with ties
        (lambda: nst.finite_arrays(dtype=np.float16), "finite_arrays: dtype"),
        (lambda: nst.finite_arrays(dtype=st.just(np.int32)), "finite_arrays: dtype"),
        (lambda: nst.distinct_arrays(dtype=np.int64), "distinct_arrays: dtype"),
        (lambda: nst.op_inputs("argmax", dtype=np.int32), "op_inputs: dtype"),
        (lambda: nst.conv2d_args(dtype=np.float16), "conv2d_args: dtype"),
        (lambda: nst.finite_arrays(min_magnitude=float("nan")), "finite_arrays: min_magnitude"),
        (lambda: nst.distinct_arrays(spread=float("inf")), "distinct_arrays: spread"),
        # a grid finer than float32's subnormal spacing: ties, silently, before
        (
            lambda: nst.distinct_arrays(dtype=np.float32, shape=(10,), spread=1e-44),
            "distinct_arrays: 10 entries on a spread of 1e-44 cannot all differ in float32",
        ),
        # NumPy's or Hypothesis' own error at draw time before, naming neither
        (lambda: nst.finite_arrays(shape=(-1,)), "finite_arrays: shape"),
        (lambda: nst.finite_arrays(min_value="a"), "finite_arrays: need finite"),
        (lambda: nst.logits(batch_size=-1), "logits: batch_size"),
        (lambda: nst.labels(batch_size=3, num_classes=2.5), "labels: num_classes"),
        (lambda: nst.dense_args(max_side=2.5), "dense_args: max_side"),
        (lambda: nst.max_pool2d_args(max_side="a"), "max_pool2d_args: max_side"),
        (lambda: nst.kfold_params(max_n=2.5), "kfold_params: max_n"),
    ],
)
def test_bad_arguments_are_named(make, needle: str) -> None:
    with warnings.catch_warnings():
        # a strategy-valued argument is checked at draw time, inside .example()
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        with pytest.raises(InvalidArgument, match=needle):
            make().example()


@given(
    x=nst.finite_arrays(dtype=np.float32, min_value=0.1, max_value=1),
    y=nst.finite_arrays(min_value=1, max_value=2),
    z=nst.finite_arrays(dtype=np.float32, min_value=-1e40, max_value=1e40),
    s=nst.logits(dtype=np.float32, scale=0.1),
)
def test_bounds_hypothesis_refuses_are_rounded_inward(x, y, z, s) -> None:
    # float32 cannot hold 0.1 or 1e40, and [1, 2] has no subnormals: Hypothesis refuses each
    # as st.floats' arguments, so these raised at the first draw
    assert x.dtype == np.float32
    assert np.all((x >= 0.1) & (x <= 1))
    assert np.all((y >= 1) & (y <= 2))
    assert np.all(np.isfinite(z))
    assert np.all(np.abs(s) <= 0.1)


@given(x=nst.finite_arrays(shape=[2, 3]))
def test_shape_as_a_list(x) -> None:
    assert x.shape == (2, 3)


def test_dense_xent_args_draw_soft_rows_as_documented() -> None:
    """The docstring promised soft rows; only one-hot rows were drawn, so TF's
    softmax(z) - p gradient was never exercised with p off the corners."""
    from hypothesis import find

    lab, _ = find(nst.xent_args(sparse=False), lambda a: not np.isin(a[0], [0, 1]).all())
    assert (lab > 0).all()
    np.testing.assert_allclose(lab.sum(axis=1), 1, rtol=1e-6)


@given(args=nst.xent_args(sparse=False))
def test_dense_xent_label_rows_sum_to_exactly_one(args) -> None:
    """Rows that summed to 1 within rounding (3 x float32(1/3) = 0.99999994) made TF's
    softmax(z) - p gradient differ from the loss's derivative by (1 - sum(p)) softmax(z): the
    thorough profile's finite differences of softmax_cross_entropy_with_logits failed there."""
    lab, z = args
    assert lab.dtype == z.dtype
    assert np.all(lab >= 0)
    assert np.all(lab.sum(axis=1) == 1)
    assert np.all(np.cumsum(lab[:, ::-1], axis=1)[:, -1] == 1)  # in the other order too
    assert np.all(lab * 4096 == np.round(lab * 4096))
