"""Keras-style losses on inputs of rank 3 and with sample weights, against hand-computed values
and against the same loss on the flattened batch: the reduction axis, the weight squeezing and the
default arguments are pinned without TensorFlow."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from nnref import ops

N, T, K = 2, 3, 4


def _probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    p = rng.uniform(0.05, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def _cases(rng: np.random.Generator) -> dict[str, tuple[Callable[..., Any], Any, Any, dict]]:
    labels = rng.integers(0, K, (N, T))
    soft = _probs(rng, (N, T, K))
    p = _probs(rng, (N, T, K)) * 1.7  # rows not normalised: the loss renormalises
    z = rng.standard_normal((N, T, K))
    return {
        "scce-probs": (ops.sparse_categorical_crossentropy_fwd, labels, p, {}),
        "scce-logits": (ops.sparse_categorical_crossentropy_fwd, labels, z, {"from_logits": True}),
        "cce-probs": (ops.categorical_crossentropy_fwd, soft, p, {}),
        "cce-logits-smoothed": (
            ops.categorical_crossentropy_fwd,
            soft,
            z,
            {"from_logits": True, "label_smoothing": 0.2},
        ),
        "cce-probs-smoothed": (ops.categorical_crossentropy_fwd, soft, p, {"label_smoothing": 0.3}),
        "mse": (ops.mean_squared_error_fwd, soft, p, {}),
    }


CASES = [
    "scce-probs",
    "scce-logits",
    "cce-probs",
    "cce-logits-smoothed",
    "cce-probs-smoothed",
    "mse",
]


@pytest.mark.parametrize("case", CASES)
def test_rank3_equals_flattened_batch_values_and_vjp(case: str, rng) -> None:
    fwd, t, p, kw = _cases(rng)[case]
    bwd = {
        ops.sparse_categorical_crossentropy_fwd: ops.sparse_categorical_crossentropy_bwd,
        ops.categorical_crossentropy_fwd: ops.categorical_crossentropy_bwd,
        ops.mean_squared_error_fwd: ops.mean_squared_error_bwd,
    }[fwd]
    flat_t = t.reshape(N * T) if t.ndim == 2 else t.reshape(N * T, K)
    y3, r3 = fwd(t, p, reduction="none", **kw)
    y2, r2 = fwd(flat_t, p.reshape(N * T, K), reduction="none", **kw)
    assert y3.shape == (N, T)
    np.testing.assert_array_equal(y3, y2.reshape(N, T))
    dy = rng.standard_normal((N, T))
    g3, g2 = bwd(r3, dy), bwd(r2, dy.reshape(N * T))
    for a, b in zip(g3, g2, strict=True):
        if a is not None:
            np.testing.assert_array_equal(a, b.reshape(a.shape))


@pytest.mark.parametrize("case", CASES)
def test_sample_weight_shapes_and_reductions(case: str, rng) -> None:
    fwd, t, p, kw = _cases(rng)[case]
    per, _ = fwd(t, p, reduction="none", **kw)
    w = rng.uniform(0, 2, (N, T))
    expected = per * w
    for sw in (w, w[..., None], w.astype(np.float32)):
        got, _ = fwd(t, p, reduction="none", sample_weight=sw, **kw)
        np.testing.assert_allclose(got, per * sw.reshape(N, T), rtol=1e-15)
    wn = np.array([[2], [3]])  # (N, 1) of ints broadcasts over T
    got, _ = fwd(t, p, reduction="none", sample_weight=wn, **kw)
    np.testing.assert_allclose(got, per * wn, rtol=1e-15)
    s, _ = fwd(t, p, reduction="sum", sample_weight=w, **kw)
    m, _ = fwd(t, p, sample_weight=w, **kw)  # sum_over_batch_size: divide by N*T, not sum(w)
    assert s.shape == m.shape == ()
    assert s == pytest.approx(expected.sum(), rel=1e-14)
    assert m == pytest.approx(expected.sum() / (N * T), rel=1e-14)
    with pytest.raises(TypeError, match=r"'sample_weight' must be real numbers, got dtype bool"):
        fwd(t, p, sample_weight=w > 1, **kw)
    with pytest.raises(ValueError, match=r"'sample_weight' \(4,\) does not broadcast"):
        fwd(t, p, sample_weight=np.ones(4), **kw)


def test_sample_weight_of_a_length_one_axis_is_not_squeezed(rng) -> None:
    p = _probs(rng, (2, 1, K))
    soft = _probs(rng, (2, 1, K))
    w = np.array([[2.0], [0.5]])
    per, _ = ops.categorical_crossentropy_fwd(soft, p, reduction="none")
    got, _ = ops.categorical_crossentropy_fwd(soft, p, reduction="none", sample_weight=w)
    assert got.shape == (2, 1)
    np.testing.assert_allclose(got, per * w, rtol=1e-15)


def test_defaults_are_probabilities_without_smoothing_averaged(rng) -> None:
    p = _probs(rng, (5, K))
    labels = rng.integers(0, K, 5)
    expected = -sum(math.log(p[i, labels[i]]) for i in range(5)) / 5
    assert float(ops.sparse_categorical_crossentropy(labels, p)) == pytest.approx(expected)
    assert float(ops.categorical_crossentropy(np.eye(K)[labels], p)) == pytest.approx(expected)
    t = rng.standard_normal((5, K))
    assert float(ops.mean_squared_error(t, p)) == pytest.approx(float(((p - t) ** 2).mean()))


def test_full_label_smoothing_gives_uniform_targets(rng) -> None:
    p = _probs(rng, (3, K))
    onehot = np.eye(K)[[0, 2, 1]]
    per = ops.categorical_crossentropy(onehot, p, label_smoothing=1.0, reduction="none")
    np.testing.assert_allclose(per, -np.log(p).mean(-1), rtol=1e-14)
    with pytest.raises(ValueError, match=r"'label_smoothing' must be in \[0, 1\], got 1.5"):
        ops.categorical_crossentropy(onehot, p, label_smoothing=1.5)
