"""Optimizers: bit-exact with keras.optimizers over many steps, float32 and float64."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnref import _subnormals, optim

FLOATS = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
CONFIGS = [
    pytest.param("sgd", {"learning_rate": 0.1}, id="sgd"),
    pytest.param("sgd", {"learning_rate": 0.1, "momentum": 0.9}, id="sgd-momentum"),
    pytest.param(
        "sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, id="sgd-nesterov"
    ),
    pytest.param("sgd", {"learning_rate": 0.0, "momentum": 0.9}, id="sgd-lr-0"),
    pytest.param("adam", {}, id="adam-default"),
    pytest.param("adam", {"learning_rate": -0.01}, id="adam-lr-negative"),
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


def _keras_optimizer(keras, name: str, kw: dict):
    return {
        "sgd": keras.optimizers.SGD,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
    }[name](**kw)


@pytest.mark.tf
@pytest.mark.parametrize(("name", "kw"), CONFIGS)
@pytest.mark.parametrize("dt", FLOATS)
def test_bit_exact_with_keras(name, kw, dt, rng) -> None:
    from nnref.oracles.tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    shapes = [(3, 4), (4,)]
    params = [rng.standard_normal(s).astype(dt) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dt) for s in shapes] for _ in range(50)]
    kopt = _keras_optimizer(keras, name, kw)
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
    with pytest.raises(
        ValueError, match=r"gradient 0 is float64\(2,\), parameter is float64\(3,\)"
    ):
        opt.update([g[0][:2]], s, p)


def test_constructor_errors() -> None:
    with pytest.raises(TypeError, match="'learning_rate' must be a Python float"):
        optim.sgd(1)
    with pytest.raises(ValueError, match="'learning_rate' must be finite"):
        optim.adam(float("nan"))
    with pytest.raises(ValueError, match="'momentum' must be in"):
        optim.sgd(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="'beta_1' must be in"):
        optim.adam(beta_1=1.0)


# A second, TF-free oracle: Keras 3's update rules written per element on Python floats, from
# the Keras sources (keras/src/optimizers/{sgd,adam,rmsprop}.py), with the float32 rounding
# Keras applies (learning rate variable; SGD momentum and Adam's betas through ops.cast).
def _r32(c: float) -> float:
    return float(np.float32(c))


def _keras_scalar_step(name: str, kw: dict, t: int, g: float, p: float, s: dict) -> float:
    lr = _r32(kw.get("learning_rate", {"sgd": 0.01}.get(name, 0.001)))
    if name == "sgd":
        mu = kw.get("momentum", 0.0)
        if not mu:
            return p - g * lr
        s["momentum"] = s["momentum"] * _r32(mu) - g * lr
        if kw.get("nesterov", False):
            return p + (s["momentum"] * _r32(mu) - g * lr)
        return p + s["momentum"]
    if name == "adam":
        b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
        eps = kw.get("epsilon", 1e-7)
        alpha = lr * (1 - _r32(b2) ** t) ** 0.5 / (1 - _r32(b1) ** t)
        s["m"] = s["m"] + (g - s["m"]) * (1 - b1)
        s["v"] = s["v"] + (g * g - s["v"]) * (1 - b2)
        v = s["v"]
        if kw.get("amsgrad", False):
            s["vhat"] = max(s["vhat"], s["v"])
            v = s["vhat"]
        return p - s["m"] * alpha / (v**0.5 + eps)
    rho, mom, eps = kw.get("rho", 0.9), kw.get("momentum", 0.0), kw.get("epsilon", 1e-7)
    s["v"] = rho * s["v"] + (1 - rho) * g * g
    den = s["v"]
    if kw.get("centered", False):
        s["mg"] = rho * s["mg"] + (1 - rho) * g
        den = den - s["mg"] * s["mg"]
    inc = lr * g / (den + eps) ** 0.5
    if mom > 0:
        s["mom"] = mom * s["mom"] + inc
        return p - s["mom"]
    return p - inc


SCALAR_CONFIGS = [
    *CONFIGS,
    pytest.param("sgd", {"learning_rate": 0.3, "momentum": 0.5}, id="sgd-momentum-0.5"),
    pytest.param("adam", {"learning_rate": 0.02, "beta_1": 0.5, "beta_2": 0.7}, id="adam-betas"),
    pytest.param("adam", {"epsilon": 0.5, "amsgrad": True, "beta_2": 0.6}, id="adam-amsgrad-2"),
    pytest.param("rmsprop", {"rho": 0.6, "centered": True}, id="rmsprop-centered"),
    pytest.param("rmsprop", {"momentum": 0.5}, id="rmsprop-momentum"),
]
SLOTS = {
    "sgd": lambda kw: {"momentum"} if kw.get("momentum") else set(),
    "adam": lambda kw: {"m", "v"} | ({"vhat"} if kw.get("amsgrad") else set()),
    "rmsprop": lambda kw: (
        {"v"}
        | ({"mg"} if kw.get("centered") else set())
        | ({"mom"} if kw.get("momentum") else set())
    ),
}


@pytest.mark.parametrize(("name", "kw"), SCALAR_CONFIGS)
def test_matches_scalar_keras_rules_float64(name, kw, rng) -> None:
    """Runs without TF: 12 float64 steps against the per-element rules; also the slot names."""
    shape = (5,)
    p = [rng.standard_normal(shape)]
    grads = [rng.standard_normal(shape) * rng.uniform(0.1, 3) for _ in range(12)]
    opt = optim.OPTIMIZERS[name](**kw)
    state = opt.init(p)
    assert set(state.slots) == SLOTS[name](kw)
    assert state.iterations == 0
    ref_p = [float(x) for x in p[0]]
    ref_s = [dict.fromkeys(SLOTS[name](kw), 0.0) for _ in ref_p]
    ours = p
    for t, g in enumerate(grads, start=1):
        ours, state = opt.update([g], state, ours)
        ref_p = [
            _keras_scalar_step(name, kw, t, float(gi), pi, si)
            for gi, pi, si in zip(g, ref_p, ref_s, strict=True)
        ]
        assert state.iterations == t
        assert set(state.slots) == SLOTS[name](kw)
        np.testing.assert_allclose(ours[0], ref_p, rtol=1e-14, atol=0)
        for key, arrs in state.slots.items():
            np.testing.assert_allclose(arrs[0], [s[key] for s in ref_s], rtol=1e-13, atol=1e-300)
    assert ours[0].dtype == np.float64


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_float32_update_stays_float32_and_matches_float64_closely(name, rng) -> None:
    kw = {"learning_rate": 0.01, "momentum": 0.9} if name != "adam" else {"learning_rate": 0.01}
    opt = optim.OPTIMIZERS[name](**kw)
    p64 = [rng.standard_normal(6)]
    p32 = [p64[0].astype(np.float32)]
    s64, s32 = opt.init(p64), opt.init(p32)
    for _ in range(5):
        g = rng.standard_normal(6)
        p64, s64 = opt.update([g], s64, p64)
        p32, s32 = opt.update([g.astype(np.float32)], s32, p32)
    assert p32[0].dtype == np.float32
    assert all(a[0].dtype == np.float32 for a in s32.slots.values())
    np.testing.assert_allclose(p32[0], p64[0], rtol=2e-5, atol=2e-6)


def test_constructor_accepts_the_boundaries_and_records_config() -> None:
    assert optim.sgd(0.5, momentum=0.0).config == {
        "learning_rate": 0.5,
        "momentum": 0.0,
        "nesterov": False,
    }
    assert optim.sgd(0.5, momentum=1.0).config["momentum"] == 1.0
    assert optim.adam(beta_1=0.0, beta_2=0.0).config == {
        "learning_rate": 0.001,
        "beta_1": 0.0,
        "beta_2": 0.0,
        "epsilon": 1e-7,
        "amsgrad": False,
    }
    assert optim.rmsprop().config == {
        "learning_rate": 0.001,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
    }
    assert [optim.OPTIMIZERS[n]().name for n in ("sgd", "adam", "rmsprop")] == [
        "sgd",
        "adam",
        "rmsprop",
    ]
    for bad, exc in ((True, TypeError), (float("nan"), ValueError), ("0.1", TypeError)):
        with pytest.raises(exc, match=r"^rmsprop: 'learning_rate' must be"):
            optim.rmsprop(bad)
    with pytest.raises(ValueError, match=r"^sgd: 'momentum' must be in \[0, 1\], got -0.1$"):
        optim.sgd(0.1, momentum=-0.1)
    with pytest.raises(ValueError, match=r"^adam: 'beta_2' must be in \[0, 1\), got 1.0$"):
        optim.adam(beta_2=1.0)
    with pytest.raises(ValueError, match=r"^adam: 'beta_1' must be in \[0, 1\), got -0.5$"):
        optim.adam(beta_1=-0.5)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_errors_name_the_optimizer(name) -> None:
    make = optim.OPTIMIZERS[name]
    with pytest.raises(ValueError, match=rf"^{name}: 'learning_rate' must be finite, got inf$"):
        make(float("inf"))
    opt = make(0.1)
    p = [np.zeros(2)]
    with pytest.raises(ValueError, match=rf"^{name}: 1 gradients for 2 parameters$"):
        opt.update(p, opt.init(p + p), p + p)
    with pytest.raises(ValueError, match=rf"^{name}: gradient 0 is float64\(3,\), parameter"):
        opt.update([np.zeros(3)], opt.init(p), p)


def test_keras_default_arguments() -> None:
    assert optim.sgd().config == {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}


# The fused, threaded updates against the plain whole-array formulas nnref used before them
# (Keras' operation order, each step a fresh NumPy expression): equal bits, for any split.
def _plain_update(name: str, kw: dict, t: int, g, p, s: dict):
    dt = p.dtype.type
    lr = dt(np.float32(kw.get("learning_rate", {"sgd": 0.01}.get(name, 0.001))))
    if name == "sgd":
        mu = dt(np.float32(kw.get("momentum", 0.0)))
        if not kw.get("momentum"):
            return p - g * lr
        s["momentum"] = s["momentum"] * mu - g * lr
        return p + (s["momentum"] * mu - g * lr) if kw.get("nesterov") else p + s["momentum"]
    if name == "adam":
        b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
        b1p, b2p = dt(np.float32(b1)) ** dt(t), dt(np.float32(b2)) ** dt(t)
        alpha = lr * np.sqrt(dt(1) - b2p) / (dt(1) - b1p)
        s["m"] = s["m"] + (g - s["m"]) * dt(1 - b1)
        s["v"] = s["v"] + (g * g - s["v"]) * dt(1 - b2)
        v = s["v"]
        if kw.get("amsgrad"):
            s["vhat"] = v = np.maximum(s["vhat"], v)
        return p - s["m"] * alpha / (np.sqrt(v) + dt(kw.get("epsilon", 1e-7)))
    rho, eps = dt(kw.get("rho", 0.9)), dt(kw.get("epsilon", 1e-7))
    s["v"] = rho * s["v"] + dt(1 - kw.get("rho", 0.9)) * (g * g)
    den = s["v"] + eps
    if kw.get("centered"):
        s["mg"] = rho * s["mg"] + dt(1 - kw.get("rho", 0.9)) * g
        den = s["v"] - s["mg"] * s["mg"] + eps
    inc = lr * g / np.sqrt(den)
    if kw.get("momentum", 0.0) > 0:
        s["mom"] = dt(kw["momentum"]) * s["mom"] + inc
        return p - s["mom"]
    return p - inc


@pytest.mark.parametrize(("name", "kw"), SCALAR_CONFIGS)
@pytest.mark.parametrize("dt", FLOATS)
def test_fused_update_bits_equal_plain_formulas_for_any_thread_count_and_blocks(
    name, kw, dt, rng, monkeypatch
) -> None:
    # Tiny chunks, so the threads' ranges start and end inside parameters; a 0-d parameter too.
    # The default chunk: one range, in the caller without the range bookkeeping.
    shapes = [(7, 5), (5,), (1,), (2, 1, 3), ()]
    params = [rng.standard_normal(s).astype(dt) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dt) for s in shapes] for _ in range(3)]
    ref_p = [p.copy() for p in params]
    ref_s = [{k: np.zeros_like(p) for k in SLOTS[name](kw)} for p in params]
    for t, g in enumerate(grads, start=1):
        ref_p = [_plain_update(name, kw, t, *a) for a in zip(g, ref_p, ref_s, strict=True)]
    opt = optim.OPTIMIZERS[name](**kw)
    runs = [("1", 8, 4), ("2", 8, 4), ("3", 8, 4), ("2", 1 << 18, 4), ("1", 1 << 18, 4)]
    runs += [("2", 8, optim._MIN_CHUNK), ("2", 1 << 18, optim._MIN_CHUNK)]
    for threads, block_bytes, min_chunk in runs:
        monkeypatch.setenv("NNREF_NUM_THREADS", threads)
        monkeypatch.setattr(optim, "_BLOCK_BYTES", block_bytes)  # 8: blocks of 1-4 elements
        monkeypatch.setattr(optim, "_MIN_CHUNK", min_chunk)
        state, ours = opt.init(params), params
        for g in grads:
            ours, state = opt.update(g, state, ours)
        for k, (o, r) in enumerate(zip(ours, ref_p, strict=True)):
            assert o.dtype == dt, (threads, k)
            assert o.shape == r.shape, (threads, k)
            assert o.tobytes() == np.asarray(r).tobytes(), (threads, k)
        for key, arrs in state.slots.items():
            for k, a in enumerate(arrs):
                assert a.tobytes() == ref_s[k][key].tobytes(), (threads, key, k)


@pytest.mark.parametrize(("name", "kw"), CONFIGS)
def test_update_reads_read_only_and_strided_inputs_and_writes_none(name, kw, rng) -> None:
    base = [rng.standard_normal((6, 8)), rng.standard_normal(9)]
    params = [base[0][:, ::2].T, base[1][::3]]  # non-contiguous views
    grads = [rng.standard_normal(p.shape).T.copy().T for p in params]  # Fortran order
    opt = optim.OPTIMIZERS[name](**kw)
    state = opt.update(grads, opt.init(params), params)[1]  # non-zero slots
    arrays = [*params, *grads, *_slot_list(state)]
    for a in arrays:
        a.setflags(write=False)
    before = [a.copy() for a in arrays]
    ref = opt.update([g.copy() for g in grads], state, [p.copy() for p in params])
    new_p, new_s = opt.update(grads, state, params)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(new_p + _slot_list(new_s), ref[0] + _slot_list(ref[1]), strict=True):
        assert a.flags.writeable
        assert a.flags.c_contiguous
        assert not any(np.shares_memory(a, x) for x in arrays)
        assert a.tobytes() == b.tobytes()


def _slot_list(state: optim.OptState) -> list[np.ndarray]:
    return [a for arrs in state.slots.values() for a in arrs]


#: Every configuration with distinct slots, for states handed to another one.
SLOT_CONFIGS = {
    "sgd(momentum=0)": ("sgd", {"learning_rate": 0.1}),
    "sgd(momentum>0)": ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    "adam(amsgrad=False)": ("adam", {}),
    "adam(amsgrad=True)": ("adam", {"amsgrad": True}),
    "rmsprop(centered=False, momentum=0)": ("rmsprop", {}),
    "rmsprop(centered=True, momentum=0)": ("rmsprop", {"centered": True}),
    "rmsprop(centered=False, momentum>0)": ("rmsprop", {"momentum": 0.5}),
    "rmsprop(centered=True, momentum>0)": ("rmsprop", {"centered": True, "momentum": 0.5}),
}


@pytest.mark.parametrize(
    ("mine", "theirs"), [(a, b) for a in SLOT_CONFIGS for b in SLOT_CONFIGS if a != b]
)
def test_state_of_another_configuration_is_refused_by_name(mine, theirs) -> None:
    """rmsprop() once updated with rmsprop(centered=True)'s state returned its 'mg' slot from
    np.empty, never written; other pairs gave 'too many values to unpack' or a KeyError."""
    p = [np.ones(3, np.float32)]
    g = [np.full(3, 0.5, np.float32)]
    opt = optim.OPTIMIZERS[SLOT_CONFIGS[mine][0]](**SLOT_CONFIGS[mine][1])
    state = optim.OPTIMIZERS[SLOT_CONFIGS[theirs][0]](**SLOT_CONFIGS[theirs][1]).init(p)
    with pytest.raises(
        ValueError,
        match=rf"^{opt.name}: the state's slots .* are not this configuration's .*: the state "
        rf"looks like one of {re.escape(theirs)}, this optimizer is {re.escape(mine)}$",
    ):
        opt.update(g, state, p)


@pytest.mark.parametrize(("name", "kw"), CONFIGS)
def test_state_for_other_parameters_is_refused(name, kw) -> None:
    """A state for other shapes or dtypes was accepted (broadcast, or cast into the new slots)
    or failed inside NumPy; each slot now holds one array per parameter, its shape and dtype."""
    opt = optim.OPTIMIZERS[name](**kw)
    p = [np.ones((2, 3), np.float32), np.ones(3, np.float32)]
    g = [np.ones_like(a) for a in p]
    state = opt.init(p)
    opt.update(g, state, p)  # the right state passes
    with pytest.raises(ValueError, match=rf"^{name}: the state's iterations must be an int >= 0"):
        opt.update(g, optim.OptState(-1, state.slots), p)
    with pytest.raises(TypeError, match=rf"^{name}: 'state' must be an OptState from init"):
        opt.update(g, dict(state.slots), p)
    for slot in state.slots:  # none for plain SGD: nothing of the parameters to match
        short = optim.OptState(0, {**state.slots, slot: state.slots[slot][:1]})
        with pytest.raises(
            ValueError, match=rf"^{name}: slot '{slot}' holds 1 arrays for 2 parameters$"
        ):
            opt.update(g, short, p)
        for other, got in (
            ([np.ones((3, 2), np.float32), p[1]], r"float32\(3, 2\)"),  # another shape
            ([p[0].astype(np.float64), p[1]], r"float64\(2, 3\)"),  # another dtype
        ):
            bad = optim.OptState(0, {**state.slots, slot: opt.init(other).slots[slot]})
            with pytest.raises(
                ValueError,
                match=rf"^{name}: slot '{slot}' array 0 is {got}, parameter 0 is float32\(2, 3\)$",
            ):
                opt.update(g, bad, p)


@pytest.mark.parametrize(("name", "kw"), CONFIGS)
@pytest.mark.parametrize("dt", [np.int32, np.int64, bool, np.complex128])
def test_non_floating_parameters_and_gradients_are_refused(name, kw, dt) -> None:
    """SGD once returned int32 parameters unchanged (the learning rate cast to 0); Adam and
    RMSprop raised NumPy's UFuncTypeError."""
    opt = optim.OPTIMIZERS[name](**kw)
    bad = [np.array([10, 20]).astype(dt)]
    good = [np.array([10.0, 20.0])]
    for what, grads, params in (("parameter", bad, bad), ("gradient", bad, good)):
        with pytest.raises(
            TypeError, match=rf"^{name}: {what} 0 must be floating-point, got {np.dtype(dt)}\(2,\)"
        ):
            opt.update(grads, opt.init(params), params)


