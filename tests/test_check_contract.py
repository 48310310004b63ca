"""The checker's contract where the mutation run of nnref/check/_core.py found it unpinned:
the caller's cotangent, the auto-mode threshold, the step scale of all-zero inputs, empty
inputs and outputs, unconverged differences, which failure is reported, the random directions'
signs, evaluation counts and the report's fields."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import nnref
from nnref.check import check_grad, check_vjp
from nnref.check._core import AUTO_EXACT_MAX_ENTRIES, GAMMA, GAMMA_FD64

EPS64 = float(np.finfo(np.float64).eps)


def _relu_fwd_bwd(x: np.ndarray):
    """relu with slope 1 at 0 (a correct subgradient), and its backward."""

    def bwd(res, dy):
        return (np.where(x >= 0, dy, 0.0),)

    return nnref.relu_fwd, bwd


# ----------------------------------------------------------------------- the caller's cotangent


def _two_outputs(x: np.ndarray):
    return (x * x, 3.0 * x), x


def _two_outputs_bwd(x: np.ndarray, dy):
    d1, d2 = dy
    return (2.0 * x * d1 + 3.0 * d2,)


def test_a_cotangent_of_the_wrong_arity_or_shape_is_an_error_naming_both(rng) -> None:
    x = rng.standard_normal((2, 3))
    with pytest.raises(
        ValueError, match=re.escape("gradient check: 'cotangent' has 1 array(s) for 2 output(s)")
    ):
        check_vjp(_two_outputs, _two_outputs_bwd, (x,), cotangent=(np.ones((2, 3)),))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "gradient check: 'cotangent' 1 has shape (3, 2), output 1 has shape (2, 3)"
        ),
    ):
        check_vjp(
            _two_outputs, _two_outputs_bwd, (x,), cotangent=(np.ones((2, 3)), np.ones((3, 2)))
        )
    # a broadcastable (2, 1) cotangent would have silently weighted phi: refused as well
    with pytest.raises(ValueError, match=re.escape("'cotangent' 0 has shape (2, 1)")):
        check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,), cotangent=np.ones((2, 1)))


@pytest.mark.parametrize(
    ("bad", "dtype", "held"),
    [(np.nan, np.float64, "nan"), (-np.inf, np.float64, "-inf"), (1e39, np.float32, "1e+39")],
)
def test_a_non_finite_cotangent_is_refused_naming_it(bad, dtype, held, rng) -> None:
    """A NaN or inf in the caller's cotangent made every comparison "analytic nan vs numeric
    nan", a gradient failure; 1e39 becomes inf in a float32 output's dtype, with or without
    the shadow. It is refused up front, like a non-finite input."""
    x = rng.standard_normal((3, 4)).astype(dtype)
    dy = rng.standard_normal((3, 4))
    dy[1, 2] = bad
    for shadow in (True, False):
        with pytest.raises(
            ValueError,
            match=re.escape(
                f"gradient check: 'cotangent' 0 holds {held} at [1, 2] (1 non-finite entries of "
                f"12 as {np.dtype(dtype)}): finite differences need a finite cotangent"
            ),
        ):
            check_vjp(
                nnref.sigmoid_fwd,
                nnref.sigmoid_bwd,
                (x,),
                cotangent=dy,
                shadow=shadow,
                raise_on_failure=False,
            )
    dy[1, 2] = 0.5
    assert check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,), cotangent=dy).ok


def test_the_cotangent_reaches_backward_in_the_output_dtype(rng) -> None:
    """A float64 or integer cotangent given for a float32 function (native precision) reaches
    backward as float32, exactly as a random cotangent would."""
    x = rng.standard_normal((2, 3)).astype(np.float32)
    seen: list[np.dtype] = []

    def bwd(res, dy):
        seen.append(dy.dtype)
        return nnref.sigmoid_bwd(res, dy)

    for given in (rng.standard_normal((2, 3)), np.array([[1, -2, 3], [0, 1, 2]])):
        seen.clear()
        r = check_vjp(nnref.sigmoid_fwd, bwd, (x,), cotangent=given, shadow=False)
        assert r.ok
        assert set(seen) == {np.dtype(np.float32)}


# ------------------------------------------------------------------------------------- modes


@pytest.mark.parametrize(
    ("n", "mode"), [(AUTO_EXACT_MAX_ENTRIES, "exact"), (AUTO_EXACT_MAX_ENTRIES + 1, "directional")]
)
def test_auto_is_exact_up_to_512_entries(n, mode, rng) -> None:
    assert AUTO_EXACT_MAX_ENTRIES == 512
    x = rng.standard_normal(n)
    assert check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,)).mode == mode


def test_every_evaluation_receives_arrays() -> None:
    """Lists and Python floats are inputs: the function sees ndarrays in every call, the
    caller's own-precision pass included."""
    kinds: set[type] = set()

    def fwd(a, b):
        kinds.update({type(a), type(b)})
        return a * b, (a, b)

    def bwd(res, dy):
        a, b = res
        return dy * b, np.sum(dy * a)

    assert check_vjp(fwd, bwd, ([0.5, -1.5, 2.0], 1.25)).ok
    assert kinds == {np.ndarray}


