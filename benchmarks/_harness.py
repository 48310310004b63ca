"""Shared timing harness: interleaved repetitions, medians, ratios (nnref / TF)."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def interleaved(
    fns: dict[str, Callable[[], object]], *, repeats: int = 15, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round-robin so that machine
    noise hits every contender alike."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def report(
    title: str, med: dict[str, float], baseline: str, unit_scale: float = 1e3, unit: str = "ms"
) -> list[dict]:
    print(f"\n{title}")
    rows = []
    for k, v in med.items():
        ratio = v / med[baseline]
        print(f"  {k:44s} {v * unit_scale:9.2f} {unit}   ratio to {baseline}: {ratio:5.2f}")
        rows.append({"case": title, "contender": k, "median_s": v, f"ratio_to_{baseline}": ratio})
    return rows
