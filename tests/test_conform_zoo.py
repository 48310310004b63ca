"""``nnref conform`` against a zoo of independent implementations (issue 14's proof).

``tests/conform_zoo`` holds implementations written without nnref (NumPy only): a loop-based
one, a vectorised one (some ops in plain form only), a PyTorch-layout one checked through
``nnref.conform.nchw``, and a tiny reverse-mode autodiff engine. Each must pass every check
in float32 and float64 at several seeds: no false failure. Each deliberately wrong variant
(``conform_zoo.wrong.VARIANTS``: its base member with one op replaced by a bug) must fail on
that op only, on a case that carries the pin it breaks, and, when it follows a known
convention, with a row whose ``matches`` names that convention.

Cost: finite differences dominate (``vjp-fd`` makes about four forward calls per input entry),
so they run at one seed, conv2d and max_pool2d on one member in float32; the value checks run
at every seed; the Hypothesis ``property`` check at one seed. A variant runs its op's value
checks on the cases of its pin in one dtype; that its other ops pass follows from their being
its base's own functions (asserted), and is run in full for one variant of each base and of
each pair of ops that share cases or pins.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conform_zoo import nchw_style, numpy_loops, numpy_vectorised, tiny_autodiff, wrong

import nnref.conform as conform
from nnref.cases import PINS, TABLES

ZOO_DIR = Path(__file__).parent / "conform_zoo"
BY_ID = {c.id: c for c in conform.CONVENTIONS}
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
    """The rows of ``checks`` (and, if given, only ``cases``) of a run, through ``plan``, with
    warnings as errors (this project's pytest configuration, and many users'): the verdicts
    must not depend on the warning filters."""
    _, tasks, _ = conform.plan(target, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
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
    got = rows(target, checks=VALUE_CHECKS, seed=seed, examples=0)
    failures = [r for r in got if not r.ok]
    assert not failures, describe(failures)
    assert {r.op for r in got} == set(conform.plan(target, examples=0)[0].provided)
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


# --------------------------------------------------------------------------- wrong variants


def op_names(module: Any) -> dict[str, Any]:
    """``module``'s functions under nnref's names (``NAME``, ``NAME_fwd``, ``NAME_bwd``)."""
    names = [op + s for op in TABLES for s in ("", "_fwd", "_bwd")]
    return {n: getattr(module, n) for n in names if hasattr(module, n)}


def variant_target(v: wrong.Variant) -> Any:
    """The variant as a target: its base's ops (a mapping) with ``v.replace`` swapped in."""
    mapping = {**op_names(wrong.BASES[v.base]), **v.replace}
    return conform.nchw(mapping) if v.base == "nchw" else mapping


VARIANTS = [pytest.param(v, id=v.id) for v in wrong.VARIANTS]


def test_every_pin_convention_and_op_has_a_wrong_variant() -> None:
    assert set(PINS) <= {v.pin for v in wrong.VARIANTS}
    assert set(BY_ID) <= {c for v in wrong.VARIANTS for c in v.conventions}
    assert {v.op for v in wrong.VARIANTS} == set(TABLES)
    assert len({v.id for v in wrong.VARIANTS}) == len(wrong.VARIANTS)


def pinned_cases(v: wrong.Variant) -> set[str]:
    """The cases of the variant's op that decide its pin or its conventions' pins (a plain bug:
    the op's first case)."""
    table = TABLES[v.op]
    if v.pin is None:
        return {table.cases[0].id}
    pins = {v.pin} | {p for c in v.conventions for p in BY_ID[c].pins}
    return {c.id for c in table.cases if pins & set(c.pins)}


@pytest.mark.parametrize("v", VARIANTS)
def test_variant_replaces_only_its_op(v: wrong.Variant) -> None:
    base = op_names(wrong.BASES[v.base])
    mapping = {**base, **v.replace}
    assert set(mapping) == set(base)
    assert {n.removesuffix("_fwd").removesuffix("_bwd") for n in v.replace} == {v.op}
    assert {n for n in mapping if mapping[n] is not base[n]} <= set(v.replace)
    assert any(mapping[n] is not base[n] for n in v.replace)


