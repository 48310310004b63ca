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

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

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
    # Integer labels as int64: F.cross_entropy refuses int32 targets (a raise that verify would
    # count as refusing the labels).
    tensors = [
        torch.tensor(a, requires_grad=True) if _is_float(a) else torch.tensor(a, dtype=torch.int64)
        for a in primals
    ]
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
    """``F.conv2d`` on NCHW/OIHW with TF's pads applied by ``F.pad`` first (composed); a third
    argument ``b`` goes to ``F.conv2d``'s ``bias``.

    PyTorch's ``padding=`` is symmetric and ``padding='same'`` refuses strides > 1, so TF's
    asymmetric SAME pads (:func:`nnref.oracles._layout.tf_pads`) are explicit zeros here.
    """
    F = _F()
    strides = _layout.spatial(st.get("strides", 1))
    dilations = _layout.spatial(st.get("dilations", 1))

    def f(x: Any, w: Any, *b: Any) -> Any:
        pads = _layout.tf_pads(
            st.get("padding", "VALID"), x.shape[1:3], w.shape[:2], strides, dilations
        )
        xc = F.pad(x.permute(_layout.NHWC_TO_NCHW), _layout.torch_pad_arg(pads))
        wc = w.permute(_layout.HWIO_TO_OIHW)
        y = F.conv2d(xc, wc, *b, stride=strides, dilation=dilations)
        return y.permute(_layout.NCHW_TO_NHWC)

    return vjp(f, args, dy)


