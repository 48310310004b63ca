"""scikit-learn oracle: ``KFold`` for the fold sizes and the lesson's KFold mini-batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

NAME = "sklearn"


def _kfold() -> Any:
    try:
        from sklearn.model_selection import KFold
    except ImportError as e:  # pragma: no cover - exercised only without scikit-learn
        raise ImportError("the KFold oracle needs scikit-learn: pip install 'nnref[data]'") from e
    return KFold


def versions() -> dict[str, str]:
    import sklearn

    return {"scikit-learn": str(sklearn.__version__)}


def _sizes(args: tuple, st: dict) -> list[int]:
    n, k = args
    return [len(test) for _, test in _kfold()(k).split(np.arange(n))]


def _batches(args: tuple, st: dict) -> list[np.ndarray]:
    """``KFold(int(n / batch_size))`` test folds over ``rng.permutation(n)`` (the lesson's
    ``shuffled[test_idx]``)."""
    n, batch_size, rng = args
    perm = rng.permutation(n).astype(np.int64)
    k = max(1, int(n / batch_size))
    return [perm[test] for _, test in _kfold()(k).split(perm)]


FORWARD: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], Any]] = {
    "kfold_sizes": _sizes,
    "kfold_batches": _batches,
}

COUNTERPARTS = {
    "kfold_sizes": "sklearn.model_selection.KFold(k).split",
    "kfold_batches": "sklearn.model_selection.KFold(int(n / batch_size)) over a permutation",
}