@pytest.mark.parametrize("v", VARIANTS)
def test_variant_fails_on_the_case_of_its_pin(v: wrong.Variant) -> None:
    checks = VALUE_CHECKS | ({"vjp-fd"} if v.pin is None else set())
    got = rows(
        variant_target(v),
        checks=checks,
        cases=pinned_cases(v),
        ops=[v.op],
        dtypes=list(v.dtypes),
        examples=0,
    )
    failures = [r for r in got if r.status == "fail"]
    assert failures, f"{v.id} passes:\n" + "\n".join(r.id for r in got)
    assert {r.op for r in failures} == {v.op}
    if v.pin is not None:
        assert any(v.pin in r.pins for r in failures), describe(failures)
    for cid in v.conventions:
        assert any(BY_ID[cid].says in r.matches for r in failures), (cid, describe(failures))


#: One variant of each base, and one for each pair of ops that share cases or pins (softmax /
#: log_softmax, argmax / accuracy, the sparse cross-entropies, the two KFold functions).
RUN_IN_FULL = (
    "pool-ties-last",
    "dense-db-missing",
    "conv-torch-symmetric-pad",
    "autodiff-dense-xent-composed",
    "softmax-unshifted",
    "argmax-nan-wins",
    "xent-ignore-minus-100",
    "kfold-sizes-extra-last",
)


@pytest.mark.parametrize("v", [p for p in VARIANTS if p.values[0].id in RUN_IN_FULL])
def test_every_other_op_of_a_variant_passes(v: wrong.Variant) -> None:
    target = variant_target(v)
    others = [op for op in conform.plan(target, examples=0)[0].provided if op != v.op]
    got = rows(target, checks=VALUE_CHECKS, ops=others, dtypes=["float64"], examples=0)
    failures = [r for r in got if not r.ok]
    assert not failures, describe(failures)
    assert {r.op for r in got} == set(others)


@pytest.mark.parametrize("v", [p for p in VARIANTS if p.values[0].conforms_under])
def test_variant_conforms_under_the_profile_of_its_convention(v: wrong.Variant) -> None:
    for profile in v.conforms_under:
        got = rows(variant_target(v), checks=VALUE_CHECKS, ops=[v.op], profile=profile, examples=0)
        failures = [r for r in got if not r.ok]
        assert not failures, (profile, describe(failures))


def test_a_convention_that_refuses_inputs_tf_accepts_is_a_raises_check() -> None:
    # PyTorch's one_hot refuses out-of-range indices, where tf.one_hot gives all-off rows.
    cases = {"out-of-range-rows-zero", "negative-rows-zero"}
    kw = {"checks": VALUE_CHECKS, "cases": cases, "ops": ["one_hot"], "profile": "torch"}
    refusing = rows({"one_hot": wrong.one_hot_raises}, **kw, examples=0)
    assert {r.check for r in refusing} == {"raises"}
    assert all(r.ok for r in refusing), describe(refusing)
    accepting = rows({"one_hot": numpy_loops.one_hot}, **kw, examples=0)
    assert not any(r.ok for r in accepting)
    assert all("torch profile expects out-of-range indices refused" in r.message for r in accepting)
    assert all("TF's convention" in r.matches for r in accepting)


def test_a_gradient_of_the_wrong_shape_is_a_failure_that_names_it() -> None:
    v = next(v for v in wrong.VARIANTS if v.id == "dense-dw-transposed")
    report = conform.run(variant_target(v), ops=["dense"], dtypes=["float64"], examples=0)
    vjp = [r for r in report.rows if r.check == "vjp"]
    assert vjp
    assert all(r.status == "fail" for r in vjp), describe(vjp)
    # A square kernel's dW transposed has the right shape: its values fail (the case is there
    # for this bug; with --examples 0 nothing else would catch it).
    square = [r for r in vjp if r.case == "square-kernel-6x6"]
    assert len(square) == 1, describe(vjp)
    assert square[0].where.startswith("dw["), describe(square)
    assert "finite differences reject it too" in square[0].message
    assert all(r.where == "dw" for r in vjp if r not in square), describe(vjp)
    assert "dw has shape (3, 5), expected (5, 3)" in vjp[0].message
    assert f"vjp failures ({len(vjp)})" in report.summary(repro=False)


