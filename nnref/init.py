"""Initializers with Keras' formulas, drawn from seeded NumPy generators.

NumPy cannot reproduce TF's Philox streams, so values differ from Keras'; the distributions
(bounds, fans, moments) are Keras'. Every function takes ``rng``: a ``numpy.random.Generator`` or
an int seed. No global random state is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnref import _memory
from nnref._validate import is_int, is_real

Rng = np.random.Generator | int


def as_generator(rng: Rng, name: str) -> np.random.Generator:
    """``rng`` as a Generator (an int seeds a fresh one); ``name``: the function taking it, named
    in the TypeError for anything else."""
    if isinstance(rng, np.random.Generator):
        return rng
    if is_int(rng):
        if rng < 0:  # NumPy's own message names neither the function nor the argument
            raise ValueError(f"{name}: an int seed for 'rng' must be >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name}: 'rng' must be a numpy.random.Generator or an int seed, got {type(rng).__name__}"
    )


def _shape(name: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple: a sequence of ints, as Keras' initializers take (``fans`` reads
    its length); a bare int is not a 1-tuple here, and a float dimension is not truncated."""
    if isinstance(shape, str) or not isinstance(shape, Sequence | np.ndarray):
        raise TypeError(
            f"{name}: 'shape' must be a tuple of ints such as (784, 300) or (5,), got {shape!r}"
        )
    if not all(is_int(d) for d in shape):
        raise TypeError(f"{name}: 'shape' must hold ints, got {shape!r}")
    s = tuple(int(d) for d in shape)
    if any(d < 0 for d in s):
        raise ValueError(f"{name}: negative dimension in shape {s}")
    return s


def _dtype(name: str, dtype: Any, *, floating: bool = True) -> np.dtype:
    """``dtype`` as a NumPy dtype; ``None`` is Keras' floatx, float32 (NumPy's would be float64).
    The random initializers take floating dtypes only: an int or bool dtype once truncated the
    draws silently (glorot_uniform gave 0 and -1, random_normal all zeros, bool all True), and
    complex ones were accepted; Keras' RandomNormal and RandomUniform refuse all three."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: 'dtype' {dtype!r} is not a NumPy dtype") from None
    if floating and dt.kind != "f":
        raise TypeError(
            f"{name}: 'dtype' must be a floating-point dtype such as float32, got {dt} "
            "(nnref does not cast silently)"
        )
    return dt


def _finite(name: str, dt: np.dtype, **values: Any) -> None:
    """Real numbers that are finite in ``dt``: ``None`` once reached NumPy as a bare TypeError,
    ``-inf`` as an OverflowError, and ``minval=-1e39`` in float32 silently became -inf draws."""
    for arg, v in values.items():
        if not is_real(v):
            raise TypeError(f"{name}: '{arg}' must be a real number, got {v!r}")
        if not abs(v) <= float(np.finfo(dt).max):
            raise ValueError(f"{name}: '{arg}' {v!r} is not finite in {dt}")


def _make(
    name: str, s: tuple[int, ...], dt: np.dtype, make: Callable[[], np.ndarray], what: str
) -> np.ndarray:
    """``make()``, an array of shape ``s`` and dtype ``dt``; one too large to allocate raises
    the MemoryError naming ``name``, ``'shape'`` and the size (not NumPy's from the draw)."""
    try:
        return make()
    except _memory.TOO_LARGE as e:
        raise _memory.too_large(name, f"'shape' {s}", what, s, dt) from e


#: The random initializers draw in float64 and cast (NumPy's generators draw float64): the
#: cast's result, when the draw could be allocated and it could not.
_DRAWN = "an array (drawn in float64, then cast)"


def _drawn(
    name: str, s: tuple[int, ...], dt: np.dtype, draw: Callable[[], np.ndarray]
) -> np.ndarray:
    """``draw()`` (float64, shape ``s``) cast to ``dt``; the MemoryError reports the allocation
    that failed: the float64 draw's size (twice a float32 result's), or the cast's in ``dt``.
    A float64 result is the draw itself (no copy)."""
    cast = "" if dt == np.float64 else f" (then cast to {dt})"
    drawn = _make(name, s, np.dtype(np.float64), draw, f"a float64 draw{cast}")
    return _make(name, s, dt, lambda: drawn.astype(dt, copy=False), _DRAWN)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' ``compute_fans``: a kernel's receptive field multiplies both fans.

    ``(in, out)`` dense kernels give ``(in, out)``; HWIO conv kernels give
    ``(KH*KW*I, KH*KW*O)``; rank 1 gives ``(n, n)``; rank 0 gives ``(1, 1)``.
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(rng: Rng, shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """``keras.initializers.GlorotUniform``: ``U(-limit, limit)``,
    ``limit = sqrt(3 * 1 / max(1, (fan_in + fan_out) / 2)) = sqrt(6 / (fan_in + fan_out))``."""
    s = _shape("glorot_uniform", shape)
    dt = _dtype("glorot_uniform", dtype)
    fan_in, fan_out = fans(s)
    limit = math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0))
    gen = as_generator(rng, "glorot_uniform")
    return _drawn("glorot_uniform", s, dt, lambda: gen.uniform(-limit, limit, s))


def random_normal(
    rng: Rng, shape: Any, dtype: Any = np.float32, *, mean: float = 0.0, stddev: float = 0.05
) -> np.ndarray:
    """``keras.initializers.RandomNormal`` (mean 0, **stddev 0.05** by default, as
    ``tf.initializers.RandomNormal()``; ``tf.random.normal`` uses stddev 1)."""
    s = _shape("random_normal", shape)
    dt = _dtype("random_normal", dtype)
    _finite("random_normal", dt, mean=mean, stddev=stddev)
    gen = as_generator(rng, "random_normal")
    return _drawn("random_normal", s, dt, lambda: gen.standard_normal(s) * stddev + mean)


def uniform(
    rng: Rng, shape: Any, dtype: Any = np.float32, *, minval: float = -0.05, maxval: float = 0.05
) -> np.ndarray:
    """``keras.initializers.RandomUniform`` (defaults -0.05, 0.05)."""
    s = _shape("uniform", shape)
    dt = _dtype("uniform", dtype)
    _finite("uniform", dt, minval=minval, maxval=maxval)
    if not minval < maxval:
        raise ValueError(f"uniform: need minval < maxval, got {minval}, {maxval}")
    gen = as_generator(rng, "uniform")
    return _drawn("uniform", s, dt, lambda: gen.uniform(minval, maxval, s))


def zeros(rng: Rng | None, shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """``keras.initializers.Zeros`` (``rng`` accepted for a uniform signature, unused)."""
    s, dt = _shape("zeros", shape), _dtype("zeros", dtype, floating=False)
    return _make("zeros", s, dt, lambda: np.zeros(s, dt), "an array")


def ones(rng: Rng | None, shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """``keras.initializers.Ones``."""
    s, dt = _shape("ones", shape), _dtype("ones", dtype, floating=False)
    return _make("ones", s, dt, lambda: np.ones(s, dt), "an array")
