"""Edge semantics pinned without TensorFlow (each mirrors a TF rule documented in the op):
pooling's two paths agree on ties, NaN, all -inf windows, signed zeros and dtypes; the TF
cross-entropies reduce over the last axis of any rank; Keras' clip passes the gradient at its
bounds; softmax takes every valid negative axis."""

from __future__ import annotations

import numpy as np
import pytest

from nnref import ops

POOLS = [
    pytest.param((ops.max_pool2d_fwd, ops.max_pool2d_bwd), id="fast"),
    pytest.param((ops.max_pool2d_naive_fwd, ops.max_pool2d_naive_bwd), id="naive"),
]
SETTINGS = [
    {"ksize": 2, "strides": 2, "padding": "VALID"},  # the disjoint tiling fast path
    {"ksize": (2, 3), "strides": (1, 2), "padding": "SAME"},
    {"ksize": 3, "strides": 1, "padding": [[0, 0], [1, 2], [2, 0], [0, 0]]},
]


def _hostile(rng: np.random.Generator, dt: type) -> np.ndarray:
    x = rng.integers(-2, 3, (2, 6, 6, 2)).astype(dt)  # many ties
    x[0, :2, :2, 0] = -np.inf  # a whole -inf window
    x[1, 2, 3, 1] = np.nan
    x[1, 4:, 4:, 0] = np.nan
    return x


@pytest.mark.parametrize("kw", SETTINGS)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_pool_paths_agree_on_ties_nan_and_minus_inf(kw, dt, rng) -> None:
    x = _hostile(rng, dt)
    outs = []
    for fwd, bwd in (
        (ops.max_pool2d_fwd, ops.max_pool2d_bwd),
        (ops.max_pool2d_naive_fwd, ops.max_pool2d_naive_bwd),
    ):
        y, res = fwd(x, **kw)
        dy = -rng.uniform(1, 2, y.shape).astype(dt)  # negative: unrouted cells must be +0.0
        [dx] = bwd(res, dy)
        assert y.dtype == dx.dtype == dt
        assert not np.signbit(dx[dx == 0]).any()
        outs.append((y, dx, dy))
    (y1, dx1, dy1), (y2, dx2, _) = outs
    np.testing.assert_array_equal(y1, y2)
    [dx2] = ops.max_pool2d_naive_bwd(ops.max_pool2d_naive_fwd(x, **kw)[1], dy1)
    np.testing.assert_array_equal(dx1 == 0, dx2 == 0)  # the same cells receive gradient
    np.testing.assert_allclose(dx1, dx2, rtol=1e-6)  # overlapping windows sum in another order


