"""Every float argument of every registered op, made bad one way at a time: the error names the
op and that argument. Table-driven over ``nnref.verify.SPECS`` so a new op is covered at once
(the mutation run showed single-op tests left argument names and checks unpinned)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from nnref.verify import SPECS, seed_for

F64 = np.dtype(np.float64)
#: Elementwise ops take any rank, scalars included, as tf.nn.relu / tf.math.sigmoid do.
ELEMENTWISE = {"relu", "sigmoid"}


def _first_case(op: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    spec = SPECS[op]
    case = next(iter(spec.cases))
    args, static = spec.cases[case](np.random.default_rng(seed_for(op, case)), F64)
    return tuple(args), dict(static)


def _float_positions(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]


def _bad_variants(op: str, args: tuple[Any, ...], i: int) -> list[tuple[str, Any, type[Exception]]]:
    a = np.asarray(args[i])
    out: list[tuple[str, Any, type[Exception]]] = [
        ("int64", a.astype(np.int64), TypeError),
        ("bool", a > 0, TypeError),
        ("empty", a[:0], ValueError),
    ]
    if op not in ELEMENTWISE:
        out.append(("scalar", a.reshape(-1)[0], ValueError))
    if len(_float_positions(args)) > 1:
        out.append(("float32", a.astype(np.float32), TypeError))
    return out


BAD = [
    pytest.param(op, i, kind, id=f"{op}-{SPECS[op].names[i]}-{kind}")
    for op in SPECS
    for i in _float_positions(_first_case(op)[0])
    for kind, _, _ in _bad_variants(op, _first_case(op)[0], i)
]


@pytest.mark.parametrize(("op", "i", "kind"), BAD)
def test_bad_argument_error_names_op_and_argument(op: str, i: int, kind: str) -> None:
    args, static = _first_case(op)
    name = SPECS[op].names[i]
    [(_, bad, exc)] = [v for v in _bad_variants(op, args, i) if v[0] == kind]
    with pytest.raises(exc) as err:
        SPECS[op].fwd(*args[:i], bad, *args[i + 1 :], **static)
    msg = str(err.value)
    assert msg.startswith(f"{op}: "), msg
    assert re.search(rf"'{re.escape(name)}'", msg), msg


@pytest.mark.parametrize("op", list(SPECS))
def test_bad_cotangent_error_names_op_and_dy(op: str) -> None:
    args, static = _first_case(op)
    y, res = SPECS[op].fwd(*args, **static)
    y = np.asarray(y)
    wrong_shape = np.zeros((*y.shape, 2))
    with pytest.raises(ValueError, match=rf"^{op}: argument 'dy' must have the output's shape"):
        SPECS[op].bwd(res, wrong_shape)
    with pytest.raises(TypeError, match=rf"^{op}: argument 'dy' must have the output's dtype"):
        SPECS[op].bwd(res, np.zeros(y.shape, np.float32))


@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_ops_take_scalars(op: str) -> None:
    x = np.array([-0.5, 0.0, 2.0])
    y, _ = SPECS[op].fwd(x)
    for k in range(3):
        ys, res = SPECS[op].fwd(x[k])
        assert np.shape(ys) == ()
        assert ys == y[k]
        [g] = SPECS[op].bwd(res, 1.0)
        assert np.shape(g) == ()
