"""nnref._threads: ranges cover the work exactly once, the env cap, nesting runs serially."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
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


class _FakeOpenBLAS:
    """The three symbols :func:`nnref._threads._short_blas_spin` calls, recording the calls and
    the timeout each ``openblas_read_env`` could read."""

    def __init__(self, parallel: int = 1) -> None:
        self.calls: list[tuple[str, str | None]] = []
        lib = self

        def read_env() -> None:
            lib.calls.append(("read_env", os.environ.get("OPENBLAS_THREAD_TIMEOUT")))

        def shutdown() -> int:
            lib.calls.append(("shutdown", None))
            return 0

        def get_parallel() -> int:
            return parallel

        self.openblas_read_env = read_env
        self.blas_thread_shutdown_ = shutdown
        self.scipy_openblas_get_parallel64_ = get_parallel


@pytest.fixture
def fresh_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnref import _threads

    monkeypatch.setattr(_threads, "_SPIN_SET", None)
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")


@pytest.mark.usefixtures("fresh_spin")
def test_the_first_threaded_op_shortens_openblas_spin_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenBLAS reads the timeout again with the variable set, then the pool is stopped (to
    restart with it); the variable is gone afterwards and later ops change nothing."""
    from nnref import _threads

    lib = _FakeOpenBLAS()
    monkeypatch.setattr(_threads, "_blas_lib", lambda: lib)
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert lib.calls == [("read_env", str(_threads.BLAS_SPIN_EXP)), ("shutdown", None)]
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    assert _threads.blas_spin_shortened()
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    parallel_gemm_for(lambda lo, hi: None, 4, min_chunk=1)
    assert len(lib.calls) == 2


@pytest.mark.usefixtures("fresh_spin")
def test_openblas_spin_is_left_alone_in_one_thread_or_where_the_user_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nnref import _threads

    lib = _FakeOpenBLAS()
    monkeypatch.setattr(_threads, "_blas_lib", lambda: lib)
    parallel_for(lambda lo, hi: None, 1, min_chunk=1)  # one range: the caller alone
    monkeypatch.setenv("NNREF_NUM_THREADS", "1")
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert lib.calls == []
    assert _threads._SPIN_SET is None  # not tried yet
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")  # the user's, read when OpenBLAS loaded
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert lib.calls == []
    assert not _threads.blas_spin_shortened()


@pytest.mark.usefixtures("fresh_spin")
@pytest.mark.parametrize("lib", [None, object(), _FakeOpenBLAS(parallel=2)])
def test_openblas_spin_is_left_alone_without_openblas_own_pool(
    lib: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No library, no OpenBLAS symbols, or an OpenMP build (``get_parallel`` 2)."""
    from nnref import _threads

    monkeypatch.setattr(_threads, "_blas_lib", lambda: lib)
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert getattr(lib, "calls", []) == []
    assert not _threads.blas_spin_shortened()
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ


def _idle_cpu_after_a_threaded_gemm(env: dict[str, str]) -> float:
    """CPU seconds a fresh process burns in a 0.3 s sleep right after a 2-thread GEMM that
    follows a threaded nnref op: OpenBLAS' spinning workers, if any."""
    code = (
        "import resource, time\n"
        "import numpy as np\n"
        "import nnref\n"
        "nnref.relu(np.ones(1 << 20))\n"
        "a = np.ones((600, 600))\n"
        "a @ a\n"
        "def cpu():\n"
        "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "    return r.ru_utime + r.ru_stime\n"
        "t0 = cpu()\n"
        "time.sleep(0.3)\n"
        "print(cpu() - t0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout)


@pytest.mark.skipif(not blas_is_controllable(), reason="NumPy's BLAS is not OpenBLAS")
def test_openblas_workers_stop_spinning_in_a_real_process() -> None:
    """The symbols do what :func:`_short_blas_spin` relies on: after nnref's first threaded
    op, OpenBLAS' idle workers sleep within ~0.4 ms, where they spin ~0.1 s (a core's worth)
    when the user set OpenBLAS' default timeout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "NNREF"))}
    env |= {"OPENBLAS_NUM_THREADS": "2", "NNREF_NUM_THREADS": "2"}
    assert _idle_cpu_after_a_threaded_gemm(env) < 0.01
    assert _idle_cpu_after_a_threaded_gemm(env | {"OPENBLAS_THREAD_TIMEOUT": "28"}) > 0.02
