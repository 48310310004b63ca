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
from nnref._threads import parallel_for
from nnref.ops.activations import ReluResiduals

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


#: Rows (of the ``(N*H*W, C)`` view) per work item of the fused bias/relu passes: a chunk
#: stays in cache between its two element-wise steps, and the chunks spread over the threads.
#: The bias gradient sums each chunk, then the chunks in order: fixed by the shapes, so the
#: bits do not depend on the thread count.
_FUSED_CHUNK_BYTES = 1 << 16


def _chunked(rows: int, cols: int, itemsize: int) -> list[tuple[int, int]]:
    step = max(1, _FUSED_CHUNK_BYTES // (cols * itemsize))
    return [(lo, min(lo + step, rows)) for lo in range(0, rows, step)]


def _bias_relu_fwd(y: np.ndarray, b: np.ndarray, relu: bool) -> None:
    """``y += b`` then, if ``relu``, ``y = max(y, 0)``, in place on the conv output the model
    owns (the same operations as ``bias_add`` and ``relu``, so the same bits), one cache-sized
    chunk at a time over the threads."""
    y2 = y.reshape(-1, y.shape[-1])
    chunks = _chunked(*y2.shape, y.itemsize)
    zero = y.dtype.type(0)

    def run(a: int, c: int) -> None:
        for lo, hi in chunks[a:c]:
            yc = y2[lo:hi]
            yc += b
            if relu:
                np.maximum(yc, zero, out=yc)  # propagates NaN, as relu_fwd

    parallel_for(run, len(chunks), min_chunk=4)


def _relu_bias_bwd(y: np.ndarray | None, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dz = dy * (y > 0)`` (a product, as ``relu_bwd`` and TF's ``ReluGrad``; ``dz = dy`` when
    ``y`` is None: no relu) and the bias gradient ``db = sum(dz)`` over all axes but the last,
    in one chunked pass (``dz`` is a fresh array: ``dy`` is the caller's)."""
    c = dy.shape[-1]
    g2 = dy.reshape(-1, c)
    dz = np.empty_like(dy) if y is not None else dy
    z2 = dz.reshape(-1, c)
    y2 = y.reshape(-1, c) if y is not None else None
    chunks = _chunked(*g2.shape, dy.itemsize)
    parts = np.empty((len(chunks), c), dy.dtype)
    zero = dy.dtype.type(0)

    def run(a: int, e: int) -> None:
        on = np.empty((chunks[0][1], c), bool)
        for i in range(a, e):
            lo, hi = chunks[i]
            if y2 is not None:
                oc = on[: hi - lo]
                np.greater(y2[lo:hi], zero, out=oc)
                with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in relu_bwd
                    np.multiply(g2[lo:hi], oc, out=z2[lo:hi])
            np.add.reduce(z2[lo:hi], axis=0, out=parts[i])

    parallel_for(run, len(chunks), min_chunk=4)
    db = parts[0].copy()
    for p in parts[1:]:
        db += p
    return dz, db


def forward(
    layers: Sequence[Layer],
    params: Sequence[np.ndarray],
    x: np.ndarray,
    *,
    conv_algorithm: str = "direct",
) -> tuple[np.ndarray, list[Any]]:
    """The model's output and per-layer residuals.

    A conv layer adds its bias in place on the conv output, and a relu right after it is
    applied in the same pass (its residual is that output, as ``relu_fwd``'s); values are
    those of ``conv2d`` then ``bias_add`` then ``relu``. ``conv_algorithm`` is passed to
    :func:`nnref.ops.conv2d_fwd` (``"direct"``, ``"dft"`` or ``"auto"``).
    """
    res: list[Any] = []
    k = 0
    fused_relu = False
    for i, layer in enumerate(layers):
        c = layer.config
        if fused_relu:  # this relu ran inside the conv layer's pass
            res.append(ReluResiduals(x))
            fused_relu = False
            continue
        if layer.kind == "dense":
            w = params[k]
            b = params[k + 1] if c["use_bias"] else np.zeros(w.shape[1], w.dtype)
            x, r = ops.dense_fwd(x, w, b)
        elif layer.kind == "conv2d":
            x, r = ops.conv2d_fwd(
                x,
                params[k],
                strides=c["strides"],
                padding=c["padding"],
                algorithm=conv_algorithm,
            )
            fused_relu = i + 1 < len(layers) and layers[i + 1].kind == "relu"
            _bias_relu_fwd(x, params[k + 1], fused_relu)
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
    """Parameter gradients, chaining the ops' VJPs from the last layer to the first. A relu
    right after a conv layer is differentiated in one pass with the conv bias."""
    grads: list[np.ndarray | None] = [None] * n_params
    k = n_params
    relu_out: np.ndarray | None = None  # a relu's output, deferred to the conv layer below
    for i in range(len(layers) - 1, -1, -1):
        layer, r = layers[i], res[i]
        k -= layer.n_params
        if layer.kind == "relu" and i > 0 and layers[i - 1].kind == "conv2d":
            relu_out = r.y
            continue
        if layer.kind == "dense":
            if k == 0:  # no parameters below: the input gradient (a GEMM) is not needed
                grads[k], db = ops.dense_bwd_params(r, dy)
            else:
                dy, grads[k], db = ops.dense_bwd(r, dy)
            if layer.config["use_bias"]:
                grads[k + 1] = db
            if k == 0:
                break
        elif layer.kind == "conv2d":
            dyc, grads[k + 1] = _relu_bias_bwd(relu_out, dy)
            relu_out = None
            if k == 0:  # no parameters below: the input gradient is not needed
                grads[k] = ops.conv2d_bwd_filter(r, dyc)
                break
            dy, grads[k] = ops.conv2d_bwd(r, dyc)
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