@pytest.mark.parametrize("pool", POOLS)
def test_pool_ties_route_to_the_first_maximum(pool) -> None:
    fwd, bwd = pool
    x = np.ones((1, 2, 2, 1))
    y, res = fwd(x, ksize=2, strides=2)
    [dx] = bwd(res, np.full(y.shape, 3.0))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[3.0, 0.0], [0.0, 0.0]])
    x = np.array([[1.0, 3.0], [3.0, 2.0]]).reshape(1, 2, 2, 1)
    [dx] = bwd(fwd(x, ksize=2, strides=2)[1], np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_pool_empty_along_one_axis(pool, dt) -> None:
    fwd, bwd = pool
    x = np.ones((2, 3, 5, 1), dt)
    y, res = fwd(x, ksize=(4, 1), strides=1)
    assert y.shape == (2, 0, 5, 1)
    assert y.dtype == dt
    [dx] = bwd(res, np.zeros(y.shape, dt))
    assert dx.dtype == dt
    np.testing.assert_array_equal(dx, np.zeros_like(x))


def test_pool_explicit_padding_must_be_smaller_than_the_window() -> None:
    x = np.ones((1, 4, 4, 1))
    y = ops.max_pool2d(x, ksize=3, strides=1, padding=[[0, 0], [2, 2], [2, 2], [0, 0]])
    assert y.shape == (1, 6, 6, 1)
    for pad, side in (([2, 3], "top/bottom"), ([3, 0], "top/bottom")):
        with pytest.raises(ValueError, match=rf"^max_pool2d: explicit {side} padding"):
            ops.max_pool2d(x, ksize=3, strides=1, padding=[[0, 0], pad, [0, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"^max_pool2d: explicit left/right padding \(0, 3\)"):
        ops.max_pool2d(x, ksize=3, strides=1, padding=[[0, 0], [0, 0], [0, 3], [0, 0]])
    with pytest.raises(ValueError, match=r"must have rank 4 \(N, H, W, C\)"):
        ops.max_pool2d(np.ones((4, 4, 1)), ksize=2, strides=2)


@pytest.mark.parametrize("sparse", [True, False])
def test_tf_cross_entropies_reduce_the_last_axis_of_any_rank(sparse, rng) -> None:
    z = rng.standard_normal((2, 3, 4)) * 3
    labels = rng.integers(0, 4, (2, 3))
    if sparse:
        fwd, bwd, lab = (
            ops.sparse_softmax_cross_entropy_with_logits_fwd,
            ops.sparse_softmax_cross_entropy_with_logits_bwd,
            labels,
        )
    else:
        fwd, bwd, lab = (
            ops.softmax_cross_entropy_with_logits_fwd,
            ops.softmax_cross_entropy_with_logits_bwd,
            np.eye(4)[labels] * 0.7 + 0.075,
        )
    y, res = fwd(lab, z)
    assert y.shape == (2, 3)
    expected = -(np.eye(4)[labels] if sparse else lab) * (
        z - np.log(np.exp(z).sum(-1, keepdims=True))
    )
    np.testing.assert_allclose(y, expected.sum(-1), rtol=1e-14)
    flat_lab = lab.reshape(6) if sparse else lab.reshape(6, 4)
    y2, res2 = fwd(flat_lab, z.reshape(6, 4))
    np.testing.assert_allclose(y, y2.reshape(2, 3), rtol=1e-15)
    dy = rng.standard_normal((2, 3))
    g, g2 = bwd(res, dy), bwd(res2, dy.reshape(6))
    np.testing.assert_allclose(g[-1], g2[-1].reshape(2, 3, 4), rtol=1e-15)
    with pytest.raises(ValueError, match="argument 'dy' must have the output's shape"):
        bwd(res, np.zeros((2, 3, 4)))


def test_keras_clip_passes_the_gradient_at_its_bounds() -> None:
    eps = 1e-7
    p = np.array([[eps, 1 - eps]])
    assert p.sum() == 1.0
    onehot = np.array([[1.0, 0.0]])
    _, res = ops.categorical_crossentropy_fwd(onehot, p, reduction="sum")
    _, d_pred = ops.categorical_crossentropy_bwd(res, 1.0)
    dq = np.array([-1 / eps, 0.0])  # both entries sit on a bound: the clip passes both
    np.testing.assert_allclose(d_pred[0], dq - (dq * p[0]).sum(), rtol=1e-12)
    _, res = ops.sparse_categorical_crossentropy_fwd(np.array([0]), p, reduction="sum")
    _, d_sparse = ops.sparse_categorical_crossentropy_bwd(res, 1.0)
    np.testing.assert_allclose(d_sparse, d_pred, rtol=1e-12)


@pytest.mark.parametrize("axis", [-2, -1, 0, 1])
def test_softmax_accepts_every_valid_axis(axis, rng) -> None:
    x = rng.standard_normal((3, 4))
    e = np.exp(x - x.max(axis, keepdims=True))
    np.testing.assert_allclose(
        ops.softmax(x, axis=axis), e / e.sum(axis, keepdims=True), rtol=1e-14
    )
    np.testing.assert_allclose(
        ops.log_softmax(x, axis=axis), np.log(e / e.sum(axis, keepdims=True)), rtol=1e-13
    )
    for bad in (-3, 2):
        with pytest.raises(ValueError, match=rf"^softmax: 'axis' {bad} is out of range"):
            ops.softmax(x, axis=bad)
