"""Algebraic invariants of the forward ops, metrics and batching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnref
from nnref import strategies as nst
from nnref.data import kfold_batches, kfold_sizes

CAUGHT = pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="deliberately broken op must be caught"
)


def naive_softmax(z, *, axis=-1):
    e = np.exp(z)  # no max shift, and normalised by the wrong axis for 2-D input
    return e / e.sum()


def tol(dtype, scale=1.0):
    return 64 * np.finfo(dtype).eps * scale


@pytest.mark.parametrize(
    "softmax", [nnref.softmax, pytest.param(naive_softmax, marks=CAUGHT)], ids=["ok", "broken"]
)
@given(z=nst.logits(batch_size=st.integers(2, 8)), shift=st.floats(-50, 50))
def test_softmax_rows_sum_to_one_and_shift_invariance(softmax, z, shift) -> None:
    y = softmax(z)
    np.testing.assert_allclose(y.sum(-1), 1, atol=tol(z.dtype, z.shape[1]))
    shifted = softmax((z + z.dtype.type(shift)).astype(z.dtype))
    np.testing.assert_allclose(shifted, y, atol=tol(z.dtype, 1 + abs(shift)) * 8)


@given(z=nst.logits(scale=30.0))
def test_log_softmax_is_log_of_softmax_where_finite(z) -> None:
    ls = nnref.log_softmax(z)
    sm = nnref.softmax(z)
    ok = sm > np.finfo(z.dtype).tiny * 1e6
    np.testing.assert_allclose(ls[ok], np.log(sm[ok]), rtol=0, atol=tol(z.dtype, 4))
    assert np.all(ls <= 0)


@given(args=nst.xent_args(sparse=True))
def test_cross_entropy_nonnegative_and_gradient_rows_sum_to_zero(args) -> None:
    lab, z = args
    loss, res = nnref.sparse_softmax_cross_entropy_with_logits_fwd(lab, z)
    assert np.all(loss >= 0)
    _, g = nnref.sparse_softmax_cross_entropy_with_logits_bwd(res, np.ones(len(lab), z.dtype))
    np.testing.assert_allclose(g.sum(-1), 0, atol=tol(z.dtype, z.shape[1]))
    np.testing.assert_allclose(
        g, nnref.softmax(z) - nnref.one_hot(lab, z.shape[1], dtype=z.dtype), atol=tol(z.dtype, 2)
    )


def broken_pool_bwd(res, dy):
    (dx,) = nnref.max_pool2d_bwd(res, dy)
    return (np.roll(dx, 1, axis=1),)  # right mass, wrong cells


@pytest.mark.parametrize(
    "bwd", [nnref.max_pool2d_bwd, pytest.param(broken_pool_bwd, marks=CAUGHT)], ids=["ok", "broken"]
)
@given(args=nst.max_pool2d_args(), data=st.data())
def test_max_pool_gradient_mass_and_landing(bwd, args, data) -> None:
    x = args["x"]
    y, res = nnref.max_pool2d_fwd(x, **args["static"])
    (dx,) = bwd(res, np.ones_like(y))
    assert dx.sum() == y.size  # every output routes exactly one unit
    # Each output's gradient lands on an input equal to that output (tie-free input).
    for n, i, j, c in np.argwhere(np.ones(y.shape, bool)):
        dy = np.zeros_like(y)
        dy[n, i, j, c] = 1
        (g,) = bwd(res, dy)
        hit = np.argwhere(g != 0)
        assert len(hit) == 1
        assert x[tuple(hit[0])] == y[n, i, j, c]


@given(lab=nst.labels(batch_size=st.integers(1, 20), num_classes=st.integers(1, 12)))
def test_one_hot_argmax_round_trip(lab) -> None:
    k = int(lab.max()) + 1
    np.testing.assert_array_equal(nnref.argmax(nnref.one_hot(lab, k)), lab)


@given(z=nst.logits(), data=st.data())
def test_accuracy_is_mean_of_matches(z, data) -> None:
    lab = data.draw(nst.labels(batch_size=z.shape[0], num_classes=z.shape[1]))
    a = nnref.accuracy(lab, z)
    assert 0 <= a <= 1
    assert a == np.mean(np.argmax(z, -1) == lab)  # no NaN in z, so numpy's argmax agrees


@given(params=nst.kfold_params())
def test_kfold_sizes_partition(params) -> None:
    n, k = params
    sizes = kfold_sizes(n, k)
    assert sum(sizes) == n
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the first n % k are the larger
    assert sizes.count(n // k + 1) == n % k


@given(params=nst.kfold_params(max_n=300), seed=st.integers(0, 2**32 - 1))
def test_kfold_batches_partition_and_match_sklearn(params, seed) -> None:
    from sklearn.model_selection import KFold

    n, k = params
    batch = max(1, n // k)
    batches = kfold_batches(n, batch, seed)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))
    folds = int(n / batch)
    assert (
        [len(b) for b in batches] == [len(te) for _, te in KFold(folds).split(np.zeros(n))]
        if folds > 1
        else [n]
    )
