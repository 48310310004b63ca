"""JAX and PyTorch as independent oracles: every op, every case, float64 and float32.

``run_oracle(op, case, dtype, "jax" | "torch")`` compares nnref's forward value and VJP (random
cotangent) with the leg's; tolerances ``ORACLE_RTOL`` (float64 1e-12, float32 2e-5). The proof
test shows that the JAX leg alone, with TF made unimportable, catches a conv2d whose SAME pad
sits on the wrong side, which finite differences cannot see.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pytest

from nnref import ops, verify
from nnref.cases import DTYPES, differentiable, reference
from nnref.cli import main
from nnref.oracles import _layout
from nnref.verify import all_cases, run_fd, run_oracle

DT = [pytest.param(d, id=d.name) for d in DTYPES]
CASES = [pytest.param(op, case, id=f"{op}-{case}") for op, case in all_cases()]
FRAMEWORKS = [
    pytest.param("jax", marks=pytest.mark.jax, id="jax"),
    pytest.param("torch", marks=pytest.mark.torch, id="torch"),
]


def test_every_op_has_a_jax_and_a_torch_leg() -> None:
    # Importing the leg modules needs NumPy only.
    from nnref.oracles import jax as jax_legs
    from nnref.oracles import torch as torch_legs

    for mod in (jax_legs, torch_legs):
        assert set(mod.LEGS) == set(differentiable())
        assert set(mod.NAMES) == set(differentiable())
    assert verify.leg_function("dense", "torch") is torch_legs.dense
    with pytest.raises(ValueError, match="unknown oracle leg 'mxnet'"):
        verify.leg_function("dense", "mxnet")


@pytest.mark.jax
@pytest.mark.parametrize(("op", "case"), CASES)
@pytest.mark.parametrize("dtype", DT)
def test_forward_and_vjp_match_jax(op: str, case: str, dtype) -> None:
    r = run_oracle(op, case, dtype, "jax")
    assert r.ok, f"{op}/{case}/{r.dtype}/jax: error {r.error:.3g} at {r.worst}; {r.detail}"


@pytest.mark.torch
@pytest.mark.parametrize(("op", "case"), CASES)
@pytest.mark.parametrize("dtype", DT)
def test_forward_and_vjp_match_torch(op: str, case: str, dtype) -> None:
    r = run_oracle(op, case, dtype, "torch")
    assert r.ok, f"{op}/{case}/{r.dtype}/torch: error {r.error:.3g} at {r.worst}; {r.detail}"


@pytest.mark.jax
def test_jax_legs_leave_x64_off_for_other_code() -> None:
    import jax
    import jax.numpy as jnp

    assert run_oracle("dense", "small-4x5-to-3", np.float64, "jax").ok
    assert jax.config.jax_enable_x64 is False
    assert jnp.asarray(np.zeros(2)).dtype == np.float32  # JAX's default: float64 truncated


@pytest.mark.torch
def test_torch_legs_keep_the_default_dtype_and_the_inputs() -> None:
    import torch

    from nnref.oracles.torch import LEGS

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 2))
    w = rng.standard_normal((3, 3, 2, 2))
    x.flags.writeable = False  # the legs copy into tensors: read-only inputs are fine
    before = (x.copy(), w.copy())
    dy = rng.standard_normal((1, 3, 3, 2))
    y, (dx, dw) = LEGS["conv2d"]((x, w), {"padding": "SAME", "strides": 2}, dy)
    assert torch.get_default_dtype() == torch.float32
    assert y.dtype == dx.dtype == dw.dtype == np.float64
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(w, before[1])


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("n", "k", "s", "d", "pads"),
    [
        (4, 2, 1, 1, (0, 1)),  # odd total: the extra pad after (tf-semantics.md 1)
        (4, 3, 2, 1, (0, 1)),
        (5, 4, 1, 1, (1, 2)),
        (2, 5, 1, 1, (2, 2)),  # kernel larger than the input
        (7, 3, 1, 2, (2, 2)),  # dilation: effective kernel 5
        (8, 3, 3, 1, (0, 1)),
    ],
)
def test_tf_pads_same(n: int, k: int, s: int, d: int, pads: tuple[int, int]) -> None:
    assert _layout.tf_pads("SAME", (n, 9), (k, 1), (s, 1), (d, 1))[0] == pads


def test_tf_pads_agree_with_nnref_windows_on_a_grid() -> None:
    from nnref.ops._windows import plan_axis

    for n in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 4):
                for d in (1, 2):
                    (before, after), _ = _layout.tf_pads("SAME", (n, n), (k, k), (s, s), (d, d))
                    plan = plan_axis(n, k, s, d, "SAME", 0)
                    assert (before, after) == (plan.before, plan.after), (n, k, s, d)


def test_layout_forms_and_errors() -> None:
    assert _layout.spatial(2) == (2, 2)
    assert _layout.spatial([3]) == (3, 3)
    assert _layout.spatial([2, 3]) == (2, 3)
    assert _layout.spatial([1, 2, 3, 1]) == (2, 3)
    with pytest.raises(ValueError, match="expected an int"):
        _layout.spatial([1, 2, 3])
    explicit = [[0, 0], [1, 2], [3, 0], [0, 0]]
    assert _layout.tf_pads(explicit, (5, 5), (3, 3), (1, 1)) == ((1, 2), (3, 0))
    assert _layout.tf_pads("VALID", (5, 5), (3, 3), (1, 1)) == ((0, 0), (0, 0))
    assert _layout.torch_pad_arg(((1, 2), (3, 4))) == (3, 4, 1, 2)
    with pytest.raises(ValueError, match="unknown padding 'same'"):
        _layout.tf_pads("same", (5, 5), (3, 3), (1, 1))
    with pytest.raises(ValueError, match="4 pairs"):
        _layout.explicit_pads([[1, 2], [3, 4]])
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(
        x.transpose(_layout.NHWC_TO_NCHW).transpose(_layout.NCHW_TO_NHWC), x
    )
    assert x.transpose(_layout.HWIO_TO_OIHW).shape == (5, 4, 2, 3)


# --------------------------------------------------------------------------- proof


def _same_on_the_wrong_side(x: Any, w: Any, *, strides: Any = 1, padding: Any = "VALID", **kw):
    """A deliberately wrong conv2d: SAME's odd extra pad before (top/left) instead of after."""
    if padding == "SAME":
        s = _layout.spatial(strides)
        d = _layout.spatial(kw.get("dilations", 1))
        (t, b), (left, r) = _layout.tf_pads("SAME", x.shape[1:3], w.shape[:2], s, d)
        padding = [[0, 0], [b, t], [r, left], [0, 0]]
    return ops.conv2d_fwd(x, w, strides=strides, padding=padding, **kw)


