"""Cases for the TF cross-entropy ops, the Keras losses and mean squared error."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref.cases._make import Args, Maker, dyadic_rows, labels, normal, probs
from nnref.cases._table import Case, OpTable

_CLIP_NO_FD = "probabilities at 0 and 1 sit on Keras' clip at 1e-7: a kink within a step's reach"


def _sparse(n: int, k: int, scale: float = 1.0) -> Maker:
    return lambda r, dt: ((labels(r, n, k), normal(r, (n, k), dt, scale)), {})


def _bad_label(value: int) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        y = labels(r, 4, 3)
        y[2] = value
        return (y, normal(r, (4, 3), dt)), {}

    return make


def _ln2_rows(r: np.random.Generator, dt: np.dtype) -> Args:
    z = np.array([[1e4, 1e4, -1e4], [-1e4, 1e4, 1e4], [5e3, 5e3, 0.0]], dtype=dt)
    return (np.array([0, 2, 1], np.int64), z), {}


def _huge_sparse(r: np.random.Generator, dt: np.dtype) -> Args:
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]], dtype=dt)
    return (np.array([1, 1, 0], np.int64), z), {}


def _dense_labels(n: int, k: int, kind: str) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        if kind == "onehot":
            p = np.eye(k)[labels(r, n, k)]
        elif kind == "rows-sum-1":  # TF's softmax - p is the derivative only here
            p = dyadic_rows(r, (n, k), dt)
        else:
            p = probs(r, (n, k), dt, scale=True)
        return (p.astype(dt), normal(r, (n, k), dt)), {}

    return make


def _with_weights(r: np.random.Generator, st: dict[str, Any], n: int, dt: np.dtype) -> dict:
    st = dict(st)
    if st.pop("weighted", False):
        st["sample_weight"] = r.uniform(0, 2, n).astype(dt)
    return st


def _clipped_probs(r: np.random.Generator, n: int, k: int, dt: np.dtype) -> np.ndarray:
    """Probability rows holding exact 0s and 1s, where Keras clips to [1e-7, 1 - 1e-7]."""
    p = probs(r, (n, k), dt, scale=False)
    p[0] = 0
    p[0, 0] = 1  # a certain row
    p[1, 1] = 0  # an impossible class
    return p.astype(dt)


def _scce(n: int, k: int, pred: str, **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        y = labels(r, n, k)
        if pred == "logits":
            p = normal(r, (n, k), dt)
        elif pred == "clipped":
            y[0], y[1] = 0, 1
            p = _clipped_probs(r, n, k, dt)
        else:
            p = probs(r, (n, k), dt, scale=True)
        st = {"from_logits": pred == "logits", **static}
        return (y, p), _with_weights(r, st, n, dt)

    return make


def _cce(n: int, k: int, pred: str, **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        lab = labels(r, n, k)
        if pred == "logits":
            p = normal(r, (n, k), dt)
        elif pred == "clipped":
            lab[0], lab[1] = 0, 1
            p = _clipped_probs(r, n, k, dt)
        else:
            p = probs(r, (n, k), dt, scale=True)
        st = {"from_logits": pred == "logits", **static}
        return (np.eye(k)[lab].astype(dt), p), _with_weights(r, st, n, dt)

    return make


def _mse(shape: tuple[int, ...], **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        args = (normal(r, shape, dt), normal(r, shape, dt))
        return args, _with_weights(r, static, shape[0], dt)

    return make


def _raises(value: int, maker: Maker) -> Case:
    what = {
        3: "a label equal to the number of classes (3)",
        -1: "a label of -1",
        -100: "a label of -100 (PyTorch's default ignore_index)",
    }[value]
    pin = "label-minus-100" if value == -100 else "label-out-of-range"
    cid = {3: "label-out-of-range-raises", -1: "label-negative-raises"}.get(
        value, "label-minus-100-raises"
    )
    return Case(cid, maker, f"{what}: TF raises on CPU", pins=(pin,), raises=True, fd=False)


SPARSE_XENT = OpTable(
    "sparse_softmax_cross_entropy_with_logits",
    "vjp",
    ("labels", "logits"),
    (
        Case("batch-8-classes-5", _sparse(8, 5), "per-sample loss, integer labels"),
        Case("logits-times-5", _sparse(6, 10, 5.0), "logits ~ N(0, 25) over 10 classes"),
        Case(
            "huge-logits-shifted",
            _huge_sparse,
            "logits +-1e4: the shifted form log(sum exp(z - m)) - (z_y - m) is exact "
            "(ln 2 for [1e4, 1e4, -1e4])",
            pins=("xent-shift",),
        ),
        Case(
            "ln2-rows-shifted",
            _ln2_rows,
            "rows of two equal top logits (1e4 or 5e3 apart from the third): every loss is ln 2, "
            "exact in the shifted form, 0.69335938 in float32 when (m + log sum) - z_y is "
            "recombined",
            pins=("xent-shift",),
        ),
        _raises(3, _bad_label(3)),
        _raises(-1, _bad_label(-1)),
        _raises(-100, _bad_label(-100)),
    ),
    "tf.nn.sparse_softmax_cross_entropy_with_logits / "
    "keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction='none')",
)

DENSE_XENT = OpTable(
    "softmax_cross_entropy_with_logits",
    "vjp",
    ("labels", "logits"),
    (
        Case("onehot-labels", _dense_labels(6, 5, "onehot"), "one-hot label rows"),
        Case(
            "soft-labels-rows-sum-1",
            _dense_labels(6, 5, "rows-sum-1"),
            "soft labels whose rows sum to exactly 1",
        ),
        Case(
            "soft-labels-rows-not-1",
            _dense_labels(6, 5, "rows-not-1"),
            "rows of p summing to 0.5-2: TF's dlogits is softmax(z) - p, not the derivative "
            "softmax(z) * sum(p) - p",
            pins=("dense-xent-grad",),
            fd=False,
            why_no_fd="TF's dlogits is softmax(z) - p, the true derivative is "
            "softmax(z) * sum(p) - p; they differ when rows of p do not sum to 1",
        ),
    ),
    "tf.nn.softmax_cross_entropy_with_logits / "
    "keras.losses.CategoricalCrossentropy(from_logits=True, reduction='none')",
)

SCCE = OpTable(
    "sparse_categorical_crossentropy",
    "vjp",
    ("y_true", "y_pred"),
    (
        Case(
            "from-logits",
            _scce(8, 5, "logits"),
            "from_logits=True, mean over the batch",
            pins=("keras-reduction",),
        ),
        Case(
            "probs-rows-not-1",
            _scce(8, 5, "probs"),
            "probabilities whose rows sum to 0.5-2: clipped, no renormalisation before the log",
            pins=("keras-prob-loss",),
        ),
        Case(
            "probs-sum-weighted",
            _scce(6, 4, "probs", reduction="sum", weighted=True),
            "reduction 'sum' with sample weights",
            pins=("keras-reduction",),
        ),
        Case(
            "logits-reduction-none",
            _scce(6, 4, "logits", reduction="none"),
            "reduction 'none': per-sample losses",
            pins=("keras-reduction",),
        ),
        Case(
            "probs-clipped-at-1e-7",
            _scce(6, 4, "clipped"),
            "probabilities of exactly 0 and 1: clipped to [1e-7, 1 - 1e-7], zero gradient there",
            pins=("keras-clip",),
            fd=False,
            why_no_fd=_CLIP_NO_FD,
        ),
        Case(
            "label-out-of-range-raises",
            lambda r, dt: ((np.array([0, 4, 1]), probs(r, (3, 4), dt, False)), {}),
            "a label equal to the number of classes (4): TF raises on CPU",
            pins=("label-out-of-range",),
            raises=True,
            fd=False,
        ),
    ),
    "tf.keras.losses.sparse_categorical_crossentropy + tf reduction / "
    "keras.losses.SparseCategoricalCrossentropy",
    ("from_logits", "reduction", "sample_weight"),
)

CCE = OpTable(
    "categorical_crossentropy",
    "vjp",
    ("y_true", "y_pred"),
    (
        Case(
            "from-logits",
            _cce(8, 5, "logits"),
            "from_logits=True, mean over the batch",
            pins=("keras-reduction",),
        ),
        Case(
            "probs-renormalised",
            _cce(8, 5, "probs"),
            "probability rows summing to 0.5-2: divided by their sum, then clipped",
            pins=("keras-prob-loss",),
        ),
        Case(
            "logits-smoothing-0.1",
            _cce(6, 4, "logits", label_smoothing=0.1),
            "label_smoothing 0.1: y * 0.9 + 0.1 / K",
            pins=("label-smoothing",),
        ),
        Case(
            "probs-smoothing-0.3-weighted",
            _cce(6, 4, "probs", label_smoothing=0.3, weighted=True),
            "label smoothing 0.3 with sample weights",
            pins=("label-smoothing", "keras-reduction"),
        ),
        Case(
            "probs-reduction-none",
            _cce(6, 4, "probs", reduction="none"),
            "reduction 'none': per-sample losses",
            pins=("keras-reduction",),
        ),
        Case(
            "probs-clipped-at-1e-7",
            _cce(6, 4, "clipped"),
            "probabilities of exactly 0 and 1: clipped to [1e-7, 1 - 1e-7], zero gradient there",
            pins=("keras-clip",),
            fd=False,
            why_no_fd=_CLIP_NO_FD,
        ),
    ),
    "tf.keras.losses.categorical_crossentropy + tf reduction / "
    "keras.losses.CategoricalCrossentropy",
    ("from_logits", "label_smoothing", "reduction", "sample_weight"),
)

MSE = OpTable(
    "mean_squared_error",
    "vjp",
    ("y_true", "y_pred"),
    (
        Case(
            "rows-6x3",
            _mse((6, 3)),
            "mean over the last axis, then over the batch",
            pins=("keras-reduction",),
        ),
        Case(
            "reduction-none",
            _mse((5, 4), reduction="none"),
            "per-sample mean",
            pins=("keras-reduction",),
        ),
        Case(
            "sum-weighted",
            _mse((5, 2), reduction="sum", weighted=True),
            "reduction 'sum' with sample weights",
            pins=("keras-reduction",),
        ),
    ),
    "tf.reduce_mean(tf.square(t - p), -1) + tf reduction / keras.losses.MeanSquaredError",
    ("reduction", "sample_weight"),
)

PINS = {
    "xent-shift": "cross-entropy in the max-shifted form: exact for +-1e4 logits",
    "label-out-of-range": "sparse labels outside [0, K) raise (TF on CPU), never wrap or clip",
    "label-minus-100": "label -100 raises (TF); PyTorch ignores it by default",
    "dense-xent-grad": "tf.nn.softmax_cross_entropy_with_logits' dlogits is softmax(z) - p",
    "keras-prob-loss": "Keras' probability losses: CCE divides rows by their sum, SCCE does not",
    "keras-clip": "Keras clips probabilities to [1e-7, 1 - 1e-7]; clipped entries get no gradient",
    "keras-reduction": "reductions 'sum_over_batch_size' (divide by the number of losses, not by "
    "the weights' sum), 'sum', 'none'; sample weights multiply per-sample losses",
    "label-smoothing": "label smoothing y * (1 - ls) + ls / K",
}
