"""The same training run in TensorFlow: GradientTape + a Keras optimizer, started from nnref's
initial weights and fed nnref's batches, for step-by-step loss parity."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnref.data.datasets import Dataset
from nnref.oracles.tf import import_keras, import_tf
from nnref.train.loop import RunConfig, batch_indices, build_run, train_step


def _tf_forward(tf: Any, layers: list, variables: list, x: Any) -> Any:
    k = 0
    for layer in layers:
        c = layer.config
        if layer.kind == "dense":
            x = tf.linalg.matmul(x, variables[k])
            if c["use_bias"]:
                x = x + variables[k + 1]
        elif layer.kind == "conv2d":
            x = tf.nn.bias_add(
                tf.nn.conv2d(x, variables[k], c["strides"], c["padding"]), variables[k + 1]
            )
        elif layer.kind == "max_pool2d":
            x = tf.nn.max_pool2d(x, c["ksize"], c["strides"], c["padding"])
        elif layer.kind in ("relu", "sigmoid", "softmax"):
            x = getattr(tf.nn, layer.kind)(x)
        elif layer.kind == "flatten":
            x = tf.reshape(x, [tf.shape(x)[0], -1])
        k += layer.n_params
    return x


def _tf_loss(tf: Any, keras: Any, head: str, out: Any, y: np.ndarray, k: int) -> Any:
    if head == "sparse_xent":
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out))
    if head == "onehot_xent":
        return tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits(
                labels=tf.one_hot(y, k, dtype=out.dtype), logits=out
            )
        )
    if head == "scce_probs":
        return keras.losses.SparseCategoricalCrossentropy(dtype=out.dtype.name)(y, out)
    target = (
        tf.one_hot(y, k, dtype=out.dtype) if out.shape[-1] > 1 else tf.cast(y[:, None], out.dtype)
    )
    return keras.losses.MeanSquaredError(dtype=out.dtype.name)(target, out)


def _keras_optimizer(keras: Any, name: str, config: dict[str, Any]) -> Any:
    cls = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
    }[name]
    return cls(**config)


def parity_losses(
    cfg: RunConfig, steps: int, data: Dataset | None = None
) -> tuple[list[float], list[float]]:
    """Per-step batch losses of nnref and of TensorFlow for ``steps`` steps of ``cfg``."""
    tf, keras = import_tf(), import_keras()
    run = build_run(cfg, data)
    variables = [tf.Variable(p) for p in run.params]
    opt = _keras_optimizer(keras, run.optimizer.name, run.optimizer.config)
    tf_losses = []
    for step in range(steps):
        idx = batch_indices(run.recipe.batching, len(run.x_train), cfg.batch_size, cfg.seed, step)
        x = tf.constant(run.x_train[idx])
        with tf.GradientTape() as tape:
            out = _tf_forward(tf, run.layers, variables, x)
            loss = _tf_loss(tf, keras, run.recipe.loss, out, run.y_train[idx], run.data.num_classes)
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables, strict=True))
        tf_losses.append(float(loss.numpy()))
    nn_losses = [train_step(run)[0] for _ in range(steps)]
    return nn_losses, tf_losses
