"""Every op, every case, float64 and float32, against three oracles.

1. finite differences (``nnref.check.check_vjp``, random cotangent, float32 via a float64 shadow);
2. ``tf.GradientTape(...).gradient(y, xs, output_gradients=dy)`` on the TF op;
3. the Keras layer / loss with weights set from ours.

Shapes and dtypes are asserted before values (``run_oracle`` reports a mismatch as a problem).
Tolerances: ``nnref.check.compare.ORACLE_RTOL`` (float64 1e-12, float32 2e-5).
"""

from __future__ import annotations

import pytest

from nnref.verify import DTYPES, SPECS, all_cases, run_fd, run_oracle

DT = [pytest.param(d, id=d.name) for d in DTYPES]
CASES = [pytest.param(op, case, id=f"{op}-{case}") for op, case in all_cases()]
FD_CASES = [pytest.param(op, case, id=f"{op}-{case}") for op, case in all_cases(fd=True)]


@pytest.mark.parametrize(("op", "case"), FD_CASES)
@pytest.mark.parametrize("dtype", DT)
def test_vjp_matches_finite_differences(op: str, case: str, dtype) -> None:
    r = run_fd(op, case, dtype)
    assert r.ok, r.detail


@pytest.mark.tf
@pytest.mark.parametrize(("op", "case"), CASES)
@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("leg", ["tf", "keras"])
def test_forward_and_vjp_match_tensorflow(op: str, case: str, dtype, leg: str) -> None:
    r = run_oracle(op, case, dtype, leg)
    assert r.ok, f"{op}/{case}/{r.dtype}/{leg}: error {r.error:.3g} at {r.worst}; {r.detail}"


def test_registry_covers_every_differentiable_op() -> None:
    import nnref.ops

    fwd_names = {
        n[: -len("_fwd")] for n in nnref.ops.__all__ if n.endswith("_fwd") and "_naive" not in n
    }
    assert fwd_names == set(SPECS)
