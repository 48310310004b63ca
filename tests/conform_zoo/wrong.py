"""Deliberately wrong variants of the zoo: each takes a correct implementation and replaces one
op with a bug, either a semantic pin decided the other way (SAME pad side, tie routing, label
policy, epsilon placement, ...) or a plain bug (a scaled or transposed gradient, a float64
result, a missing gradient).

``VARIANTS`` is data for ``tests/test_conform_zoo.py``: each :class:`Variant` names its base
implementation, the op it breaks, the pin (``None`` for a plain bug), and, when its behaviour is
a known convention of ``nnref.conform.CONVENTIONS``, that convention's id (the fingerprint the
report must show). Every bug is written the way it appears in real code, as a small change to the
correct function; none imports nnref.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import nchw_style as N
from . import numpy_loops as L
from . import numpy_vectorised as V
from . import tiny_autodiff as A

BASES: dict[str, Any] = {"loops": L, "vectorised": V, "nchw": N, "autodiff": A}


@dataclass(frozen=True)
class Variant:
    """One deliberately wrong implementation: ``base`` with ``replace`` swapped in."""

    id: str
    base: str
    op: str
    replace: dict[str, Callable[..., Any]]
    #: The semantic pin it breaks (a key of ``nnref.cases.PINS``), None for a plain bug.
    pin: str | None
    #: The ``nnref.conform.CONVENTIONS`` ids its results follow (the report's fingerprints).
    conventions: tuple[str, ...] = ()
    #: The dtypes it is run in: float64, unless the bug shows in float32 only.
    dtypes: tuple[str, ...] = ("float64",)
    #: Profiles under which the variant's op conforms (its conventions are that framework's).
    conforms_under: tuple[str, ...] = ()


# --------------------------------------------------------------------------- conv2d


def _tf_same(n: int, eff: int, s: int) -> tuple[int, int]:
    """TF's SAME pads ``(before, after)`` along one axis."""
    total = max((math.ceil(n / s) - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def _explicit(pads_h: tuple[int, int], pads_w: tuple[int, int]) -> list[list[int]]:
    """TF's explicit padding list for pads on H and W."""
    return [[0, 0], list(pads_h), list(pads_w), [0, 0]]


def _eff(k: int, d: int) -> int:
    """The dilated kernel size ``(k - 1) d + 1``."""
    return (k - 1) * d + 1


def conv_pads_swapped_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, tuple]:
    """SAME with the odd extra pad top/left: the pair assigned the wrong way round."""
    if padding == "SAME":
        s, d = L.pair(strides), L.pair(dilations)
        before_after = [_tf_same(x.shape[1 + a], _eff(w.shape[a], d[a]), s[a]) for a in (0, 1)]
        padding = _explicit(*[(after, before) for before, after in before_after])
    return V.conv2d_fwd(x, w, strides=strides, padding=padding, dilations=dilations)


def conv_torch_port_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, tuple]:
    """SAME as a symmetric ``(k - 1) // 2`` on both sides, at every stride (NCHW, OIHW)."""
    if padding == "SAME":
        d = N._hw(dilations)
        sym = [(_eff(w.shape[2 + a], d[a]) - 1) // 2 for a in (0, 1)]
        padding = _explicit((sym[0], sym[0]), (sym[1], sym[1]))
    return N.conv2d_fwd(x, w, strides=strides, padding=padding, dilations=dilations)


def conv_torch_strided_port_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, tuple]:
    """PyTorch's port: ``padding='same'`` at stride 1 (TF's pads), and ``padding=k // 2`` on
    both sides at stride > 1, where ``F.conv2d`` refuses ``'same'`` (NCHW, OIHW)."""
    if padding == "SAME" and max(N._hw(strides)) > 1:
        d = N._hw(dilations)
        half = [_eff(w.shape[2 + a], d[a]) // 2 for a in (0, 1)]
        padding = _explicit((half[0], half[0]), (half[1], half[1]))
    return N.conv2d_fwd(x, w, strides=strides, padding=padding, dilations=dilations)


def conv_flipped_fwd(x: np.ndarray, w: np.ndarray, **static: Any) -> tuple[np.ndarray, tuple]:
    """A true convolution (``scipy.signal.convolve`` habits): the kernel flipped."""
    return V.conv2d_fwd(x, np.ascontiguousarray(w[::-1, ::-1]), **static)


def conv_flipped_bwd(res: Any, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of the flipped-kernel forward (flipped back onto ``w``)."""
    dx, dw = V.conv2d_bwd(res, dy)
    return dx, np.ascontiguousarray(dw[::-1, ::-1])


def conv_one_stride_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, **static: Any
) -> tuple[np.ndarray, tuple]:
    """Per-axis strides read as one number: ``strides[0]`` for both axes."""
    return V.conv2d_fwd(x, w, strides=L.pair(strides)[0], **static)


def conv_same_ignores_dilation_fwd(
    x: np.ndarray, w: np.ndarray, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> tuple[np.ndarray, tuple]:
    """SAME pads computed from the kernel size, not the dilated ``(k - 1) d + 1``."""
    if padding == "SAME":
        s = L.pair(strides)
        padding = _explicit(*[_tf_same(x.shape[1 + a], w.shape[a], s[a]) for a in (0, 1)])
    return V.conv2d_fwd(x, w, strides=strides, padding=padding, dilations=dilations)


def conv_symmetric_explicit_fwd(
    x: np.ndarray, w: np.ndarray, *, padding: Any = "VALID", **static: Any
) -> tuple[np.ndarray, tuple]:
    """Explicit pads read as one number per axis (the top / left one on both sides)."""
    if not isinstance(padding, str):
        padding = _explicit((padding[1][0],) * 2, (padding[2][0],) * 2)
    return V.conv2d_fwd(x, w, padding=padding, **static)


def conv_refuses_large_kernel_fwd(
    x: np.ndarray, w: np.ndarray, **static: Any
) -> tuple[np.ndarray, tuple]:
    """Refuses a kernel larger than the input (fine for VALID, wrong for SAME)."""
    if w.shape[0] > x.shape[1] or w.shape[1] > x.shape[2]:
        raise ValueError(f"kernel {w.shape[:2]} is larger than the input {x.shape[1:3]}")
    return V.conv2d_fwd(x, w, **static)


def conv_dx_scaled_bwd(res: Any, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A plain bug: dx off by 0.1 %."""
    dx, dw = V.conv2d_bwd(res, dy)
    return dx * dx.dtype.type(1.001), dw


# --------------------------------------------------------------------------- max_pool2d


def _pool_with(
    rule: Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]],
    *,
    pad_zeros: bool = False,
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A loop max-pool whose window value and gradient shares come from
    ``rule(cells (N, m, C), lowest) -> (y (N, C), share (N, m, C))``; with ``pad_zeros`` a
    window that overlaps the padding also sees zeros (their share goes nowhere)."""

    def fwd(
        x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
    ) -> tuple[np.ndarray, tuple]:
        k = L.pair(ksize)
        g = L.geometry(x.shape, k, strides, 1, padding)
        n, h, w, c = x.shape
        y = np.empty((n, *g.out, c), x.dtype)
        shares = {}
        for i in range(g.out[0]):
            for j in range(g.out[1]):
                rows, cols = L.window_cells(g, k, i, j, h, w)
                cells = x[:, rows, cols, :].reshape(n, -1, c)
                m = cells.shape[1]
                if pad_zeros and m < k[0] * k[1]:
                    cells = np.concatenate([cells, np.zeros((n, 1, c), x.dtype)], axis=1)
                y[:, i, j, :], share = rule(cells, np.finfo(x.dtype).min)
                shares[i, j] = (rows, cols, share[:, :m, :])
        return y, (x.shape, x.dtype, shares)

    def bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
        shape, dtype, shares = res
        dx = np.zeros(shape, dtype)
        for (i, j), (rows, cols, share) in shares.items():
            patch = (share * dy[:, i, j, None, :]).astype(dtype)
            dx[:, rows, cols, :] += patch.reshape(shape[0], rows.stop - rows.start, -1, shape[3])
        return (dx,)

    return fwd, bwd


def _one_hot_share(cells: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """The whole gradient to window cell ``pick``."""
    return (np.arange(cells.shape[1])[None, :, None] == pick[:, None, :]).astype(cells.dtype)


def _scan(cells: np.ndarray, better: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """First cell, replaced whenever ``better(candidate, best)``."""
    best, pick = cells[:, 0, :].copy(), np.zeros((cells.shape[0], cells.shape[2]), np.int64)
    for t in range(1, cells.shape[1]):
        take = better(cells[:, t, :], best)
        best = np.where(take, cells[:, t, :], best)
        pick = np.where(take, t, pick)
    return pick


def _tf_value(cells: np.ndarray, lowest: Any) -> np.ndarray:
    """TF's window value: NaN skipped, floored at the lowest finite value."""
    return np.fmax(np.fmax.reduce(cells, axis=1), lowest)


def rule_ties_last(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """``>=`` where TF has ``>``: the last tied maximum takes the gradient."""
    return _tf_value(cells, lowest), _one_hot_share(cells, _scan(cells, np.greater_equal))


def rule_ties_split(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """Tied maxima share the gradient (autodiff of a max reduction, as jnp.max)."""
    m = np.fmax.reduce(cells, axis=1)
    hit = (cells == m[:, None, :]).astype(cells.dtype)
    return np.fmax(m, lowest), hit / np.maximum(hit.sum(axis=1, keepdims=True), 1)


def rule_ties_all(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """A mask ``x == max``: every tied maximum takes the whole gradient."""
    m = np.fmax.reduce(cells, axis=1)
    return np.fmax(m, lowest), (cells == m[:, None, :]).astype(cells.dtype)


def rule_nan_wins(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """``np.max`` / ``np.argmax``: a NaN wins its window, value and gradient."""
    y = np.maximum(np.max(cells, axis=1), lowest)  # np.maximum keeps the NaN
    return y, _one_hot_share(cells, np.argmax(cells, axis=1))


def rule_xla(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """JAX's ``reduce_window`` max and its VJP (XLA's select ``not keep >= v``): NaN propagates,
    the gradient goes to the first maximum after the last NaN, an all -inf window gives -inf."""
    y = np.max(cells, axis=1)
    return y, _one_hot_share(cells, _scan(cells, lambda v, keep: ~(keep >= v)))


def rule_neg_inf_init(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """The running max starts at -inf: an all -inf window gives -inf."""
    y = np.fmax(np.fmax.reduce(cells, axis=1), -np.inf)
    return y, _one_hot_share(cells, _scan(cells, np.greater))


def rule_tf(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """TF's rule (used with zero padding, where the zeros are the bug)."""
    pick = _scan(cells, np.greater)
    return _tf_value(cells, lowest), _one_hot_share(cells, pick)


def rule_nan_skipped_in_gradient(cells: np.ndarray, lowest: Any) -> tuple[np.ndarray, np.ndarray]:
    """``nanargmax`` routing: the gradient follows the value even when a NaN comes first."""
    key = np.where(np.isnan(cells), -np.inf, cells)
    return _tf_value(cells, lowest), _one_hot_share(cells, np.argmax(key, axis=1))


def pool_torch_port_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, tuple]:
    """A PyTorch user's SAME pool: ``F.max_pool2d(padding=(k - 1) // 2)`` on both sides in floor
    mode (F.max_pool2d has no 'same'), with PyTorch's CPU kernel (NaN wins, -inf start)."""
    if padding == "SAME":
        k = N._hw(ksize)
        padding = _explicit(*[((k[a] - 1) // 2, (k[a] - 1) // 2) for a in (0, 1)])
    return pool_torch_fwd(x, ksize=ksize, strides=strides, padding=padding)


def pool_pads_swapped_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, tuple]:
    """SAME pooling with the odd extra pad top/left."""
    if padding == "SAME":
        k, s = L.pair(ksize), L.pair(strides)
        pairs = [_tf_same(x.shape[1 + a], k[a], s[a]) for a in (0, 1)]
        padding = _explicit(*[(after, before) for before, after in pairs])
    return L.max_pool2d_fwd(x, ksize=ksize, strides=strides, padding=padding)


def pool_assign_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dx[cell] = dy`` where TF adds: an input that wins several windows keeps one share."""
    shape, dtype, chosen = res
    dx = np.zeros(shape, dtype)
    n, oh, ow, c = dy.shape
    for bn in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    dx[bn, chosen[0, bn, i, j, ch], chosen[1, bn, i, j, ch], ch] = dy[bn, i, j, ch]
    return (dx,)


def pool_torch_fwd(
    x: np.ndarray, *, ksize: Any, strides: Any, padding: Any = "VALID"
) -> tuple[np.ndarray, tuple]:
    """PyTorch's CPU max-pool (NCHW): running max from -inf, replaced when ``val > max or
    isnan(val)``: the last NaN wins its window, an all -inf window gives -inf (the gradient
    then goes to the first cell)."""
    k, s = N._hw(ksize), N._hw(strides)
    n, c, h, w = x.shape
    (t, b), (left, r) = N._pads((h, w), k, s, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=-np.inf)
    flat = np.pad(np.arange(h * w).reshape(h, w), ((t, b), (left, r)))
    real = np.pad(np.ones((h, w), bool), ((t, b), (left, r)))
    out = ((h + t + b - k[0]) // s[0] + 1, (w + left + r - k[1]) // s[1] + 1)
    y = np.full((n, c, *out), -np.inf, x.dtype)
    first = np.zeros(out, np.int64)
    indices = np.full((n, c, *out), -1, np.int64)
    for _, _, rows, cols in reversed(N._taps(k, s, (1, 1), out)):
        first = np.where(real[rows, cols], flat[rows, cols], first)  # the first real cell
    for _, _, rows, cols in N._taps(k, s, (1, 1), out):
        cand = xp[:, :, rows, cols]
        take = real[rows, cols] & ((cand > y) | np.isnan(cand))
        y = np.where(take, cand, y)
        indices = np.where(take, flat[rows, cols], indices)
    return y, (x.shape, np.where(indices < 0, first, indices))


def _pool_variant(rule: Callable[..., Any], **kw: Any) -> dict[str, Callable[..., Any]]:
    """A pool rule as the ``max_pool2d_fwd`` / ``_bwd`` replacement of a variant."""
    fwd, bwd = _pool_with(rule, **kw)
    return {"max_pool2d_fwd": fwd, "max_pool2d_bwd": bwd}


# --------------------------------------------------------------------------- dense, bias_add


def dense_flattens_fwd(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``x.reshape(len(x), -1) @ w``: fine for ``(N, I)``, wrong for ``(N, T, I)``."""
    return V.dense_fwd(x.reshape(len(x), -1), w, b)


def dense_dw_transposed_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, ...]:
    """A plain bug: ``dw`` as ``dy^T x`` (``(O, I)``) instead of ``x^T dy``."""
    dx, dw, db = L.dense_bwd(res, dy)
    return dx, dw.T, db


def dense_dw_transposed_if_square_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, ...]:
    """``dw`` as ``dy^T x`` where the shapes allow it (a square kernel), else right: a shape
    check alone passes it."""
    dx, dw, db = L.dense_bwd(res, dy)
    return dx, (dw.T if dw.shape[0] == dw.shape[1] else dw), db


def dense_no_db_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, ...]:
    """Returns ``(dx, dw)``: the bias gradient forgotten."""
    return V.dense_bwd(res, dy)[:2]


def bias_db_over_batch_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``db = dy.sum(axis=0)``: right for ``(N, C)``, not for NHWC."""
    return dy.copy(), dy.sum(axis=0)


# --------------------------------------------------------------------------- activations


def relu_ge_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu'(0) = 1: the gradient mask is ``x >= 0`` (the vectorised base's ``relu_bwd``)."""
    return np.maximum(x, x.dtype.type(0)), x >= 0


def relu_mask_product_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x * (x > 0)``: right on finite inputs, NaN at -inf (``-inf * 0``)."""
    return x * (x > 0), x > 0


def relu_threshold_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's threshold backward: the gradient is zeroed where ``x <= 0``, so it passes at
    NaN (relu'(NaN) = 1)."""
    return np.maximum(x, x.dtype.type(0)), ~(x <= 0)


def relu_half_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """relu'(0) = 1/2, the subgradient's midpoint (the loop base's residual ``(x,)``)."""
    (x,) = res
    slope = np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0)).astype(dy.dtype)
    return (dy * slope,)


def sigmoid_from_input_fwd(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Keeps ``x`` for a backward pass that differentiates the formula in ``x``."""
    return L.sigmoid_fwd(x)[0], (x,)


def sigmoid_from_input_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``dy e / (1 + e)^2`` with ``e = exp(-|x|)``: the derivative, but not TF's ``y (1 - y)``,
    which is exactly 0 where ``y`` rounds to 1."""
    (x,) = res
    e = np.exp(-np.abs(x))
    return (dy * e / (1 + e) ** 2,)


def softmax_last_axis_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``axis`` accepted and ignored: always the last axis."""
    return L.softmax_fwd(x)


def softmax_unshifted_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``exp(x) / sum exp(x)``: overflows for logits of 1e4."""
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def log_softmax_unshifted_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """``x - log sum exp(x)``."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        y = x - np.log(np.exp(x).sum(axis=axis, keepdims=True))
    return y, (y, axis)


def softmax_bwd_into_saved_output(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """``y (dy - sum(dy y))`` computed in the saved output's memory, saving an allocation:
    right on its first call, but the residuals then hold the gradient, and a second backward
    with them (a second cotangent) starts from it instead of from ``y``."""
    y, axis = res
    s = (dy * y).sum(axis=axis, keepdims=True)
    return (np.multiply(y, dy - s, out=y),)


def softmax_float64_fwd(x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, tuple]:
    """Computes in float64 and forgets to cast back."""
    return V.softmax_fwd(x.astype(np.float64), axis=axis)


def relu_float64_grad_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray]:
    """dx built with ``np.zeros(shape)`` (float64) and filled."""
    (x,) = res
    dx = np.zeros(x.shape)
    dx[x > 0] = dy[x > 0]
    return (dx,)


# --------------------------------------------------------------------------- cross-entropy


def xent_unshifted_fwd(labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``log sum exp(z) - z_y`` without the max shift: inf / NaN for logits of 1e4."""
    V._labels_ok(labels, logits.shape[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(logits)
        total = e.sum(-1)
        loss = np.log(total) - logits[np.arange(len(labels)), labels]
        g = e / total[:, None]
    g[np.arange(len(labels)), labels] -= 1
    return loss, (g,)


def xent_wraps_fwd(labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, tuple]:
    """No range check: NumPy indexing wraps -1 to the last class (K or -100 raise IndexError)."""
    rows = np.arange(len(labels))
    logp = np.stack([L.log_softmax_row(z) for z in logits])
    g = np.exp(logp)
    g[rows, labels] -= 1
    return -logp[rows, labels], (g,)


def _recombined(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``(m + log sum exp(z - m)) - z_y``: the max added back before the label is taken."""
    m = logits.max(-1)
    lse = m + np.log(np.exp(logits - m[:, None]).sum(-1))
    return lse - logits[np.arange(len(labels)), labels]


def xent_recombined_fwd(labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Labels checked, the loss recombined (optax's form): ln 2 rows lose bits in float32."""
    V._labels_ok(labels, logits.shape[-1])
    g = np.exp(V._log_softmax(logits))
    g[np.arange(len(labels)), labels] -= 1
    return _recombined(labels, logits).astype(logits.dtype), (g,)


def xent_optax_fwd(labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, tuple]:
    """optax's integer-label loss: unchecked labels (``-K..-1`` wrap as ``take_along_axis``,
    any other bad label gives a NaN loss and its row's gradient is ``softmax(z)``) and the
    recombined loss ``(m + log sum exp(z - m)) - z_y``."""
    k = logits.shape[-1]
    bad = (labels < -k) | (labels >= k)
    safe = np.where(bad, 0, labels % k)
    logp = V._log_softmax(logits)
    hot = V._onehot(safe, k, logits.dtype) * ~bad[:, None]
    loss = np.where(bad, np.nan, _recombined(safe, logits)).astype(logits.dtype)
    return loss, (np.exp(logp) - hot,)


def xent_ignore_minus_100_fwd(labels: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``F.cross_entropy(..., reduction='none')``: label -100 ignored (loss 0, no gradient)."""
    keep = labels != -100
    y, (lab, logp) = N.sparse_softmax_cross_entropy_with_logits_fwd(
        np.where(keep, labels, 0), logits
    )
    return np.where(keep, y, 0).astype(logits.dtype), (lab, logp, keep)


def xent_ignore_minus_100_bwd(res: tuple, dy: np.ndarray) -> tuple[None, np.ndarray]:
    """No gradient from an ignored row."""
    lab, logp, keep = res
    _, g = N.sparse_softmax_cross_entropy_with_logits_bwd((lab, logp), dy)
    return None, g * keep[:, None]


def dense_xent_true_derivative_bwd(res: tuple, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``softmax(z) sum(p) - p``: the derivative of the loss, not TF's ``softmax(z) - p``."""
    p, logp = res
    dp, _ = L.softmax_cross_entropy_with_logits_bwd(res, dy)
    return dp, dy[:, None] * (np.exp(logp) * p.sum(-1, keepdims=True) - p)


def _dense_xent_composed(p: A.Tensor, z: A.Tensor) -> A.Tensor:
    """``-sum(p log_softmax(z))`` composed from the engine's primitives: reverse mode then gives
    the true derivative ``softmax(z) sum(p) - p``, not TF's fused ``softmax(z) - p``."""
    return -A.sum_(p * A._log_softmax(z), axis=-1)


def _scce_probs(
    per_row: Callable[[np.ndarray, int], tuple[Any, np.ndarray]],
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """SCCE whose probability branch is ``per_row(p_row, label) -> (loss, dloss/dp)``; logits
    and reductions as the loop base."""

    def fwd(
        y_true: np.ndarray,
        y_pred: np.ndarray,
        *,
        from_logits: bool = False,
        reduction: str = "sum_over_batch_size",
        sample_weight: Any = None,
    ) -> tuple[np.ndarray, tuple]:
        if from_logits:
            return L.sparse_categorical_crossentropy_fwd(
                y_true,
                y_pred,
                from_logits=True,
                reduction=reduction,
                sample_weight=sample_weight,
            )
        labels = y_true.reshape(y_pred.shape[:-1])
        L.check_labels(labels, y_pred.shape[-1])
        per = np.empty(len(labels), y_pred.dtype)
        grad = np.empty_like(y_pred)
        for r, y in enumerate(labels):
            per[r], grad[r] = per_row(y_pred[r], y)
        out, red = L.reduce(per, reduction, sample_weight)
        return out, (grad, red)

    return fwd, L.sparse_categorical_crossentropy_bwd


def _scce_no_clip(p: np.ndarray, y: int) -> tuple[Any, np.ndarray]:
    """``log sum p - log p_y`` without Keras' clip: inf at ``p_y = 0``."""
    with np.errstate(divide="ignore"):
        g = np.full_like(p, 1 / p.sum())
        g[y] -= 1 / p[y]
        return np.log(p.sum()) - np.log(p[y]), g


def _scce_nll(p: np.ndarray, y: int) -> tuple[Any, np.ndarray]:
    """``-log clip(p_y)``: the textbook NLL, without Keras' ``log sum q`` for rows off 1."""
    q, passes = L.clip_probs(p)
    g = np.zeros_like(p)
    g[y] = -1 / q[y] if passes[y] else 0
    return -np.log(q[y]), g


def _scce_straight_through(p: np.ndarray, y: int) -> tuple[Any, np.ndarray]:
    """Clipped forward, but the gradient passes through clipped entries."""
    q, _ = L.clip_probs(p)
    g = np.full_like(p, 1 / q.sum())
    g[y] -= 1 / q[y]
    return np.log(q.sum()) - np.log(q[y]), g


def scce_labels_clipped_fwd(
    y_true: np.ndarray, y_pred: np.ndarray, **static: Any
) -> tuple[np.ndarray, tuple]:
    """Labels clipped into ``[0, K)`` instead of refused: a finite loss for label K."""
    return V.sparse_categorical_crossentropy_fwd(
        np.clip(y_true, 0, y_pred.shape[-1] - 1), y_pred, **static
    )


def scce_sum_fwd(
    y_true: np.ndarray, y_pred: np.ndarray, *, reduction: str = "sum_over_batch_size", **static: Any
) -> tuple[np.ndarray, tuple]:
    """``sum_over_batch_size`` computed as a sum."""
    red = "sum" if reduction == "sum_over_batch_size" else reduction
    return V.sparse_categorical_crossentropy_fwd(y_true, y_pred, reduction=red, **static)


def _cce(
    *,
    renormalise: bool = True,
    clip: bool = True,
    off_classes: Callable[[int], int] = lambda k: k,
    mean_over_weights: bool = False,
) -> dict[str, Callable[..., Any]]:
    """The loop base's CCE with one decision changed: ``renormalise`` (divide rows by their sum),
    ``clip`` (to ``[1e-7, 1 - 1e-7]``), smoothing ``y (1 - ls) + ls / off_classes(K)``, and
    ``sum_over_batch_size`` as ``sum(w l) / sum(w)`` when ``mean_over_weights``."""

    def fwd(
        y_true: np.ndarray,
        y_pred: np.ndarray,
        *,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "sum_over_batch_size",
        sample_weight: Any = None,
    ) -> tuple[np.ndarray, tuple]:
        dt = y_pred.dtype.type
        k = y_pred.shape[-1]
        t = y_true * dt(1 - label_smoothing) + dt(label_smoothing / off_classes(k))
        logq, dpred = np.empty_like(y_pred), np.empty_like(y_pred)
        for r in range(len(y_pred)):
            if from_logits:
                logq[r] = L.log_softmax_row(y_pred[r])
                dpred[r] = np.exp(logq[r]) - t[r]
                continue
            total = y_pred[r].sum() if renormalise else dt(1)
            share = y_pred[r] / total
            q, passes = L.clip_probs(share) if clip else (share, np.ones(k, bool))
            with np.errstate(divide="ignore", invalid="ignore"):  # log(0) without the clip
                logq[r] = np.log(q)
                dq = np.where(passes, -t[r] / q, 0)
                dpred[r] = (dq - (dq * share).sum()) / total if renormalise else dq
        with np.errstate(invalid="ignore"):  # 0 * log(0)
            per = -(t * logq).sum(-1)
        if mean_over_weights and reduction == "sum_over_batch_size" and sample_weight is not None:
            w = sample_weight / sample_weight.sum()
            out, red = np.asarray((per * w).sum(), per.dtype), ("sum", w, per.shape)
        else:
            out, red = L.reduce(per, reduction, sample_weight)
        return out, (logq, dpred, 1 - label_smoothing, red)

    return {"categorical_crossentropy_fwd": fwd}


def mse_sum_fwd(
    y_true: np.ndarray, y_pred: np.ndarray, *, reduction: str = "sum_over_batch_size", **static: Any
) -> tuple[np.ndarray, tuple]:
    """``sum_over_batch_size`` computed as a sum."""
    red = "sum" if reduction == "sum_over_batch_size" else reduction
    return L.mean_squared_error_fwd(y_true, y_pred, reduction=red, **static)


def mse_unweighted_fwd(
    y_true: np.ndarray, y_pred: np.ndarray, *, sample_weight: Any = None, **static: Any
) -> tuple[np.ndarray, tuple]:
    """``sample_weight`` accepted and ignored."""
    return L.mean_squared_error_fwd(y_true, y_pred, **static)


def cce_no_dtrue_bwd(res: tuple, dy: np.ndarray) -> tuple[None, np.ndarray]:
    """A plain bug: ``None`` for ``y_true``, a float input whose gradient TF returns."""
    return None, L.categorical_crossentropy_bwd(res, dy)[1]


# --------------------------------------------------------------------------- metrics, data


def argmax_nan_wins(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``np.argmax``: NaN wins (as ``torch.argmax`` and ``jnp.argmax``)."""
    return np.argmax(x, axis=axis)


def argmax_ties_last(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """``>=`` in the scan: ties go to the last index."""
    xs = np.moveaxis(x, axis, -1)
    out = np.zeros(xs.shape[:-1], np.int64)
    for idx in np.ndindex(xs.shape[:-1]):
        best = -np.inf
        for j, v in enumerate(xs[idx]):
            if v >= best:
                best, out[idx] = v, j
    return out


def accuracy_no_squeeze(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``(N, 1)`` labels compared with ``(N,)`` predictions: an ``(N, N)`` broadcast."""
    cls = V.argmax(y_true) if y_true.shape == y_pred.shape else y_true
    return float(np.mean(cls == V.argmax(y_pred)))


def accuracy_np_argmax(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """``np.argmax`` of the scores: a NaN score wins."""
    cls = V.argmax(y_true) if y_true.shape == y_pred.shape else y_true.reshape(len(y_pred))
    return float(np.mean(cls == np.argmax(y_pred, -1)))


def one_hot_eye(
    indices: np.ndarray,
    depth: int,
    *,
    on_value: float = 1.0,
    off_value: float = 0.0,
    axis: int = -1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``np.eye(depth)[indices]``: -1 wraps to the last class, ``depth`` raises IndexError."""
    dt = np.dtype(dtype)
    out = np.where(np.eye(depth, dtype=bool)[indices], dt.type(on_value), dt.type(off_value))
    return np.moveaxis(out, -1, axis)


def one_hot_raises(indices: np.ndarray, depth: int, **static: Any) -> np.ndarray:
    """``torch.nn.functional.one_hot``: out-of-range indices refused."""
    if np.any((indices < 0) | (indices >= depth)):
        raise ValueError(f"one_hot: indices must be in [0, {depth}), got {indices.tolist()}")
    return L.one_hot(indices, depth, **static)


def one_hot_axis_ignored(
    indices: np.ndarray, depth: int, *, axis: int = -1, **static: Any
) -> np.ndarray:
    """``axis`` accepted and ignored: the new axis always last."""
    return L.one_hot(indices, depth, **static)


def kfold_sizes_extra_last(n: int, k: int) -> list[int]:
    """The ``n % k`` extra samples go to the last folds."""
    return [n // k + (1 if f >= k - n % k else 0) for f in range(k)]


def kfold_batches_sliced(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Plain slicing of a permutation: batches of ``batch_size`` and a short last one."""
    perm = rng.permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def kfold_batches_drop_remainder(
    n: int, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``int(n / batch_size)`` full batches: the remainder is dropped."""
    perm = rng.permutation(n)
    return [perm[i * batch_size : (i + 1) * batch_size] for i in range(n // batch_size)]


# --------------------------------------------------------------------------- optimizers


class SGDMomentumSign(L.SGD):
    """``x -= m`` with ``m = mu m - lr g``: momentum steps uphill."""

    def update(
        self, grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        if not self.momentum:
            return super().update(grads, state, params)
        new, state = super().update(grads, state, params)
        return [p - (q - p) for p, q in zip(params, new, strict=True)], state


def sgd_nesterov_old_m(
    learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False
) -> V.GradientTransformation:
    """Nesterov's look-ahead from the momentum before this step's update."""
    base = V.sgd(learning_rate, momentum, nesterov=False)

    def update(
        grads: list[np.ndarray], state: list[np.ndarray], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        new, vel = base.update(grads, state, params)
        if not nesterov:
            return new, vel
        out = []
        for g, m_old, p in zip(grads, state, params, strict=True):
            lr, mu = V._f32(learning_rate, p), V._f32(momentum, p)
            out.append(p + mu * m_old - lr * g)
        return out, vel

    return V.GradientTransformation(base.init, update)


def sgd_lr_float64(
    learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False
) -> L.SGD:
    """The learning rate and momentum kept as Python floats (Keras rounds them to float32)."""
    opt = L.SGD(learning_rate, momentum, nesterov)

    def update(
        grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        new_params, new_m = [], []
        for p, g, m in zip(params, grads, state["m"], strict=True):
            if not momentum:
                new_params.append(p - p.dtype.type(learning_rate) * g)
                new_m.append(m)
                continue
            m = p.dtype.type(momentum) * m - p.dtype.type(learning_rate) * g
            new_m.append(m)
            step = p.dtype.type(momentum) * m - p.dtype.type(learning_rate) * g
            new_params.append(p + step if nesterov else p + m)
        return new_params, {"m": new_m}

    opt.update = update  # type: ignore[method-assign]
    return opt


class AdamFresh(L.Adam):
    """Re-created every step (``Adam()`` inside the training loop): moments and ``t`` reset."""

    def update(
        self, grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        return super().update(grads, self.init(params), params)


def adam_textbook(
    learning_rate: float = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
) -> V.GradientTransformation:
    """The paper's form: ``lr m_hat / (sqrt(v_hat) + eps)``, epsilon after bias correction."""

    def init(params: list[np.ndarray]) -> tuple:
        z = [np.zeros_like(p) for p in params]
        return 0, z, z, z

    def update(
        grads: list[np.ndarray], state: tuple, params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], tuple]:
        t, ms, vs, vmaxs = state
        t += 1
        out, new = [], ([], [], [])
        for g, m, v, vmax, p in zip(grads, ms, vs, vmaxs, params, strict=True):
            dt = p.dtype.type
            m = m + (g - m) * dt(1 - beta_1)
            v = v + (g * g - v) * dt(1 - beta_2)
            vmax = np.maximum(vmax, v)
            m_hat = m / (1 - V._f32(beta_1, p) ** dt(t))
            v_hat = (vmax if amsgrad else v) / (1 - V._f32(beta_2, p) ** dt(t))
            out.append(p - V._f32(learning_rate, p) * m_hat / (np.sqrt(v_hat) + dt(epsilon)))
            for slot, val in zip(new, (m, v, vmax), strict=True):
                slot.append(val)
        return out, (t, *new)

    return V.GradientTransformation(init, update)


class AdamBetasFloat64(L.Adam):
    """The betas in the bias-correction powers kept as Python floats (Keras: float32)."""

    def update(
        self, grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        t = state["t"] + 1
        new, out = {"t": t, "m": [], "v": [], "vmax": []}, []
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            dt = p.dtype.type
            alpha = (
                L.as_keras_float32(self.lr, p.dtype)
                * np.sqrt(dt(1) - dt(self.b2) ** dt(t))
                / (dt(1) - dt(self.b1) ** dt(t))
            )
            m = state["m"][k] + (g - state["m"][k]) * dt(1 - self.b1)
            v = state["v"][k] + (g * g - state["v"][k]) * dt(1 - self.b2)
            vmax = np.maximum(state["vmax"][k], v)
            out.append(p - m * alpha / (np.sqrt(vmax if self.amsgrad else v) + dt(self.eps)))
            for key, val in (("m", m), ("v", v), ("vmax", vmax)):
                new[key].append(val)
        return out, new


class _RMSpropChanged(L.RMSprop):
    """The loop base's RMSprop with epsilon outside the square root (``eps_outside``) or the
    learning rate kept as a Python float (not ``round_lr``)."""

    eps_outside = False
    round_lr = True

    def update(
        self, grads: list[np.ndarray], state: dict[str, Any], params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        new: dict[str, Any] = {"v": [], "mg": [], "mom": []}
        out = []
        for k, (p, g) in enumerate(zip(params, grads, strict=True)):
            dt = p.dtype.type
            v = dt(self.rho) * state["v"][k] + dt(1 - self.rho) * g * g
            mg = dt(self.rho) * state["mg"][k] + dt(1 - self.rho) * g
            var = v - mg * mg if self.centered else v
            den = np.sqrt(var) + dt(self.eps) if self.eps_outside else np.sqrt(var + dt(self.eps))
            lr = L.as_keras_float32(self.lr, p.dtype) if self.round_lr else dt(self.lr)
            inc = lr * g / den
            mom = dt(self.momentum) * state["mom"][k] + inc
            out.append(p - mom if self.momentum > 0 else p - inc)
            for key, val in (("v", v), ("mg", mg), ("mom", mom)):
                new[key].append(val)
        return out, new


class RMSpropEpsOutside(_RMSpropChanged):
    """``g / (sqrt(v) + eps)`` (the TF1 / PyTorch placement) where Keras has ``sqrt(v + eps)``."""

    eps_outside = True


class RMSpropLrFloat64(_RMSpropChanged):
    """The learning rate kept as a Python float (Keras rounds it to float32)."""

    round_lr = False


class _Framework:
    """A ``torch.optim`` / optax style optimizer in nnref's pure contract: ``step(t, g, p, s)``
    returns the new parameter and writes the new slot values into ``s`` (a fresh dict)."""

    def __init__(self, step: Any, slots: tuple[str, ...]) -> None:
        self.step, self.slots = step, slots

    def init(self, params: list[np.ndarray]) -> tuple[int, list[dict[str, np.ndarray]]]:
        return 0, [{n: np.zeros_like(p) for n in self.slots} for p in params]

    def update(
        self, grads: list[np.ndarray], state: tuple, params: list[np.ndarray]
    ) -> tuple[list[np.ndarray], tuple]:
        t, slots = state[0] + 1, [dict(s) for s in state[1]]
        return [self.step(t, g, p, s) for g, p, s in zip(grads, params, slots, strict=True)], (
            t,
            slots,
        )


def sgd_framework(
    learning_rate: float, momentum: float = 0.0, nesterov: bool = False
) -> _Framework:
    """torch.optim.SGD / optax.sgd: the rates as given (not float32), ``buf = mu buf + g``."""

    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict) -> np.ndarray:
        if not momentum:
            return p - learning_rate * g
        s["buf"] = g.copy() if t == 1 else momentum * s["buf"] + g
        return p - learning_rate * (g + momentum * s["buf"] if nesterov else s["buf"])

    return _Framework(step, ("buf",))


def _adam_step(lr: float, b1: float, b2: float, eps: float, amsgrad: bool, corrected_max: bool):
    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict) -> np.ndarray:
        s["m"] = b1 * s["m"] + (1 - b1) * g
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        v_hat = s["v"] / (1 - b2**t)
        if amsgrad:  # PyTorch keeps the maximum of v, optax of v_hat
            s["vmax"] = np.maximum(s["vmax"], v_hat if corrected_max else s["v"])
            v_hat = s["vmax"] if corrected_max else s["vmax"] / (1 - b2**t)
        return p - lr * (s["m"] / (1 - b1**t)) / (np.sqrt(v_hat) + eps)

    return step


def adam_torch(
    learning_rate: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    amsgrad: bool = False,
) -> _Framework:
    """torch.optim.Adam: ``lr m_hat / (sqrt(v_hat) + eps)``, PyTorch's defaults."""
    return _Framework(
        _adam_step(learning_rate, beta_1, beta_2, epsilon, amsgrad, False), ("m", "v", "vmax")
    )


def adam_optax(
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    amsgrad: bool = False,
) -> _Framework:
    """optax.adam / amsgrad: no default learning rate, eps 1e-8, AMSGrad on the corrected v."""
    return _Framework(
        _adam_step(learning_rate, beta_1, beta_2, epsilon, amsgrad, True), ("m", "v", "vmax")
    )


def _rmsprop_step(lr: float, rho: float, momentum: float, eps: float, centered: bool, inside: bool):
    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict) -> np.ndarray:
        s["v"] = rho * s["v"] + (1 - rho) * g * g
        v = s["v"]
        if centered:
            s["mg"] = rho * s["mg"] + (1 - rho) * g
            v = v - s["mg"] * s["mg"]
        scaled = g / (np.sqrt(v + eps) if inside else np.sqrt(v) + eps)
        if momentum > 0:
            s["buf"] = momentum * s["buf"] + scaled
            scaled = s["buf"]
        return p - lr * scaled

    return step


def rmsprop_torch(
    learning_rate: float = 1e-2,
    rho: float = 0.99,
    momentum: float = 0.0,
    epsilon: float = 1e-8,
    centered: bool = False,
) -> _Framework:
    """torch.optim.RMSprop: epsilon outside the root, defaults lr 1e-2, alpha 0.99, eps 1e-8."""
    return _Framework(
        _rmsprop_step(learning_rate, rho, momentum, epsilon, centered, False), ("v", "mg", "buf")
    )


def rmsprop_optax(
    learning_rate: float,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-8,
    centered: bool = False,
) -> _Framework:
    """optax.rmsprop: epsilon inside the root as Keras, no default rate, decay 0.9, eps 1e-8."""
    return _Framework(
        _rmsprop_step(learning_rate, rho, momentum, epsilon, centered, True), ("v", "mg", "buf")
    )


# --------------------------------------------------------------------------- the variants


def _v(
    id: str,
    base: str,
    op: str,
    pin: str | None,
    conventions: tuple[str, ...] = (),
    **replace: Any,
) -> Variant:
    """A :class:`Variant`, positional for the table's sake."""
    extra = {k: replace.pop(k) for k in ("dtypes", "conforms_under") if k in replace}
    return Variant(id, base, op, replace, pin, conventions, **extra)


VARIANTS: tuple[Variant, ...] = (
    # conv2d
    _v(
        "conv-same-extra-pad-before",
        "vectorised",
        "conv2d",
        "same-pad-side",
        ("same-extra-pad-before",),
        conv2d_fwd=conv_pads_swapped_fwd,
    ),
    _v(
        "conv-torch-symmetric-pad",
        "nchw",
        "conv2d",
        "same-pad-side",
        ("same-symmetric-pad",),
        conv2d_fwd=conv_torch_port_fwd,
    ),
    _v(
        "conv-torch-strided-port",
        "nchw",
        "conv2d",
        "same-pad-side",
        ("same-torch-port",),
        conv2d_fwd=conv_torch_strided_port_fwd,
        conforms_under=("torch",),
    ),
    _v(
        "conv-flipped-kernel",
        "vectorised",
        "conv2d",
        "cross-correlation",
        ("flipped-kernel",),
        conv2d_fwd=conv_flipped_fwd,
        conv2d_bwd=conv_flipped_bwd,
    ),
    _v("conv-first-stride-only", "vectorised", "conv2d", "strides", conv2d_fwd=conv_one_stride_fwd),
    _v(
        "conv-same-pad-ignores-dilation",
        "vectorised",
        "conv2d",
        "dilation",
        conv2d_fwd=conv_same_ignores_dilation_fwd,
    ),
    _v(
        "conv-explicit-pads-symmetric",
        "vectorised",
        "conv2d",
        "explicit-pads",
        conv2d_fwd=conv_symmetric_explicit_fwd,
    ),
    _v(
        "conv-refuses-kernel-larger-than-input",
        "vectorised",
        "conv2d",
        "kernel-larger-than-input",
        conv2d_fwd=conv_refuses_large_kernel_fwd,
    ),
    _v("conv-dx-times-1.001", "vectorised", "conv2d", None, conv2d_bwd=conv_dx_scaled_bwd),
    # max_pool2d
    _v(
        "pool-same-extra-pad-before",
        "loops",
        "max_pool2d",
        "pool-same-pad-side",
        max_pool2d_fwd=pool_pads_swapped_fwd,
    ),
    _v(
        "pool-overlaps-assign",
        "loops",
        "max_pool2d",
        "pool-overlap-accumulates",
        max_pool2d_bwd=pool_assign_bwd,
    ),
    _v(
        "pool-pad-zeros",
        "loops",
        "max_pool2d",
        "pool-padding-never-wins",
        ("pool-pad-zero",),
        **_pool_variant(rule_tf, pad_zeros=True),
    ),
    _v(
        "pool-ties-last",
        "loops",
        "max_pool2d",
        "pool-tie-first-max",
        ("pool-ties-last-max",),
        **_pool_variant(rule_ties_last),
    ),
    _v(
        "pool-ties-split",
        "loops",
        "max_pool2d",
        "pool-tie-first-max",
        ("pool-ties-split",),
        **_pool_variant(rule_ties_split),
    ),
    _v(
        "pool-ties-all",
        "loops",
        "max_pool2d",
        "pool-tie-first-max",
        ("pool-ties-all",),
        **_pool_variant(rule_ties_all),
    ),
    _v(
        "pool-nan-wins",
        "loops",
        "max_pool2d",
        "pool-nan",
        ("pool-numpy-argmax",),
        **_pool_variant(rule_nan_wins),
    ),
    _v(
        "pool-nan-skipped-in-gradient",
        "loops",
        "max_pool2d",
        "pool-nan",
        **_pool_variant(rule_nan_skipped_in_gradient),
    ),
    _v(
        "pool-neg-inf-init",
        "loops",
        "max_pool2d",
        "pool-inf",
        ("pool-neg-inf-init",),
        **_pool_variant(rule_neg_inf_init),
    ),
    _v(
        "pool-jax-reduce-window",
        "loops",
        "max_pool2d",
        "pool-nan",
        ("pool-jax",),
        **_pool_variant(rule_xla),
        conforms_under=("jax",),
    ),
    _v(
        "pool-torch-cpu",
        "nchw",
        "max_pool2d",
        "pool-nan",
        ("pool-torch",),
        max_pool2d_fwd=pool_torch_fwd,
    ),
    _v(
        "pool-torch-user",
        "nchw",
        "max_pool2d",
        "pool-same-pad-side",
        ("pool-torch-same-port", "pool-torch"),
        max_pool2d_fwd=pool_torch_port_fwd,
        conforms_under=("torch",),
    ),
    # dense, bias_add
    _v(
        "dense-flattens-input",
        "vectorised",
        "dense",
        "dense-last-axis",
        dense_fwd=dense_flattens_fwd,
    ),
    _v("dense-dw-transposed", "loops", "dense", None, dense_bwd=dense_dw_transposed_bwd),
    _v(
        "dense-dw-transposed-if-square",
        "loops",
        "dense",
        "dense-dw-orientation",
        dense_bwd=dense_dw_transposed_if_square_bwd,
    ),
    _v("dense-db-missing", "vectorised", "dense", None, dense_bwd=dense_no_db_bwd),
    _v(
        "bias-db-over-batch-only",
        "loops",
        "bias_add",
        "bias-channels-last",
        bias_add_bwd=bias_db_over_batch_bwd,
    ),
    # activations
    _v(
        "relu-grad-1-at-0",
        "vectorised",
        "relu",
        "relu-grad-at-0",
        ("relu-grad-1-at-0",),
        relu_fwd=relu_ge_fwd,
    ),
    _v("relu-mask-product", "vectorised", "relu", "relu-at-inf", relu_fwd=relu_mask_product_fwd),
    _v(
        "relu-grad-1-at-nan",
        "vectorised",
        "relu",
        "relu-grad-at-nan",
        ("relu-grad-1-at-nan",),
        relu_fwd=relu_threshold_fwd,
        conforms_under=("torch",),
    ),
    _v(
        "relu-grad-half-at-0",
        "loops",
        "relu",
        "relu-grad-at-0",
        ("relu-grad-half-at-0",),
        relu_bwd=relu_half_bwd,
    ),
    _v(
        "relu-grad-float64",
        "loops",
        "relu",
        None,
        relu_bwd=relu_float64_grad_bwd,
        dtypes=("float32",),
    ),
    _v(
        "sigmoid-grad-from-input",
        "loops",
        "sigmoid",
        "sigmoid-grad-from-output",
        sigmoid_fwd=sigmoid_from_input_fwd,
        sigmoid_bwd=sigmoid_from_input_bwd,
    ),
    _v(
        "softmax-axis-ignored",
        "loops",
        "softmax",
        "softmax-axis",
        softmax_fwd=softmax_last_axis_fwd,
    ),
    _v(
        "softmax-unshifted",
        "vectorised",
        "softmax",
        "softmax-shift",
        softmax_fwd=softmax_unshifted_fwd,
    ),
    _v(
        "log-softmax-unshifted",
        "vectorised",
        "log_softmax",
        "softmax-shift",
        log_softmax_fwd=log_softmax_unshifted_fwd,
    ),
    _v(
        "softmax-bwd-into-saved-output",
        "vectorised",
        "softmax",
        None,
        softmax_bwd=softmax_bwd_into_saved_output,
    ),
    _v(
        "softmax-float64-output",
        "vectorised",
        "softmax",
        None,
        softmax_fwd=softmax_float64_fwd,
        dtypes=("float32",),
    ),
    # cross-entropy
    _v(
        "xent-unshifted",
        "vectorised",
        "sparse_softmax_cross_entropy_with_logits",
        "xent-shift",
        sparse_softmax_cross_entropy_with_logits_fwd=xent_unshifted_fwd,
    ),
    _v(
        "xent-recombined",
        "vectorised",
        "sparse_softmax_cross_entropy_with_logits",
        "xent-shift",
        ("xent-recombined",),
        sparse_softmax_cross_entropy_with_logits_fwd=xent_recombined_fwd,
        dtypes=("float32",),
    ),
    _v(
        "xent-negative-label-wraps",
        "vectorised",
        "sparse_softmax_cross_entropy_with_logits",
        "label-out-of-range",
        ("negative-label-wraps",),
        sparse_softmax_cross_entropy_with_logits_fwd=xent_wraps_fwd,
    ),
    _v(
        "xent-labels-optax",
        "vectorised",
        "sparse_softmax_cross_entropy_with_logits",
        "label-out-of-range",
        ("labels-optax",),
        sparse_softmax_cross_entropy_with_logits_fwd=xent_optax_fwd,
        conforms_under=("jax",),
    ),
    _v(
        "xent-ignore-minus-100",
        "nchw",
        "sparse_softmax_cross_entropy_with_logits",
        "label-minus-100",
        ("label-ignore-minus-100",),
        sparse_softmax_cross_entropy_with_logits_fwd=xent_ignore_minus_100_fwd,
        sparse_softmax_cross_entropy_with_logits_bwd=xent_ignore_minus_100_bwd,
        conforms_under=("torch",),
    ),
    _v(
        "dense-xent-true-derivative",
        "loops",
        "softmax_cross_entropy_with_logits",
        "dense-xent-grad",
        ("dense-xent-true-derivative",),
        softmax_cross_entropy_with_logits_bwd=dense_xent_true_derivative_bwd,
        conforms_under=("jax", "torch"),
    ),
    _v(
        "autodiff-dense-xent-composed",
        "autodiff",
        "softmax_cross_entropy_with_logits",
        "dense-xent-grad",
        ("dense-xent-true-derivative",),
        **dict(
            zip(
                (
                    "softmax_cross_entropy_with_logits_fwd",
                    "softmax_cross_entropy_with_logits_bwd",
                ),
                A.op(_dense_xent_composed),
                strict=True,
            )
        ),
        conforms_under=("jax", "torch"),
    ),
    _v(
        "scce-no-clip",
        "loops",
        "sparse_categorical_crossentropy",
        "keras-clip",
        ("scce-no-clip",),
        **dict(
            zip(
                ("sparse_categorical_crossentropy_fwd", "sparse_categorical_crossentropy_bwd"),
                _scce_probs(_scce_no_clip),
                strict=True,
            )
        ),
    ),
    _v(
        "scce-grad-through-clip",
        "loops",
        "sparse_categorical_crossentropy",
        "keras-clip",
        **dict(
            zip(
                ("sparse_categorical_crossentropy_fwd", "sparse_categorical_crossentropy_bwd"),
                _scce_probs(_scce_straight_through),
                strict=True,
            )
        ),
    ),
    _v(
        "scce-textbook-nll",
        "loops",
        "sparse_categorical_crossentropy",
        "keras-prob-loss",
        **dict(
            zip(
                ("sparse_categorical_crossentropy_fwd", "sparse_categorical_crossentropy_bwd"),
                _scce_probs(_scce_nll),
                strict=True,
            )
        ),
    ),
    _v(
        "scce-labels-clipped",
        "vectorised",
        "sparse_categorical_crossentropy",
        "label-out-of-range",
        sparse_categorical_crossentropy_fwd=scce_labels_clipped_fwd,
    ),
    _v(
        "scce-sum-not-mean",
        "vectorised",
        "sparse_categorical_crossentropy",
        "keras-reduction",
        sparse_categorical_crossentropy_fwd=scce_sum_fwd,
    ),
    _v(
        "cce-no-clip",
        "loops",
        "categorical_crossentropy",
        "keras-clip",
        ("cce-no-clip",),
        **_cce(clip=False),
    ),
    _v(
        "cce-no-renormalisation",
        "loops",
        "categorical_crossentropy",
        "keras-prob-loss",
        ("cce-no-renormalisation",),
        **_cce(renormalise=False),
    ),
    _v(
        "cce-smoothing-over-k-minus-1",
        "loops",
        "categorical_crossentropy",
        "label-smoothing",
        **_cce(off_classes=lambda k: k - 1),
    ),
    _v(
        "cce-mean-over-weights",
        "loops",
        "categorical_crossentropy",
        "keras-reduction",
        **_cce(mean_over_weights=True),
    ),
    _v(
        "cce-dtrue-missing",
        "loops",
        "categorical_crossentropy",
        None,
        categorical_crossentropy_bwd=cce_no_dtrue_bwd,
    ),
    _v(
        "mse-sum-not-mean",
        "loops",
        "mean_squared_error",
        "keras-reduction",
        mean_squared_error_fwd=mse_sum_fwd,
    ),
    _v(
        "mse-weights-ignored",
        "loops",
        "mean_squared_error",
        "keras-reduction",
        mean_squared_error_fwd=mse_unweighted_fwd,
    ),
    # metrics, data
    _v(
        "argmax-nan-wins",
        "vectorised",
        "argmax",
        "argmax-nan",
        ("argmax-nan-wins",),
        argmax=argmax_nan_wins,
        conforms_under=("torch", "jax"),
    ),
    _v(
        "argmax-ties-last",
        "loops",
        "argmax",
        "argmax-tie-first",
        ("argmax-ties-last",),
        argmax=argmax_ties_last,
    ),
    _v(
        "accuracy-no-squeeze",
        "vectorised",
        "accuracy",
        "accuracy-squeeze",
        accuracy=accuracy_no_squeeze,
    ),
    _v(
        "accuracy-nan-wins",
        "vectorised",
        "accuracy",
        "argmax-nan",
        ("accuracy-argmax-nan-wins",),
        accuracy=accuracy_np_argmax,
        conforms_under=("jax", "torch"),
    ),
    _v(
        "one-hot-eye-wraps",
        "vectorised",
        "one_hot",
        "one-hot-out-of-range",
        ("one-hot-negative-wraps",),
        one_hot=one_hot_eye,
    ),
    _v(
        "one-hot-raises",
        "loops",
        "one_hot",
        "one-hot-out-of-range",
        ("one-hot-out-of-range-raises",),
        one_hot=one_hot_raises,
        conforms_under=("torch",),
    ),
    _v("one-hot-axis-ignored", "loops", "one_hot", "one-hot-axis", one_hot=one_hot_axis_ignored),
    _v(
        "kfold-sizes-extra-last",
        "vectorised",
        "kfold_sizes",
        "kfold-sizes",
        kfold_sizes=kfold_sizes_extra_last,
    ),
    _v(
        "kfold-batches-sliced",
        "loops",
        "kfold_batches",
        "kfold-sizes",
        kfold_batches=kfold_batches_sliced,
    ),
    _v(
        "kfold-batches-drop-remainder",
        "loops",
        "kfold_batches",
        "kfold-sizes",
        kfold_batches=kfold_batches_drop_remainder,
    ),
    # optimizers
    _v("sgd-momentum-sign", "loops", "sgd", "sgd-momentum", sgd=SGDMomentumSign),
    _v("sgd-nesterov-old-momentum", "vectorised", "sgd", "sgd-momentum", sgd=sgd_nesterov_old_m),
    _v("sgd-lr-float64", "loops", "sgd", "lr-float32", sgd=sgd_lr_float64, dtypes=("float64",)),
    _v("adam-recreated-every-step", "loops", "adam", "adam-moments", adam=AdamFresh),
    _v(
        "adam-epsilon-after-bias-correction",
        "vectorised",
        "adam",
        "adam-epsilon",
        adam=adam_textbook,
    ),
    _v(
        "adam-betas-float64",
        "loops",
        "adam",
        "lr-float32",
        adam=AdamBetasFloat64,
        dtypes=("float64",),
    ),
    _v(
        "rmsprop-lr-float64",
        "loops",
        "rmsprop",
        "lr-float32",
        rmsprop=RMSpropLrFloat64,
    ),
    _v(
        "sgd-torch-or-optax",
        "vectorised",
        "sgd",
        "lr-float32",
        ("sgd-unrounded",),
        sgd=sgd_framework,
        dtypes=("float64",),
        conforms_under=("torch", "jax"),
    ),
    _v(
        "adam-torch",
        "vectorised",
        "adam",
        "optimizer-defaults",
        ("adam-torch",),
        adam=adam_torch,
        conforms_under=("torch",),
    ),
    _v(
        "adam-optax",
        "vectorised",
        "adam",
        "optimizer-defaults",
        ("adam-optax",),
        adam=adam_optax,
        conforms_under=("jax",),
    ),
    _v(
        "rmsprop-torch",
        "vectorised",
        "rmsprop",
        "optimizer-defaults",
        ("rmsprop-torch",),
        rmsprop=rmsprop_torch,
        conforms_under=("torch",),
    ),
    _v(
        "rmsprop-optax",
        "vectorised",
        "rmsprop",
        "optimizer-defaults",
        ("rmsprop-optax",),
        rmsprop=rmsprop_optax,
        conforms_under=("jax",),
    ),
    _v(
        "rmsprop-epsilon-outside-sqrt",
        "loops",
        "rmsprop",
        "rmsprop-epsilon",
        rmsprop=RMSpropEpsOutside,
    ),
)
