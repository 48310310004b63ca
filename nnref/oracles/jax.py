"""JAX oracle legs: ``jax.vjp`` of ``jax.lax`` / ``jax.nn`` / optax, one leg per op.

Each leg has the TF legs' signature, ``leg(args, static, dy) -> (y, grads)``: ``args`` are
nnref's positional inputs (NumPy, NHWC/HWIO as nnref), ``static`` its keyword hyperparameters,
``dy`` the cotangent; ``grads`` holds one gradient per positional argument (``None`` for
integer labels). Each leg computes TF's definition of the op with JAX's own primitives: where
JAX has no primitive for it (Keras' 1e-7 probability clip, TF's dlogits of a soft-label
cross-entropy, Keras' reductions), the leg composes one and its docstring says how.

float64: JAX computes in float32 unless ``jax_enable_x64`` is set. The legs do not change the
global flag; each runs inside the thread-local context manager ``jax.enable_x64(True)``, so
other code in the process keeps JAX's default. float32 inputs stay float32 under it (JAX keeps
an array's dtype; Python scalars are weakly typed).

JAX is imported inside the legs; importing this module needs NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnref.oracles import _layout

Leg = Callable[[tuple[Any, ...], dict[str, Any], Any], tuple[Any, list[Any]]]

#: ``keras.config.epsilon()``: the clip of Keras' probability losses (no JAX primitive has it).
KERAS_EPSILON = 1e-7

#: Measured differences (ids of :data:`nnref.oracles.semantics.PINS`) where these legs return
#: the framework's own behaviour because its kernels fix it (TF's definition cannot be composed
#: from them): ``nnref verify`` compares those cases with the framework's convention
#: (:mod:`nnref.cases.conventions`) instead of with TF's.
FOLLOWS: frozenset[str] = frozenset({"pool-nan", "pool-all-neg-inf", "bad-labels", "xent-shift"})


def import_jax() -> Any:
    """Import JAX, with a clear error when the ``jax`` extra is missing."""
    try:
        import jax
    except ImportError as e:  # pragma: no cover - exercised only without JAX
        raise ImportError("nnref.oracles.jax needs JAX and optax: pip install 'nnref[jax]'") from e
    return jax


def _optax() -> Any:
    import_jax()
    try:
        import optax
    except ImportError as e:  # pragma: no cover - exercised only without optax
        raise ImportError("nnref.oracles.jax needs optax: pip install 'nnref[jax]'") from e
    return optax


def versions() -> dict[str, str]:
    """Versions of the packages the legs use (``{"jax": ..., "optax": ...}``)."""
    return {"jax": import_jax().__version__, "optax": _optax().__version__}


def _is_float(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def vjp(
    fn: Callable[..., Any], primals: Sequence[Any], dy: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Forward value and VJP of a JAX function at the cotangent ``dy``.

    Parameters
    ----------
    fn : callable
        Takes one JAX array per primal (integer arrays too) and returns one array.
    primals : sequence of NumPy arrays
        Float arrays are differentiated; integer arrays (labels) are passed through.
    dy : array
        Cotangent, of ``fn``'s output shape and dtype.

    Returns
    -------
    y : NumPy array
    grads : list
        One per primal, ``None`` for integer ones.
    """
    jax = import_jax()
    import jax.numpy as jnp

    with jax.enable_x64(True):
        arrays = [jnp.asarray(a) for a in primals]
        where = [i for i, a in enumerate(primals) if _is_float(a)]

        def f(*floats: Any) -> Any:
            full = list(arrays)
            for i, v in zip(where, floats, strict=True):
                full[i] = v
            return fn(*full)

        def value_and_vjp(floats: list[Any], cot: Any) -> tuple[Any, Any]:
            y, pull = jax.vjp(f, *floats)
            return y, pull(cot)

        # One compiled computation per call: eager JAX compiles every primitive separately,
        # which made the 74 verify cases take ~3x longer.
        y, g = jax.jit(value_and_vjp)([arrays[i] for i in where], jnp.asarray(dy))
        grads: list[np.ndarray | None] = [None] * len(primals)
        for i, gi in zip(where, g, strict=True):
            grads[i] = np.asarray(gi)
        return np.asarray(y), grads


# --------------------------------------------------------------------------- shared pieces