def _scale_fwd(x, a):
    return x * a, (x, a)


def _scale_bwd(garbage: bool):
    def bwd(res, dy):
        x, a = res
        da = np.asarray(12345.0 if garbage else np.sum(dy * x), dy.dtype)
        return dy * a, da

    return bwd


@pytest.mark.parametrize(
    "a", [np.float32(0.5), np.float16(0.5), np.float64(0.5), 0.5, np.array(0.5, np.float32)]
)
def test_every_floating_scalar_is_differentiated_and_reported(a, rng) -> None:
    """np.float32 and np.float16 scalars were passed through undifferentiated (12 comparisons
    instead of 13), so a garbage d/da passed, while np.float64, Python floats and 0-d arrays
    were checked. Each is a 0-d input now, and the report lists what it differentiated."""
    x = rng.standard_normal((3, 4)).astype(np.result_type(a))
    seen: set[tuple[type, tuple[int, ...]]] = set()

    def fwd(u, v):
        seen.add((type(v), np.shape(v)))
        return _scale_fwd(u, v)

    wrong = check_vjp(fwd, _scale_bwd(True), (x, a), names="xa", raise_on_failure=False)
    assert (wrong.ok, wrong.n_checked, wrong.differentiated) == (False, 13, (0, 1))
    assert wrong.input_names[wrong.worst.input] == "a"
    r = check_vjp(fwd, _scale_bwd(False), (x, a), names="xa")
    assert (r.n_checked, r.input_shapes) == (13, ((3, 4), ()))
    assert f"seed 0, w.r.t. x and a, {r.n_evals} evaluations" in r.message()
    assert seen == {(np.ndarray, ())}


def test_the_report_names_only_the_inputs_it_differentiated(rng) -> None:
    z = rng.standard_normal((4, 5))
    r = check_vjp(
        nnref.sparse_categorical_crossentropy_fwd,
        nnref.sparse_categorical_crossentropy_bwd,
        (rng.integers(0, 5, size=4), z),
        static={"from_logits": True},
        names=("labels", "logits"),
    )
    assert r.differentiated == (1,)
    assert ", w.r.t. logits, " in r.message()
    r = check_vjp(nnref.dense_fwd, nnref.dense_bwd, (z, z.T @ z, z[0]), names="xwb")
    assert ", w.r.t. x, w and b, " in r.message()


def _relu_in_place_fwd(x):
    x[x < 0] = 0.0  # the classic in-place relu: clips the array it was given
    return x.copy(), x


def _relu_fwd(x):
    return np.maximum(x, 0.0), x


def _relu_bwd(x, dy):
    return (dy * (x > 0),)


def _relu_bwd_without_mask(x, dy):  # wrong: relu's mask forgotten
    return (dy.copy(),)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_a_forward_that_modifies_its_input_is_refused_and_the_callers_array_kept(dt) -> None:
    """An in-place relu clipped the caller's x on the first call, so every later evaluation sat
    at zeros, counted as kinks, and a backward without relu's mask passed (10 of 10 seeds). The
    forward now gets copies and is refused when it changes them, whatever the backward."""
    x = np.array([[0.5, -1.5, 2.0], [-0.25, 1.0, -3.0]], dt)
    before = x.copy()
    for bwd in (_relu_bwd_without_mask, _relu_bwd):
        with pytest.raises(
            ValueError,
            match=re.escape(
                "gradient check: fwd modified its input 'x' in place (at [0, 1]: -1.5 became "
                "0.0); finite differences need a pure function"
            ),
        ):
            check_vjp(_relu_in_place_fwd, bwd, (x,), names=["x"], raise_on_failure=False)
        np.testing.assert_array_equal(x, before)
    # the same relu, pure: the wrong backward is rejected, the right one passes
    assert not check_vjp(_relu_fwd, _relu_bwd_without_mask, (x,), raise_on_failure=False).ok
    assert check_vjp(_relu_fwd, _relu_bwd, (x,)).ok


