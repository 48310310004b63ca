"""Input makers shared by the case tables: each draws from a seeded generator in a given dtype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Args = tuple[tuple[Any, ...], dict[str, Any]]
Maker = Callable[[np.random.Generator, np.dtype], Args]


def normal(
    rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype, s: float = 1.0
) -> np.ndarray:
    return (rng.standard_normal(shape) * s).astype(dt)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """Values with |x| in [0.1, 2]: ReLU's kink at 0 excluded by construction."""
    mag = rng.uniform(0.1, 2.0, shape)
    return (mag * rng.choice([-1.0, 1.0], shape)).astype(dt)


def probs(
    rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype, scale: bool
) -> np.ndarray:
    """Probability rows; ``scale`` multiplies each row by U(0.5, 2) (CCE's renormalisation)."""
    z = rng.standard_normal(shape)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    if scale:
        p *= rng.uniform(0.5, 2.0, (*shape[:-1], 1))
    # Entries stay <= 0.95, away from Keras' clip at 1 - 1e-7 (a kink within a step's reach).
    p /= np.maximum(1.0, p.max(-1, keepdims=True) / 0.95)
    return p.astype(dt)


def dyadic_rows(rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """Soft labels in multiples of 1/64 whose rows sum to exactly 1 in any float dtype."""
    k = shape[-1]
    counts = rng.multinomial(64 - k, np.full(k, 1.0 / k), size=shape[:-1]) + 1
    return (counts / 64.0).astype(dt)


def labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.integers(0, k, n).astype(np.int64)


def distinct(rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """A permutation of an evenly spaced grid: ties impossible, minimum gap 4/size."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * (4.0 / n) - 2.0).astype(dt)


def small_ints(
    rng: np.random.Generator, shape: tuple[int, ...], dt: np.dtype, hi: int = 3
) -> np.ndarray:
    """Integers in ``[0, hi)`` as floats: many exact ties in every window."""
    return rng.integers(0, hi, shape).astype(dt)


def with_entries(x: np.ndarray, entries: dict[tuple[int, ...], float], dt: np.dtype) -> np.ndarray:
    """``x`` with the given entries set (NaN, +-inf, exact zeros)."""
    x = x.copy()
    for idx, v in entries.items():
        x[idx] = dt.type(v)
    return x
