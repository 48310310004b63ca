"""Training driver: determinism, resume, sanity checks, recipe accuracy, TF parity, CLI."""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import math
import re
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nnref.cli import main
from nnref.data.datasets import Dataset, load_digits
from nnref.train.loop import (
    ConfigError,
    TrainingDiverged,
    TrainingInterrupted,
    batch_indices,
    build_run,
    load_checkpoint,
    make_config,
    save_checkpoint,
    train,
    train_step,
)

QUIET = {"log": lambda s: None}


def test_same_seed_same_numbers_bit_for_bit() -> None:
    cfg = make_config("mlp", steps=60, display_step=10)
    a, b = train(cfg, **QUIET), train(cfg, **QUIET)
    assert a.history == b.history
    assert a.test_accuracy == b.test_accuracy
    c = train(make_config("mlp", steps=60, display_step=10, seed=1), **QUIET)
    assert c.history != a.history


@pytest.mark.parametrize("recipe", ["mlp", "digits-kfold", "naive-dense", "cnn"])
def test_resume_is_bit_identical(recipe, tmp_path) -> None:
    cfg = make_config(recipe, steps=30, display_step=5)
    whole = train(cfg, out=tmp_path / "whole", checkpoint_every=7, **QUIET)
    train(cfg, out=tmp_path / "cut", checkpoint_every=7, stop_after=13, **QUIET)
    resumed = train(cfg, out=tmp_path / "cut", resume=True, checkpoint_every=7, **QUIET)
    assert resumed.history == whole.history
    assert resumed.test_accuracy == whole.test_accuracy
    a, b = build_run(cfg), build_run(cfg)
    load_checkpoint(a, tmp_path / "whole" / "checkpoint.npz")
    load_checkpoint(b, tmp_path / "cut" / "checkpoint.npz")
    for p, q in zip(a.params, b.params, strict=True):
        np.testing.assert_array_equal(p, q)


def test_checkpoint_refuses_other_config_and_garbage(tmp_path) -> None:
    run = build_run(make_config("mlp", steps=5))
    train_step(run)
    save_checkpoint(run, tmp_path / "c.npz")
    other = build_run(make_config("mlp", steps=5, learning_rate=0.5))
    with pytest.raises(ValueError, match=r"written with --lr 0\.1 \(this run: 0\.5\); resume with"):
        load_checkpoint(other, tmp_path / "c.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not an nnref checkpoint"):
        load_checkpoint(run, tmp_path / "bad.npz")
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(make_config("mlp", steps=5), out=tmp_path / "none", resume=True, **QUIET)


ADAM_MLP = make_config("mlp", steps=3, optimizer="adam", display_step=1)


def _edited_checkpoint(tmp_path, meta_edit=None, array_edit=None) -> Path:
    """A 3-step checkpoint of ``ADAM_MLP`` rewritten with one metadata field or array changed
    (``{field: value}``; an array set to None is removed)."""
    out = tmp_path / "run"
    train(ADAM_MLP, out=out, **QUIET)
    path = out / "checkpoint.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes()) | (meta_edit or {})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays |= array_edit or {}
    np.savez(path, **{k: a for k, a in arrays.items() if a is not None})
    return path


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        ({"history": 5}, "meta field 'history' must be a list of logged steps, got 5"),
        ({"history": None}, "meta field 'history' must be a list of logged steps, got None"),
        ({"history": "abc"}, "meta field 'history' must be a list of logged steps, got 'abc'"),
        ({"history": [1, 2, 3]}, "meta field 'history' row 0 must be an object of step, loss,"),
        ({"history": []}, "meta field 'history' holds 0 logged steps at step 3"),
        (
            {"history": [{"step": 1, "loss": float("nan"), "accuracy": 0.5}]},
            "meta field 'history' row 0: loss must be a finite number >= 0, got nan",
        ),
        (
            {"history": [{"step": 1, "loss": 10**400, "accuracy": 0.5}]},
            "meta field 'history' row 0: loss must be a finite number >= 0, got 1000",
        ),
        (
            {"history": [{"step": 2, "loss": 1.0, "accuracy": 0.5}]},
            "meta field 'history' row 0: step must be 1, got 2",
        ),
        ({"step": -3}, "meta field 'step' must be an integer >= 0, got -3"),
        ({"step": "3"}, "meta field 'step' must be an integer >= 0, got '3'"),
        ({"step": 2.7}, "meta field 'step' must be an integer >= 0, got 2.7"),
        ({"step": True}, "meta field 'step' must be an integer >= 0, got True"),
        ({"iterations": -1}, "meta field 'iterations' must be an integer >= 0, got -1"),
        ({"n_params": "x"}, "meta field 'n_params' is 'x', this model has 6 parameters"),
        ({"slots": "m"}, "meta field 'slots' is 'm', this run's optimizer keeps ['m', 'v']"),
        ({"config_key": 42}, "meta field 'config_key' must be a string, got 42"),
        ({"extra": 1}, "the metadata has unknown fields ['extra']"),
    ],
)
def test_an_edited_checkpoint_field_is_refused_naming_file_and_field(edit, says, tmp_path) -> None:
    path = _edited_checkpoint(tmp_path, meta_edit=edit)
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: {says}")):
        load_checkpoint(build_run(ADAM_MLP), path)


