"""A tiny reverse-mode autodiff engine (micrograd / tinygrad style, on NumPy arrays) and nnref's
differentiable ops written in it.

Each op exposes ``NAME_fwd`` / ``NAME_bwd`` by running the engine: ``NAME_fwd`` wraps the float
inputs as leaves, builds the graph from primitives and returns ``(y, (graph output, leaves))``;
``NAME_bwd(residuals, dy)`` walks the tape backwards from ``dy`` (a fresh accumulation each
call: the checker calls it several times on the same residuals). Convolution is built from
padded, strided slices and matmuls; max-pool from strided slices and one ``window_max``
primitive that routes like TF; ``softmax_cross_entropy_with_logits`` is a primitive with TF's
custom gradient ``softmax(z) - p`` (the composed form would give the true derivative). The
non-differentiable functions (argmax, one-hot, KFold, optimizers) are not provided: the report
lists them as such. NumPy only; independent of nnref and of the other zoo members.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Grad = np.ndarray | None


class Tensor:
    """A value, the tensors it was computed from, and its VJP ``g -> one gradient per parent``."""

    __slots__ = ("parents", "value", "vjp")

    def __init__(
        self,
        value: np.ndarray,
        parents: tuple[Tensor, ...] = (),
        vjp: Callable[[np.ndarray], tuple[Grad, ...]] | None = None,
    ) -> None:
        self.value, self.parents, self.vjp = value, parents, vjp

    # operators, so that ops read as formulas
    def __add__(self, other: Any) -> Tensor:
        return add(self, lift(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return add(lift(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return add(self, neg(lift(other, self)))

    def __rsub__(self, other: Any) -> Tensor:
        return add(lift(other, self), neg(self))

    def __mul__(self, other: Any) -> Tensor:
        return mul(self, lift(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return mul(lift(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return div(self, lift(other, self))

    def __neg__(self) -> Tensor:
        return neg(self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return matmul(self, other)

    def __getitem__(self, index: Any) -> Tensor:
        return getitem(self, index)


def lift(v: Any, like: Tensor) -> Tensor:
    """A constant (no parents) in ``like``'s dtype."""
    if isinstance(v, Tensor):
        return v
    return Tensor(np.asarray(v, dtype=like.value.dtype))


