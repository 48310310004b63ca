"""Per-thread scratch buffers that ops reuse across calls (private).

A fresh multi-megabyte temporary is fresh pages: glibc grows the heap for it and trims it back
when it is freed, and the first writes of the next call fault the pages in again (~3,000 minor
faults per seed-CNN step on the DFT path, ~9,500 on the direct one), costing as much as the GEMMs
that fill them. Buffers that never leave an op are therefore kept between calls, one per role,
in the workspace of the thread that runs the work (``threading.local``). A buffer is taken out
while in use and given back when the op no longer reads it, so two threads never share one and
a re-entrant call finds the slot empty and allocates afresh. Each role keeps the last shape
only, which bounds the memory: per thread, one buffer of each role's last shape.
"""

from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()


def _slots() -> dict[str, np.ndarray]:
    return _LOCAL.__dict__.setdefault("slots", {})


def take(role: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The running thread's ``role`` buffer if it has this shape and dtype, else a new one
    (contents undefined, as ``np.empty``). The slot is emptied until :func:`give`."""
    buf = _slots().pop(role, None)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = np.empty(shape, dtype)
    return buf


def give(role: str, buf: np.ndarray) -> None:
    """Return ``buf`` to the running thread's workspace (replacing any other ``role`` buffer,
    so that the workspace holds the last shape only). Only for buffers nothing outside the op
    references."""
    _slots()[role] = buf


def roles() -> set[str]:
    """The roles the running thread's workspace holds a buffer for."""
    return set(_slots())


def nbytes() -> int:
    """Bytes held by the running thread's workspace."""
    return sum(b.nbytes for b in _slots().values())


def clear() -> None:
    """Release the running thread's workspace buffers."""
    _LOCAL.__dict__.pop("slots", None)
