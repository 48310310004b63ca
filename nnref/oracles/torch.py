"""PyTorch oracle legs: ``torch.autograd.grad`` of ``torch.nn.functional``, one leg per op.

Each leg has the TF legs' signature, ``leg(args, static, dy) -> (y, grads)``: ``args`` are
nnref's positional inputs (NumPy, NHWC/HWIO as nnref), ``static`` its keyword hyperparameters,
``dy`` the cotangent; ``grads`` holds one gradient per positional argument (``None`` for
integer labels). Each leg computes TF's definition of the op with PyTorch's own primitives:
where PyTorch has no primitive for it (TF's asymmetric SAME pad, Keras' 1e-7 probability clip,
TF's dlogits of a soft-label cross-entropy, Keras' reductions), the leg composes one and its
docstring says how.

Layout: inputs are permuted NHWC -> NCHW and HWIO -> OIHW inside the autograd graph
(:mod:`nnref.oracles._layout`), so gradients come back in nnref's layout. Tensors keep the
inputs' dtype (float32 or float64); PyTorch's default dtype is not touched.

PyTorch is imported inside the legs; importing this module needs NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnref.oracles import _layout

Leg = Callable[[tuple[Any, ...], dict[str, Any], Any], tuple[Any, list[Any]]]

#: ``keras.config.epsilon()``: the clip of Keras' probability losses (no PyTorch primitive).
KERAS_EPSILON = 1e-7

#: Measured differences (ids of :data:`nnref.oracles.semantics.PINS`) where these legs return
#: the framework's own behaviour because its kernels fix it (TF's definition cannot be composed
#: from them): ``nnref verify`` compares those cases with the framework's convention
#: (:mod:`nnref.cases.conventions`) instead of with TF's.
FOLLOWS: frozenset[str] = frozenset(
    {"pool-nan", "pool-all-neg-inf", "bad-labels", "relu-grad-at-0-and-nan"}
)


def import_torch() -> Any:
    """Import PyTorch, with a clear error when the ``torch`` extra is missing."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only without PyTorch
        raise ImportError("nnref.oracles.torch needs PyTorch: pip install 'nnref[torch]'") from e
    return torch


def versions() -> dict[str, str]:
    """``{"torch": version}``."""
    return {"torch": import_torch().__version__}


def _is_float(a: Any) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def vjp(
    fn: Callable[..., Any], primals: Sequence[Any], dy: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Forward value and VJP of a PyTorch function at the cotangent ``dy``.

    Parameters
    ----------
    fn : callable
        Takes one tensor per primal (integer tensors too) and returns one tensor.
    primals : sequence of NumPy arrays
        Float arrays are copied into tensors that require grad; integer arrays (labels) are
        copied as int64 tensors.
    dy : array
        Cotangent, of ``fn``'s output shape and dtype.

    Returns
    -------
    y : NumPy array
    grads : list
        One per primal, ``None`` for integer ones.
    """
    torch = import_torch()
    # torch.tensor copies: the arrays may be read-only, and the legs must not share memory.
    tensors = [torch.tensor(a, requires_grad=_is_float(a)) for a in primals]
    watched = [t for t, a in zip(tensors, primals, strict=True) if _is_float(a)]
    y = fn(*tensors)
    g = torch.autograd.grad(y, watched, grad_outputs=torch.tensor(dy), materialize_grads=True)
    grads: list[np.ndarray | None] = []
    k = 0
    for a in primals:
        if _is_float(a):
            grads.append(g[k].numpy())
            k += 1
        else:
            grads.append(None)
    return y.detach().numpy(), grads


# --------------------------------------------------------------------------- shared pieces


def _F() -> Any:
    import_torch()
    import torch.nn.functional as F

    return F


def _reduce(per: Any, st: dict[str, Any]) -> Any:
    """Keras' reduction, composed (PyTorch's ``"mean"`` is not Keras' ``sum_over_batch_size``
    when weighted): ``sum(w * l) / l.numel()``, zero weights still counted."""
    torch = import_torch()
    sw = st.get("sample_weight")
    if sw is not None:
        per = per * torch.tensor(sw)
    red = st.get("reduction", "sum_over_batch_size")
    if red == "none":
        return per
    total = per.sum()
    return total if red == "sum" else total / per.numel()


def _classes_to_dim1(z: Any) -> Any:
    """PyTorch's losses want classes on axis 1; nnref (as TF) has them last."""
    return z.movedim(-1, 1) if z.ndim > 2 else z