def test_the_data_fingerprint_is_checked_when_the_checkpoint_has_one(tmp_path) -> None:
    """A checkpoint keeps its data's fingerprint; one written before the field resumes
    unchecked, and an edited one is refused."""
    path = _edited_checkpoint(tmp_path)
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes())
    run = build_run(ADAM_MLP)
    assert meta["data"] == run.data_fingerprint
    assert len(run.data_fingerprint) == 64
    without = _edited_checkpoint(tmp_path / "old", meta_edit={"data": None})
    with np.load(without) as z:
        arrays = {k: z[k] for k in z.files}
    meta = {k: v for k, v in json.loads(arrays["meta"].tobytes()).items() if k != "data"}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(without, **arrays)
    load_checkpoint(build_run(ADAM_MLP), without)  # no field: resumes
    edited = _edited_checkpoint(tmp_path / "edited", meta_edit={"data": "0" * 64})
    with pytest.raises(ValueError, match="was trained on other data than this run loads"):
        load_checkpoint(build_run(ADAM_MLP), edited)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (
            "slot_m_0",
            np.zeros((1, 128), np.float32),
            "array 'slot_m_0' is float32(1, 128), this run's optimizer slot 'm' of parameter 0 "
            "is float32(64, 128)",
        ),
        (
            "slot_v_0",
            np.zeros((64, 128), np.int64),
            "array 'slot_v_0' is int64(64, 128), this run's optimizer slot 'v' of parameter 0 "
            "is float32(64, 128)",
        ),
        ("slot_m_1", np.float32(0), "array 'slot_m_1' is float32(), this run's optimizer"),
        ("slot_v_1", None, "array 'slot_v_1' (optimizer slot 'v' of parameter 1) is missing"),
        (
            "param_0",
            np.full((64, 128), np.nan, np.float32),
            "array 'param_0' holds NaN or inf (nnref never writes such a checkpoint)",
        ),
        ("junk", np.zeros(3), "arrays ['junk'] are not nnref checkpoint entries"),
    ],
)
def test_an_edited_checkpoint_array_is_refused_naming_it(name, value, says, tmp_path) -> None:
    path = _edited_checkpoint(tmp_path, array_edit={name: value})
    run = build_run(ADAM_MLP)
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: {says}")):
        load_checkpoint(run, path)
    assert run.step == 0  # nothing restored


