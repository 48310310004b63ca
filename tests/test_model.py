"""The training model's fused conv + bias + relu passes equal the op chain; ``--fast``."""

from __future__ import annotations

import numpy as np
import pytest

import nnref
from nnref.check.compare import assert_close
from nnref.cli import main
from nnref.ops.conv import Conv2DDFTResiduals, Conv2DResiduals
from nnref.train import model as m
from nnref.train.loop import build_run, loss_and_grads, make_config, save_checkpoint
from nnref.train.recipes import RECIPES


def _op_chain(layers, params, x, dy):
    """Forward and backward one public op per layer (conv2d_fwd, bias_add_fwd, relu_fwd, ...):
    what the model computed before its conv layers fused bias and relu."""
    res, k = [], 0
    for layer in layers:
        c = layer.config
        if layer.kind == "conv2d":
            x, rc = nnref.conv2d_fwd(x, params[k], strides=c["strides"], padding=c["padding"])
            x, rb = nnref.bias_add_fwd(x, params[k + 1])
            r = (rc, rb)
        elif layer.kind == "relu":
            x, r = nnref.relu_fwd(x)
        elif layer.kind == "max_pool2d":
            x, r = nnref.max_pool2d_fwd(x, ksize=c["ksize"], strides=c["strides"])
        elif layer.kind == "flatten":
            r, x = x.shape, x.reshape(len(x), -1)
        else:
            x, r = nnref.dense_fwd(x, params[k], params[k + 1])
        res.append(r)
        k += layer.n_params
    out, g = x, dy
    grads = [None] * len(params)
    for layer, r in zip(reversed(layers), reversed(res), strict=True):
        k -= layer.n_params
        if layer.kind == "conv2d":
            g, grads[k + 1] = nnref.bias_add_bwd(r[1], g)
            g, grads[k] = nnref.conv2d_bwd(r[0], g)
        elif layer.kind == "relu":
            (g,) = nnref.relu_bwd(r, g)
        elif layer.kind == "max_pool2d":
            (g,) = nnref.max_pool2d_bwd(r, g)
        elif layer.kind == "flatten":
            g = g.reshape(r)
        else:
            g, grads[k], grads[k + 1] = nnref.dense_bwd(r, g)
    return out, grads


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_fused_conv_bias_relu_equals_the_op_chain(dt, rng, monkeypatch) -> None:
    """Same output and kernel gradients bit for bit (the fused passes run the same element-wise
    operations, +0.0 where the relu is off); bias gradients sum in cache-sized chunks, so they
    agree to rounding. Small chunks: several per thread."""
    monkeypatch.setattr(m, "_FUSED_CHUNK_BYTES", 256)
    layers = RECIPES["cnn"].build(10)
    params = m.init_params(layers, (8, 8, 1), rng, dt)
    params = [p + dt(0.01) * rng.standard_normal(p.shape).astype(dt) for p in params]
    x = rng.standard_normal((6, 8, 8, 1)).astype(dt)
    dy = rng.standard_normal((6, 10)).astype(dt)
    out, res = m.forward(layers, params, x)
    grads = m.backward(layers, res, dy, len(params))
    want_out, want = _op_chain(layers, params, x, dy)
    np.testing.assert_array_equal(out, want_out)
    assert res[1].y.min() == 0  # some relu units are off
    for i, (g, w) in enumerate(zip(grads, want, strict=True)):
        assert g.dtype == w.dtype
        if i in (1, 3):  # conv biases
            assert_close(g, w, rtol=1e-13 if dt == np.float64 else 1e-6, what=f"grad {i}")
        else:
            np.testing.assert_array_equal(g, w)


def test_bias_gradient_has_the_same_bits_for_any_thread_count(rng, monkeypatch) -> None:
    monkeypatch.setattr(m, "_FUSED_CHUNK_BYTES", 256)
    y = np.maximum(rng.standard_normal((7, 5, 5, 8)).astype(np.float32), 0)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    out = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        out.append(m._relu_bias_bwd(y, dy))
    for dz, db in out[1:]:
        np.testing.assert_array_equal(dz, out[0][0])
        np.testing.assert_array_equal(db, out[0][1])
    assert out[0][0].tobytes() == (dy * (y > 0)).tobytes()  # TF's ReluGrad, -0.0 included


def test_dft_run_agrees_with_direct() -> None:
    """conv_algorithm reaches every conv layer (on 32 8x8 digits "auto" keeps both direct:
    conv2 is too little work, so "dft" forces it); gradients agree with the exact run to
    float64 rounding."""
    exact = build_run(make_config("cnn", dtype="float64"))
    fast = build_run(make_config("cnn", dtype="float64", conv_algorithm="dft"))
    idx = np.arange(32)
    _, res = m.forward(fast.layers, fast.params, fast.x_train[idx], conv_algorithm="auto")
    assert [type(res[i]) for i in (0, 3)] == [Conv2DResiduals, Conv2DResiduals]
    _, res = m.forward(fast.layers, fast.params, fast.x_train[idx], conv_algorithm="dft")
    assert [type(res[i]) for i in (0, 3)] == [Conv2DDFTResiduals, Conv2DDFTResiduals]
    loss, _, g = loss_and_grads(exact, idx)
    loss_f, _, g_f = loss_and_grads(fast, idx)
    assert abs(loss - loss_f) <= 1e-12 * abs(loss)
    for a, b in zip(g_f, g, strict=True):
        assert_close(a, b, rtol=1e-12)


def test_conv_algorithm_is_part_of_the_checkpoint_key(tmp_path) -> None:
    """Checkpoints from before the option keep their key (direct is left out of it); a fast
    run cannot resume an exact one (its numbers differ beyond the last bits)."""
    exact = make_config("cnn", steps=1)
    assert "conv_algorithm" not in exact.key()
    fast = make_config("cnn", steps=1, conv_algorithm="auto")
    assert fast.key() != exact.key()
    run = build_run(exact)
    save_checkpoint(run, tmp_path / "c.npz")
    from nnref.train.loop import load_checkpoint

    with pytest.raises(ValueError, match=r"conv algorithm \(--fast\) direct \(this run: auto\)"):
        load_checkpoint(build_run(fast), tmp_path / "c.npz")
    with pytest.raises(ValueError, match="conv_algorithm 'fft': must be one of"):
        make_config("cnn", conv_algorithm="fft")


def test_cli_fast_flag(capsys) -> None:
    assert main(["train", "cnn", "--fast", "--steps", "2", "--no-progress"]) == 0
    assert "conv algorithm auto" in capsys.readouterr().out
