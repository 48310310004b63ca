"""The machine under the numbers: what floating-point results depend on besides the code and
the library versions, and the C library's heap behaviour that decides how fast ops run."""

from __future__ import annotations

import ctypes
import ctypes.util

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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
#: glibc refuses a larger mmap threshold (HEAP_MAX_SIZE / 2 on 64-bit).
_MMAP_THRESHOLD_MAX = 32 << 20


def keep_freed_memory(*, trim: int = 1 << 30, mmap: int = _MMAP_THRESHOLD_MAX) -> bool:
    """Keep freed heap memory in the process for the next allocation (glibc's ``mallopt``).

    An op returns fresh arrays and the step before frees its own: at the top of the heap that
    can be a grow-and-trim cycle in which every new page faults. Left to glibc the thresholds
    follow the allocation history, so whether a training loop pays it depends on what ran
    before: an earlier nnref ran the 784-512-10 dense step with Adam at 4.1 ms a step and 768
    page faults in one fresh process (its Adam update 2.4 ms, not 0.9). Today's dense and
    seed-CNN steps measured no page faults with or without this call (an Intel Xeon: in a fresh
    process, after TF's import, between TF steps). With this call, allocations below ``mmap``
    bytes come from the heap and its free top is returned to the system only above ``trim``
    bytes (the memory stays with the process): a guard against what other code in the process
    allocates.

    Process-wide, numbers unchanged; ``nnref train`` calls it, a program composing the ops may.
    Returns False (and changes nothing) where the C library is not glibc.
    """
    for name, value, top in (("trim", trim, 2**31 - 1), ("mmap", mmap, _MMAP_THRESHOLD_MAX)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"keep_freed_memory: '{name}' must be an int, got {value!r}")
        if not 0 <= value <= top:  # mallopt takes a C int
            raise ValueError(f"keep_freed_memory: '{name}' must be in [0, {top}], got {value}")
    path = ctypes.util.find_library("c")
    libc = ctypes.CDLL(path) if path else None
    if libc is None or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap) and libc.mallopt(_M_TRIM_THRESHOLD, trim))
