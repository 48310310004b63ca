"""The case tables: one per op, shared by ``nnref verify``, ``nnref conform`` and the tests.

Each :class:`OpTable` lists its op's cases as data (how the inputs are drawn, the hyperparameters,
what each case exercises, which semantic pins it decides, whether finite differences apply and
whether TF refuses the input). nnref's expected values on every case are checked against
TF / Keras / scikit-learn in nnref's own tests, so a runner that compares another implementation
with nnref on these cases inherits that verification.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from nnref.cases import activations, conv, dense, losses, metrics, optim, pool
from nnref.cases._make import Args, Maker
from nnref.cases._table import Case, Kind, OpTable

DTYPES: tuple[np.dtype, ...] = (np.dtype(np.float64), np.dtype(np.float32))

TABLES: dict[str, OpTable] = {
    t.op: t
    for t in (
        dense.DENSE,
        dense.BIAS_ADD,
        conv.CONV2D,
        pool.MAX_POOL2D,
        activations.RELU,
        activations.SIGMOID,
        activations.SOFTMAX,
        activations.LOG_SOFTMAX,
        losses.SPARSE_XENT,
        losses.DENSE_XENT,
        losses.SCCE,
        losses.CCE,
        losses.MSE,
        metrics.ARGMAX,
        metrics.ACCURACY,
        metrics.ONE_HOT,
        metrics.KFOLD_SIZES,
        metrics.KFOLD_BATCHES,
        optim.SGD,
        optim.ADAM,
        optim.RMSPROP,
    )
}

#: Every semantic pin: a choice calculus allows but TF/Keras fixes, and which cases decide it.
PINS: dict[str, str] = {
    **dense.PINS,
    **activations.PINS,
    **conv.PINS,
    **pool.PINS,
    **losses.PINS,
    **metrics.PINS,
    **optim.PINS,
}


def seed_for(*parts: object) -> int:
    """A deterministic per-case seed from a hash of its name (JAX seeds tests this way)."""
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def differentiable() -> list[str]:
    """The ops with a VJP (``NAME_fwd`` / ``NAME_bwd``)."""
    return [op for op, t in TABLES.items() if t.kind == "vjp"]


def make_case(
    op: str, case: str, dtype: Any, *salt: object
) -> tuple[tuple[Any, ...], dict[str, Any], np.random.Generator]:
    """Inputs of one case, seeded from its name and ``salt`` (a leg name, a user's seed); the
    generator is returned, advanced past the inputs, for cotangents."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed_for(op, case, dt.name, *salt))
    args, static = TABLES[op].case(case).make(rng, dt)
    return args, static, rng


__all__ = [
    "DTYPES",
    "PINS",
    "TABLES",
    "Args",
    "Case",
    "Kind",
    "Maker",
    "OpTable",
    "differentiable",
    "make_case",
    "reference",
    "seed_for",
]


def reference() -> dict[str, Any]:
    """nnref's own implementation of every op, by the names the tables use (``NAME_fwd``,
    ``NAME_bwd`` and ``NAME`` for differentiable ops; the function or factory otherwise)."""
    from nnref import metrics, ops
    from nnref import optim as nnref_optim
    from nnref.data import batching, onehot

    ref: dict[str, Any] = {}
    for op in differentiable():
        for suffix in ("_fwd", "_bwd", ""):
            ref[op + suffix] = getattr(ops, op + suffix)
    ref.update(
        argmax=metrics.argmax,
        accuracy=metrics.accuracy,
        one_hot=onehot.one_hot,
        kfold_sizes=batching.kfold_sizes,
        kfold_batches=batching.kfold_batches,
        sgd=nnref_optim.sgd,
        adam=nnref_optim.adam,
        rmsprop=nnref_optim.rmsprop,
    )
    return ref
