"""Cases for ``dense`` and ``bias_add``."""

from __future__ import annotations

import numpy as np

from nnref.cases._make import Args, Maker, normal
from nnref.cases._table import Case, OpTable


def _dense(x_shape: tuple[int, ...], o: int) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        i = x_shape[-1]
        return (normal(r, x_shape, dt), normal(r, (i, o), dt, 0.5), normal(r, (o,), dt)), {}

    return make


def _bias(x_shape: tuple[int, ...]) -> Maker:
    return lambda r, dt: ((normal(r, x_shape, dt), normal(r, (x_shape[-1],), dt)), {})


DENSE = OpTable(
    "dense",
    "vjp",
    ("x", "w", "b"),
    (
        Case("small-4x5-to-3", _dense((4, 5), 3), "y = x @ w + b on a 4x5 batch, 3 units"),
        Case("wider-7x16-to-9", _dense((7, 16), 9), "16 inputs to 9 units"),
        Case(
            "square-kernel-6x6",
            _dense((4, 6), 6),
            "a square kernel: dW returned transposed has the right shape, and only its values tell",
            pins=("dense-dw-orientation",),
        ),
        Case(
            "rank-3-input",
            _dense((2, 3, 4), 5),
            "a (2, 3, 4) input: the kernel applies to the last axis, as keras.layers.Dense",
            pins=("dense-last-axis",),
        ),
    ),
    "tf.linalg.matmul + tf.nn.bias_add / keras.layers.Dense",
)

BIAS_ADD = OpTable(
    "bias_add",
    "vjp",
    ("x", "b"),
    (
        Case("rank-2", _bias((5, 4)), "bias added to every row"),
        Case(
            "nhwc-channels-last",
            _bias((2, 3, 3, 4)),
            "NHWC: the bias adds to the last (channel) axis; db sums over N, H and W",
            pins=("bias-channels-last",),
        ),
    ),
    "tf.nn.bias_add / keras.layers.Dense (identity kernel)",
)

PINS = {
    "dense-last-axis": "dense on a rank > 2 input contracts its last axis (keras.layers.Dense)",
    "dense-dw-orientation": "dense's dW is (inputs, units), the kernel's orientation: x^T dy",
    "bias-channels-last": "bias_add adds along the last axis (NHWC, tf.nn.bias_add's default)",
}