def test_a_forward_that_writes_minus_zero_over_zero_is_refused() -> None:
    """0.0 == -0.0, so a write of -0.0 over an input's 0.0 passed a comparison by value; the
    check compares bits (the sign of zero is data: 1 / x, copysign, atan2 read it)."""
    x = np.array([[0.5, 0.0, -2.0]])

    def fwd(x):
        x[x == 0] = -0.0
        return _relu_fwd(x)

    with pytest.raises(
        ValueError,
        match=re.escape("fwd modified its input 'x' in place (at [0, 1]: 0.0 became -0.0)"),
    ):
        check_vjp(fwd, _relu_bwd, (x,), names=["x"], raise_on_failure=False)


def test_a_forward_that_modifies_an_integer_input_is_refused_too(rng) -> None:
    z = rng.standard_normal((4, 5))
    labels = np.array([0, 3, 1, 4])

    def fwd(lab, logits):
        lab += 1  # a label shift done in place
        return nnref.sparse_categorical_crossentropy_fwd(lab % 5, logits, from_logits=True)

    with pytest.raises(
        ValueError, match=re.escape("fwd modified its input 'labels' in place (at [0]: 0 became 1)")
    ):
        check_vjp(
            fwd, nnref.sparse_categorical_crossentropy_bwd, (labels, z), names=("labels", "z")
        )
    np.testing.assert_array_equal(labels, [0, 3, 1, 4])


def test_the_forward_never_gets_the_callers_own_arrays(rng) -> None:
    x = rng.standard_normal((2, 3))
    labels = np.array([1, 0])
    shared = []

    def fwd(a, lab):
        shared.append(np.shares_memory(a, x) or np.shares_memory(lab, labels))
        return nnref.sparse_categorical_crossentropy_fwd(lab, a, from_logits=True)

    def bwd(res, dy):
        none, g = nnref.sparse_categorical_crossentropy_bwd(res, dy)
        return g, none

    for a in (x, x.astype(np.float32)):
        shared.clear()
        assert check_vjp(fwd, bwd, (a, labels)).ok
        assert shared
        assert not any(shared)


def _probed_steps(args):
    """check_vjp on sum(a * b) for every differentiable input; the largest |perturbation| of
    input 0 seen by the function (its step), in exact mode."""
    base = np.array(args[0], copy=True)
    moved: list[float] = []

    def fwd(*a):
        moved.append(float(np.max(np.abs(np.asarray(a[0], dtype=np.float64) - base))))
        return sum(np.sum(v) for v in a), None

    def bwd(res, dy):
        return tuple(np.full(np.shape(v), float(dy)) for v in args)

    assert check_vjp(fwd, bwd, args, mode="exact").ok
    return max(moved)


def test_an_all_zero_input_is_stepped_on_the_other_inputs_scale() -> None:
    """Steps are powers of two near eps**(1/3) * rms / 1024; an all-zero input takes the RMS of
    the other inputs, and 1024 (a step of eps**(1/3)) when every input is zero."""
    cube = EPS64 ** (1 / 3)
    w = np.full(3, 1e-3)
    assert _probed_steps((np.zeros(3), w)) == 2.0 ** np.round(np.log2(1e-3 / 1024 * cube))
    assert _probed_steps((np.zeros(3), np.zeros(2))) == 2.0 ** np.round(np.log2(cube))


# ------------------------------------------------------------------------- empty and stiff


def _double(a):
    return 2.0 * a, None


def _double_bwd(res, dy):
    return (2.0 * dy,)


