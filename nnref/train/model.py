"""A sequential model as a list of layer specs over nnref's verified ops.

Parameters are a flat list of arrays (the optimizer's view); each layer owns a contiguous slice.
``forward`` returns the output and the per-layer residuals; ``backward`` chains the ops' VJPs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnref import init as initializers
from nnref import ops

INITIALIZERS: dict[str, Callable[..., np.ndarray]] = {
    "glorot_uniform": initializers.glorot_uniform,
    "random_normal": initializers.random_normal,
    "uniform": initializers.uniform,
    "zeros": initializers.zeros,
    "ones": initializers.ones,
}


@dataclass(frozen=True)
class Layer:
    kind: str  # dense, bias_add, conv2d, max_pool2d, relu, sigmoid, softmax, flatten
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def n_params(self) -> int:
        if self.kind == "dense":
            return 2 if self.config["use_bias"] else 1
        return 2 if self.kind == "conv2d" else 0


def dense(
    units: int,
    *,
    kernel: str = "glorot_uniform",
    bias: str = "zeros",
    use_bias: bool = True,
    bias_kw: dict[str, Any] | None = None,
    **init_kw: Any,
) -> Layer:
    """``keras.layers.Dense`` defaults: Glorot-uniform kernel, zero bias."""
    cfg = {"units": units, "kernel": kernel, "bias": bias, "use_bias": use_bias}
    return Layer("dense", {**cfg, "init_kw": init_kw, "bias_kw": bias_kw or {}})


def conv2d(
    filters: int,
    kernel_size: int,
    *,
    padding: str = "VALID",
    strides: int = 1,
    kernel: str = "glorot_uniform",
    bias: str = "zeros",
    **init_kw: Any,
) -> Layer:
    return Layer(
        "conv2d",
        {
            "filters": filters,
            "kernel_size": kernel_size,
            "padding": padding,
            "strides": strides,
            "kernel": kernel,
            "bias": bias,
            "init_kw": init_kw,
        },
    )


def max_pool2d(k: int = 2, *, padding: str = "VALID") -> Layer:
    """``keras.layers.MaxPooling2D`` defaults (2x2, strides = pool size, VALID)."""
    return Layer("max_pool2d", {"ksize": k, "strides": k, "padding": padding})


def relu() -> Layer:
    return Layer("relu")


def sigmoid() -> Layer:
    return Layer("sigmoid")


def softmax() -> Layer:
    return Layer("softmax")


def flatten() -> Layer:
    return Layer("flatten")


def _init(
    name: str, rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, kw: dict
) -> np.ndarray:
    fn = INITIALIZERS[name]
    return fn(rng, shape, dtype, **kw) if name not in ("zeros", "ones") else fn(rng, shape, dtype)


def init_params(
    layers: Sequence[Layer], in_shape: tuple[int, ...], rng: np.random.Generator, dtype: Any
) -> list[np.ndarray]:
    """Parameters for every layer, drawn in layer order from ``rng`` (kernel, then bias)."""
    dt = np.dtype(dtype)
    params: list[np.ndarray] = []
    shape = tuple(in_shape)
    for layer in layers:
        c = layer.config
        if layer.kind == "dense":
            if len(shape) != 1:
                raise ValueError(f"dense layer needs a flat input, got per-sample shape {shape}")
            params.append(_init(c["kernel"], rng, (shape[0], c["units"]), dt, c["init_kw"]))
            if c["use_bias"]:
                params.append(_init(c["bias"], rng, (c["units"],), dt, c["bias_kw"]))
            shape = (c["units"],)
        elif layer.kind == "conv2d":
            k = c["kernel_size"]
            params.append(
                _init(c["kernel"], rng, (k, k, shape[-1], c["filters"]), dt, c["init_kw"])
            )
            params.append(_init(c["bias"], rng, (c["filters"],), dt, {}))
            shape = _spatial_out(shape, k, c["strides"], c["padding"], c["filters"])
        elif layer.kind == "max_pool2d":
            shape = _spatial_out(shape, c["ksize"], c["strides"], c["padding"], shape[2])
        elif layer.kind == "flatten":
            shape = (int(np.prod(shape)),)
    return params


def _spatial_out(
    shape: tuple[int, ...], k: int, stride: int, padding: str, channels: int
) -> tuple[int, ...]:
    """Per-sample output shape ``(OH, OW, channels)`` of a square window over ``(H, W, C)``."""
    from nnref.ops._windows import plan_axis

    h, w = (plan_axis(shape[a], k, stride, 1, padding, a).out for a in (0, 1))
    return (h, w, channels)


def forward(
    layers: Sequence[Layer], params: Sequence[np.ndarray], x: np.ndarray
) -> tuple[np.ndarray, list[Any]]:
    res: list[Any] = []
    k = 0
    for layer in layers:
        c = layer.config
        if layer.kind == "dense":
            w = params[k]
            b = params[k + 1] if c["use_bias"] else np.zeros(w.shape[1], w.dtype)
            x, r = ops.dense_fwd(x, w, b)
        elif layer.kind == "conv2d":
            y, rc = ops.conv2d_fwd(x, params[k], strides=c["strides"], padding=c["padding"])
            x, rb = ops.bias_add_fwd(y, params[k + 1])
            r = (rc, rb)
        elif layer.kind == "max_pool2d":
            x, r = ops.max_pool2d_fwd(
                x, ksize=c["ksize"], strides=c["strides"], padding=c["padding"]
            )
        elif layer.kind == "relu":
            x, r = ops.relu_fwd(x)
        elif layer.kind == "sigmoid":
            x, r = ops.sigmoid_fwd(x)
        elif layer.kind == "softmax":
            x, r = ops.softmax_fwd(x)
        elif layer.kind == "flatten":
            r = x.shape
            x = x.reshape(x.shape[0], -1)
        else:  # pragma: no cover - layers are built by the helpers above
            raise ValueError(f"unknown layer kind {layer.kind!r}")
        res.append(r)
        k += layer.n_params
    return x, res


def backward(
    layers: Sequence[Layer], res: Sequence[Any], dy: np.ndarray, n_params: int
) -> list[np.ndarray]:
    grads: list[np.ndarray | None] = [None] * n_params
    k = n_params
    for layer, r in zip(reversed(layers), reversed(res), strict=True):
        k -= layer.n_params
        if layer.kind == "dense":
            dy, grads[k], db = ops.dense_bwd(r, dy)
            if layer.config["use_bias"]:
                grads[k + 1] = db
        elif layer.kind == "conv2d":
            rc, rb = r
            dyc, grads[k + 1] = ops.bias_add_bwd(rb, dy)
            if k == 0:  # no parameters below: the input gradient is not needed
                grads[k] = ops.conv2d_bwd_filter(rc, dyc)
                break
            dy, grads[k] = ops.conv2d_bwd(rc, dyc)
        elif layer.kind == "max_pool2d":
            (dy,) = ops.max_pool2d_bwd(r, dy)
        elif layer.kind == "relu":
            (dy,) = ops.relu_bwd(r, dy)
        elif layer.kind == "sigmoid":
            (dy,) = ops.sigmoid_bwd(r, dy)
        elif layer.kind == "softmax":
            (dy,) = ops.softmax_bwd(r, dy)
        elif layer.kind == "flatten":
            dy = dy.reshape(r)
    return grads  # type: ignore[return-value]


# --------------------------------------------------------------------------- losses ("heads")


def loss_fwd(
    kind: str, out: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, Any]:
    """Mean loss over the batch for a recipe's head.

    - ``sparse_xent``: ``sparse_softmax_cross_entropy_with_logits`` on logits, mean;
    - ``onehot_xent``: ``softmax_cross_entropy_with_logits`` with one-hot labels, mean;
    - ``scce_probs``: Keras ``SparseCategoricalCrossentropy`` on probabilities (clip 1e-7);
    - ``mse``: Keras ``MeanSquaredError`` against one-hot targets (sigmoid outputs).
    """
    if kind == "sparse_xent":
        return ops.sparse_categorical_crossentropy_fwd(labels, out, from_logits=True)
    if kind == "onehot_xent":
        oh = _onehot(labels, num_classes, out.dtype)
        return ops.categorical_crossentropy_fwd(oh, out, from_logits=True)
    if kind == "scce_probs":
        return ops.sparse_categorical_crossentropy_fwd(labels, out, from_logits=False)
    if kind == "mse":
        target = (
            _onehot(labels, num_classes, out.dtype)
            if out.shape[-1] > 1
            else labels[:, None].astype(out.dtype)
        )
        return ops.mean_squared_error_fwd(target, out)
    raise ValueError(f"unknown loss {kind!r}")


def loss_bwd(kind: str, res: Any, dtype: np.dtype) -> np.ndarray:
    one = np.asarray(1.0, dtype)
    if kind in ("sparse_xent", "scce_probs"):
        return ops.sparse_categorical_crossentropy_bwd(res, one)[1]
    if kind == "onehot_xent":
        return ops.categorical_crossentropy_bwd(res, one)[1]
    return ops.mean_squared_error_bwd(res, one)[1]


def predict_classes(kind: str, out: np.ndarray) -> np.ndarray:
    from nnref.metrics import argmax

    if out.shape[-1] == 1:  # a single sigmoid output: threshold at 0.5
        return (out[:, 0] > 0.5).astype(np.int64)
    return argmax(out)


def _onehot(labels: np.ndarray, k: int, dtype: np.dtype) -> np.ndarray:
    from nnref.data.onehot import one_hot

    return one_hot(labels, k, dtype=dtype)
