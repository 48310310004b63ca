"""The cross-framework matrix (``nnref.oracles.semantics.PINS``), measured.

One test per pin and framework shows both behaviours on the same inputs: what the framework
does, and what nnref (verified against TF) does. Each also checks the pin's recorded ``agrees``
flag, so the table fails here when a framework changes. JAX tests run under
``jax.enable_x64(True)`` (a context, not the global flag) and carry the ``jax`` marker; PyTorch
tests carry ``torch``; a test that needs TF for the TF side also carries ``tf``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import nnref
import nnref.optim
from nnref.init import fans, glorot_uniform
from nnref.oracles.semantics import BY_ID, FRAMEWORKS, PINS, differences, rows

NEG_INF = -np.inf


def _recorded(pin: str, framework: str, agrees: bool) -> None:
    b = BY_ID[pin].behaviour(framework)
    assert b.agrees is agrees, (
        f"{pin}/{framework}: measured {'agrees' if agrees else 'differs'}, table says "
        f"{'agrees' if b.agrees else 'differs'} ({b.what})"
    )


@pytest.fixture
def jx() -> Iterator[Any]:
    import jax

    with jax.enable_x64(True):
        yield jax


@pytest.fixture
def tch() -> Any:
    import torch

    return torch


def _lax_pool(jax: Any, x: np.ndarray, k: int, s: int, padding: Any) -> tuple[Any, Any]:
    """JAX max-pool (NHWC) value and input gradient at an all-ones cotangent."""
    import jax.numpy as jnp

    def f(v: Any) -> Any:
        init = np.array(NEG_INF, x.dtype)
        return jax.lax.reduce_window(v, init, jax.lax.max, (1, k, k, 1), (1, s, s, 1), padding)

    y, pull = jax.vjp(f, jnp.asarray(x))
    return np.asarray(y), np.asarray(pull(jnp.ones(y.shape, x.dtype))[0])


def _torch_pool(torch: Any, x: np.ndarray, k: int, s: int, pad: int = 0) -> tuple[Any, Any]:
    """PyTorch max-pool (NCHW inside) value and gradient at an all-ones cotangent, as NHWC."""
    import torch.nn.functional as F

    t = torch.tensor(x, requires_grad=True)
    y = F.max_pool2d(t.permute(0, 3, 1, 2), k, s, padding=pad).permute(0, 2, 3, 1)
    (g,) = torch.autograd.grad(y, t, torch.ones_like(y))
    return y.detach().numpy(), g.numpy()


def _nnref_pool(x: np.ndarray, k: int, s: int, padding: str) -> tuple[Any, Any]:
    y, res = nnref.max_pool2d_fwd(x, ksize=k, strides=s, padding=padding)
    return y, nnref.max_pool2d_bwd(res, np.ones_like(y))[0]


def _window(rows_: list[list[float]]) -> np.ndarray:
    return np.array(rows_, dtype=np.float64)[None, :, :, None]


# --------------------------------------------------------------------------- the table


def test_table_is_complete_and_consistent() -> None:
    assert len(BY_ID) == len(PINS)
    tests = {n for n in globals() if n.startswith("test_")}
    for p in PINS:
        assert p.tf
        assert p.jax.what
        assert p.torch.what
        for fw in FRAMEWORKS:
            assert f"test_{p.id.replace('-', '_')}_{fw}" in tests, (p.id, fw)
    assert {r["id"] for r in rows()} == set(BY_ID)
    assert all(r["jax"].startswith(("agrees: ", "differs: ")) for r in rows())
    assert BY_ID["adam-epsilon"] in differences("torch")
    assert BY_ID["rmsprop-epsilon"] not in differences("jax")
    with pytest.raises(ValueError, match="unknown framework"):
        PINS[0].behaviour("mxnet")


def test_readme_counts_the_pins_and_names_every_jax_difference() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"`nnref/oracles/semantics.py` ({len(PINS)} pins," in text
    summary = " ".join(text.split("JAX differs from TF on", 1)[1].split("; PyTorch", 1)[0].split())
    # One phrase per pin where JAX differs, as the README summary words it.
    phrases = {
        "pool-nan": "max-pool NaN",
        "pool-all-neg-inf": "inf windows",
        "argmax-nan": "argmax with NaN",
        "bad-labels": "unchecked labels",
        "xent-shift": "shifted cross-entropy",
        "soft-label-dlogits": "soft-label",
        "prob-clip": "probability clip",
        "adam-epsilon": "Adam's epsilon",
        "adam-defaults": "Adam's and RMSprop's",
        "rmsprop-defaults": "RMSprop's defaults",
        "lr-float32": "float64 learning rates",
    }
    assert set(phrases) == {p.id for p in differences("jax")}
    for pin, phrase in phrases.items():
        assert phrase in summary, pin


# --------------------------------------------------------------------------- conv2d


@pytest.mark.jax
def test_conv_same_odd_total_jax(jx, rng) -> None:
    x, w = rng.standard_normal((1, 4, 4, 2)), rng.standard_normal((2, 2, 2, 3))
    y = jx.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    ref = nnref.conv2d(x, w, padding="SAME")
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-12, atol=1e-12)
    other_side = nnref.conv2d(x, w, padding=[[0, 0], [1, 0], [1, 0], [0, 0]])
    assert np.abs(ref - other_side).max() > 0.1
    _recorded("conv-same-odd-total", "jax", True)


@pytest.mark.torch
def test_conv_same_odd_total_torch(tch, rng) -> None:
    import torch.nn.functional as F

    x, w = rng.standard_normal((1, 4, 4, 2)), rng.standard_normal((2, 2, 2, 3))
    # PyTorch warns about an even kernel once per process (TORCH_WARN_ONCE), so whether this
    # call warns depends on which test ran first in the worker: silenced, not expected.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using padding='same' with even kernel", UserWarning)
        y = F.conv2d(
            tch.tensor(x).permute(0, 3, 1, 2), tch.tensor(w).permute(3, 2, 0, 1), padding="same"
        )
    ref = nnref.conv2d(x, w, padding="SAME")
    np.testing.assert_allclose(y.permute(0, 2, 3, 1).numpy(), ref, rtol=1e-12, atol=1e-12)
    _recorded("conv-same-odd-total", "torch", True)


@pytest.mark.jax
def test_conv_same_strided_jax(jx, rng) -> None:
    x, w = rng.standard_normal((1, 8, 8, 2)), rng.standard_normal((3, 3, 2, 3))
    y = jx.lax.conv_general_dilated(
        x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    ref = nnref.conv2d(x, w, strides=2, padding="SAME")
    assert ref.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-12, atol=1e-12)
    _recorded("conv-same-strided", "jax", True)


@pytest.mark.torch
def test_conv_same_strided_torch(tch, rng) -> None:
    import torch.nn.functional as F

    x, w = rng.standard_normal((1, 8, 8, 2)), rng.standard_normal((3, 3, 2, 3))
    assert nnref.conv2d(x, w, strides=2, padding="SAME").shape == (1, 4, 4, 3)
    xt, wt = tch.tensor(x).permute(0, 3, 1, 2), tch.tensor(w).permute(3, 2, 0, 1)
    with pytest.raises(RuntimeError, match="not supported for strided convolutions"):
        F.conv2d(xt, wt, stride=2, padding="same")
    _recorded("conv-same-strided", "torch", False)


def _shifted_port(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """nnref with PyTorch's symmetric padding=1 written as TF explicit pads."""
    return nnref.conv2d(x, w, strides=2, padding=[[0, 0], [1, 1], [1, 1], [0, 0]])