def test_empty_inputs_and_outputs_pass_with_nothing_to_compare() -> None:
    r = check_vjp(_double, _double_bwd, (np.zeros((0, 3)),))
    assert (r.ok, r.n_checked, r.worst) == (True, 0, None)
    assert r.message().startswith("Gradient check of _double passed (exact mode")
    # a window larger than the input: an empty output, a zero gradient, all of it confirmed
    x = np.random.default_rng(0).standard_normal((1, 2, 2, 1))
    r = check_vjp(
        nnref.max_pool2d_fwd,
        nnref.max_pool2d_bwd,
        (x,),
        static={"ksize": 3, "strides": 1, "padding": "VALID"},
    )
    assert (r.ok, r.n_checked, r.worst.numeric, r.worst.analytic) == (True, 4, 0.0, 0.0)


def test_finite_differences_that_do_not_converge_are_reported_so() -> None:
    """exp(k x) at x = 1: at k = 120 the Richardson pair agrees within sqrt(eps) at the plain
    step; at k = 160 it does not there, and passes at a narrower step (``NARROW``). sin(K x)
    with K = 2^30 varies faster than any step that ``x + h`` resolves: the correct gradient is
    reported as unconfirmed, judged on the plain step's rounding terms alone (recomputed here)."""
    x = np.array([1.0])
    ok = check_grad(lambda a: np.sum(np.exp(120 * a)), (x,), lambda a: 120 * np.exp(120 * a))
    assert ok.ok
    assert ok.worst.converged
    k = 160.0
    narrow = check_grad(lambda a: np.sum(np.exp(k * a)), (x,), lambda a: k * np.exp(k * a))
    assert narrow.worst.converged
    assert narrow.worst.step < ok.worst.step
    big_k = 2.0**30
    r = check_grad(
        lambda a: np.sum(np.sin(big_k * a)),
        (x,),
        lambda a: big_k * np.cos(big_k * a),
        raise_on_failure=False,
    )
    assert not r.ok
    w = r.worst
    assert (w.status, w.converged, w.kink, w.step) == ("violation", False, False, ok.worst.step)
    assert re.search(
        r"\(step [0-9.e+-]+\); finite differences did not converge here \(halving", r.message()
    )
    assert "the gradient is unconfirmed, not shown wrong." in r.message()
    h, g = w.step, big_k * np.cos(big_k)
    dy = w.analytic / g
    phi = [np.sin(big_k * (1 + t)) * dy for t in (h, -h, h / 2, -h / 2)]
    big_s = 2 * abs(np.sin(big_k) * dy) + max(abs(v) for v in phi)
    rounding = GAMMA_FD64 * EPS64 * 3 * big_s / h + GAMMA * EPS64 * 2 * abs(g * dy)
    assert w.tol == pytest.approx(rounding, rel=1e-9)


def test_the_tolerance_of_a_converged_violation_is_the_full_sum() -> None:
    """A wrong gradient of a smooth function reports the same tolerance as the right one
    (truncation included), and is not mistaken for a kink: its one-sided differences agree."""
    x = np.array([0.3, 1.2, -0.7])

    def f(a):
        return np.sum(np.exp(3 * a))

    right = check_grad(f, (x,), lambda a: 3 * np.exp(3 * a), mode="exact")
    wrong = check_grad(
        f, (x,), lambda a: 3 * np.exp(3 * a) * (1 + 1e-6), mode="exact", raise_on_failure=False
    )
    assert not wrong.ok
    w = wrong.worst
    assert (w.status, w.kink, w.converged) == ("violation", False, True)
    assert "one-sided" not in wrong.message()
    ok_at = {c: right.gradients[0][1][c] for c in range(3)}
    assert w.numeric == ok_at[w.index[0]]  # the same finite differences ...
    assert w.share == pytest.approx(abs(w.analytic - w.numeric) / w.tol)
    assert 5 < w.share < 50  # ... judged against the full tolerance (1e-6 off: ~10x)


def test_gradients_are_reported_in_exact_mode_only(rng) -> None:
    x = rng.standard_normal((2, 3))
    r = check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,), mode="exact")
    analytic, numeric = r.gradients[0]
    assert analytic.dtype == numeric.dtype == np.float64
    assert analytic.shape == numeric.shape == (2, 3)
    np.testing.assert_allclose(numeric, analytic, rtol=1e-8)
    r32 = check_vjp(
        nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x.astype(np.float32),), mode="exact", shadow=False
    )
    assert r32.gradients[0][0].dtype == np.float64
    assert (
        check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,), mode="directional").gradients is None
    )


