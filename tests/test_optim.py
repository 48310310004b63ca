"""Optimizers: bit-exact with keras.optimizers over many steps, float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest

from nnref import optim

FLOATS = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
CONFIGS = [
    pytest.param("sgd", {"learning_rate": 0.1}, id="sgd"),
    pytest.param("sgd", {"learning_rate": 0.1, "momentum": 0.9}, id="sgd-momentum"),
    pytest.param(
        "sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, id="sgd-nesterov"
    ),
    pytest.param("adam", {}, id="adam-default"),
    pytest.param("adam", {"learning_rate": 0.01, "epsilon": 0.1}, id="adam-eps-0.1"),
    pytest.param("adam", {"learning_rate": 0.01, "amsgrad": True}, id="adam-amsgrad"),
    pytest.param("rmsprop", {}, id="rmsprop-default"),
    pytest.param("rmsprop", {"learning_rate": 0.01, "epsilon": 0.1}, id="rmsprop-eps-0.1"),
    pytest.param(
        "rmsprop",
        {"learning_rate": 0.01, "momentum": 0.9, "centered": True},
        id="rmsprop-centered-momentum",
    ),
]


@pytest.mark.tf
@pytest.mark.parametrize(("name", "kw"), CONFIGS)
@pytest.mark.parametrize("dt", FLOATS)
def test_bit_exact_with_keras(name, kw, dt, rng) -> None:
    from nnref.oracles.tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    shapes = [(3, 4), (4,)]
    params = [rng.standard_normal(s).astype(dt) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dt) for s in shapes] for _ in range(50)]
    kopt = {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
    }[name](**kw)
    kvars = [keras.Variable(p, dtype=np.dtype(dt).name) for p in params]
    opt = optim.OPTIMIZERS[name](**kw)
    state = opt.init(params)
    ours = params
    for g in grads:
        kopt.apply_gradients([(tf.constant(gi), v) for gi, v in zip(g, kvars, strict=True)])
        ours, state = opt.update(g, state, ours)
    for o, v in zip(ours, kvars, strict=True):
        assert o.dtype == dt
        np.testing.assert_array_equal(o, np.asarray(v.numpy()))
    assert state.iterations == int(kopt.iterations.numpy()) == 50


def test_float64_learning_rate_is_float32_rounded() -> None:
    opt = optim.sgd(0.1)
    p = [np.array([1.0])]
    new, _ = opt.update([np.array([1.0])], opt.init(p), p)
    assert new[0][0] == 1.0 - float(np.float32(0.1))
    assert new[0][0] != 0.9


def test_update_is_pure_and_validates(rng) -> None:
    p = [rng.standard_normal(3)]
    g = [rng.standard_normal(3)]
    p0, g0 = p[0].copy(), g[0].copy()
    opt = optim.adam()
    s = opt.init(p)
    m0 = s.slots["m"][0].copy()
    opt.update(g, s, p)
    np.testing.assert_array_equal(p[0], p0)
    np.testing.assert_array_equal(g[0], g0)
    np.testing.assert_array_equal(s.slots["m"][0], m0)
    with pytest.raises(
        ValueError, match=r"adam: gradient 0 is float32\(3,\), parameter is float64\(3,\)"
    ):
        opt.update([g[0].astype(np.float32)], s, p)
    with pytest.raises(ValueError, match="1 gradients for 2 parameters"):
        opt.update(g, s, [p[0], p[0]])


def test_constructor_errors() -> None:
    with pytest.raises(TypeError, match="'learning_rate' must be a Python float"):
        optim.sgd(1)
    with pytest.raises(ValueError, match="must be positive"):
        optim.adam(-0.1)
    with pytest.raises(ValueError, match="'momentum' must be in"):
        optim.sgd(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="'beta_1' must be in"):
        optim.adam(beta_1=1.0)
