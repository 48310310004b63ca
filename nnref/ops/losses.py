"""Softmax cross-entropy (TF ops and Keras losses) and mean squared error.

TF ops (per-sample losses, no reduction): ``sparse_softmax_cross_entropy_with_logits`` and
``softmax_cross_entropy_with_logits``. Keras losses (what ``keras.losses.*`` classes compute, with
their ``reduction``): ``sparse_categorical_crossentropy``, ``categorical_crossentropy``,
``mean_squared_error``.

All take ``(labels, predictions)`` positionally in the TF/Keras order; the VJP returns one entry
per positional input, ``None`` for integer labels.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from nnref._validate import (
    as_float,
    as_int,
    check_cotangent,
    check_labels_in_range,
    check_residuals,
    require_min_rank,
    require_nonempty,
    require_same_shape,
    same_dtype,
    shape_str,
)

Reduction = Literal["sum_over_batch_size", "sum", "none", "mean", "mean_with_sample_weight"] | None
#: Keras 3's ``reduction`` values (``keras.src.losses.loss.standardize_reduction``): ``None``
#: is ``"none"``, ``"mean"`` is ``"sum_over_batch_size"``.
REDUCTIONS: tuple[str | None, ...] = (
    "sum_over_batch_size",
    "sum",
    "none",
    None,
    "mean",
    "mean_with_sample_weight",
)

#: ``keras.config.epsilon()``: the clip used by the probability (``from_logits=False``) losses.
EPSILON = 1e-7


# --------------------------------------------------------------------------- helpers


def _logits(op: str, name: str, z: Any) -> np.ndarray:
    z = as_float(op, name, z)
    require_min_rank(op, name, z, 1)
    require_nonempty(op, name, z)
    return z


def _sparse_labels(
    op: str,
    labels: Any,
    logits: np.ndarray,
    *,
    squeeze: bool,
    names: tuple[str, str] = ("labels", "logits"),
) -> np.ndarray:
    lname, zname = names
    labels = as_int(op, lname, labels)
    batch_shape = logits.shape[:-1]
    if squeeze and labels.shape == (*batch_shape, 1) and labels.shape != batch_shape:
        labels = labels[..., 0]  # Keras squeezes (N, 1) labels; tf.nn does not
    if labels.shape != batch_shape:
        raise ValueError(
            f"{op}: '{lname}' {shape_str(labels)} must have the shape of '{zname}' "
            f"{shape_str(logits)} without its last (class) axis, i.e. {tuple(batch_shape)}"
        )
    check_labels_in_range(op, lname, labels, logits.shape[-1])
    return labels


def _log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _xent_from_log_softmax(p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """``sum(p * -log_q)`` as TF's kernel, ``sum(p * (log sum exp(s) - s))``: negating the
    terms, not the sum, keeps a zero loss +0.0 (``-sum`` gives -0.0 where every term is -0)."""
    return (p * -log_q).sum(axis=-1)


def _take_label(a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``a[..., labels]``, shaped like ``labels``, by fancy indexing (``take_along_axis``
    builds its index arrays in Python: ~10 us a call)."""
    a2 = a.reshape(-1, a.shape[-1])
    return a2[np.arange(len(a2)), labels.reshape(-1)].reshape(labels.shape)


