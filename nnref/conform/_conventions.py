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

from nnref.cases import PINS, TABLES, reference
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
    pin: str
    #: How the report names it: "<says>" completes "matches ...".
    says: str
    #: Which inputs it changes the result of (others: same as TF).
    applies: Callable[[tuple[Any, ...], dict[str, Any]], bool]
    expect: Expect
    #: Frameworks measured to follow it (versions in the semantics tests).
    followed_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    #: pin -> the convention id expected there (unlisted pins: TF's convention).
    choose: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- TF (nnref)


def tf_expect(op: str) -> Expect:
    """nnref's own result (TF's convention, verified against TF in nnref's tests)."""
    ref = reference()
    if TABLES[op].kind == "optimizer":
        from nnref.cases.optim import trajectory

        return lambda args, static, dy: Expected(trajectory(ref[op](**static), *args))

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        try:
            if op + "_fwd" in ref:
                y, res = ref[op + "_fwd"](*args, **static)
                return Expected(y, None if dy is None else ref[op + "_bwd"](res, dy))
            return Expected(ref[op](*args, **static))
        except ValueError:
            return Expected(raises=True)

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


def _pool_rule(rule: str) -> Expect:
    """A loop max-pool whose forward value and gradient routing follow ``rule``:

    ``ties-last`` (the last maximum gets the gradient), ``ties-split`` (tied maxima share it
    equally), ``ties-all`` (each tied maximum gets all of it), ``nan-wins`` (a NaN makes the
    output NaN and takes the gradient), ``pad-zero`` (SAME pads with zeros, which take part),
    ``neg-inf-init`` (the running max starts at -inf: an all -inf window gives -inf).
    """

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        (x,) = args
        op = "max_pool2d"
        k = spatial_pair(op, "ksize", static["ksize"])
        s = spatial_pair(op, "strides", static["strides"])
        pad = normalize_padding(op, static.get("padding", "VALID"))
        plan = [plan_axis(x.shape[1 + a], k[a], s[a], 1, pad, a) for a in (0, 1)]
        n, h, w, c = x.shape
        lowest = np.finfo(x.dtype).min
        y = np.empty((n, plan[0].out, plan[1].out, c), x.dtype)
        dx = np.zeros_like(x)
        for i in range(plan[0].out):
            for j in range(plan[1].out):
                cells, padded = [], False
                for a in range(k[0]):
                    for b in range(k[1]):
                        r, q = i * s[0] + a - plan[0].before, j * s[1] + b - plan[1].before
                        if 0 <= r < h and 0 <= q < w:
                            cells.append((r, q))
                        else:
                            padded = True
                for bn in range(n):
                    for ch in range(c):
                        v = np.array([x[bn, r, q, ch] for r, q in cells])
                        nan = np.isnan(v)
                        if rule == "nan-wins" and nan.any():
                            y[bn, i, j, ch] = np.nan
                            take = [int(np.argmax(nan))]
                        else:
                            if rule == "pad-zero" and padded:
                                v = np.append(v, x.dtype.type(0))
                            m = np.nanmax(v) if not nan.all() else -np.inf
                            init = -np.inf if rule == "neg-inf-init" else lowest
                            y[bn, i, j, ch] = max(m, init)
                            hits = np.flatnonzero(v == m)
                            if rule == "pad-zero" and len(v) > len(cells):
                                hits = hits[hits < len(cells)]  # the zero pad has no cell
                            if not len(hits):
                                hits = np.array([0]) if rule != "pad-zero" else hits
                            if rule == "ties-last":
                                take = [int(hits[-1])]
                            elif rule in ("ties-split", "ties-all"):
                                take = [int(t) for t in hits]
                            else:
                                take = [int(hits[0])] if len(hits) else []
                        if dy is not None:
                            share = 1.0 / len(take) if rule == "ties-split" and take else 1.0
                            for t in take:
                                r, q = cells[t]
                                dx[bn, r, q, ch] += dy[bn, i, j, ch] * x.dtype.type(share)
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


# --------------------------------------------------------------------------- relu


def _relu_at_zero(slope: float) -> Expect:
    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        (x,) = args
        y = np.maximum(x, x.dtype.type(0))
        if dy is None:
            return Expected(y)
        g = np.where(x > 0, dy, np.where(x == 0, dy * x.dtype.type(slope), x.dtype.type(0)))
        return Expected(y, (g,))

    return expect


def _has_zero(args: tuple, static: dict) -> bool:
    return bool((args[0] == 0).any())


# --------------------------------------------------------------------------- cross-entropy


