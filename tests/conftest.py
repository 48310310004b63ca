"""Shared fixtures: per-test deterministic seeds (from a hash of the test's node id), small
random MNIST files, and a count of the hand-offs to nnref's threads."""

from __future__ import annotations

import numpy as np
import pytest

from nnref.verify import seed_for


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    return np.random.default_rng(seed_for(request.node.nodeid))


@pytest.fixture
def gemm_handoffs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``n`` of each ``parallel_gemm_for`` call from here on: one hand-off to the threads
    each (clear it to count from a later point)."""
    import nnref._threads as threads

    calls: list[int] = []
    real = threads.parallel_gemm_for

    def counted(fn, n: int, *, min_chunk: int) -> None:
        calls.append(n)
        real(fn, n, min_chunk=min_chunk)

    monkeypatch.setattr(threads, "parallel_gemm_for", counted)
    return calls


@pytest.fixture
def write_mnist():
    """``write(directory, n_train, n_test, seed=0)``: a small random ``mnist.npz`` (Keras'
    layout: uint8 images, integer labels) in ``directory`` (created), which it returns."""

    def write(directory, n_train: int, n_test: int, seed: int = 0):
        r = np.random.default_rng(seed)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / "mnist.npz",
            x_train=r.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            y_train=r.integers(0, 10, n_train),
            x_test=r.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            y_test=r.integers(0, 10, n_test),
        )
        return directory

    return write
