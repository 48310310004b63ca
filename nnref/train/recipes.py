"""The five source lessons as recipes: what each lesson meant, with its hyperparameters.

Step budgets are the lessons' numbers of optimizer steps (a lesson's "10 epochs of MNIST at batch
128" is 4680 steps), so a recipe trains about as long on digits as the lesson did on MNIST; the
one exception is ``sigmoid-mse``, 2000 steps for its lesson's 200 (see its notes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nnref.train import model as m


@dataclass(frozen=True)
class Recipe:
    name: str
    lesson: str
    build: Callable[[int], list[m.Layer]]  # num_classes -> layers
    image_input: bool  # NHWC input (cnn) or flattened features
    loss: str  # a head of nnref.train.model.loss_fwd
    optimizer: str
    opt_kwargs: dict[str, Any]
    batching: str  # stream | kfold | sequential | full
    batch_size: int
    steps: int
    display_step: int
    dataset: str = "digits"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _mlp(k: int) -> list[m.Layer]:
    return [m.dense(128), m.relu(), m.dense(256), m.relu(), m.dense(k)]


def _cnn(k: int) -> list[m.Layer]:
    rn = {"kernel": "random_normal"}  # tf.initializers.RandomNormal(): stddev 0.05
    return [
        m.conv2d(32, 5, padding="SAME", **rn),
        m.relu(),
        m.max_pool2d(2, padding="SAME"),
        m.conv2d(64, 5, padding="SAME", **rn),
        m.relu(),
        m.max_pool2d(2, padding="SAME"),
        m.flatten(),
        m.dense(1024, **rn),
        m.relu(),
        m.dense(k, **rn),
    ]


def _naive_dense(k: int) -> list[m.Layer]:
    u = {"kernel": "uniform", "minval": 0.0, "maxval": 0.1}  # tf.random.uniform(0, 1e-1)
    return [m.dense(512, **u), m.relu(), m.dense(k, **u), m.softmax()]


def _digits_kfold(k: int) -> list[m.Layer]:
    n1 = {
        "kernel": "random_normal",
        "stddev": 1.0,
        "bias": "random_normal",
        "bias_kw": {"stddev": 1.0},
    }
    return [m.dense(30, **n1), m.relu(), m.dense(k, **n1)]


def _sigmoid_mse(k: int, kernel: str = "glorot_uniform") -> list[m.Layer]:
    out = 1 if k == 2 else k  # the lesson's single sigmoid output for its binary set
    return [
        m.dense(3, kernel=kernel, use_bias=False),
        m.sigmoid(),
        m.dense(out, kernel=kernel, use_bias=False),
        m.sigmoid(),
    ]


def sigmoid_mse_ones(k: int) -> list[m.Layer]:
    """The lesson's network as written: all-ones weights (see ``nnref errata``)."""
    return _sigmoid_mse(k, kernel="ones")


def _three_layer(k: int) -> list[m.Layer]:
    return [m.dense(128), m.relu(), m.dense(64), m.relu(), m.dense(k)]


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "mlp",
            "000: MLP on MNIST (TF2 low-level), 784-128-256-10",
            _mlp,
            False,
            "sparse_xent",
            "sgd",
            {"learning_rate": 0.1},
            "stream",
            256,
            2000,
            100,
            notes="Both hidden layers used and softmax applied once (the lesson skips fc2 and "
            "applies softmax twice). The lesson's printed lr 0.001 is the translation's; the "
            "original notebook trains this SGD net with 0.1, which is what reaches its accuracy.",
        ),
        Recipe(
            "cnn",
            "001: CNN on MNIST, conv5x5x32-pool-conv5x5x64-pool-fc1024",
            _cnn,
            True,
            "sparse_xent",
            "adam",
            {"learning_rate": 0.001},
            "stream",
            128,
            200,
            10,
            notes="Mean cross-entropy from logits (the lesson sums clipped -log softmax over the "
            "batch). All eight weights and biases are trained: the lesson's "
            "`weights.values() + biases.values()` is a TypeError on Python 3 (dict views do not "
            "add).",
        ),
        Recipe(
            "naive-dense",
            "002: NaiveDense vs Keras, 784-512-10",
            _naive_dense,
            False,
            "scce_probs",
            "rmsprop",
            {"learning_rate": 0.001},
            "sequential",
            128,
            2345,
            100,
            notes="The NaiveDense model (uniform(0, 0.1) weights, softmax output, Keras' probability "
            "SCCE with its 1e-7 clip) trained as the lesson's Keras twin: RMSprop, 5 MNIST epochs at "
            "batch 128 = 2345 steps; sequential batches without shuffling, as its BatchGenerator. "
            "The hand-written loop's SGD 1e-3: --optimizer sgd --lr 0.001 --steps 4680.",
        ),
        Recipe(
            "digits-kfold",
            "003: NumPy/TF network on digits, 64-30-10, Adam 0.02, KFold mini-batches",
            _digits_kfold,
            False,
            "onehot_xent",
            "adam",
            {"learning_rate": 0.02},
            "kfold",
            64,
            11000,
            2200,  # every 100 epochs of 22 batches, as the lesson prints
            notes="One Adam for the whole run (the lesson re-creates it every step, resetting its "
            "moments); 500 epochs of KFold batches = 11000 steps; N(0, 1) weights and biases. "
            "Inputs are digits scaled to [0, 1], as in every recipe; the lesson feeds the raw 0-16 "
            "pixel values.",
        ),
        Recipe(
            "sigmoid-mse",
            "003: NumPy 2-3-1 sigmoid network with MSE (no biases)",
            _sigmoid_mse,
            False,
            "mse",
            "sgd",
            {"learning_rate": 0.1},
            "full",
            0,
            2000,
            100,  # every 100 epochs (full-batch steps), as the lesson prints
            dataset="toy",
            notes="Full-batch gradient descent at the TF version's lr 0.1. The lesson initialises every "
            "weight to 1, which keeps the three hidden units identical and, without biases, cannot "
            "separate two classes (see nnref errata); nnref uses Glorot-uniform weights and 2000 "
            "steps. A 3-unit sigmoid/MSE net is not a digits classifier (its digits score: README).",
        ),
        Recipe(
            "three-layer",
            "004: TF1 three-layer net, 784-128-64-10 Glorot, Adam",
            _three_layer,
            False,
            "onehot_xent",
            "adam",
            # tf.train.AdamOptimizer() defaults: epsilon 1e-8, not Keras' 1e-7.
            {"learning_rate": 0.001, "epsilon": 1e-8},
            "stream",
            64,
            1000,
            100,
        ),
    ]
}
