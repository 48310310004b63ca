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
from typing import Any, NamedTuple

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
    """``jax.lax.conv_general_dilated`` with NHWC/HWIO dimension numbers (no transposes); with
    a third argument ``b``, plus ``b`` over the channel axis.

    ``"SAME"`` and ``"VALID"`` go to JAX as strings: JAX's ``"SAME"`` puts the odd pad after,
    as TF's (pinned in ``tests/test_framework_semantics.py``); explicit pads are passed as pairs.
    """
    import jax

    pad = st.get("padding", "VALID")
    padding = pad if isinstance(pad, str) else _layout.explicit_pads(pad)

    def f(x: Any, w: Any, *b: Any) -> Any:
        y = jax.lax.conv_general_dilated(
            x,
            w,
            window_strides=_layout.spatial(st.get("strides", 1)),
            padding=padding,
            rhs_dilation=_layout.spatial(st.get("dilations", 1)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )
        return y + b[0] if b else y

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


# --------------------------------------------------------------------------- conform target
#
# ``nnref conform jax``: JAX itself in nnref's contract, each op written as a JAX user writes it
# (no TF definition composed): where JAX's convention differs from TF's, the target shows it.


class Residuals(NamedTuple):
    """What ``NAME_bwd`` needs: the inputs (JAX arrays), the hyperparameters' compiled VJP,
    and where the float inputs sit (the backward recomputes the forward, as ``jax.checkpoint``
    does)."""

    inputs: tuple[Any, ...]
    vjp: Callable[..., tuple[Any, ...]]
    #: Positions of the differentiated (float) inputs among the op's positional inputs.
    floats: tuple[int, ...]


def _hashable(v: Any) -> Any:
    """A hashable stand-in for a hyperparameter value (lists, dicts, arrays, dtypes)."""
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, list | tuple):
        return tuple(_hashable(u) for u in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(u)) for k, u in v.items()))
    if isinstance(v, np.dtype | type):
        return ("dtype", np.dtype(v).str)
    return v


def _conform_op(fn: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(NAME_fwd, NAME_bwd)`` from a JAX function ``fn(*inputs, **hyper)``, under
    ``jax.enable_x64(True)`` (float64 stays float64, float32 stays float32).

    The forward is ``jax.jit(fn)``; the backward is ``jax.vjp``'s pullback at ``dy``, jitted,
    from the inputs kept as residuals. Integer inputs (labels) are not differentiated. Both are
    compiled once per set of hyperparameters and kept with the pair: eager JAX compiles every
    primitive, and linearising in every forward call made the finite-difference checks (hundreds
    of forward calls per case) take minutes.
    """
    compiled: dict[Any, tuple[Callable[..., Any], Callable[..., Any]]] = {}

    def functions(static: dict[str, Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
        key = _hashable(static)
        if key not in compiled:
            jax = import_jax()

            def pullback(inputs: tuple[Any, ...], dy: Any, floats: tuple[int, ...]) -> Any:
                def f(*diff: Any) -> Any:
                    full = list(inputs)
                    for i, v in zip(floats, diff, strict=True):
                        full[i] = v
                    return fn(*full, **static)

                return jax.vjp(f, *(inputs[i] for i in floats))[1](dy)

            compiled[key] = (
                jax.jit(lambda *a: fn(*a, **static)),
                jax.jit(pullback, static_argnums=2),
            )
        return compiled[key]

    def fwd(*args: Any, **static: Any) -> tuple[np.ndarray, Residuals]:
        jax = import_jax()
        import jax.numpy as jnp

        forward, pullback = functions(static)
        with jax.enable_x64(True):
            arrays = tuple(jnp.asarray(a) for a in args)
            floats = tuple(i for i, a in enumerate(arrays) if jnp.issubdtype(a.dtype, jnp.floating))
            return np.asarray(forward(*arrays)), Residuals(arrays, pullback, floats)

    def bwd(res: Residuals, dy: Any) -> tuple[np.ndarray | None, ...]:
        jax = import_jax()
        import jax.numpy as jnp

        with jax.enable_x64(True):
            g = res.vjp(res.inputs, jnp.asarray(dy), res.floats)
        out: list[np.ndarray | None] = [None] * len(res.inputs)
        for i, gi in zip(res.floats, g, strict=True):
            out[i] = np.asarray(gi)
        return tuple(out)

    return fwd, bwd


def _keras_reduction(per: Any, sample_weight: Any, reduction: str) -> Any:
    """Keras' ``reduction`` and ``sample_weight`` as a JAX user writes them over optax's
    per-sample losses (optax has no reductions): ``mean(w * l)``, ``sum(w * l)`` or ``w * l``."""
    import jax.numpy as jnp

    if sample_weight is not None:
        per = per * jnp.asarray(sample_weight)
    if reduction == "none":
        return per
    if reduction == "sum":
        return jnp.sum(per)
    if reduction == "sum_over_batch_size":
        return jnp.mean(per)
    raise ValueError(f"mean_squared_error: unknown reduction {reduction!r}")


def _jconv2d(
    x: Any, w: Any, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> Any:
    """``lax.conv_general_dilated`` with NHWC/HWIO dimension numbers: JAX's ``"SAME"`` is TF's."""
    import jax

    pad = padding if isinstance(padding, str) else _layout.explicit_pads(padding)
    return jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=_layout.spatial(strides),
        padding=pad,
        rhs_dilation=_layout.spatial(dilations),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def _jmax_pool2d(x: Any, *, ksize: Any, strides: Any, padding: Any = "VALID") -> Any:
    """``lax.reduce_window(x, -inf, lax.max, ...)`` over NHWC windows (Flax's ``max_pool``)."""
    import jax
    import jax.numpy as jnp

    kh, kw = _layout.spatial(ksize)
    sh, sw = _layout.spatial(strides)
    pad = padding if isinstance(padding, str) else ((0, 0), *_layout.explicit_pads(padding), (0, 0))
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, kh, kw, 1), (1, sh, sw, 1), pad)


