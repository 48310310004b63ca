"""TensorFlow / Keras oracle helpers: true VJPs from ``tf.GradientTape``.

Every float input goes in as ``tf.constant(x)`` (never raw NumPy: ``tf.nn.max_pool2d`` silently
turns raw float64 into float32), and the cotangent through ``output_gradients``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ThreeWayReport:
    """nnref vs finite differences vs GradientTape, at one shared random cotangent.

    Errors use :func:`nnref.check.compare.max_rel_error` (worst over the forward value and every
    gradient). ``disagreeing`` names the leg that disagrees with the other two: ``"nnref"``,
    ``"tf"``, ``"fd"`` (nnref and TF agree on a VJP that is not the derivative, as TF's
    dense-label cross-entropy with rows not summing to 1), ``"all"``, or ``None``.
    """

    nnref_vs_fd: float
    nnref_vs_tf: float
    tf_vs_fd: float
    fd_tol: float
    tf_tol: float
    disagreeing: str | None

    @property
    def ok(self) -> bool:
        return self.disagreeing is None

    def message(self) -> str:
        legs = (
            f"nnref vs FD {self.nnref_vs_fd:.3g}, nnref vs TF {self.nnref_vs_tf:.3g}, "
            f"TF vs FD {self.tf_vs_fd:.3g} (tolerances: FD {self.fd_tol:.0e}, TF {self.tf_tol:.0e})"
        )
        if self.disagreeing is None:
            return f"All three agree: {legs}."
        who = {
            "nnref": "nnref's VJP",
            "tf": "TensorFlow's VJP",
            "all": "every leg",
            "fd": "finite differences (nnref and TF agree on a VJP that is not the derivative)",
        }
        return f"Disagreeing leg: {who[self.disagreeing]}. {legs}."


def three_way(
    fwd: Callable[..., Any],
    bwd: Callable[..., Any],
    tf_fn: Callable[..., Any],
    args: Sequence[Any],
    *,
    static: dict[str, Any] | None = None,
    seed: int = 0,
) -> ThreeWayReport:
    """Compare nnref's VJP, a float64 finite-difference Jacobian-vector product and TF's tape.

    ``tf_fn`` takes one TF tensor per argument (keyword hyperparameters already bound).
    Finite differences use :func:`nnref.check.check_vjp` in exact mode on a float64 copy.
    """
    from nnref.check import check_vjp
    from nnref.check.compare import ORACLE_RTOL, max_rel_error

    static = dict(static or {})
    y, res = fwd(*args, **static)
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal(np.shape(y)).astype(np.asarray(y).dtype)
    g_nn = _as_list(bwd(res, dy))
    y_tf, g_tf = tape_vjp(tf_fn, args, dy)
    fd = check_vjp(
        fwd,
        bwd,
        args,
        static=static,
        mode="exact",
        cotangent=dy,
        linearity=False,
        raise_on_failure=False,
        seed=seed,
    )
    floats = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]

    def worst(pairs: list[tuple[Any, Any]]) -> float:
        return max(max_rel_error(a, b)[0] for a, b in pairs)

    numeric = [fd.gradients[i][1] for i in floats]
    e_nt = worst([(y, y_tf)] + [(g_nn[i], g_tf[i]) for i in floats])
    e_nf = worst([(g_nn[i], n) for i, n in zip(floats, numeric, strict=True)])
    e_tf = worst([(g_tf[i], n) for i, n in zip(floats, numeric, strict=True)])
    tf_tol = ORACLE_RTOL[np.asarray(y).dtype.name]
    # Finite differences run in float64 (shadow), ~1e-9 relative; float32 VJPs add their own
    # rounding, so the FD bar is the larger of 1e-6 and the dtype's oracle tolerance.
    fd_tol = max(1e-6, tf_tol)
    nf, nt, tfd = e_nf <= fd_tol, e_nt <= tf_tol, e_tf <= fd_tol
    if nf and nt and tfd:
        who = None
    elif nt and not nf and not tfd:
        who = "fd"
    elif tfd and not nf:
        who = "nnref"
    elif nf and not tfd:
        who = "tf"
    else:
        who = "all"
    return ThreeWayReport(e_nf, e_nt, e_tf, fd_tol, tf_tol, who)


def _as_list(g: Any) -> list[Any]:
    return list(g) if isinstance(g, tuple | list) else [g]


# --------------------------------------------------------------------------- legs per op
#
# ``LEGS[op](args, static, dy) -> (y, grads)``: TF's forward value and its VJP at ``dy`` (one
# gradient per positional argument, None for integer labels). ``FORWARD[op](args, static)``:
# the value of a non-differentiable function. Every float input enters as ``tf.constant``.

Leg = Callable[[tuple[Any, ...], dict[str, Any], Any], tuple[Any, list[Any]]]

NAME = "tf"


def versions() -> dict[str, str]:
    return {"tensorflow": str(import_tf().__version__)}


def _dense(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = import_tf()
    return tape_vjp(lambda x, w, b: tf.nn.bias_add(tf.linalg.matmul(x, w), b), args, dy)


def _bias_add(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    return tape_vjp(import_tf().nn.bias_add, args, dy)


def _unary(name: str) -> Leg:
    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        f = getattr(import_tf().nn, name)
        return tape_vjp(lambda x: f(x, **st), args, dy)

    return leg


def _conv(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``(x, w)``, or ``(x, w, b)``: ``tf.nn.bias_add`` after the convolution."""
    tf = import_tf()
    s, pad, d = st.get("strides", 1), st.get("padding", "VALID"), st.get("dilations", 1)

    def conv(x: Any, w: Any, *b: Any) -> Any:
        # dilated tf.nn.conv2d has no CPU gradient: tf.nn.convolution is bit-identical
        y = tf.nn.convolution(x, w, s, pad, dilations=d) if d != 1 else tf.nn.conv2d(x, w, s, pad)
        return tf.nn.bias_add(y, b[0]) if b else y

    return tape_vjp(conv, args, dy)


