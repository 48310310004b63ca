"""Per-channel add and sum over (rows, C) blocks, tiled to long inner loops (nnref/ops/_channels.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nnref.ops import _channels


@pytest.mark.parametrize(
    ("rows", "c", "k"), [(12544, 32, 16), (196, 64, 4), (1568, 64, 8), (7, 32, 1), (8, 600, 1)]
)
def test_tiling_is_a_power_of_two_dividing_the_rows(rows, c, k) -> None:
    assert _channels._tiling(rows, c) == k


@pytest.mark.parametrize(("rows", "c"), [(12544, 32), (196, 64), (7, 32), (6, 5), (3, 700)])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_add_bias_gives_the_bits_of_the_broadcast_add(rows, c, dt, rng) -> None:
    x = rng.standard_normal((rows, c)).astype(dt)
    b = rng.standard_normal(c).astype(dt)
    want = x + b
    out = np.empty_like(x)
    _channels.add_bias(out, b, x)  # out of place, as bias_add and dense
    np.testing.assert_array_equal(out, want)
    _channels.add_bias(x, b)
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize(("rows", "c"), [(96, 32), (196, 64), (7, 32), (6, 5)])
@pytest.mark.parametrize("first", [True, False])
def test_row_sum_adds_each_lane_in_order_then_the_lanes_in_order(rows, c, first, rng) -> None:
    """The documented order, spelled out: lane j of a tiled row holds rows r with r % k == j // c
    summed in row order; a channel's k lanes are then added in order (so the bits follow the
    shape alone)."""
    g = rng.standard_normal((rows, c)).astype(np.float32)
    k = _channels._tiling(rows, c)
    lanes = [g[j::k].copy() for j in range(k)]
    want = np.zeros(c, np.float32)
    for j in range(k):
        acc = lanes[j][0].copy()
        for row in lanes[j][1:]:
            acc += row
        want = acc if j == 0 else want + acc
    part = rng.standard_normal(c).astype(np.float32)
    start = part.copy()
    _channels.add_row_sum(g, part, first)
    np.testing.assert_array_equal(part, want if first else start + want)
    np.testing.assert_allclose(
        part.astype(np.float64),
        g.astype(np.float64).sum(axis=0) + (0 if first else start),
        rtol=1e-5,
        atol=1e-5,
    )


def test_add_bias_on_a_strided_block_adds_in_place(rng) -> None:
    x = rng.standard_normal((64, 64))
    view = x[:, ::2]
    b = rng.standard_normal(32)
    want = x.copy()
    want[:, ::2] += b
    _channels.add_bias(view, b)
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize(("rows", "c"), [(6, 0), (0, 5), (0, 0)])
def test_empty_blocks_add_nothing_and_sum_to_zeros(rows, c) -> None:
    """A dense layer of 0 units gives a (rows, 0) block (the channel count once divided the
    size), and a (0, 0) block once tiled forever (every power of two divides 0 rows)."""
    x = np.ones((rows, c), np.float32)
    out = np.full_like(x, 7)
    _channels.add_bias(out, np.ones(c, np.float32), x)
    assert out.shape == (rows, c)
    _channels.add_bias(out, np.ones(c, np.float32))
    part = np.full(c, 7, np.float32)
    _channels.add_row_sum(x, part, first=True)
    np.testing.assert_array_equal(part, np.zeros(c, np.float32))


@pytest.mark.parametrize(
    ("blocks", "rows", "c"),
    [
        (8, 392, 64),
        (3, 784, 32),
        (5, 7, 32),
        (4, 9, 1),
        (2, 6, 5),
        (1, 3, 700),
        (6, 1, 1),
        (3, 0, 4),
    ],
)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_block_row_sums_have_the_bits_of_each_block_summed_alone(blocks, rows, c, dt, rng) -> None:
    """conv's db sums a group's slabs in one call; add_row_sum, slab by slab, defines the bits
    (and sums the slab path's slabs). Signed zeros and non-finite values included."""
    g = rng.standard_normal((blocks, rows, c)) * 10.0 ** rng.uniform(-3, 3, (blocks, rows, c))
    g = g.astype(dt)
    g[:, ::3] = -0.0
    if g.size > 4:
        g.flat[1], g.flat[-2] = np.inf, np.nan
    got = _channels.block_row_sums(g)
    for b in range(blocks):
        want = np.empty(c, dt)
        _channels.add_row_sum(np.ascontiguousarray(g[b]), want, first=True)
        assert got[b].tobytes() == want.tobytes()
