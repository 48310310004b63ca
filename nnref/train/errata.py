"""``nnref errata``: each lesson's bug run beside the fixed recipe, same seed, same batches.

- 000 MLP: the forward pass skips the second hidden layer and the output layer applies softmax,
  after which ``sparse_softmax_cross_entropy_with_logits`` applies it again;
- 001 CNN: the loss is ``reduce_mean(-reduce_sum(y log clip(p, 1e-9, 1)))``: a mean of a scalar,
  i.e. a sum over the batch (and a clipped log of probabilities instead of logits);
- 003 digits: ``tf.optimizers.Adam`` is created inside the loop, so every step starts with zero
  moments and ``t = 1``: each update is ``alpha * m / (sqrt(v) + eps)`` with ``m = 0.1 g``,
  ``v = 0.001 g^2`` and the bias correction ``alpha = lr * sqrt(0.001) / 0.1``, i.e.
  ``lr * g / (|g| + eps / sqrt(0.001))``, about ``lr * sign(g)``;
- 003 NumPy network: every weight starts at 1, so the hidden units stay identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnref.train import model as m
from nnref.train.loop import Run, build_run, evaluate, make_config, train_step
from nnref.train.recipes import sigmoid_mse_ones


@dataclass(frozen=True)
class Erratum:
    name: str
    recipe: str
    bug: str
    effect: str
    apply: Callable[[Run], None]


def _mlp_bug(run: Run) -> None:
    k = run.data.num_classes
    run.layers = [m.dense(128), m.relu(), m.dense(k), m.softmax()]  # fc2 skipped, softmax added
    rng = np.random.default_rng(np.random.SeedSequence([run.cfg.seed, 0x1A17]))
    run.params = m.init_params(run.layers, run.x_train.shape[1:], rng, run.cfg.dtype)
    run.opt_state = run.optimizer.init(run.params)


def _cnn_bug(run: Run) -> None:
    run.layers = [*run.layers, m.softmax()]

    def summed_clipped(out: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        p = out[np.arange(len(y)), y]
        q = np.clip(p, out.dtype.type(1e-9), out.dtype.type(1))
        d = np.zeros_like(out)
        d[np.arange(len(y)), y] = np.where(p >= 1e-9, -1 / q, 0)  # clip passes the gradient inside
        return float(-np.log(q).sum()), d

    run.loss_fn = summed_clipped


def _adam_reset(run: Run) -> None:
    run.reset_optimizer = True


def _ones_init(run: Run) -> None:
    run.layers = sigmoid_mse_ones(run.data.num_classes)
    rng = np.random.default_rng(np.random.SeedSequence([run.cfg.seed, 0x1A17]))
    run.params = m.init_params(run.layers, run.x_train.shape[1:], rng, run.cfg.dtype)
    run.opt_state = run.optimizer.init(run.params)


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        "mlp-skips-fc2-double-softmax",
        "mlp",
        "000: call() skips fc2 and the output layer applies softmax; the loss applies softmax again",
        "squashed logits in [0, 1]: the loss cannot go below ~1.46 and gradients shrink",
        _mlp_bug,
    ),
    Erratum(
        "cnn-summed-loss",
        "cnn",
        "001: reduce_mean of a reduce_sum: the batch loss is summed (x128), from clipped probabilities",
        "the reported loss is ~batch-size times larger; Adam rescales the gradient, so training "
        "barely changes",
        _cnn_bug,
    ),
    Erratum(
        "adam-recreated-each-step",
        "digits-kfold",
        "003: tf.optimizers.Adam(...) is created inside the loop: moments reset every step",
        "every step is ~lr * sign(g) (sign descent at lr 0.02): noisy, no momentum",
        _adam_reset,
    ),
    Erratum(
        "ones-initialisation",
        "sigmoid-mse",
        "003: W1 and W2 start as all ones: the hidden units stay identical (no biases)",
        "a network of one effective hidden unit and no bias cannot separate the two classes",
        _ones_init,
    ),
)


def run_errata(
    steps: int | None = None, seed: int = 0, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Run every erratum and its fixed recipe; return one row per erratum.

    ``steps`` (default: each recipe's) and ``seed`` are validated as ``nnref train``'s options
    (:class:`~nnref.train.loop.ConfigError`).
    """
    rows = []
    for e in ERRATA:
        cfg = make_config(e.recipe, seed=seed, steps=steps)
        fixed, buggy = build_run(cfg), build_run(cfg)
        e.apply(buggy)
        losses: dict[str, float] = {}
        for name, run in (("fixed", fixed), ("bug", buggy)):
            loss = float("nan")
            while run.step < cfg.steps:
                loss, _ = train_step(run)
            losses[name] = loss
        row = {
            "erratum": e.name,
            "recipe": e.recipe,
            "steps": cfg.steps,
            "dataset": cfg.dataset,
            "fixed_loss": losses["fixed"],
            "bug_loss": losses["bug"],
            "fixed_test_accuracy": evaluate(fixed, fixed.x_test, fixed.y_test),
            "bug_test_accuracy": evaluate(buggy, buggy.x_test, buggy.y_test),
            "bug": e.bug,
            "effect": e.effect,
        }
        rows.append(row)
        log(format_row(row))
    return rows


def format_row(row: dict[str, Any]) -> str:
    """The text report of one erratum; losses to 3 significant digits (``1.11e-06``: a fixed
    number of decimals would print tiny losses as ``0.0000``), accuracies to 4 decimals."""
    return (
        f"{row['erratum']} ({row['recipe']}, {row['steps']} steps on {row['dataset']})\n"
        f"  bug:    {row['bug']}\n  effect: {row['effect']}\n"
        f"  last batch loss  fixed {row['fixed_loss']:.3g}  bug {row['bug_loss']:.3g}\n"
        f"  test accuracy    fixed {row['fixed_test_accuracy']:.4f}  "
        f"bug {row['bug_test_accuracy']:.4f}"
    )


__all__ = ["ERRATA", "Erratum", "format_row", "run_errata"]