def _jmse(
    y_true: Any, y_pred: Any, *, reduction: str = "sum_over_batch_size", sample_weight: Any = None
) -> Any:
    import jax.numpy as jnp

    per = jnp.mean(_optax().squared_error(y_pred, y_true), axis=-1)
    return _keras_reduction(per, sample_weight, reduction)


def _argmax(x: Any, *, axis: int = -1) -> np.ndarray:
    """``jnp.argmax`` (NaN wins, as ``np.argmax``)."""
    jax = import_jax()
    import jax.numpy as jnp

    with jax.enable_x64(True):
        return np.asarray(jnp.argmax(jnp.asarray(x), axis=axis))


def _accuracy(y_true: Any, y_pred: Any) -> float:
    """``mean(argmax(y_pred, -1) == class)`` with ``jnp.argmax``, averaged in ``y_pred``'s dtype
    (``jnp.mean`` of a boolean array is float32 even under x64); the class is ``y_true`` (a
    trailing axis of 1 squeezed) or, for one-hot rows, their ``jnp.argmax``."""
    jax = import_jax()
    import jax.numpy as jnp

    with jax.enable_x64(True):
        t, p = jnp.asarray(y_true), jnp.asarray(y_pred)
        if t.shape == p.shape and p.shape[-1] > 1:
            t = jnp.argmax(t, axis=-1)
        elif t.shape == (*p.shape[:-1], 1):
            t = t[..., 0]
        return float(jnp.mean((jnp.argmax(p, axis=-1) == t).astype(p.dtype)))


