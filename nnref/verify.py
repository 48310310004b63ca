"""The verification registry: every differentiable op, its cases, and its three oracles.

The test suite parametrizes over :data:`SPECS` and ``nnref verify`` runs the same cases, so the
README's "verified against" table is measured on exactly what the tests assert. Oracles:

- ``fd``: :func:`nnref.check.check_vjp` (Richardson finite differences; float32 via the float64
  shadow) with a random cotangent;
- ``tf``: ``tf.GradientTape(...).gradient(y, xs, output_gradients=dy)`` on the TF op;
- ``keras``: the Keras layer / loss with its weights set from ours, under a tape;
- ``jax`` and ``torch`` (when installed): TF's definition through ``jax.vjp`` / ``torch.autograd``,
  legs keyed by op name in :mod:`nnref.oracles.jax` and :mod:`nnref.oracles.torch`
  (:func:`oracle_leg`).

TensorFlow, JAX and PyTorch are imported only inside the oracle legs.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnref import ops
from nnref.check import check_vjp
from nnref.check.compare import ORACLE_RTOL, max_rel_error

Args = tuple[tuple[Any, ...], dict[str, Any]]
Maker = Callable[[np.random.Generator, np.dtype], Args]
Leg = Callable[[tuple[Any, ...], dict[str, Any], Any], tuple[Any, list[Any]]]

DTYPES: tuple[np.dtype, ...] = (np.dtype(np.float64), np.dtype(np.float32))


def seed_for(*parts: object) -> int:
    """A deterministic per-case seed from a hash of its name (JAX seeds tests this way)."""
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


@dataclass(frozen=True)
class OpSpec:
    name: str
    fwd: Callable[..., Any]
    bwd: Callable[..., Any]
    names: tuple[str, ...]
    cases: dict[str, Maker]
    tf: Leg
    keras: Leg
    tf_name: str
    keras_name: str
    #: Cases where TF's VJP is deliberately not the true derivative (nnref mirrors TF): the
    #: finite-difference leg is replaced by a pinned test of the documented difference.
    no_fd: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- input makers


def _normal(
    rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype, s: float = 1.0
) -> np.ndarray:
    return (rng.standard_normal(shape) * s).astype(dt)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """Values with |x| in [0.1, 2]: ReLU's kink at 0 excluded by construction."""
    mag = rng.uniform(0.1, 2.0, shape)
    return (mag * rng.choice([-1.0, 1.0], shape)).astype(dt)


def _probs(
    rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype, scale: bool
) -> np.ndarray:
    z = rng.standard_normal(shape)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    if scale:  # rows that do not sum to 1 exercise CCE's renormalisation
        p *= rng.uniform(0.5, 2.0, (*shape[:-1], 1))
    # Entries stay <= 0.95, away from Keras' clip at 1 - 1e-7 (a kink within a step's reach).
    p /= np.maximum(1.0, p.max(-1, keepdims=True) / 0.95)
    return p.astype(dt)


