"""Intra-op parallelism: split work with disjoint outputs over the machine's cores.

NumPy's ufuncs and BLAS calls release the GIL, so Python threads that each handle a slice of an
element-wise pass (or a slice of independent GEMMs) run on separate cores. Only work whose
results do not depend on the split may use this: element-wise passes and disjoint output
blocks give the same bits for any number of threads, so nnref's results stay deterministic.
Reductions must not be split here (their summation order would follow the thread count).

``NNREF_NUM_THREADS`` caps the number of threads (``1`` turns parallelism off); the default is
the number of cores this process may run on. The first time nnref's threads share the cores
while no other Python thread is alive, OpenBLAS' idle workers are made to stop spinning sooner
(:func:`shorten_blas_spin`).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_WORKER_PREFIX = "nnref-worker"
_BUSY = 0  # pool workers inside a range now (a caller interrupted while waiting leaves some)
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
            _POOL = ThreadPoolExecutor(workers, thread_name_prefix=_WORKER_PREFIX)
        return _POOL


#: Fewest elements worth a thread in one cheap element-wise pass (relu and its mask, a bias add:
#: ~0.1-0.4 ns per float32 element): a hand-off costs tens of microseconds, so arrays under
#: 256 Ki elements stay in one thread.
ELEMENTWISE_MIN_CHUNK = 1 << 17


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
    a thread hand-off costs tens of microseconds). The ranges are fixed by ``n`` and the thread
    count; threads claim them in order, the caller's first. A worker that has not started when
    the caller runs out of ranges is cancelled, not waited for: on a busy machine, where a woken
    worker may wait milliseconds for a core, the caller does its range instead.
    Calls made from inside a worker run serially, so nested ops never wait on their own pool.
    Workers run in a copy of the caller's context and under the caller's ``np.errstate`` (a
    context variable from NumPy 2, per thread before it).
    """
    # Work for one range needs no thread count (reading it costs an environment lookup and a
    # sched_getaffinity call: ~5 us, a fifth of a small op).
    k = n // max(min_chunk, 1)
    if k > 1:
        k = min(num_threads(), k)
    if k <= 1 or getattr(_LOCAL, "inside", False):
        fn(0, n)
        return
    _short_blas_spin()
    todo = iter(chunks(n, k))
    claim = threading.Lock()
    pool = _pool(k - 1)
    # ``fn`` (and the arrays its closure holds) is reached through ``job`` alone, which the
    # caller empties before returning: a cancelled or finishing worker's queued item is dropped
    # in the worker thread later, and holding ``fn`` there would free the caller's arrays at
    # random times: malloc then trimmed and refilled its heap, and the 784-512-10 dense step
    # page-faulted 20-140 times a step on average (up to ~1500 in one Adam update; ~2.3 us
    # each on this VM).
    job = [fn]

    def drain() -> None:
        _LOCAL.inside = True
        try:
            while True:
                with claim:
                    part = next(todo, None)
                if part is None:
                    return
                job[0](*part)
        finally:
            _LOCAL.inside = False

    err = np.geterr()

    def work() -> None:  # NumPy < 2 keeps np.errstate per thread, not in the context
        global _BUSY
        with _LOCK:
            _BUSY += 1
        try:
            with np.errstate(**err):
                drain()
        finally:
            with _LOCK:
                _BUSY -= 1

    futures = [pool.submit(contextvars.copy_context().run, work) for _ in range(k - 1)]
    try:
        drain()
    finally:
        for f in futures:  # wait for every started worker: they write into the caller's arrays
            if not f.cancel():
                f.result()
        job.clear()  # no worker runs ``fn`` now: the ranges are done and the rest cancelled


# --------------------------------------------------------------------------- BLAS threads
#
# A GEMM split over nnref's threads must run on one BLAS thread per call: two Python threads
# each calling a 2-thread OpenBLAS would oversubscribe the cores (and OpenBLAS serialises
# concurrent multithreaded calls on its one server). NumPy exposes no setter, so the setter is
# looked up in the BLAS that NumPy's extension module links (dlsym on a library handle also
# searches its dependencies). Without it, GEMM stages run in the caller's thread alone.