@pytest.mark.parametrize("leg", FRAMEWORKS)
def test_wrong_same_padding_is_caught_by_the_framework_alone(monkeypatch, leg: str) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # TF and Keras cannot be imported
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ImportError):
        run_oracle("conv2d", "same-pad-odd-total-h", np.float64, "tf")
    wrong = {**reference(), "conv2d_fwd": _same_on_the_wrong_side}
    monkeypatch.setattr(verify, "reference", lambda: wrong)
    for case in ("same-pad-odd-total-h", "same-stride-3"):  # odd totals: 2x3 s1, 8 wide s3
        assert run_fd("conv2d", case, np.float64).ok  # consistent fwd/bwd: FD cannot see it
        r = run_oracle("conv2d", case, np.float64, leg)
        assert not r.ok
        assert r.error > 0.1
    # Even totals put the pads where TF does: the variant passes there, so the leg is precise.
    assert run_oracle("conv2d", "same-pad-even-total-3x3", np.float64, leg).ok


# --------------------------------------------------------------------------- nnref verify


@pytest.mark.tf
@pytest.mark.jax
def test_verify_json_has_a_column_per_installed_oracle(monkeypatch, capsys) -> None:
    real = verify.installed

    # As if PyTorch were not installed (sys.modules["torch"] = None would break SciPy, which
    # looks PyTorch up in sys.modules when TF imports it).
    monkeypatch.setattr(verify, "installed", lambda leg: leg != "torch" and real(leg))
    assert main(["verify", "--json", "--op", "relu"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"jax", "optax"} <= set(report["versions"])
    assert "torch" not in report["versions"]
    assert report["not_installed"] == ["torch"]
    for r in report["rows"]:
        assert r["jax"] == 0.0  # relu: exact in both dtypes
        assert r["torch"] is None  # not installed: null, never a pass
        assert r["ok"]
    main(["verify", "--op", "relu", "--dtype", "float64"])
    out = capsys.readouterr().out
    header = out.splitlines()[1].split()
    assert header[header.index("jax") + 1] == "torch"
    assert "not installed" in out.splitlines()[2]
    assert "torch: not installed, not checked (pip install 'nnref[torch]')" in out


@pytest.mark.tf
@pytest.mark.jax
def test_verify_fails_when_only_the_jax_leg_disagrees(monkeypatch, capsys) -> None:
    from nnref.oracles import jax as jax_legs

    def off(args: tuple, st: dict, dy: Any) -> tuple[Any, list[Any]]:
        y, g = jax_legs.relu(args, st, dy)
        return y * 1.001, g

    monkeypatch.setitem(jax_legs.LEGS, "relu", off)
    assert main(["verify", "--json", "--op", "relu", "--dtype", "float64"]) == 1
    [row] = json.loads(capsys.readouterr().out)["rows"]
    assert row["tf"] == 0.0
    assert row["jax"] > 1e-4
    assert row["ok"] is False


@pytest.mark.torch
@pytest.mark.parametrize(
    ("shape", "k", "s"),
    [
        ((1, 3, 3, 1), 3, 1),  # SAME pads (1, 1): corner windows start in padding
        ((1, 4, 5, 1), 2, 1),  # pads (0, 1): the odd pad after only
        ((1, 5, 6, 2), 3, 2),  # pads (1, 1) and (0, 1)
    ],
)
def test_torch_pool_leg_routes_all_neg_inf_windows_as_pytorch(shape, k: int, s: int) -> None:
    """An all -inf window that starts in SAME padding sends its gradient to its first valid
    element in PyTorch (its own padding is skipped by index) and in TF: the leg, which
    follows PyTorch's convention there (``pool-all-neg-inf``), must too, not to an ``F.pad``
    cell where it is lost."""
    import torch
    import torch.nn.functional as F

    from nnref.cases.conventions import CONVENTIONS
    from nnref.oracles.torch import LEGS

    x = np.full(shape, -np.inf)
    st = {"ksize": k, "strides": s, "padding": "SAME"}
    out = ops.max_pool2d(x, **st).shape
    dy = np.random.default_rng(7).uniform(1, 2, out)
    y, (dx,) = LEGS["max_pool2d"]((x,), st, dy)
    assert y.shape == out
    np.testing.assert_allclose(dx.sum(), dy.sum(), rtol=1e-12)  # no window's gradient lost
    [conv] = [c for c in CONVENTIONS if c.id == "pool-torch"]
    e = conv.expect((x,), st, dy)
    np.testing.assert_array_equal(y, e.y)
    np.testing.assert_array_equal(dx, e.grads[0])
    if shape[1] == shape[2] and (k - 1) % 2 == 0 and s == 1:  # PyTorch's own padding is TF's
        t = torch.tensor(x, requires_grad=True)
        own = F.max_pool2d(t.permute(0, 3, 1, 2), k, s, (k - 1) // 2).permute(0, 2, 3, 1)
        (g,) = torch.autograd.grad(own, t, torch.tensor(dy))
        np.testing.assert_array_equal(dx, g.numpy())


@pytest.mark.torch
def test_torch_legs_take_int32_labels_as_int64() -> None:
    """The legs copy integer labels as int64 (F.cross_entropy refuses int32 targets), so int32
    labels give the loss, not a RuntimeError that ``nnref verify`` would count as a refusal."""
    from nnref.oracles.torch import LEGS

    rng = np.random.default_rng(3)
    labels, z = np.array([0, 2, 1], np.int32), rng.standard_normal((3, 4))
    dy = rng.standard_normal(3)
    y, (dl, dz) = LEGS["sparse_softmax_cross_entropy_with_logits"]((labels, z), {}, dy)
    y64, (_, dz64) = LEGS["sparse_softmax_cross_entropy_with_logits"](
        (labels.astype(np.int64), z), {}, dy
    )
    assert dl is None
    np.testing.assert_array_equal(y, y64)
    np.testing.assert_array_equal(dz, dz64)
    ref = ops.sparse_softmax_cross_entropy_with_logits(labels, z)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
