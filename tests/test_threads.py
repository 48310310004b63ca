"""nnref._threads: ranges cover the work exactly once, the env cap, nesting runs serially."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nnref
from nnref._threads import (
    blas_is_controllable,
    chunks,
    num_threads,
    parallel_for,
    parallel_gemm_for,
    parallel_gemm_phases,
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


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_phases_cover_each_range_once_a_thread_its_share_of_every_phase(
    monkeypatch: pytest.MonkeyPatch, threads: str, gemm_handoffs: list[int]
) -> None:
    """Each phase's ranges are what parallel_gemm_for would give it (chunks of its own n over at
    most n // min_chunk threads, empty ones skipped), and a thread runs whole shares: its range
    of every phase, in phase order, under one BLAS thread, all in one dispatch."""
    monkeypatch.setenv("NNREF_NUM_THREADS", threads)
    k = int(threads)
    sizes, mins = [7, 2, 1, 5, 40], [1, 1, 1, 1, 16]
    hits = [np.zeros(n, np.int64) for n in sizes]
    calls: list[tuple[int, int, int, int]] = []
    lock = threading.Lock()

    def shares(i: int) -> list[tuple[int, int]]:
        parts = chunks(sizes[i], max(1, min(k, sizes[i] // mins[i])))
        return parts + [(sizes[i], sizes[i])] * (k - len(parts))

    def phase(i: int):
        def fn(lo: int, hi: int) -> None:
            with lock:
                hits[i][lo:hi] += 1
                calls.append((threading.get_ident(), i, lo, hi))
            if blas_is_controllable():
                assert nnref._threads._blas_api()[1]() == 1

        return fn, sizes[i], mins[i]

    parallel_gemm_phases([phase(i) for i in range(len(sizes))])
    assert gemm_handoffs == [k]  # one dispatch: a share per thread
    assert all((h == 1).all() for h in hits)
    starts = {
        i: {a: t for t, (a, b) in reversed(list(enumerate(shares(i)))) if a < b}
        for i in range(len(sizes))
    }
    ends = {i: {b: t for t, (a, b) in enumerate(shares(i)) if a < b} for i in range(len(sizes))}
    # Every call covers whole shares (a thread that claims several, as the caller may when a
    # worker starts late, runs each phase once over their union), phase by phase.
    for who in {c[0] for c in calls}:
        assert all(lo in starts[i] and hi in ends[i] for w, i, lo, hi in calls if w == who)
        mine = [(starts[i][lo], i) for w, i, lo, hi in calls if w == who]
        assert mine == sorted(mine)
    ranges = {c[1:] for c in calls}
    assert {(4, 0, 20), (4, 20, 40)} <= ranges or (4, 0, 40) in ranges
    # Alone (one thread, or nested in a worker): each phase once, over all of it, in order.
    calls.clear()
    monkeypatch.setattr(nnref._threads._LOCAL, "inside", True, raising=False)
    parallel_gemm_phases([phase(i) for i in range(len(sizes))])
    assert [c[1:] for c in calls] == [(i, 0, n) for i, n in enumerate(sizes)]
    parallel_gemm_phases([])  # nothing to run


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
    """The symbols :func:`nnref._threads.shorten_blas_spin` calls, recording the calls and the
    timeout each ``openblas_read_env`` could read; ``read_at_load``: the timeout OpenBLAS read
    when it loaded (0: none)."""

    def __init__(self, parallel: int = 1, read_at_load: int = 0) -> None:
        self.calls: list[tuple[str, str | None]] = []
        lib = self

        def read_env() -> None:
            lib.calls.append(("read_env", os.environ.get("OPENBLAS_THREAD_TIMEOUT")))

        def shutdown() -> int:
            lib.calls.append(("shutdown", None))
            return 0

        self.openblas_read_env = read_env
        self.blas_thread_shutdown_ = shutdown
        self.openblas_thread_timeout = lambda: read_at_load
        self.scipy_openblas_get_parallel64_ = lambda: parallel


@pytest.fixture
def fresh_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spin not set yet, no variable, two threads, and the caller alone (pytest-xdist runs its
    own threads); the BLAS setter looked up before ``_blas_lib`` is replaced."""
    from nnref import _threads

    _threads._blas_api()
    monkeypatch.setattr(_threads, "_SPIN_SET", None)
    monkeypatch.setattr(_threads, "_alone", lambda threads: True)
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
    assert len(lib.calls) == 2
    assert nnref.shorten_blas_spin()  # done already: True, nothing called
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
    parallel_gemm_for(lambda lo, hi: None, 4, min_chunk=1)
    assert lib.calls == []
    assert _threads._SPIN_SET is None  # not tried yet
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")  # the user's (set before NumPy's import)
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert lib.calls == []
    assert not _threads.blas_spin_shortened()