def _reduce(per: Any, st: dict[str, Any]) -> Any:
    """Keras' reduction, composed (optax returns per-sample losses and has no reductions):
    ``sum_over_batch_size`` is ``sum(w * l) / l.size`` (zero weights still count)."""
    import jax.numpy as jnp

    sw = st.get("sample_weight")
    if sw is not None:
        per = per * jnp.asarray(sw)
    red = st.get("reduction", "sum_over_batch_size")
    if red == "none":
        return per
    total = jnp.sum(per)
    return total if red == "sum" else total / per.size


def _tf_softmax_xent(p: Any, z: Any) -> Any:
    """``tf.nn.softmax_cross_entropy_with_logits`` from optax's ``softmax_cross_entropy``.

    The value is optax's, ``-sum(p * log_softmax(z))``. TF's dlogits is ``softmax(z) - p``
    while the true derivative (optax's) is ``softmax(z) * sum(p) - p``; they differ when rows
    of ``p`` do not sum to 1. The leg adds ``c - stop_gradient(c)`` with
    ``c = -(sum(stop_gradient(p)) - 1) * logsumexp(z)``: zero in value, its dlogits removes
    the ``sum(p) - 1`` share, and ``dp`` stays optax's ``-log_softmax(z)`` (as TF's).
    """
    import jax
    import jax.numpy as jnp

    optax = _optax()
    c = -(jnp.sum(jax.lax.stop_gradient(p), -1) - 1) * jax.nn.logsumexp(z, axis=-1)
    return optax.softmax_cross_entropy(z, p) + (c - jax.lax.stop_gradient(c))


def _sparse_xent(labels: Any, z: Any) -> Any:
    return _optax().softmax_cross_entropy_with_integer_labels(z, labels)


def _clip(p: Any) -> Any:
    """Keras' ``clip(p, 1e-7, 1 - 1e-7)`` (composed: ``jnp.clip``; the legs' cases keep ``p``
    off the bounds, where ``jnp.clip``'s tie gradient would differ from TF's)."""
    import jax.numpy as jnp

    eps = jnp.asarray(KERAS_EPSILON, p.dtype)
    return jnp.clip(p, eps, 1 - eps)


# --------------------------------------------------------------------------- the legs