def _pool(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = import_tf()
    return tape_vjp(
        lambda x: tf.nn.max_pool2d(x, st["ksize"], st["strides"], st.get("padding", "VALID")),
        args,
        dy,
    )


def _sparse_xent(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = import_tf()
    return tape_vjp(
        lambda lab, z: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=z),
        args,
        dy,
    )


def _dense_xent(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = import_tf()
    return tape_vjp(
        lambda p, z: tf.nn.softmax_cross_entropy_with_logits(labels=p, logits=z), args, dy
    )


def _reduce(tf: Any, per: Any, st: dict) -> Any:
    sw = st.get("sample_weight")
    if sw is not None:
        per = per * tf.constant(sw)
    red = st.get("reduction", "sum_over_batch_size")
    if red == "none":
        return per
    total = tf.reduce_sum(per)
    return total if red == "sum" else total / tf.cast(tf.size(per), per.dtype)


def _keras_fn(fn_name: str) -> Leg:
    """The functional ``tf.keras.losses.<fn>`` (per-sample) plus a TF-op reduction."""

    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        tf = import_tf()
        fn = getattr(tf.keras.losses, fn_name)
        kw = {k: v for k, v in st.items() if k not in ("reduction", "sample_weight")}
        return tape_vjp(lambda t, p: _reduce(tf, fn(t, p, **kw), st), args, dy)

    return leg


def _mse(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = import_tf()
    return tape_vjp(
        lambda t, p: _reduce(tf, tf.reduce_mean(tf.square(t - p), axis=-1), st), args, dy
    )


LEGS: dict[str, Leg] = {
    "dense": _dense,
    "bias_add": _bias_add,
    "conv2d": _conv,
    "max_pool2d": _pool,
    "relu": _unary("relu"),
    "sigmoid": _unary("sigmoid"),
    "softmax": _unary("softmax"),
    "log_softmax": _unary("log_softmax"),
    "sparse_softmax_cross_entropy_with_logits": _sparse_xent,
    "softmax_cross_entropy_with_logits": _dense_xent,
    "sparse_categorical_crossentropy": _keras_fn("sparse_categorical_crossentropy"),
    "categorical_crossentropy": _keras_fn("categorical_crossentropy"),
    "mean_squared_error": _mse,
}


def _argmax(args: tuple, st: dict) -> np.ndarray:
    tf = import_tf()
    return np.asarray(tf.argmax(tf.constant(args[0]), axis=st.get("axis", -1)))


def _one_hot(args: tuple, st: dict) -> np.ndarray:
    tf = import_tf()
    st = dict(st)
    dt = tf.as_dtype(np.dtype(st.pop("dtype", np.float32)))
    return np.asarray(tf.one_hot(tf.constant(args[0]), st.pop("depth"), dtype=dt, **st))


FORWARD: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], Any]] = {
    "argmax": _argmax,
    "one_hot": _one_hot,
}

COUNTERPARTS: dict[str, str] = {
    "dense": "tf.linalg.matmul + tf.nn.bias_add",
    "bias_add": "tf.nn.bias_add",
    "conv2d": "tf.nn.conv2d (tf.nn.convolution when dilated)",
    "max_pool2d": "tf.nn.max_pool2d",
    "relu": "tf.nn.relu",
    "sigmoid": "tf.nn.sigmoid",
    "softmax": "tf.nn.softmax",
    "log_softmax": "tf.nn.log_softmax",
    "sparse_softmax_cross_entropy_with_logits": "tf.nn.sparse_softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits": "tf.nn.softmax_cross_entropy_with_logits",
    "sparse_categorical_crossentropy": "tf.keras.losses.sparse_categorical_crossentropy "
    "+ tf reduction",
    "categorical_crossentropy": "tf.keras.losses.categorical_crossentropy + tf reduction",
    "mean_squared_error": "tf.reduce_mean(tf.square(t - p), -1) + tf reduction",
    "argmax": "tf.argmax",
    "one_hot": "tf.one_hot",
}