def _tf_softmax_xent(p: Any, z: Any) -> Any:
    """``tf.nn.softmax_cross_entropy_with_logits`` from ``F.cross_entropy`` with probability
    targets (``reduction="none"``).

    The value is PyTorch's ``-sum(p * log_softmax(z))``. TF's dlogits is ``softmax(z) - p``
    while autograd's (the true derivative) is ``softmax(z) * sum(p) - p``; they differ when
    rows of ``p`` do not sum to 1. The leg adds ``c - c.detach()`` with
    ``c = -(sum(p.detach()) - 1) * logsumexp(z)``: zero in value, its dlogits removes the
    ``sum(p) - 1`` share; ``dp`` stays ``-log_softmax(z)`` (as TF's).
    """
    torch = import_torch()
    per = _F().cross_entropy(_classes_to_dim1(z), _classes_to_dim1(p), reduction="none")
    c = -(p.detach().sum(-1) - 1) * torch.logsumexp(z, -1)
    return per + (c - c.detach())


def _sparse_xent(labels: Any, z: Any) -> Any:
    """``F.cross_entropy(z, labels, reduction="none")``; PyTorch's ``ignore_index=-100`` is
    left at its default: the cases hold valid labels only (see the ``bad-labels`` pin)."""
    return _F().cross_entropy(_classes_to_dim1(z), labels, reduction="none")


def _clip(p: Any) -> Any:
    """Keras' ``clip(p, 1e-7, 1 - 1e-7)`` composed with ``torch.clamp`` (its gradient passes
    at the bounds, as ``tf.clip_by_value``'s)."""
    return p.clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)


# --------------------------------------------------------------------------- the legs