def max_pool2d(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
    """``F.max_pool2d`` on NCHW with TF's pads: the part both sides share (at most half the
    window) as its own ``padding=``, the rest by ``F.pad`` with ``-inf`` first (composed).

    PyTorch's own padding is skipped by index, so an all ``-inf`` window that starts in it
    routes its gradient to its first valid element, as PyTorch does and as TF does; an
    ``F.pad`` cell would take that gradient (it is first and nothing is strictly greater) and
    lose it. TF's SAME puts the larger pad after, so only bottom/right cells are ``F.pad``'s
    and no window starts in one (explicit pads larger on top or left than half the window
    still start windows in ``F.pad`` cells). Its CPU kernel routes ties to the first maximum
    as TF; NaN and all ``-inf`` values differ from TF (see :mod:`nnref.oracles.semantics`).
    """
    F = _F()
    k = _layout.spatial(st["ksize"])
    s = _layout.spatial(st["strides"])

    def f(x: Any) -> Any:
        (t, b), (left, right) = _layout.tf_pads(st.get("padding", "VALID"), x.shape[1:3], k, s)
        own = (min(t, b, k[0] // 2), min(left, right, k[1] // 2))
        rest = ((t - own[0], b - own[0]), (left - own[1], right - own[1]))
        xc = F.pad(x.permute(_layout.NHWC_TO_NCHW), _layout.torch_pad_arg(rest), value=-np.inf)
        return F.max_pool2d(xc, k, s, own).permute(_layout.NCHW_TO_NHWC)

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
    "max_pool2d": "F.max_pool2d (NCHW; F.pad(-inf) for the uneven rest)",
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


# --------------------------------------------------------------------------- conform target
#
# ``nnref conform torch``: PyTorch itself in nnref's contract, each op written as a PyTorch user
# writes it (no TF definition composed): where PyTorch's convention differs from TF's, the
# target shows it.


class Residuals(NamedTuple):
    """What ``NAME_bwd`` needs: the output tensor (its autograd graph) and the input tensors."""

    output: Any
    inputs: tuple[Any, ...]


def _conform_op(fn: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(NAME_fwd, NAME_bwd)`` from a PyTorch function ``fn(*inputs, **hyper)``: the forward
    copies the inputs into tensors (float ones requiring grad) and keeps the graph; the backward
    is ``torch.autograd.grad`` at ``dy`` (the graph retained, so it can be called again).
    Integer inputs (labels) get ``None``."""

    def fwd(*args: Any, **static: Any) -> tuple[np.ndarray, Residuals]:
        torch = import_torch()
        inputs = tuple(torch.tensor(a, requires_grad=_is_float(a)) for a in args)
        y = fn(*inputs, **static)
        return y.detach().numpy().copy(), Residuals(y, inputs)

    def bwd(res: Residuals, dy: Any) -> tuple[np.ndarray | None, ...]:
        torch = import_torch()
        watched = [t for t in res.inputs if t.requires_grad]
        g = iter(
            torch.autograd.grad(
                res.output,
                watched,
                grad_outputs=torch.tensor(dy),
                retain_graph=True,
                materialize_grads=True,
            )
        )
        return tuple(next(g).numpy() if t.requires_grad else None for t in res.inputs)

    return fwd, bwd


def _conv_port_pads(ksize: Any, dilations: Any) -> tuple[int, int]:
    """The usual port of a strided TF ``SAME`` conv to PyTorch's symmetric ``padding=``:
    ``k // 2`` of the dilated kernel ``k = d (k - 1) + 1`` on each side."""
    k, d = _layout.spatial(ksize), _layout.spatial(dilations)
    return (d[0] * (k[0] - 1) + 1) // 2, (d[1] * (k[1] - 1) + 1) // 2


def _symmetric(op: str, padding: Any) -> tuple[int, int]:
    """Explicit TF pads that PyTorch's ``padding=`` can express (the same on both sides)."""
    (t, b), (left, right) = _layout.explicit_pads(padding)
    if (t, left) != (b, right):
        raise ValueError(
            f"{op}: PyTorch pads symmetrically; pads {((t, b), (left, right))} differ by side"
        )
    return t, left


def _tconv2d(
    x: Any, w: Any, *, strides: Any = 1, padding: Any = "VALID", dilations: Any = 1
) -> Any:
    """``F.conv2d`` on NCHW / OIHW (permuted inside the graph).

    ``"VALID"``: ``padding="valid"``. ``"SAME"``: ``padding="same"`` at stride 1 (PyTorch puts
    an odd pad after, as TF; its UserWarning that an even kernel costs a padded copy is
    silenced); at stride > 1, where ``padding="same"`` raises, the usual port ``padding=k // 2``
    (of the dilated kernel). Explicit pads: ``padding=(t, l)`` when symmetric, else ``F.pad``
    first.
    """
    F = _F()
    s, d = _layout.spatial(strides), _layout.spatial(dilations)
    # Contiguous NCHW / OIHW, as a PyTorch user's tensors are: with a permuted (non-contiguous)
    # kernel, the backward of padding="same" with an even kernel raises "slow_conv2d:
    # grad_weight must be contiguous" (torch 2.13 CPU, a 1x1 input and a 1x2 kernel).
    xc = x.permute(_layout.NHWC_TO_NCHW).contiguous()
    wc = w.permute(_layout.HWIO_TO_OIHW).contiguous()
    pad: Any
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"conv2d: padding must be 'SAME', 'VALID' or pairs, got {padding!r}")
        if padding.upper() == "VALID":
            pad = "valid"
        else:
            pad = "same" if s == (1, 1) else _conv_port_pads(w.shape[:2], d)
    else:
        (t, b), (left, right) = _layout.explicit_pads(padding)
        pad = (t, left)
        if (t, left) != (b, right):
            xc, pad = F.pad(xc, (left, right, t, b)), 0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using padding='same' with even kernel", UserWarning)
        y = F.conv2d(xc, wc, stride=s, padding=pad, dilation=d)
    return y.permute(_layout.NCHW_TO_NHWC)


def _tmax_pool2d(x: Any, *, ksize: Any, strides: Any, padding: Any = "VALID") -> Any:
    """``F.max_pool2d`` on NCHW as is: ``"VALID"`` without padding, ``"SAME"`` as the usual port
    ``padding=(k - 1) // 2`` (``nn.MaxPool2d(3, 2, padding=1)``; ``nn.MaxPool2d(2)`` for 2x2),
    explicit pads when symmetric (PyTorch's own padding never wins)."""
    k = _layout.spatial(ksize)
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"max_pool2d: padding must be 'SAME', 'VALID' or pairs, got {padding!r}"
            )
        pad = (0, 0) if padding.upper() == "VALID" else ((k[0] - 1) // 2, (k[1] - 1) // 2)
    else:
        pad = _symmetric("max_pool2d", padding)
    xc = x.permute(_layout.NHWC_TO_NCHW).contiguous()
    y = _F().max_pool2d(xc, k, _layout.spatial(strides), pad)
    return y.permute(_layout.NCHW_TO_NHWC)


def _tmse(
    y_true: Any, y_pred: Any, *, reduction: str = "sum_over_batch_size", sample_weight: Any = None
) -> Any:
    """``F.mse_loss(reduction="none").mean(-1)`` per sample, then Keras' ``sample_weight`` and
    ``reduction`` as a PyTorch user writes them: ``(w * l).mean()``, ``.sum()`` or ``w * l``."""
    per = _F().mse_loss(y_pred, y_true, reduction="none").mean(-1)
    if sample_weight is not None:
        per = per * import_torch().as_tensor(sample_weight)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    if reduction == "sum_over_batch_size":
        return per.mean()
    raise ValueError(f"mean_squared_error: unknown reduction {reduction!r}")


def _argmax(x: Any, *, axis: int = -1) -> np.ndarray:
    """``torch.argmax(x, dim=axis)`` (NaN wins, as ``np.argmax``)."""
    torch = import_torch()
    return torch.argmax(torch.as_tensor(x), dim=axis).numpy()


def _accuracy(y_true: Any, y_pred: Any) -> float:
    """``(argmax(y_pred, -1) == class).to(y_pred.dtype).mean()`` with ``torch.argmax``; the class
    is ``y_true`` (a trailing axis of 1 squeezed) or, for one-hot rows, their argmax."""
    torch = import_torch()
    t, p = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    if t.shape == p.shape and p.shape[-1] > 1:
        t = t.argmax(-1)
    elif t.shape == (*p.shape[:-1], 1):
        t = t[..., 0]
    return (p.argmax(-1) == t).to(p.dtype).mean().item()


def _one_hot(
    indices: Any,
    depth: int,
    *,
    on_value: float = 1.0,
    off_value: float = 0.0,
    axis: int = -1,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``F.one_hot(indices, depth)`` (int64; it raises for indices outside ``[0, depth)``) as
    ``dtype``, mapped to ``on_value`` / ``off_value`` and moved to ``axis``."""
    torch = import_torch()
    hot = _F().one_hot(torch.as_tensor(indices), depth).numpy().astype(bool)
    dt = np.dtype(dtype)
    return np.moveaxis(np.where(hot, dt.type(on_value), dt.type(off_value)), -1, axis)


def _torch_optimizer(name: str, cls: Any, kw: dict[str, Any]) -> Any:
    """nnref's pure ``init`` / ``update`` contract over a ``torch.optim`` class: each update
    builds the optimizer on fresh copies of the parameters, loads the state dict of the previous
    step, sets ``.grad`` and calls ``step()``; inputs are never written."""
    import copy

    from nnref.optim import Optimizer, OptState

    torch = import_torch()
    cls([torch.zeros(1, requires_grad=True)], **kw)  # refuse bad hyperparameters now

    def init(params: Sequence[np.ndarray]) -> OptState:
        return OptState(0, {"torch": None})

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], OptState]:
        ts = [torch.tensor(p, requires_grad=True) for p in params]
        opt = cls(ts, **kw)
        if state.slots["torch"] is not None:
            opt.load_state_dict(copy.deepcopy(state.slots["torch"]))
        for t, g in zip(ts, grads, strict=True):
            t.grad = torch.tensor(g)
        opt.step()
        new = [t.detach().numpy() for t in ts]
        return new, OptState(state.iterations + 1, {"torch": copy.deepcopy(opt.state_dict())})

    return Optimizer(name, dict(kw), init, update)


def _torch_keywords(op: str, static: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Keras' hyperparameter names as ``torch.optim``'s (``learning_rate`` -> ``lr``); only
    those given, so that PyTorch's own defaults apply to the rest."""
    unknown = sorted(set(static) - set(mapping))
    if unknown:
        raise TypeError(f"{op}: no torch.optim counterpart for {unknown}; known: {sorted(mapping)}")
    return {mapping[k]: v for k, v in static.items()}


def _sgd(**static: Any) -> Any:
    """``torch.optim.SGD(lr, momentum, nesterov)``."""
    kw = _torch_keywords(
        "sgd", static, {"learning_rate": "lr", "momentum": "momentum", "nesterov": "nesterov"}
    )
    return _torch_optimizer("sgd", import_torch().optim.SGD, kw)


def _adam(**static: Any) -> Any:
    """``torch.optim.Adam(lr, betas, eps, amsgrad)`` (a beta not given keeps PyTorch's)."""
    betas = (static.pop("beta_1", 0.9), static.pop("beta_2", 0.999))
    kw = _torch_keywords(
        "adam", static, {"learning_rate": "lr", "epsilon": "eps", "amsgrad": "amsgrad"}
    )
    return _torch_optimizer("adam", import_torch().optim.Adam, {**kw, "betas": betas})


def _rmsprop(**static: Any) -> Any:
    """``torch.optim.RMSprop(lr, alpha, eps, momentum, centered)``."""
    kw = _torch_keywords(
        "rmsprop",
        static,
        {
            "learning_rate": "lr",
            "rho": "alpha",
            "epsilon": "eps",
            "momentum": "momentum",
            "centered": "centered",
        },
    )
    return _torch_optimizer("rmsprop", import_torch().optim.RMSprop, kw)


def conform_target() -> dict[str, Callable[..., Any]]:
    """PyTorch itself as an ``nnref conform`` target (``nnref conform torch``).

    Each op is written as a PyTorch user writes it, in nnref's contract (NumPy in and out, NHWC
    / HWIO outside and NCHW / OIHW inside the graph, dtype preserved): ``NAME_fwd`` keeps the
    autograd graph and ``NAME_bwd`` is ``torch.autograd.grad``. ``conv2d`` ports a strided
    ``SAME`` as ``padding=k // 2`` (``padding="same"`` refuses strides > 1), ``max_pool2d`` is
    ``F.max_pool2d`` with ``SAME`` as ``padding=(k - 1) // 2``, the cross-entropies are
    ``F.cross_entropy`` with its defaults (``ignore_index=-100``), ``argmax`` / ``one_hot`` are
    ``torch.argmax`` / ``F.one_hot``, and ``sgd`` / ``adam`` / ``rmsprop`` wrap ``torch.optim``
    (Keras' hyperparameter names mapped to PyTorch's; PyTorch's defaults where none is given).
    Where PyTorch's convention is not TF's, the target shows PyTorch's (``nnref conform torch``
    passes under the ``torch`` profile and fails under ``tf`` exactly there).

    Not provided (PyTorch has no such function): Keras' ``sparse_categorical_crossentropy`` and
    ``categorical_crossentropy`` (probability inputs, Keras' 1e-7 clip), ``kfold_sizes`` and
    ``kfold_batches``.

    Returns
    -------
    dict
        nnref's names to functions; PyTorch is imported here.
    """
    torch = import_torch()
    F = _F()
    ops: dict[str, Callable[..., Any]] = {
        "dense": lambda x, w, b: F.linear(x, w.T, b),
        "bias_add": lambda x, b: x + b,
        "conv2d": _tconv2d,
        "max_pool2d": _tmax_pool2d,
        "relu": F.relu,
        "sigmoid": torch.sigmoid,
        "softmax": lambda x, axis=-1: F.softmax(x, dim=axis),
        "log_softmax": lambda x, axis=-1: F.log_softmax(x, dim=axis),
        "sparse_softmax_cross_entropy_with_logits": lambda labels, logits: F.cross_entropy(
            _classes_to_dim1(logits), labels, reduction="none"
        ),
        "softmax_cross_entropy_with_logits": lambda labels, logits: F.cross_entropy(
            _classes_to_dim1(logits), _classes_to_dim1(labels), reduction="none"
        ),
        "mean_squared_error": _tmse,
    }
    target: dict[str, Callable[..., Any]] = {}
    for name, fn in ops.items():
        target[name + "_fwd"], target[name + "_bwd"] = _conform_op(fn)
    target.update(
        argmax=_argmax, accuracy=_accuracy, one_hot=_one_hot, sgd=_sgd, adam=_adam, rmsprop=_rmsprop
    )
    return target
