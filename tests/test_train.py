"""Training driver: determinism, resume, sanity checks, recipe accuracy, TF parity, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nnref.cli import main
from nnref.data.datasets import Dataset, load_digits
from nnref.train.loop import (
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
    with pytest.raises(ValueError, match="written by another configuration"):
        load_checkpoint(other, tmp_path / "c.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a valid nnref checkpoint"):
        load_checkpoint(run, tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(make_config("mlp", steps=5), out=tmp_path / "none", resume=True, **QUIET)


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


@pytest.mark.parametrize(
    ("recipe", "floor"),
    [
        ("mlp", 0.95),
        ("naive-dense", 0.95),
        ("digits-kfold", 0.95),
        ("three-layer", 0.95),
        ("cnn", 0.97),
    ],
)
def test_recipe_reaches_its_accuracy_on_digits(recipe, floor) -> None:
    assert train(make_config(recipe), **QUIET).test_accuracy >= floor


def test_sigmoid_mse_learns_its_toy_set() -> None:
    assert train(make_config("sigmoid-mse"), **QUIET).test_accuracy >= 0.9


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


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="unknown recipe 'rnn'"):
        make_config("rnn")
    with pytest.raises(ValueError, match="not both"):
        make_config("mlp", steps=5, epochs=2)
    assert make_config("digits-kfold", epochs=2).steps == 44
    with pytest.raises(ValueError, match="batch size 5000 exceeds"):
        build_run(make_config("mlp", batch_size=5000))
    with pytest.raises(ValueError, match="needs image data"):
        build_run(make_config("cnn", dataset="toy"))
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_run(make_config("mlp", optimizer="lbfgs"))


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
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["train", "mlp", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    assert "MNIST not found" in capsys.readouterr().err


def test_cli_train_on_mnist_files(tmp_path) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 64),
        x_test=rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 16),
    )
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
