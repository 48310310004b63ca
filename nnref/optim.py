"""Optimizers as pure ``init(params)`` / ``update(grads, state, params)`` pairs matching Keras 3.

Bit-exact with ``keras.optimizers.SGD/Adam/RMSprop`` in float32 and float64, including Keras'
float32 rounding: the learning rate is a float32 variable (``0.1 -> 0.10000000149011612`` in
float64), and SGD's ``momentum`` and Adam's ``beta_1``/``beta_2`` in the bias-correction powers
pass through ``keras.ops.cast``, which goes through float32. ``1 - beta``, ``rho``, ``1 - rho``,
``epsilon`` and RMSprop's ``momentum`` stay exact.

``params`` and ``grads`` are sequences of arrays; ``update`` returns new arrays and a new state,
never mutating its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

Params = list[np.ndarray]


class OptState(NamedTuple):
    """``iterations`` as Keras (updates applied so far) and named slot lists."""

    iterations: int
    slots: dict[str, list[np.ndarray]]


class Optimizer(NamedTuple):
    name: str
    config: dict[str, Any]
    init: Callable[[Sequence[np.ndarray]], OptState]
    update: Callable[
        [Sequence[np.ndarray], OptState, Sequence[np.ndarray]], tuple[Params, OptState]
    ]


def _f32(c: float, dtype: np.dtype) -> Any:
    """A Python float as Keras sees it after a float32 variable or ``ops.cast``."""
    return dtype.type(np.float32(c))


def _check_lr(name: str, learning_rate: Any) -> float:
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, float):
        raise TypeError(
            f"{name}: 'learning_rate' must be a Python float (as Keras requires), "
            f"got {learning_rate!r}"
        )
    if learning_rate <= 0:
        raise ValueError(f"{name}: 'learning_rate' must be positive, got {learning_rate}")
    return learning_rate


def _check_update(name: str, grads: Sequence[Any], params: Sequence[Any]) -> None:
    if len(grads) != len(params):
        raise ValueError(f"{name}: {len(grads)} gradients for {len(params)} parameters")
    for k, (g, p) in enumerate(zip(grads, params, strict=True)):
        if g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(
                f"{name}: gradient {k} is {g.dtype}{g.shape}, parameter is {p.dtype}{p.shape}"
            )


def _zeros(params: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.zeros_like(p) for p in params]


def sgd(learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> Optimizer:
    """``keras.optimizers.SGD``.

    Notes
    -----
    ``x -= lr g`` without momentum; otherwise ``m = mu m - lr g`` and ``x += m`` (Nesterov:
    ``x += mu m - lr g`` with the updated ``m``).
    """
    lr = _check_lr("sgd", learning_rate)
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"sgd: 'momentum' must be in [0, 1], got {momentum}")

    def init(params: Sequence[np.ndarray]) -> OptState:
        return OptState(0, {"momentum": _zeros(params)} if momentum else {})

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[Params, OptState]:
        _check_update("sgd", grads, params)
        new_p, new_m = [], []
        for k, (g, p) in enumerate(zip(grads, params, strict=True)):
            a = _f32(lr, p.dtype)
            if momentum:
                mu = _f32(momentum, p.dtype)
                m = state.slots["momentum"][k] * mu - g * a
                new_m.append(m)
                new_p.append(p + (m * mu - g * a) if nesterov else p + m)
            else:
                new_p.append(p - g * a)
        return new_p, OptState(state.iterations + 1, {"momentum": new_m} if momentum else {})

    return Optimizer(
        "sgd", {"learning_rate": lr, "momentum": momentum, "nesterov": nesterov}, init, update
    )


def adam(
    learning_rate: float = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
) -> Optimizer:
    """``keras.optimizers.Adam`` (the "epsilon-hat" form).

    Notes
    -----
    With ``t = iterations + 1``: ``alpha = lr sqrt(1 - b2^t) / (1 - b1^t)``,
    ``m += (g - m)(1 - b1)``, ``v += (g^2 - v)(1 - b2)``, ``x -= m alpha / (sqrt(v) + eps)``
    (AMSGrad: ``v`` replaced by its running maximum). This differs from the textbook
    ``lr m_hat / (sqrt(v_hat) + eps)`` when ``eps`` is not negligible.
    """
    lr = _check_lr("adam", learning_rate)
    for name, b in (("beta_1", beta_1), ("beta_2", beta_2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"adam: '{name}' must be in [0, 1), got {b}")

    def init(params: Sequence[np.ndarray]) -> OptState:
        slots = {"m": _zeros(params), "v": _zeros(params)}
        if amsgrad:
            slots["vhat"] = _zeros(params)
        return OptState(0, slots)

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[Params, OptState]:
        _check_update("adam", grads, params)
        t = state.iterations + 1
        out: dict[str, list[np.ndarray]] = {k: [] for k in state.slots}
        new_p = []
        for k, (g, p) in enumerate(zip(grads, params, strict=True)):
            dt = p.dtype
            one = dt.type(1)
            b1p = _f32(beta_1, dt) ** dt.type(t)
            b2p = _f32(beta_2, dt) ** dt.type(t)
            alpha = _f32(lr, dt) * np.sqrt(one - b2p) / (one - b1p)
            m0, v0 = state.slots["m"][k], state.slots["v"][k]
            # Keras' operation order, written with out= so each result is one fresh array and
            # few temporaries (the inputs are never written): m0 + (g - m0) * (1 - b1), etc.
            m = np.subtract(g, m0)
            m *= dt.type(1 - beta_1)
            m += m0
            v = np.multiply(g, g)
            v -= v0
            v *= dt.type(1 - beta_2)
            v += v0
            out["m"].append(m)
            out["v"].append(v)
            used = v
            if amsgrad:
                used = np.maximum(state.slots["vhat"][k], v)
                out["vhat"].append(used)
            den = np.sqrt(used)
            den += dt.type(epsilon)
            step = np.multiply(m, alpha)
            step /= den
            new_p.append(np.subtract(p, step, out=step))
        return new_p, OptState(t, out)

    cfg = {
        "learning_rate": lr,
        "beta_1": beta_1,
        "beta_2": beta_2,
        "epsilon": epsilon,
        "amsgrad": amsgrad,
    }
    return Optimizer("adam", cfg, init, update)


def rmsprop(
    learning_rate: float = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
) -> Optimizer:
    """``keras.optimizers.RMSprop`` (epsilon inside the square root, slots start at zero).

    Notes
    -----
    ``v = rho v + (1 - rho) g^2``; centered: ``mg = rho mg + (1 - rho) g`` and
    ``den = v - mg^2 + eps``, else ``den = v + eps``; ``inc = lr g / sqrt(den)``; with momentum
    ``mom = momentum mom + inc`` and ``x -= mom``, else ``x -= inc``. (The legacy
    ``tf.compat.v1.train.RMSPropOptimizer`` starts ``v`` at ones and uses eps 1e-10.)
    """
    lr = _check_lr("rmsprop", learning_rate)

    def init(params: Sequence[np.ndarray]) -> OptState:
        slots = {"v": _zeros(params)}
        if centered:
            slots["mg"] = _zeros(params)
        if momentum > 0:
            slots["mom"] = _zeros(params)
        return OptState(0, slots)

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[Params, OptState]:
        _check_update("rmsprop", grads, params)
        out: dict[str, list[np.ndarray]] = {k: [] for k in state.slots}
        new_p = []
        for k, (g, p) in enumerate(zip(grads, params, strict=True)):
            dt = p.dtype
            v = dt.type(rho) * state.slots["v"][k] + dt.type(1 - rho) * (g * g)
            out["v"].append(v)
            if centered:
                mg = dt.type(rho) * state.slots["mg"][k] + dt.type(1 - rho) * g
                out["mg"].append(mg)
                den = v - mg * mg + dt.type(epsilon)
            else:
                den = v + dt.type(epsilon)
            inc = (_f32(lr, dt) * g) / np.sqrt(den)
            if momentum > 0:
                mom = dt.type(momentum) * state.slots["mom"][k] + inc
                out["mom"].append(mom)
                new_p.append(p - mom)
            else:
                new_p.append(p - inc)
        return new_p, OptState(state.iterations + 1, out)

    cfg = {
        "learning_rate": lr,
        "rho": rho,
        "momentum": momentum,
        "epsilon": epsilon,
        "centered": centered,
    }
    return Optimizer("rmsprop", cfg, init, update)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {"sgd": sgd, "adam": adam, "rmsprop": rmsprop}
