"""Cases for the optimizers: 50-step trajectories of ``init`` / ``update`` from a factory.

A case's inputs are ``(params, curvature, noise)``: at step ``t`` the gradient is
``curvature * p + noise[t]`` (element-wise), so an error in one step feeds into the next.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref.cases._make import Args, Maker
from nnref.cases._table import Case, OpTable

STEPS = 50
SHAPES = ((3, 4), (4,))


def _trajectory(**config: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        params = [r.standard_normal(s).astype(dt) for s in SHAPES]
        curvature = [r.uniform(0.1, 2.0, s).astype(dt) for s in SHAPES]
        noise = [(r.standard_normal((STEPS, *s)) * 0.1).astype(dt) for s in SHAPES]
        return (params, curvature, noise), dict(config)

    return make


SGD = OpTable(
    "sgd",
    "optimizer",
    ("params", "curvature", "noise"),
    (
        Case("plain-lr-0.1", _trajectory(learning_rate=0.1), "x -= lr g", pins=("lr-float32",)),
        Case(
            "momentum-0.9",
            _trajectory(learning_rate=0.05, momentum=0.9),
            "m = mu m - lr g; x += m",
            pins=("sgd-momentum", "lr-float32"),
        ),
        Case(
            "nesterov",
            _trajectory(learning_rate=0.05, momentum=0.9, nesterov=True),
            "x += mu m - lr g with the updated m",
            pins=("sgd-momentum", "lr-float32"),
        ),
        Case(
            "lr-float32-rounded",
            _trajectory(learning_rate=0.1, momentum=0.3),
            "Keras keeps lr and momentum as float32: 0.1 acts as 0.10000000149011612 in float64",
            pins=("lr-float32",),
        ),
    ),
    "keras.optimizers.SGD",
    ("learning_rate", "momentum", "nesterov"),
)

ADAM = OpTable(
    "adam",
    "optimizer",
    ("params", "curvature", "noise"),
    (
        Case(
            "defaults",
            _trajectory(),
            "lr 1e-3, betas 0.9 / 0.999, epsilon 1e-7 (lr and betas as float32: 1e-3 acts as "
            "0.0010000000474974513 in float64)",
            pins=("optimizer-defaults", "lr-float32"),
        ),
        Case(
            "lr-0.02",
            _trajectory(learning_rate=0.02),
            "a larger step: moments carried across steps",
            pins=("adam-moments", "lr-float32"),
        ),
        Case(
            "epsilon-0.1",
            _trajectory(learning_rate=0.01, epsilon=0.1),
            "a large epsilon exposes its placement: Keras adds it to sqrt(v) before bias "
            "correction (alpha = lr sqrt(1 - b2^t) / (1 - b1^t))",
            pins=("adam-epsilon", "lr-float32"),
        ),
        Case(
            "amsgrad",
            _trajectory(learning_rate=0.01, amsgrad=True),
            "AMSGrad: the running maximum of v",
            pins=("adam-epsilon", "lr-float32"),
        ),
    ),
    "keras.optimizers.Adam",
    ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"),
)

RMSPROP = OpTable(
    "rmsprop",
    "optimizer",
    ("params", "curvature", "noise"),
    (
        Case(
            "defaults",
            _trajectory(),
            "lr 1e-3 (as float32), rho 0.9, epsilon 1e-7, slots from zero",
            pins=("optimizer-defaults", "lr-float32"),
        ),
        Case(
            "epsilon-0.1",
            _trajectory(learning_rate=0.01, epsilon=0.1),
            "a large epsilon exposes its placement: Keras adds it inside the square root",
            pins=("rmsprop-epsilon", "lr-float32"),
        ),
        Case(
            "centered-momentum",
            _trajectory(learning_rate=0.01, centered=True, momentum=0.5),
            "centered (v - mg^2) with momentum",
            pins=("rmsprop-epsilon", "lr-float32"),
        ),
    ),
    "keras.optimizers.RMSprop",
    ("learning_rate", "rho", "momentum", "epsilon", "centered"),
)

PINS = {
    "sgd-momentum": "SGD momentum m = mu m - lr g (Nesterov: x += mu m - lr g)",
    "lr-float32": "Keras stores the learning rate (and SGD momentum, Adam betas) as float32; "
    "no case's learning rate (0.1, 0.05, 1e-3, 0.02, 0.01) is exact in float32, so each float64 "
    "trajectory shows it",
    "optimizer-defaults": "the defaults are Keras': Adam lr 1e-3, epsilon 1e-7; RMSprop lr 1e-3, "
    "rho 0.9, epsilon 1e-7",
    "adam-moments": "Adam's moments persist across steps (not re-created per step)",
    "adam-epsilon": "Keras' Adam adds epsilon to sqrt(v) uncorrected: "
    "x -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)",
    "rmsprop-epsilon": "Keras' RMSprop adds epsilon inside the square root: g / sqrt(v + eps)",
}


def gradients(
    params: list[np.ndarray], curvature: list[np.ndarray], noise: list[np.ndarray], t: int
) -> list[np.ndarray]:
    """The gradient at step ``t``: ``curvature * p + noise[t]``, in the parameters' dtype."""
    return [c * p + n[t] for p, c, n in zip(params, curvature, noise, strict=True)]


def trajectory(
    opt: Any, params: list[np.ndarray], curvature: list[np.ndarray], noise: list[np.ndarray]
) -> list[list[np.ndarray]]:
    """Parameters after each of the ``len(noise[0])`` steps of an nnref-contract optimizer
    (``init(params)``, ``update(grads, state, params) -> (params, state)``)."""
    state = opt.init(params)
    out = []
    for t in range(len(noise[0])):
        params, state = opt.update(gradients(params, curvature, noise, t), state, params)
        out.append([np.asarray(p) for p in params])
    return out
