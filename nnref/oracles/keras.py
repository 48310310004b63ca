"""Keras oracle legs: the Keras layer, loss, metric or optimizer that does each op's job, with
its weights set from nnref's, under a ``tf.GradientTape``.

``LEGS[op](args, static, dy) -> (y, grads)`` (a layer's kernel and bias variables stand where
nnref's ``w`` and ``b`` are), ``FORWARD[op](args, static) -> value`` and
``OPTIMIZERS[name](args, static) -> parameters after each step``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nnref.oracles.tf import Leg, import_keras, import_tf, tape_vjp

NAME = "keras"


def versions() -> dict[str, str]:
    return {"keras": str(import_keras().__version__)}


def _dense(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    keras = import_keras()
    x, w, b = args
    layer = keras.layers.Dense(w.shape[1], dtype=str(x.dtype))
    layer.build(x.shape)
    layer.set_weights([w, b])
    return tape_vjp(layer, (x,), dy, variables=(layer.kernel, layer.bias))


def _bias_add(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    # Keras has no bias-only layer: a Dense layer with an identity kernel adds exactly its bias.
    keras = import_keras()
    x, b = args
    layer = keras.layers.Dense(b.shape[0], dtype=str(x.dtype))
    layer.build(x.shape)
    layer.set_weights([np.eye(b.shape[0], dtype=x.dtype), b])
    return tape_vjp(layer, (x,), dy, variables=(layer.bias,))


def _activation(factory: Callable[[Any, dict, str], Any]) -> Leg:
    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        return tape_vjp(factory(import_keras(), st, str(args[0].dtype)), args, dy)

    return leg


def _conv(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``(x, w)``, or ``(x, w, b)``: ``use_bias=True``; gradients dx, dw (, db)."""
    keras = import_keras()
    x, w, *bias = args
    pad = st.get("padding", "VALID")
    if not isinstance(pad, str):  # Keras has no explicit pads: a ZeroPadding2D layer first
        (t, b), (left, r) = pad[1], pad[2]
        x_pad = keras.layers.ZeroPadding2D(((t, b), (left, r)), dtype=str(x.dtype))
        pad = "VALID"
    else:
        x_pad = None
    layer = keras.layers.Conv2D(
        w.shape[3],
        w.shape[:2],
        strides=st.get("strides", 1),
        padding=pad.lower(),
        dilation_rate=st.get("dilations", 1),
        use_bias=bool(bias),
        dtype=str(x.dtype),
    )
    layer.build(x.shape if x_pad is None else x_pad.compute_output_shape(x.shape))
    layer.set_weights([w, *bias])
    fn = layer if x_pad is None else (lambda v: layer(x_pad(v)))
    return tape_vjp(fn, (x,), dy, variables=(layer.kernel, *([layer.bias] if bias else [])))


def _pool(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    layer = import_keras().layers.MaxPooling2D(
        st["ksize"],
        st["strides"],
        padding=st.get("padding", "VALID").lower(),
        dtype=str(args[0].dtype),
    )
    return tape_vjp(layer, args, dy)


def _loss(cls_name: str, **fixed: Any) -> Leg:
    """A ``keras.losses`` class object, with our static arguments, in our dtype."""

    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        st = {**fixed, **st}
        sw = st.pop("sample_weight", None)
        loss = getattr(import_keras().losses, cls_name)(dtype=str(args[1].dtype), **st)
        if sw is None:
            return tape_vjp(lambda t, p: loss(t, p), args, dy)
        return tape_vjp(lambda t, p: loss(t, p, sample_weight=sw), args, dy)

    return leg


LEGS: dict[str, Leg] = {
    "dense": _dense,
    "bias_add": _bias_add,
    "conv2d": _conv,
    "max_pool2d": _pool,
    "relu": _activation(lambda k, st, dt: k.layers.ReLU(dtype=dt)),
    "sigmoid": _activation(lambda k, st, dt: k.layers.Activation("sigmoid", dtype=dt)),
    "softmax": _activation(lambda k, st, dt: k.layers.Softmax(axis=st.get("axis", -1), dtype=dt)),
    "log_softmax": _activation(
        lambda k, st, dt: lambda x: k.activations.log_softmax(x, axis=st.get("axis", -1))
    ),
    "sparse_softmax_cross_entropy_with_logits": _loss(
        "SparseCategoricalCrossentropy", from_logits=True, reduction="none"
    ),
    "softmax_cross_entropy_with_logits": _loss(
        "CategoricalCrossentropy", from_logits=True, reduction="none"
    ),
    "sparse_categorical_crossentropy": _loss("SparseCategoricalCrossentropy"),
    "categorical_crossentropy": _loss("CategoricalCrossentropy"),
    "mean_squared_error": _loss("MeanSquaredError"),
}


def _accuracy(args: tuple, st: dict) -> float:
    keras = import_keras()
    y_true, y_pred = args
    onehot = y_true.shape == y_pred.shape and y_pred.shape[-1] > 1
    m = keras.metrics.CategoricalAccuracy() if onehot else keras.metrics.SparseCategoricalAccuracy()
    m.update_state(y_true, import_tf().constant(y_pred))
    return float(m.result())


def _one_hot(args: tuple, st: dict) -> np.ndarray:
    st = dict(st)
    dt = np.dtype(st.pop("dtype", np.float32))
    on, off = st.pop("on_value", 1.0), st.pop("off_value", 0.0)
    hot = np.asarray(import_keras().ops.one_hot(args[0], st.pop("depth"), dtype="bool", **st))
    return np.where(hot, dt.type(on), dt.type(off))


FORWARD: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], Any]] = {
    "accuracy": _accuracy,
    "one_hot": _one_hot,
}


