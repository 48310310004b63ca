"""NumPy references of PyTorch's and optax's SGD, Adam and RMSprop, for the conventions of
:mod:`nnref.cases.conventions` (what ``nnref conform torch|jax`` expects under those profiles).

Each factory takes Keras' hyperparameter names (the case tables' ``static``), fills in the
framework's own defaults for those not given, and returns an optimizer in nnref's pure
``init`` / ``update`` contract (:class:`nnref.optim.Optimizer`). They differ from Keras'
(:mod:`nnref.optim`) in three measured ways (:mod:`nnref.oracles.semantics`):

- hyperparameters are used at the parameters' precision: a float64 step with ``lr = 0.1`` uses
  0.1, where Keras keeps the learning rate (and SGD's momentum, Adam's betas) as float32;
- Adam adds ``eps`` to ``sqrt(v_hat)`` after bias correction (Keras: to ``sqrt(v)`` before);
  PyTorch's RMSprop adds it outside the square root (Keras and optax: inside);
- the defaults: PyTorch's Adam ``lr=1e-3, eps=1e-8``, RMSprop ``lr=1e-2, alpha=0.99,
  eps=1e-8``; optax has no default learning rate (``adam()`` raises ``TypeError``), Adam
  ``eps=1e-8``, RMSprop ``decay=0.9, eps=1e-8``.

The update formulas follow each framework's source (``torch/optim/{sgd,adam,rmsprop}.py``,
single-tensor path; ``optax/_src/transform.py``) in operation order; the conformance runs of
the frameworks against them (``tests/test_conform_frameworks.py``) are the measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnref.optim import Optimizer, OptState, Params

Step = Callable[[int, np.ndarray, np.ndarray, dict[str, np.ndarray]], np.ndarray]


def _optimizer(name: str, config: dict[str, Any], slots: tuple[str, ...], step: Step) -> Optimizer:
    """An :class:`~nnref.optim.Optimizer` from a per-parameter ``step(t, g, p, slots) -> p``
    that writes its new slot values into ``slots`` (a fresh dict per parameter and step)."""

    def init(params: Sequence[np.ndarray]) -> OptState:
        return OptState(0, {s: [np.zeros_like(p) for p in params] for s in slots})

    def update(
        grads: Sequence[np.ndarray], state: OptState, params: Sequence[np.ndarray]
    ) -> tuple[Params, OptState]:
        t = state.iterations + 1
        new_p: Params = []
        out: dict[str, list[np.ndarray]] = {s: [] for s in slots}
        for k, (g, p) in enumerate(zip(grads, params, strict=True)):
            mine = {s: state.slots[s][k] for s in slots}
            new_p.append(step(t, g, p, mine))
            for s in slots:
                out[s].append(mine[s])
        return new_p, OptState(t, out)

    return Optimizer(name, config, init, update)


def sgd(learning_rate: float, momentum: float = 0.0, nesterov: bool = False) -> Optimizer:
    """``torch.optim.SGD`` / ``optax.sgd``: ``buf = mu buf + g`` (``buf = g`` at the first step),
    ``p -= lr (g + mu buf)`` with Nesterov, else ``p -= lr buf``; without momentum
    ``p -= lr g``. The learning rate is required (optax has no default)."""

    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        if not momentum:
            return p - learning_rate * g
        buf = g.copy() if t == 1 else s["buf"] * momentum + g
        s["buf"] = buf
        return p - learning_rate * (g + momentum * buf if nesterov else buf)

    cfg = {"learning_rate": learning_rate, "momentum": momentum, "nesterov": nesterov}
    return _optimizer("sgd", cfg, ("buf",), step)


def torch_adam(
    learning_rate: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    amsgrad: bool = False,
) -> Optimizer:
    """``torch.optim.Adam``: ``m = lerp(m, g, 1 - b1)``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``; AMSGrad replaces ``v`` in
    the denominator by its running maximum (of the uncorrected ``v``)."""

    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        m = s["m"] + (g - s["m"]) * (1 - beta_1)
        v = s["v"] * beta_2 + g * g * (1 - beta_2)
        s["m"], s["v"] = m, v
        if amsgrad:
            v = s["vmax"] = np.maximum(s["vmax"], v)
        denom = np.sqrt(v) / (1 - beta_2**t) ** 0.5 + epsilon
        return p - (learning_rate / (1 - beta_1**t)) * (m / denom)

    cfg = {"learning_rate": learning_rate, "beta_1": beta_1, "beta_2": beta_2}
    cfg.update(epsilon=epsilon, amsgrad=amsgrad)
    return _optimizer("adam", cfg, ("m", "v", "vmax"), step)


def optax_adam(
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    amsgrad: bool = False,
) -> Optimizer:
    """``optax.adam`` (``optax.amsgrad`` with ``amsgrad=True``): ``mu = (1 - b1) g + b1 mu``,
    ``nu = (1 - b2) g^2 + b2 nu``, ``p -= lr mu_hat / (sqrt(nu_hat) + eps)`` with
    ``x_hat = x / (1 - b^t)``; AMSGrad takes the running maximum of the corrected ``nu_hat``
    (PyTorch: of the uncorrected ``v``). No default learning rate."""

    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        mu = g * (1 - beta_1) + s["mu"] * beta_1
        nu = g * g * (1 - beta_2) + s["nu"] * beta_2
        s["mu"], s["nu"] = mu, nu
        nu_hat = nu / (1 - beta_2**t)
        if amsgrad:
            nu_hat = s["nu_max"] = np.maximum(s["nu_max"], nu_hat)
        return p + -learning_rate * ((mu / (1 - beta_1**t)) / (np.sqrt(nu_hat) + epsilon))

    cfg = {"learning_rate": learning_rate, "beta_1": beta_1, "beta_2": beta_2}
    cfg.update(epsilon=epsilon, amsgrad=amsgrad)
    return _optimizer("adam", cfg, ("mu", "nu", "nu_max"), step)


def torch_rmsprop(
    learning_rate: float = 1e-2,
    rho: float = 0.99,
    momentum: float = 0.0,
    epsilon: float = 1e-8,
    centered: bool = False,
) -> Optimizer:
    """``torch.optim.RMSprop`` (``rho`` is its ``alpha``): ``v = rho v + (1 - rho) g^2``;
    centered ``mg = lerp(mg, g, 1 - rho)`` and ``avg = sqrt(v - mg^2) + eps``, else
    ``avg = sqrt(v) + eps`` (epsilon outside the root); with momentum ``buf = mu buf + g / avg``
    and ``p -= lr buf``, else ``p -= lr g / avg``."""

    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        v = s["v"] = s["v"] * rho + g * g * (1 - rho)
        if centered:
            mg = s["mg"] = s["mg"] + (g - s["mg"]) * (1 - rho)
            avg = np.sqrt(v - mg * mg) + epsilon
        else:
            avg = np.sqrt(v) + epsilon
        if momentum > 0:
            buf = s["buf"] = s["buf"] * momentum + g / avg
            return p - learning_rate * buf
        return p - learning_rate * (g / avg)

    cfg = {"learning_rate": learning_rate, "rho": rho, "momentum": momentum}
    cfg.update(epsilon=epsilon, centered=centered)
    return _optimizer("rmsprop", cfg, ("v", "mg", "buf"), step)


def optax_rmsprop(
    learning_rate: float,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-8,
    centered: bool = False,
) -> Optimizer:
    """``optax.rmsprop`` (``rho`` is its ``decay``): ``nu = (1 - rho) g^2 + rho nu``; centered
    ``mu = (1 - rho) g + rho mu`` and ``u = g / sqrt(nu - mu^2 + eps)``, else
    ``u = g / sqrt(nu + eps)`` (epsilon inside the root, as Keras); ``u *= -lr``; with
    momentum ``t = u + momentum t``, ``p += t``. No default learning rate."""

    def step(t: int, g: np.ndarray, p: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        nu = s["nu"] = g * g * (1 - rho) + s["nu"] * rho
        if centered:
            mu = s["mu"] = g * (1 - rho) + s["mu"] * rho
            u = g / np.sqrt(nu - mu * mu + epsilon)
        else:
            u = g / np.sqrt(nu + epsilon)
        u = -learning_rate * u
        if momentum:
            u = s["trace"] = u + momentum * s["trace"]
        return p + u

    cfg = {"learning_rate": learning_rate, "rho": rho, "momentum": momentum}
    cfg.update(epsilon=epsilon, centered=centered)
    return _optimizer("rmsprop", cfg, ("nu", "mu", "trace"), step)
