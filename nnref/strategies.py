"""Public Hypothesis strategies for nnref-style ops (optional extra: ``nnref[test]``).

Functions returning strategies, plural names, keyword-only arguments, arguments users may want to
vary accepted as strategies, ``InvalidArgument`` on bad arguments (Hypothesis' API style guide).
Defaults are small so properties stay fast.

Examples
--------
>>> import nnref
>>> from hypothesis import given
>>> from nnref import strategies as nst
>>> @given(nst.conv2d_args())
... def test_conv_shape(args):
...     y = nnref.conv2d(args["x"], args["w"], **args["static"])
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from nnref._validate import is_int, is_real
from nnref.ops._windows import plan_axis

__all__ = [
    "conv2d_args",
    "dense_args",
    "distinct_arrays",
    "dtypes",
    "finite_arrays",
    "kfold_params",
    "labels",
    "logits",
    "max_pool2d_args",
    "no_source_constants",
    "op_inputs",
    "xent_args",
]

Strat = st.SearchStrategy


@contextlib.contextmanager
def no_source_constants() -> Iterator[None]:
    """Within the block, Hypothesis draws the same examples for a seed (or ``derandomize``)
    whatever modules are loaded.

    Hypothesis (6.131 on) also draws, now and then, numbers it reads from the source of every
    loaded module outside site-packages: a target's own module, the user's project, a test
    suite's helpers. The drawn inputs then follow which modules happen to be loaded and what
    numbers they hold: the same seed gave ``nnref conform`` another report in another process
    or after an edit of an unrelated constant. Hypothesis has no public switch: within the
    block its private collector (when it has one) returns an empty pool, and the pools it
    cached are dropped on entry and exit. Not thread-safe: the switch is process-wide.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # a Hypothesis without the collector
        providers = None
    collect = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if collect is None or not isinstance(cache, dict):
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = collect
        cache.clear()


def _as_strategy(name: str, v: Any) -> Strat:
    if isinstance(v, st.SearchStrategy):
        return v
    if isinstance(v, int | float | np.dtype | type | str | tuple):
        return st.just(v)
    raise InvalidArgument(f"{name}={v!r} must be a value or a strategy")