@pytest.mark.jax
def test_conv_same_strided_symmetric_port_jax(jx, rng) -> None:
    x, w = rng.standard_normal((1, 8, 8, 2)), rng.standard_normal((3, 3, 2, 3))
    dn = ("NHWC", "HWIO", "NHWC")
    same = jx.lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dn)
    port = jx.lax.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=dn)
    np.testing.assert_allclose(
        np.asarray(same), nnref.conv2d(x, w, strides=2, padding="SAME"), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(np.asarray(port), _shifted_port(x, w), rtol=1e-12, atol=1e-12)
    _recorded("conv-same-strided-symmetric-port", "jax", True)


@pytest.mark.torch
def test_conv_same_strided_symmetric_port_torch(tch, rng) -> None:
    import torch.nn.functional as F

    x, w = rng.standard_normal((1, 8, 8, 2)), rng.standard_normal((3, 3, 2, 3))
    xt, wt = tch.tensor(x).permute(0, 3, 1, 2), tch.tensor(w).permute(3, 2, 0, 1)
    port = F.conv2d(xt, wt, stride=2, padding=1).permute(0, 2, 3, 1).numpy()
    same = nnref.conv2d(x, w, strides=2, padding="SAME")
    assert port.shape == same.shape == (1, 4, 4, 3)
    assert np.abs(port - same).max() > 0.1  # same shape, other windows
    np.testing.assert_allclose(port, _shifted_port(x, w), rtol=1e-12, atol=1e-12)
    _recorded("conv-same-strided-symmetric-port", "torch", False)


# --------------------------------------------------------------------------- max_pool2d

TIES = [
    (_window([[1.0, 1.0], [1.0, 1.0]]), 2, 2),
    (_window([[1.0, 3.0], [3.0, 2.0]]), 2, 2),
    (np.ones((1, 4, 4, 1)), 3, 1),  # overlapping windows accumulate on the first maximum
]


@pytest.mark.jax
def test_pool_tie_first_max_jax(jx) -> None:
    for x, k, s in TIES:
        pad = "SAME" if s == 1 else "VALID"
        y, g = _lax_pool(jx, x, k, s, pad)
        y_ref, g_ref = _nnref_pool(x, k, s, pad)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(g, g_ref)
    _recorded("pool-tie-first-max", "jax", True)


@pytest.mark.torch
def test_pool_tie_first_max_torch(tch) -> None:
    for x, k, s in TIES:
        pad = "SAME" if s == 1 else "VALID"  # 3x3 s1 SAME on 4x4 pads (1, 1): padding=1
        y, g = _torch_pool(tch, x, k, s, 1 if s == 1 else 0)
        y_ref, g_ref = _nnref_pool(x, k, s, pad)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(g, g_ref)
    _recorded("pool-tie-first-max", "torch", True)


@pytest.mark.jax
def test_pool_nan_jax(jx) -> None:
    x = _window([[3.0, np.nan], [1.0, 0.0]])
    y_ref, g_ref = _nnref_pool(x, 2, 2, "VALID")
    assert y_ref[0, 0, 0, 0] == 3.0  # TF skips the NaN
    assert g_ref[0, :, :, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    y, g = _lax_pool(jx, x, 2, 2, "VALID")
    assert np.isnan(y).all()
    assert g[0, :, :, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]  # the max after the NaN
    x2 = _window([[1.0, 2.0], [3.0, np.nan]])
    _, g2 = _lax_pool(jx, x2, 2, 2, "VALID")
    _, g2_ref = _nnref_pool(x2, 2, 2, "VALID")
    assert g2[0, :, :, 0].tolist() == [[0.0, 0.0], [0.0, 1.0]]  # a last NaN keeps it
    assert g2_ref[0, :, :, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]
    _recorded("pool-nan", "jax", False)


@pytest.mark.torch
def test_pool_nan_torch(tch) -> None:
    x = _window([[3.0, np.nan], [1.0, 0.0]])
    y_ref, _ = _nnref_pool(x, 2, 2, "VALID")
    assert y_ref[0, 0, 0, 0] == 3.0
    y, g = _torch_pool(tch, x, 2, 2)
    assert np.isnan(y).all()
    assert g[0, :, :, 0].tolist() == [[0.0, 1.0], [0.0, 0.0]]  # NaN wins
    x2 = _window([[1.0, np.nan], [np.nan, 0.0]])
    _, g2 = _torch_pool(tch, x2, 2, 2)
    _, g2_ref = _nnref_pool(x2, 2, 2, "VALID")
    assert g2[0, :, :, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]  # the last NaN
    assert g2_ref[0, :, :, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    _recorded("pool-nan", "torch", False)


ALL_NEG_INF = np.full(
    (1, 3, 3, 1), NEG_INF
)  # 3x3 s1 SAME pads (1, 1): corner windows start in padding


@pytest.mark.jax
def test_pool_all_neg_inf_jax(jx) -> None:
    y_ref, g_ref = _nnref_pool(ALL_NEG_INF, 3, 1, "SAME")
    assert (y_ref == np.finfo(np.float64).min).all()
    assert g_ref.sum() == 9.0  # every window's gradient reaches a valid element
    y, g = _lax_pool(jx, ALL_NEG_INF, 3, 1, "SAME")
    assert (y == NEG_INF).all()
    assert g.sum() == 4.0  # five windows sent theirs to padding
    _recorded("pool-all-neg-inf", "jax", False)


@pytest.mark.torch
def test_pool_all_neg_inf_torch(tch) -> None:
    y_ref, g_ref = _nnref_pool(ALL_NEG_INF, 3, 1, "SAME")
    y, g = _torch_pool(tch, ALL_NEG_INF, 3, 1, pad=1)
    assert (y == NEG_INF).all()
    assert (y_ref == np.finfo(np.float64).min).all()
    np.testing.assert_array_equal(g, g_ref)  # routing agrees, the value does not
    _recorded("pool-all-neg-inf", "torch", False)


def _distinct_nhwc(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.permutation(h * w * 2).reshape(1, h, w, 2).astype(np.float64)


@pytest.mark.jax
def test_pool_same_port_jax(jx, rng) -> None:
    x = _distinct_nhwc(rng, 5, 7)
    y, g = _lax_pool(jx, x, 2, 2, "SAME")
    y_ref, g_ref = _nnref_pool(x, 2, 2, "SAME")
    assert y.shape == y_ref.shape == (1, 3, 4, 2)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(g, g_ref)
    _recorded("pool-same-port", "jax", True)


@pytest.mark.torch
def test_pool_same_port_torch(tch, rng) -> None:
    x = _distinct_nhwc(rng, 5, 7)
    y_ref, _ = _nnref_pool(x, 2, 2, "SAME")
    y, _ = _torch_pool(tch, x, 2, 2, pad=(2 - 1) // 2)  # nn.MaxPool2d(2)
    assert y_ref.shape == (1, 3, 4, 2)
    assert y.shape == (1, 2, 3, 2)  # floor mode drops the last row and column
    np.testing.assert_array_equal(y, y_ref[:, :2, :3])  # the windows both have agree
    # Where TF's total pad is even (3x3, stride 2 on 5x5: pads (1, 1)) the port is TF's.
    x3 = _distinct_nhwc(rng, 5, 5)
    y3, g3 = _torch_pool(tch, x3, 3, 2, pad=(3 - 1) // 2)
    y3_ref, g3_ref = _nnref_pool(x3, 3, 2, "SAME")
    np.testing.assert_array_equal(y3, y3_ref)
    np.testing.assert_array_equal(g3, g3_ref)
    _recorded("pool-same-port", "torch", False)


# --------------------------------------------------------------------------- reductions

TIED = np.array([1.0, 3.0, 3.0, 2.0])


def _tf_reduce_max_grad(c: float) -> np.ndarray:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    _, (g,) = tape_vjp(tf.reduce_max, (TIED,), np.array(c))
    return g


@pytest.mark.tf
@pytest.mark.jax
def test_reduce_max_ties_jax(jx, rng) -> None:
    import jax.numpy as jnp

    c = rng.uniform(1, 2)
    g_tf = _tf_reduce_max_grad(c)
    np.testing.assert_allclose(g_tf, [0, c / 2, c / 2, 0], rtol=1e-15)
    _, pull = jx.vjp(jnp.max, jnp.asarray(TIED))
    np.testing.assert_allclose(np.asarray(pull(jnp.asarray(c))[0]), g_tf, rtol=1e-15)
    _recorded("reduce-max-ties", "jax", True)


@pytest.mark.tf
@pytest.mark.torch
def test_reduce_max_ties_torch(tch, rng) -> None:
    c = rng.uniform(1, 2)
    g_tf = _tf_reduce_max_grad(c)
    x = tch.tensor(TIED, requires_grad=True)
    for f in (tch.amax, tch.max):
        (g,) = tch.autograd.grad(f(x), x, tch.tensor(c, dtype=x.dtype))
        np.testing.assert_allclose(g.numpy(), g_tf, rtol=1e-15)
    (g_dim,) = tch.autograd.grad(tch.max(x, 0).values, x, tch.tensor(c, dtype=x.dtype))
    np.testing.assert_allclose(g_dim.numpy(), [0, c, 0, 0], rtol=1e-15)
    _recorded("reduce-max-ties", "torch", False)


ARGMAX_TIES = np.array([[0.3, 0.3, 0.1], [0.2, 0.4, 0.4], [0.5, 0.5, 0.5]])
ARGMAX_NAN = np.array([0.1, np.nan, 0.5])


@pytest.mark.jax
def test_argmax_ties_jax(jx) -> None:
    import jax.numpy as jnp

    assert nnref.argmax(ARGMAX_TIES).tolist() == [0, 1, 0]
    assert np.asarray(jnp.argmax(ARGMAX_TIES, -1)).tolist() == [0, 1, 0]
    _recorded("argmax-ties", "jax", True)


@pytest.mark.torch
def test_argmax_ties_torch(tch) -> None:
    assert tch.argmax(tch.tensor(ARGMAX_TIES), -1).tolist() == nnref.argmax(ARGMAX_TIES).tolist()
    _recorded("argmax-ties", "torch", True)


@pytest.mark.jax
def test_argmax_nan_jax(jx) -> None:
    import jax.numpy as jnp

    assert int(nnref.argmax(ARGMAX_NAN)) == 2
    assert int(jnp.argmax(ARGMAX_NAN)) == 1
    _recorded("argmax-nan", "jax", False)


@pytest.mark.torch
def test_argmax_nan_torch(tch) -> None:
    assert int(nnref.argmax(ARGMAX_NAN)) == 2
    assert int(tch.argmax(tch.tensor(ARGMAX_NAN))) == 1
    _recorded("argmax-nan", "torch", False)


# --------------------------------------------------------------------------- relu

RELU_X = np.array([0.0, -0.0, np.nan, 1.5, -1.5])


def _nnref_relu_grad(dy: np.ndarray) -> np.ndarray:
    return nnref.relu_bwd(nnref.relu_fwd(RELU_X)[1], dy)[0]


@pytest.mark.jax
def test_relu_grad_at_0_and_nan_jax(jx, rng) -> None:
    import jax.numpy as jnp

    dy = rng.uniform(1, 2, RELU_X.shape)
    _, pull = jx.vjp(jx.nn.relu, jnp.asarray(RELU_X))
    g = np.asarray(pull(jnp.asarray(dy))[0])
    np.testing.assert_array_equal(g, _nnref_relu_grad(dy))
    np.testing.assert_array_equal(g, [0, 0, 0, dy[3], 0])
    _recorded("relu-grad-at-0-and-nan", "jax", True)


@pytest.mark.torch
def test_relu_grad_at_0_and_nan_torch(tch, rng) -> None:
    import torch.nn.functional as F

    dy = rng.uniform(1, 2, RELU_X.shape)
    x = tch.tensor(RELU_X, requires_grad=True)
    (g,) = tch.autograd.grad(F.relu(x), x, tch.tensor(dy))
    np.testing.assert_array_equal(g.numpy(), [0, 0, dy[2], dy[3], 0])  # NaN passes
    np.testing.assert_array_equal(_nnref_relu_grad(dy), [0, 0, 0, dy[3], 0])
    _recorded("relu-grad-at-0-and-nan", "torch", False)


# --------------------------------------------------------------------------- labels


@pytest.mark.jax
def test_bad_labels_jax(jx, rng) -> None:
    import jax.numpy as jnp
    import optax

    z = rng.standard_normal((3, 4))
    labels = np.array([0, -1, 4])
    with pytest.raises(ValueError, match="labels"):
        nnref.sparse_softmax_cross_entropy_with_logits(labels, z)

    def loss(v: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(v, jnp.asarray(labels))

    per, pull = jx.vjp(loss, jnp.asarray(z))
    per = np.asarray(per)
    lse = np.log(np.exp(z).sum(-1))
    np.testing.assert_allclose(per[0], lse[0] - z[0, 0], rtol=1e-12)
    np.testing.assert_allclose(per[1], lse[1] - z[1, 3], rtol=1e-12)  # -1 wraps to K - 1
    assert np.isnan(per[2])
    g = np.asarray(pull(jnp.ones(3))[0])
    np.testing.assert_allclose(g[2], np.exp(z[2] - lse[2]), rtol=1e-12)  # finite: softmax
    _recorded("bad-labels", "jax", False)


@pytest.mark.torch
def test_bad_labels_torch(tch, rng) -> None:
    import torch.nn.functional as F

    z = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match="labels"):
        nnref.sparse_softmax_cross_entropy_with_logits(np.array([0, -100, 2]), z)
    zt = tch.tensor(z)
    per = F.cross_entropy(zt, tch.tensor([0, -100, 2]), reduction="none").numpy()
    assert per[1] == 0.0
    mean = F.cross_entropy(zt, tch.tensor([0, -100, 2])).item()
    np.testing.assert_allclose(mean, (per[0] + per[2]) / 2, rtol=1e-12)  # -100 left out
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(zt, tch.tensor([0, 4, 2]))
    _recorded("bad-labels", "torch", False)


LN2_LOGITS = np.array([[1e4, 1e4, -1e4], [-1e4, 1e4, 1e4]])
LN2_LABELS = np.array([0, 2])


@pytest.mark.jax
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_xent_shift_jax(jx, dt) -> None:
    import optax

    z = LN2_LOGITS.astype(dt)
    ours = nnref.sparse_softmax_cross_entropy_with_logits(LN2_LABELS, z)
    np.testing.assert_array_equal(ours, np.full(2, np.log(2), dt))  # ln 2, exactly rounded
    theirs = np.asarray(optax.softmax_cross_entropy_with_integer_labels(z, LN2_LABELS))
    assert theirs.dtype == dt
    assert np.abs(theirs / ours - 1).max() > (1e-4 if dt == np.float32 else 1e-13)
    m = z.max(-1)  # the recombined form reproduces optax's value exactly
    recombined = (m + np.log(np.exp(z - m[:, None]).sum(-1))) - z[[0, 1], LN2_LABELS]
    np.testing.assert_array_equal(theirs, recombined.astype(dt))
    onehot = np.asarray(optax.softmax_cross_entropy(z, np.eye(3, dtype=dt)[LN2_LABELS]))
    np.testing.assert_allclose(onehot, ours, rtol=2 * np.finfo(dt).eps)
    _recorded("xent-shift", "jax", False)


@pytest.mark.torch
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_xent_shift_torch(tch, dt) -> None:
    import torch.nn.functional as F

    z = LN2_LOGITS.astype(dt)
    theirs = F.cross_entropy(tch.tensor(z), tch.tensor(LN2_LABELS), reduction="none").numpy()
    ours = nnref.sparse_softmax_cross_entropy_with_logits(LN2_LABELS, z)
    np.testing.assert_array_equal(theirs, ours)
    _recorded("xent-shift", "torch", True)


ONE_HOT_IDX = np.array([0, 2, -1, 3])


@pytest.mark.jax
def test_one_hot_out_of_range_jax(jx) -> None:
    ref = nnref.one_hot(ONE_HOT_IDX, 3)
    np.testing.assert_array_equal(ref, [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(jx.nn.one_hot(ONE_HOT_IDX, 3)), ref)
    _recorded("one-hot-out-of-range", "jax", True)


@pytest.mark.torch
def test_one_hot_out_of_range_torch(tch) -> None:
    import torch.nn.functional as F

    assert nnref.one_hot(ONE_HOT_IDX, 3)[2:].sum() == 0
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(tch.tensor([0, 2, -1]), 3)
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(tch.tensor([0, 2, 3]), 3)
    _recorded("one-hot-out-of-range", "torch", False)


# --------------------------------------------------------------------------- losses


def _soft_rows(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = rng.uniform(0.1, 1.0, (4, 5))
    p *= 1.3 / p.sum(-1, keepdims=True)  # rows sum to 1.3
    z = rng.standard_normal((4, 5))
    return p, z, rng.standard_normal(4)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _nnref_dlogits(p: np.ndarray, z: np.ndarray, dy: np.ndarray) -> np.ndarray:
    _, res = nnref.softmax_cross_entropy_with_logits_fwd(p, z)
    dz = nnref.softmax_cross_entropy_with_logits_bwd(res, dy)[1]
    np.testing.assert_allclose(dz, (_softmax(z) - p) * dy[:, None], rtol=1e-12, atol=1e-15)
    return dz


@pytest.mark.jax
def test_soft_label_dlogits_jax(jx, rng) -> None:
    import jax.numpy as jnp
    import optax

    from nnref.oracles.jax import LEGS

    p, z, dy = _soft_rows(rng)
    dz_ref = _nnref_dlogits(p, z, dy)
    _, pull = jx.vjp(lambda v: optax.softmax_cross_entropy(v, jnp.asarray(p)), jnp.asarray(z))
    dz = np.asarray(pull(jnp.asarray(dy))[0])
    true = (_softmax(z) * p.sum(-1, keepdims=True) - p) * dy[:, None]
    np.testing.assert_allclose(dz, true, rtol=1e-12, atol=1e-15)
    assert np.abs(dz - dz_ref).max() > 0.01
    # The oracle leg composes TF's dlogits from optax's loss:
    _, (_, dz_leg) = LEGS["softmax_cross_entropy_with_logits"]((p, z), {}, dy)
    np.testing.assert_allclose(dz_leg, dz_ref, rtol=1e-12, atol=1e-15)
    _recorded("soft-label-dlogits", "jax", False)


@pytest.mark.torch
def test_soft_label_dlogits_torch(tch, rng) -> None:
    import torch.nn.functional as F

    from nnref.oracles.torch import LEGS

    p, z, dy = _soft_rows(rng)
    dz_ref = _nnref_dlogits(p, z, dy)
    zt = tch.tensor(z, requires_grad=True)
    per = F.cross_entropy(zt, tch.tensor(p), reduction="none")
    (dz,) = tch.autograd.grad(per, zt, tch.tensor(dy))
    true = (_softmax(z) * p.sum(-1, keepdims=True) - p) * dy[:, None]
    np.testing.assert_allclose(dz.numpy(), true, rtol=1e-12, atol=1e-15)
    assert np.abs(dz.numpy() - dz_ref).max() > 0.01
    _, (_, dz_leg) = LEGS["softmax_cross_entropy_with_logits"]((p, z), {}, dy)
    np.testing.assert_allclose(dz_leg, dz_ref, rtol=1e-12, atol=1e-15)
    _recorded("soft-label-dlogits", "torch", False)


def _nnref_smoothed(y: np.ndarray, z: np.ndarray, dy: np.ndarray) -> tuple[Any, Any]:
    st = {"from_logits": True, "label_smoothing": 0.1, "reduction": "none"}
    per, res = nnref.categorical_crossentropy_fwd(y, z, **st)
    return per, nnref.categorical_crossentropy_bwd(res, dy)[1]


@pytest.mark.jax
def test_label_smoothing_jax(jx, rng) -> None:
    import jax.numpy as jnp
    import optax

    labels = rng.integers(0, 5, 6)
    y, z, dy = np.eye(5)[labels], rng.standard_normal((6, 5)), rng.standard_normal(6)
    per_ref, dz_ref = _nnref_smoothed(y, z, dy)

    def loss(v: Any) -> Any:
        return optax.softmax_cross_entropy(v, optax.smooth_labels(jnp.asarray(y), 0.1))

    per, pull = jx.vjp(loss, jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(per), per_ref, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(pull(jnp.asarray(dy))[0]), dz_ref, rtol=1e-12, atol=1e-15)
    _recorded("label-smoothing", "jax", True)


@pytest.mark.torch
def test_label_smoothing_torch(tch, rng) -> None:
    import torch.nn.functional as F

    labels = rng.integers(0, 5, 6)
    y, z, dy = np.eye(5)[labels], rng.standard_normal((6, 5)), rng.standard_normal(6)
    per_ref, dz_ref = _nnref_smoothed(y, z, dy)
    zt = tch.tensor(z, requires_grad=True)
    per = F.cross_entropy(zt, tch.tensor(labels), label_smoothing=0.1, reduction="none")
    (dz,) = tch.autograd.grad(per, zt, tch.tensor(dy))
    np.testing.assert_allclose(per.detach().numpy(), per_ref, rtol=1e-12)
    np.testing.assert_allclose(dz.numpy(), dz_ref, rtol=1e-12, atol=1e-15)
    _recorded("label-smoothing", "torch", True)


PROBS = np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])
ONEHOT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def _keras_clip_loss() -> np.ndarray:
    per = nnref.categorical_crossentropy(ONEHOT, PROBS, reduction="none")
    np.testing.assert_allclose(per[0], -np.log(1e-7), rtol=1e-12)  # 16.118
    return per


@pytest.mark.jax
def test_prob_clip_jax(jx) -> None:
    import jax.numpy as jnp

    per_ref = _keras_clip_loss()
    with np.errstate(divide="ignore"):
        port = np.asarray(-jnp.sum(jnp.asarray(ONEHOT) * jnp.log(jnp.asarray(PROBS)), -1))
    assert port[0] == np.inf
    np.testing.assert_allclose(port[1], per_ref[1], rtol=1e-12)  # off the clip they agree
    _recorded("prob-clip", "jax", False)


@pytest.mark.torch
def test_prob_clip_torch(tch) -> None:
    import torch.nn.functional as F

    per_ref = _keras_clip_loss()
    port = F.nll_loss(tch.tensor(PROBS).log(), tch.tensor([0, 2]), reduction="none").numpy()
    assert port[0] == np.inf
    np.testing.assert_allclose(port[1], per_ref[1], rtol=1e-12)
    bce = F.binary_cross_entropy(tch.tensor([0.0]), tch.tensor([1.0])).item()
    assert bce == 100.0  # PyTorch's own clamp for the binary loss: log >= -100
    _recorded("prob-clip", "torch", False)


def _weighted_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = rng.integers(0, 4, 8)
    return labels, rng.standard_normal((8, 4)), rng.uniform(0.5, 2.0, 4)


@pytest.mark.jax
def test_weighted_mean_jax(jx, rng) -> None:
    import jax.numpy as jnp
    import optax

    labels, z, class_w = _weighted_case(rng)
    w = class_w[labels]
    ref = nnref.sparse_categorical_crossentropy(labels, z, from_logits=True, sample_weight=w)
    per = optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(z), jnp.asarray(labels))
    np.testing.assert_allclose(float(jnp.mean(jnp.asarray(w) * per)), ref, rtol=1e-12)
    _recorded("weighted-mean", "jax", True)


@pytest.mark.torch
def test_weighted_mean_torch(tch, rng) -> None:
    import torch.nn.functional as F

    labels, z, class_w = _weighted_case(rng)
    w = class_w[labels]
    ref = nnref.sparse_categorical_crossentropy(labels, z, from_logits=True, sample_weight=w)
    per = nnref.sparse_softmax_cross_entropy_with_logits(labels, z)
    np.testing.assert_allclose(ref, (w * per).sum() / len(w), rtol=1e-12)  # Keras: / N
    mean = F.cross_entropy(tch.tensor(z), tch.tensor(labels), weight=tch.tensor(class_w)).item()
    np.testing.assert_allclose(mean, (w * per).sum() / w.sum(), rtol=1e-12)  # torch: / sum w
    assert abs(mean - ref) > 1e-3
    _recorded("weighted-mean", "torch", False)


# --------------------------------------------------------------------------- optimizers

LR, EPS, STEPS = 0.125, 0.1, 4  # lr exact in float32 (Keras rounds it); eps large to show


def _grads(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal(3) for _ in range(STEPS)]


def _run_nnref(opt: nnref.optim.Optimizer, x0: np.ndarray, gs: list[np.ndarray]) -> np.ndarray:
    params, state = [x0], opt.init([x0])
    for g in gs:
        params, state = opt.update([g], state, params)
    return params[0]


def _adam_textbook(x: np.ndarray, gs: list[np.ndarray]) -> np.ndarray:
    m = v = np.zeros_like(x)
    for t, g in enumerate(gs, 1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - LR * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + EPS)
    return x


def _rmsprop(x: np.ndarray, gs: list[np.ndarray], *, inside: bool) -> np.ndarray:
    v = np.zeros_like(x)
    for g in gs:
        v = 0.9 * v + 0.1 * g * g
        x = x - LR * g / (np.sqrt(v + EPS) if inside else np.sqrt(v) + EPS)
    return x


def _run_optax(jax: Any, tx: Any, x0: np.ndarray, gs: list[np.ndarray]) -> np.ndarray:
    import jax.numpy as jnp
    import optax

    x, state = jnp.asarray(x0), tx.init(jnp.asarray(x0))
    for g in gs:
        u, state = tx.update(jnp.asarray(g), state, x)
        x = optax.apply_updates(x, u)
    return np.asarray(x)


def _run_torch(torch: Any, cls: Any, x0: np.ndarray, gs: list[np.ndarray], **kw: Any) -> Any:
    p = torch.tensor(x0, requires_grad=True)
    opt = cls([p], **kw)
    for g in gs:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy()


@pytest.mark.jax
def test_adam_epsilon_jax(jx, rng) -> None:
    import optax

    x0, gs = rng.standard_normal(3), _grads(rng)
    keras = _run_nnref(nnref.optim.adam(LR, epsilon=EPS), x0, gs)
    got = _run_optax(jx, optax.adam(LR, eps=EPS), x0, gs)
    np.testing.assert_allclose(got, _adam_textbook(x0, gs), rtol=1e-12)
    assert np.abs(got - keras).max() > 1e-3
    _recorded("adam-epsilon", "jax", False)


@pytest.mark.torch
def test_adam_epsilon_torch(tch, rng) -> None:
    x0, gs = rng.standard_normal(3), _grads(rng)
    keras = _run_nnref(nnref.optim.adam(LR, epsilon=EPS), x0, gs)
    got = _run_torch(tch, tch.optim.Adam, x0, gs, lr=LR, eps=EPS)
    np.testing.assert_allclose(got, _adam_textbook(x0, gs), rtol=1e-12)
    assert np.abs(got - keras).max() > 1e-3
    _recorded("adam-epsilon", "torch", False)


def _defaults(fn: Any, *names: str) -> list[Any]:
    sig = inspect.signature(fn).parameters
    return [sig[n].default for n in names]


KERAS_ADAM = _defaults(nnref.optim.adam, "learning_rate", "epsilon")
KERAS_RMSPROP = _defaults(nnref.optim.rmsprop, "learning_rate", "rho", "epsilon")


@pytest.mark.jax
def test_adam_defaults_jax(jx) -> None:
    import optax

    assert KERAS_ADAM == [0.001, 1e-7]
    lr, b1, b2, eps = _defaults(optax.adam, "learning_rate", "b1", "b2", "eps")
    assert lr is inspect.Parameter.empty
    assert (b1, b2, eps) == (0.9, 0.999, 1e-8)
    _recorded("adam-defaults", "jax", False)


@pytest.mark.torch
def test_adam_defaults_torch(tch) -> None:
    assert KERAS_ADAM == [0.001, 1e-7]
    assert _defaults(tch.optim.Adam, "lr", "betas", "eps") == [0.001, (0.9, 0.999), 1e-8]
    _recorded("adam-defaults", "torch", False)


@pytest.mark.jax
def test_rmsprop_epsilon_jax(jx, rng) -> None:
    import optax

    x0, gs = rng.standard_normal(3), _grads(rng)
    keras = _run_nnref(nnref.optim.rmsprop(LR, rho=0.9, epsilon=EPS), x0, gs)
    got = _run_optax(jx, optax.rmsprop(LR, decay=0.9, eps=EPS), x0, gs)
    np.testing.assert_allclose(keras, _rmsprop(x0, gs, inside=True), rtol=1e-12)
    np.testing.assert_allclose(got, keras, rtol=1e-12)
    _recorded("rmsprop-epsilon", "jax", True)


@pytest.mark.torch
def test_rmsprop_epsilon_torch(tch, rng) -> None:
    x0, gs = rng.standard_normal(3), _grads(rng)
    keras = _run_nnref(nnref.optim.rmsprop(LR, rho=0.9, epsilon=EPS), x0, gs)
    got = _run_torch(tch, tch.optim.RMSprop, x0, gs, lr=LR, alpha=0.9, eps=EPS)
    np.testing.assert_allclose(got, _rmsprop(x0, gs, inside=False), rtol=1e-12)
    assert np.abs(got - keras).max() > 1e-3
    _recorded("rmsprop-epsilon", "torch", False)


@pytest.mark.jax
def test_rmsprop_defaults_jax(jx) -> None:
    import optax

    assert KERAS_RMSPROP == [0.001, 0.9, 1e-7]
    lr, decay, eps = _defaults(optax.rmsprop, "learning_rate", "decay", "eps")
    assert lr is inspect.Parameter.empty
    assert (decay, eps) == (0.9, 1e-8)
    _recorded("rmsprop-defaults", "jax", False)


@pytest.mark.torch
def test_rmsprop_defaults_torch(tch) -> None:
    assert KERAS_RMSPROP == [0.001, 0.9, 1e-7]
    assert _defaults(tch.optim.RMSprop, "lr", "alpha", "eps") == [0.01, 0.99, 1e-8]
    _recorded("rmsprop-defaults", "torch", False)


def _sgd_unrounded(x: np.ndarray, gs: list[np.ndarray], lr: float) -> np.ndarray:
    for g in gs:
        x = x - lr * g
    return x


@pytest.mark.jax
def test_lr_float32_jax(jx, rng) -> None:
    import optax

    x0, gs = rng.standard_normal(3), _grads(rng)
    keras = _run_nnref(nnref.optim.sgd(0.1), x0, gs)
    np.testing.assert_array_equal(keras, _sgd_unrounded(x0, gs, float(np.float32(0.1))))
    got = _run_optax(jx, optax.sgd(0.1), x0, gs)
    np.testing.assert_array_equal(got, _sgd_unrounded(x0, gs, 0.1))
    assert np.abs(got - keras).max() > 1e-10
    _recorded("lr-float32", "jax", False)


@pytest.mark.torch
def test_lr_float32_torch(tch, rng) -> None:
    x0, gs = rng.standard_normal(3), _grads(rng)
    keras = _run_nnref(nnref.optim.sgd(0.1), x0, gs)
    np.testing.assert_array_equal(keras, _sgd_unrounded(x0, gs, float(np.float32(0.1))))
    got = _run_torch(tch, tch.optim.SGD, x0, gs, lr=0.1)
    # p.add_(g, alpha=-lr) may fuse the multiply-add: equal up to an ulp, 1e-9 from Keras'.
    np.testing.assert_allclose(got, _sgd_unrounded(x0, gs, 0.1), rtol=1e-15, atol=0)
    assert np.abs(got - keras).max() > 1e-10
    _recorded("lr-float32", "torch", False)


# --------------------------------------------------------------------------- initializers

KERNEL = (3, 3, 16, 32)  # HWIO: Keras fans 144 and 288


def _glorot_limit(shape: tuple[int, ...]) -> float:
    fan_in, fan_out = fans(shape)
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


@pytest.mark.jax
def test_default_initializers_jax(jx) -> None:
    w = np.asarray(jx.nn.initializers.glorot_uniform()(jx.random.key(0), KERNEL, dtype=np.float64))
    ref = glorot_uniform(0, KERNEL, np.float64)
    limit = _glorot_limit(KERNEL)
    for a in (w, ref):
        assert 0.99 * limit < np.abs(a).max() <= limit
    _recorded("default-initializers", "jax", True)


@pytest.mark.torch
def test_default_initializers_torch(tch) -> None:
    limit = _glorot_limit(KERNEL)
    with tch.random.fork_rng():  # the layers draw from PyTorch's global generator
        tch.manual_seed(0)
        conv = tch.nn.Conv2d(16, 32, 3)
        dense = tch.nn.Linear(300, 100)
    bound = 1 / np.sqrt(16 * 9)
    assert 0.99 * bound < conv.weight.detach().abs().max().item() <= bound
    assert conv.bias.detach().abs().max().item() <= bound
    assert bound < 0.75 * limit  # narrower than Keras' glorot_uniform
    assert dense.bias.detach().abs().min().item() > 0  # Keras' bias starts at zeros
    assert dense.weight.detach().abs().max().item() <= 1 / np.sqrt(300)
    _recorded("default-initializers", "torch", False)