_BLAS_SYMBOLS = (  # (set, get): scipy-openblas64 (NumPy wheels), scipy-openblas32, plain OpenBLAS
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_BLAS: tuple[Callable[[int], None], Callable[[], int]] | bool | None = False  # False: not looked up
_BLAS_DEPTH = 0
_BLAS_SAVED = 1


def _blas_lib() -> Any:
    """NumPy's extension module as a ctypes library (its BLAS's symbols resolve through it), or
    None."""
    import ctypes

    try:
        core = getattr(np, "_core", None) or np.core  # NumPy < 2: np.core
        return ctypes.CDLL(core._multiarray_umath.__file__)
    except (AttributeError, OSError):
        return None


def _blas_api() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    global _BLAS
    if _BLAS is False:
        import ctypes

        found = None
        lib = _blas_lib()
        for set_name, get_name in _BLAS_SYMBOLS if lib is not None else ():
            try:
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
            except AttributeError:
                continue
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            found = (setter, getter)
            break
        _BLAS = found
    return _BLAS  # type: ignore[return-value]


def blas_is_controllable() -> bool:
    """Whether nnref can hold NumPy's BLAS at one thread (OpenBLAS, as in NumPy's wheels)."""
    return _blas_api() is not None


#: OpenBLAS' idle workers spin this many TSC ticks, as a power of two, before they sleep,
#: once nnref has set it (:func:`shorten_blas_spin`); OpenBLAS' own default is 2**28 (~0.1 s).
BLAS_SPIN_EXP = 20
#: OpenBLAS' threading model (``openblas_get_parallel``: 1 is its own pthreads pool), under the
#: names NumPy's wheels and plain OpenBLAS builds export it.
_PARALLEL_SYMBOLS = (
    "scipy_openblas_get_parallel64_",
    "scipy_openblas_get_parallel",
    "openblas_get_parallel64_",
    "openblas_get_parallel",
)
_SPIN_SET: bool | None = None  # None: not done yet; then whether OpenBLAS' spin is nnref's


def shorten_blas_spin() -> bool:
    """Have NumPy's OpenBLAS workers spin ``2**BLAS_SPIN_EXP`` ticks (~0.4 ms) when idle, not
    OpenBLAS' default 2**28 (~0.1 s), for the rest of the process. Returns whether they do.

    After each multithreaded GEMM (a user's ``@`` between nnref ops) the idle workers
    busy-wait and take a core from nnref's threads: the composed seed-CNN step, whose dense
    layers are the user's ``@``, ran at 126-135 ms instead of 83-88 (Intel Xeon, 2 cores;
    ``benchmarks/blas_spin.py``). OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` when it loads and
    applies it when its pool starts, so the variable is set for it to read again
    (``openblas_read_env``; removed afterwards) and the pool is stopped
    (``blas_thread_shutdown_``, as OpenBLAS does before a fork), to restart with the short spin
    at its next use. nnref does this itself at its first op on more than one thread when no
    other Python thread is alive (:func:`_short_blas_spin`).

    Call it while no other thread of the program is inside a NumPy BLAS call: stopping the pool
    under a running GEMM hangs the process (a worker never exits). Changes nothing, and returns
    False, where ``OPENBLAS_THREAD_TIMEOUT`` was set (in the environment now, or read when
    OpenBLAS loaded: the user's choice), where the BLAS is not OpenBLAS with its own pthreads
    pool, or where the symbols are missing.
    """
    global _SPIN_SET
    with _LOCK:
        if _SPIN_SET is None:
            _SPIN_SET = _shorten_spin()
        return _SPIN_SET


def _shorten_spin() -> bool:
    import ctypes

    lib = _blas_lib()
    try:
        read_env, shutdown = lib.openblas_read_env, lib.blas_thread_shutdown_
        read_timeout = lib.openblas_thread_timeout
        parallel = next(getattr(lib, n) for n in _PARALLEL_SYMBOLS if hasattr(lib, n))
    except (AttributeError, StopIteration):  # not OpenBLAS, or no library at all
        return False
    parallel.argtypes, parallel.restype = [], ctypes.c_int
    read_timeout.argtypes, read_timeout.restype = [], ctypes.c_uint
    read_env.argtypes, read_env.restype = [], None
    shutdown.argtypes, shutdown.restype = [], ctypes.c_int
    if parallel() != 1 or read_timeout() != 0 or "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(BLAS_SPIN_EXP)
    try:
        read_env()
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]
    shutdown()
    return True