def backward(out: Tensor, leaves: Sequence[Tensor | None], dy: np.ndarray) -> list[Grad]:
    """Gradients of ``<out, dy>`` with respect to ``leaves`` (None for a None leaf)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(out, False)]
    while stack:  # iterative post-order DFS: the tape in evaluation order
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        stack.extend((p, False) for p in t.parents)
    grads: dict[int, np.ndarray] = {id(out): np.asarray(dy, out.value.dtype)}
    for t in reversed(order):
        g = grads.get(id(t))
        if g is None or t.vjp is None:
            continue
        for p, gp in zip(t.parents, t.vjp(g), strict=True):
            if gp is not None:
                grads[id(p)] = grads[id(p)] + gp if id(p) in grads else gp
    return [
        None
        if leaf is None
        else grads.get(id(leaf), np.zeros_like(leaf.value)).astype(leaf.value.dtype, copy=False)
        for leaf in leaves
    ]


# --------------------------------------------------------------------------- primitives


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (the VJP of NumPy broadcasting)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def add(a: Tensor, b: Tensor) -> Tensor:
    """``a + b`` with broadcasting; the VJP sums back to each shape."""
    sa, sb = a.value.shape, b.value.shape
    return Tensor(a.value + b.value, (a, b), lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)))


def neg(a: Tensor) -> Tensor:
    """``-a``."""
    return Tensor(-a.value, (a,), lambda g: (-g,))


def mul(a: Tensor, b: Tensor) -> Tensor:
    """``a b`` with broadcasting."""
    av, bv = a.value, b.value
    return Tensor(
        av * bv, (a, b), lambda g: (unbroadcast(g * bv, av.shape), unbroadcast(g * av, bv.shape))
    )


def div(a: Tensor, b: Tensor) -> Tensor:
    """``a / b`` with broadcasting."""
    av, bv = a.value, b.value
    y = av / bv
    return Tensor(
        y,
        (a, b),
        lambda g: (unbroadcast(g / bv, av.shape), unbroadcast(-g * y / bv, bv.shape)),
    )


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """``(..., I) @ (I, O)``."""
    av, bv = a.value, b.value

    def vjp(g: np.ndarray) -> tuple[Grad, Grad]:
        lead = tuple(range(g.ndim - 1))
        return g @ bv.T, np.tensordot(av, g, axes=(lead, lead))

    return Tensor(av @ bv, (a, b), vjp)


def exp(a: Tensor) -> Tensor:
    """``exp(a)``; the VJP reuses the output."""
    y = np.exp(a.value)
    return Tensor(y, (a,), lambda g: (g * y,))


def log(a: Tensor) -> Tensor:
    """``log(a)``."""
    av = a.value
    return Tensor(np.log(av), (a,), lambda g: (g / av,))


def sum_(a: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """``a.sum(axis, keepdims)``; the VJP broadcasts back."""
    shape = a.value.shape

    def vjp(g: np.ndarray) -> tuple[Grad]:
        if axis is not None and not keepdims:
            g = np.expand_dims(g, axis)
        return (np.broadcast_to(g, shape).copy(),)

    return Tensor(a.value.sum(axis=axis, keepdims=keepdims), (a,), vjp)


def relu(a: Tensor) -> Tensor:
    """``max(x, 0)``; gradient 1 where ``x > 0``, 0 elsewhere (0 at 0)."""
    av = a.value
    return Tensor(np.maximum(av, av.dtype.type(0)), (a,), lambda g: (g * (av > 0),))


def sigmoid(a: Tensor) -> Tensor:
    """Primitive with the gradient from the output, ``y (1 - y)`` (TF's SigmoidGrad)."""
    av = a.value
    e = np.exp(-np.abs(av))
    y = np.where(av >= 0, 1 / (1 + e), e / (1 + e)).astype(av.dtype)
    return Tensor(y, (a,), lambda g: (g * y * (1 - y),))


def clip(a: Tensor, lo: Any, hi: Any) -> Tensor:
    """``clip``; the gradient passes where ``lo <= x <= hi`` (as ``tf.clip_by_value``)."""
    av = a.value
    inside = (av >= lo) & (av <= hi)
    return Tensor(np.clip(av, lo, hi), (a,), lambda g: (g * inside,))


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]`` (slices or integer arrays); the VJP scatter-adds."""
    shape, dtype = a.value.shape, a.value.dtype

    def vjp(g: np.ndarray) -> tuple[Grad]:
        out = np.zeros(shape, dtype)
        np.add.at(out, index, g)
        return (out,)

    return Tensor(a.value[index], (a,), vjp)


def pad(a: Tensor, pads: Sequence[tuple[int, int]]) -> Tensor:
    """Zero padding; the VJP crops."""
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, a.value.shape, strict=True))
    return Tensor(np.pad(a.value, pads), (a,), lambda g: (g[crop],))


def window_max(cells: Sequence[Tensor], real: Sequence[np.ndarray]) -> Tensor:
    """Max over window cells ``(N, OH, OW, C)`` each, ``real[t]`` ``(OH, OW)`` saying where cell
    ``t`` is inside the input. TF's rules: the value skips NaN and padding, floored at the
    lowest finite value; the gradient goes to the first real cell unless a later one is
    strictly greater."""
    vals = np.stack([c.value for c in cells])
    ok = np.stack(real)[:, None, :, :, None]
    y = np.fmax.reduce(np.where(ok, vals, np.nan), axis=0)
    y = np.fmax(y, np.finfo(vals.dtype).min).astype(vals.dtype)
    pick = np.full(vals.shape[1:], -1)
    best = np.zeros(vals.shape[1:], vals.dtype)
    for t in range(len(cells)):
        take = ok[t] & ((pick < 0) | (vals[t] > best))
        best = np.where(take, vals[t], best)
        pick = np.where(take, t, pick)
    return Tensor(y, tuple(cells), lambda g: tuple(g * (pick == t) for t in range(len(cells))))


def xent_with_tf_gradient(p: Tensor, z: Tensor) -> Tensor:
    """``-sum p log_softmax(z)`` as TF's fused kernel: ``dz = softmax(z) - p`` even when rows of
    ``p`` do not sum to 1 (not the derivative there); ``dp = -log_softmax(z)``."""
    zs = z.value - z.value.max(-1, keepdims=True)
    logq = zs - np.log(np.exp(zs).sum(-1, keepdims=True))
    pv = p.value
    return Tensor(
        -(pv * logq).sum(-1),
        (p, z),
        lambda g: (-g[:, None] * logq, g[:, None] * (np.exp(logq) - pv)),
    )


# --------------------------------------------------------------------------- running ops


def op(build: Callable[..., Tensor]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``NAME_fwd`` / ``NAME_bwd`` for an op whose graph ``build(*tensors, **hyper)`` makes."""

    def fwd(*inputs: Any, **hyper: Any) -> tuple[np.ndarray, tuple]:
        leaves = [
            Tensor(np.asarray(v)) if np.asarray(v).dtype.kind == "f" else None for v in inputs
        ]
        args = [leaf if leaf is not None else v for leaf, v in zip(leaves, inputs, strict=True)]
        out = build(*args, **hyper)
        return out.value, (out, leaves)

    def bwd(res: tuple, dy: np.ndarray) -> tuple[Grad, ...]:
        out, leaves = res
        return tuple(backward(out, leaves, dy))

    return fwd, bwd