def dense(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.linear(x, w.T, b)`` (PyTorch stores the kernel as (out, in); ``.T`` is a view)."""
    return vjp(lambda x, w, b: _F().linear(x, w.T, b), args, dy)


def bias_add(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``x + b`` broadcast over the last (channel) axis."""
    return vjp(lambda x, b: x + b, args, dy)


def conv2d(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.conv2d`` on NCHW/OIHW with TF's pads applied by ``F.pad`` first (composed).

    PyTorch's ``padding=`` is symmetric and ``padding='same'`` refuses strides > 1, so TF's
    asymmetric SAME pads (:func:`nnref.oracles._layout.tf_pads`) are explicit zeros here.
    """
    F = _F()
    strides = _layout.spatial(st.get("strides", 1))
    dilations = _layout.spatial(st.get("dilations", 1))

    def f(x: Any, w: Any) -> Any:
        pads = _layout.tf_pads(
            st.get("padding", "VALID"), x.shape[1:3], w.shape[:2], strides, dilations
        )
        xc = F.pad(x.permute(_layout.NHWC_TO_NCHW), _layout.torch_pad_arg(pads))
        y = F.conv2d(xc, w.permute(_layout.HWIO_TO_OIHW), stride=strides, dilation=dilations)
        return y.permute(_layout.NCHW_TO_NHWC)

    return vjp(f, args, dy)


def max_pool2d(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.max_pool2d`` on NCHW after ``F.pad`` with ``-inf`` by TF's pads (composed).

    PyTorch's own ``padding=`` is symmetric and at most half the window. Its CPU kernel routes
    ties to the first maximum as TF; NaN and all ``-inf`` windows differ from TF (see
    :mod:`nnref.oracles.semantics`); the cases use distinct finite values.
    """
    F = _F()
    k = _layout.spatial(st["ksize"])
    s = _layout.spatial(st["strides"])

    def f(x: Any) -> Any:
        pads = _layout.tf_pads(st.get("padding", "VALID"), x.shape[1:3], k, s)
        xc = F.pad(x.permute(_layout.NHWC_TO_NCHW), _layout.torch_pad_arg(pads), value=-np.inf)
        return F.max_pool2d(xc, k, s).permute(_layout.NCHW_TO_NHWC)

    return vjp(f, args, dy)


def relu(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.relu``."""
    return vjp(_F().relu, args, dy)


def sigmoid(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``torch.sigmoid``."""
    return vjp(import_torch().sigmoid, args, dy)


def softmax(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.softmax(x, dim=axis)``."""
    return vjp(lambda x: _F().softmax(x, dim=st.get("axis", -1)), args, dy)


def log_softmax(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.log_softmax(x, dim=axis)``."""
    return vjp(lambda x: _F().log_softmax(x, dim=st.get("axis", -1)), args, dy)


def sparse_softmax_cross_entropy_with_logits(
    args: tuple, st: dict, dy: Any
) -> tuple[Any, list[Any]]:
    """``F.cross_entropy(logits, labels, reduction="none")``."""
    return vjp(_sparse_xent, args, dy)


def softmax_cross_entropy_with_logits(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """TF's dense-label cross-entropy: PyTorch's value, TF's dlogits (``_tf_softmax_xent``)."""
    return vjp(_tf_softmax_xent, args, dy)


def sparse_categorical_crossentropy(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """Keras' SCCE. Logits: ``F.cross_entropy``. Probabilities (composed, PyTorch has no
    probability-input cross-entropy): ``q = clamp(p, 1e-7, 1 - 1e-7)`` and ``F.cross_entropy``
    of ``log q``, as Keras (no renormalisation before the clip). Keras' reduction composed."""
    from_logits = st.get("from_logits", False)

    def f(labels: Any, p: Any) -> Any:
        z = p if from_logits else _clip(p).log()
        return _reduce(_sparse_xent(labels, z), st)

    return vjp(f, args, dy)


def categorical_crossentropy(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """Keras' CCE. Label smoothing ``y (1 - ls) + ls / K`` is written out: it is the rule of
    ``F.cross_entropy(label_smoothing=)`` (pinned in the semantics tests), but the probability
    path has no PyTorch loss to pass it to. Logits: TF's dense-label op (``_tf_softmax_xent``).
    Probabilities (composed): ``q = clamp(p / sum p, 1e-7, 1 - 1e-7)``, ``-sum(y log q)``.
    Keras' reduction composed."""
    ls = st.get("label_smoothing", 0.0)
    from_logits = st.get("from_logits", False)

    def f(y: Any, p: Any) -> Any:
        if ls:
            y = y * (1 - ls) + ls / y.shape[-1]
        if from_logits:
            per = _tf_softmax_xent(y, p)
        else:
            q = _clip(p / p.sum(-1, keepdim=True))
            per = -(y * q.log()).sum(-1)
        return _reduce(per, st)

    return vjp(f, args, dy)


def mean_squared_error(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.mse_loss(p, t, reduction="none").mean(-1)`` and Keras' reduction (composed)."""
    return vjp(lambda t, p: _reduce(_F().mse_loss(p, t, reduction="none").mean(-1), st), args, dy)


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
    "dense": "F.linear",
    "bias_add": "torch add",
    "conv2d": "F.pad + F.conv2d (NCHW)",
    "max_pool2d": "F.pad(-inf) + F.max_pool2d (NCHW)",
    "relu": "F.relu",
    "sigmoid": "torch.sigmoid",
    "softmax": "F.softmax",
    "log_softmax": "F.log_softmax",
    "sparse_softmax_cross_entropy_with_logits": "F.cross_entropy",
    "softmax_cross_entropy_with_logits": "F.cross_entropy, soft targets (TF's dlogits composed)",
    "sparse_categorical_crossentropy": "F.cross_entropy (+ Keras clip composed)",
    "categorical_crossentropy": "F.cross_entropy, soft targets (+ Keras clip composed)",
    "mean_squared_error": "F.mse_loss + mean",
}
