"""Mini-batching: shuffled batches and the digits lesson's KFold-over-shuffled-indices scheme."""

from __future__ import annotations

import numpy as np

from nnref import _memory
from nnref._validate import is_int
from nnref.init import Rng, as_generator


def kfold_sizes(n: int, k: int) -> list[int]:
    """Fold sizes of ``sklearn.model_selection.KFold(k)`` on ``n`` samples: the first
    ``n % k`` folds have ``n // k + 1`` samples, the rest ``n // k``."""
    if not is_int(n) or n < 0:
        raise ValueError(f"kfold_sizes: 'n' must be a non-negative int, got {n!r}")
    if not is_int(k) or k < 1:
        raise ValueError(f"kfold_sizes: 'k' must be a positive int, got {k!r}")
    if k > n:
        raise ValueError(f"kfold_sizes: cannot split n={n} samples into k={k} folds")
    q, r = divmod(int(n), int(k))
    try:
        return [q + 1] * r + [q] * (k - r)
    except _memory.TOO_LARGE as e:  # a list of k pointers to two ints
        raise MemoryError(
            f"kfold_sizes: 'k' {k} gives a list of {k} fold sizes "
            f"({_memory.size_str(8 * int(k))} of pointers), which cannot be allocated"
        ) from e


def _too_large(op: str, n: int, batch_size: int, count: int) -> MemoryError:
    """The MemoryError for ``count`` batches of a permutation of ``n`` that cannot be
    allocated."""
    return _memory.too_large(
        op,
        f"'n' {n} with 'batch_size' {batch_size}",
        f"{count} batches of a permutation",
        (n,),
        np.int64,
    )


def kfold_batches(n: int, batch_size: int, rng: Rng) -> list[np.ndarray]:
    """One epoch of the lesson's mini-batches: ``KFold(int(n / batch_size))`` test folds over a
    random permutation of ``range(n)``.

    Every sample appears exactly once; batches have ``n // k + 1`` or ``n // k`` samples (n=1437,
    batch 64: 7 batches of 66, then 15 of 65), unlike slicing, which leaves a short last batch.

    Returns
    -------
    list of int64 index arrays, in batch order.
    """
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"kfold_batches: 'batch_size' must be a positive int, got {batch_size!r}")
    if not is_int(n) or n < 1:  # n=0 once failed inside kfold_sizes, named as that
        raise ValueError(f"kfold_batches: 'n' must be a positive int, got {n!r}")
    k = max(1, int(n / batch_size))
    gen = as_generator(rng, "kfold_batches")
    try:  # kfold_sizes' own MemoryError would name its 'k', which the caller did not pass
        sizes = kfold_sizes(n, k)
        return np.split(gen.permutation(n).astype(np.int64, copy=False), np.cumsum(sizes)[:-1])
    except _memory.TOO_LARGE as e:
        raise _too_large("kfold_batches", n, batch_size, k) from e


def shuffled_batches(
    n: int, batch_size: int, rng: Rng, *, drop_remainder: bool = False
) -> list[np.ndarray]:
    """One epoch of shuffled batches of ``batch_size`` (the last one shorter unless dropped;
    with ``drop_remainder`` and ``n < batch_size`` no batch at all, as ``tf.data``'s
    ``batch(drop_remainder=True)``)."""
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(
            f"shuffled_batches: 'batch_size' must be a positive int, got {batch_size!r}"
        )
    if not is_int(n) or n < 1:
        raise ValueError(f"shuffled_batches: 'n' must be a positive int, got {n!r}")
    gen = as_generator(rng, "shuffled_batches")
    try:
        perm = gen.permutation(n).astype(np.int64, copy=False)
        batches = [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    except _memory.TOO_LARGE as e:
        raise _too_large("shuffled_batches", n, batch_size, -(-n // batch_size)) from e
    if drop_remainder and len(batches[-1]) < batch_size:
        batches.pop()
    return batches
