"""Intra-op parallelism: split work with disjoint outputs over the machine's cores.

NumPy's ufuncs and BLAS calls release the GIL, so Python threads that each handle a slice of an
element-wise pass (or a slice of independent GEMMs) run on separate cores. Only work whose
results do not depend on the split may use this: element-wise passes and disjoint output
blocks give the same bits for any number of threads, so nnref's results stay deterministic.
Reductions must not be split here (their summation order would follow the thread count).

``NNREF_NUM_THREADS`` caps the number of threads (``1`` turns parallelism off); the default is
the number of cores this process may run on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_LOCAL = threading.local()


def num_threads() -> int:
    """Threads an op may use: ``NNREF_NUM_THREADS`` if set, else the usable cores."""
    env = os.environ.get("NNREF_NUM_THREADS")
    if env is not None:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"NNREF_NUM_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"NNREF_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None or _POOL._max_workers < workers:  # grown only if the cap was raised
            _POOL = ThreadPoolExecutor(workers, thread_name_prefix="nnref")
        return _POOL


def chunks(n: int, k: int) -> list[tuple[int, int]]:
    """``k`` contiguous ranges covering ``range(n)``, sizes differing by at most one."""
    q, r = divmod(n, k)
    out, lo = [], 0
    for i in range(k):
        hi = lo + q + (i < r)
        out.append((lo, hi))
        lo = hi
    return out


def parallel_for(fn: Callable[[int, int], None], n: int, *, min_chunk: int) -> None:
    """Call ``fn(lo, hi)`` over contiguous ranges covering ``range(n)``, one per thread.

    Ranges are at least ``min_chunk`` long (smaller work runs in the caller's thread alone:
    a thread hand-off costs tens of microseconds). The caller's thread takes the first range.
    Calls made from inside a worker run serially, so nested ops never wait on their own pool.
    """
    k = min(num_threads(), n // max(min_chunk, 1))
    if k <= 1 or getattr(_LOCAL, "inside", False):
        fn(0, n)
        return
    parts = chunks(n, k)
    pool = _pool(k - 1)

    def run(lo: int, hi: int) -> None:
        _LOCAL.inside = True
        try:
            fn(lo, hi)
        finally:
            _LOCAL.inside = False

    futures = [pool.submit(run, lo, hi) for lo, hi in parts[1:]]
    try:
        run(*parts[0])
    finally:
        for f in futures:  # always wait: the workers write into the caller's arrays
            f.result()
