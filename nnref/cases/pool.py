"""Cases for ``max_pool2d`` (NHWC, TF's CPU forward and ``MaxPoolGrad`` routing)."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref.cases._make import Args, Maker, distinct, small_ints, with_entries
from nnref.cases._table import Case, OpTable

_NO_FD_TIES = "tied maxima are kinks: finite differences cannot say which one gets the gradient"


def _pool(x_shape: tuple[int, ...], **static: Any) -> Maker:
    return lambda r, dt: ((distinct(r, x_shape, dt),), dict(static))


def _ties(x_shape: tuple[int, ...], **static: Any) -> Maker:
    return lambda r, dt: ((small_ints(r, x_shape, dt),), dict(static))


def _nan_windows(r: np.random.Generator, dt: np.dtype) -> Args:
    x = distinct(r, (1, 4, 4, 2), dt)
    # Window (0, 0) of channel 0: NaN first in row-major order; window (1, 1) of channel 1:
    # NaN last. The forward pass skips NaN; the gradient stays with a NaN in first place.
    x = with_entries(x, {(0, 0, 0, 0): np.nan, (0, 3, 3, 1): np.nan}, dt)
    return (x,), {"ksize": 2, "strides": 2, "padding": "VALID"}


def _inf_windows(r: np.random.Generator, dt: np.dtype) -> Args:
    x = distinct(r, (1, 4, 4, 1), dt)
    x[0, :2, :2, 0] = -np.inf  # an all -inf window: the lowest finite value, gradient to cell 0
    x[0, 2, 3, 0] = np.inf  # +inf wins its window
    return (x,), {"ksize": 2, "strides": 2, "padding": "VALID"}


def _negative_same(r: np.random.Generator, dt: np.dtype) -> Args:
    x = (distinct(r, (2, 5, 5, 2), dt) - dt.type(3)).astype(dt)  # every value < -1
    return (x,), {"ksize": 3, "strides": 2, "padding": "SAME"}


MAX_POOL2D = OpTable(
    "max_pool2d",
    "vjp",
    ("x",),
    (
        Case(
            "2x2-stride-2-valid",
            _pool((2, 6, 6, 3), ksize=2, strides=2, padding="VALID"),
            "non-overlapping 2x2 windows tiling a 6x6 input",
        ),
        Case(
            "2x2-stride-2-same-odd-input",
            _pool((2, 5, 7, 2), ksize=2, strides=2, padding="SAME"),
            "SAME on 5x7: one padded row at the bottom and one column on the right",
            pins=("pool-same-pad-side",),
        ),
        Case(
            "3x3-stride-1-same-overlapping",
            _pool((1, 5, 6, 2), ksize=3, strides=1, padding="SAME"),
            "overlapping 3x3 windows: an input that wins several windows gets their sum",
            pins=("pool-overlap-accumulates",),
        ),
        Case(
            "3x3-stride-2-valid-overlapping",
            _pool((2, 7, 7, 2), ksize=3, strides=2, padding="VALID"),
            "overlapping 3x3 windows at stride 2",
            pins=("pool-overlap-accumulates",),
        ),
        Case(
            "2x3-window-strides-1x2",
            _pool((1, 6, 7, 2), ksize=[2, 3], strides=[1, 2], padding="SAME"),
            "per-axis window and strides, SAME: H pads (0, 1) (odd total), W pads (1, 1)",
            pins=("pool-same-pad-side",),
        ),
        Case(
            "padding-never-wins",
            _negative_same,
            "all values below -1 with SAME padding: the padded cells never win",
            pins=("pool-padding-never-wins",),
        ),
        Case(
            "ties-first-max-gets-gradient",
            _ties((2, 4, 6, 2), ksize=2, strides=2, padding="VALID"),
            "integer values 0-2, many tied maxima: each window's gradient goes to its first "
            "maximum in row-major order",
            pins=("pool-tie-first-max",),
            fd=False,
            why_no_fd=_NO_FD_TIES,
        ),
        Case(
            "ties-overlapping-windows",
            _ties((1, 5, 5, 2), ksize=3, strides=1, padding="SAME"),
            "ties in overlapping windows: each window routes to its own first maximum",
            pins=("pool-tie-first-max", "pool-overlap-accumulates"),
            fd=False,
            why_no_fd=_NO_FD_TIES,
        ),
        Case(
            "nan-windows",
            _nan_windows,
            "NaN is skipped by the forward max; a NaN in first place keeps the window's gradient",
            pins=("pool-nan",),
            fd=False,
            why_no_fd="NaN inputs have no derivative",
        ),
        Case(
            "inf-windows",
            _inf_windows,
            "an all -inf window gives the dtype's lowest finite value and routes to its first "
            "cell; +inf wins its window",
            pins=("pool-inf",),
            fd=False,
            why_no_fd="infinite inputs have no finite differences",
        ),
    ),
    "tf.nn.max_pool2d / keras.layers.MaxPooling2D",
    ("ksize", "strides", "padding"),
)

PINS = {
    "pool-same-pad-side": "SAME pooling pads the odd extra cell bottom/right",
    "pool-overlap-accumulates": "overlapping windows add their gradients into a shared maximum",
    "pool-padding-never-wins": "padded cells never win, even over negative values",
    "pool-tie-first-max": "a window's gradient goes to its first maximum in row-major order",
    "pool-nan": "the forward max skips NaN; the gradient stays with a NaN in first place",
    "pool-inf": "an all -inf window gives the lowest finite value; +inf wins",
}
