"""Every float argument of every registered op, made bad one way at a time: the error names the
op and that argument. Table-driven over ``nnref.cases.TABLES`` so a new op is covered at once
(the mutation run showed single-op tests left argument names and checks unpinned)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import nnref
from nnref.cases import TABLES, differentiable, reference, seed_for

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)
#: Elementwise ops take any rank, scalars included, as tf.nn.relu / tf.math.sigmoid do.
ELEMENTWISE = {"relu", "sigmoid"}


REF = reference()
OPS = differentiable()


def _first_case(op: str, dtype: np.dtype = F64) -> tuple[tuple[Any, ...], dict[str, Any]]:
    case = TABLES[op].cases[0]
    args, static = case.make(np.random.default_rng(seed_for(op, case.id)), dtype)
    return tuple(args), dict(static)


def _float_positions(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]


def _bad_variants(op: str, args: tuple[Any, ...], i: int) -> list[tuple[str, Any, type[Exception]]]:
    a = np.asarray(args[i])
    out: list[tuple[str, Any, type[Exception]]] = [
        ("int64", a.astype(np.int64), TypeError),
        ("bool", a > 0, TypeError),
        ("empty", a[:0], ValueError),
        ("ragged", [[0.5], [0.5, 0.5]], ValueError),  # NumPy's own error named neither
    ]
    if op not in ELEMENTWISE:
        out.append(("scalar", a.reshape(-1)[0], ValueError))
    if len(_float_positions(args)) > 1:
        out.append(("float32", a.astype(np.float32), TypeError))
    return out


BAD = [
    pytest.param(op, i, kind, id=f"{op}-{TABLES[op].names[i]}-{kind}")
    for op in OPS
    for i in _float_positions(_first_case(op)[0])
    for kind, _, _ in _bad_variants(op, _first_case(op)[0], i)
]


@pytest.mark.parametrize(("op", "i", "kind"), BAD)
def test_bad_argument_error_names_op_and_argument(op: str, i: int, kind: str) -> None:
    args, static = _first_case(op)
    name = TABLES[op].names[i]
    [(_, bad, exc)] = [v for v in _bad_variants(op, args, i) if v[0] == kind]
    with pytest.raises(exc) as err:
        REF[op + "_fwd"](*args[:i], bad, *args[i + 1 :], **static)
    msg = str(err.value)
    assert msg.startswith(f"{op}: "), msg
    assert re.search(rf"'{re.escape(name)}'", msg), msg


def test_ragged_integer_arguments_name_the_op_and_argument() -> None:
    ragged = [[0], [1, 2]]
    with pytest.raises(ValueError, match=r"^one_hot: argument 'indices' must be a rectangular"):
        nnref.one_hot(ragged, 3)
    with pytest.raises(
        ValueError,
        match=r"^sparse_softmax_cross_entropy_with_logits: argument 'labels' must be a rectangular",
    ):
        nnref.sparse_softmax_cross_entropy_with_logits(ragged, np.zeros((2, 3)))


@pytest.mark.parametrize("op", OPS)
def test_bad_cotangent_error_names_op_and_dy(op: str) -> None:
    args, static = _first_case(op)
    y, res = REF[op + "_fwd"](*args, **static)
    y = np.asarray(y)
    wrong_shape = np.zeros((*y.shape, 2))
    with pytest.raises(ValueError, match=rf"^{op}: argument 'dy' must have the output's shape"):
        REF[op + "_bwd"](res, wrong_shape)
    with pytest.raises(TypeError, match=rf"^{op}: argument 'dy' must have the output's dtype"):
        REF[op + "_bwd"](res, np.zeros(y.shape, np.float32))


@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_ops_take_scalars(op: str) -> None:
    x = np.array([-0.5, 0.0, 2.0])
    y, _ = REF[op + "_fwd"](x)
    for k in range(3):
        ys, res = REF[op + "_fwd"](x[k])
        assert np.shape(ys) == ()
        assert ys == y[k]
        [g] = REF[op + "_bwd"](res, 1.0)
        assert np.shape(g) == ()


def _output_rank(op: str) -> int:
    args, static = _first_case(op)
    return np.ndim(REF[op + "_fwd"](*args, **static)[0])


#: Ops whose first case has a scalar output (the reduced losses): a scalar cotangent fits them.
SCALAR_OUT = [op for op in OPS if _output_rank(op) == 0]


@pytest.mark.parametrize("op", SCALAR_OUT)
def test_scalar_cotangent_is_never_cast_silently(op: str) -> None:
    """np.float64 is a subclass of Python float, so a float64 scalar once took a float32 op's
    dtype (1e300 becoming inf). NumPy scalars are judged by their dtype, as 0-d arrays, and a
    Python float that overflows the dtype is refused; one that fits still works."""
    args, static = _first_case(op, F32)
    _, res = REF[op + "_fwd"](*args, **static)
    bwd = REF[op + "_bwd"]
    for dy in (np.float64(1e300), np.float64(1.0), np.asarray(1.0)):
        with pytest.raises(
            TypeError,
            match=rf"^{op}: argument 'dy' must have the output's dtype float32, got float64$",
        ):
            bwd(res, dy)
    for big in (1e300, -1e39):
        with pytest.raises(
            ValueError,
            match=rf"^{op}: argument 'dy' {re.escape(repr(big))} overflows the output's dtype",
        ):
            bwd(res, big)
    want = bwd(res, np.float32(2.0))
    for dy in (2.0, np.asarray(2.0, np.float32)):
        for g, w in zip(bwd(res, dy), want, strict=True):
            if w is not None:
                assert g.dtype == F32
                assert g.tobytes() == w.tobytes()


def test_backward_refuses_residuals_of_another_op() -> None:
    """softmax_bwd fed log_softmax_fwd's residuals (same fields) computed a wrong gradient
    without a word, and dense_bwd fed conv residuals raised a bare AttributeError (an
    adversarial probe): every backward names the residuals it takes."""
    x = np.array([[0.5, -1.0, 2.0]])
    dy = np.ones_like(x)
    img = np.ones((1, 3, 3, 1))
    residuals = {
        "relu": nnref.relu_fwd(x)[1],
        "sigmoid": nnref.sigmoid_fwd(x)[1],
        "softmax": nnref.softmax_fwd(x)[1],
        "log_softmax": nnref.log_softmax_fwd(x)[1],
        "dense": nnref.dense_fwd(x, np.ones((3, 2)), np.zeros(2))[1],
        "bias_add": nnref.bias_add_fwd(x, np.zeros(3))[1],
        "conv2d": nnref.conv2d_fwd(img, np.ones((1, 1, 1, 1)))[1],
        "max_pool2d": nnref.max_pool2d_fwd(img, ksize=1, strides=1)[1],
        "mean_squared_error": nnref.mean_squared_error_fwd(x, x)[1],
        "sparse_softmax_cross_entropy_with_logits": (
            nnref.sparse_softmax_cross_entropy_with_logits_fwd(np.array([1]), x)[1]
        ),
    }
    backwards = {
        "relu": nnref.relu_bwd,
        "sigmoid": nnref.sigmoid_bwd,
        "softmax": nnref.softmax_bwd,
        "log_softmax": nnref.log_softmax_bwd,
        "dense": nnref.dense_bwd,
        "bias_add": nnref.bias_add_bwd,
        "conv2d": nnref.conv2d_bwd,
        "max_pool2d": nnref.max_pool2d_bwd,
        "mean_squared_error": nnref.mean_squared_error_bwd,
        "sparse_softmax_cross_entropy_with_logits": (
            nnref.sparse_softmax_cross_entropy_with_logits_bwd
        ),
    }
    for op, bwd in backwards.items():
        for other, res in residuals.items():
            if other == op:
                continue
            with pytest.raises(
                TypeError, match=rf"^{op}_bwd: 'res' must be the residuals {op}_fwd"
            ):
                bwd(res, dy)
        with pytest.raises(TypeError, match=r"got tuple$"):
            bwd((x,), dy)
    for bwd, name in (
        (nnref.dense_bwd_params, "dense_bwd_params"),
        (nnref.conv2d_bwd_filter, "conv2d_bwd_filter"),
    ):
        with pytest.raises(TypeError, match=rf"^{name}: 'res' must be the residuals"):
            bwd(residuals["relu"], dy)
