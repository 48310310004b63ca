"""benchmarks/_harness.py: what a sample is (steps after untimed settle calls) and the ratios."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("_harness", ROOT / "benchmarks" / "_harness.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_a_sample_is_steps_calls_after_settle_untimed_ones(harness) -> None:
    calls = {"slow": 0, "base": 0}

    def contender(name: str, seconds: float, settle_seconds: float):
        def f() -> None:
            # The untimed calls come first in every sample and are slow: timing them would
            # show in the figures.
            calls[name] += 1
            time.sleep(settle_seconds if calls[name] % 6 in (1, 2) else seconds)

        return f

    fns = {"slow": contender("slow", 0.004, 0.05), "base": contender("base", 0.002, 0.05)}
    t = harness.pairwise(fns, "base", repeats=3, warmup=1, gap=0.0, steps=4, settle=2)
    assert calls == {"slow": (1 + 3) * (2 + 4), "base": (1 + 3) * (2 + 4)}
    assert 0.004 <= t["slow"].median < 0.01  # per call, the settle calls not timed
    assert 1.3 < t["slow"].ratio < 3.0
    assert t["base"].ratio == 1.0
    assert "each sample 4 consecutive calls (ms per call) after 2 untimed" in t["slow"].method
    assert "each sample one call" in harness.method()


def test_warm_keeps_calling_untimed_until_its_seconds_have_passed(harness) -> None:
    calls = {"a": 0, "base": 0}

    def contender(name: str):
        def f() -> None:
            calls[name] += 1
            time.sleep(0.005)

        return f

    fns = {"a": contender("a"), "base": contender("base")}
    t = harness.pairwise(fns, "base", repeats=1, warmup=0, gap=0.0, steps=1, settle=1, warm=0.04)
    # Each sample: untimed calls for 40 ms (at 5 ms a call: 8 or 9 of them), then 1 timed.
    assert 9 <= calls["a"] <= 11
    assert "after untimed calls for 0.04 s (at least 1)" in t["a"].method
