"""nnref._machine: the heap setting behind ``keep_freed_memory`` and who applies it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nnref
from nnref import _machine
from nnref.cli import main

# An optimizer's pattern: three fresh 1.6 MB outputs a step, the step before's freed.
_CYCLE = """
import resource, sys
import numpy as np
import nnref
applied = nnref.keep_freed_memory() if sys.argv[1] == "keep" else None
gen = [np.ones(400_000, np.float32) for _ in range(3)]
for i in range(55):
    if i == 5:
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    gen = [g * np.float32(1.0001) for g in gen]
    scratch = np.sqrt(gen[0])
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 50)
"""


def _faults_per_step(mode: str) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CYCLE, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], float(out[1])


def test_keep_freed_memory_ends_the_grow_and_trim_cycle() -> None:
    """Left to glibc, the heap's top grows and is trimmed every step and each new page faults
    (~765 faults a step here); kept, the pages are reused."""
    applied, kept = _faults_per_step("keep")
    if applied == "False":
        pytest.skip("not glibc: keep_freed_memory changes nothing")
    assert applied == "True"
    assert kept < 5
    _, default = _faults_per_step("default")
    assert default > 100


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"trim": -1}, ValueError, r"'trim' must be in \[0, 2147483647\], got -1"),
        ({"trim": 1 << 31}, ValueError, r"'trim' must be in \[0, 2147483647\], got 2147483648"),
        ({"trim": 1.5}, TypeError, r"'trim' must be an int, got 1.5"),
        ({"mmap": True}, TypeError, r"'mmap' must be an int, got True"),
        ({"mmap": 64 << 20}, ValueError, r"'mmap' must be in \[0, 33554432\], got 67108864"),
    ],
)
def test_keep_freed_memory_refuses_bad_thresholds(kwargs, err, match) -> None:
    with pytest.raises(err, match=f"^keep_freed_memory: {match}"):
        nnref.keep_freed_memory(**kwargs)


def test_nnref_train_keeps_freed_memory(monkeypatch, capsys) -> None:
    calls = []
    monkeypatch.setattr(_machine, "keep_freed_memory", lambda: calls.append(1) or True)
    assert main(["train", "mlp", "--steps", "1", "--no-progress"]) == 0
    assert calls == [1]
    capsys.readouterr()
