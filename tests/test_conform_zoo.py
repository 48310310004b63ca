"""``nnref conform`` against a zoo of independent implementations (issue 14's proof).

``tests/conform_zoo`` holds implementations written without nnref (NumPy only): a loop-based
one, a vectorised one (some ops in plain form only), a PyTorch-layout one checked through
``nnref.conform.nchw``, and a tiny reverse-mode autodiff engine. Each must pass every check
in float32 and float64 at several seeds: no false failure.

Cost: finite differences dominate (``vjp-fd`` makes about four forward calls per input entry),
so they run at one seed, conv2d and max_pool2d on one member in float32; the value checks run
at every seed; the Hypothesis ``property`` check at one seed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from conform_zoo import nchw_style, numpy_loops, numpy_vectorised, tiny_autodiff

import nnref.conform as conform

ZOO_DIR = Path(__file__).parent / "conform_zoo"
SEEDS = (0, 1, 2)
#: Hypothesis examples per op and dtype in the ``property`` check.
EXAMPLES = 4
#: Checks run everywhere; ``vjp-fd`` (finite differences) and ``property`` have their own tests.
VALUE_CHECKS = {"signature", "forward", "vjp", "raises", "batches", "trajectory"}


def zoo() -> dict[str, Any]:
    return {
        "loops": numpy_loops,
        "vectorised": numpy_vectorised,
        "nchw": conform.nchw(nchw_style),
        "autodiff": tiny_autodiff,
    }


def rows(target: Any, *, checks: set[str], cases: set[str] | None = None, **kw: Any) -> list:
    """The rows of ``checks`` (and, if given, only ``cases``) of a run, through ``plan``."""
    _, tasks, _ = conform.plan(target, **kw)
    return [t.run() for t in tasks if t.check in checks and (cases is None or t.case in cases)]


def describe(failures: list) -> str:
    return "\n".join(f"{r.id} [{r.status}]: {r.message}" for r in failures)


# --------------------------------------------------------------------------- the zoo itself


@pytest.mark.parametrize("path", sorted(ZOO_DIR.glob("*.py")), ids=lambda p: p.name)
def test_zoo_is_written_without_nnref(path: Path) -> None:
    imports = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imports |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imports.add(node.module.split(".")[0])
    assert imports <= {"__future__", "collections", "dataclasses", "math", "typing", "numpy"}


# --------------------------------------------------------------------------- correct members


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(zoo()))
def test_correct_member_conforms(name: str, seed: int) -> None:
    target = zoo()[name]
    ctx, tasks, _ = conform.plan(target, seed=seed, examples=0)
    got = [t.run() for t in tasks if t.check in VALUE_CHECKS]
    failures = [r for r in got if not r.ok]
    assert not failures, describe(failures)
    assert {r.op for r in got} == set(ctx.provided)
    assert {r.dtype for r in got} >= {"float32", "float64"}


@pytest.mark.parametrize("name", list(zoo()))
def test_correct_member_passes_the_property_check(name: str) -> None:
    got = rows(zoo()[name], checks={"property"}, examples=EXAMPLES)
    failures = [r for r in got if not r.ok]
    assert not failures, describe(failures)
    assert {r.dtype for r in got} == {"float32", "float64"}


#: conv2d and max_pool2d: finite differences cost about four forward calls per input entry,
#: seconds per case through a loop forward; they run on the vectorised member in float32 (the
#: checker differentiates a float64 shadow and compares the float32 VJP with it).
SLOW_FD = ("conv2d", "max_pool2d")


@pytest.mark.parametrize("name", list(zoo()))
def test_correct_member_passes_finite_differences(name: str) -> None:
    target = zoo()[name]
    provided = conform.plan(target, examples=0)[0].provided
    ops = [op for op, p in provided.items() if p.has_vjp and op not in SLOW_FD]
    got = rows(target, checks={"vjp-fd"}, ops=ops, examples=0)
    failures = [r for r in got if not r.ok]
    assert not failures, describe(failures)
    assert {r.op for r in got} == set(ops)


def test_conv_and_pool_pass_finite_differences() -> None:
    got = rows(numpy_vectorised, checks={"vjp-fd"}, ops=SLOW_FD, dtypes=["float32"], examples=0)
    failures = [r for r in got if not r.ok]
    assert not failures, describe(failures)
    assert {r.op for r in got} == set(SLOW_FD)


def test_plain_forms_are_reported_as_gradients_not_checked() -> None:
    report = conform.run(
        numpy_vectorised, ops=["sigmoid", "mean_squared_error", "relu"], examples=0
    )
    assert report.ok
    assert set(report.notes) == {"sigmoid", "mean_squared_error"}
    assert "gradients not checked" in report.summary()
    assert {r.check for r in report.rows if r.op == "sigmoid"} == {"signature", "forward"}


def test_autodiff_member_lists_what_it_does_not_provide() -> None:
    report = conform.run(tiny_autodiff, ops=["relu", "argmax", "sgd"], examples=0)
    assert report.ok
    assert report.not_provided == ["argmax", "sgd"]