def _minus_onehot_times(p: np.ndarray, labels: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``(p - onehot(labels)) g[..., None]`` in one pass, without the one-hot matrix: ``p g``
    everywhere (``p - 0`` is ``p``), then ``(p - 1) g`` at the labels."""
    k = p.shape[-1]
    p2, g1 = p.reshape(-1, k), g.reshape(-1)
    out = np.multiply(p2, g1[:, None])
    rows, cols = np.arange(len(g1)), labels.reshape(-1)
    out[rows, cols] = (p2[rows, cols] - p2.dtype.type(1)) * g1
    return out.reshape(p.shape)


class _Reduce(NamedTuple):
    weights: np.ndarray | None  # broadcast to out_shape
    out_shape: tuple[int, ...]  # the weighted per-sample losses (unreduced: the output)
    per_shape: tuple[int, ...]  # the op's own per-sample losses (out_shape's size)
    reduced: bool  # False: the weighted losses are the output ("none", or 0-d losses)
    divisor: np.ndarray | None  # the sum is divided by it, 0 giving 0 (divide_no_nan); None: not


def _same_rank(per: np.ndarray, sw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ``squeeze_or_expand_to_same_rank(losses, sample_weight)``: when the ranks differ
    by one and the longer has a last axis of 1, the rank-1 one gains that axis, else the longer
    loses it (per-sample losses (N,) with weights (N, 1) are (N, 1) losses, as Keras)."""
    if per.ndim == sw.ndim + 1 and per.shape[-1] == 1:
        return (per, sw[..., None]) if sw.ndim == 1 else (per[..., 0], sw)
    if sw.ndim == per.ndim + 1 and sw.shape[-1] == 1:
        return (per[..., None], sw) if per.ndim == 1 else (per, sw[..., 0])
    return per, sw


def _reduce(
    op: str, per: np.ndarray, reduction: str | None, sample_weight: Any
) -> tuple[np.ndarray, _Reduce]:
    """Keras 3's ``reduce_weighted_values`` (``keras/src/losses/loss.py``) without masks."""
    if reduction is None:
        reduction = "none"
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:  # an array: no bare error
        raise ValueError(f"{op}: 'reduction' must be one of {REDUCTIONS}, got {reduction!r}")
    w = sw = None
    own = per.shape
    if sample_weight is not None:
        try:
            sw = np.asarray(sample_weight)
        except ValueError:  # a ragged sequence: NumPy's message names neither op nor argument
            raise ValueError(
                f"{op}: 'sample_weight' must be a rectangular array, got a ragged "
                f"{type(sample_weight).__name__} (per-sample loss shape {shape_str(per)})"
            ) from None
        if sw.dtype.kind not in "iuf":
            raise TypeError(f"{op}: 'sample_weight' must be real numbers, got dtype {sw.dtype}")
        # Weights are not differentiated; like Keras, they take the loss's dtype.
        sw = sw.astype(per.dtype, copy=False)
        given = shape_str(sw)
        per, sw = _same_rank(per, sw)
        try:
            w = np.broadcast_to(sw, per.shape)
        except ValueError:
            raise ValueError(
                f"{op}: 'sample_weight' {given} does not broadcast to the per-sample "
                f"loss shape {shape_str(per)}"
            ) from None
        per = per * w
    t = per.dtype.type
    divisor = None
    # Keras' reduce_values returns 0-d weighted losses unreduced (also (0,) ones, but empty
    # batches are refused before): a scalar weight w on one loss l gives w l under every
    # reduction, not w l / w under "mean_with_sample_weight".
    if reduction == "none" or per.shape == ():
        return np.asarray(per), _Reduce(w, per.shape, own, False, None)
    total = per.sum()
    if reduction == "mean_with_sample_weight" and sw is not None:
        # The sum of the rank-aligned weights, not of their broadcast: weights (N, 1) on
        # losses (N, T) divide by sum(w), not T sum(w) (as Keras).
        divisor = sw.sum(dtype=per.dtype)
    elif reduction != "sum":  # sum_over_batch_size, mean: the number of losses, not sum(w)
        divisor = t(per.size)
    if divisor is None:
        out = total
    elif divisor == 0:  # ops.divide_no_nan: 0 even for an inf or NaN sum
        out = t(0)
    else:
        out = total / divisor
    return np.asarray(out, dtype=per.dtype), _Reduce(w, per.shape, own, True, divisor)


def _per_sample_cotangent(op: str, red: _Reduce, dy: Any, dtype: np.dtype) -> np.ndarray:
    """Turn the cotangent of the reduced loss into one for each per-sample loss."""
    if not red.reduced:
        g = check_cotangent(op, dy, red.out_shape, dtype)
    else:
        g = check_cotangent(op, dy, (), dtype)
        if red.divisor is not None:
            # TF's DivNoNan gradient: div_no_nan(g, divisor), 0 where the divisor is 0.
            g = g / red.divisor if red.divisor != 0 else np.zeros_like(g)
        g = np.broadcast_to(g, red.out_shape)
    return (g if red.weights is None else g * red.weights).reshape(red.per_shape)


# --------------------------------------------------------------------------- TF ops


class SparseXentResiduals(NamedTuple):
    probs: np.ndarray  # softmax(logits)
    labels: np.ndarray


class XentResiduals(NamedTuple):
    probs: np.ndarray
    log_probs: np.ndarray
    labels: np.ndarray


def sparse_softmax_cross_entropy_with_logits_fwd(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, SparseXentResiduals]:
    """Per-sample softmax cross-entropy with integer class labels.

    Parameters
    ----------
    labels : int array, shape (...)
        Class indices in ``[0, K)``; out-of-range values raise ``ValueError`` (as TF on CPU).
    logits : array, shape (..., K)

    Returns
    -------
    loss : array, shape (...)

    Notes
    -----
    TF's shifted form: ``m = max z``, ``loss = log(sum exp(z - m)) - (z_y - m)``; it is exact
    where the unshifted ``(m + log sum) - z_y`` loses bits (``[1e4, 1e4, -1e4]`` gives ln 2).
    VJP: ``dlogits = g * (softmax(z) - onehot(y))``; labels get ``None``.

    See Also
    --------
    tf.nn.sparse_softmax_cross_entropy_with_logits
    """
    op = "sparse_softmax_cross_entropy_with_logits"
    logits = _logits(op, "logits", logits)
    labels = _sparse_labels(op, labels, logits, squeeze=False)
    s = logits - logits.max(axis=-1, keepdims=True)
    s_label = _take_label(s, labels)  # read before s becomes exp(s) in place
    e = np.exp(s, out=s)
    sum_e = e.sum(axis=-1, keepdims=True)
    loss = np.log(sum_e)[..., 0]
    loss -= s_label
    e /= sum_e
    return loss, SparseXentResiduals(e, labels)


def sparse_softmax_cross_entropy_with_logits_bwd(
    res: SparseXentResiduals, dy: np.ndarray
) -> tuple[None, np.ndarray]:
    """VJP: returns ``(None, dlogits)``."""
    op = "sparse_softmax_cross_entropy_with_logits"
    check_residuals(f"{op}_bwd", res, SparseXentResiduals, f"{op}_fwd")
    g = check_cotangent(op, dy, res.labels.shape, res.probs.dtype)
    return None, _minus_onehot_times(res.probs, res.labels, g)


def sparse_softmax_cross_entropy_with_logits(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Forward value of :func:`sparse_softmax_cross_entropy_with_logits_fwd`."""
    return sparse_softmax_cross_entropy_with_logits_fwd(labels, logits)[0]


def softmax_cross_entropy_with_logits_fwd(
    labels: np.ndarray, logits: np.ndarray
) -> tuple[np.ndarray, XentResiduals]:
    """Per-sample softmax cross-entropy with dense (probability) labels.

    Parameters
    ----------
    labels : array, shape (..., K)
        Rows need not sum to 1; same dtype as ``logits``.
    logits : array, shape (..., K)

    Notes
    -----
    ``loss = sum(p * -log_softmax(z))`` (a zero loss is +0.0, as TF's). VJP exactly as TF: ``dlogits = g * (softmax(z) - p)``
    (not ``softmax(z) * sum(p) - p``, which differs when rows of ``p`` do not sum to 1) and
    ``dlabels = -g * log_softmax(z)``.

    See Also
    --------
    tf.nn.softmax_cross_entropy_with_logits
    """
    op = "softmax_cross_entropy_with_logits"
    logits = _logits(op, "logits", logits)
    labels = as_float(op, "labels", labels)
    same_dtype(op, labels=labels, logits=logits)
    require_same_shape(op, "labels", labels, "logits", logits)
    log_p = _log_softmax(logits)
    loss = _xent_from_log_softmax(labels, log_p)
    return loss, XentResiduals(np.exp(log_p), log_p, labels)


def softmax_cross_entropy_with_logits_bwd(
    res: XentResiduals, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """VJP: returns ``(dlabels, dlogits)``."""
    op = "softmax_cross_entropy_with_logits"
    check_residuals(f"{op}_bwd", res, XentResiduals, f"{op}_fwd")
    g = check_cotangent(op, dy, res.labels.shape[:-1], res.probs.dtype)[..., None]
    return -g * res.log_probs, g * (res.probs - res.labels)


def softmax_cross_entropy_with_logits(labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Forward value of :func:`softmax_cross_entropy_with_logits_fwd`."""
    return softmax_cross_entropy_with_logits_fwd(labels, logits)[0]


# --------------------------------------------------------------------------- Keras losses


class SparseCCEResiduals(NamedTuple):
    labels: np.ndarray
    from_logits: bool
    probs: np.ndarray  # softmax of the logits (from_logits) or q / sum(q) of the clipped q
    clipped: np.ndarray | None  # q = clip(p, eps, 1-eps) (probability input only)
    passes: np.ndarray | None  # where the clip passes the gradient (eps <= p <= 1-eps)
    red: _Reduce


class CCEResiduals(NamedTuple):
    smoothed: np.ndarray  # labels after label smoothing
    smooth_scale: float  # d smoothed / d labels = 1 - label_smoothing
    from_logits: bool
    probs: np.ndarray  # softmax(logits), or p / sum(p) before the clip
    log_q: np.ndarray  # log_softmax(logits), or log(clip(p / sum p))
    total: np.ndarray | None  # sum(p) (probability input only)
    passes: np.ndarray | None
    red: _Reduce


def _clip_window(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eps = p.dtype.type(EPSILON)
    hi = p.dtype.type(1) - eps
    # tf.clip_by_value passes the gradient where min <= p <= max (ties included).
    return np.clip(p, eps, hi), (p >= eps) & (p <= hi)


def sparse_categorical_crossentropy_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    reduction: Reduction = "sum_over_batch_size",
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, SparseCCEResiduals]:
    """``keras.losses.SparseCategoricalCrossentropy`` as a function.

    Parameters
    ----------
    y_true : int array, shape (...) or (..., 1)
        Class indices (a trailing axis of 1 is squeezed, as Keras does).
    y_pred : array, shape (..., K)
        Logits (``from_logits=True``) or probabilities.
    from_logits, reduction, sample_weight
        As the Keras class. ``reduction`` is ``"sum_over_batch_size"`` or its alias ``"mean"``
        (``sum(w * l) / n`` with ``n`` the number of per-sample losses, zero weights
        included), ``"sum"``, ``"none"`` or ``None``, or ``"mean_with_sample_weight"``
        (``sum(w * l) / sum(w)``, ``w`` as aligned below before broadcasting; ``/ n``
        without weights; a zero divisor gives a loss and gradient of 0, Keras'
        ``divide_no_nan``). Weights whose rank differs from the losses' by one are aligned
        as Keras' ``squeeze_or_expand_to_same_rank``. A 0-d weighted loss (``y_pred`` of
        shape ``(K,)``) is returned unreduced, as Keras: ``w * l`` under every reduction.

    Notes
    -----
    ``from_logits=True`` is :func:`sparse_softmax_cross_entropy_with_logits`. With
    probabilities Keras clips *without* renormalising first, then applies the sparse
    cross-entropy to ``log q``: ``q = clip(p, 1e-7, 1 - 1e-7)``,
    ``loss = log(sum q) - log q_y``. Gradients do not pass through clipped entries.

    Differences from Keras: integer labels are required (Keras casts float labels);
    ``ignore_class`` is not offered; Keras' shortcut that reads the logits hidden on a
    ``softmax`` output (``_keras_logits``) does not exist for NumPy arrays.

    See Also
    --------
    keras.losses.SparseCategoricalCrossentropy, keras.losses.sparse_categorical_crossentropy
    """
    op = "sparse_categorical_crossentropy"
    y_pred = _logits(op, "y_pred", y_pred)
    labels = _sparse_labels(op, y_true, y_pred, squeeze=True, names=("y_true", "y_pred"))
    if from_logits:
        per, res = sparse_softmax_cross_entropy_with_logits_fwd(labels, y_pred)
        probs, clipped, passes = res.probs, None, None
    else:
        clipped, passes = _clip_window(y_pred)
        total = clipped.sum(axis=-1, keepdims=True)
        per = np.log(total)[..., 0] - np.log(_take_label(clipped, labels))
        probs = clipped / total
    out, red = _reduce(op, per, reduction, sample_weight)
    return out, SparseCCEResiduals(labels, from_logits, probs, clipped, passes, red)


def sparse_categorical_crossentropy_bwd(
    res: SparseCCEResiduals, dy: np.ndarray
) -> tuple[None, np.ndarray]:
    """VJP: returns ``(None, dy_pred)``."""
    op = "sparse_categorical_crossentropy"
    check_residuals(f"{op}_bwd", res, SparseCCEResiduals, f"{op}_fwd")
    g = _per_sample_cotangent(op, res.red, dy, res.probs.dtype)
    dz = _minus_onehot_times(res.probs, res.labels, g)
    if res.from_logits:
        return None, dz
    return None, np.where(res.passes, dz / res.clipped, res.probs.dtype.type(0))


def sparse_categorical_crossentropy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    reduction: Reduction = "sum_over_batch_size",
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Forward value of :func:`sparse_categorical_crossentropy_fwd`."""
    return sparse_categorical_crossentropy_fwd(
        y_true, y_pred, from_logits=from_logits, reduction=reduction, sample_weight=sample_weight
    )[0]


def categorical_crossentropy_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    reduction: Reduction = "sum_over_batch_size",
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, CCEResiduals]:
    """``keras.losses.CategoricalCrossentropy`` as a function.

    Parameters
    ----------
    y_true : array, shape (..., K)
        Target distributions (one-hot or soft), same dtype as ``y_pred``.
    y_pred : array, shape (..., K)
        Logits (``from_logits=True``) or probabilities.
    label_smoothing : float in [0, 1]
        ``y <- y * (1 - ls) + ls / K``.
    from_logits, reduction, sample_weight
        As :func:`sparse_categorical_crossentropy_fwd` (Keras 3's reductions, including
        ``None``, ``"mean"`` and ``"mean_with_sample_weight"``).

    Notes
    -----
    ``from_logits=True``: ``loss = -sum(y * log_softmax(z))`` (TF's op). With probabilities
    Keras renormalises and then clips: ``q = clip(p / sum p, 1e-7, 1 - 1e-7)``,
    ``loss = -sum(y * log q)``; the gradient flows through the normalisation and not through
    clipped entries.

    See Also
    --------
    keras.losses.CategoricalCrossentropy, keras.losses.categorical_crossentropy
    """
    op = "categorical_crossentropy"
    y_pred = _logits(op, "y_pred", y_pred)
    y = as_float(op, "y_true", y_true)
    same_dtype(op, y_true=y, y_pred=y_pred)
    require_same_shape(op, "y_true", y, "y_pred", y_pred)
    if isinstance(label_smoothing, bool) or not isinstance(
        label_smoothing, int | float | np.integer | np.floating
    ):  # float() would read "0.1" and True
        raise TypeError(
            f"{op}: 'label_smoothing' must be a float in [0, 1], got {label_smoothing!r}"
        )
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise ValueError(f"{op}: 'label_smoothing' must be in [0, 1], got {label_smoothing!r}")
    if ls:
        t = y_pred.dtype.type
        y = y * t(1 - ls) + t(ls / y_pred.shape[-1])
    if from_logits:
        log_q = _log_softmax(y_pred)
        probs, total, passes = np.exp(log_q), None, None
        per = _xent_from_log_softmax(y, log_q)  # tf.nn.softmax_cross_entropy_with_logits
    else:
        total = y_pred.sum(axis=-1, keepdims=True)
        probs = y_pred / total
        clipped, passes = _clip_window(probs)
        log_q = np.log(clipped)
        per = -(y * log_q).sum(axis=-1)  # Keras' -reduce_sum(target * log(output))
    out, red = _reduce(op, per, reduction, sample_weight)
    return out, CCEResiduals(y, 1.0 - ls, from_logits, probs, log_q, total, passes, red)


def categorical_crossentropy_bwd(
    res: CCEResiduals, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """VJP: returns ``(dy_true, dy_pred)``."""
    op = "categorical_crossentropy"
    check_residuals(f"{op}_bwd", res, CCEResiduals, f"{op}_fwd")
    dtype = res.probs.dtype
    g = _per_sample_cotangent(op, res.red, dy, dtype)[..., None]
    d_true = -g * res.log_q * dtype.type(res.smooth_scale)
    if res.from_logits:
        return d_true, g * (res.probs - res.smoothed)
    dq = np.where(res.passes, -g * res.smoothed / np.exp(res.log_q), dtype.type(0))
    # Through p / sum(p): d p_j = (dq_j - sum_k dq_k p_k / S) / S.
    d_pred = (dq - (dq * res.probs).sum(axis=-1, keepdims=True)) / res.total
    return d_true, d_pred


def categorical_crossentropy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    reduction: Reduction = "sum_over_batch_size",
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Forward value of :func:`categorical_crossentropy_fwd`."""
    return categorical_crossentropy_fwd(
        y_true,
        y_pred,
        from_logits=from_logits,
        label_smoothing=label_smoothing,
        reduction=reduction,
        sample_weight=sample_weight,
    )[0]


class MSEResiduals(NamedTuple):
    diff: np.ndarray  # y_true - y_pred (Keras' order: it decides the sign of zero gradients)
    red: _Reduce


def mean_squared_error_fwd(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    reduction: Reduction = "sum_over_batch_size",
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, MSEResiduals]:
    """``keras.losses.MeanSquaredError``: ``mean((y_pred - y_true)**2)`` over the last axis.

    Parameters
    ----------
    y_true, y_pred : array, shape (..., D), same shape and dtype
    reduction, sample_weight
        As :func:`sparse_categorical_crossentropy_fwd` (Keras 3's reductions, including
        ``None``, ``"mean"`` and ``"mean_with_sample_weight"``).

    Notes
    -----
    Per-sample ``l = mean_d (p - t)^2`` (``reduction="none"`` is the Keras function
    ``keras.losses.mean_squared_error``). VJP as TF differentiates Keras'
    ``mean(square(t - p))``: ``dt = (g / D) * ((t - p) * 2)``, ``dp = -dt`` (so a zero gradient
    has TF's sign and the rounding is TF's).

    See Also
    --------
    keras.losses.MeanSquaredError, keras.losses.mean_squared_error
    """
    op = "mean_squared_error"
    t, p = as_float(op, "y_true", y_true), as_float(op, "y_pred", y_pred)
    same_dtype(op, y_true=t, y_pred=p)
    require_min_rank(op, "y_pred", p, 1)
    require_nonempty(op, "y_pred", p)
    require_same_shape(op, "y_true", t, "y_pred", p)
    diff = t - p
    per = np.mean(diff * diff, axis=-1)
    out, red = _reduce(op, per, reduction, sample_weight)
    return out, MSEResiduals(diff, red)


def mean_squared_error_bwd(res: MSEResiduals, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """VJP: returns ``(dy_true, dy_pred)``."""
    check_residuals("mean_squared_error_bwd", res, MSEResiduals, "mean_squared_error_fwd")
    dtype = res.diff.dtype
    g = _per_sample_cotangent("mean_squared_error", res.red, dy, dtype)[..., None]
    # TF's MeanGrad divides by D, SquareGrad multiplies by 2x, SubGrad negates for y_pred.
    d_true = (g / dtype.type(res.diff.shape[-1])) * (res.diff * dtype.type(2))
    return d_true, -d_true


def mean_squared_error(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    reduction: Reduction = "sum_over_batch_size",
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Forward value of :func:`mean_squared_error_fwd`."""
    return mean_squared_error_fwd(y_true, y_pred, reduction=reduction, sample_weight=sample_weight)[
        0
    ]