def _sparse_xent_labels(policy: str) -> Expect:
    """Sparse cross-entropy where bad labels follow ``policy``: ``ignore-100`` (label -100
    gives loss 0 and no gradient; other bad labels raise), ``nan`` (any bad label gives a NaN
    loss; its row's gradient is softmax(z)), ``wrap`` (NumPy indexing: -1 is the last class;
    labels >= K raise)."""

    def expect(args: tuple, static: dict, dy: Any) -> Expected:
        labels, z = args
        k = z.shape[-1]
        bad = (labels < 0) | (labels >= k)
        if policy == "ignore-100":
            if (bad & (labels != -100)).any():
                return Expected(raises=True)
            keep = labels != -100
        elif policy == "wrap":
            if (labels >= k).any() or (labels < -k).any():
                return Expected(raises=True)
            labels = labels % k
            keep = np.ones(labels.shape, bool)
        else:
            keep = ~bad
        safe = np.where(bad & (policy != "wrap"), 0, labels)
        zs = z - z.max(-1, keepdims=True)
        lse = np.log(np.exp(zs).sum(-1))
        loss = lse - np.take_along_axis(zs, safe[..., None], -1)[..., 0]
        p = np.exp(zs - lse[..., None])
        hot = np.zeros_like(p)
        np.put_along_axis(hot, safe[..., None], 1, -1)
        if policy == "nan":
            loss = np.where(keep, loss, np.nan)
            g = p - hot * keep[..., None]
        else:
            loss = np.where(keep, loss, 0)
            g = (p - hot) * keep[..., None]
        loss = loss.astype(z.dtype)
        return Expected(loss, None if dy is None else (None, (g * dy[..., None]).astype(z.dtype)))

    return expect


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


# --------------------------------------------------------------------------- registry

