"""Cases for ``conv2d`` (NHWC input, HWIO kernel, TF padding names).

Ids say what each case exercises. With ``eff_k = (k - 1) * d + 1``, SAME pads
``total = max((ceil(n / s) - 1) * s + eff_k - n, 0)`` per axis, ``total // 2`` before (top/left)
and the rest after: an odd total puts the extra pad bottom/right.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref.cases._make import Args, Maker, normal
from nnref.cases._table import Case, OpTable


def _conv(x_shape: tuple[int, ...], k_shape: tuple[int, ...], **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        return (normal(r, x_shape, dt), normal(r, k_shape, dt, 0.5)), dict(static)

    return make


CONV2D = OpTable(
    "conv2d",
    "vjp",
    ("x", "w"),
    (
        Case(
            "same-pad-even-total-3x3",
            _conv((2, 5, 6, 3), (3, 3, 3, 4), padding="SAME"),
            "SAME, 3x3 kernel, stride 1: pads (1, 1) on both axes",
            pins=("cross-correlation",),
        ),
        Case(
            "same-pad-odd-total-h",
            _conv((2, 5, 6, 2), (2, 3, 2, 3), padding="SAME"),
            "SAME, 2x3 kernel: H pads (0, 1) (odd total, extra pad at the bottom), W pads (1, 1)",
            pins=("same-pad-side",),
        ),
        Case(
            "same-pad-odd-total-w",
            _conv((2, 6, 5, 2), (3, 4, 2, 3), padding="SAME"),
            "SAME, 3x4 kernel: W pads (1, 2) (odd total, extra pad on the right), H pads (1, 1)",
            pins=("same-pad-side",),
        ),
        Case(
            "same-stride-2-even-n",
            _conv((1, 8, 8, 2), (3, 3, 2, 2), padding="SAME", strides=2),
            "SAME, 3x3, stride 2 on 8x8: pads (0, 1); a symmetric pad 1 (the usual PyTorch port) "
            "gives the same 4x4 shape with every window shifted by one",
            pins=("same-pad-side", "strides"),
        ),
        Case(
            "same-stride-3",
            _conv((1, 7, 8, 2), (3, 3, 2, 2), padding="SAME", strides=3),
            "SAME, stride 3: pads (1, 1) on H (7 -> 3), (0, 1) on W (8 -> 3)",
            pins=("same-pad-side", "strides"),
        ),
        Case(
            "same-strides-2x1",
            _conv((1, 5, 5, 2), (2, 3, 2, 2), padding="SAME", strides=[2, 1]),
            "per-axis strides [2, 1]: 5x5 -> 3x5; H pads (0, 1) (a symmetric port pads (1, 1))",
            pins=("strides", "same-pad-side"),
        ),
        Case(
            "valid-stride-2",
            _conv((2, 7, 6, 2), (3, 2, 2, 3), padding="VALID", strides=2),
            "VALID, stride 2: the last row of the 7-row input is never read",
            pins=("strides",),
        ),
        Case(
            "dilation-2-same",
            _conv((1, 7, 7, 2), (3, 3, 2, 2), padding="SAME", dilations=2),
            "3x3 kernel dilated by 2 (effective 5x5), SAME: pads (2, 2)",
            pins=("dilation",),
        ),
        Case(
            "dilation-2-valid",
            _conv((1, 7, 6, 2), (2, 3, 2, 3), padding="VALID", dilations=2),
            "2x3 kernel dilated by 2 (effective 3x5), VALID",
            pins=("dilation",),
        ),
        Case(
            "explicit-pads-asymmetric",
            _conv((1, 5, 6, 2), (3, 3, 2, 2), padding=[[0, 0], [2, 0], [0, 1], [0, 0]]),
            "explicit pads: 2 rows on top only, 1 column on the right only",
            pins=("explicit-pads",),
        ),
        Case(
            "explicit-pads-stride-2",
            _conv((1, 6, 6, 2), (3, 3, 2, 2), padding=[[0, 0], [1, 1], [1, 2], [0, 0]], strides=2),
            "explicit pads with stride 2",
            pins=("explicit-pads", "strides"),
        ),
        Case(
            "kernel-1x1",
            _conv((2, 3, 4, 5), (1, 1, 5, 2), padding="VALID"),
            "1x1 kernel: a per-pixel matmul over channels",
        ),
        Case(
            "kernel-larger-than-input-same",
            _conv((1, 2, 2, 2), (5, 5, 2, 2), padding="SAME"),
            "a 5x5 kernel over a 2x2 input, SAME: output 2x2, most taps read padding",
            pins=("kernel-larger-than-input",),
        ),
    ),
    "tf.nn.conv2d (tf.nn.convolution when dilated) / keras.layers.Conv2D",
    ("strides", "padding", "dilations"),
)

PINS = {
    "cross-correlation": "conv2d is a cross-correlation: the kernel is not flipped",
    "same-pad-side": "SAME pads total // 2 before and the rest after (the odd pad bottom/right), "
    "computed per axis from the stride",
    "strides": "strides given as an int or per axis; SAME output ceil(n / s)",
    "dilation": "dilated kernels: taps d apart, effective size (k - 1) d + 1",
    "explicit-pads": "explicit [[0, 0], [t, b], [l, r], [0, 0]] paddings, asymmetric allowed",
    "kernel-larger-than-input": "SAME with a kernel larger than the input keeps the input's size",
}
