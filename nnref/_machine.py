"""What floating-point results depend on besides the code and the library versions."""

from __future__ import annotations

import numpy as np


def numpy_simd() -> str:
    """The highest SIMD target NumPy dispatches to on this CPU (e.g. ``X86_V3`` for AVX2,
    ``AVX512_ICL``): its ``exp``, ``log`` and reductions round differently per target, so
    finite-difference errors and float32 training runs are reproducible only on the same one."""
    try:
        from numpy._core import _multiarray_umath as umath  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1.26
        from numpy.core import _multiarray_umath as umath
    dispatch = getattr(umath, "__cpu_dispatch__", [])
    features = getattr(umath, "__cpu_features__", {})
    found = [f for f in dispatch if features.get(f)]
    baseline = getattr(umath, "__cpu_baseline__", [])
    return (found or baseline or [f"numpy {np.__version__}: unknown"])[-1]
