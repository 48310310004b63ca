"""conv2d(algorithm="dft") on generated arguments: agreement with the direct path and VJP =
finite differences. Each property carries a deliberately broken variant as a strict xfail (a
property that cannot fail proves nothing).

The DFT does not keep exact zeros (documented): an output the direct sum makes exactly 0 is
rounding noise on the scale of the products that feed it. Errors are therefore measured against
that scale as a floor, and inputs whose output is identically zero (no window meets a non-zero
product) or tiny beside that scale are left out of the finite-difference property, which judges
noise by the output's own size.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnref
from nnref import strategies as nst
from nnref.check import check_vjp
from nnref.check.compare import ORACLE_RTOL, max_rel_error

CAUGHT = pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="deliberately broken op must be caught"
)


def dft_fwd(x, w, **static):
    return nnref.conv2d_fwd(x, w, **static, algorithm="dft")


def broken_dft_fwd(x, w, **static):
    y, res = dft_fwd(x, w, **static)
    return y * y.dtype.type(1.001), res


def broken_dft_bwd(res, dy):
    dx, dw = nnref.conv2d_bwd(res, dy)
    return dx, dw * dw.dtype.type(1.01)


def _nonzero(args):
    """Entries below 1e-6 become 0 (finite differences cannot see values that underflow)."""
    return tuple(np.where(np.abs(a) < 1e-6, a.dtype.type(0), a) for a in args)


@pytest.mark.parametrize(
    "fwd", [dft_fwd, pytest.param(broken_dft_fwd, marks=CAUGHT)], ids=["ok", "broken"]
)
@given(args=nst.conv2d_args(), data=st.data())
def test_dft_agrees_with_direct(fwd, args, data) -> None:
    x, w, static = args["x"], args["w"], args["static"]
    y, res = nnref.conv2d_fwd(x, w, **static)
    yf, resf = fwd(x, w, **static)
    dy = data.draw(nst.finite_arrays(dtype=x.dtype, shape=y.shape, min_value=-1, max_value=1))
    tol = ORACLE_RTOL[x.dtype.name]
    top = {"x": np.abs(x).max(), "w": np.abs(w).max(), "dy": np.abs(dy).max()}
    pairs = [("y", yf, y, top["x"] * top["w"])]
    for what, a, b, scale in zip(
        ("dx", "dw"),
        nnref.conv2d_bwd(resf, dy),
        nnref.conv2d_bwd(res, dy),
        (top["dy"] * top["w"], top["x"] * top["dy"]),
        strict=True,
    ):
        pairs.append((what, a, b, scale))
    for what, a, b, scale in pairs:
        assert a.shape == b.shape
        assert a.dtype == b.dtype
        err, idx = max_rel_error(a, b, floor=float(scale))
        assert err <= tol, f"{what}: error {err:.3g} at {idx}: {a[idx]!r} vs {b[idx]!r}"


@pytest.mark.parametrize(
    "bwd", [nnref.conv2d_bwd, pytest.param(broken_dft_bwd, marks=CAUGHT)], ids=["ok", "broken"]
)
@given(args=nst.conv2d_args())
def test_dft_vjp_matches_finite_differences(bwd, args) -> None:
    x, w = _nonzero((args["x"], args["w"]))
    y = nnref.conv2d(x, w, **args["static"])
    if (
        not y.any()
        or np.abs(y).max() < 1e-3 * np.abs(x).max() * np.abs(w).sum(axis=(0, 1, 2)).max()
    ):
        # Identically zero, or far below the scale of the products that feed it: the checker
        # bounds rounding by the output's own size, but the DFT's follows that scale (found by
        # the thorough profile: y ~ 9e-5 from products of ~1.5 put rounding of 1.5 * 1e-16 into
        # differences at a step of 4e-9, 1.03x the tolerance). Nothing to judge there
        # (returning, not assume(), keeps shrinking of the broken variant off these inputs).
        return
    r = check_vjp(
        dft_fwd,
        bwd,
        (x, w),
        static=args["static"],
        mode="directional",
        directions=2,
        raise_on_failure=False,
    )
    assert r.ok, r.message()
