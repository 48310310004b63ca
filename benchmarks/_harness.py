"""Shared timing harness: fair interleaving, medians with spread, ratios, machine load.

Import this module first in every benchmark. OpenBLAS (NumPy's BLAS; TF and PyTorch use
their own) runs as a user's NumPy does: ``OPENBLAS_THREAD_TIMEOUT`` is not set, so its idle
workers spin 2**28 TSC ticks (~0.1 s) after a multithreaded call, except where nnref has
shortened that spin at its first threaded op (``nnref.shorten_blas_spin``: the seed CNN
steps; the dense steps run no threaded op and keep OpenBLAS' default). A spinning worker
steals the CPU from whatever runs next (TF's conv2 measured 24.9 ms alone and 47.4 ms right
after an im2col GEMM), so every timed sample is followed by an idle gap longer than the spin,
and each contender is timed in alternation with the baseline only (pairwise), so neither can
leave the other a busy machine. (Until this was changed, the harness set the variable to 20
for every contender, which only slowed nnref's dense steps: their GEMMs then woke OpenBLAS'
sleeping workers every step.) A sample can be several consecutive
calls after untimed ones (:func:`pairwise`'s ``steps`` and ``settle``): the steady state of a
training loop, without the wake-up cost the gap itself adds to the first call. glibc's heap
thresholds are fixed for the process (``nnref.keep_freed_memory``), so that no contender's
page faults depend on what the others allocated.

Each block also records the CPU that *other* processes used meanwhile (from ``/proc``), and
:func:`wait_idle` waits for a quiet machine before measuring; both are printed with the
figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# glibc's heap thresholds, fixed for the whole process (``nnref.keep_freed_memory``, imported
# after the environment above): left to glibc, they follow the allocation history, so one
# contender's time could depend on what the others had allocated. When this was added, after
# TF's import nnref's 784-512-10 dense step grew and trimmed its heap every step (857 page
# faults a step, its Adam update 0.8 -> 2.4 ms), and TF's own CNN step took 131 faults (63 ms;
# 54 ms without). Re-measured with today's ops (Intel Xeon): nnref's steps take no faults
# either way; TF's CNN step 2 a step without the call, 56 with it, 44 ms both.
from nnref import keep_freed_memory

_MALLOC = (
    "glibc keeps freed memory (nnref.keep_freed_memory)"
    if keep_freed_memory()
    else "malloc as configured (not glibc)"
)

#: Idle time after every timed sample: longer than OpenBLAS' default worker spin (2**28 TSC
#: ticks: 0.103 s at this Xeon's 2.6 GHz, 0.13 s at 2 GHz), so the next call starts on a quiet
#: CPU.
GAP_S = 0.2


def _spin() -> str:
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT")
    if value is not None:
        return f"OPENBLAS_THREAD_TIMEOUT={value}"
    return "OPENBLAS_THREAD_TIMEOUT unset (nnref shortens OpenBLAS' spin at its first threaded op)"


def method(steps: int = 1, settle: int = 0, warm: float = 0.0) -> str:
    """One line saying how the figures were taken (printed with every report)."""
    if steps == 1 and settle == 0 and warm == 0:
        sample = "each sample one call"
    else:
        sample = f"each sample {steps} consecutive calls (ms per call)"
        if warm:
            sample += f" after untimed calls for {warm:.2f} s (at least {max(settle, 1)})"
        elif settle:
            sample += f" after {settle} untimed"
    return (
        f"pairwise with the baseline, idle gap {GAP_S:.2f} s after every sample, {sample}, "
        f"{_spin()}, {_MALLOC}"
    )


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX-512 (BLAS and oneDNN kernels follow it)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return "unknown"
    name = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "?"
    )
    return f"{name}, {os.cpu_count()} cores, {'' if 'avx512f' in info else 'no '}AVX-512"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every benchmark takes: ``--json FILE`` and ``--max-wait SECONDS``."""
    ap.add_argument("--json", help="write every row (and the breakdowns) to this file")
    ap.add_argument(
        "--max-wait",
        type=float,
        default=600.0,
        help="seconds to wait for an idle machine before each block (then measure anyway; "
        "the load is printed with the figures)",
    )


def _busy_jiffies() -> int:
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return sum(vals[:8]) - idle