def _one_hot(
    indices: Any,
    depth: int,
    *,
    on_value: float = 1.0,
    off_value: float = 0.0,
    axis: int = -1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``jax.nn.one_hot(indices, depth, dtype=, axis=)`` mapped to ``on_value`` / ``off_value``
    (JAX has no on/off arguments: ``jnp.where(hot, on, off)``, so each cell is exactly one of
    them; ``off + (on - off) * hot`` rounds, e.g. on -2.0, off 0.3 gives -1.9999999999999998)."""
    jax = import_jax()
    import jax.numpy as jnp

    with jax.enable_x64(True):
        hot = jax.nn.one_hot(jnp.asarray(indices), depth, dtype=dtype, axis=axis)
        dt = np.dtype(dtype)
        return np.asarray(jnp.where(hot != 0, dt.type(on_value), dt.type(off_value)))


def _optax_optimizer(name: str, tx: Any) -> Any:
    """nnref's pure ``init`` / ``update`` contract over an optax transformation: ``update``
    applies ``tx.update`` then ``optax.apply_updates`` to new arrays (inputs never written)."""
    from nnref.optim import Optimizer, OptState

    jax = import_jax()
    import jax.numpy as jnp

    optax = _optax()

    def init(params: Sequence[np.ndarray]) -> OptState:
        with jax.enable_x64(True):
            return OptState(0, {"optax": tx.init([jnp.asarray(p) for p in params])})

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], OptState]:
        with jax.enable_x64(True):
            p = [jnp.asarray(a) for a in params]
            u, s = tx.update([jnp.asarray(g) for g in grads], state.slots["optax"], p)
            new = [np.asarray(a) for a in optax.apply_updates(p, u)]
        return new, OptState(state.iterations + 1, {"optax": s})

    return Optimizer(name, {}, init, update)


def _keyword(static: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Keras' hyperparameter names as optax's (``beta_1`` -> ``b1``); only those given, so that
    optax's own defaults apply to the rest (optax has no default learning rate)."""
    unknown = sorted(set(static) - set(mapping))
    if unknown:
        raise TypeError(f"no optax counterpart for {unknown}; known: {sorted(mapping)}")
    return {mapping[k]: v for k, v in static.items()}


def _sgd(**static: Any) -> Any:
    """``optax.sgd(learning_rate, momentum, nesterov)`` (momentum 0: none)."""
    kw = _keyword(
        static, {"learning_rate": "learning_rate", "momentum": "momentum", "nesterov": "nesterov"}
    )
    if not kw.get("momentum"):
        kw.pop("momentum", None)
    return _optax_optimizer("sgd", _optax().sgd(**kw))


def _adam(**static: Any) -> Any:
    """``optax.adam`` (``optax.amsgrad`` for ``amsgrad=True``): Keras' names mapped to optax's."""
    kw = _keyword(
        static,
        {
            "learning_rate": "learning_rate",
            "beta_1": "b1",
            "beta_2": "b2",
            "epsilon": "eps",
            "amsgrad": "amsgrad",
        },
    )
    optax = _optax()
    make = optax.amsgrad if kw.pop("amsgrad", False) else optax.adam
    return _optax_optimizer("adam", make(**kw))


def _rmsprop(**static: Any) -> Any:
    """``optax.rmsprop(learning_rate, decay, eps, centered, momentum)`` (momentum 0: none)."""
    kw = _keyword(
        static,
        {
            "learning_rate": "learning_rate",
            "rho": "decay",
            "momentum": "momentum",
            "epsilon": "eps",
            "centered": "centered",
        },
    )
    if not kw.get("momentum"):
        kw.pop("momentum", None)
    return _optax_optimizer("rmsprop", _optax().rmsprop(**kw))


def conform_target() -> dict[str, Callable[..., Any]]:
    """JAX itself as an ``nnref conform`` target (``nnref conform jax``).

    Each op is written as a JAX user writes it, in nnref's contract (NumPy in and out, NHWC /
    HWIO, dtype preserved, float64 through ``jax.enable_x64(True)``): ``NAME_fwd`` runs
    ``jax.vjp`` and ``NAME_bwd`` its pullback; ``argmax``, ``accuracy`` and ``one_hot`` use
    ``jnp.argmax`` / ``jax.nn.one_hot``; ``sgd``, ``adam`` and ``rmsprop`` wrap optax (Keras'
    hyperparameter names mapped to optax's; optax's defaults where none is given). Where JAX's
    convention is not TF's, the target shows JAX's (``nnref conform jax`` passes under the
    ``jax`` profile and fails under ``tf`` exactly there).

    Not provided (JAX and optax have no such function): Keras' ``sparse_categorical_crossentropy``
    and ``categorical_crossentropy`` (probability inputs, Keras' 1e-7 clip), ``kfold_sizes`` and
    ``kfold_batches``.

    Returns
    -------
    dict
        nnref's names to functions; JAX and optax are imported here.
    """
    jax = import_jax()
    optax = _optax()
    ops: dict[str, Callable[..., Any]] = {
        "dense": lambda x, w, b: x @ w + b,
        "bias_add": lambda x, b: x + b,
        "conv2d": _jconv2d,
        "max_pool2d": _jmax_pool2d,
        "relu": jax.nn.relu,
        "sigmoid": jax.nn.sigmoid,
        "softmax": lambda x, axis=-1: jax.nn.softmax(x, axis=axis),
        "log_softmax": lambda x, axis=-1: jax.nn.log_softmax(x, axis=axis),
        "sparse_softmax_cross_entropy_with_logits": lambda labels, logits: (
            optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        ),
        "softmax_cross_entropy_with_logits": lambda labels, logits: optax.softmax_cross_entropy(
            logits, labels
        ),
        "mean_squared_error": _jmse,
    }
    target: dict[str, Callable[..., Any]] = {}
    for name, fn in ops.items():
        target[name + "_fwd"], target[name + "_bwd"] = _conform_op(fn)
    target.update(
        argmax=_argmax, accuracy=_accuracy, one_hot=_one_hot, sgd=_sgd, adam=_adam, rmsprop=_rmsprop
    )
    return target
