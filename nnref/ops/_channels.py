"""Per-channel vectors added to, and summed from, ``(rows, C)`` blocks of NHWC data.

NumPy runs a broadcast add or an axis-0 sum of a C-contiguous ``(rows, C)`` block as one inner
loop of ``C`` elements per row, and at few channels the per-row overhead dominates: conv1's
12544 x 32 float32 slab took 101 us for the bias add and 212 us for its sum. Viewed as
``(rows / k, k C)`` with the vector tiled ``k`` times, the inner loops are ``k`` times longer:
60 us and 41 us. The add gives the same bits (element by element); the sum adds each tiled lane's
rows in order, then the ``k`` lanes of a channel in order, fixed by the shape alone.
"""

from __future__ import annotations

import numpy as np

#: Elements per tiled row at most.
_TILE = 512


def _tiling(rows: int, c: int) -> int:
    """Rows per tiled row: the largest power of two dividing ``rows`` with at most ``_TILE``
    elements in the tiled row (1 when ``c`` alone reaches it, or is 0: no row ever fills)."""
    if c == 0:
        return 1
    k = 1
    while 2 * k * c <= _TILE and rows % (2 * k) == 0:
        k *= 2
    return k


def add_bias(out: np.ndarray, bias: np.ndarray, x: np.ndarray | None = None) -> None:
    """``out = x + bias`` over the last axis (``x`` omitted: ``out += bias``, in place); tiled
    when both blocks are C-contiguous, so that the tiled shapes are views of them."""
    x = out if x is None else x
    if out.size == 0:  # no rows, or no channels (a dense layer of 0 units): nothing to add
        return
    if not (out.flags.c_contiguous and x.flags.c_contiguous):
        np.add(x, bias, out=out)
        return
    c = bias.shape[0]
    rows = out.size // c
    k = _tiling(rows, c)
    shape = (rows // k, k * c)
    if k > 1:  # the bias k times in a row (np.tile costs ~8 us in Python for this)
        tiled = np.empty((k, c), bias.dtype)
        tiled[...] = bias
        bias = tiled.reshape(-1)
    np.add(x.reshape(shape), bias, out=out.reshape(shape))


def add_row_sum(g: np.ndarray, part: np.ndarray, first: bool) -> None:
    """The rows of a C-contiguous ``(rows, C)`` block summed into ``part`` (``first``: written,
    else added onto it)."""
    s = block_row_sums(g[None])[0]
    if first:
        part[...] = s
    else:
        part += s


def block_row_sums(g: np.ndarray) -> np.ndarray:
    """``(blocks, C)``: each ``(rows, C)`` block of the ``(blocks, rows, C)`` array ``g`` summed
    over its rows in the tiled order (module docstring), in two NumPy calls for all the blocks.
    A block's sum has the bits of that block summed alone (:func:`add_row_sum`, one block): NumPy
    adds along the reduced axis in index order whatever the leading axis (tests/test_channels.py
    checks the bits, signed zeros and non-finite values included)."""
    n, rows, c = g.shape
    k = _tiling(rows, c)
    s = np.add.reduce(g.reshape(n, rows // k, k * c), axis=1)
    if k > 1:
        s = np.add.reduce(s.reshape(n, k, c), axis=1)
    return s
