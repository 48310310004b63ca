"""The public strategies: valid outputs and InvalidArgument on bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis.errors import InvalidArgument

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
