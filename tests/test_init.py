"""Initializers: Keras' fans and bounds, statistics, seeding (values cannot match TF's Philox)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnref import init


@pytest.mark.parametrize(
    ("shape", "fans"),
    [((784, 300), (784, 300)), ((5, 3, 7, 64), (105, 960)), ((7,), (7, 7)), ((), (1, 1))],
)
def test_keras_fans(shape, fans) -> None:
    assert init.fans(shape) == fans


def test_glorot_bounds_and_variance() -> None:
    w = init.glorot_uniform(0, (784, 300), np.float64)
    limit = math.sqrt(6 / (784 + 300))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.02)
    k = init.glorot_uniform(1, (5, 3, 7, 64))
    assert k.dtype == np.float32
    assert np.abs(k).max() <= math.sqrt(6 / (105 + 960))


def test_random_normal_uniform_zeros_ones() -> None:
    x = init.random_normal(0, (200, 200), np.float64)
    assert x.std() == pytest.approx(0.05, rel=0.02)
    assert abs(x.mean()) < 0.001
    y = init.random_normal(0, (200, 200), np.float64, stddev=1.0, mean=2.0)
    assert y.std() == pytest.approx(1.0, rel=0.02)
    assert y.mean() == pytest.approx(2.0, abs=0.02)
    u = init.uniform(0, (1000,), minval=0.0, maxval=0.1)
    assert u.min() >= 0
    assert u.max() < 0.1
    assert not init.zeros(None, (2, 2)).any()
    assert (init.ones(None, (2, 2)) == 1).all()


def test_seeding_is_deterministic_and_explicit() -> None:
    a = init.glorot_uniform(7, (3, 4))
    np.testing.assert_array_equal(a, init.glorot_uniform(np.random.default_rng(7), (3, 4)))
    assert not np.array_equal(a, init.glorot_uniform(8, (3, 4)))
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator or an int seed"):
        init.glorot_uniform(None, (3, 4))
    with pytest.raises(ValueError, match="negative dimension"):
        init.zeros(None, (-1, 2))
    with pytest.raises(ValueError, match="minval < maxval"):
        init.uniform(0, (2,), minval=1.0, maxval=0.0)


@pytest.mark.parametrize(
    "fn", [init.glorot_uniform, init.random_normal, init.uniform, init.zeros, init.ones]
)
def test_shape_must_be_a_sequence_of_ints(fn) -> None:
    """Shapes are tuples, as Keras' (fans() reads their length): a bare int once raised
    "'int' object is not iterable", and a float dimension was truncated silently."""
    name = fn.__name__
    for bad in (5, None, "ab"):
        with pytest.raises(TypeError, match=rf"^{name}: 'shape' must be a tuple of ints"):
            fn(0, bad)
    for bad in ((2.5, 3), (True, 2)):
        with pytest.raises(TypeError, match=rf"^{name}: 'shape' must hold ints, got"):
            fn(0, bad)
    for ok in ((5,), [3, 4], np.array([3, 4]), (np.int64(2),), ()):
        assert fn(0, ok).shape == tuple(int(d) for d in ok)


@pytest.mark.tf
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_initializers_match_keras_statistics(dt) -> None:
    from nnref.verify import INITIALIZERS, run_initializer

    for name, shape in INITIALIZERS:
        r = run_initializer(name, shape, dt)
        assert r.ok, (name, shape, r.error, r.detail)


_GLOROT, _NORMAL = init.glorot_uniform, init.random_normal


@pytest.mark.tf
@pytest.mark.parametrize(
    ("name", "shape", "wrong", "stat"),
    [
        (
            "glorot_uniform",
            (784, 300),
            lambda rng, s, dt: init.uniform(rng, s, dt, minval=-0.0738, maxval=0.0738),
            "max|w|",
        ),
        (
            "glorot_uniform",
            (784, 300),
            lambda rng, s, dt: _GLOROT(rng, s, dt) * dt.type(1.02),
            "max|w|",
        ),
        ("random_normal", (300, 400), lambda rng, s, dt: _NORMAL(rng, s, dt, stddev=0.051), "std"),
        ("random_normal", (300, 400), lambda rng, s, dt: _NORMAL(rng, s, dt, mean=0.003), "mean"),
    ],
    ids=["fan-in-only", "limit-2%-high", "stddev-2%-high", "mean-shifted"],
)
def test_initializer_check_rejects_a_wrong_distribution(monkeypatch, name, shape, wrong, stat):
    from nnref.verify import run_initializer

    monkeypatch.setattr(init, name, wrong)
    r = run_initializer(name, shape, np.float64)
    assert not r.ok
    assert r.worst == stat
    assert r.error > 5


def test_a_bad_rng_is_named_with_the_function() -> None:
    for fn in (init.glorot_uniform, init.random_normal, init.uniform):
        with pytest.raises(TypeError, match=rf"^{fn.__name__}: 'rng' must be a numpy"):
            fn("abc", (3, 4))
    for fn in (init.glorot_uniform, init.random_normal, init.uniform):  # NumPy named neither
        with pytest.raises(
            ValueError, match=rf"^{fn.__name__}: an int seed for 'rng' must be >= 0, got -1$"
        ):
            fn(-1, (3, 4))


RANDOM = [init.glorot_uniform, init.random_normal, init.uniform]


@pytest.mark.parametrize("fn", RANDOM)
@pytest.mark.parametrize("dt", [np.int32, np.int64, bool, np.complex128])
def test_random_initializers_refuse_non_floating_dtypes(fn, dt) -> None:
    """An int or bool dtype once truncated the draws silently (glorot_uniform gave 0 and -1,
    random_normal all 0, bool all True); Keras' RandomNormal and RandomUniform refuse them."""
    with pytest.raises(
        TypeError,
        match=rf"^{fn.__name__}: 'dtype' must be a floating-point dtype such as float32, "
        rf"got {np.dtype(dt)} \(nnref does not cast silently\)$",
    ):
        fn(0, (3, 4), dt)


