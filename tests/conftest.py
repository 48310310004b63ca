"""Shared fixtures: per-test deterministic seeds (from a hash of the test's node id)."""

from __future__ import annotations

import numpy as np
import pytest

from nnref.verify import seed_for


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    return np.random.default_rng(seed_for(request.node.nodeid))