# ------------------------------------------------------------------ which failure is reported


@pytest.mark.parametrize(("small", "big"), [(5, 50), (50, 5)])
def test_of_two_wrong_entries_the_worse_is_located(small, big, rng) -> None:
    x = rng.standard_normal(64)

    def bwd(res, dy):
        (g,) = nnref.sigmoid_bwd(res, dy)
        g = g.copy()
        g[small] *= 1 + 1e-6
        g[big] *= 1 + 1e-2
        return (g,)

    r = check_vjp(nnref.sigmoid_fwd, bwd, (x,), mode="directional", raise_on_failure=False)
    assert r.worst.index == (big,)


def test_every_input_is_checked_in_every_direction(rng) -> None:
    """Two wrong inputs: each of the 4 directions fails for both (8 failing directions), so a
    failure in the first input does not end the direction."""
    x = rng.standard_normal((30, 20))

    def fwd(a, b):
        return a * b, (a, b)

    def bwd(res, dy):
        a, b = res
        return dy * b * 1.01, dy * a * 0.99

    r = check_vjp(fwd, bwd, (x, x[::-1].copy()), raise_on_failure=False)
    assert (r.mode, r.n_violations) == ("directional", 8)


def test_inputs_after_one_whose_directions_cross_many_kinks_are_still_checked() -> None:
    """x crosses hundreds of relu kinks (explained entry by entry), w is wrong: w still fails
    in the directions that follow x's."""
    rng = np.random.default_rng(0)
    x = np.where(rng.random(900) < 0.4, 0.0, rng.standard_normal(900))
    w = rng.standard_normal(5)

    def fwd(a, b):
        return (np.maximum(a, 0.0), 2.0 * b), None

    def bwd(res, dy):
        dya, dyb = dy
        return np.where(x >= 0, dya, 0.0), 2.0 * dyb * (1 + 1e-3)

    r = check_vjp(fwd, bwd, (x, w), raise_on_failure=False)
    assert not r.ok
    assert r.worst.input == 1
    assert all(k.input == 0 for k in r.kinks)


def test_directions_take_random_signs(rng) -> None:
    """Errors that cancel along the all-ones direction (+e at one entry, -e at another of the
    same step) are caught: directions are random +-1 per entry, not one sign."""
    x = np.full(600, 0.5)

    def bwd(res, dy):
        (g,) = nnref.sigmoid_bwd(res, dy)
        g = g.copy()
        err = 1e-3 * (dy[7] + dy[400])  # linear in dy; + at 7 and - at 400 cancel along h
        g[7] += err
        g[400] -= err
        return (g,)

    r = check_vjp(nnref.sigmoid_fwd, bwd, (x,), raise_on_failure=False)
    assert r.mode == "directional"
    assert not r.ok
    assert r.worst.index in {(7,), (400,)}


# -------------------------------------------------------------------------- counts and report


def test_exact_mode_takes_four_evaluations_per_entry_plus_two_kinks_included() -> None:
    x = np.array([-1.0, 0.0, 2.0, 0.0, 0.5])
    fwd, bwd = _relu_fwd_bwd(x)
    r = check_vjp(fwd, bwd, (x,))
    assert (r.ok, r.n_kinks, r.n_evals) == (True, 2, 2 + 4 * x.size)


def test_directions_accepted_at_one_kink_take_four_evaluations_each() -> None:
    """600 entries, one of them at relu's kink: every direction crosses it and is accepted as a
    kink without bisecting, 4 evaluations per direction plus the two reference passes."""
    x = np.random.default_rng(1).standard_normal(600)
    x[123] = 0.0
    fwd, bwd = _relu_fwd_bwd(x)
    r = check_vjp(fwd, bwd, (x,))
    assert (r.ok, r.mode, r.n_kinks) == (True, "directional", 4)
    assert r.n_evals == 2 + 4 * 4
    assert r.worst.status == "kink"
    assert all(k.direction is not None for k in r.kinks)
    assert "; accepted as a kink: within the one-sided derivatives of each kink." in r.message()
    assert r.notes == (
        "4 direction(s) crossed kinks and were accepted within their one-sided derivatives: an "
        "error smaller than the kinks' jumps can hide there (mode='exact' checks each entry).",
    )