def test_a_checkpoint_array_declaring_a_huge_shape_is_refused_unread(tmp_path) -> None:
    path = _edited_checkpoint(tmp_path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    with zipfile.ZipFile(path, "w") as zf:  # param_0's header declares 2**40 floats
        for k, a in arrays.items():
            buf = io.BytesIO()
            if k == "param_0":
                header = {"descr": "<f4", "fortran_order": False, "shape": (2**40,)}
                np.lib.format.write_array_header_1_0(buf, header)
                buf.write(a.tobytes())
            else:
                np.save(buf, a)
            zf.writestr(f"{k}.npy", buf.getvalue())
    says = "param_0 declares float32(1099511627776,) = 4398046511104 bytes, over the 536870912"
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: {says} limit") + "$"):
        load_checkpoint(build_run(ADAM_MLP), path)


@pytest.mark.parametrize("recipe", ["mlp", "three-layer", "cnn"])
def test_initial_loss_is_ln10_with_small_weights(recipe) -> None:
    run = build_run(make_config(recipe, dtype="float64"))
    loss, _ = train_step(run)
    assert abs(loss - math.log(10)) < 0.15


def test_overfits_twenty_samples() -> None:
    d = load_digits()
    tiny = Dataset("digits20", d.x_train[:20], d.y_train[:20], d.x_test[:20], d.y_test[:20], 10)
    cfg = make_config("mlp", steps=200, batch_size=20)
    result = train(cfg, data=tiny, **QUIET)
    assert result.train_accuracy == 1.0


def _readme_accuracy(recipe: str, dataset: str) -> str | None:
    """The README's test accuracy of this default run (``benchmarks/results/recipes.json``, as
    rendered), or None off the platform it was measured on (figures differ in the last bits
    with NumPy, the CPU and OpenBLAS' thread count, and training amplifies them)."""
    root = Path(__file__).resolve().parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location("recipe_accuracy", root / "recipe_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    committed = json.loads((root / "results" / "recipes.json").read_text())
    if mod.platform_key() != committed["platform"]:
        return None
    run = next(r for r in committed["runs"] if (r["recipe"], r["dataset"]) == (recipe, dataset))
    return f"{run['test_accuracy']:.4f}"


@pytest.mark.parametrize(
    ("recipe", "dataset", "floor"),
    [
        ("mlp", "digits", 0.95),
        ("naive-dense", "digits", 0.95),
        ("digits-kfold", "digits", 0.95),
        ("three-layer", "digits", 0.95),
        ("cnn", "digits", 0.97),
        ("sigmoid-mse", "toy", 0.9),
        ("sigmoid-mse", "digits", 0.0),  # not a digits classifier: the README figure only
    ],
)
def test_recipe_reaches_its_accuracy_and_the_readme_figure(recipe, dataset, floor) -> None:
    acc = train(make_config(recipe, dataset=dataset), **QUIET).test_accuracy
    assert acc >= floor
    readme = _readme_accuracy(recipe, dataset)
    if readme is not None:  # recomputed where it was measured
        assert f"{acc:.4f}" == readme


def test_batching_schemes() -> None:
    n = 1437
    assert [len(batch_indices("kfold", n, 64, 0, s)) for s in (0, 6, 7, 21)] == [66, 66, 65, 65]
    epoch = np.concatenate([batch_indices("kfold", n, 64, 0, s) for s in range(22)])
    np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
    np.testing.assert_array_equal(
        batch_indices("sequential", 10, 4, 0, 2), [0, 1, 2, 3]
    )  # 2 per epoch
    stream = np.concatenate([batch_indices("stream", 10, 4, 0, s) for s in range(5)])
    np.testing.assert_array_equal(np.sort(stream[:10]), np.arange(10))  # first epoch complete
    np.testing.assert_array_equal(np.sort(stream[10:20]), np.arange(10))
    assert len(batch_indices("full", 7, 0, 0, 3)) == 7
    with pytest.raises(ValueError, match="unknown batching"):
        batch_indices("random", 10, 2, 0, 0)


def test_three_layer_uses_tf1_adam_defaults() -> None:
    # Lesson 004: ``tf.train.AdamOptimizer().minimize(cost)``: TF1's defaults, epsilon 1e-8
    # (Keras' Adam has 1e-7); --lr changes the rate only.
    from nnref.train.loop import make_optimizer
    from nnref.train.recipes import RECIPES

    for lr in (None, 0.01):
        cfg = make_config("three-layer", learning_rate=lr)
        config = make_optimizer(cfg, RECIPES["three-layer"]).config
        assert (config["learning_rate"], config["epsilon"]) == (lr or 0.001, 1e-8)


@pytest.mark.parametrize(("recipe", "epochs"), [("digits-kfold", 100), ("sigmoid-mse", 100)])
def test_default_log_cadence_is_the_lessons(recipe, epochs) -> None:
    # Lesson 003 prints ``elif (epoch + 1) % 100 == 0`` in both loops: every 100 epochs.
    assert make_config(recipe).display_step == make_config(recipe, epochs=epochs).steps


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="recipe 'rnn': unknown"):
        make_config("rnn")
    with pytest.raises(ConfigError, match="not both"):
        make_config("mlp", steps=5, epochs=2)
    assert make_config("digits-kfold", epochs=2).steps == 44
    with pytest.raises(ConfigError, match="batch_size 5000: exceeds the 1437 training samples"):
        build_run(make_config("mlp", batch_size=5000))
    with pytest.raises(ConfigError, match=r"cnn needs images \(N, H, W, C\); toy has shape"):
        build_run(make_config("cnn", dataset="toy"))
    with pytest.raises(ConfigError, match="optimizer 'lbfgs': unknown"):
        make_config("mlp", optimizer="lbfgs")


@pytest.mark.tf
@pytest.mark.parametrize(("recipe", "steps"), [("mlp", 25), ("digits-kfold", 25), ("cnn", 8)])
def test_step_by_step_parity_with_tensorflow_float64(recipe, steps) -> None:
    from nnref.oracles.tf_train import parity_losses

    ours, theirs = parity_losses(make_config(recipe, dtype="float64"), steps)
    rel = np.abs(np.array(ours) - theirs) / np.abs(theirs)
    assert rel.max() <= 1e-9, rel


def test_cli_train_writes_outputs_and_resumes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "mlp",
                "--steps",
                "40",
                "--log-every",
                "20",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "step: 20, loss:" in text
    assert "test accuracy:" in text
    for f in ("metrics.csv", "metrics.json", "checkpoint.npz", "curves.png", "predictions.png"):
        assert (out / f).is_file(), f
    assert json.loads((out / "metrics.json").read_text())["steps_run"] == 40
    assert (
        main(
            [
                "train",
                "mlp",
                "--steps",
                "60",
                "--log-every",
                "20",
                "--out",
                str(out),
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "resumed from" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["steps_run"] == 20


def test_cli_train_errors(tmp_path, capsys) -> None:
    assert main(["train", "mlp", "--resume"]) == 2
    assert "--resume: needs --out" in capsys.readouterr().err
    assert main(["train", "mlp", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert "MNIST not found" in capsys.readouterr().err


def test_cli_train_on_mnist_files(tmp_path, write_mnist) -> None:
    write_mnist(tmp_path, 64, 16)
    assert (
        main(
            [
                "train",
                "cnn",
                "--dataset",
                "mnist",
                "--data-dir",
                str(tmp_path),
                "--steps",
                "2",
                "--batch-size",
                "16",
                "--no-progress",
            ]
        )
        == 0
    )


def test_errata_cli(capsys) -> None:
    assert main(["errata", "--steps", "30", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["erratum"] for r in rows] == [
        "mlp-skips-fc2-double-softmax",
        "cnn-summed-loss",
        "adam-recreated-each-step",
        "ones-initialisation",
    ]
    by = {r["erratum"]: r for r in rows}
    # The double softmax bounds the logits to [0, 1]: the loss cannot fall below log(e + 9) - 1.
    assert by["mlp-skips-fc2-double-softmax"]["bug_loss"] > math.log(math.e + 9) - 1
    # Summing over a batch of 128 makes the reported loss ~128x the mean.
    assert by["cnn-summed-loss"]["bug_loss"] > 20 * by["cnn-summed-loss"]["fixed_loss"]


# --------------------------------------------------------------------------- hardening


def test_a_run_shorter_than_log_every_logs_first_and_final_step() -> None:
    result = train(make_config("mlp", steps=7), **QUIET)  # display_step 100
    assert [h["step"] for h in result.history] == [1, 7]


def test_logged_steps_carry_heldout_metrics(tmp_path) -> None:
    result = train(make_config("mlp", steps=20, display_step=10), out=tmp_path / "r", **QUIET)
    assert [h["step"] for h in result.history] == [1, 10, 20]
    assert all({"heldout_loss", "heldout_accuracy"} <= set(h) for h in result.history)
    # digits' 360 test samples are all held out: the final row is the final test accuracy.
    assert result.history[-1]["heldout_accuracy"] == result.test_accuracy
    assert result.heldout_samples == result.test_samples == 360
    header = (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,loss,accuracy,heldout_loss,heldout_accuracy"


def test_heldout_evaluation_is_bounded(monkeypatch) -> None:
    from nnref.train import loop

    monkeypatch.setattr(loop, "HELDOUT_MAX", 16)
    d = load_digits()
    data = Dataset("digits", d.x_train, d.y_train, d.x_test[:40], d.y_test[:40], 10)
    result = train(make_config("mlp", steps=3), data=data, **QUIET)
    assert (result.heldout_samples, result.test_samples) == (16, 40)
    run = build_run(make_config("mlp", steps=3), data)
    while run.step < 3:
        train_step(run)
    x16, y16 = run.x_test[:16], run.y_test[:16]
    assert result.history[-1]["heldout_accuracy"] == loop.evaluate(run, x16, y16)


def test_divergence_stops_at_the_step_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    cfg = make_config("mlp", steps=30, learning_rate=1e6)
    with pytest.raises(TrainingDiverged, match=r"the loss is nan at step 3 .*lower the") as e:
        train(cfg, out=tmp_path / "r", checkpoint_every=1, **QUIET)
    assert (e.value.step, e.value.checkpoint_step) == (3, 2)
    assert "checkpoint.npz (step 2) is kept" in str(e.value)
    run = build_run(make_config("mlp", steps=30, learning_rate=1e6))
    load_checkpoint(run, tmp_path / "r" / "checkpoint.npz")
    assert run.step == 2
    assert all(np.isfinite(p).all() for p in run.params)


def test_overflowing_parameters_stop_the_run_before_a_checkpoint(tmp_path, monkeypatch) -> None:
    from nnref.train import loop

    real_step = loop.train_step

    def poisoned(run):  # step 2's update overflows, its batch loss was still finite
        out = real_step(run)
        if run.step == 2:
            run.params = [
                np.full_like(p, np.inf) if i == 0 else p for i, p in enumerate(run.params)
            ]
        return out

    monkeypatch.setattr(loop, "train_step", poisoned)
    with pytest.raises(TrainingDiverged, match="a parameter is not finite at step 2") as e:
        train(make_config("mlp", steps=5), out=tmp_path / "r", checkpoint_every=1, **QUIET)
    assert e.value.checkpoint_step == 1
    # The final state is checked too: a held-out loss that overflows is divergence.
    d = load_digits()
    big = Dataset("digits", d.x_train * 1e4, d.y_train, d.x_test * 1e4, d.y_test, 10)
    monkeypatch.setattr(loop, "train_step", real_step)
    with pytest.raises(TrainingDiverged, match="the held-out loss is nan at step 1"):
        train(make_config("mlp", steps=1, learning_rate=1e30), data=big, **QUIET)


def test_ctrl_c_ends_the_step_and_the_run_resumes_bit_identically(tmp_path) -> None:
    import os
    import signal

    cfg = make_config("mlp", steps=30, display_step=5)
    whole = train(cfg, **QUIET)

    def ctrl_c_at_10(line: str) -> None:
        if line.startswith("step: 10,"):
            os.kill(os.getpid(), signal.SIGINT)

    try:
        train(cfg, out=tmp_path / "r", log=ctrl_c_at_10)
    except TrainingInterrupted as e:
        stopped = e
    except KeyboardInterrupt:  # escaping, it would stop the whole test session
        pytest.fail("a bare KeyboardInterrupt escaped train()")
    else:
        pytest.fail("train() went on after Ctrl-C")
    assert (stopped.step, stopped.checkpoint_step) == (10, 10)
    assert stopped.checkpoint == tmp_path / "r" / "checkpoint.npz"
    resumed = train(cfg, out=tmp_path / "r", resume=True, **QUIET)
    assert resumed.history == whole.history
    assert resumed.test_accuracy == whole.test_accuracy


# An interrupt at the `with` line as the block exits, before __exit__ runs, leaves the file
# object to be closed by its finalizer (after the temporary file is removed): Python's, not ours.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_anywhere_in_a_checkpoint_write_keeps_one_whole_checkpoint(
    tmp_path,
) -> None:
    """A KeyboardInterrupt (a second Ctrl-C) raised at each line in turn of the code that
    creates, renames and removes the files leaves no temporary file, and the checkpoint on
    disk is the old one or the new one, whole."""
    cfg = make_config("sigmoid-mse", steps=2)
    run = build_run(cfg)
    path = tmp_path / "checkpoint.npz"
    for _ in range(2):
        loss, acc = train_step(run)
        run.history.append({"step": run.step, "loss": loss, "accuracy": acc})
        if run.step == 1:
            save_checkpoint(run, path)
    watched = ("loop.py", "tempfile.py", "pathlib.py", "posixpath", "genericpath", "<frozen os>")
    for k in itertools.count(1):
        seen = 0

        def interrupt_at_k(frame, event, arg, k=k):
            nonlocal seen
            if not frame.f_code.co_filename.endswith(watched):
                return interrupt_at_k
            seen += 1
            if seen == k:
                raise KeyboardInterrupt  # the trace function is then unset
            return interrupt_at_k

        sys.settrace(interrupt_at_k)
        try:
            save_checkpoint(run, path)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"], k
        reloaded = build_run(cfg)
        load_checkpoint(reloaded, path)
        assert reloaded.step in (1, 2)
        if seen < k:  # ran to the end without reaching the k-th line
            break
    assert reloaded.step == 2
    assert k > 20


LAST = make_config("mlp", steps=12, display_step=4)


def _interrupted(cfg, out, **kw) -> TrainingInterrupted:
    """The TrainingInterrupted that ``train`` raises (failing on anything else)."""
    try:
        train(cfg, out=out, **kw)
    except TrainingInterrupted as e:
        return e
    except KeyboardInterrupt:  # escaping, it would stop the whole test session
        pytest.fail("a bare KeyboardInterrupt escaped train()")
    pytest.fail("train() finished: the Ctrl-C was ignored")


def _assert_same_outputs(whole: Path, cut: Path) -> None:
    """``cut`` holds ``whole``'s outputs bit for bit (metrics.json's ``seconds`` and
    ``steps_run`` describe the invocation that wrote it), and no temporary file."""
    for name in ("metrics.csv", "curves.png", "predictions.png"):
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, cut))
    for m in (a, b):
        del m["seconds"], m["steps_run"]
    assert a == b
    with np.load(whole / "checkpoint.npz") as za, np.load(cut / "checkpoint.npz") as zb:
        assert za.files == zb.files
        for k in za.files:
            np.testing.assert_array_equal(za[k], zb[k])
    assert sorted(p.name for p in cut.iterdir()) == sorted(p.name for p in whole.iterdir())


def test_ctrl_c_in_the_last_step_then_resume_finishes_the_outputs(tmp_path) -> None:
    import os
    import signal

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(LAST, out=whole, **QUIET)

    def ctrl_c_at_12(line: str) -> None:
        if line.startswith("step: 12,"):
            os.kill(os.getpid(), signal.SIGINT)

    stopped = _interrupted(LAST, cut, log=ctrl_c_at_12)
    assert (stopped.step, stopped.checkpoint_step, stopped.complete) == (12, 12, True)
    assert [p.name for p in cut.iterdir()] == ["checkpoint.npz"]
    logs: list[str] = []
    resumed = train(LAST, out=cut, resume=True, log=logs.append)
    assert logs[0] == (
        f"resumed from {cut / 'checkpoint.npz'} at step 12: training is complete, finishing the "
        "outputs"
    )
    assert resumed.steps_run == 0
    _assert_same_outputs(whole, cut)
    with pytest.raises(ConfigError, match=r"is complete \(step 12 of 12\)"):
        train(LAST, out=cut, resume=True, **QUIET)
    (cut / "curves.png").unlink()  # a missing output is finished too
    train(LAST, out=cut, resume=True, **QUIET)
    _assert_same_outputs(whole, cut)


def test_ctrl_c_in_the_final_evaluation_stops_at_once(tmp_path, monkeypatch) -> None:
    import os
    import signal

    from nnref.train import loop

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(LAST, out=whole, **QUIET)
    real_predict = loop.predict
    pressed = []

    def ctrl_c_then_predict(run, x, batch=1024):  # the first call is the final evaluation's
        if not pressed:  # one Ctrl-C
            pressed.append(os.kill(os.getpid(), signal.SIGINT))
        return real_predict(run, x, batch)

    monkeypatch.setattr(loop, "predict", ctrl_c_then_predict)
    stopped = _interrupted(LAST, cut, **QUIET)
    assert (stopped.checkpoint_step, stopped.complete) == (12, True)
    assert "training is complete; resume to finish the outputs" in str(stopped)
    monkeypatch.undo()
    train(LAST, out=cut, resume=True, **QUIET)
    _assert_same_outputs(whole, cut)


def test_an_interrupt_while_writing_the_outputs_is_finished_by_resume(
    tmp_path, monkeypatch
) -> None:
    from nnref.train import loop

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train(LAST, out=whole, **QUIET)
    train(replace(LAST, steps=8), out=cut, **QUIET)  # an earlier segment's outputs are there

    def ctrl_c(*args, **kwargs):  # a KeyboardInterrupt while the second figure is drawn
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "predictions_figure", ctrl_c)
    stopped = _interrupted(LAST, cut, resume=True, **QUIET)
    assert (stopped.checkpoint_step, stopped.complete) == (12, True)
    assert not [p.name for p in cut.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    resumed = train(LAST, out=cut, resume=True, **QUIET)
    assert resumed.history == json.loads((whole / "metrics.json").read_text())["history"]
    _assert_same_outputs(whole, cut)


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys) -> None:
    import io

    cfg = make_config("mlp", steps=30, display_step=100)
    train(cfg, progress=True, **QUIET)
    assert capsys.readouterr().err == ""  # redirected: no redraws

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    train(cfg, progress=True, **QUIET)
    assert "\r" in tty.getvalue()


def test_curves_show_heldout_beside_batch_with_true_titles() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from nnref.train.loop import curves_figure

    result = train(make_config("mlp", steps=20, display_step=10), **QUIET)
    fig = curves_figure(result)
    loss_ax, acc_ax = fig.axes
    assert (loss_ax.get_title(), acc_ax.get_title()) == ("loss", "accuracy")
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        batch, held = ax.get_lines()
        assert list(held.get_ydata()) == [h[f"heldout_{key}"] for h in result.history]
        assert list(batch.get_ydata()) == [h[key] for h in result.history]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["training batch", "held-out (360 test samples)"]
    assert f"final test accuracy {result.test_accuracy:.4f}" in fig._suptitle.get_text()
    plt.close(fig)


@pytest.mark.parametrize(("n_wrong", "shown_wrong"), [(0, 0), (3, 3), (15, 10)])
def test_predictions_show_true_and_predicted_labels_mistakes_first(n_wrong, shown_wrong) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from nnref.train.loop import predictions_figure

    run = build_run(make_config("mlp"))
    y = run.y_test
    pred = y.copy()
    wrong = np.arange(5, 5 + 2 * n_wrong, 2)  # not the first test images
    pred[wrong] = (y[wrong] + 1) % 10
    fig = predictions_figure(run, pred)
    titles = [(ax.get_title(), ax.title.get_color()) for ax in fig.axes]
    assert len(titles) == 20
    expect_wrong = [(f"{y[i]}→{pred[i]}", "red") for i in wrong[:shown_wrong]]
    assert titles[:shown_wrong] == expect_wrong
    right = [i for i in range(len(y)) if i not in set(wrong)][: 20 - shown_wrong]
    assert titles[shown_wrong:] == [(f"{y[i]}→{y[i]}", "green") for i in right]
    head = f"{n_wrong} of 360 wrong" if n_wrong else "all 360 right"
    assert head in fig._suptitle.get_text()
    plt.close(fig)


def test_two_feature_predictions_are_a_picture_too() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from nnref.train.loop import predictions_figure

    run = build_run(make_config("sigmoid-mse"))
    pred = run.y_test.copy()
    pred[:2] = 1 - pred[:2]
    fig = predictions_figure(run, pred)
    assert "2 of 30 wrong" in fig.axes[0].get_title()
    plt.close(fig)


def test_config_validation_names_the_field() -> None:
    cases = [
        ({"display_step": 0}, "display_step 0: must be a positive integer"),
        ({"learning_rate": float("nan")}, "learning_rate nan: must be a finite number > 0"),
        ({"learning_rate": "0.1"}, "learning_rate '0.1': must be a finite number > 0"),
        ({"seed": -1}, "seed -1: must be an integer >= 0"),
        ({"seed": 1.5}, "seed 1.5: must be an integer >= 0"),
        ({"steps": True}, "steps True: must be a positive integer"),
        ({"batch_size": 0}, "batch_size 0: must be a positive integer"),
        ({"dtype": "float16"}, "dtype 'float16': must be float32 or float64"),
        ({"dataset": "cifar"}, "dataset 'cifar': unknown"),
        ({"data_dir": "."}, "data_dir '.': applies to --dataset mnist only"),
        ({"epochs": 0}, "epochs 0: must be a positive integer"),
    ]
    for opts, expect in cases:
        with pytest.raises(ConfigError, match=re.escape(expect)):
            make_config("mlp", **opts)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['lr'\]"):
        make_config("mlp", lr=0.1)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_sigterm_ends_the_step_like_ctrl_c(name, tmp_path) -> None:
    """SIGTERM (``timeout``, ``kill``, preemption) and SIGHUP (a closed terminal, a dropped SSH
    session) killed the run, losing every step since the last periodic checkpoint."""
    import os
    import signal

    sig = getattr(signal, name, None)
    if sig is None:
        pytest.skip(f"no {name} here")

    def signal_at_10(line: str) -> None:
        if line.startswith("step: 10,"):
            os.kill(os.getpid(), sig)

    cfg = make_config("mlp", steps=30, display_step=5)
    before = signal.getsignal(sig)
    stopped = _interrupted(cfg, tmp_path / "r", log=signal_at_10)
    assert (stopped.step, stopped.checkpoint_step, stopped.signum) == (10, 10, sig)
    assert f"stopped by {name} after step 10" in str(stopped)
    assert signal.getsignal(sig) is before  # restored
    resumed = train(cfg, out=tmp_path / "r", resume=True, **QUIET)
    assert resumed.history == train(cfg, **QUIET).history


def test_a_failed_rename_keeps_both_names(tmp_path) -> None:
    """A failed rename names the temporary file and the target; only a failed write (which
    names none, or the temporary file) gets the target's name (review finding: the rename's
    message read 'Is a directory: DIR -> DIR')."""
    from nnref.train.loop import _write_atomically

    target = tmp_path / "d"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as e:
        _write_atomically(target, lambda f: f.write(b"x"))
    assert e.value.filename2 == str(target)
    assert e.value.filename != str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # the temporary file removed


def test_a_file_system_without_flock_on_directories_runs_unlocked(tmp_path, monkeypatch) -> None:
    """NFS emulates flock with byte-range locks that need a file open for writing (EBADF on a
    directory): the run goes ahead without the lock instead of failing before step 1."""
    import errno

    fcntl = pytest.importorskip("fcntl")

    def no_flock(fd, op):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    result = train(make_config("sigmoid-mse", steps=2), out=tmp_path / "run", **QUIET)
    assert result.steps_run == 2
    assert (tmp_path / "run" / "checkpoint.npz").is_file()


def test_a_failed_write_names_the_file(tmp_path, monkeypatch) -> None:
    """A full disk fails the write into the open file, whose OSError names no file: the
    message said "[Errno 28] No space left on device" and not which output."""
    from nnref.train import loop

    def disk_full(f, **arrays):
        f.write(b"PK")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop.np, "savez", disk_full)
    out = tmp_path / "run"
    with pytest.raises(OSError, match=re.escape(f"No space left on device: '{out}")) as e:
        train(make_config("sigmoid-mse", steps=2), out=out, **QUIET)
    assert e.value.filename == str(out / "checkpoint.npz")
    assert list(out.iterdir()) == []