def dense(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``x @ w + b`` (``jax.lax.dot_general`` over x's last axis, highest precision)."""
    import jax

    def f(x: Any, w: Any, b: Any) -> Any:
        y = jax.lax.dot_general(
            x, w, (((x.ndim - 1,), (0,)), ((), ())), precision=jax.lax.Precision.HIGHEST
        )
        return y + b

    return vjp(f, args, dy)


def bias_add(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``x + b`` broadcast over the last (channel) axis."""
    return vjp(lambda x, b: x + b, args, dy)


def conv2d(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``jax.lax.conv_general_dilated`` with NHWC/HWIO dimension numbers (no transposes).

    ``"SAME"`` and ``"VALID"`` go to JAX as strings: JAX's ``"SAME"`` puts the odd pad after,
    as TF's (pinned in ``tests/test_framework_semantics.py``); explicit pads are passed as pairs.
    """
    import jax

    pad = st.get("padding", "VALID")
    padding = pad if isinstance(pad, str) else _layout.explicit_pads(pad)

    def f(x: Any, w: Any) -> Any:
        return jax.lax.conv_general_dilated(
            x,
            w,
            window_strides=_layout.spatial(st.get("strides", 1)),
            padding=padding,
            rhs_dilation=_layout.spatial(st.get("dilations", 1)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )

    return vjp(f, args, dy)


def max_pool2d(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``jax.lax.reduce_window(x, -inf, lax.max, ...)``, NHWC, JAX's own padding strings.

    The VJP is XLA's select-and-scatter: ties go to the first maximum in row-major order as in
    TF; NaN, all ``-inf`` windows and padding differ from TF (see
    :mod:`nnref.oracles.semantics`); the cases use distinct finite values.
    """
    import jax

    kh, kw = _layout.spatial(st["ksize"])
    sh, sw = _layout.spatial(st["strides"])
    pad = st.get("padding", "VALID")
    padding = pad if isinstance(pad, str) else ((0, 0), *_layout.explicit_pads(pad), (0, 0))

    def f(x: Any) -> Any:
        # A concrete NumPy scalar: JAX recognises the max monoid (and its VJP) only when the
        # initial value is a known -inf, not a traced array.
        init = np.array(-np.inf, x.dtype)
        return jax.lax.reduce_window(x, init, jax.lax.max, (1, kh, kw, 1), (1, sh, sw, 1), padding)

    return vjp(f, args, dy)


def _activation(name: str) -> Leg:
    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        import jax

        fn = getattr(jax.nn, name)
        return vjp(lambda x: fn(x, **st), args, dy)

    leg.__name__ = name
    leg.__doc__ = f"``jax.nn.{name}``."
    return leg


relu = _activation("relu")
sigmoid = _activation("sigmoid")
softmax = _activation("softmax")
log_softmax = _activation("log_softmax")


def sparse_softmax_cross_entropy_with_logits(
    args: tuple, st: dict, dy: Any
) -> tuple[Any, list[Any]]:
    """``optax.softmax_cross_entropy_with_integer_labels(logits, labels)`` (per sample).

    The cases hold valid labels only: optax does not check them (see the ``bad-labels`` pin).
    """
    return vjp(_sparse_xent, args, dy)


def softmax_cross_entropy_with_logits(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """TF's dense-label cross-entropy: optax's value, TF's dlogits (see ``_tf_softmax_xent``)."""
    return vjp(_tf_softmax_xent, args, dy)


def sparse_categorical_crossentropy(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """Keras' SCCE. Logits: optax's integer-label cross-entropy. Probabilities (composed, no JAX
    primitive): ``q = clip(p, 1e-7, 1 - 1e-7)`` and optax's cross-entropy of ``log q``, as Keras
    does (no renormalisation before the clip). Keras' reduction composed."""
    import jax.numpy as jnp

    from_logits = st.get("from_logits", False)

    def f(labels: Any, p: Any) -> Any:
        z = p if from_logits else jnp.log(_clip(p))
        return _reduce(_sparse_xent(labels, z), st)

    return vjp(f, args, dy)


def categorical_crossentropy(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """Keras' CCE. ``optax.smooth_labels`` (``y (1 - ls) + ls / K``, Keras' rule). Logits: TF's
    dense-label op (``_tf_softmax_xent``). Probabilities (composed): ``q = clip(p / sum p,
    1e-7, 1 - 1e-7)``, ``-sum(y log q)``. Keras' reduction composed."""
    import jax.numpy as jnp

    optax = _optax()
    ls = st.get("label_smoothing", 0.0)
    from_logits = st.get("from_logits", False)

    def f(y: Any, p: Any) -> Any:
        if ls:
            y = optax.smooth_labels(y, ls)
        if from_logits:
            per = _tf_softmax_xent(y, p)
        else:
            q = _clip(p / jnp.sum(p, -1, keepdims=True))
            per = -jnp.sum(y * jnp.log(q), -1)
        return _reduce(per, st)

    return vjp(f, args, dy)


def mean_squared_error(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``mean(optax.squared_error(p, t), -1)`` and Keras' reduction (composed)."""
    import jax.numpy as jnp

    optax = _optax()
    return vjp(lambda t, p: _reduce(jnp.mean(optax.squared_error(p, t), -1), st), args, dy)


#: One leg per op of :data:`nnref.verify.SPECS`.
LEGS: dict[str, Leg] = {
    "dense": dense,
    "bias_add": bias_add,
    "conv2d": conv2d,
    "max_pool2d": max_pool2d,
    "relu": relu,
    "sigmoid": sigmoid,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "sparse_softmax_cross_entropy_with_logits": sparse_softmax_cross_entropy_with_logits,
    "softmax_cross_entropy_with_logits": softmax_cross_entropy_with_logits,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "mean_squared_error": mean_squared_error,
}

#: What each leg calls, for tables.
NAMES: dict[str, str] = {
    "dense": "jax.lax.dot_general + add",
    "bias_add": "jnp add",
    "conv2d": "jax.lax.conv_general_dilated",
    "max_pool2d": "jax.lax.reduce_window(max)",
    "relu": "jax.nn.relu",
    "sigmoid": "jax.nn.sigmoid",
    "softmax": "jax.nn.softmax",
    "log_softmax": "jax.nn.log_softmax",
    "sparse_softmax_cross_entropy_with_logits": "optax.softmax_cross_entropy_with_integer_labels",
    "softmax_cross_entropy_with_logits": "optax.softmax_cross_entropy (TF's dlogits composed)",
    "sparse_categorical_crossentropy": "optax integer-label xent (+ Keras clip composed)",
    "categorical_crossentropy": "optax.softmax_cross_entropy / smooth_labels (+ Keras clip)",
    "mean_squared_error": "optax.squared_error + mean",
}
