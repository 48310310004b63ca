"""The checker's report and check_grad's options, pinned exactly (the mutation run found
message fragments, option pass-through and linearity tolerances that no test distinguished)."""

from __future__ import annotations

import numpy as np
import pytest

import nnref
from nnref.check import GradientCheckError, check_grad, check_vjp


def _cube(a: np.ndarray) -> np.ndarray:
    return np.sum(a**3)


def test_check_grad_passes_its_options_through(rng) -> None:
    x = rng.standard_normal(4)
    r = check_grad(_cube, (x,), lambda a: 3 * a**2, seed=5, names=["a"], mode="directional")
    assert (r.ok, r.seed, r.mode, r.input_names, r.function) == (
        True,
        5,
        "directional",
        ("a",),
        "_cube",
    )
    assert check_grad(_cube, (x,), lambda a: 3 * a**2).seed == 0
    with pytest.raises(GradientCheckError, match=r"Gradient check of _cube FAILED"):
        check_grad(_cube, (x,), lambda a: 2 * a**2)
    r = check_grad(_cube, (x,), lambda a: 2 * a**2, raise_on_failure=False, names=["a"])
    assert not r.ok
    assert "Worst at da[" in r.message()
    assert r.linearity_error is None
    x32 = x.astype(np.float32)
    assert check_grad(_cube, (x32,), lambda a: 3 * a**2).shadow
    assert not check_grad(_cube, (x32,), lambda a: 3 * a**2, shadow=False).shadow
    r = check_grad(lambda a: np.sum(a * a), (x,), lambda a: 2 * a)
    assert r.function == "<lambda>"


def test_check_grad_function_without_a_name(rng) -> None:
    class Square:
        def __call__(self, a: np.ndarray) -> np.ndarray:
            return np.sum(a * a)

    r = check_grad(Square(), (rng.standard_normal(3),), lambda a: 2 * a)
    assert r.function == "f"


def test_message_of_a_pass_names_mode_dtype_and_shadow(rng) -> None:
    x = rng.standard_normal((3, 2)).astype(np.float32)
    r = check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,), seed=3, mode="exact")
    m = r.message()
    assert m.startswith(
        "Gradient check of sigmoid_fwd passed (exact mode, float32, float64 shadow, seed 3, "
    )
    assert f"{r.n_evals} evaluations, {r.n_checked} comparisons, 0 violations, 0 kinks)." in m
    r64 = check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x.astype(np.float64),), seed=3)
    assert "(exact mode, float64, seed 3, " in r64.message()


def test_message_of_a_directional_failure_names_the_located_entry(rng) -> None:
    x = rng.standard_normal((3, 2))

    def doubled(res, dy):
        return tuple(2 * g for g in nnref.sigmoid_bwd(res, dy))

    r = check_vjp(
        nnref.sigmoid_fwd, doubled, (x,), mode="directional", raise_on_failure=False, names=["z"]
    )
    m = r.message()
    assert m.startswith("Gradient check of sigmoid_fwd FAILED (directional mode, float64, seed 0,")
    assert "Worst at dz[" in m  # bisection located the entry
    assert "(input 0, shape (3, 2)): analytic " in m
    assert "vs numeric " in m
    assert "kink outside" not in m


def test_message_of_kinks_and_of_a_kink_violation() -> None:
    x = np.array([[-1.0, 0.0], [2.0, 0.0]])
    m = check_vjp(nnref.relu_fwd, nnref.relu_bwd, (x,), names=["v"]).message()
    assert "2 kink(s) where one-sided differences disagree were not counted as errors, " in m
    assert "first at dv[0, 1]." in m

    def bad_bwd(res, dy):
        (g,) = nnref.relu_bwd(res, dy)
        return (np.where(x == 0, 2.0 * dy, g),)

    r = check_vjp(nnref.relu_fwd, bad_bwd, (x,), raise_on_failure=False)
    assert "; a kink outside the one-sided derivative range." in r.message()


def test_message_carries_the_linearity_error(rng) -> None:
    x = rng.standard_normal((3, 4))

    def offset(res, dy):
        (g,) = nnref.sigmoid_bwd(res, dy)
        return (g + 1e-3,)

    r = check_vjp(nnref.sigmoid_fwd, offset, (x,), raise_on_failure=False)
    assert r.linearity_error
    assert r.message().endswith(r.linearity_error) or r.linearity_error in r.message()
    assert "None" not in r.message()


@pytest.mark.parametrize("scale", [1 + 1e-9, 1 + 1e-6])
def test_linearity_catches_a_small_nonlinearity_in_the_cotangent(scale, rng) -> None:
    """A VJP that is exact at the probed cotangent but bends off-linear by a relative 1e-9 is
    still caught in float64: the linearity tolerance is GAMMA * eps, not looser."""
    x = rng.standard_normal((4, 3))

    def bent(res, dy):
        (g,) = nnref.sigmoid_bwd(res, dy)
        return (g * np.where(np.abs(dy) > 0.9, scale, 1.0),)

    r = check_vjp(nnref.sigmoid_fwd, bent, (x,), raise_on_failure=False)
    assert not r.ok
    assert r.linearity_error is not None


def _f32_only_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype != np.float32:
        raise TypeError("float32 only")
    return x * x, x


def _f32_only_bwd(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    return (2 * x * dy,)


def test_shadow_falls_back_to_native_precision_unless_required(rng) -> None:
    x = rng.standard_normal(5).astype(np.float32)
    r = check_vjp(_f32_only_fwd, _f32_only_bwd, (x,))
    assert r.ok
    assert not r.shadow
    assert r.dtype == "float32"
    with pytest.raises(
        ValueError, match=r"^gradient check: shadow=True but the function fails in float64$"
    ):
        check_vjp(_f32_only_fwd, _f32_only_bwd, (x,), shadow=True)
    assert not check_vjp(_f32_only_fwd, _f32_only_bwd, (x,), shadow=False).shadow


def test_mixed_precision_inputs_are_checked_at_the_widest() -> None:
    a = np.array([1.0, 2.0], np.float32)
    b = np.array([0.5, -1.5])

    def fwd(u, v):
        return u * v, (u, v)

    def bwd(res, dy):
        u, v = res
        return dy * v, dy * u

    r = check_vjp(fwd, bwd, (a, b))
    assert r.ok
    assert (r.dtype, r.shadow) == ("float64", False)
    with pytest.raises(
        ValueError, match=r"^gradient check: no floating-point input to differentiate$"
    ):
        check_vjp(fwd, bwd, (np.arange(2), np.arange(2)))


def test_check_grad_ignores_none_gradients_of_integer_arguments() -> None:
    x = np.array([0.5, -1.0, 2.0])
    result = check_grad(lambda x, k: (x**2).sum() * k, (x, 3), lambda x, k: (2 * x * k, None))
    assert result.ok
    with pytest.raises(GradientCheckError):
        check_grad(lambda x, k: (x**2).sum() * k, (x, 3), lambda x, k: (2 * x, None))
