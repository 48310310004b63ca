"""Batching: KFold fold sizes and the lesson's KFold-over-shuffled-indices scheme."""

from __future__ import annotations

import numpy as np
import pytest

from nnref.data import kfold_batches, kfold_sizes, shuffled_batches


@pytest.mark.parametrize(
    ("n", "k", "sizes"), [(10, 3, [4, 3, 3]), (11, 4, [3, 3, 3, 2]), (7, 7, [1] * 7)]
)
def test_kfold_sizes_pinned(n, k, sizes) -> None:
    assert kfold_sizes(n, k) == sizes


def test_lesson_batches_1437_by_64() -> None:
    batches = kfold_batches(1437, 64, 0)
    assert [len(b) for b in batches] == [66] * 7 + [65] * 15
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1437))


def test_matches_sklearn_kfold() -> None:
    from sklearn.model_selection import KFold

    for n, k in [(10, 3), (11, 4), (1437, 22), (100, 7)]:
        want = [len(te) for _, te in KFold(k).split(np.zeros(n))]
        assert kfold_sizes(n, k) == want
        perm = np.random.default_rng(3).permutation(n)
        ours = np.split(perm, np.cumsum(kfold_sizes(n, k))[:-1])
        theirs = [perm[te] for _, te in KFold(k).split(perm)]
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_shuffled_batches_and_errors() -> None:
    b = shuffled_batches(10, 4, 0)
    assert [len(x) for x in b] == [4, 4, 2]
    assert [len(x) for x in shuffled_batches(10, 4, 0, drop_remainder=True)] == [4, 4]
    # Fewer samples than one batch: nothing left, as tf.data's batch(drop_remainder=True)
    # (a short batch of 3 came back, against the docstring).
    assert shuffled_batches(3, 4, 0, drop_remainder=True) == []
    assert [len(x) for x in shuffled_batches(4, 4, 0, drop_remainder=True)] == [4]
    for a, c in zip(b, shuffled_batches(10, 4, 0), strict=True):
        np.testing.assert_array_equal(a, c)
    with pytest.raises(ValueError, match="cannot split n=3 samples into k=4 folds"):
        kfold_sizes(3, 4)
    with pytest.raises(ValueError, match="'batch_size' must be a positive int"):
        kfold_batches(10, 0, 0)
    with pytest.raises(ValueError, match="'k' must be a positive int"):
        kfold_sizes(10, 0)
    for bad in (10.5, 0, True, "10"):  # 10.5 once reached NumPy's permutation: an AxisError
        with pytest.raises(
            ValueError, match=rf"^shuffled_batches: 'n' must be a positive int, got {bad!r}$"
        ):
            shuffled_batches(bad, 4, 0)


def test_batching_errors_name_the_function() -> None:
    for bad in (10.5, 0, -1):  # 0 once raised "kfold_sizes: cannot split n=0 samples ..."
        with pytest.raises(
            ValueError, match=rf"^kfold_batches: 'n' must be a positive int, got {bad!r}$"
        ):
            kfold_batches(bad, 3, 0)
    with pytest.raises(ValueError, match=r"^kfold_batches: an int seed for 'rng' must be >= 0"):
        kfold_batches(10, 3, -1)
    with pytest.raises(TypeError, match=r"^shuffled_batches: 'rng' must be a numpy"):
        shuffled_batches(10, 3, "abc")
