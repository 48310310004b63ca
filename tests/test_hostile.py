"""Hostile inputs for every op in the registry: read-only and non-contiguous arrays, NaN and
+-inf (compared with TF's NaN/inf pattern), and a fuzzed IDX parser."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnref.cases import TABLES, make_case, reference
from nnref.check.compare import max_rel_error
from nnref.data import parse_idx
from nnref.verify import all_cases, leg_function

CASES = [
    pytest.param(op, case, id=f"{op}-{case}")
    for op, case in all_cases()
    if not TABLES[op].case(case).raises
]
REF = reference()


def _float_positions(args):
    return [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


@pytest.mark.parametrize(("op", "case"), CASES)
def test_read_only_and_non_contiguous_inputs(op, case) -> None:
    fwd, bwd = REF[op + "_fwd"], REF[op + "_bwd"]
    args, static, rng = make_case(op, case, np.float64)
    y, res = fwd(*args, **static)
    dy = rng.standard_normal(np.shape(y))
    grads = bwd(res, dy)
    # Read-only copies: nothing may write to them, results identical.
    frozen = []
    for a in args:
        a = np.array(a)
        a.setflags(write=False)
        frozen.append(a)
    dyf = np.array(dy)
    dyf.setflags(write=False)
    y2, res2 = fwd(*frozen, **static)
    grads2 = bwd(res2, dyf)
    np.testing.assert_array_equal(y, y2)
    for g, g2 in zip(grads, grads2, strict=True):
        if g is not None:
            np.testing.assert_array_equal(g, g2)
    for a, f in zip(args, frozen, strict=True):
        np.testing.assert_array_equal(a, f)
    # Non-contiguous views (every other element of a doubled array) give the same numbers.
    strided = []
    for a in args:
        big = np.repeat(np.asarray(a)[..., None], 2, axis=-1)
        strided.append(big[..., 0])
        assert not strided[-1].flags.c_contiguous or strided[-1].ndim == 0 or strided[-1].size <= 1
    y3, res3 = fwd(*strided, **static)
    np.testing.assert_allclose(y3, y, rtol=1e-13, atol=1e-300)
    for g, g3 in zip(grads, bwd(res3, dy), strict=True):
        if g is not None:
            np.testing.assert_allclose(g3, g, rtol=1e-13, atol=1e-300)


@pytest.mark.tf
@pytest.mark.parametrize(("op", "case"), CASES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_nan_and_inf_match_tf(op, case, bad) -> None:
    """One NaN or +-inf entry in the first float input: value and VJP match TF's pattern
    (matching NaN/inf count as equal; a mismatch is an infinite error)."""
    fwd, bwd = REF[op + "_fwd"], REF[op + "_bwd"]
    args, static, rng = make_case(op, case, np.float64)
    i = _float_positions(args)[0]
    a = np.array(args[i])
    a.flat[a.size // 2] = bad
    args = (*args[:i], a, *args[i + 1 :])
    with np.errstate(all="ignore"):  # NumPy warns on inf - inf; TF does not, results compared
        y, res = fwd(*args, **static)
        dy = rng.standard_normal(np.shape(y))
        grads = bwd(res, dy)
    y_tf, g_tf = leg_function(op, "tf")(args, static, dy)
    assert max_rel_error(y, y_tf)[0] <= 1e-12, (y, y_tf)
    for k in _float_positions(args):
        assert max_rel_error(grads[k], g_tf[k])[0] <= 1e-12, (k, grads[k], g_tf[k])


def _idx(dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


@settings(max_examples=300, deadline=None)
@given(
    dims=st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple),
    extra=st.integers(-3, 3),
    cut=st.integers(0, 40),
    flip=st.tuples(st.integers(0, 40), st.integers(0, 255)),
)
def test_idx_parser_fuzz(dims, extra, cut, flip) -> None:
    """Valid, truncated, padded and byte-flipped IDX data: either a correctly shaped array or a
    ValueError, never another exception and never a partial array."""
    n = int(np.prod(dims)) if dims else 0
    data = bytearray(
        _idx(dims, bytes(range(256)) * (n // 256 + 1))[: 4 + 4 * len(dims) + max(n + extra, 0)]
    )
    variants = [bytes(data), bytes(data[: max(len(data) - cut, 0)])]
    pos, val = flip
    if data:
        d2 = bytearray(data)
        d2[pos % len(d2)] = val
        variants.append(bytes(d2))
    for v in variants:
        try:
            out = parse_idx(v)
        except ValueError:
            continue
        # Accepted only when the header's dimensions describe exactly the payload.
        nd = v[3]
        shape = struct.unpack(f">{nd}I", v[4 : 4 + 4 * nd])
        assert out.shape == shape
        assert out.size == len(v) - 4 - 4 * nd
        assert out.dtype == np.uint8