def _check_range(name: str, lo: Any, hi: Any) -> None:
    if not (is_real(lo) and is_real(hi) and np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise InvalidArgument(f"{name}: need finite min_value < max_value, got {lo!r}, {hi!r}")


def _check_int(where: str, name: str, v: Any, lo: int) -> Any:
    """``v`` when it is an int >= ``lo``, else :class:`InvalidArgument` naming the strategy and
    the argument (not Hypothesis' or NumPy's error at draw time)."""
    if not is_int(v) or v < lo:
        raise InvalidArgument(f"{where}: {name} must be an int >= {lo}, got {v!r}")
    return v


def _check_bool(where: str, name: str, v: Any) -> None:
    """A bool (Python's or NumPy's): a string such as ``"no"`` was truthy and turned the
    option on."""
    if not isinstance(v, bool | np.bool_):
        raise InvalidArgument(f"{where}: {name} must be a bool, got {v!r}")


def _checked(v: Any, check: Callable[[Any], Any]) -> Strat:
    """An argument given as a value (``check`` applied now) or a strategy (applied to each
    draw)."""
    if isinstance(v, st.SearchStrategy):
        return v.map(check)
    return st.just(check(v))


def _int_arg(where: str, name: str, v: Any, lo: int) -> Strat:
    return _checked(v, lambda x: _check_int(where, name, x, lo))


def _check_shape(where: str, v: Any) -> tuple[int, ...]:
    if is_int(v):
        v = (v,)
    if not isinstance(v, tuple | list) or not all(is_int(d) and d >= 0 for d in v):
        raise InvalidArgument(f"{where}: shape must be a tuple of ints >= 0, got {v!r}")
    return tuple(int(d) for d in v)


def _shape_arg(where: str, v: Any, default: Strat) -> Strat:
    return default if v is None else _checked(v, lambda s: _check_shape(where, s))


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check_dtype(where: str, v: Any) -> np.dtype:
    try:
        d = np.dtype(v)
    except TypeError:
        d = None
    if d is None or d not in _FLOATS:  # None == np.dtype('float64') in NumPy
        raise InvalidArgument(f"{where}: dtype must be float32 or float64, got {v!r}")
    return d


def _dtype_arg(where: str, v: Any) -> Strat:
    """nnref's float dtypes (float16 or integers would give silently wrong draws: ties, zeros)."""
    return dtypes() if v is None else _checked(v, lambda d: _check_dtype(where, d))


def dtypes() -> Strat:
    """float32 or float64 (nnref's supported dtypes).

    >>> dtypes().example() in (np.float32, np.float64)  # doctest: +SKIP
    """
    return st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


def finite_arrays(
    *,
    dtype: Any = None,
    shape: Any = None,
    min_value: float = -10.0,
    max_value: float = 10.0,
    min_magnitude: float = 0.0,
    allow_subnormal: bool = True,
) -> Strat:
    """Arrays of finite floats in ``[min_value, max_value]``.

    ``min_magnitude > 0`` keeps every entry at least that far from 0 (away from ReLU's kink).
    ``allow_subnormal=False`` excludes subnormal numbers (TF's CPU kernels flush them to zero).
    ``shape`` defaults to 1-3 dimensions of size 1-5.

    >>> finite_arrays(dtype=np.float64, shape=(2, 3), min_magnitude=0.1).example().shape  # doctest: +SKIP
    (2, 3)
    """
    _check_range("finite_arrays", min_value, max_value)
    _check_bool("finite_arrays", "allow_subnormal", allow_subnormal)
    if not (is_real(min_magnitude) and 0 <= min_magnitude < max(abs(min_value), abs(max_value))):
        raise InvalidArgument(f"finite_arrays: min_magnitude={min_magnitude!r} out of range")
    dt = _dtype_arg("finite_arrays", dtype)
    sh = _shape_arg("finite_arrays", shape, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))

    return _finite(dt, sh, min_value, max_value, min_magnitude, allow_subnormal)


def _floats(d: np.dtype, lo: float, hi: float, allow_subnormal: bool) -> Strat | None:
    """The dtype's finite values in ``[lo, hi]``, None when there are none. The bounds are
    rounded inward to the dtype (Hypothesis refuses float32 bounds such as 0.1 or 1e40), and
    subnormals are allowed only where the interval has some (Hypothesis refuses
    ``allow_subnormal=True`` on ``[1, 2]``)."""
    fi = np.finfo(d)
    lo_d, hi_d = d.type(max(lo, -float(fi.max))), d.type(min(hi, float(fi.max)))
    if float(lo_d) < lo:  # compared as Python floats: lo may overflow the dtype
        lo_d = np.nextafter(lo_d, d.type(np.inf))
    if float(hi_d) > hi:
        hi_d = np.nextafter(hi_d, d.type(-np.inf))
    if lo_d > hi_d:
        return None
    tiny = float(fi.tiny)
    sub = allow_subnormal and bool((lo_d < 0 and hi_d > -tiny) or (hi_d > 0 and lo_d < tiny))
    width = 32 if d == np.float32 else 64
    return st.floats(
        float(lo_d),
        float(hi_d),
        allow_nan=False,
        allow_infinity=False,
        width=width,
        allow_subnormal=sub,
    )


