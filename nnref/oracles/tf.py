"""TensorFlow / Keras oracle helpers: true VJPs from ``tf.GradientTape``.

Every float input goes in as ``tf.constant(x)`` (never raw NumPy: ``tf.nn.max_pool2d`` silently
turns raw float64 into float32), and the cotangent through ``output_gradients``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def import_tf() -> Any:
    """Import TensorFlow quietly, with a clear error when the ``tf`` extra is missing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - exercised only without TF
        raise ImportError("nnref.oracles.tf needs TensorFlow: pip install 'nnref[tf]'") from e
    return tf


def import_keras() -> Any:
    import_tf()
    import keras

    return keras


def _const(tf: Any, a: Any) -> Any:
    return tf.constant(a) if isinstance(a, np.ndarray) else a


def tape_vjp(
    fn: Callable[..., Any],
    primals: Sequence[Any],
    dy: Any,
    *,
    variables: Sequence[Any] = (),
) -> tuple[Any, list[np.ndarray | None]]:
    """Forward value and VJP of a TensorFlow function.

    Parameters
    ----------
    fn : callable
        Takes one TF tensor per primal, returns a tensor or a tuple of tensors.
    primals : sequence
        NumPy arrays (float ones are watched), or other values passed through.
    dy : array or tuple of arrays
        Cotangent(s), same shapes and dtypes as the output(s).
    variables : sequence
        Extra variables (e.g. a Keras layer's kernel) whose gradients are appended.

    Returns
    -------
    y : NumPy array (or tuple of arrays)
    grads : list
        One per primal (``None`` for non-float primals), then one per variable.
    """
    tf = import_tf()
    tensors = [_const(tf, a) for a in primals]
    watched = [
        t
        for t, a in zip(tensors, primals, strict=True)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f"
    ]
    with tf.GradientTape() as tape:
        for t in watched:
            tape.watch(t)
        y = fn(*tensors)
    ys = y if isinstance(y, tuple | list) else (y,)
    dys = dy if isinstance(dy, tuple | list) else (dy,)
    targets = [*watched, *variables]
    grads = tape.gradient(list(ys), targets, output_gradients=[tf.constant(d) for d in dys])
    out_grads: list[np.ndarray | None] = []
    k = 0
    for a in primals:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            g = grads[k]
            out_grads.append(None if g is None else np.asarray(g))
            k += 1
        else:
            out_grads.append(None)
    out_grads.extend(None if g is None else np.asarray(g) for g in grads[k:])
    y_np = tuple(np.asarray(v) for v in ys)
    return (y_np if isinstance(y, tuple | list) else y_np[0]), out_grads