CONVENTIONS: tuple[Convention, ...] = (
    Convention(
        "same-symmetric-pad",
        "conv2d",
        "same-pad-side",
        "a symmetric pad of (k - 1) // 2 on both sides (the usual PyTorch port, padding=k // 2, "
        "of TF SAME, which pads total // 2 before and the rest after)",
        _same,
        _conv_with_pads(lambda n, eff, s, total: ((eff - 1) // 2, (eff - 1) // 2)),
        ("torch",),
    ),
    Convention(
        "same-extra-pad-before",
        "conv2d",
        "same-pad-side",
        "SAME with the odd extra pad top/left instead of bottom/right",
        _same,
        _conv_with_pads(lambda n, eff, s, total: (total - total // 2, total // 2)),
    ),
    Convention(
        "flipped-kernel",
        "conv2d",
        "cross-correlation",
        "a true convolution (kernel flipped), not TF's cross-correlation",
        lambda args, static: True,
        _flipped_kernel,
    ),
    Convention(
        "pool-ties-last-max",
        "max_pool2d",
        "pool-tie-first-max",
        "the last tied maximum taking the gradient (a >= comparison), not the first",
        _pool_ties,
        _pool_rule("ties-last"),
    ),
    Convention(
        "pool-ties-split",
        "max_pool2d",
        "pool-tie-first-max",
        "tied maxima sharing the gradient equally (autodiff of a max reduction, as "
        "jnp.max / tf.reduce_max), not all to the first",
        _pool_ties,
        _pool_rule("ties-split"),
    ),
    Convention(
        "pool-ties-all",
        "max_pool2d",
        "pool-tie-first-max",
        "every tied maximum taking the whole gradient (a mask x == max), which counts it twice",
        _pool_ties,
        _pool_rule("ties-all"),
    ),
    Convention(
        "pool-nan-wins",
        "max_pool2d",
        "pool-nan",
        "NaN winning its window, forward and gradient (PyTorch's CPU max-pool), not skipped",
        _has_nan,
        _pool_rule("nan-wins"),
        ("torch",),
    ),
    Convention(
        "pool-pad-zero",
        "max_pool2d",
        "pool-padding-never-wins",
        "SAME padding with zeros that win over negative values",
        _pool_padded,
        _pool_rule("pad-zero"),
    ),
    Convention(
        "pool-neg-inf-init",
        "max_pool2d",
        "pool-inf",
        "a running maximum started at -inf (an all -inf window gives -inf, not the lowest "
        "finite value)",
        _has_neg_inf,
        _pool_rule("neg-inf-init"),
        ("torch",),
    ),
    Convention(
        "relu-grad-1-at-0",
        "relu",
        "relu-grad-at-0",
        "relu'(0) = 1 (a mask x >= 0), not 0",
        _has_zero,
        _relu_at_zero(1.0),
    ),
    Convention(
        "relu-grad-half-at-0",
        "relu",
        "relu-grad-at-0",
        "relu'(0) = 1/2 (the subgradient's midpoint), not 0",
        _has_zero,
        _relu_at_zero(0.5),
    ),
    Convention(
        "label-ignore-minus-100",
        "sparse_softmax_cross_entropy_with_logits",
        "label-minus-100",
        "label -100 ignored (loss 0, no gradient: PyTorch's default ignore_index), other bad "
        "labels refused",
        _bad_labels,
        _sparse_xent_labels("ignore-100"),
        ("torch",),
    ),
    Convention(
        "bad-label-nan",
        "sparse_softmax_cross_entropy_with_logits",
        "label-out-of-range",
        "a NaN loss for labels >= K or -100 instead of an error (optax)",
        _bad_labels,
        _sparse_xent_labels("nan"),
    ),
    Convention(
        "negative-label-wraps",
        "sparse_softmax_cross_entropy_with_logits",
        "label-out-of-range",
        "negative labels wrapping around as NumPy indices (-1 is the last class)",
        _bad_labels,
        _sparse_xent_labels("wrap"),
    ),
    Convention(
        "dense-xent-true-derivative",
        "softmax_cross_entropy_with_logits",
        "dense-xent-grad",
        "the true derivative softmax(z) * sum(p) - p, not TF's softmax(z) - p",
        _rows_not_1,
        _dense_xent_derivative,
    ),
    Convention(
        "scce-no-clip",
        "sparse_categorical_crossentropy",
        "keras-clip",
        "probabilities used unclipped (no [1e-7, 1 - 1e-7] clip)",
        _prob_input,
        _keras_prob(clip=False, renormalise=False),
    ),
    Convention(
        "cce-no-clip",
        "categorical_crossentropy",
        "keras-clip",
        "probabilities used unclipped (no [1e-7, 1 - 1e-7] clip)",
        _prob_input,
        _keras_prob(clip=False, renormalise=True),
    ),
    Convention(
        "cce-no-renormalisation",
        "categorical_crossentropy",
        "keras-prob-loss",
        "probability rows not divided by their sum before the log",
        _prob_input,
        _keras_prob(clip=True, renormalise=False),
    ),
    Convention(
        "argmax-nan-wins",
        "argmax",
        "argmax-nan",
        "NaN winning argmax (np.argmax, torch.argmax, jnp.argmax), not skipped as tf.argmax",
        lambda args, static: bool(np.isnan(args[0]).any()),
        _argmax_nan_wins,
        ("torch", "jax"),
    ),
    Convention(
        "argmax-ties-last",
        "argmax",
        "argmax-tie-first",
        "ties going to the last index, not the first",
        _has_nan_or_ties,
        _argmax_ties_last,
    ),
    Convention(
        "one-hot-negative-wraps",
        "one_hot",
        "one-hot-out-of-range",
        "negative indices wrapping around (np.eye(depth)[idx]), not all-off rows",
        _out_of_range,
        _one_hot_wraps,
    ),
    Convention(
        "one-hot-out-of-range-raises",
        "one_hot",
        "one-hot-out-of-range",
        "out-of-range indices refused (torch.nn.functional.one_hot), not all-off rows",
        _out_of_range,
        _one_hot_raises,
        ("torch",),
    ),
)

BY_ID: dict[str, Convention] = {c.id: c for c in CONVENTIONS}

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("tf", "TF 2.21 / Keras 3 semantics, as nnref (the default)"),
        Profile(
            "torch",
            "PyTorch 2.13's conventions where they differ from TF on these ops",
            {
                "pool-nan": "pool-nan-wins",
                "pool-inf": "pool-neg-inf-init",
                "label-minus-100": "label-ignore-minus-100",
                "argmax-nan": "argmax-nan-wins",
                "one-hot-out-of-range": "one-hot-out-of-range-raises",
            },
        ),
        Profile(
            "jax",
            "JAX 0.10's conventions where they differ from TF on these ops",
            {"argmax-nan": "argmax-nan-wins"},
        ),
    )
}


def expected(op: str, case_pins: tuple[str, ...], profile: Profile) -> tuple[Expect, str]:
    """The reference for a case under ``profile`` and the convention id it follows."""
    for pin in case_pins:
        cid = profile.choose.get(pin)
        if cid is not None and BY_ID[cid].op == op:
            return BY_ID[cid].expect, cid
    return tf_expect(op), "tf"


def alternatives(op: str, args: tuple[Any, ...], static: dict[str, Any]) -> list[Convention]:
    """The conventions of ``op`` that change the result on these inputs."""
    return [c for c in CONVENTIONS if c.op == op and c.applies(args, static)]


def _check_registry() -> None:
    for c in CONVENTIONS:
        if c.pin not in PINS:
            raise AssertionError(f"convention {c.id} names an unknown pin {c.pin!r}")
    for p in PROFILES.values():
        for pin, cid in p.choose.items():
            if pin not in PINS or cid not in BY_ID or BY_ID[cid].pin != pin:
                raise AssertionError(f"profile {p.name}: {pin} -> {cid} is inconsistent")


_check_registry()