@functools.lru_cache(maxsize=256)
def _elements(
    d: np.dtype, min_value: float, max_value: float, min_magnitude: float, allow_subnormal: bool
) -> Strat:
    """The element strategy, built once per parameter set (building strategies per draw costs
    more than drawing from them)."""
    if min_magnitude > 0:  # the two intervals outside (-min_magnitude, min_magnitude): no filter
        lo_mag = float(np.nextafter(d.type(min_magnitude), d.type(np.inf)))  # representable
        parts = [
            _floats(d, max(min_value, lo_mag), max_value, allow_subnormal),
            _floats(d, min_value, min(max_value, -lo_mag), allow_subnormal),
        ]
    else:
        parts = [_floats(d, min_value, max_value, allow_subnormal)]
    found = [p for p in parts if p is not None]
    if not found:
        raise InvalidArgument(
            f"finite_arrays: no {d} value in [{min_value}, {max_value}] with magnitude above "
            f"min_magnitude={min_magnitude}"
        )
    return st.one_of(*found)


@st.composite
def _finite(
    draw: Any,
    dt: Strat,
    sh: Strat,
    min_value: float,
    max_value: float,
    min_magnitude: float,
    allow_subnormal: bool,
) -> np.ndarray:
    d = np.dtype(draw(dt))
    el = _elements(d, min_value, max_value, min_magnitude, allow_subnormal)
    return draw(hnp.arrays(d, draw(sh), elements=el))


def distinct_arrays(*, dtype: Any = None, shape: Any = None, spread: float = 4.0) -> Strat:
    """Tie-free arrays: a random permutation of an evenly spaced grid on ``[-spread/2, spread/2)``.

    The minimum gap between any two entries is ``spread / size`` (exact in binary when the size
    is a power of two, and at least ``spread / size`` rounded otherwise): max-pool windows and
    argmax never tie.
    """
    if not (is_real(spread) and 0 < spread < np.inf):
        raise InvalidArgument(
            f"distinct_arrays: spread must be finite and positive, got {spread!r}"
        )
    dt = _dtype_arg("distinct_arrays", dtype)
    sh = _shape_arg("distinct_arrays", shape, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))

    return _distinct(dt, sh, spread)


@st.composite
def _distinct(draw: Any, dt: Strat, sh: Strat, spread: float) -> np.ndarray:
    s = draw(sh)
    n = int(np.prod(s))
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    dtype = np.dtype(draw(dt))
    out = (perm * (spread / max(n, 1)) - spread / 2).reshape(s).astype(dtype)
    if np.unique(out).size < n:  # a step below the dtype's rounding (or subnormal spacing)
        raise InvalidArgument(
            f"distinct_arrays: {n} entries on a spread of {spread} cannot all differ in "
            f"{dtype.name} (the grid's step is below its rounding); use a larger spread, a "
            "smaller shape or float64"
        )
    return out


def logits(
    *,
    batch_size: Any = None,
    num_classes: Any = None,
    dtype: Any = None,
    scale: float = 5.0,
    allow_subnormal: bool = True,
) -> Strat:
    """``(N, K)`` logits with entries in ``[-scale, scale]``; N in 1..8, K in 2..10 by default."""
    if not (is_real(scale) and 0 < scale < np.inf):
        raise InvalidArgument(f"logits: scale must be finite and positive, got {scale!r}")
    _check_bool("logits", "allow_subnormal", allow_subnormal)
    n = st.integers(1, 8) if batch_size is None else _int_arg("logits", "batch_size", batch_size, 0)
    k = (
        st.integers(2, 10)
        if num_classes is None
        else _int_arg("logits", "num_classes", num_classes, 1)
    )
    dt = _dtype_arg("logits", dtype)
    return _logits(dt, n, k, scale, allow_subnormal)


@st.composite
def _logits(
    draw: Any, dt: Strat, n: Strat, k: Strat, scale: float, allow_subnormal: bool
) -> np.ndarray:
    shape = (draw(n), draw(k))
    return draw(_finite(dt, st.just(shape), -scale, scale, 0.0, allow_subnormal))


def labels(*, batch_size: Any, num_classes: Any) -> Strat:
    """int64 class indices of shape ``(N,)`` in ``[0, K)``."""
    return _labels(
        _int_arg("labels", "batch_size", batch_size, 0),
        _int_arg("labels", "num_classes", num_classes, 1),
    )