@pytest.mark.parametrize(("name", "kw"), CONFIGS)
def test_float16_stays_accepted(name, kw) -> None:
    opt = optim.OPTIMIZERS[name](**kw)
    p = [np.ones(3, np.float16)]
    new, state = opt.update([np.full(3, 0.5, np.float16)], opt.init(p), p)
    assert new[0].dtype == np.float16
    assert all(a[0].dtype == np.float16 for a in state.slots.values())


def test_slots_are_read_by_name_not_by_dict_order() -> None:
    """The kernels take the slots positionally: a state whose dict lists 'v' before 'm' must
    still update m as m and v as v."""
    opt = optim.adam(0.01)
    p = [np.array([1.0, -2.0])]
    g = [np.array([0.5, 0.25])]
    state = opt.update(g, opt.init(p), p)[1]
    swapped = optim.OptState(state.iterations, {"v": state.slots["v"], "m": state.slots["m"]})
    want, want_state = opt.update(g, state, p)
    got, got_state = opt.update(g, swapped, p)
    assert got[0].tobytes() == want[0].tobytes()
    for s in ("m", "v"):
        assert got_state.slots[s][0].tobytes() == want_state.slots[s][0].tobytes()


@pytest.mark.parametrize(
    ("name", "arg", "value", "kind"),
    [
        ("sgd", "momentum", None, "a real number"),
        ("sgd", "momentum", "0.9", "a real number"),
        ("sgd", "nesterov", "False", "a bool"),  # truthy: once turned Nesterov on
        ("adam", "beta_1", None, "a real number"),
        ("adam", "epsilon", None, "a real number"),  # once NaN parameters: float64(None)
        ("adam", "epsilon", "1e-7", "a real number"),  # once parsed into the constant
        ("adam", "amsgrad", None, "a bool"),
        ("rmsprop", "rho", None, "a real number"),
        ("rmsprop", "momentum", None, "a real number"),
        ("rmsprop", "epsilon", None, "a real number"),  # once NaN parameters
        ("rmsprop", "centered", "no", "a bool"),
        ("rmsprop", "momentum", True, "a real number"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_refused_by_name(name, arg, value, kind) -> None:
    """None and strings reached NumPy: Python's bare '<=' TypeError, or silently NaN (or parsed)
    constants; a string flag was truthy."""
    with pytest.raises(
        TypeError, match=rf"^{name}: '{arg}' must be {kind}, got {re.escape(repr(value))}$"
    ):
        optim.OPTIMIZERS[name](0.1, **{arg: value})


def test_numeric_hyperparameters_of_any_real_type_stay_accepted() -> None:
    p, g = [np.ones(3)], [np.full(3, 0.5)]
    for opt, same in (
        (optim.sgd(0.1, momentum=1, nesterov=np.True_), optim.sgd(0.1, 1.0, True)),
        (optim.adam(0.1, beta_1=0, epsilon=np.float64(1e-7)), optim.adam(0.1, beta_1=0.0)),
        (optim.rmsprop(0.1, rho=np.float64(0.9), momentum=0), optim.rmsprop(0.1)),
    ):
        want = same.update(g, same.init(p), p)[0][0]
        assert opt.update(g, opt.init(p), p)[0][0].tobytes() == want.tobytes()


@pytest.mark.parametrize(("name", "kw"), CONFIGS)
def test_params_and_grads_must_be_lists_of_arrays(name, kw) -> None:
    """One bare array was taken as a sequence of its rows (a list of 0-d arrays came back);
    None or nested lists raised NumPy's AttributeError."""
    opt = optim.OPTIMIZERS[name](**kw)
    p, g = np.ones((2, 3)), np.full((2, 3), 0.5)
    state = opt.init([p])
    bare = (
        r"must be a list or tuple of arrays, got one array float64\(2, 3\) \(wrap it in a list\)$"
    )
    with pytest.raises(TypeError, match=rf"^{name}: 'params' {bare}"):
        opt.init(p)
    with pytest.raises(TypeError, match=rf"^{name}: 'params' {bare}"):
        opt.update([g], state, p)
    with pytest.raises(TypeError, match=rf"^{name}: 'grads' {bare}"):
        opt.update(g, state, [p])
    with pytest.raises(TypeError, match=rf"^{name}: 'grads' must be a list .*, got NoneType$"):
        opt.update(None, state, [p])
    with pytest.raises(
        TypeError, match=rf"^{name}: gradient 0 must be a NumPy array, got NoneType$"
    ):
        opt.update([None], state, [p])
    with pytest.raises(TypeError, match=rf"^{name}: parameter 0 must be a NumPy array, got list$"):
        opt.update([g], state, [p.tolist()])
    with pytest.warns(PendingDeprecationWarning):  # NumPy discourages np.matrix itself
        pm = np.asmatrix(p)
    with pytest.raises(
        TypeError, match=rf"^{name}: parameter 0 must be a NumPy array, got matrix$"
    ):
        opt.update([g], state, [pm])  # once a NumPy broadcast error
    new, _ = opt.update((g,), state, (p,))  # tuples stay accepted
    assert isinstance(new, list)
    assert new[0].shape == (2, 3)


def _near_underflow(rng, dt, shapes, steps: int):
    """Parameters a few times the smallest normal and gradients around it: most updates and
    slot values are subnormal in IEEE arithmetic."""
    tiny = np.finfo(dt).tiny  # in the dtype: long double's is 0 as a float
    params = [rng.standard_normal(s).astype(dt) * (dt(64) * tiny) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dt) * tiny for s in shapes] for _ in range(steps)]
    return params, grads


@pytest.mark.tf
@pytest.mark.parametrize(("name", "kw"), [*CONFIGS, pytest.param("adam", {"epsilon": 1e-30})])
@pytest.mark.parametrize("dt", FLOATS)
def test_bit_exact_with_keras_where_values_underflow(name, kw, dt, rng) -> None:
    # TF computes with flush-to-zero: in IEEE arithmetic the parameters' last bits (and, with a
    # tiny epsilon, whole Adam steps) differ from Keras'.
    from nnref.oracles.tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    params, grads = _near_underflow(rng, dt, [(6, 5), (5,)], 20)
    kopt = _keras_optimizer(keras, name, kw)
    kvars = [keras.Variable(p, dtype=np.dtype(dt).name) for p in params]
    opt = optim.OPTIMIZERS[name](**kw)
    state, ours = opt.init(params), params
    for g in grads:
        kopt.apply_gradients([(tf.constant(gi), v) for gi, v in zip(g, kvars, strict=True)])
        ours, state = opt.update(g, state, ours)
        for o, v in zip(ours, kvars, strict=True):
            assert o.tobytes() == np.asarray(v.numpy()).tobytes()


@pytest.mark.parametrize(("name", "kw"), CONFIGS)
@pytest.mark.parametrize("dt", FLOATS)
def test_slots_and_parameters_never_hold_subnormals(name, kw, dt, rng) -> None:
    params, grads = _near_underflow(rng, dt, [(40, 30)], 5)
    tiny = np.finfo(dt).tiny
    opt = optim.OPTIMIZERS[name](**kw)
    state, ours = opt.init(params), params
    for g in grads:
        ours, state = opt.update(g, state, ours)
        for a in [*ours, *_slot_list(state)]:
            assert not np.any((a != 0) & (np.abs(a) < tiny))


@pytest.mark.skipif(not _subnormals.hardware_flush(), reason="the processor's mode is emulated")
@pytest.mark.parametrize(("name", "kw"), [*CONFIGS, pytest.param("adam", {"epsilon": 1e-30})])
@pytest.mark.parametrize("dt", [*FLOATS, np.float16, np.longdouble])
def test_emulated_flush_gives_the_processors_bits(name, kw, dt, rng, monkeypatch) -> None:
    # Subnormal gradients and states from outside (operands the mode counts as zero), and
    # results that underflow; 0-d and tiny-chunked parameters, so threads split inside them.
    # float16 and long double: IEEE arithmetic both ways (the mode does not reach them).
    monkeypatch.setattr(optim, "_MIN_CHUNK", 4)
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    params, grads = _near_underflow(rng, dt, [(9, 7), ()], 4)
    grads[0] = [np.asarray(g / dt(4)) for g in grads[0]]  # entries below the smallest normal
    opt = optim.OPTIMIZERS[name](**kw)
    start = opt.init(params)
    start = start._replace(
        slots={k: [np.asarray(np.abs(g) / dt(8)) for g in grads[1]] for k in start.slots}
    )
    runs = []
    for emulate in (False, True):
        if emulate:
            monkeypatch.setattr(_subnormals, "_switch", lambda: None)
        state, ours, arrays = start, params, []
        for g in grads:
            ours, state = opt.update(g, state, ours)
            arrays += [*ours, *_slot_list(state)]
        runs.append(arrays)
    assert any(np.any((a != 0) & (np.abs(a) < np.finfo(dt).tiny)) for a in grads[0])
    for a, b in zip(*runs, strict=True):  # values and signs (long double's padding bytes vary)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


def test_flush_zeroes_subnormals_by_sign_and_keeps_the_rest() -> None:
    for dt in (np.float32, np.float64):
        tiny, sub = np.finfo(dt).tiny, np.finfo(dt).smallest_subnormal
        a = np.array([sub, -sub, tiny, -tiny, 0.0, -0.0, np.inf, -np.inf, np.nan, 1.5], dt)
        out = _subnormals.flush(a.copy())
        want = np.array([0.0, -0.0, tiny, -tiny, 0.0, -0.0, np.inf, -np.inf, np.nan, 1.5], dt)
        assert out.tobytes() == want.tobytes()
        assert _subnormals.flush(-sub).tobytes() == dt(-0.0).tobytes()
        assert _subnormals.flush(dt(2.5)) == 2.5
    half = np.array([np.finfo(np.float16).smallest_subnormal], np.float16)
    assert _subnormals.flush(half.copy())[0] == half[0]  # NumPy's half arithmetic is IEEE


@pytest.mark.skipif(not _subnormals.hardware_flush(), reason="the processor's mode is emulated")
def test_the_processors_mode_is_restored_in_every_thread_even_on_error(monkeypatch) -> None:
    from nnref._threads import parallel_for

    def underflows() -> bool:
        tiny = np.full(40, np.finfo(np.float32).tiny)
        return bool(np.multiply(tiny, np.float32(0.5)).all())

    monkeypatch.setattr(optim, "_MIN_CHUNK", 4)
    monkeypatch.setenv("NNREF_NUM_THREADS", "2")
    opt = optim.adam()
    p = [np.ones(64, np.float32)]
    opt.update([np.full(64, 1e-20, np.float32)], opt.init(p), p)
    seen: list[bool] = []
    parallel_for(lambda lo, hi: seen.append(underflows()), 64, min_chunk=4)
    assert seen == [True, True]
    inside: list[bool] = []

    def fails() -> None:
        with _subnormals.flush_subnormals():
            inside.append(underflows())
            raise KeyError

    with pytest.raises(KeyError):
        fails()
    assert inside == [False]
    assert underflows()


@pytest.mark.skipif(not _subnormals.hardware_flush(), reason="the processor's mode is emulated")
def test_the_switch_is_used_when_the_thread_flushes_already() -> None:
    # PyTorch's set_flush_denormal(True) leaves the mode on for good: the probe once took that
    # for a switch that does not restore, and the updates fell back to the emulation (the
    # 784-512-10 Adam update 5.6 instead of 1.0 ms).
    try:
        with _subnormals.flush_subnormals():
            _subnormals._switch.cache_clear()
            assert _subnormals._switch() is not None
    finally:
        _subnormals._switch.cache_clear()


def test_the_probe_runs_under_a_callers_raising_errstate() -> None:
    # Flushing is an underflow: the probe once raised FloatingPointError out of every update
    # under np.seterr(under="raise").
    opt = optim.adam()
    p = [np.ones(4, np.float32)]
    try:
        _subnormals._switch.cache_clear()
        with np.errstate(all="raise"):
            opt.update([np.full(4, 0.5, np.float32)], opt.init(p), p)
    finally:
        _subnormals._switch.cache_clear()
