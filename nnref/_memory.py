"""Allocations whose size an argument sets (a padding, a depth, a shape), private.

Nothing is checked against the memory available up front (that is the machine's business and
changes by the second): the allocation is tried, and its failure re-raised as a MemoryError that
names the op, the arguments responsible and the result's shape and size, instead of NumPy's
"Unable to allocate 284. PiB" from deep inside. NumPy refuses a size beyond its index range with
a ValueError ("array is too big", "Maximum allowed dimension exceeded") and Python a list longer
than that with an OverflowError: the same MemoryError for all, since no machine could hold the
result either way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: What an allocation too large for the machine or for NumPy's index range raises.
TOO_LARGE = (MemoryError, ValueError, OverflowError)

_UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def size_str(nbytes: int) -> str:
    """``nbytes`` in decimal units, three significant digits: ``64 GB``, ``284 PB``."""
    if nbytes < 1000:
        return f"{nbytes} bytes"
    i = min(len(_UNITS) - 1, (len(str(nbytes)) - 1) // 3)
    v = nbytes / 1000**i
    if float(f"{v:.3g}") >= 1000 and i < len(_UNITS) - 1:  # 999,999 bytes: 1 MB, not 1e+03 kB
        i, v = i + 1, v / 1000
    return f"{v:.3g} {_UNITS[i]}"


def too_large(op: str, cause: str, what: str, shape: tuple[int, ...], dtype: Any) -> MemoryError:
    """The error for ``what`` (``"an output"``) of ``shape`` and ``dtype`` that cannot be
    allocated, ``cause`` naming the arguments that set its size; raise it ``from`` the original
    error."""
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    limit = np.iinfo(np.intp).max
    why = (
        "beyond NumPy's index range"
        if nbytes > limit or any(d > limit for d in shape)
        else "which cannot be allocated"
    )
    return MemoryError(
        f"{op}: {cause} gives {what} of shape {tuple(shape)} ({dt}, {size_str(nbytes)}), {why}"
    )


def empty(op: str, cause: str, what: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``np.empty(shape, dtype)``, a failure re-raised by :func:`too_large`."""
    try:
        return np.empty(shape, dtype)
    except TOO_LARGE as e:
        raise too_large(op, cause, what, shape, dtype) from e