def test_the_vjp_of_a_forward_of_the_wrong_shape_is_not_compared() -> None:
    # PyTorch's symmetric pad gives a 4-row output where TF SAME gives 5: the cotangent has 5
    # rows, so calling the backward with it would blame the backward for the forward's shape.
    v = next(v for v in wrong.VARIANTS if v.id == "conv-torch-symmetric-pad")
    got = rows(
        variant_target(v),
        checks=VALUE_CHECKS,
        cases={"same-pad-odd-total-h"},
        ops=["conv2d"],
        dtypes=["float64"],
        examples=0,
    )
    by_check = {r.check: r for r in got}
    assert by_check["signature"].status == "fail"
    assert "shape (2, 4, 6, 3), expected (2, 5, 6, 3)" in by_check["signature"].message
    assert by_check["vjp"].status == "not compared"
    assert "see signature" in by_check["vjp"].message


def test_a_vjp_row_survives_finite_differences_that_raise() -> None:
    # Logits of 1e4 without the max shift give inf / NaN; under warnings-as-errors (this
    # project's pytest configuration, and any user's) the gradient check's arithmetic on them
    # raises inside the vjp row's verdict, which must stay a row, not escape the task. It raises
    # where phi sums +inf and -inf terms: the checker's cotangent must take both signs on the
    # infinite losses, as seed 1's does (seed 0's salted cotangent has one sign there, so phi is
    # a plain inf, finite differences reject the VJP, and nothing raises).
    v = next(v for v in wrong.VARIANTS if v.id == "xent-unshifted")
    got = rows(
        variant_target(v),
        checks={"vjp"},
        cases={"huge-logits-shifted"},
        ops=[v.op],
        dtypes=["float64"],
        examples=0,
        seed=1,
    )
    assert [r.status for r in got] == ["fail"]
    assert "finite differences could not be evaluated (RuntimeWarning" in got[0].message


def test_a_reduced_loss_that_differs_shows_both_values() -> None:
    # sum_over_batch_size computed as a sum: a 0-d output, whose message showed no values.
    v = next(v for v in wrong.VARIANTS if v.id == "mse-sum-not-mean")
    got = rows(
        variant_target(v),
        checks={"forward"},
        cases={"rows-6x3"},
        ops=[v.op],
        dtypes=["float64"],
        examples=0,
    )
    (row,) = got
    exp = conform.expected_values(v.op, "rows-6x3", "float64").y
    assert row.where == "y"
    assert f"vs expected {float(exp)!r}" in row.message, row.message


def test_a_backward_writing_into_its_residuals_is_caught() -> None:
    # Right values on the first call, so only the comparison of the residuals before and
    # after the backward sees it; the second call with them shows the harm.
    v = next(v for v in wrong.VARIANTS if v.id == "softmax-bwd-into-saved-output")
    x = np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]])
    dy = np.array([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]])
    _, res = numpy_vectorised.softmax_fwd(x)
    want = numpy_vectorised.softmax_bwd(res, dy)[0]
    np.testing.assert_allclose(v.replace["softmax_bwd"](res, dy)[0], want, rtol=1e-15)
    assert not np.allclose(v.replace["softmax_bwd"](res, dy)[0], want)

    report = conform.run(variant_target(v), ops=["softmax"], examples=EXAMPLES)
    vjp = [r for r in report.rows if r.check == "vjp"]
    assert vjp
    for r in vjp:
        assert r.status == "fail"
        assert r.message.startswith(
            "softmax_bwd modified the forward's residual res[0] in place (a second call with "
            f"the same residuals starts from the changed values) on case {r.case} ({r.dtype}), "
            "at res[0]["
        ), r.message
        assert "also:" not in r.message  # the values are TF's
    assert {r.check for r in report.failures} == {"vjp", "vjp-fd", "property"}