def _short_blas_spin() -> None:
    """:func:`shorten_blas_spin` at an op about to run on more than one thread, if the caller is
    the only Python thread alive besides nnref's idle workers (so none can be inside a BLAS
    call); while another one is, each threaded op tries again."""
    if _SPIN_SET is None and _alone(threading.enumerate()):
        shorten_blas_spin()


def _alone(threads: list[threading.Thread]) -> bool:
    """Whether ``threads`` (the live ones) are the caller and nnref's idle pool workers only (a
    caller interrupted while it waited, by Ctrl-C or conform's call timeout, can leave a worker
    in its range, GEMMs included)."""
    me = threading.current_thread()
    return _BUSY == 0 and all(t is me or t.name.startswith(_WORKER_PREFIX) for t in threads)


def blas_spin_shortened() -> bool:
    """Whether OpenBLAS' worker spin is nnref's in this process (:func:`shorten_blas_spin`)."""
    return bool(_SPIN_SET)


class _SingleThreadedBlas:
    """Holds NumPy's BLAS at one thread while any nnref op is inside (re-entrant and shared
    between the caller's threads: the last one out restores the previous count). The setting
    is process-wide: GEMMs that other threads of the program run meanwhile get one thread too."""

    def __enter__(self) -> None:
        global _BLAS_DEPTH, _BLAS_SAVED
        api = _blas_api()
        if api is None:
            return
        with _LOCK:
            if _BLAS_DEPTH == 0:
                _BLAS_SAVED = api[1]()
                if _BLAS_SAVED != 1:
                    api[0](1)
            _BLAS_DEPTH += 1

    def __exit__(self, *exc: object) -> None:
        global _BLAS_DEPTH
        api = _blas_api()
        if api is None:
            return
        with _LOCK:
            _BLAS_DEPTH -= 1
            if _BLAS_DEPTH == 0 and _BLAS_SAVED != 1:
                api[0](_BLAS_SAVED)


def parallel_gemm_for(fn: Callable[[int, int], None], n: int, *, min_chunk: int) -> None:
    """:func:`parallel_for` for work whose ranges call BLAS, with BLAS held at one thread per
    call while they run, also when there is a single range: a multithreaded BLAS call rounds
    differently from a single-threaded one (OpenBLAS splits large GEMMs), so the bits would
    depend on the thread count. Each range's GEMMs are independent and write disjoint outputs.
    When the BLAS thread count cannot be controlled, ``fn(0, n)`` runs in the caller with BLAS
    as configured (two multithreaded BLAS calls at once would oversubscribe the cores).
    """
    if not blas_is_controllable():
        fn(0, n)
        return
    with _SingleThreadedBlas():
        parallel_for(fn, n, min_chunk=min_chunk)


#: Work that threads split: ``fn(lo, hi)`` over ``range(n)``, each range ``min_chunk`` long at
#: least (:func:`parallel_gemm_phases`).
Phase = tuple[Callable[[int, int], None], int, int]


def parallel_gemm_phases(phases: list[Phase]) -> None:
    """Independent phases ``(fn, n, min_chunk)``, each as :func:`parallel_gemm_for` would run
    ``fn`` over ``range(n)``, in one hand-off: the ranges of each phase are fixed by its ``n``,
    ``min_chunk`` and the thread count, and each thread runs its range of every phase in turn,
    with no wait between phases (a thread that runs several shares, as the caller does alone,
    runs each phase once over their union). For phases that read the same inputs and write
    disjoint outputs (a convolution's ``dx``, ``dw`` and ``db``): a hand-off to an idle worker
    costs ~0.1-0.25 ms on a VM whose idle vCPUs halt (the wake-up, then the wait for the GIL),
    once instead of once a phase."""
    if not phases:
        return
    k = max(1, min(num_threads(), max(n // max(m, 1) for _, n, m in phases)))
    ranges = [chunks(n, max(1, min(k, n // max(m, 1)))) + [(n, n)] * k for _, n, m in phases]

    def run(lo: int, hi: int) -> None:  # shares lo:hi, each phase's ranges in one call
        for (fn, _, _), parts in zip(phases, ranges, strict=True):
            a, b = parts[lo][0], parts[hi - 1][1]
            if a < b:
                fn(a, b)

    parallel_gemm_for(run, k, min_chunk=1)
