"""Cases for ``relu``, ``sigmoid``, ``softmax`` and ``log_softmax``."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref.cases._make import Args, Maker, away_from_zero, normal
from nnref.cases._table import Case, OpTable


def _unary(shape: tuple[int, ...], maker: Any = normal, **static: Any) -> Maker:
    return lambda r, dt: ((maker(r, shape, dt),), dict(static))


def _relu_at_zero(r: np.random.Generator, dt: np.dtype) -> Args:
    x = away_from_zero(r, (4, 6), dt)
    x[0, :3] = dt.type(0.0)
    x[1, :3] = dt.type(-0.0)
    return (x,), {}


def _relu_nan(r: np.random.Generator, dt: np.dtype) -> Args:
    x = away_from_zero(r, (3, 5), dt)
    x[0, 1] = x[2, 4] = dt.type(np.nan)
    return (x,), {}


def _relu_inf(r: np.random.Generator, dt: np.dtype) -> Args:
    x = away_from_zero(r, (3, 4), dt)
    x[0, 0] = x[1, 2] = dt.type(np.inf)
    x[0, 3] = x[2, 1] = dt.type(-np.inf)
    return (x,), {}


def _scaled(s: float) -> Maker:
    return lambda r, dt: ((normal(r, (6, 7), dt, s),), {})


def _saturated(r: np.random.Generator, dt: np.dtype) -> Args:
    """x in [40, 60]: sigmoid rounds to exactly 1 in float32 (from 17) and float64 (from 37)."""
    return (r.uniform(40.0, 60.0, (4, 5)).astype(dt),), {}


def _huge_logits(r: np.random.Generator, dt: np.dtype) -> Args:
    z = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]])
    return (np.concatenate([z, normal(r, (2, 3), dt).astype(np.float64)]).astype(dt),), {}


RELU = OpTable(
    "relu",
    "vjp",
    ("x",),
    (
        Case("away-from-0", _unary((6, 7), away_from_zero), "|x| in [0.1, 2]: no kink in reach"),
        Case(
            "gradient-at-0-is-0",
            _relu_at_zero,
            "exact 0.0 and -0.0 inputs: relu'(0) = 0, as tf.nn.relu's ReluGrad",
            pins=("relu-grad-at-0",),
            fd=False,
            why_no_fd="relu has a kink at 0: finite differences give 1/2",
        ),
        Case(
            "nan-input-gradient-0",
            _relu_nan,
            "NaN inputs: relu(NaN) = NaN with gradient 0, as tf.nn.relu",
            pins=("relu-grad-at-nan",),
            fd=False,
            why_no_fd="NaN inputs have no derivative",
        ),
        Case(
            "infinite-inputs",
            _relu_inf,
            "+-inf inputs: relu(inf) = inf with gradient dy, relu(-inf) = 0 with gradient 0 "
            "(x * (x > 0) gives NaN at -inf)",
            pins=("relu-at-inf",),
            fd=False,
            why_no_fd="infinite inputs have no finite differences",
        ),
    ),
    "tf.nn.relu / keras.layers.ReLU",
)

SIGMOID = OpTable(
    "sigmoid",
    "vjp",
    ("x",),
    (
        Case("normal-times-3", _scaled(3.0), "x ~ N(0, 9): both branches of the stable formula"),
        Case(
            "saturating-times-12",
            _scaled(12.0),
            "x ~ N(0, 144): saturated tails, gradient y(1 - y) from the output",
        ),
        Case(
            "saturated-gradient-exactly-0",
            _saturated,
            "x in [40, 60], where y rounds to 1: the gradient y (1 - y) is exactly 0 (the "
            "derivative exp(-x) / (1 + exp(-x))^2 is not; beside a large gradient elsewhere, "
            "the error measure could not see the difference)",
            pins=("sigmoid-grad-from-output",),
        ),
    ),
    "tf.nn.sigmoid / keras.layers.Activation('sigmoid')",
)

_SOFTMAX_CASES = (
    Case("rows-last-axis", _unary((5, 6)), "normalised over the last axis (the default)"),
    Case("axis-0", _unary((4, 3), axis=0), "normalised over axis 0", pins=("softmax-axis",)),
    Case(
        "huge-logits-shifted",
        _huge_logits,
        "logits +-1e4: the max-shifted form gives no inf or NaN",
        pins=("softmax-shift",),
        fd=False,
        why_no_fd="at +-1e4 the derived steps (1/16) are too coarse for differences to converge",
    ),
)

SOFTMAX = OpTable(
    "softmax", "vjp", ("x",), _SOFTMAX_CASES, "tf.nn.softmax / keras.layers.Softmax", ("axis",)
)
LOG_SOFTMAX = OpTable(
    "log_softmax",
    "vjp",
    ("x",),
    _SOFTMAX_CASES,
    "tf.nn.log_softmax / keras.activations.log_softmax",
    ("axis",),
)

PINS = {
    "relu-grad-at-0": "relu's gradient at x = 0 and x = -0.0 is 0 (tf.nn.relu)",
    "relu-grad-at-nan": "relu's gradient at NaN is 0 (relu(NaN) = NaN)",
    "relu-at-inf": "relu(-inf) = 0 with gradient 0, relu(inf) = inf with gradient dy (tf.nn.relu)",
    "sigmoid-grad-from-output": "sigmoid's gradient is y * (1 - y) from the output: exactly 0 "
    "where y rounds to 1",
    "softmax-axis": "softmax / log_softmax normalise over the given axis",
    "softmax-shift": "softmax and log_softmax subtract the maximum first: +-1e4 logits stay finite",
}