@st.composite
def _labels(draw: Any, n: Strat, k: Strat) -> np.ndarray:
    kk = draw(k)
    if kk < 1:
        raise InvalidArgument(f"labels: num_classes must be >= 1, got {kk}")
    return draw(hnp.arrays(np.int64, (draw(n),), elements=st.integers(0, kk - 1)))


def xent_args(*, sparse: Any = None, dtype: Any = None) -> Strat:
    """``(labels, logits)``: int labels (sparse) or float rows of the logits' dtype, one-hot or
    soft: positive multiples of 1/4096, each row summing to exactly 1 in any order of addition,
    so that TF's gradient ``softmax(z) - p`` is the derivative of the loss (it is not for rows
    that sum to 1 only within rounding: 3 x float32(1/3) sums to 0.99999994, and the gradient
    differs from the finite differences by ``(1 - sum(p)) * softmax(z)``)."""
    if sparse is None:
        sp = st.booleans()
    elif isinstance(sparse, st.SearchStrategy):
        sp = sparse
    else:
        _check_bool("xent_args", "sparse", sparse)
        sp = st.just(bool(sparse))
    return _xent(logits(dtype=_dtype_arg("xent_args", dtype)), sp)


#: Soft label rows are multiples of 1 / this many parts.
_SOFT_PARTS = 4096


@st.composite
def _xent(draw: Any, zs: Strat, sp: Strat) -> tuple[np.ndarray, np.ndarray]:
    z = draw(zs)
    lab = draw(_labels(st.just(z.shape[0]), st.just(z.shape[1])))
    if draw(sp):
        return lab, z
    if not draw(st.booleans()):
        return np.eye(z.shape[1], dtype=z.dtype)[lab], z
    # Soft rows: TF's gradient is softmax(z) - p, which a one-hot row alone does not exercise.
    # Sorted distinct cuts of [0, 4096] give positive integer parts summing to 4096: dyadic,
    # exact in every float dtype, as is every partial sum.
    n, k = z.shape  # k <= 10 (logits' default): far fewer classes than parts
    cuts = st.lists(st.integers(1, _SOFT_PARTS - 1), min_size=k - 1, max_size=k - 1, unique=True)
    rows = [np.diff([0, *sorted(draw(cuts)), _SOFT_PARTS]) for _ in range(n)]
    return (np.array(rows, dtype=np.float64) / _SOFT_PARTS).astype(z.dtype), z


def dense_args(*, dtype: Any = None, max_side: int = 6) -> Strat:
    """``(x, w, b)`` with matching shapes: x ``(N, in)``, w ``(in, out)``, b ``(out,)``."""
    _check_int("dense_args", "max_side", max_side, 1)
    dt = _dtype_arg("dense_args", dtype)
    return _dense(dt, max_side)


@st.composite
def _dense(draw: Any, dt: Strat, max_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = st.just(np.dtype(draw(dt)))
    n, i, o = (draw(st.integers(1, max_side)) for _ in range(3))
    return (
        draw(_finite(d, st.just((n, i)), -3.0, 3.0, 0.0, True)),
        draw(_finite(d, st.just((i, o)), -1.0, 1.0, 0.0, True)),
        draw(_finite(d, st.just((o,)), -1.0, 1.0, 0.0, True)),
    )


def _paddings() -> Strat:
    explicit = st.tuples(
        st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)
    ).map(lambda p: [[0, 0], [p[0], p[1]], [p[2], p[3]], [0, 0]])
    return st.one_of(st.sampled_from(["SAME", "VALID"]), explicit)


def conv2d_args(
    *, dtype: Any = None, allow_empty: bool = False, max_side: int = 6, bias: bool = False
) -> Strat:
    """``{"x", "w", "static"}`` for :func:`nnref.conv2d`: mutually valid shapes, strides (1-3),
    paddings (SAME, VALID, explicit), dilations (1-2); the output has at least one element
    unless ``allow_empty``. With ``bias``, also ``"b"``: one value in [-2, 2] per output
    channel (``conv2d(x, w, b)``)."""
    _check_int("conv2d_args", "max_side", max_side, 2)
    _check_bool("conv2d_args", "allow_empty", allow_empty)
    _check_bool("conv2d_args", "bias", bias)
    dt = _dtype_arg("conv2d_args", dtype)
    return _conv2d(dt, allow_empty, max_side, bias)


