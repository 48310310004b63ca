"""Cases for the non-differentiable functions: ``argmax``, ``accuracy``, ``one_hot`` and the
KFold mini-batching (``kfold_sizes``, ``kfold_batches``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref.cases._make import Args, Maker, labels, normal, small_ints
from nnref.cases._table import Case, OpTable


def _argmax(kind: str, **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        if kind == "ties":
            x = small_ints(r, (40, 5), dt)
        elif kind == "nan":
            x = normal(r, (6, 4), dt)
            x[0, 1] = np.nan  # NaN beside larger values: skipped
            x[1, 0] = np.nan  # NaN first
            x[2, :] = np.nan  # all NaN: index 0
            x[3, :2] = [-np.inf, np.nan]
            x[3, 2:] = -np.inf  # only -inf and NaN: index 0
        else:
            x = normal(r, (200, 7), dt)
        return (x,), dict(static)

    return make


def _accuracy(kind: str) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        n, k = 60, 5
        pred = small_ints(r, (n, k), dt, 4) if kind == "ties" else normal(r, (n, k), dt)
        if kind == "ties":
            pred[::7, 2] = np.nan
        y = labels(r, n, k)
        y[: n // 2] = np.argmax(np.where(np.isnan(pred), -np.inf, pred), -1)[: n // 2]
        if kind == "onehot":
            return (np.eye(k, dtype=dt)[y], pred), {}
        if kind == "n-by-1":
            return (y[:, None], pred), {}
        return (y, pred), {}

    return make


def _fixed(*args: Any) -> Maker:
    return lambda r, dt: (args, {})


def _batches(n: int, b: int) -> Maker:
    return lambda r, dt: ((n, b, r), {})


def _one_hot(idx: list[Any], depth: int, **static: Any) -> Maker:
    return lambda r, dt: ((np.array(idx, np.int64),), {"depth": depth, "dtype": dt, **static})


ARGMAX = OpTable(
    "argmax",
    "forward",
    ("x",),
    (
        Case("random-200x7", _argmax("random"), "index of the largest value along the last axis"),
        Case(
            "ties-first-index",
            _argmax("ties"),
            "integer values 0-2: ties go to the first index, as tf.argmax",
            pins=("argmax-tie-first",),
        ),
        Case(
            "nan-skipped",
            _argmax("nan"),
            "NaN never wins (tf.argmax([0.1, nan, 0.5]) = 2; np.argmax says 1); a row of only "
            "NaN and -inf gives 0",
            pins=("argmax-nan",),
        ),
        Case("axis-0", _argmax("random", axis=0), "along axis 0"),
    ),
    "tf.argmax",
    ("axis",),
)

ACCURACY = OpTable(
    "accuracy",
    "forward",
    ("y_true", "y_pred"),
    (
        Case("sparse-labels", _accuracy("sparse"), "integer labels vs argmax of the scores"),
        Case(
            "sparse-labels-n-by-1",
            _accuracy("n-by-1"),
            "labels of shape (N, 1) are squeezed, as keras.metrics.SparseCategoricalAccuracy",
            pins=("accuracy-squeeze",),
        ),
        Case(
            "onehot-labels",
            _accuracy("onehot"),
            "one-hot label rows: the class is their argmax, as keras.metrics.CategoricalAccuracy",
        ),
        Case(
            "ties-and-nan",
            _accuracy("ties"),
            "tied scores go to the first class, NaN scores never win",
            pins=("argmax-tie-first", "argmax-nan"),
        ),
    ),
    "tf.argmax / keras.metrics.SparseCategoricalAccuracy, CategoricalAccuracy",
)

ONE_HOT = OpTable(
    "one_hot",
    "forward",
    ("indices",),
    (
        Case("in-range", _one_hot([0, 2, 1, 1, 0], 3), "indices within [0, depth)"),
        Case(
            "out-of-range-rows-zero",
            _one_hot([0, 3, 7, 2], 3),
            "indices >= depth give all-off rows (tf.one_hot), never an error",
            pins=("one-hot-out-of-range",),
        ),
        Case(
            "negative-rows-zero",
            _one_hot([-1, 1, -3], 3),
            "negative indices give all-off rows; np.eye(depth)[-1] would wrap around",
            pins=("one-hot-out-of-range",),
        ),
        Case(
            "axis-0-on-off-values",
            _one_hot([[0, 2], [1, 5]], 3, axis=0, on_value=5.0, off_value=-1.0),
            "the new axis first, on 5 and off -1 (an out-of-range index: all -1)",
            pins=("one-hot-axis", "one-hot-out-of-range"),
        ),
    ),
    "tf.one_hot / keras.ops.one_hot",
    ("depth", "on_value", "off_value", "axis", "dtype"),
)

KFOLD_SIZES = OpTable(
    "kfold_sizes",
    "forward",
    ("n", "k"),
    tuple(
        Case(
            f"n-{n}-k-{k}",
            _fixed(n, k),
            f"{n} samples in {k} folds: the first n % k folds have n // k + 1",
            pins=("kfold-sizes",),
        )
        for n, k in [(10, 3), (11, 4), (1437, 22), (7, 7)]
    ),
    "sklearn.model_selection.KFold(k).split",
    dtyped=False,
)

KFOLD_BATCHES = OpTable(
    "kfold_batches",
    "batches",
    ("n", "batch_size", "rng"),
    tuple(
        Case(
            f"n-{n}-batch-{b}",
            _batches(n, b),
            f"{n} samples, batch size {b}: KFold(int({n} / {b})) test folds over a permutation "
            "(every sample once, the first folds one larger)",
            pins=("kfold-sizes",),
        )
        for n, b in [(1437, 64), (10, 3), (100, 30)]
    ),
    "sklearn.model_selection.KFold(int(n / batch_size), shuffle=True) test folds",
    dtyped=False,
)

PINS = {
    "argmax-tie-first": "argmax ties go to the first index",
    "argmax-nan": "NaN never wins argmax (tf.argmax), unlike np.argmax",
    "accuracy-squeeze": "sparse labels of shape (N, 1) are squeezed",
    "one-hot-out-of-range": "out-of-range and negative one-hot indices give all-off rows",
    "one-hot-axis": "one_hot's axis and on/off values",
    "kfold-sizes": "KFold folds: the first n % k have n // k + 1 samples, the rest n // k",
}