@pytest.mark.parametrize("seed", range(3))
def test_directions_explained_by_many_kinks_keep_their_direction(seed) -> None:
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(900) < 0.4, 0.0, rng.standard_normal(900))
    fwd, bwd = _relu_fwd_bwd(x)
    r = check_vjp(fwd, bwd, (x,), seed=seed)
    assert r.ok
    assert r.n_kinks == 4
    assert all(k.direction is not None and k.index is None and k.kink for k in r.kinks)
    assert "4 direction(s) crossed kinks" in r.message()


def test_a_directional_pass_reports_its_worst_direction(rng) -> None:
    x = rng.standard_normal(600)
    r = check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,))
    assert r.mode == "directional"
    assert r.worst.index is None
    assert r.worst.direction in range(4)
    assert f"along random direction {r.worst.direction} " in r.message()


@pytest.mark.parametrize("wrong_call", [1, 4])
def test_a_precision_failure_in_any_direction_fails_the_check(wrong_call, rng) -> None:
    """A float32 VJP wrong only in one direction (the first or the last): the other, correct
    directions neither clear the failure nor replace it as the worst."""
    x = rng.standard_normal(600).astype(np.float32)
    calls = {"low": 0}

    def bwd(res, dy):
        (g,) = nnref.sigmoid_bwd(res, dy)
        if dy.dtype == np.float32:
            calls["low"] += 1
            if calls["low"] == wrong_call:
                return (g * np.float32(1.001),)
        return (g,)

    r = check_vjp(nnref.sigmoid_fwd, bwd, (x,), raise_on_failure=False)
    assert (r.mode, r.shadow, r.ok) == ("directional", True, False)
    assert r.notes == ("The low-precision VJP disagrees with its float64 shadow beyond rounding.",)
    assert r.precision_worst[4] > 1


def test_a_passing_shadow_check_carries_no_notes(rng) -> None:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    r = check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,))
    assert (r.ok, r.shadow, r.notes) == (True, True, ())
    assert r.precision_worst is not None
    assert "disagrees" not in r.message()


