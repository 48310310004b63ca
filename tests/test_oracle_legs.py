"""Every op, every case, float64 and float32, against its oracles.

1. finite differences (``nnref.check.check_vjp``, random cotangent, float32 via a float64 shadow);
2. ``tf.GradientTape(...).gradient(y, xs, output_gradients=dy)`` on the TF op (or ``tf.argmax``,
   ``tf.one_hot``);
3. the Keras layer / loss / metric / optimizer with weights set from ours;
4. scikit-learn's ``KFold`` for the fold sizes and batches.

Every expected value of the case tables (pins included: ties, NaN, raising labels) is nnref's,
checked here, so ``nnref conform`` inherits the verification. Shapes and dtypes are asserted
before values (``run_case`` reports a mismatch as a problem). Tolerances: ``verify.tolerance``
(``ORACLE_RTOL``: float64 1e-12, float32 2e-5).
"""

from __future__ import annotations

import pytest

from nnref.cases import DTYPES, TABLES, differentiable
from nnref.verify import all_cases, leg_function, run_fd, run_oracle

DT = [pytest.param(d, id=d.name) for d in DTYPES]
FD_CASES = [pytest.param(op, case, id=f"{op}-{case}") for op, case in all_cases(fd=True)]
ORACLE_CASES = [
    pytest.param(op, case, leg, dt, id=f"{op}-{case}-{leg}-{dt.name}")
    for op, case in all_cases(kind=None)
    for leg in ("tf", "keras", "sklearn")
    if leg_function(op, leg) is not None
    for dt in (DTYPES if TABLES[op].dtyped else DTYPES[:1])
]


@pytest.mark.parametrize(("op", "case"), FD_CASES)
@pytest.mark.parametrize("dtype", DT)
def test_vjp_matches_finite_differences(op: str, case: str, dtype) -> None:
    r = run_fd(op, case, dtype)
    assert r.ok, r.detail


@pytest.mark.tf
@pytest.mark.parametrize(("op", "case", "leg", "dtype"), ORACLE_CASES)
def test_matches_the_oracle(op: str, case: str, leg: str, dtype) -> None:
    r = run_oracle(op, case, dtype, leg)
    assert r.ok, f"{op}/{case}/{r.dtype}/{leg}: error {r.error:.3g} at {r.worst}; {r.detail}"


@pytest.mark.tf
def test_every_op_and_case_has_an_oracle() -> None:
    for op in TABLES:
        legs = [leg for leg in ("tf", "keras", "sklearn") if leg_function(op, leg) is not None]
        assert legs, op
    covered = {p.values[:2] for p in ORACLE_CASES}
    assert covered == set(all_cases(kind=None))


def test_registry_covers_every_differentiable_op() -> None:
    import nnref.ops

    fwd_names = {
        n[: -len("_fwd")] for n in nnref.ops.__all__ if n.endswith("_fwd") and "_naive" not in n
    }
    assert fwd_names == set(differentiable())


def test_fd_leg_skips_only_cases_that_say_why() -> None:
    for t in TABLES.values():
        for c in t.cases:
            if t.kind == "vjp" and not c.fd and not c.raises:
                assert c.why_no_fd, f"{t.op}/{c.id}"
