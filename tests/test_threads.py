"""nnref._threads: ranges cover the work exactly once, the env cap, nesting runs serially."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from nnref._threads import (
    blas_is_controllable,
    chunks,
    num_threads,
    parallel_for,
    parallel_gemm_for,
)


@pytest.mark.parametrize(("n", "k"), [(10, 3), (7, 7), (5, 1), (100, 4)])
def test_chunks_cover_in_order_sizes_differ_by_at_most_one(n: int, k: int) -> None:
    parts = chunks(n, k)
    assert len(parts) == k
    assert parts[0][0] == 0
    assert parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1


def test_parallel_for_writes_every_index_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNREF_NUM_THREADS", "3")
    hits = np.zeros(1000, np.int64)
    calls = []

    def fn(lo: int, hi: int) -> None:
        hits[lo:hi] += 1
        calls.append((lo, hi))

    parallel_for(fn, 1000, min_chunk=100)
    assert (hits == 1).all()
    assert sorted(calls) == chunks(1000, 3)


def test_small_work_and_cap_one_stay_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setenv("NNREF_NUM_THREADS", "4")
    parallel_for(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 50, min_chunk=100)
    monkeypatch.setenv("NNREF_NUM_THREADS", "1")
    parallel_for(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 5000, min_chunk=10)
    me = threading.get_ident()
    assert seen == [(0, 50, me), (0, 5000, me)]


def test_nested_calls_run_serially(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    inner = []

    def outer(lo: int, hi: int) -> None:
        parallel_for(lambda a, b: inner.append((lo, a, b)), 400, min_chunk=10)

    parallel_for(outer, 400, min_chunk=100)
    assert sorted(inner) == [(0, 0, 400), (200, 0, 400)]


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_bad_env_names_the_variable(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("NNREF_NUM_THREADS", bad)
    with pytest.raises(ValueError, match="NNREF_NUM_THREADS"):
        num_threads()


def test_worker_errors_reach_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")

    def fn(lo: int, hi: int) -> None:
        if lo > 0:
            raise RuntimeError("boom in worker")

    with pytest.raises(RuntimeError, match="boom in worker"):
        parallel_for(fn, 100, min_chunk=10)


def _blas_threads() -> int:
    from nnref import _threads

    return _threads._blas_api()[1]()


@pytest.mark.skipif(not blas_is_controllable(), reason="NumPy's BLAS exposes no thread setter")
def test_gemm_ranges_run_on_one_blas_thread_and_restore_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Python threads each calling a multithreaded BLAS would oversubscribe the cores; a
    single range runs on one BLAS thread too (the same bits as when split)."""
    from nnref import _threads

    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    before = _blas_threads()
    _threads._blas_api()[0](2)
    try:
        seen = []
        parallel_gemm_for(lambda lo, hi: seen.append(_blas_threads()), 4, min_chunk=1)
        assert seen == [1, 1]
        assert _blas_threads() == 2
        seen.clear()
        monkeypatch.setenv("NNREF_NUM_THREADS", "1")
        parallel_gemm_for(lambda lo, hi: seen.append((lo, hi, _blas_threads())), 4, min_chunk=1)
        assert seen == [(0, 4, 1)]
        assert _blas_threads() == 2
    finally:
        _threads._blas_api()[0](before)


def test_gemm_ranges_without_a_blas_setter_stay_in_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nnref import _threads

    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    monkeypatch.setattr(_threads, "_BLAS", None)
    me = threading.get_ident()
    seen = []
    parallel_gemm_for(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 4, min_chunk=1)
    assert seen == [(0, 4, me)]


def test_workers_see_the_callers_errstate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's 0/0 must not warn (an error under this suite's warning filter) when the
    caller silenced it: np.errstate is a context variable from NumPy 2 and per thread before
    (NumPy 1.26 failed this until the workers entered the caller's np.geterr())."""
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    a = np.zeros(400)

    def fn(lo: int, hi: int) -> None:
        a[lo:hi] = a[lo:hi] / a[lo:hi]

    with np.errstate(invalid="ignore"):
        parallel_for(fn, 400, min_chunk=100)
    assert np.isnan(a).all()


def test_the_caller_takes_the_ranges_of_workers_that_have_not_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a busy machine a woken worker may wait for a core: the caller claims the ranges left
    and does not wait for a worker that never started (the same ranges, so the same bits)."""
    from nnref import _threads

    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    pool = _threads._pool(1)
    release = threading.Event()
    blockers = [pool.submit(release.wait) for _ in range(pool._max_workers)]  # all busy
    try:
        seen = []
        parallel_for(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 400, min_chunk=1)
        me = threading.get_ident()
        assert seen == [(0, 200, me), (200, 400, me)]
    finally:
        release.set()
        for b in blockers:
            b.result()


def test_a_queued_worker_item_does_not_keep_the_work_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancelled item waits in the pool's queue until a worker drops it: were ``fn`` reachable
    from it, the arrays ``fn`` holds would be freed later in a worker thread, at random times
    (in the dense step, malloc then trimmed its heap and the next step page-faulted)."""
    import weakref

    from nnref import _threads

    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    pool = _threads._pool(1)
    release = threading.Event()
    blockers = [pool.submit(release.wait) for _ in range(pool._max_workers)]  # all busy
    try:
        data = np.zeros(400)
        ref = weakref.ref(data)

        def fn(lo: int, hi: int, data: np.ndarray = data) -> None:
            data[lo:hi] += 1

        parallel_for(fn, 400, min_chunk=1)
        assert (data == 1).all()
        del fn, data
        assert ref() is None
    finally:
        release.set()
        for b in blockers:
            b.result()