def _dyadic_rows(rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """Soft labels in multiples of 1/64 whose rows sum to exactly 1 in any float dtype."""
    k = shape[-1]
    counts = rng.multinomial(64 - k, np.full(k, 1.0 / k), size=shape[:-1]) + 1
    return (counts / 64.0).astype(dt)


def _labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.integers(0, k, n).astype(np.int64)


def _dense_case(n: int, i: int, o: int) -> Maker:
    return lambda r, dt: (
        (_normal(r, (n, i), dt), _normal(r, (i, o), dt, 0.5), _normal(r, (o,), dt)),
        {},
    )


def _unary(
    shape: tuple[int, ...], maker: Callable[..., np.ndarray] = _normal, **static: Any
) -> Maker:
    return lambda r, dt: ((maker(r, shape, dt),), dict(static))


def _sparse_case(n: int, k: int, scale: float = 1.0) -> Maker:
    return lambda r, dt: ((_labels(r, n, k), _normal(r, (n, k), dt, scale)), {})


def _dense_label_case(n: int, k: int, onehot: bool, exact_rows: bool = False) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        if onehot:
            p = np.eye(k)[_labels(r, n, k)]
        elif not exact_rows:
            p = _probs(r, (n, k), dt, scale=True)
        else:  # TF's softmax - p is the derivative only when rows sum to 1 exactly
            p = _dyadic_rows(r, (n, k), dt)
        return (p.astype(dt), _normal(r, (n, k), dt)), {}

    return make


def _scce_case(n: int, k: int, from_logits: bool, **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        pred = _normal(r, (n, k), dt) if from_logits else _probs(r, (n, k), dt, scale=True)
        st = {"from_logits": from_logits, **static}
        if "sample_weight" in st:
            st["sample_weight"] = r.uniform(0, 2, n).astype(dt)
        return (_labels(r, n, k), pred), st

    return make


def _cce_case(n: int, k: int, from_logits: bool, **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        y = np.eye(k)[_labels(r, n, k)].astype(dt)
        pred = _normal(r, (n, k), dt) if from_logits else _probs(r, (n, k), dt, scale=True)
        st = {"from_logits": from_logits, **static}
        if "sample_weight" in st:
            st["sample_weight"] = r.uniform(0, 2, n).astype(dt)
        return (y, pred), st

    return make


def _mse_case(shape: tuple[int, ...], **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        st = dict(static)
        if "sample_weight" in st:
            st["sample_weight"] = r.uniform(0, 2, shape[0]).astype(dt)
        return (_normal(r, shape, dt), _normal(r, shape, dt)), st

    return make


def _conv_case(x_shape: tuple[int, ...], k_shape: tuple[int, ...], **static: Any) -> Maker:
    def make(r: np.random.Generator, dt: np.dtype) -> Args:
        return (_normal(r, x_shape, dt), _normal(r, k_shape, dt, 0.5)), dict(static)

    return make


def _distinct(rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """A permutation of an evenly spaced grid: ties impossible, minimum gap 4/size."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * (4.0 / n) - 2.0).astype(dt)


def _pool_case(x_shape: tuple[int, ...], **static: Any) -> Maker:
    return lambda r, dt: ((_distinct(r, x_shape, dt),), dict(static))


# --------------------------------------------------------------------------- oracle legs


def _tape(
    fn: Callable[..., Any], args: tuple[Any, ...], dy: Any, variables: tuple = ()
) -> tuple[Any, list[Any]]:
    from nnref.oracles.tf import tape_vjp

    return tape_vjp(fn, args, dy, variables=variables)


def _tf() -> Any:
    from nnref.oracles.tf import import_tf

    return import_tf()


def _keras() -> Any:
    from nnref.oracles.tf import import_keras

    return import_keras()


def _tf_dense(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = _tf()
    return _tape(lambda x, w, b: tf.nn.bias_add(tf.linalg.matmul(x, w), b), args, dy)


def _keras_dense(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    keras = _keras()
    x, w, b = args
    layer = keras.layers.Dense(w.shape[1], dtype=str(x.dtype))
    layer.build(x.shape)
    layer.set_weights([w, b])
    y, g = _tape(layer, (x,), dy, variables=(layer.kernel, layer.bias))
    return y, g


def _tf_bias_add(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    return _tape(_tf().nn.bias_add, args, dy)


def _keras_bias_add(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    # Keras has no bias-only layer: a Dense layer with an identity kernel adds exactly its bias.
    keras = _keras()
    x, b = args
    layer = keras.layers.Dense(b.shape[0], dtype=str(x.dtype))
    layer.build(x.shape)
    layer.set_weights([np.eye(b.shape[0], dtype=x.dtype), b])
    y, g = _tape(layer, (x,), dy, variables=(layer.bias,))
    return y, g


def _tf_unary(name: str) -> Leg:
    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        f = getattr(_tf().nn, name)
        return _tape(lambda x: f(x, **st), args, dy)

    return leg


def _keras_activation(factory: Callable[[Any, dict, str], Any]) -> Leg:
    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        layer = factory(_keras(), st, str(args[0].dtype))
        return _tape(layer, args, dy)

    return leg


def _tf_conv(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = _tf()
    d = st.get("dilations", 1)
    if d != 1:  # dilated tf.nn.conv2d has no CPU gradient: tf.nn.convolution is bit-identical
        return _tape(
            lambda x, w: tf.nn.convolution(x, w, st.get("strides", 1), st["padding"], dilations=d),
            args,
            dy,
        )
    return _tape(lambda x, w: tf.nn.conv2d(x, w, st.get("strides", 1), st["padding"]), args, dy)


def _keras_conv(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    keras = _keras()
    x, w = args
    layer = keras.layers.Conv2D(
        w.shape[3],
        w.shape[:2],
        strides=st.get("strides", 1),
        padding=st["padding"].lower(),
        dilation_rate=st.get("dilations", 1),
        use_bias=False,
        dtype=str(x.dtype),
    )
    layer.build(x.shape)
    layer.set_weights([w])
    return _tape(layer, (x,), dy, variables=(layer.kernel,))


def _tf_pool(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = _tf()
    return _tape(lambda x: tf.nn.max_pool2d(x, st["ksize"], st["strides"], st["padding"]), args, dy)


def _keras_pool(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    keras = _keras()
    layer = keras.layers.MaxPooling2D(
        st["ksize"], st["strides"], padding=st["padding"].lower(), dtype=str(args[0].dtype)
    )
    return _tape(layer, args, dy)


def _tf_sparse_xent(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = _tf()
    return _tape(
        lambda lab, z: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=z),
        args,
        dy,
    )


def _tf_dense_xent(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = _tf()
    return _tape(lambda p, z: tf.nn.softmax_cross_entropy_with_logits(labels=p, logits=z), args, dy)


def _keras_loss(cls_name: str, **fixed: Any) -> Leg:
    """A ``keras.losses`` class object, with our static arguments, in our dtype."""

    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        keras = _keras()
        st = {**fixed, **st}
        sw = st.pop("sample_weight", None)
        loss = getattr(keras.losses, cls_name)(dtype=str(args[1].dtype), **st)
        if sw is None:
            return _tape(lambda t, p: loss(t, p), args, dy)
        return _tape(lambda t, p: loss(t, p, sample_weight=sw), args, dy)

    return leg


def _reduce_tf(tf: Any, per: Any, st: dict) -> Any:
    sw = st.get("sample_weight")
    if sw is not None:
        per = per * tf.constant(sw)
    red = st.get("reduction", "sum_over_batch_size")
    if red == "none":
        return per
    total = tf.reduce_sum(per)
    return total if red == "sum" else total / tf.cast(tf.size(per), per.dtype)


def _tf_keras_fn(fn_name: str, **fixed: Any) -> Leg:
    """The functional ``tf.keras.losses.<fn>`` (per-sample) plus a TF-op reduction."""

    def leg(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        tf = _tf()
        fn = getattr(tf.keras.losses, fn_name)
        kw = {k: v for k, v in {**fixed, **st}.items() if k not in ("reduction", "sample_weight")}
        return _tape(lambda t, p: _reduce_tf(tf, fn(t, p, **kw), st), args, dy)

    return leg


def _tf_mse(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    tf = _tf()
    return _tape(
        lambda t, p: _reduce_tf(tf, tf.reduce_mean(tf.square(p - t), axis=-1), st), args, dy
    )


# --------------------------------------------------------------------------- the registry

SPECS: dict[str, OpSpec] = {
    s.name: s
    for s in [
        OpSpec(
            "dense",
            ops.dense_fwd,
            ops.dense_bwd,
            ("x", "w", "b"),
            {
                "4x5->3": _dense_case(4, 5, 3),
                "7x16->9": _dense_case(7, 16, 9),
                "3d-input": lambda r, dt: (
                    (_normal(r, (2, 3, 4), dt), _normal(r, (4, 5), dt), _normal(r, (5,), dt)),
                    {},
                ),
            },
            _tf_dense,
            _keras_dense,
            "tf.linalg.matmul + tf.nn.bias_add",
            "keras.layers.Dense",
        ),
        OpSpec(
            "bias_add",
            ops.bias_add_fwd,
            ops.bias_add_bwd,
            ("x", "b"),
            {
                "2d": lambda r, dt: ((_normal(r, (5, 4), dt), _normal(r, (4,), dt)), {}),
                "nhwc": lambda r, dt: ((_normal(r, (2, 3, 3, 4), dt), _normal(r, (4,), dt)), {}),
            },
            _tf_bias_add,
            _keras_bias_add,
            "tf.nn.bias_add",
            "keras.layers.Dense (identity kernel)",
        ),
        OpSpec(
            "conv2d",
            ops.conv2d_fwd,
            ops.conv2d_bwd,
            ("x", "w"),
            {
                "same-odd-pad-3x3": _conv_case((2, 5, 6, 3), (3, 3, 3, 4), padding="SAME"),
                "same-even-pad-2x2": _conv_case((2, 4, 4, 2), (2, 2, 2, 3), padding="SAME"),
                "valid-stride-2": _conv_case(
                    (2, 7, 6, 2), (3, 2, 2, 3), padding="VALID", strides=2
                ),
                "same-stride-3": _conv_case((1, 7, 8, 2), (3, 3, 2, 2), padding="SAME", strides=3),
                "same-strides-2x1": _conv_case(
                    (1, 5, 5, 2), (2, 3, 2, 2), padding="SAME", strides=[2, 1]
                ),
                "dilation-2-same": _conv_case(
                    (1, 7, 7, 2), (3, 3, 2, 2), padding="SAME", dilations=2
                ),
                "dilation-2-valid": _conv_case(
                    (1, 7, 6, 2), (2, 3, 2, 3), padding="VALID", dilations=2
                ),
                "1x1": _conv_case((2, 3, 4, 5), (1, 1, 5, 2), padding="VALID"),
                "k-larger-than-input-same": _conv_case((1, 2, 2, 2), (5, 5, 2, 2), padding="SAME"),
            },
            _tf_conv,
            _keras_conv,
            "tf.nn.conv2d (tf.nn.convolution when dilated)",
            "keras.layers.Conv2D",
        ),
        OpSpec(
            "max_pool2d",
            ops.max_pool2d_fwd,
            ops.max_pool2d_bwd,
            ("x",),
            {
                "2x2-s2-valid": _pool_case((2, 6, 6, 3), ksize=2, strides=2, padding="VALID"),
                "2x2-s2-same-odd": _pool_case((2, 5, 7, 2), ksize=2, strides=2, padding="SAME"),
                "3x3-s1-same-overlap": _pool_case((1, 5, 6, 2), ksize=3, strides=1, padding="SAME"),
                "3x3-s2-valid-overlap": _pool_case(
                    (2, 7, 7, 2), ksize=3, strides=2, padding="VALID"
                ),
                "2x3-s-1x2": _pool_case((1, 6, 7, 2), ksize=[2, 3], strides=[1, 2], padding="SAME"),
            },
            _tf_pool,
            _keras_pool,
            "tf.nn.max_pool2d",
            "keras.layers.MaxPooling2D",
        ),
        OpSpec(
            "relu",
            ops.relu_fwd,
            ops.relu_bwd,
            ("x",),
            {"away-from-0": _unary((6, 7), _away_from_zero)},
            _tf_unary("relu"),
            _keras_activation(lambda k, st, dt: k.layers.ReLU(dtype=dt)),
            "tf.nn.relu",
            "keras.layers.ReLU",
        ),
        OpSpec(
            "sigmoid",
            ops.sigmoid_fwd,
            ops.sigmoid_bwd,
            ("x",),
            {"normal*3": lambda r, dt: ((_normal(r, (6, 7), dt, 3.0),), {})},
            _tf_unary("sigmoid"),
            _keras_activation(lambda k, st, dt: k.layers.Activation("sigmoid", dtype=dt)),
            "tf.nn.sigmoid",
            "keras.layers.Activation('sigmoid')",
        ),
        OpSpec(
            "softmax",
            ops.softmax_fwd,
            ops.softmax_bwd,
            ("x",),
            {"rows": _unary((5, 6)), "axis0": _unary((4, 3), axis=0)},
            _tf_unary("softmax"),
            _keras_activation(
                lambda k, st, dt: k.layers.Softmax(axis=st.get("axis", -1), dtype=dt)
            ),
            "tf.nn.softmax",
            "keras.layers.Softmax",
        ),
        OpSpec(
            "log_softmax",
            ops.log_softmax_fwd,
            ops.log_softmax_bwd,
            ("x",),
            {"rows": _unary((5, 6)), "axis0": _unary((4, 3), axis=0)},
            _tf_unary("log_softmax"),
            _keras_activation(
                lambda k, st, dt: lambda x: k.activations.log_softmax(x, axis=st.get("axis", -1))
            ),
            "tf.nn.log_softmax",
            "keras.activations.log_softmax",
        ),
        OpSpec(
            "sparse_softmax_cross_entropy_with_logits",
            ops.sparse_softmax_cross_entropy_with_logits_fwd,
            ops.sparse_softmax_cross_entropy_with_logits_bwd,
            ("labels", "logits"),
            {"8x5": _sparse_case(8, 5), "logits*5": _sparse_case(6, 10, 5.0)},
            _tf_sparse_xent,
            _keras_loss("SparseCategoricalCrossentropy", from_logits=True, reduction="none"),
            "tf.nn.sparse_softmax_cross_entropy_with_logits",
            "keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction='none')",
        ),
        OpSpec(
            "softmax_cross_entropy_with_logits",
            ops.softmax_cross_entropy_with_logits_fwd,
            ops.softmax_cross_entropy_with_logits_bwd,
            ("labels", "logits"),
            {
                "onehot": _dense_label_case(6, 5, True),
                "soft-rows-sum-1": _dense_label_case(6, 5, False, exact_rows=True),
                "soft-rows-not-1": _dense_label_case(6, 5, False),
            },
            _tf_dense_xent,
            _keras_loss("CategoricalCrossentropy", from_logits=True, reduction="none"),
            "tf.nn.softmax_cross_entropy_with_logits",
            "keras.losses.CategoricalCrossentropy(from_logits=True, reduction='none')",
            no_fd={
                "soft-rows-not-1": "TF's dlogits is softmax(z) - p, the true derivative is "
                "softmax(z) * sum(p) - p; they differ when rows of p do not sum to 1"
            },
        ),
        OpSpec(
            "sparse_categorical_crossentropy",
            ops.sparse_categorical_crossentropy_fwd,
            ops.sparse_categorical_crossentropy_bwd,
            ("y_true", "y_pred"),
            {
                "logits": _scce_case(8, 5, True),
                "probs": _scce_case(8, 5, False),
                "probs-sum-weighted": _scce_case(6, 4, False, reduction="sum", sample_weight=True),
                "logits-none": _scce_case(6, 4, True, reduction="none"),
            },
            _tf_keras_fn("sparse_categorical_crossentropy"),
            _keras_loss("SparseCategoricalCrossentropy"),
            "tf.keras.losses.sparse_categorical_crossentropy + tf reduction",
            "keras.losses.SparseCategoricalCrossentropy",
        ),
        OpSpec(
            "categorical_crossentropy",
            ops.categorical_crossentropy_fwd,
            ops.categorical_crossentropy_bwd,
            ("y_true", "y_pred"),
            {
                "logits": _cce_case(8, 5, True),
                "probs-unnormalised": _cce_case(8, 5, False),
                "logits-smoothing-0.1": _cce_case(6, 4, True, label_smoothing=0.1),
                "probs-smoothing-0.3-weighted": _cce_case(
                    6, 4, False, label_smoothing=0.3, sample_weight=True
                ),
                "probs-none": _cce_case(6, 4, False, reduction="none"),
            },
            _tf_keras_fn("categorical_crossentropy"),
            _keras_loss("CategoricalCrossentropy"),
            "tf.keras.losses.categorical_crossentropy + tf reduction",
            "keras.losses.CategoricalCrossentropy",
        ),
        OpSpec(
            "mean_squared_error",
            ops.mean_squared_error_fwd,
            ops.mean_squared_error_bwd,
            ("y_true", "y_pred"),
            {
                "6x3": _mse_case((6, 3)),
                "none": _mse_case((5, 4), reduction="none"),
                "sum-weighted": _mse_case((5, 2), reduction="sum", sample_weight=True),
            },
            _tf_mse,
            _keras_loss("MeanSquaredError"),
            "tf.reduce_mean(tf.square(p - t), -1) + tf reduction",
            "keras.losses.MeanSquaredError",
        ),
    ]
}


def all_cases(*, fd: bool = False) -> list[tuple[str, str]]:
    """Every (op, case); with ``fd=True`` only those whose VJP is the true derivative."""
    return [
        (op, case)
        for op, spec in SPECS.items()
        for case in spec.cases
        if not (fd and case in spec.no_fd)
    ]


def make_case(
    op: str, case: str, dtype: Any, leg: str = ""
) -> tuple[tuple[Any, ...], dict[str, Any], np.random.Generator]:
    """Inputs of one case, seeded from its name; the generator is returned for cotangents."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed_for(op, case, dt.name, leg))
    args, static = SPECS[op].cases[case](rng, dt)
    return args, static, rng


# --------------------------------------------------------------------------- runners


@dataclass(frozen=True)
class LegResult:
    op: str
    case: str
    dtype: str
    leg: str
    error: float  # worst error over the forward value and every gradient
    worst: str  # which quantity and index
    ok: bool
    detail: str = ""


def run_fd(op: str, case: str, dtype: Any) -> LegResult:
    spec = SPECS[op]
    args, static, _ = make_case(op, case, dtype, "fd")
    r = check_vjp(
        spec.fwd,
        spec.bwd,
        args,
        static=static,
        names=spec.names,
        seed=seed_for(op, case, "fd"),
        raise_on_failure=False,
    )
    err, where = 0.0, ""
    for name, pair in zip(spec.names, r.gradients or (), strict=False):
        if pair is not None:
            e, idx = max_rel_error(*pair)
            if e >= err:
                err, where = e, f"d{name}{list(idx)}"
    return LegResult(op, case, np.dtype(dtype).name, "fd", err, where, r.ok, r.message())


#: Outside oracles other than TF/Keras: leg name -> module holding ``LEGS`` keyed by op name.
FRAMEWORK_LEGS: dict[str, str] = {"jax": "nnref.oracles.jax", "torch": "nnref.oracles.torch"}


def oracle_leg(op: str, leg: str) -> Leg:
    """The ``tf``, ``keras``, ``jax`` or ``torch`` leg of ``op`` (frameworks imported lazily)."""
    if leg == "tf":
        return SPECS[op].tf
    if leg == "keras":
        return SPECS[op].keras
    if leg in FRAMEWORK_LEGS:
        return importlib.import_module(FRAMEWORK_LEGS[leg]).LEGS[op]
    raise ValueError(f"unknown oracle leg {leg!r}; known: tf, keras, {', '.join(FRAMEWORK_LEGS)}")


def run_oracle(op: str, case: str, dtype: Any, leg: str) -> LegResult:
    """Forward and VJP (random cotangent) against the ``tf``, ``keras``, ``jax`` or ``torch``
    leg."""
    spec = SPECS[op]
    dt = np.dtype(dtype)
    args, static, rng = make_case(op, case, dt, leg)
    y, res = spec.fwd(*args, **static)
    dy = rng.standard_normal(np.shape(y)).astype(dt)
    grads = spec.bwd(res, dy)
    oracle = oracle_leg(op, leg)
    y_ref, g_ref = oracle(args, static, dy)
    worst = (0.0, "")
    problems = []
    # Every leg returns one gradient per argument, in order (Keras: kernel and bias variables
    # stand where w and b are).
    pairs = [("y", y, y_ref)] + [
        (f"d{name}", g, r)
        for name, a, g, r in zip(spec.names, args, grads, g_ref, strict=True)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f"
    ]
    for qty, a, r in pairs:
        if r is None:
            problems.append(f"{qty}: the oracle gave no gradient")
            continue
        a, r = np.asarray(a), np.asarray(r)
        if a.shape != r.shape:
            problems.append(f"{qty}: shape {a.shape} vs oracle {r.shape}")
            continue
        if a.dtype != r.dtype:
            problems.append(f"{qty}: dtype {a.dtype} vs oracle {r.dtype}")
            continue
        err, idx = max_rel_error(a, r)
        if err >= worst[0]:
            worst = (err, f"{qty}{list(idx)}")
    ok = not problems and worst[0] <= ORACLE_RTOL[dt.name]
    return LegResult(op, case, dt.name, leg, worst[0], worst[1], ok, "; ".join(problems))