@st.composite
def _conv2d(draw: Any, dt: Strat, allow_empty: bool, max_side: int, bias: bool) -> dict[str, Any]:
    from hypothesis import assume

    d = st.just(np.dtype(draw(dt)))
    n, h, w = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, max_side)),
        draw(st.integers(1, max_side)),
    )
    cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(_paddings())
    pad = (
        padding
        if isinstance(padding, str)
        else ((padding[1][0], padding[1][1]), (padding[2][0], padding[2][1]))
    )
    oh = plan_axis(h, kh, strides[0], dil[0], pad, 0).out
    ow = plan_axis(w, kw, strides[1], dil[1], pad, 1).out
    if not allow_empty:
        assume(oh > 0 and ow > 0)
    x = draw(_finite(d, st.just((n, h, w, cin)), -2.0, 2.0, 0.0, True))
    k = draw(_finite(d, st.just((kh, kw, cin, cout)), -1.0, 1.0, 0.0, True))
    out = {
        "x": x,
        "w": k,
        "static": {"strides": list(strides), "padding": padding, "dilations": list(dil)},
    }
    if bias:
        out["b"] = draw(_finite(d, st.just((cout,)), -2.0, 2.0, 0.0, True))
    return out


def max_pool2d_args(*, dtype: Any = None, max_side: int = 6) -> Strat:
    """``{"x", "static"}`` for :func:`nnref.max_pool2d` with tie-free ``x`` (see
    :func:`distinct_arrays`), windows 1-3, strides 1-3, SAME or VALID, non-empty output."""
    _check_int("max_pool2d_args", "max_side", max_side, 1)
    dt = _dtype_arg("max_pool2d_args", dtype)
    return _max_pool2d(dt, max_side)


@st.composite
def _max_pool2d(draw: Any, dt: Strat, max_side: int) -> dict[str, Any]:
    from hypothesis import assume

    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    assume(
        plan_axis(h, k[0], s[0], 1, padding, 0).out > 0
        and plan_axis(w, k[1], s[1], 1, padding, 1).out > 0
    )
    shape = (draw(st.integers(1, 2)), h, w, draw(st.integers(1, 3)))
    x = draw(_distinct(dt, st.just(shape), 4.0))
    return {"x": x, "static": {"ksize": list(k), "strides": list(s), "padding": padding}}


def kfold_params(*, max_n: int = 200) -> Strat:
    """``(n, k)`` with ``1 <= k <= n <= max_n``, as ``KFold(k)`` accepts on ``n`` samples."""
    _check_int("kfold_params", "max_n", max_n, 1)
    return st.integers(1, max_n).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n)))


_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=5)


@st.composite
def _same_shape_pair(draw: Any, dt: Strat) -> tuple[np.ndarray, np.ndarray]:
    shape = st.just(draw(_SHAPES))
    d = st.just(np.dtype(draw(dt)))  # one dtype for both
    return draw(_finite(d, shape, -3.0, 3.0, 0.0, True)), draw(
        _finite(d, shape, -3.0, 3.0, 0.0, True)
    )