def test_a_function_without_a_name_is_reported_by_its_repr(rng) -> None:
    fwd = functools.partial(nnref.dense_fwd)
    args = (rng.standard_normal((2, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2))
    r = check_vjp(fwd, nnref.dense_bwd, args)
    assert r.function == repr(fwd)
    assert r.message().startswith(f"Gradient check of {fwd!r} passed")


def test_the_names_error_is_worded_exactly(rng) -> None:
    x = rng.standard_normal(3)
    with pytest.raises(
        ValueError, match=r"^gradient check: 'names' must name every positional argument$"
    ):
        check_vjp(nnref.sigmoid_fwd, nnref.sigmoid_bwd, (x,), names=("x", "y"))


def test_an_underflowing_function_fails_at_an_entry_with_its_note() -> None:
    t = np.full((2, 3), 1.3e-265)
    p = np.zeros((2, 3))
    r = check_vjp(
        nnref.mean_squared_error_fwd,
        nnref.mean_squared_error_bwd,
        (t, p),
        raise_on_failure=False,
        mode="exact",
    )
    assert not r.ok
    assert r.worst.index is not None
    assert r.notes == (
        "The function's values at this input are zero or underflow (sum |y * dy| is below the "
        "smallest normal number): the tolerance rests on the values at the perturbed inputs, and "
        "finite differences may not resolve the gradient here; rescale or move the input.",
    )


@pytest.mark.parametrize(("factor", "ok"), [(0.9, True), (1.1, False)])
def test_the_linearity_tolerance_is_the_documented_one(factor, ok, rng) -> None:
    """bwd(0.75 g1 - 1.25 g2) off by factor x GAMMA*eps*scale at one entry, with scale =
    0.75 (|u| + rms u + rms dy) + 1.25 (|v| + rms v + rms dy) recomputed here: 0.9 passes,
    1.1 fails and names the entry."""
    from nnref.check._core import _rms

    x = rng.standard_normal((3, 4))
    seen: list[np.ndarray] = []

    def bent(res, dy):
        seen.append(dy.copy())
        (g,) = nnref.sigmoid_bwd(res, dy)
        if len(seen) >= 3 and np.array_equal(dy, 0.75 * seen[-3] - 1.25 * seen[-2]):
            (u,), (v,) = nnref.sigmoid_bwd(res, seen[-3]), nnref.sigmoid_bwd(res, seen[-2])
            dys = max(_rms(seen[-3]), _rms(seen[-2]))
            scale = 0.75 * (abs(u) + _rms(u) + dys) + 1.25 * (abs(v) + _rms(v) + dys)
            g = g.copy()
            g[1, 2] = (0.75 * u - 1.25 * v)[1, 2] + factor * GAMMA * EPS64 * scale[1, 2]
        return (g,)

    r = check_vjp(nnref.sigmoid_fwd, bent, (x,), raise_on_failure=False, names=["x"])
    assert r.ok is ok
    if not ok:
        assert r.linearity_error.startswith(
            "Backward is not linear in the cotangent: dx[1, 2] of bwd(0.75*g1 -1.25*g2) is "
        )


def test_the_tolerance_keeps_its_subnormal_floor_at_tiny_values() -> None:
    """1e-306 * exp(x): phi is near the smallest normal number, and the tolerance's floor of
    8 subnormal steps per summed output entry (per unit step) is a visible part of it (the
    salted cotangent here is 0.994: at 1e-306 the floor would be only 7e-6 of the rest)."""
    c = 1e-307
    x = np.array([1.0])
    r = check_grad(lambda a: np.sum(c * np.exp(a)), (x,), lambda a: c * np.exp(a))
    assert r.ok
    h, g = r.worst.step, c * np.exp(1.0)
    dy = r.worst.analytic / g
    phi = {t: c * np.exp(1 + t) * dy for t in (h, -h, h / 2, -h / 2)}
    d1 = (phi[h] - phi[-h]) / (2 * h)
    d2 = (phi[h / 2] - phi[-h / 2]) / h
    big_s = 2 * abs(c * np.exp(1.0) * dy) + max(abs(v) for v in phi.values())
    sub = float(np.finfo(np.float64).smallest_subnormal)
    floors = 8 * 1 * sub / h + 8 * sub
    want = (
        2 * abs(d2 - d1) / 3 + GAMMA_FD64 * EPS64 * 3 * big_s / h + GAMMA * EPS64 * 2 * abs(g * dy)
    )
    assert floors / want > 1e-5
    assert r.worst.tol == pytest.approx(want + floors, rel=1e-9, abs=0.0)


def test_a_zero_function_passes_without_notes(rng) -> None:
    """All values 0 (below the smallest normal number) and a zero gradient: nothing to fail,
    so no underflow note either."""
    x = rng.standard_normal((2, 3))
    r = check_vjp(lambda a: (0.0 * a, None), lambda res, dy: (0.0 * dy,), (x,))
    assert (r.ok, r.notes) == (True, ())


def test_an_underflowing_function_fails_in_every_direction() -> None:
    t = np.full(600, 1.3e-265)
    p = np.zeros(600)
    r = check_vjp(
        nnref.mean_squared_error_fwd, nnref.mean_squared_error_bwd, (t, p), raise_on_failure=False
    )
    assert (r.ok, r.mode) == (False, "directional")
    assert r.n_violations == 8  # 4 directions x 2 inputs
    assert "underflow" in r.notes[0]


def test_a_wrong_shape_float32_gradient_names_its_input(rng) -> None:
    x = rng.standard_normal((2, 3)).astype(np.float32)
    with pytest.raises(
        ValueError,
        match=re.escape("gradient check: gradient for 'z' has shape (3, 2), input has (2, 3)"),
    ):
        check_vjp(
            nnref.sigmoid_fwd, lambda res, dy: (np.ones((3, 2), np.float32),), (x,), names="z"
        )


def test_native_float32_passes_correct_gradients_of_a_large_layer(rng) -> None:
    """Without the shadow the VJP's rounding is float32's: a 64x256 @ 256x32 dense layer passes
    in exact and directional mode."""
    args = tuple(
        a.astype(np.float32)
        for a in (
            rng.standard_normal((64, 256)),
            rng.standard_normal((256, 32)) / 16,
            rng.standard_normal(32),
        )
    )
    r = check_vjp(nnref.dense_fwd, nnref.dense_bwd, args, shadow=False)
    assert (r.ok, r.shadow, r.mode) == (True, False, "directional")


def test_a_converged_violation_is_judged_on_the_full_tolerance_truncation_included() -> None:
    """exp(50 x) at x = 1 with a gradient 1e-6 too large: the reported tolerance is the whole
    documented sum (truncation is of the size of rounding here), recomputed as for a pass."""
    k = 50.0
    x = np.array([1.0])
    r = check_grad(
        lambda a: np.sum(np.exp(k * a)),
        (x,),
        lambda a: k * np.exp(k * a) * (1 + 1e-6),
        raise_on_failure=False,
    )
    w = r.worst
    assert (r.ok, w.status, w.converged) == (False, "violation", True)
    h, g = w.step, k * np.exp(k) * (1 + 1e-6)
    dy = w.analytic / g
    phi = {t: np.exp(k * (1 + t)) * dy for t in (h, -h, h / 2, -h / 2)}
    d1 = (phi[h] - phi[-h]) / (2 * h)
    d2 = (phi[h / 2] - phi[-h / 2]) / h
    big_s = 2 * abs(np.exp(k) * dy) + max(abs(v) for v in phi.values())
    trunc = 2 * abs(d2 - d1) / 3
    want = trunc + GAMMA_FD64 * EPS64 * 3 * big_s / h + GAMMA * EPS64 * 2 * abs(g * dy)
    assert trunc > 0.1 * want
    assert w.tol == pytest.approx(want, rel=1e-9)


# ----------------------------------------------------------------------- misuse, said plainly


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_input_is_named(bad, rng) -> None:
    x = rng.standard_normal((3, 4))
    x[1, 2] = bad
    with pytest.raises(
        ValueError, match=re.escape(f"input 'x' holds {bad} at [1, 2] (1 non-finite")
    ):
        check_vjp(nnref.relu_fwd, nnref.relu_bwd, (x,), names=("x",))


def test_a_forward_without_residuals_is_named(rng) -> None:
    x = rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match=r"fwd must return the pair \(y, residuals\), got an array"):
        check_vjp(nnref.relu, nnref.relu_bwd, (x,))
    # Two rows would unpack silently into (y, residuals): still refused.
    with pytest.raises(TypeError, match=r"got an array of shape \(2, 3\)"):
        check_vjp(lambda a: a * 2.0, nnref.relu_bwd, (x,))
    with pytest.raises(TypeError, match="got a tuple of 3 items; for a plain function"):
        check_vjp(lambda a: (a, a, a), nnref.relu_bwd, (x,))


