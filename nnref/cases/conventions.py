"""Known conventions as data: what each semantic pin can mean, and the profiles that choose.

A :class:`Convention` is one known way to decide a pin other than TF's (PyTorch's symmetric
padding for a strided SAME conv, NaN winning a max-pool window, label -100 ignored, Adam's
epsilon after bias correction, ...), with a reference that computes what an implementation
following it returns. A :class:`Profile` says which convention each pin is expected to follow
(``tf``: TF's everywhere). When a check fails, every convention of the op is tried on the same
inputs, so the report can say "matches PyTorch's symmetric padding, not TF SAME" instead of
only "wrong".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnref.cases import PINS, TABLES, _framework_optim, reference
from nnref.ops._windows import normalize_padding, plan_axis, spatial_pair


@dataclass(frozen=True)
class Expected:
    """What an implementation following a convention returns on one input.

    ``y``: the forward value (for optimizers, the trajectory); ``grads``: the VJP at the
    cotangent (None where the convention's reference has no VJP: forward only); ``raises``:
    the input is refused.
    """

    y: Any = None
    grads: Any = None
    raises: bool = False


Expect = Callable[[tuple[Any, ...], dict[str, Any], Any], Expected]


@dataclass(frozen=True)
class Convention:
    id: str
    op: str
    #: The case pins (``nnref.cases.PINS``) it decides otherwise than TF.
    pins: tuple[str, ...]
    #: How the report names it: "<says>" completes "matches ...".
    says: str
    #: Which inputs it changes the result of (others: same as TF).
    applies: Callable[[tuple[Any, ...], dict[str, Any]], bool]
    expect: Expect
    #: Frameworks that follow it (their profile chooses it), each measured by a test in
    #: ``tests/test_framework_semantics.py`` ...
    followed_by: tuple[str, ...] = ()
    #: ... under this id of the measured matrix :data:`nnref.oracles.semantics.PINS`.
    semantics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    #: (op, pin) -> the convention id expected there (unlisted: TF's convention). Keyed by op
    #: too: one pin can be decided by several ops (``argmax-nan`` by argmax and accuracy,
    #: ``lr-float32`` by every optimizer), each with its own convention.
    choose: dict[tuple[str, str], str] = field(default_factory=dict)


# --------------------------------------------------------------------------- TF (nnref)


def tf_expect(op: str) -> Expect:
    """nnref's own result (TF's convention, verified against TF in nnref's tests)."""
    ref = reference()
    if TABLES[op].kind == "optimizer":
        from nnref.cases.optim import trajectory

        return lambda args, static, dy: Expected(trajectory(ref[op](**static), *args))

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        # Only the forward's refusal is TF refusing the input: a cotangent shaped like another
        # convention's output (PyTorch's SAME port) makes nnref's backward raise too.
        try:
            if op + "_fwd" not in ref:
                return Expected(ref[op](*args, **static))
            y, res = ref[op + "_fwd"](*args, **static)
        except ValueError:
            return Expected(raises=True)
        if dy is None or np.shape(dy) != np.shape(y):
            return Expected(y)
        return Expected(y, ref[op + "_bwd"](res, dy))

    return expect


# --------------------------------------------------------------------------- conv2d


def _conv_with_pads(pads: Callable[[int, int, int, int], tuple[int, int]]) -> Expect:
    """conv2d with explicit pads ``pads(n, eff_k, s, tf_total)`` per axis instead of SAME."""
    ref = reference()

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        x, w = args
        s = spatial_pair("conv2d", "strides", static.get("strides", 1))
        d = spatial_pair("conv2d", "dilations", static.get("dilations", 1))
        rows = [[0, 0]]
        for ax in (0, 1):
            n, eff = x.shape[1 + ax], (w.shape[ax] - 1) * d[ax] + 1
            tf_plan = plan_axis(n, w.shape[ax], s[ax], d[ax], "SAME", ax)
            rows.append(list(pads(n, eff, s[ax], tf_plan.before + tf_plan.after)))
        st = {**static, "padding": [*rows, [0, 0]]}
        y, res = ref["conv2d_fwd"](x, w, **st)
        if dy is None or np.shape(dy) != y.shape:
            return Expected(y)
        return Expected(y, ref["conv2d_bwd"](res, dy))

    return expect


def _flipped_kernel(args: tuple, static: dict, dy: Any) -> Expected:
    ref = reference()
    x, w = args
    y, res = ref["conv2d_fwd"](x, w[::-1, ::-1].copy(), **static)
    if dy is None:
        return Expected(y)
    dx, dw = ref["conv2d_bwd"](res, dy)
    return Expected(y, (dx, dw[::-1, ::-1].copy()))


def _same(args: tuple, static: dict) -> bool:
    return normalize_padding("conv2d", static.get("padding", "VALID")) == "SAME"


# --------------------------------------------------------------------------- max_pool2d

#: How a pool scans a window in row-major order: ``keep`` (the running choice's value) is
#: replaced by the next value ``v`` when the rule says so. TF: ``v > keep`` (NaN never replaces,
#: a leading NaN stays); PyTorch's CPU kernel: ``v > keep or isnan(v)``; XLA's select for JAX's
#: VJP: ``not keep >= v``; the last of tied maxima: ``v >= keep``.
_SCAN: dict[str, Callable[[float, float], bool]] = {
    "tf": lambda keep, v: v > keep,
    "torch": lambda keep, v: v > keep or v != v,
    "jax": lambda keep, v: not keep >= v,
    "last": lambda keep, v: v >= keep,
    # np.argmax over the window: the first NaN, else the first maximum.
    "numpy": lambda keep, v: keep == keep and (v > keep or v != v),
}


def _pool_axis(n: int, k: int, s: int, padding: Any, port: bool, axis: int) -> tuple[int, int]:
    """``(pad before, output size)`` of one axis: TF's, or with ``port`` the usual PyTorch port
    of ``SAME``, a symmetric ``padding=(k - 1) // 2`` in floor mode."""
    if port and padding == "SAME":
        before = (k - 1) // 2
        return before, (n + 2 * before - k) // s + 1
    plan = plan_axis(n, k, s, 1, padding, axis)
    return plan.before, plan.out


def _pool_rule(
    scan: str = "tf",
    *,
    nan_wins: bool = False,
    init: str = "lowest",
    pad: float | None = None,
    ties: str = "one",
    port: bool = False,
) -> Expect:
    """A loop max-pool with the forward value and gradient routing of a convention.

    ``scan``: the routing rule (:data:`_SCAN`); ``nan_wins``: a NaN makes the output NaN;
    ``init``: the running maximum starts at the dtype's ``lowest`` finite value (TF) or ``-inf``;
    ``pad``: padded cells take part with this value (None: skipped, TF); ``ties``: ``one``
    (the scan's choice), ``split`` (tied maxima share the gradient) or ``all`` (each gets it);
    ``port``: SAME windows placed as PyTorch's ``padding=(k - 1) // 2`` (:func:`_pool_axis`),
    and an empty output refused (PyTorch raises "Output size is too small").
    """

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        (x,) = args
        op = "max_pool2d"
        k = spatial_pair(op, "ksize", static["ksize"])
        s = spatial_pair(op, "strides", static["strides"])
        padding = normalize_padding(op, static.get("padding", "VALID"))
        (top, oh), (left, ow) = (
            _pool_axis(x.shape[1 + a], k[a], s[a], padding, port, a) for a in (0, 1)
        )
        if port and min(oh, ow) < 1:
            return Expected(raises=True)
        n, h, w, c = x.shape
        start = np.finfo(x.dtype).min if init == "lowest" else -np.inf
        y = np.empty((n, oh, ow, c), x.dtype)
        dx = np.zeros_like(x)
        if dy is not None and np.shape(dy) != y.shape:
            dy = None  # a cotangent of another convention's output shape: the forward only
        for i in range(oh):
            for j in range(ow):
                cells = []  # (row, col) in the input, or None for a padded cell
                for a in range(k[0]):
                    for b in range(k[1]):
                        r, q = i * s[0] + a - top, j * s[1] + b - left
                        inside = 0 <= r < h and 0 <= q < w
                        if inside or pad is not None:
                            cells.append((r, q) if inside else None)
                for bn in range(n):
                    for ch in range(c):
                        v = [x[bn, cq[0], cq[1], ch] if cq else x.dtype.type(pad) for cq in cells]
                        finite = [u for u in v if u == u]
                        if nan_wins and len(finite) < len(v):
                            y[bn, i, j, ch] = np.nan
                        else:
                            y[bn, i, j, ch] = max([start, *finite])
                        if ties == "one":
                            keep = 0
                            for t in range(1, len(v)):
                                if _SCAN[scan](v[keep], v[t]):
                                    keep = t
                            take = [keep]
                        else:
                            m = max(finite) if finite else None
                            take = [t for t, u in enumerate(v) if u == m]
                        if dy is None:
                            continue
                        share = x.dtype.type(1 / len(take) if ties == "split" else 1)
                        for t in take:
                            if cells[t] is not None:  # a padded cell's share is lost
                                r, q = cells[t]
                                dx[bn, r, q, ch] += dy[bn, i, j, ch] * share
        return Expected(y, None if dy is None else (dx,))

    return expect


def _pool_ties(args: tuple, static: dict) -> bool:
    (x,) = args
    return bool(len(np.unique(x[np.isfinite(x)])) < np.isfinite(x).sum())


def _has_nan(args: tuple, static: dict) -> bool:
    return bool(np.isnan(args[0]).any())


def _has_neg_inf(args: tuple, static: dict) -> bool:
    return bool(np.isneginf(args[0]).any())


def _pool_padded(args: tuple, static: dict) -> bool:
    return normalize_padding("max_pool2d", static.get("padding", "VALID")) != "VALID"


def _pool_port_differs(args: tuple, static: dict) -> bool:
    """Whether PyTorch's ``padding=(k - 1) // 2`` port places a SAME pool's windows otherwise
    than TF (an odd total pad on an axis, or another output size)."""
    padding = normalize_padding("max_pool2d", static.get("padding", "VALID"))
    if padding != "SAME":
        return False
    k = spatial_pair("max_pool2d", "ksize", static["ksize"])
    s = spatial_pair("max_pool2d", "strides", static["strides"])
    n = args[0].shape[1:3]
    return any(
        _pool_axis(n[a], k[a], s[a], padding, True, a)
        != _pool_axis(n[a], k[a], s[a], padding, False, a)
        for a in (0, 1)
    )


# --------------------------------------------------------------------------- relu


def _relu_grad(at_zero: float = 0.0, at_nan: float = 0.0) -> Expect:
    """relu with the gradient ``at_zero`` at 0 and ``at_nan`` at NaN (TF: 0 and 0)."""

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        (x,) = args
        y = np.maximum(x, x.dtype.type(0))
        if dy is None:
            return Expected(y)
        slope = np.where(x > 0, 1.0, np.where(x == 0, at_zero, np.where(x != x, at_nan, 0.0)))
        return Expected(y, ((dy * slope).astype(x.dtype),))

    return expect


def _has_zero(args: tuple, static: dict) -> bool:
    return bool((args[0] == 0).any())


# --------------------------------------------------------------------------- cross-entropy


def _sparse_xent_labels(policy: str) -> Expect:
    """Sparse cross-entropy where bad labels follow ``policy``: ``ignore-100`` (PyTorch: label
    -100 gives loss 0 and no gradient; other bad labels raise), ``optax`` (labels in [-K, 0)
    wrap to K + label; any other bad label gives a NaN loss and a gradient of softmax(z) for its
    row), ``wrap`` (NumPy indexing: labels in [-K, 0) wrap, others raise)."""

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        labels, z = args
        k = z.shape[-1]
        wraps = (labels < 0) & (labels >= -k)
        bad = (labels >= k) | (labels < -k)
        if policy == "ignore-100":
            if (bad | wraps)[labels != -100].any():
                return Expected(raises=True)
            keep, labels = labels != -100, np.where(labels == -100, 0, labels)
        else:
            if policy == "wrap" and bad.any():
                return Expected(raises=True)
            keep, labels = ~bad, np.where(bad, 0, labels % k)
        zs = z - z.max(-1, keepdims=True)
        lse = np.log(np.exp(zs).sum(-1))
        loss = lse - np.take_along_axis(zs, labels[..., None], -1)[..., 0]
        p = np.exp(zs - lse[..., None])
        hot = np.zeros_like(p)
        np.put_along_axis(hot, labels[..., None], 1, -1)
        hot *= keep[..., None]
        if policy == "optax":
            loss, g = np.where(keep, loss, np.nan), p - hot
        else:
            loss, g = np.where(keep, loss, 0), (p - hot) * keep[..., None]
        loss = loss.astype(z.dtype)
        return Expected(loss, None if dy is None else (None, (g * dy[..., None]).astype(z.dtype)))

    return expect


def _xent_recombined(args: tuple, static: dict, dy: Any) -> Expected:
    """The sparse cross-entropy as ``(m + log sum exp(z - m)) - z_y`` (the VJP is TF's)."""
    labels, z = args
    m = z.max(-1)
    lse = m + np.log(np.exp(z - m[..., None]).sum(-1))
    loss = (lse - np.take_along_axis(z, labels[..., None], -1)[..., 0]).astype(z.dtype)
    if dy is None:
        return Expected(loss)
    return Expected(
        loss, tf_expect("sparse_softmax_cross_entropy_with_logits")(args, static, dy).grads
    )


def _bad_labels(args: tuple, static: dict) -> bool:
    labels, z = args
    return bool(((labels < 0) | (labels >= z.shape[-1])).any())


def _dense_xent_derivative(args: tuple, static: dict, dy: Any) -> Expected:
    ref = reference()
    p, z = args
    y, res = ref["softmax_cross_entropy_with_logits_fwd"](p, z)
    if dy is None:
        return Expected(y)
    dp, _ = ref["softmax_cross_entropy_with_logits_bwd"](res, dy)
    sm = res.probs
    dz = (sm * p.sum(-1, keepdims=True) - p) * dy[..., None]
    return Expected(y, (dp, dz.astype(z.dtype)))


def _rows_not_1(args: tuple, static: dict) -> bool:
    return bool(np.abs(args[0].sum(-1) - 1).max() > 1e-6)


def _keras_prob(clip: bool, renormalise: bool) -> Expect:
    """Keras' probability-input losses with the clip and / or CCE's renormalisation changed
    (forward only)."""

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        y_true, p = args
        eps = p.dtype.type(1e-7)
        sparse = y_true.dtype.kind in "iu"
        q = p / p.sum(-1, keepdims=True) if renormalise and not sparse else p
        if clip:
            q = np.clip(q, eps, 1 - eps)
        # Unclipped: log(0) = -inf, then 0 * -inf = NaN; no warning, whatever the filters
        # (under warnings-as-errors a warning here would silently drop the fingerprint).
        with np.errstate(divide="ignore", invalid="ignore"):
            if sparse:
                per = np.log(q.sum(-1)) - np.log(
                    np.take_along_axis(q, y_true[..., None], -1)[..., 0]
                )
            else:
                ls = static.get("label_smoothing", 0.0)
                t = y_true * (1 - ls) + ls / y_true.shape[-1] if ls else y_true
                per = -(t * np.log(q)).sum(-1)
            sw = static.get("sample_weight")
            if sw is not None:
                per = per * sw
            red = static.get("reduction", "sum_over_batch_size")
            out = per if red == "none" else per.sum() if red == "sum" else per.sum() / per.size
        return Expected(np.asarray(out, p.dtype))

    return expect


def _prob_input(args: tuple, static: dict) -> bool:
    return not static.get("from_logits", False)


# --------------------------------------------------------------------------- argmax, one_hot


def _argmax_nan_wins(args: tuple, static: dict, dy: Any) -> Expected:
    return Expected(np.argmax(args[0], axis=static.get("axis", -1)))


def _argmax_ties_last(args: tuple, static: dict, dy: Any) -> Expected:
    x = np.where(np.isnan(args[0]), -np.inf, args[0])
    ax = static.get("axis", -1)
    flipped = np.flip(x, ax)
    return Expected(x.shape[ax] - 1 - np.argmax(flipped, axis=ax))


def _accuracy_nan_wins(args: tuple, static: dict, dy: Any) -> Expected:
    """Accuracy with a NaN-winning argmax (``np.argmax``) of the scores."""
    y_true, y_pred = args
    true = np.asarray(y_true)
    if true.shape == y_pred.shape and y_pred.shape[-1] > 1:
        true = np.argmax(true, -1)
    elif true.shape == (*y_pred.shape[:-1], 1):
        true = true[..., 0]
    return Expected(float(np.mean(true == np.argmax(y_pred, -1))))


def _pred_has_nan(args: tuple, static: dict) -> bool:
    return bool(np.isnan(args[1]).any())


def _one_hot_wraps(args: tuple, static: dict, dy: Any) -> Expected:
    (idx,) = args
    depth = static["depth"]
    if (idx >= depth).any() or (idx < -depth).any():
        return Expected(raises=True)
    dt = np.dtype(static.get("dtype", np.float32))
    on, off = dt.type(static.get("on_value", 1)), dt.type(static.get("off_value", 0))
    out = np.where(np.eye(depth, dtype=bool)[idx], on, off)
    return Expected(np.moveaxis(out, -1, static.get("axis", -1)))


def _one_hot_raises(args: tuple, static: dict, dy: Any) -> Expected:
    return Expected(raises=True)


def _out_of_range(args: tuple, static: dict) -> bool:
    return bool(((args[0] < 0) | (args[0] >= static["depth"])).any())


def _has_nan_or_ties(args: tuple, static: dict) -> bool:
    x = args[0]
    return bool(np.isnan(x).any() or len(np.unique(x)) < x.size)


# --------------------------------------------------------------------------- optimizers


def _framework_optimizer(factory: Callable[..., Any], *, lr_required: bool = False) -> Expect:
    """The trajectory of a framework's optimizer (:mod:`nnref.cases._framework_optim`) built
    from the case's Keras-named hyperparameters; ``lr_required``: refused without a learning
    rate (optax has no default)."""

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        from nnref.cases.optim import trajectory

        if lr_required and "learning_rate" not in static:
            return Expected(raises=True)
        return Expected(trajectory(factory(**static), *args))

    return expect


def _always(args: tuple, static: dict) -> bool:
    return True


# --------------------------------------------------------------------------- registry


def _strided_same(args: tuple, static: dict) -> bool:
    strides = spatial_pair("conv2d", "strides", static.get("strides", 1))
    return _same(args, static) and max(strides) > 1


def _symmetric(n: int, eff: int, s: int, total: int) -> tuple[int, int]:
    return (eff - 1) // 2, (eff - 1) // 2


CONVENTIONS: tuple[Convention, ...] = (
    Convention(
        "same-torch-port",
        "conv2d",
        ("same-pad-side",),
        "PyTorch's port of a strided TF SAME conv, padding=k // 2 on both sides (of the dilated "
        "kernel; F.conv2d refuses padding='same' at stride > 1): TF pads total // 2 before and "
        "the rest after, so the windows shift",
        _strided_same,
        _conv_with_pads(lambda n, eff, s, total: (eff // 2, eff // 2)),
        ("torch",),
        ("conv-same-strided", "conv-same-strided-symmetric-port"),
    ),
    Convention(
        "same-symmetric-pad",
        "conv2d",
        ("same-pad-side",),
        "a symmetric pad of (k - 1) // 2 on both sides for SAME, not TF's total // 2 before and "
        "the rest after",
        _same,
        _conv_with_pads(_symmetric),
    ),
    Convention(
        "same-extra-pad-before",
        "conv2d",
        ("same-pad-side",),
        "SAME with the odd extra pad top/left instead of bottom/right",
        _same,
        _conv_with_pads(lambda n, eff, s, total: (total - total // 2, total // 2)),
    ),
    Convention(
        "flipped-kernel",
        "conv2d",
        ("cross-correlation",),
        "a true convolution (kernel flipped), not TF's cross-correlation",
        lambda args, static: True,
        _flipped_kernel,
    ),
    Convention(
        "pool-ties-last-max",
        "max_pool2d",
        ("pool-tie-first-max",),
        "the last tied maximum taking the gradient (a >= comparison), not the first",
        _pool_ties,
        _pool_rule("last"),
    ),
    Convention(
        "pool-ties-split",
        "max_pool2d",
        ("pool-tie-first-max",),
        "tied maxima sharing the gradient equally (autodiff of a max reduction, as "
        "jnp.max / tf.reduce_max), not all to the first",
        _pool_ties,
        _pool_rule(ties="split"),
    ),
    Convention(
        "pool-ties-all",
        "max_pool2d",
        ("pool-tie-first-max",),
        "every tied maximum taking the whole gradient (a mask x == max), which counts it twice",
        _pool_ties,
        _pool_rule(ties="all"),
    ),
    Convention(
        "pool-torch",
        "max_pool2d",
        ("pool-nan", "pool-inf"),
        "PyTorch's CPU max-pool: NaN wins its window (the last NaN takes the gradient), an all "
        "-inf window gives -inf",
        lambda args, static: _has_nan(args, static) or _has_neg_inf(args, static),
        _pool_rule("torch", nan_wins=True, init="-inf"),
        ("torch",),
        ("pool-nan", "pool-all-neg-inf"),
    ),
    Convention(
        "pool-jax",
        "max_pool2d",
        ("pool-nan", "pool-inf"),
        "JAX's reduce_window max: NaN propagates and the gradient goes to the first maximum "
        "after the last NaN (XLA's >= select); an all -inf window gives -inf",
        lambda args, static: _has_nan(args, static) or _has_neg_inf(args, static),
        _pool_rule("jax", nan_wins=True, init="-inf", pad=-np.inf),
        ("jax",),
        ("pool-nan", "pool-all-neg-inf"),
    ),
    Convention(
        "pool-torch-same-port",
        "max_pool2d",
        ("pool-same-pad-side",),
        "PyTorch's port of a TF SAME pool, F.max_pool2d(padding=(k - 1) // 2) in floor mode "
        "(F.max_pool2d has no 'same'): where TF's total pad is odd the windows or the output "
        "size differ (an empty output raises)",
        _pool_port_differs,
        _pool_rule("torch", nan_wins=True, init="-inf", port=True),
        ("torch",),
        ("pool-same-port",),
    ),
    Convention(
        "pool-numpy-argmax",
        "max_pool2d",
        ("pool-nan",),
        "np.max / np.argmax over each window: NaN propagates and the first NaN takes the gradient",
        _has_nan,
        _pool_rule("numpy", nan_wins=True),
    ),
    Convention(
        "pool-pad-zero",
        "max_pool2d",
        ("pool-padding-never-wins",),
        "SAME padding with zeros that win over negative values",
        _pool_padded,
        _pool_rule(pad=0.0),
    ),
    Convention(
        "pool-neg-inf-init",
        "max_pool2d",
        ("pool-inf",),
        "a running maximum started at -inf (an all -inf window gives -inf, not the lowest "
        "finite value)",
        _has_neg_inf,
        _pool_rule(init="-inf"),
    ),
    Convention(
        "relu-grad-1-at-0",
        "relu",
        ("relu-grad-at-0",),
        "relu'(0) = 1 (a mask x >= 0), not 0",
        _has_zero,
        _relu_grad(at_zero=1.0),
    ),
    Convention(
        "relu-grad-half-at-0",
        "relu",
        ("relu-grad-at-0",),
        "relu'(0) = 1/2 (the subgradient's midpoint), not 0",
        _has_zero,
        _relu_grad(at_zero=0.5),
    ),
    Convention(
        "relu-grad-1-at-nan",
        "relu",
        ("relu-grad-at-nan",),
        "relu'(NaN) = 1 (F.relu's threshold backward), not 0",
        lambda args, static: bool(np.isnan(args[0]).any()),
        _relu_grad(at_nan=1.0),
        ("torch",),
        ("relu-grad-at-0-and-nan",),
    ),
    Convention(
        "label-ignore-minus-100",
        "sparse_softmax_cross_entropy_with_logits",
        ("label-minus-100",),
        "label -100 ignored (loss 0, no gradient: PyTorch's default ignore_index), other bad "
        "labels refused",
        _bad_labels,
        _sparse_xent_labels("ignore-100"),
        ("torch",),
        ("bad-labels",),
    ),
    Convention(
        "xent-recombined",
        "sparse_softmax_cross_entropy_with_logits",
        ("xent-shift",),
        "the loss recombined as (m + log sum exp(z - m)) - z_y (optax's integer-label loss), "
        "not TF's shifted log sum exp(z - m) - (z_y - m): ln 2 rows lose bits",
        lambda args, static: True,
        _xent_recombined,
        ("jax",),
        ("xent-shift",),
    ),
    Convention(
        "labels-optax",
        "sparse_softmax_cross_entropy_with_logits",
        ("label-out-of-range", "label-minus-100"),
        "optax's unchecked labels: -K..-1 wrap to K + label, others give a NaN loss",
        _bad_labels,
        _sparse_xent_labels("optax"),
        ("jax",),
        ("bad-labels",),
    ),
    Convention(
        "negative-label-wraps",
        "sparse_softmax_cross_entropy_with_logits",
        ("label-out-of-range",),
        "negative labels wrapping around as NumPy indices (-1 is the last class)",
        _bad_labels,
        _sparse_xent_labels("wrap"),
    ),
    Convention(
        "dense-xent-true-derivative",
        "softmax_cross_entropy_with_logits",
        ("dense-xent-grad",),
        "the true derivative softmax(z) * sum(p) - p, not TF's softmax(z) - p",
        _rows_not_1,
        _dense_xent_derivative,
        ("jax", "torch"),
        ("soft-label-dlogits",),
    ),
    Convention(
        "scce-no-clip",
        "sparse_categorical_crossentropy",
        ("keras-clip",),
        "probabilities used unclipped (no [1e-7, 1 - 1e-7] clip)",
        _prob_input,
        _keras_prob(clip=False, renormalise=False),
    ),
    Convention(
        "cce-no-clip",
        "categorical_crossentropy",
        ("keras-clip",),
        "probabilities used unclipped (no [1e-7, 1 - 1e-7] clip)",
        _prob_input,
        _keras_prob(clip=False, renormalise=True),
    ),
    Convention(
        "cce-no-renormalisation",
        "categorical_crossentropy",
        ("keras-prob-loss",),
        "probability rows not divided by their sum before the log",
        _prob_input,
        _keras_prob(clip=True, renormalise=False),
    ),
    Convention(
        "argmax-nan-wins",
        "argmax",
        ("argmax-nan",),
        "NaN winning argmax (np.argmax, torch.argmax, jnp.argmax), not skipped as tf.argmax",
        lambda args, static: bool(np.isnan(args[0]).any()),
        _argmax_nan_wins,
        ("jax", "torch"),
        ("argmax-nan",),
    ),
    Convention(
        "accuracy-argmax-nan-wins",
        "accuracy",
        ("argmax-nan",),
        "accuracy over a NaN-winning argmax (jnp.argmax, torch.argmax): a row whose scores hold "
        "NaN predicts the first NaN's class",
        _pred_has_nan,
        _accuracy_nan_wins,
        ("jax", "torch"),
        ("argmax-nan",),
    ),
    Convention(
        "argmax-ties-last",
        "argmax",
        ("argmax-tie-first",),
        "ties going to the last index, not the first",
        _has_nan_or_ties,
        _argmax_ties_last,
    ),
    Convention(
        "one-hot-negative-wraps",
        "one_hot",
        ("one-hot-out-of-range",),
        "negative indices wrapping around (np.eye(depth)[idx]), not all-off rows",
        _out_of_range,
        _one_hot_wraps,
    ),
    Convention(
        "one-hot-out-of-range-raises",
        "one_hot",
        ("one-hot-out-of-range",),
        "out-of-range indices refused (torch.nn.functional.one_hot), not all-off rows",
        _out_of_range,
        _one_hot_raises,
        ("torch",),
        ("one-hot-out-of-range",),
    ),
    Convention(
        "sgd-unrounded",
        "sgd",
        ("lr-float32",),
        "torch.optim.SGD / optax.sgd: the learning rate and momentum used at the parameters' "
        "precision (0.1 stays 0.1 on float64 parameters), not rounded to float32 as Keras",
        _always,
        _framework_optimizer(_framework_optim.sgd),
        ("jax", "torch"),
        ("lr-float32",),
    ),
    Convention(
        "adam-torch",
        "adam",
        ("adam-epsilon", "lr-float32", "optimizer-defaults"),
        "torch.optim.Adam: epsilon added to sqrt(v_hat) after bias correction, hyperparameters "
        "unrounded, defaults lr 1e-3 and eps 1e-8",
        _always,
        _framework_optimizer(_framework_optim.torch_adam),
        ("torch",),
        ("adam-epsilon", "adam-defaults", "lr-float32"),
    ),
    Convention(
        "adam-optax",
        "adam",
        ("adam-epsilon", "lr-float32", "optimizer-defaults"),
        "optax.adam / optax.amsgrad: epsilon added to sqrt(nu_hat) after bias correction "
        "(AMSGrad: the maximum of the corrected nu_hat), hyperparameters unrounded, no default "
        "learning rate, eps 1e-8",
        _always,
        _framework_optimizer(_framework_optim.optax_adam, lr_required=True),
        ("jax",),
        ("adam-epsilon", "adam-defaults", "lr-float32"),
    ),
    Convention(
        "rmsprop-torch",
        "rmsprop",
        ("rmsprop-epsilon", "lr-float32", "optimizer-defaults"),
        "torch.optim.RMSprop: epsilon added outside the square root, hyperparameters unrounded, "
        "defaults lr 1e-2, alpha 0.99 and eps 1e-8",
        _always,
        _framework_optimizer(_framework_optim.torch_rmsprop),
        ("torch",),
        ("rmsprop-epsilon", "rmsprop-defaults", "lr-float32"),
    ),
    Convention(
        "rmsprop-optax",
        "rmsprop",
        ("lr-float32", "optimizer-defaults"),
        "optax.rmsprop: epsilon inside the square root as Keras, hyperparameters unrounded, no "
        "default learning rate, decay 0.9 and eps 1e-8",
        _always,
        _framework_optimizer(_framework_optim.optax_rmsprop, lr_required=True),
        ("jax",),
        ("rmsprop-defaults", "lr-float32"),
    ),
)

BY_ID: dict[str, Convention] = {c.id: c for c in CONVENTIONS}


def _profile(framework: str, description: str) -> Profile:
    return Profile(
        framework,
        description,
        {(c.op, pin): c.id for c in CONVENTIONS if framework in c.followed_by for pin in c.pins},
    )


PROFILES: dict[str, Profile] = {
    "tf": Profile("tf", "TF 2.21 / Keras 3 semantics, as nnref (the default)"),
    "torch": _profile("torch", "PyTorch 2.13's conventions where they differ from TF"),
    "jax": _profile("jax", "JAX 0.10 / optax 0.2.8's conventions where they differ from TF"),
}


def expected(
    op: str,
    case_pins: tuple[str, ...],
    profile: Profile,
    args: tuple[Any, ...],
    static: dict[str, Any],
) -> tuple[Expect, str]:
    """The reference for a case's inputs under ``profile`` and the convention id it follows
    (TF's where the profile's convention does not change the result on these inputs)."""
    for pin in case_pins:
        cid = profile.choose.get((op, pin))
        if cid is not None and BY_ID[cid].applies(args, static):
            return BY_ID[cid].expect, cid
    return tf_expect(op), "tf"


def framework_convention(
    op: str,
    case_pins: tuple[str, ...],
    framework: str,
    semantics: frozenset[str],
    args: tuple[Any, ...],
    static: dict[str, Any],
) -> Convention | None:
    """The convention ``framework`` follows on a case, among those of the given measured
    ``semantics`` ids (where an oracle leg returns the framework's own behaviour)."""
    for c in CONVENTIONS:
        if (
            c.op == op
            and framework in c.followed_by
            and set(c.pins) & set(case_pins)
            and set(c.semantics) & semantics
            and c.applies(args, static)
        ):
            return c
    return None


def alternatives(op: str, args: tuple[Any, ...], static: dict[str, Any]) -> list[Convention]:
    """The conventions of ``op`` that change the result on these inputs."""
    return [c for c in CONVENTIONS if c.op == op and c.applies(args, static)]


def _check_registry() -> None:
    from nnref.oracles.semantics import BY_ID as MEASURED  # data only: imports nothing

    for c in CONVENTIONS:
        if not set(c.pins) <= set(PINS):
            raise AssertionError(f"convention {c.id} names an unknown pin in {c.pins}")
        if not set(c.semantics) <= set(MEASURED) or bool(c.followed_by) != bool(c.semantics):
            raise AssertionError(
                f"convention {c.id}: followed by {c.followed_by} needs the "
                f"measured pins that show it, got {c.semantics}"
            )
    for p in PROFILES.values():
        for op, pin in p.choose:
            n = sum(c.op == op and pin in c.pins and p.name in c.followed_by for c in CONVENTIONS)
            if n != 1:
                raise AssertionError(f"profile {p.name}: {n} conventions for {op} / {pin}")


_check_registry()