def _probs_from(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(z.dtype)


@st.composite
def _loss_args(draw: Any, op: str, dtype: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    z = draw(_logits(dtype, st.integers(1, 8), st.integers(2, 10), 5.0, False))
    lab = draw(_labels(st.just(z.shape[0]), st.just(z.shape[1])))
    if op == "sparse_softmax_cross_entropy_with_logits":
        return (lab, z), {}
    if op == "softmax_cross_entropy_with_logits":
        return (np.eye(z.shape[1], dtype=z.dtype)[lab], z), {}
    from_logits = draw(st.booleans())
    pred = z if from_logits else _probs_from(z)
    static = {
        "from_logits": from_logits,
        "reduction": draw(st.sampled_from(["sum_over_batch_size", "sum", "none"])),
    }
    if op == "categorical_crossentropy":
        return (np.eye(z.shape[1], dtype=z.dtype)[lab], pred), static
    return (lab, pred), static


_BIAS_SHAPES = hnp.array_shapes(min_dims=2, max_dims=4, max_side=4)


@st.composite
def _bias_args(draw: Any, dtype: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    x = draw(_finite(dtype, _BIAS_SHAPES, -10.0, 10.0, 0.0, True))
    b = draw(_finite(st.just(x.dtype), st.just((x.shape[-1],)), -10.0, 10.0, 0.0, True))
    return (x, b), {}


@st.composite
def _softmax_args(draw: Any, dtype: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    x = draw(_finite(dtype, _SHAPES, -5.0, 5.0, 0.0, False))
    return (x,), {"axis": draw(st.integers(-x.ndim, x.ndim - 1))}


_INDEX_SHAPES = hnp.array_shapes(max_dims=2, max_side=5)


@st.composite
def _one_hot_args(draw: Any, dtype: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    depth = draw(st.integers(1, 6))
    idx = draw(
        hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=5), elements=st.integers(-2, 8))
    )
    return (idx,), {"depth": depth, "dtype": np.dtype(draw(_as_strategy("dtype", dtype)))}


def op_inputs(op: str, *, dtype: Any = None) -> Strat:
    """``(args, static)`` for the op of that name in nnref's contract (``nnref.cases.TABLES``):
    mutually valid inputs away from the op's semantic pins (no ties for max-pool and argmax,
    no ReLU input within 1e-3 of 0, finite values, probabilities away from Keras' clip), so two
    correct implementations agree on every draw.

    >>> op_inputs("conv2d", dtype=np.float32).example()[1]  # doctest: +SKIP
    {'strides': [1, 2], 'padding': 'SAME', 'dilations': [1, 1]}
    """
    # one_hot's dtype is its output's, which may be an integer one (tf.one_hot's dtype)
    if op == "one_hot" and dtype is not None:
        dt = _as_strategy("dtype", dtype)
    else:
        dt = _dtype_arg("op_inputs", dtype)
    one = lambda **kw: finite_arrays(dtype=dt, **kw).map(lambda x: ((x,), {}))  # noqa: E731
    table: dict[str, Callable[[], Strat]] = {
        "dense": lambda: dense_args(dtype=dt).map(lambda a: (a, {})),
        "bias_add": lambda: _bias_args(dt),
        "conv2d": lambda: conv2d_args(dtype=dt).map(lambda a: ((a["x"], a["w"]), a["static"])),
        "max_pool2d": lambda: max_pool2d_args(dtype=dt).map(lambda a: ((a["x"],), a["static"])),
        "relu": lambda: one(min_magnitude=1e-3, min_value=-5, max_value=5),
        "sigmoid": lambda: one(min_value=-20, max_value=20, allow_subnormal=False),
        "softmax": lambda: _softmax_args(dt),
        "log_softmax": lambda: _softmax_args(dt),
        "mean_squared_error": lambda: _same_shape_pair(dt).map(lambda a: (a, {})),
        "argmax": lambda: distinct_arrays(dtype=dt).map(lambda x: ((x,), {})),
        "one_hot": lambda: _one_hot_args(dt),
        **{
            name: (lambda name=name: _loss_args(name, dt))
            for name in (
                "sparse_softmax_cross_entropy_with_logits",
                "softmax_cross_entropy_with_logits",
                "sparse_categorical_crossentropy",
                "categorical_crossentropy",
            )
        },
    }
    if op not in table:
        raise InvalidArgument(f"op_inputs: no strategy for {op!r}; ops: {sorted(table)}")
    return table[op]()