def test_an_array_for_the_argument_tuple_is_named(rng) -> None:
    x = rng.standard_normal(5)
    with pytest.raises(
        TypeError,
        match=r"'args' must be a tuple or list .* got an array of shape \(5,\); pass a single input as \(x,\)",
    ):
        check_vjp(nnref.relu_fwd, nnref.relu_bwd, x)


@pytest.mark.parametrize("shadow", [True, False])
def test_a_gradient_in_another_dtype_fails(shadow, rng) -> None:
    x = rng.standard_normal((3, 4)).astype(np.float32)

    def bwd64(res, dy):  # right values, float64 for a float32 input
        (dx,) = nnref.relu_bwd(res, dy)
        return (dx.astype(np.float64),)

    r = check_vjp(nnref.relu_fwd, bwd64, (x,), shadow=shadow, raise_on_failure=False)
    assert not r.ok
    assert r.n_violations == 0  # the values are right; the dtype is not
    assert r.dtype_error == (
        "Backward returned a float64 gradient for float32 input 'x0': a gradient keeps its "
        "input's dtype."
    )
    assert r.dtype_error in r.message()
    f = lambda a: float(np.sum(a * a))  # noqa: E731
    r = check_grad(f, (x,), lambda a: 2.0 * a.astype(np.float64), raise_on_failure=False)
    assert not r.ok
    assert "float64 gradient for float32 input" in r.message()
    assert check_vjp(nnref.relu_fwd, nnref.relu_bwd, (x,), shadow=shadow).ok