def _own_jiffies() -> int:
    with open(f"/proc/{os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime + stime, and cutime + cstime: the children it has waited for (a benchmark timing
    # fresh processes, such as blas_spin.py, runs its samples in them)
    return sum(int(v) for v in fields[11:15])


class LoadMeter:
    """CPU used by other processes, in cores, over a ``with`` block (this one's finished
    children are its own)."""

    others_cores: float = 0.0

    def __enter__(self) -> LoadMeter:
        self._b0, self._s0, self._t0 = _busy_jiffies(), _own_jiffies(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        hz = os.sysconf("SC_CLK_TCK")
        wall = max(time.perf_counter() - self._t0, 1e-9)
        other = (_busy_jiffies() - self._b0) - (_own_jiffies() - self._s0)
        self.others_cores = max(0.0, other / hz / wall)


def wait_idle(*, quiet: float = 0.15, max_wait: float = 600.0) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < ``quiet`` cores over 2 s;
    return the last reading, which the reports print."""
    t0 = time.time()
    while True:
        with LoadMeter() as lm:
            time.sleep(2.0)
        if lm.others_cores < quiet or time.time() - t0 > max_wait:
            return lm.others_cores
        print(f"  [machine busy: {lm.others_cores:.2f} cores used by others; waiting]")
        time.sleep(10.0)


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one contender and of the baseline timed beside it."""

    name: str
    median: float
    q1: float
    q3: float
    baseline_median: float
    ratio: float  # median of per-pair ratios contender / baseline
    ratio_lo: float  # quartiles of the per-pair ratios
    ratio_hi: float
    others_cores: float
    method: str


def _quartiles(v: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else [v[0]] * 3
    return q[0], statistics.median(v), q[2]


def pairwise(
    fns: dict[str, Callable[[], object]],
    baseline: str,
    *,
    repeats: int = 11,
    warmup: int = 2,
    gap: float = GAP_S,
    steps: int = 1,
    settle: int = 0,
    warm: float = 0.0,
) -> dict[str, Timing]:
    """Time every contender in alternation with ``baseline`` (A, gap, B, gap, ...).

    A sample is untimed calls (at least ``settle`` of them, and for at least ``warm``
    seconds), then ``steps`` timed consecutive calls (seconds per call), as a training loop
    runs its steps. The calls after an idle gap pay for waking the CPUs: on this VM (cpuidle
    ``haltpoll``) a 0.12 s gap made nnref's next two-thread CNN step 16-42% slower and TF's
    (whose threads spin) 1-3% slower, so single-call samples charge nnref a cost a training
    loop pays once. That cost lasts longer than one call: after the gap the kernel wakes a
    worker on its caller's CPU, so both threads share one core until the scheduler spreads
    them, ~40 ms later (nnref's max-pool fwd+bwd on 128x28x28x32: 4.4 ms a call for the first
    ten calls, then 2.9; TF's 784-128-256-10 dense step: 2.2-2.3 ms for ~20 calls, then 1.9).

    The baseline's own row is its timings pooled over all pairings. Ratios are the median of
    the per-pair ratios, so a slow stretch of the machine hits both sides of a pair alike.
    """
    if baseline not in fns:
        raise ValueError(f"baseline {baseline!r} is not among the contenders {list(fns)}")
    how = method(steps, settle, warm)

    def sample(f: Callable[[], object]) -> float:
        start, calls = time.perf_counter(), 0
        while calls < settle or (warm and time.perf_counter() - start < warm):
            f()
            calls += 1
        t = time.perf_counter()
        for _ in range(steps):
            f()
        seconds = (time.perf_counter() - t) / steps
        time.sleep(gap)
        return seconds

    base = fns[baseline]
    out: dict[str, Timing] = {}
    pooled: list[float] = []
    loads: list[float] = []
    for name, f in fns.items():
        if name == baseline:
            continue
        for _ in range(warmup):
            sample(f)
            sample(base)
        tf_, tb = [], []
        with LoadMeter() as lm:
            for _ in range(repeats):
                tf_.append(sample(f))
                tb.append(sample(base))
        ratios = [a / b for a, b in zip(tf_, tb, strict=True)]
        q1, med, q3 = _quartiles(tf_)
        r1, rm, r3 = _quartiles(ratios)
        out[name] = Timing(
            name, med, q1, q3, statistics.median(tb), rm, r1, r3, lm.others_cores, how
        )
        pooled += tb
        loads.append(lm.others_cores)
    if not pooled:  # only the baseline was given
        with LoadMeter() as lm:
            pooled += [sample(base) for _ in range(repeats)]
        loads.append(lm.others_cores)
    q1, med, q3 = _quartiles(pooled)
    out[baseline] = Timing(baseline, med, q1, q3, med, 1.0, 1.0, 1.0, max(loads), how)
    return out


def report(title: str, timings: dict[str, Timing]) -> list[dict]:
    """Print one block (median [quartiles] in ms, ratio to the baseline [quartiles], load);
    return the rows for ``--json`` (seconds)."""
    how = next(iter(timings.values())).method
    print(f"\n{title}   ({how})")
    rows = []
    for t in timings.values():
        print(
            f"  {t.name:44s} {t.median * 1e3:9.2f} ms "
            f"[{t.q1 * 1e3:.2f}-{t.q3 * 1e3:.2f}]   "
            f"ratio {t.ratio:5.2f} [{t.ratio_lo:.2f}-{t.ratio_hi:.2f}]   "
            f"others' load {t.others_cores:.2f} cores"
        )
        rows.append(
            {
                "case": title,
                "contender": t.name,
                "median_s": t.median,
                "q1_s": t.q1,
                "q3_s": t.q3,
                "ratio": t.ratio,
                "ratio_q1": t.ratio_lo,
                "ratio_q3": t.ratio_hi,
                "others_cores": t.others_cores,
                "method": t.method,
            }
        )
    return rows