def _hw(v: Any) -> tuple[int, int]:
    """``2``, ``[2, 1]`` or ``[1, 2, 1, 1]`` as ``(h, w)``."""
    v = np.atleast_1d(v).tolist()
    return (v[1], v[2]) if len(v) == 4 else (v[0], v[-1])


def _pads(
    size: tuple[int, int], eff: tuple[int, int], s: tuple[int, int], padding: Any
) -> list[tuple[int, int]]:
    """Top/bottom and left/right pads for SAME, VALID or explicit padding."""
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if padding == "SAME":
        out = [-(-n // st) for n, st in zip(size, s, strict=True)]
        total = [
            max((o - 1) * st + e - n, 0) for o, st, e, n in zip(out, s, eff, size, strict=True)
        ]
        return [(t // 2, t - t // 2) for t in total]
    return [tuple(padding[1]), tuple(padding[2])]


def _taps(
    k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], out: tuple[int, int]
) -> list[tuple[int, int, tuple]]:
    """Per kernel tap: the strided window of the padded input it reads."""
    return [
        (
            a,
            b,
            (
                slice(None),
                slice(a * d[0], a * d[0] + (out[0] - 1) * s[0] + 1, s[0]),
                slice(b * d[1], b * d[1] + (out[1] - 1) * s[1] + 1, s[1]),
            ),
        )
        for a in range(k[0])
        for b in range(k[1])
    ]


def _conv2d(
    x: Tensor, w: Tensor, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> Tensor:
    """Sum over kernel taps of ``xpad[strided window] @ w[a, b]``."""
    s, d = _hw(strides), _hw(dilations)
    kh, kw = w.value.shape[:2]
    eff = ((kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1)
    pads = _pads(x.value.shape[1:3], eff, s, padding)
    xp = pad(x, [(0, 0), *pads, (0, 0)])
    out = tuple((xp.value.shape[1 + i] - eff[i]) // s[i] + 1 for i in (0, 1))
    y = None
    for a, b, window in _taps((kh, kw), s, d, out):
        term = xp[window] @ w[a, b]
        y = term if y is None else y + term
    return y


def _max_pool2d(x: Tensor, *, ksize: Any, strides: Any, padding: Any = "VALID") -> Tensor:
    """Max-pool: the window's strided slices of the padded input into ``window_max``."""
    k, s = _hw(ksize), _hw(strides)
    pads = _pads(x.value.shape[1:3], k, s, padding)
    xp = pad(x, [(0, 0), *pads, (0, 0)])
    real = np.pad(np.ones(x.value.shape[1:3], bool), pads)
    out = tuple((xp.value.shape[1 + i] - k[i]) // s[i] + 1 for i in (0, 1))
    taps = _taps(k, s, (1, 1), out)
    return window_max([xp[w] for _, _, w in taps], [real[w[1:]] for _, _, w in taps])


def _shifted(x: Tensor, axis: int) -> Tensor:
    """``x - max(x)``, the maximum a constant (no parents): the shift carries no gradient."""
    return x - Tensor(x.value.max(axis=axis, keepdims=True))


def _softmax(x: Tensor, *, axis: int = -1) -> Tensor:
    """Softmax composed from the primitives."""
    e = exp(_shifted(x, axis))
    return e / sum_(e, axis=axis, keepdims=True)


def _log_softmax(x: Tensor, *, axis: int = -1) -> Tensor:
    """log_softmax composed from the primitives."""
    z = _shifted(x, axis)
    return z - log(sum_(exp(z), axis=axis, keepdims=True))


def _check_labels(labels: np.ndarray, k: int) -> None:
    """Refuse labels outside ``[0, k)``, as TF on CPU."""
    if np.any((labels < 0) | (labels >= k)):
        raise ValueError(f"labels must be in [0, {k}), got {np.asarray(labels).tolist()}")


def _pick(t: Tensor, labels: np.ndarray) -> Tensor:
    """``t[i, labels[i]]`` per row."""
    return t[np.arange(len(labels)), labels]


def _sparse_xent(labels: np.ndarray, logits: Tensor) -> Tensor:
    """``-log_softmax(z)[y]``: its VJP is softmax - onehot by reverse mode."""
    _check_labels(labels, logits.value.shape[-1])
    return -_pick(_log_softmax(logits), labels)


def _reduce(per: Tensor, reduction: str, sample_weight: Any) -> Tensor:
    """Keras' reductions of per-sample losses (weights first)."""
    if sample_weight is not None:
        per = per * np.asarray(sample_weight, per.value.dtype)
    if reduction == "none":
        return per
    total = sum_(per)
    return total if reduction == "sum" else total / per.value.size


EPS = 1e-7


def _clip_probs(p: Tensor) -> Tensor:
    """Keras' clip to ``[1e-7, 1 - 1e-7]``."""
    dt = p.value.dtype.type
    return clip(p, dt(EPS), dt(1) - dt(EPS))


def _scce(
    y_true: np.ndarray,
    y_pred: Tensor,
    *,
    from_logits: bool = False,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> Tensor:
    """Keras' SCCE composed: logits or clipped probabilities, then the reduction."""
    labels = np.asarray(y_true).reshape(y_pred.value.shape[:-1])
    if from_logits:
        per = _sparse_xent(labels, y_pred)
    else:
        _check_labels(labels, y_pred.value.shape[-1])
        q = _clip_probs(y_pred)
        per = log(sum_(q, axis=-1)) - log(_pick(q, labels))
    return _reduce(per, reduction, sample_weight)


def _cce(
    y_true: Tensor,
    y_pred: Tensor,
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> Tensor:
    """Keras' CCE composed: smoothing, renormalised and clipped probabilities, reduction."""
    k = y_pred.value.shape[-1]
    t = y_true * (1 - label_smoothing) + label_smoothing / k if label_smoothing else y_true
    if from_logits:
        logq = _log_softmax(y_pred)
    else:
        logq = log(_clip_probs(y_pred / sum_(y_pred, axis=-1, keepdims=True)))
    return _reduce(-sum_(t * logq, axis=-1), reduction, sample_weight)


def _mse(
    y_true: Tensor,
    y_pred: Tensor,
    *,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
) -> Tensor:
    """Keras' MSE composed: mean of squares over the last axis, then the reduction."""
    diff = y_pred - y_true
    per = sum_(diff * diff, axis=-1) / diff.value.shape[-1]
    return _reduce(per, reduction, sample_weight)


dense_fwd, dense_bwd = op(lambda x, w, b: x @ w + b)
bias_add_fwd, bias_add_bwd = op(lambda x, b: x + b)
conv2d_fwd, conv2d_bwd = op(_conv2d)
max_pool2d_fwd, max_pool2d_bwd = op(_max_pool2d)
relu_fwd, relu_bwd = op(relu)
sigmoid_fwd, sigmoid_bwd = op(sigmoid)
softmax_fwd, softmax_bwd = op(_softmax)
log_softmax_fwd, log_softmax_bwd = op(_log_softmax)
sparse_softmax_cross_entropy_with_logits_fwd, sparse_softmax_cross_entropy_with_logits_bwd = op(
    _sparse_xent
)
softmax_cross_entropy_with_logits_fwd, softmax_cross_entropy_with_logits_bwd = op(
    xent_with_tf_gradient
)
sparse_categorical_crossentropy_fwd, sparse_categorical_crossentropy_bwd = op(_scce)
categorical_crossentropy_fwd, categorical_crossentropy_bwd = op(_cce)
mean_squared_error_fwd, mean_squared_error_bwd = op(_mse)
