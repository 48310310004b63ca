"""Padding and window arithmetic shared by conv2d and max_pool2d (TF's formulas).

With ``eff_k = (k - 1) * d + 1``:

- ``SAME``: ``out = ceil(n / s)``, ``total = max((out - 1) * s + eff_k - n, 0)``,
  ``before = total // 2`` (the extra pad goes bottom/right);
- ``VALID``: ``out = (n - eff_k) // s + 1``, empty (0) when ``eff_k > n``;
- explicit ``[[0, 0], [t, b], [l, r], [0, 0]]``: ``out = (n + t + b - eff_k) // s + 1``.

Output ``i`` reads tap ``a`` at padded position ``i*s + a*d``, input position
``i*s + a*d - before``; :func:`tap_runs` lists, per tap, the outputs that read the input, so an
op can skip padding without ever materializing it.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, NamedTuple

import numpy as np

from nnref._validate import is_int

Padding = str | tuple[tuple[int, int], tuple[int, int]]


def spatial_pair(op: str, name: str, v: Any) -> tuple[int, int]:
    """An int, an ``[h, w]`` pair or a ``[1, h, w, 1]`` list, as TF accepts for strides etc."""
    if is_int(v):
        vals = (int(v), int(v))
    else:
        try:
            seq = [int(u) if is_int(u) else u for u in v]
        except TypeError:
            raise TypeError(f"{op}: '{name}' must be an int or a list of ints, got {v!r}") from None
        if not all(is_int(u) for u in seq):
            raise TypeError(f"{op}: '{name}' must hold ints, got {v!r}")
        if len(seq) == 1:
            vals = (seq[0], seq[0])
        elif len(seq) == 2:
            vals = (seq[0], seq[1])
        elif len(seq) == 4:
            if seq[0] != 1 or seq[3] != 1:
                raise ValueError(
                    f"{op}: '{name}' {list(seq)} must be 1 on the batch and channel axes"
                )
            vals = (seq[1], seq[2])
        else:
            raise ValueError(f"{op}: '{name}' must have 1, 2 or 4 entries, got {list(seq)}")
    if vals[0] < 1 or vals[1] < 1:
        raise ValueError(f"{op}: '{name}' must be positive, got {v!r}")
    return vals


def normalize_padding(op: str, padding: Any) -> Padding:
    """``"SAME"``, ``"VALID"`` or explicit ``((t, b), (l, r))`` from TF's 4x2 list."""
    if isinstance(padding, str):
        if padding in ("SAME", "VALID"):
            return padding
        raise ValueError(
            f"{op}: 'padding' must be 'SAME', 'VALID' or an explicit [[0,0],[t,b],[l,r],[0,0]] "
            f"list (upper case, as tf.nn), got {padding!r}"
        )
    try:
        rows = [list(r) for r in padding]
    except TypeError:
        raise TypeError(
            f"{op}: 'padding' must be a string or a 4x2 list, got {padding!r}"
        ) from None
    if len(rows) != 4 or any(len(r) != 2 for r in rows):
        raise ValueError(f"{op}: explicit 'padding' must be a list of 4 pairs, got {padding!r}")
    if not all(is_int(u) for r in rows for u in r):
        raise TypeError(f"{op}: explicit 'padding' must hold ints, got {padding!r}")
    if rows[0] != [0, 0] or rows[3] != [0, 0]:
        raise ValueError(
            f"{op}: nonzero explicit padding in the batch or channel dimensions is not supported: {padding!r}"
        )
    if any(u < 0 for r in rows for u in r):
        raise ValueError(f"{op}: all explicit paddings must be nonnegative, got {padding!r}")
    return ((int(rows[1][0]), int(rows[1][1])), (int(rows[2][0]), int(rows[2][1])))


class AxisPlan(NamedTuple):
    before: int
    after: int
    out: int


def plan_axis(n: int, k: int, s: int, d: int, padding: Padding, axis: int) -> AxisPlan:
    """Pads and output size along one spatial axis (``axis`` 0 = H, 1 = W)."""
    eff = (k - 1) * d + 1
    if padding == "SAME":
        out = -(-n // s)
        total = max((out - 1) * s + eff - n, 0)
        return AxisPlan(total // 2, total - total // 2, out)
    if padding == "VALID":
        return AxisPlan(0, 0, max((n - eff) // s + 1, 0))
    t, b = padding[axis]  # type: ignore[index]
    return AxisPlan(t, b, max((n + t + b - eff) // s + 1, 0))


def tap_runs(
    k: int, s: int, d: int, out: int, before: int, n: int
) -> list[tuple[int, slice, slice]]:
    """Along one axis, the taps that meet the input, as ``(a, inputs, outputs)``: the outputs in
    ``outputs`` read the input positions in ``inputs`` (as many, both strided by ``s``) at tap
    ``a``, in increasing ``a``. Taps that meet only padding are left out, and only taps whose
    position ``a*d`` can meet the input are visited, so a window or a padding far larger than
    the input costs what its overlap with the input does."""
    runs = []
    first = -(((out - 1) * s - before) // d)  # ceil: the last output's tap reaches the input
    taps: range | list[int] = range(max(0, first), min(k, (before + n - 1) // d + 1))
    if len(taps) > out * (n // d + 1):  # strides far beyond the input leave gaps: skip them
        taps = sorted(
            {
                a
                for o in range(out)
                for a in range(
                    max(0, -((o * s - before) // d)), min(k, (before + n - 1 - o * s) // d + 1)
                )
            }
        )
    for a in taps:
        o0 = max(0, -(-(before - a * d) // s))
        o1 = min(out, (before + n - 1 - a * d) // s + 1)
        if o0 < o1:
            r0 = o0 * s + a * d - before
            runs.append((a, slice(r0, r0 + (o1 - o0 - 1) * s + 1, s), slice(o0, o1)))
    return runs


@functools.lru_cache(maxsize=256)
def tap_classes(
    k: int, s: int, d: int, out: int, before: int, n: int
) -> tuple[tuple[slice, int, int], ...]:
    """Along one axis, the outputs in runs that read the input at the same taps, as
    ``(outputs, a0, a1)``: each output in ``outputs`` reads the input at taps ``a0 <= a < a1``
    and only padding at the others (``a0 == a1``: padding only), in increasing outputs.
    Cached: a convolution's tiles ask for the same axes in its forward and both gradients
    (~20 us each). The result is a function of six integers, returned as immutable tuples, so
    the cache holds no state a result could depend on (STYLE's "no hidden caches" is about
    those)."""
    o = np.arange(out, dtype=np.int64) * s
    a0 = np.clip(-((o - before) // d), 0, k)
    a1 = np.maximum(np.clip((before + n - 1 - o) // d + 1, 0, k), a0)
    cuts = np.flatnonzero((np.diff(a0) != 0) | (np.diff(a1) != 0)) + 1
    bounds = [0, *cuts.tolist(), out]
    return tuple(
        (slice(lo, hi), int(a0[lo]), int(a1[lo]))
        for lo, hi in itertools.pairwise(bounds)
        if lo < hi
    )
