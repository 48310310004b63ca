"""``nnref verify`` and the three-way report."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nnref
from nnref.cli import main


def test_verify_fd_only_table_and_exit_code(capsys) -> None:
    assert main(["verify", "--fd-only", "--op", "dense", "--op", "relu", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert "dense" in out
    assert " fd " in out
    assert "2 passed, 0 failed" in out


def test_verify_an_op_or_dtype_named_twice_is_one_row(capsys) -> None:
    """``--op relu --op relu`` printed relu's rows twice and counted them twice as passed."""
    argv = ["verify", "--fd-only", "--op", "relu", "--op", "relu"]
    assert main([*argv, "--dtype", "float64", "--dtype", "float64", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["op"], r["dtype"]) for r in rows] == [("relu", "float64")]


def test_verify_an_op_with_nothing_to_check_is_not_a_pass(capsys) -> None:
    # sgd has no finite-difference case: it is shown as not checked, never counted as passed.
    argv = ["verify", "--fd-only", "--op", "sgd", "--op", "relu", "--dtype", "float64"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert [line.split()[-2:] for line in out.splitlines() if line.startswith("sgd ")] == [
        ["not", "checked"]
    ]
    assert "1 passed, 0 failed, 1 not checked" in out
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["op"]: r["ok"] for r in report["rows"]} == {"sgd": None, "relu": True}
    assert (report["failed"], report["not_checked"]) == (0, 1)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_verify_a_selection_that_checks_nothing_is_a_usage_error(json_flag, capsys) -> None:
    assert main(["verify", "--fd-only", "--op", "sgd", *json_flag]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "nnref verify: nothing to check: no case of sgd for finite differences (--fd-only); "
        "drop --fd-only to use the oracles\n"
    )


def test_verify_unknown_op(capsys) -> None:
    assert main(["verify", "--fd-only", "--op", "conv9d"]) == 2
    assert "unknown op" in capsys.readouterr().err


def test_verify_fails_on_a_broken_op(monkeypatch, capsys) -> None:
    from nnref import cases

    def broken_bwd(res, dy):
        dx, dw, db = nnref.dense_bwd(res, dy)
        return dx, dw * 1.01, db

    real = cases.reference

    def broken_reference():
        return {**real(), "dense_bwd": broken_bwd}

    monkeypatch.setattr("nnref.verify.reference", broken_reference)
    assert main(["verify", "--fd-only", "--op", "dense", "--dtype", "float64", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == 1
    assert report["rows"][0]["ok"] is False


@pytest.mark.tf
def test_verify_all_legs_json(capsys) -> None:
    assert main(["verify", "--json", "--op", "softmax"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"numpy", "tensorflow", "keras"} <= set(report["versions"])
    assert {r["dtype"] for r in report["rows"]} == {"float32", "float64"}
    for r in report["rows"]:
        assert r["ok"]
        assert r["tf"] < 1e-5
        assert r["keras"] < 1e-5


@pytest.mark.tf
def test_three_way_names_the_disagreeing_leg(rng) -> None:
    from nnref.oracles.tf import import_tf, three_way

    tf = import_tf()
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)

    def tf_dense(x, w, b):
        return tf.nn.bias_add(tf.linalg.matmul(x, w), b)

    def bad(res, dy):
        dx, dw, db = nnref.dense_bwd(res, dy)
        return dx * 1.001, dw, db

    assert three_way(nnref.dense_fwd, nnref.dense_bwd, tf_dense, (x, w, b)).disagreeing is None
    r = three_way(nnref.dense_fwd, bad, tf_dense, (x, w, b))
    assert r.disagreeing == "nnref"
    assert "nnref's VJP" in r.message()
    r = three_way(
        nnref.dense_fwd, nnref.dense_bwd, lambda x, w, b: tf_dense(x, w, 2 * b), (x, w, b)
    )
    assert r.disagreeing == "tf"
    p, z = rng.random((4, 5)), rng.standard_normal((4, 5))
    r = three_way(
        nnref.softmax_cross_entropy_with_logits_fwd,
        nnref.softmax_cross_entropy_with_logits_bwd,
        lambda p, z: tf.nn.softmax_cross_entropy_with_logits(labels=p, logits=z),
        (p, z),
    )
    assert r.disagreeing == "fd"
    assert not r.ok


@pytest.mark.tf
def test_tape_vjp_multiple_outputs_and_integer_inputs(rng) -> None:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    x = rng.standard_normal(3)
    k = np.array([1, 2, 3])
    (ys, yc), (gx, gk) = tape_vjp(
        lambda x, k: (tf.sin(x), tf.cos(x) * tf.cast(k, x.dtype)), (x, k), (np.ones(3), np.ones(3))
    )
    np.testing.assert_allclose(ys, np.sin(x))
    np.testing.assert_allclose(yc, np.cos(x) * k)
    np.testing.assert_allclose(gx, np.cos(x) - np.sin(x) * k, rtol=1e-14)
    assert gk is None


@pytest.mark.parametrize(
    ("error", "ok"),
    [
        (ValueError("label 7 out of range"), True),  # a framework refusing the input
        (RuntimeError("expected target dtype Long"), True),
        (AttributeError("'NoneType' object has no attribute 'shape'"), False),  # a broken leg
        (NameError("name 'F' is not defined"), False),
    ],
    ids=["ValueError", "RuntimeError", "AttributeError", "NameError"],
)
def test_a_crashing_leg_does_not_count_as_refusing_a_bad_input(error, ok) -> None:
    """In a case that must raise, any exception used to count as the oracle's refusal, so a
    leg that crashed for an unrelated reason 'agreed' with nnref."""
    from nnref.verify import run_case

    def leg(args, static, dy):
        raise error

    r = run_case(
        "sparse_softmax_cross_entropy_with_logits",
        "label-out-of-range-raises",
        "float64",
        "tf",
        leg,
    )
    assert r.ok is ok, r.detail
    assert f"tf raises {type(error).__name__}" in r.detail
    if not ok:
        assert "a broken call, not a refusal" in r.detail