def _optimizer(cls_name: str) -> Callable[[tuple[Any, ...], dict[str, Any]], list[list[Any]]]:
    def run(args: tuple, st: dict) -> list[list[np.ndarray]]:
        from nnref.cases.optim import gradients

        tf, keras = import_tf(), import_keras()
        params, curvature, noise = args
        opt = getattr(keras.optimizers, cls_name)(**st)
        kvars = [keras.Variable(p, dtype=p.dtype.name) for p in params]
        out = []
        for t in range(len(noise[0])):
            now = [np.asarray(v.numpy()) for v in kvars]
            g = gradients(now, curvature, noise, t)
            opt.apply_gradients([(tf.constant(gi), v) for gi, v in zip(g, kvars, strict=True)])
            out.append([np.asarray(v.numpy()) for v in kvars])
        return out

    return run


OPTIMIZERS = {
    "sgd": _optimizer("SGD"),
    "adam": _optimizer("Adam"),
    "rmsprop": _optimizer("RMSprop"),
}

COUNTERPARTS: dict[str, str] = {
    "dense": "keras.layers.Dense",
    "bias_add": "keras.layers.Dense (identity kernel)",
    "conv2d": "keras.layers.Conv2D (ZeroPadding2D for explicit pads)",
    "max_pool2d": "keras.layers.MaxPooling2D",
    "relu": "keras.layers.ReLU",
    "sigmoid": "keras.layers.Activation('sigmoid')",
    "softmax": "keras.layers.Softmax",
    "log_softmax": "keras.activations.log_softmax",
    "sparse_softmax_cross_entropy_with_logits": "keras.losses.SparseCategoricalCrossentropy"
    "(from_logits=True, reduction='none')",
    "softmax_cross_entropy_with_logits": "keras.losses.CategoricalCrossentropy"
    "(from_logits=True, reduction='none')",
    "sparse_categorical_crossentropy": "keras.losses.SparseCategoricalCrossentropy",
    "categorical_crossentropy": "keras.losses.CategoricalCrossentropy",
    "mean_squared_error": "keras.losses.MeanSquaredError",
    "accuracy": "keras.metrics.SparseCategoricalAccuracy / CategoricalAccuracy",
    "one_hot": "keras.ops.one_hot",
    "sgd": "keras.optimizers.SGD",
    "adam": "keras.optimizers.Adam",
    "rmsprop": "keras.optimizers.RMSprop",
}


def initializer_sample(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A sample of the Keras initializer that ``nnref.init.<name>`` follows (seeded)."""
    keras = import_keras()
    cls = {
        "glorot_uniform": keras.initializers.GlorotUniform,
        "random_normal": keras.initializers.RandomNormal,
        "uniform": keras.initializers.RandomUniform,
        "zeros": keras.initializers.Zeros,
        "ones": keras.initializers.Ones,
    }[name]
    ini = cls(seed=1) if name not in ("zeros", "ones") else cls()
    return np.asarray(ini(shape, dtype=dtype.name))