@pytest.mark.usefixtures("fresh_spin")
@pytest.mark.parametrize(
    "lib",
    [None, object(), _FakeOpenBLAS(parallel=2), _FakeOpenBLAS(read_at_load=28)],
    ids=["no-library", "not-openblas", "openmp-build", "read-at-load"],
)
def test_openblas_spin_is_left_alone_without_openblas_own_pool_or_where_it_was_set(
    lib: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No library, no OpenBLAS symbols, an OpenMP build (``get_parallel`` 2), or a timeout
    OpenBLAS read when it loaded (the variable since removed from the environment)."""
    from nnref import _threads

    monkeypatch.setattr(_threads, "_blas_lib", lambda: lib)
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert getattr(lib, "calls", []) == []
    assert not _threads.blas_spin_shortened()
    assert not nnref.shorten_blas_spin()
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ


@pytest.mark.usefixtures("fresh_spin")
def test_another_live_python_thread_defers_the_spin_to_a_later_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another thread might be inside a GEMM, and stopping the pool under it hangs: the op
    leaves OpenBLAS alone, and a later one, once the thread has ended, shortens the spin."""
    from nnref import _threads

    lib = _FakeOpenBLAS()
    monkeypatch.setattr(_threads, "_blas_lib", lambda: lib)
    monkeypatch.setattr(_threads, "_alone", lambda threads: others.is_set())
    others = threading.Event()
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert lib.calls == []
    assert _threads._SPIN_SET is None
    others.set()
    parallel_for(lambda lo, hi: None, 4, min_chunk=1)
    assert [c for c, _ in lib.calls] == ["read_env", "shutdown"]


def test_alone_counts_every_live_thread_but_the_caller_and_nnref_workers() -> None:
    from nnref import _threads

    me = threading.current_thread()
    worker = threading.Thread(name=f"{_threads._WORKER_PREFIX}_0")
    other = threading.Thread(name="tqdm-monitor")
    assert _threads._alone([me])
    assert _threads._alone([me, worker])
    assert not _threads._alone([me, worker, other])
    assert not _threads._alone([*threading.enumerate(), other])


def _idle_spin_after_a_threaded_gemm(env: dict[str, str]) -> tuple[int, float]:
    """In a fresh process, after nnref's first threaded op and a 2-thread GEMM: the timeout
    OpenBLAS holds (the exponent it read, 0 for none) and the CPU seconds the process burns in a
    0.3 s sleep (OpenBLAS' spinning workers, if any). The pool is forced to two threads: OpenBLAS
    caps its default at the usable CPUs."""
    code = (
        "import ctypes, resource, time\n"
        "import numpy as np\n"
        "import nnref\n"
        "from nnref import _threads\n"
        "_threads._blas_api()[0](2)\n"
        "nnref.relu(np.ones(1 << 20))\n"
        "a = np.ones((600, 600))\n"
        "a @ a\n"
        "def cpu():\n"
        "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "    return r.ru_utime + r.ru_stime\n"
        "t0 = cpu()\n"
        "time.sleep(0.3)\n"
        "timeout = _threads._blas_lib().openblas_thread_timeout\n"
        "timeout.restype = ctypes.c_uint\n"
        "print(timeout(), cpu() - t0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    exp, cpu = out.stdout.split()
    return int(exp), float(cpu)


@pytest.mark.skipif(not blas_is_controllable(), reason="NumPy's BLAS is not OpenBLAS")
def test_openblas_workers_stop_spinning_in_a_real_process() -> None:
    """The symbols do what :func:`shorten_blas_spin` relies on: after nnref's first threaded op
    OpenBLAS holds the timeout 20 and its idle workers sleep within ~0.4 ms, where they spin
    ~0.1 s (a core's worth) when the user set OpenBLAS' default, 28."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "NNREF"))}
    env["NNREF_NUM_THREADS"] = "2"
    exp, cpu = _idle_spin_after_a_threaded_gemm(env)
    assert exp == 20
    assert cpu < 0.005  # measured ~0.0003 s
    exp, cpu = _idle_spin_after_a_threaded_gemm(env | {"OPENBLAS_THREAD_TIMEOUT": "28"})
    assert exp == 28
    assert cpu > 0.01  # ~0.1 s alone, ~0.03 s sharing the cores with two busy processes


@pytest.mark.skipif(not blas_is_controllable(), reason="NumPy's BLAS is not OpenBLAS")
@pytest.mark.usefixtures("fresh_spin")
def test_threaded_gemm_ranges_shorten_the_spin_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from nnref import _threads

    lib = _FakeOpenBLAS()
    monkeypatch.setattr(_threads, "_blas_lib", lambda: lib)
    parallel_gemm_for(lambda lo, hi: None, 4, min_chunk=1)
    assert [c for c, _ in lib.calls] == ["read_env", "shutdown"]


def test_a_worker_still_in_its_range_is_not_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller interrupted while it waited leaves its worker running (GEMMs included):
    stopping OpenBLAS' pool then could hang, so the caller is not alone."""
    from nnref import _threads

    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    started, release = threading.Event(), threading.Event()

    def fn(lo: int, hi: int) -> None:  # the caller's range waits for the worker to take one
        if threading.current_thread().name.startswith(_threads._WORKER_PREFIX):
            started.set()
            release.wait(10)
        else:
            started.wait(10)

    waiter = threading.Thread(target=parallel_for, args=(fn, 2), kwargs={"min_chunk": 1})
    waiter.start()
    try:
        assert started.wait(10)
        workers = [t for t in threading.enumerate() if t.name.startswith(_threads._WORKER_PREFIX)]
        assert not _threads._alone([threading.current_thread(), *workers])
    finally:
        release.set()
        waiter.join(10)
    assert _threads._BUSY == 0
    assert _threads._alone([threading.current_thread(), *workers])
