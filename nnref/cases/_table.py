"""What a case table holds: cases as data, each naming what it exercises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nnref.cases._make import Maker

#: ``vjp``: differentiable (``NAME_fwd``/``NAME_bwd``/``NAME``); ``forward``: a function whose
#: value is checked (metrics, one-hot, fold sizes); ``batches``: a partition of sample indices
#: drawn from a generator; ``optimizer``: a factory whose ``init``/``update`` trajectory is checked.
Kind = Literal["vjp", "forward", "batches", "optimizer"]


@dataclass(frozen=True)
class Case:
    """One case: how its inputs are made and what it exercises.

    ``make(rng, dtype) -> (args, static)`` draws the positional inputs and the keyword
    hyperparameters. ``pins`` name the semantic choices the case decides (keys of
    :data:`nnref.cases.PINS`): the conventions an implementation can get wrong while still being
    a correct derivative of itself.
    """

    id: str
    make: Maker
    what: str
    pins: tuple[str, ...] = ()
    #: Finite differences confirm the VJP here (False at kinks, ties, NaN, or where TF's VJP is
    #: deliberately not the derivative; ``why_no_fd`` says which).
    fd: bool = True
    why_no_fd: str = ""
    #: TF refuses these inputs (raises); an implementation must raise too.
    raises: bool = False


@dataclass(frozen=True)
class OpTable:
    """Every case of one op, with its contract."""

    op: str
    kind: Kind
    #: Names of the positional inputs, in order (gradients are named ``d<name>``).
    names: tuple[str, ...]
    cases: tuple[Case, ...]
    #: The TF / Keras / scikit-learn counterparts the expected values are verified against.
    counterpart: str
    #: The keyword hyperparameters an implementation must accept (documentation and repro).
    hyper: tuple[str, ...] = field(default=())
    #: False where no float dtype is involved (fold sizes, batches): run once, dtype "-".
    dtyped: bool = True

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(f"{self.op} has no case {case_id!r}; cases: {[c.id for c in self.cases]}")
