"""conv2d with a bias (``conv2d_fwd(x, w, b)``): the sum plus ``b`` bit for bit on every
algorithm, ``db`` with the same bits on every path and thread count, and verified against finite
differences, ``tf.nn.bias_add`` after ``tf.nn.conv2d``, ``keras.layers.Conv2D(use_bias=True)``,
JAX and PyTorch."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import nnref
from nnref.check import check_vjp
from nnref.check.compare import ORACLE_RTOL, assert_close
from nnref.ops import conv

EXPLICIT = [[0, 0], [2, 0], [0, 1], [0, 0]]
# (x shape, kernel shape, static, algorithms): stride 1 goes by DFT too; C_in = 1 takes the
# transposed im2col; the strided and dilated ones the tap path.
SHAPES = [
    pytest.param((5, 9, 8, 3), (3, 3, 3, 4), {"padding": "SAME"}, id="same-3x3"),
    pytest.param((4, 7, 6, 1), (5, 5, 1, 3), {"padding": "SAME"}, id="same-cin1"),
    pytest.param((3, 7, 8, 2), (2, 3, 2, 3), {"padding": EXPLICIT}, id="explicit"),
    pytest.param((3, 8, 7, 2), (3, 2, 2, 3), {"padding": "VALID", "strides": 2}, id="valid-s2"),
    pytest.param((2, 9, 9, 2), (3, 3, 2, 2), {"padding": "SAME", "dilations": 2}, id="dilated"),
]


def _inputs(rng, xs, ks, dt):
    x = rng.standard_normal(xs).astype(dt)
    x[1] = 0  # a zero image: its windows sum to exactly 0 on every path, so y is exactly b
    w = rng.standard_normal(ks).astype(dt)
    b = rng.standard_normal(ks[3]).astype(dt)
    return x, w, b


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", ["direct", "dft"])
@pytest.mark.parametrize(("xs", "ks", "static"), SHAPES)
def test_bias_is_the_sum_plus_b_bit_for_bit(xs, ks, static, algorithm, dt, rng) -> None:
    x, w, b = _inputs(rng, xs, ks, dt)
    y0, r0 = nnref.conv2d_fwd(x, w, algorithm=algorithm, **static)
    y1, r1 = nnref.conv2d_fwd(x, w, b, algorithm=algorithm, **static)
    assert type(r1) is type(r0)
    assert (r0.with_bias, r1.with_bias) == (False, True)
    np.testing.assert_array_equal(y1, y0 + b)
    np.testing.assert_array_equal(y1[1], np.broadcast_to(b, y1[1].shape))
    np.testing.assert_array_equal(nnref.conv2d(x, w, b, algorithm=algorithm, **static), y1)
    dy = rng.standard_normal(y0.shape).astype(dt)
    g0, g1 = nnref.conv2d_bwd(r0, dy), nnref.conv2d_bwd(r1, dy)
    assert (len(g0), len(g1)) == (2, 3)
    for a, c in zip(g0, g1[:2], strict=True):
        np.testing.assert_array_equal(a, c)
    dw, db = nnref.conv2d_bwd_filter(r1, dy)
    np.testing.assert_array_equal(dw, g1[1])
    np.testing.assert_array_equal(db, g1[2])
    assert (db.dtype, db.shape) == (dt, (ks[3],))
    exact = dy.astype(np.float64).sum(axis=(0, 1, 2))
    assert_close(db.astype(np.float64), exact, rtol=ORACLE_RTOL[np.dtype(dt).name], what="db")


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_db_has_the_same_bits_on_every_path_and_thread_count(dt, rng, monkeypatch) -> None:
    """Direct sums each slab's dy beside the dw GEMM; DFT and the NaN fallback sum it apart, in
    the same order. Small slabs make many of them (several groups, several per group)."""
    monkeypatch.setattr(conv, "_SLAB_BYTES", 1)
    x, w, b = _inputs(rng, (24, 6, 6, 3), (3, 3, 3, 5), dt)
    dy = rng.standard_normal((24, 6, 6, 5)).astype(dt)
    dbs = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        for algorithm in ("direct", "dft"):
            _, res = nnref.conv2d_fwd(x, w, b, padding="SAME", algorithm=algorithm)
            dbs += [nnref.conv2d_bwd(res, dy)[2], nnref.conv2d_bwd_filter(res, dy)[1]]
    assert isinstance(res, conv.Conv2DDFTResiduals)
    bad = dy.copy()
    bad[0, 0, 0, 0] = np.nan  # the DFT backward falls back to direct: db from the same sums
    db_nan = nnref.conv2d_bwd(res, bad)[2]
    np.testing.assert_array_equal(np.isnan(db_nan), np.arange(5) == 0)
    ref = dbs[0]
    for other in dbs[1:]:
        np.testing.assert_array_equal(other, ref)
    np.testing.assert_array_equal(db_nan[1:], ref[1:])
    assert len(conv._slab_groups(res)[0]) == 24


def test_nan_input_falls_back_to_direct_with_its_bias(rng) -> None:
    x, w, b = _inputs(rng, (4, 6, 6, 2), (3, 3, 2, 3), np.float64)
    x[2, 3, 3, 1] = np.nan
    y, res = nnref.conv2d_fwd(x, w, b, padding="SAME", algorithm="dft")
    assert isinstance(res, conv.Conv2DResiduals)
    assert res.with_bias
    np.testing.assert_array_equal(y, nnref.conv2d_fwd(x, w, padding="SAME")[0] + b)
    assert len(nnref.conv2d_bwd(res, np.ones_like(y))) == 3


def test_empty_output_gives_zero_bias_gradient(rng) -> None:
    x, w, b = _inputs(rng, (2, 3, 3, 2), (5, 1, 2, 3), np.float32)
    y, res = nnref.conv2d_fwd(x, w, b)
    assert y.shape == (2, 0, 3, 3)
    dx, dw, db = nnref.conv2d_bwd(res, y)
    assert (db.shape, db.dtype) == ((3,), np.float32)
    assert [a.any() for a in (dx, dw, db)] == [False] * 3


@pytest.mark.parametrize(("xs", "ks", "static"), SHAPES)
def test_bias_vjp_matches_finite_differences(xs, ks, static, rng) -> None:
    x, w, b = _inputs(rng, xs, ks, np.float64)
    for algorithm in ("direct", "dft"):
        check_vjp(
            nnref.conv2d_fwd,
            nnref.conv2d_bwd,
            (x, w, b),
            static={**static, "algorithm": algorithm},
            names=("x", "w", "b"),
        )


def test_finite_differences_reject_a_wrong_bias_gradient(rng) -> None:
    """The checker sees db: a bias gradient off by one dy entry fails."""
    x, w, b = _inputs(rng, (2, 5, 5, 2), (3, 3, 2, 2), np.float64)

    def wrong_bwd(res, dy):
        dx, dw, db = nnref.conv2d_bwd(res, dy)
        return dx, dw, db - dy[0, 0, 0]

    result = check_vjp(
        nnref.conv2d_fwd, wrong_bwd, (x, w, b), static={"padding": "SAME"}, raise_on_failure=False
    )
    assert not result.ok


@pytest.mark.parametrize(
    ("b", "err", "match"),
    [
        (
            np.ones((3, 1)),
            ValueError,
            r"^conv2d: argument 'b' must have rank 1 \(C_out,\), got shape \(3, 1\)",
        ),
        (
            np.ones(4),
            ValueError,
            r"^conv2d: bias 'b' \(4,\) must match the last axis of 'w' \(2, 2, 2, 3\)",
        ),
        (np.ones(3, np.float32), TypeError, r"^conv2d: arguments 'x' float64.* and 'b' float32"),
        (np.ones(3, np.int64), TypeError, r"^conv2d: .*'b'.*int64"),
    ],
    ids=["rank", "length", "dtype-mix", "int"],
)
def test_bad_bias(b, err, match) -> None:
    with pytest.raises(err, match=match):
        nnref.conv2d_fwd(np.ones((1, 4, 4, 2)), np.ones((2, 2, 2, 3)), b)


@pytest.mark.parametrize(
    "leg",
    [
        pytest.param("tf", marks=pytest.mark.tf),
        pytest.param("keras", marks=pytest.mark.tf),
        pytest.param("jax", marks=pytest.mark.jax),
        pytest.param("torch", marks=pytest.mark.torch),
    ],
)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize(("xs", "ks", "static"), SHAPES)
def test_bias_matches_the_framework_legs(xs, ks, static, dt, leg, rng) -> None:
    """``tf.nn.bias_add`` after ``tf.nn.conv2d``, ``keras.layers.Conv2D(use_bias=True)``,
    ``lax.conv_general_dilated`` plus ``b`` and ``F.conv2d(..., bias)``, with a random upstream
    gradient: y, dx, dw and db, on both algorithms."""
    legs = importlib.import_module(f"nnref.oracles.{leg}").LEGS
    x, w, b = _inputs(rng, xs, ks, dt)
    y, _ = nnref.conv2d_fwd(x, w, b, **static)
    dy = rng.standard_normal(y.shape).astype(dt)
    ref_y, ref_g = legs["conv2d"]((x, w, b), static, dy)
    for algorithm in ("direct", "dft"):
        y, res = nnref.conv2d_fwd(x, w, b, algorithm=algorithm, **static)
        for qty, a, r in zip(
            ("y", "dx", "dw", "db"), (y, *nnref.conv2d_bwd(res, dy)), (ref_y, *ref_g), strict=True
        ):
            assert_close(a, r, rtol=ORACLE_RTOL[np.dtype(dt).name], what=f"{leg} {algorithm} {qty}")