@pytest.mark.parametrize("fn", [*RANDOM, init.zeros, init.ones])
def test_initializer_dtypes_none_is_float32_and_bad_ones_are_named(fn) -> None:
    """dtype=None gave NumPy's float64; Keras' None is floatx, float32. An unknown dtype raised
    NumPy's "data type 'bogus' not understood"."""
    assert fn(0, (3, 4), None).dtype == np.float32
    for dt in (np.float16, np.float32, np.float64, "float64"):
        assert fn(0, (3, 4), dt).dtype == np.dtype(dt)
    with pytest.raises(TypeError, match=rf"^{fn.__name__}: 'dtype' 'bogus' is not a NumPy dtype$"):
        fn(0, (3, 4), "bogus")


def test_zeros_and_ones_keep_any_dtype_as_keras() -> None:
    assert init.zeros(None, (2,), np.int32).dtype == np.int32
    assert init.ones(None, (2,), bool).tolist() == [True, True]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: init.random_normal(0, (2,), stddev=None), TypeError, "'stddev' must be a real"),
        (lambda: init.uniform(0, (2,), minval=None), TypeError, "'minval' must be a real"),
        (lambda: init.uniform(0, (2,), minval=-np.inf), ValueError, "'minval' -inf is not finite"),
        (
            lambda: init.uniform(0, (2,), minval=-1e39, maxval=1e39),
            ValueError,
            r"'minval' -1e\+39 is not finite in float32",
        ),
        (lambda: init.random_normal(0, (2,), mean=np.nan), ValueError, "'mean' nan is not finite"),
    ],
    ids=["stddev-none", "minval-none", "minval-inf", "float32-overflow", "mean-nan"],
)
def test_distribution_parameters_are_finite_numbers_in_the_dtype(call, exc, match) -> None:
    """NumPy's bare TypeError (None), an OverflowError (-inf), or silently -inf draws (±1e39 in
    float32) before."""
    with pytest.raises(exc, match=match):
        call()
    assert np.isfinite(init.uniform(0, (3,), np.float64, minval=-1e39, maxval=1e39)).all()
