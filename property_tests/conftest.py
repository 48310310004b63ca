"""Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (tox sets ``ci``):

- ``dev``: 25 examples, fast local feedback;
- ``ci``: derandomized (same examples every run, whatever modules the worker has loaded: see
  :func:`nnref.strategies.no_source_constants`), 200 examples, no deadline;
- ``thorough``: 2000 examples.

Every profile prints the reproduction blob of a failure (``print_blob=True``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

_common = {"print_blob": True, "deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=200, derandomize=True, **_common)
settings.register_profile("thorough", max_examples=2000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _tensorflow_imported_before_tf_tests(request: pytest.FixtureRequest) -> None:
    """Import TensorFlow in setup, before a TF test's body runs: its first import raises the
    recursion limit, which Hypothesis reports as an error inside a test. Only TF-marked tests
    do this (the notf env has none); a missing TF there is an error, never a skip."""
    if request.node.get_closest_marker("tf"):
        from nnref.oracles.tf import import_tf

        import_tf()


@pytest.fixture(autouse=True)
def _same_examples_whatever_is_loaded() -> Iterator[None]:
    """Without it, which project modules an xdist worker had imported (a benchmark helper, a
    conform target) changed the numbers Hypothesis mixes into its draws."""
    from nnref.strategies import no_source_constants

    with no_source_constants():
        yield
