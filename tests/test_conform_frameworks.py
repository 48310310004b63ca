"""``nnref conform jax|torch``: each framework itself as a conformance target, and the README's
cross-framework matrix generated from those runs.

NumPy-only tests first: the runner's handling of conventions that refuse inputs, change output
shapes, follow the profile on drawn inputs, or change an optimizer's trajectory, each on a small
target written here. Then one run per framework (marker ``jax`` / ``torch``): it passes under its
own profile and fails under ``tf`` on exactly the cases where its convention's expected values
differ from TF's, each failure naming that convention. The finite-difference and Hypothesis
checks of the frameworks run on a few ops only (JAX compiles every new shape; PyTorch's
finite differences take minutes over all cases).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nnref
from nnref.cases import TABLES
from nnref.cases.conventions import BY_ID, PROFILES
from nnref.check.compare import max_rel_error
from nnref.conform import ConformanceReport, Row, expected_values, load_target, plan, run
from nnref.oracles import semantics
from nnref.verify import tolerance

#: Ops neither framework has: Keras' probability-input losses and the KFold batching.
NOT_PROVIDED = [
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "kfold_sizes",
    "kfold_batches",
]

FRAMEWORKS = [
    pytest.param("jax", marks=pytest.mark.jax, id="jax"),
    pytest.param("torch", marks=pytest.mark.torch, id="torch"),
]


def _says(convention: str) -> str:
    return BY_ID[convention].says


# --------------------------------------------------------------------------- the runner


def _one_hot_raising(indices, depth, *, on_value=1.0, off_value=0.0, axis=-1, dtype=np.float32):
    """A one_hot that refuses indices outside [0, depth), as F.one_hot."""
    idx = np.asarray(indices)
    if ((idx < 0) | (idx >= depth)).any():
        raise IndexError(f"one_hot: index out of [0, {depth})")
    dt = np.dtype(dtype)
    out = np.where(idx[..., None] == np.arange(depth), dt.type(on_value), dt.type(off_value))
    return np.moveaxis(out, -1, axis)


def test_a_convention_that_refuses_inputs_tf_accepts_gets_a_raises_check() -> None:
    torch_like = {"one_hot": _one_hot_raising}
    own = run(torch_like, profile="torch", examples=0)
    assert own.ok, own.summary()
    refused = {r.case for r in own.rows if r.check == "raises"}
    assert refused == {"out-of-range-rows-zero", "negative-rows-zero", "axis-0-on-off-values"}
    tf = run(torch_like, profile="tf", examples=0)
    assert {r.case for r in tf.failures} == refused
    for r in tf.failures:  # the refusal is recognised, not only reported
        assert r.check in ("signature", "forward")
        assert "the forward call raised IndexError" in r.message
        assert _says("one-hot-out-of-range-raises") in r.matches


def _optax_style_adam(
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    amsgrad: bool = False,
) -> nnref.optim.Optimizer:
    """Adam written from its paper's form: epsilon after bias correction, no default learning
    rate; AMSGrad keeps the maximum of the corrected second moment."""

    def init(params):
        zeros = [np.zeros_like(p) for p in params]
        return nnref.optim.OptState(0, {"m": zeros, "v": zeros, "vmax": zeros})

    def update(grads, state, params):
        t = state.iterations + 1
        slots = {"m": [], "v": [], "vmax": []}
        new = []
        for g, p, m, v, vmax in zip(grads, params, *state.slots.values(), strict=True):
            m = beta_1 * m + (1 - beta_1) * g
            v = beta_2 * v + (1 - beta_2) * g * g
            v_hat = v / (1 - beta_2**t)
            if amsgrad:
                vmax = v_hat = np.maximum(vmax, v_hat)
            for k, a in zip(slots, (m, v, vmax), strict=True):
                slots[k].append(a)
            new.append(p - learning_rate * (m / (1 - beta_1**t)) / (np.sqrt(v_hat) + epsilon))
        return new, nnref.optim.OptState(t, slots)

    return nnref.optim.Optimizer("adam", {}, init, update)


def test_optimizer_trajectories_and_refusals_follow_the_profile() -> None:
    optax_like = {"adam": _optax_style_adam}
    own = run(optax_like, profile="jax")
    assert own.ok, own.summary()
    defaults = [r for r in own.rows if r.case == "defaults"]
    assert all(r.message.startswith("refused: TypeError") for r in defaults)
    tf = run(optax_like, profile="tf")
    # float32 hides the learning rate's rounding and, at lr 0.02, epsilon's place.
    assert {r.id for r in tf.failures} == {
        f"adam/trajectory/{case}/{dt}"
        for case in ("defaults", "lr-0.02", "epsilon-0.1", "amsgrad")
        for dt in ("float64", "float32")
    } - {"adam/trajectory/lr-0.02/float32"}
    for r in tf.failures:
        assert _says("adam-optax") in r.matches, r.id


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _torch_port_pool(x, *, ksize, strides, padding="VALID"):
    """max_pool2d with SAME ported as PyTorch users do, symmetric pads (k - 1) // 2 in floor
    mode (F.max_pool2d(padding=(k - 1) // 2)), refusing an empty output as F.max_pool2d."""
    if padding == "SAME":
        k = _pair(ksize)
        padding = [[0, 0], [(k[0] - 1) // 2] * 2, [(k[1] - 1) // 2] * 2, [0, 0]]
    y, res = nnref.max_pool2d_fwd(x, ksize=ksize, strides=strides, padding=padding)
    if 0 in y.shape[1:3]:
        raise RuntimeError("Output size is too small")
    return y, res


def _torch_port_conv2d(x, w, *, strides=1, padding="VALID", dilations=1):
    """conv2d with a strided SAME ported as F.conv2d(padding=k // 2) of the dilated kernel."""
    s, d = _pair(strides), _pair(dilations)
    if padding == "SAME" and max(s) > 1:
        p = [(d[a] * (w.shape[a] - 1) + 1) // 2 for a in (0, 1)]
        padding = [[0, 0], [p[0], p[0]], [p[1], p[1]], [0, 0]]
    return nnref.conv2d_fwd(x, w, strides=strides, padding=padding, dilations=dilations)


def _rows(target: Any, profile: str, keep: set[str], **kw: Any) -> dict[str, Row]:
    """The rows of the tasks whose case is in ``keep`` (cases and ``drawn``), by id."""
    _, tasks, _ = plan(target, profile=profile, **kw)
    return {t.id: t.run() for t in tasks if t.case in keep}


def test_shapes_and_drawn_inputs_follow_the_profile() -> None:
    port = {"max_pool2d_fwd": _torch_port_pool, "max_pool2d_bwd": nnref.max_pool2d_bwd}
    keep = {"2x2-stride-2-same-odd-input", "2x3-window-strides-1x2", "drawn"}
    kw = {"dtypes": ["float64"], "examples": 30}
    own = _rows(port, "torch", keep, **kw)
    assert [i for i, r in own.items() if not r.ok] == []
    assert "max_pool2d/property/drawn/float64" in own
    tf = _rows(port, "tf", keep, **kw)
    by_id = {i: r for i, r in tf.items() if not r.ok}
    shape = by_id["max_pool2d/signature/2x2-stride-2-same-odd-input/float64"]
    assert shape.message == "shape (2, 2, 3, 2), expected (2, 3, 4, 2)"
    assert _says("pool-torch-same-port") in shape.matches
    vjp = by_id["max_pool2d/vjp/2x2-stride-2-same-odd-input/float64"]
    assert vjp.status == "not compared"  # a cotangent of TF's shape cannot be applied
    drawn = by_id["max_pool2d/property/drawn/float64"]
    assert "pool-same-pad-side" in drawn.pins
    assert _says("pool-torch-same-port") in drawn.matches
    # A drawn output of another shape is compared as such, not fed TF's cotangent.
    conv = {"conv2d_fwd": _torch_port_conv2d, "conv2d_bwd": nnref.conv2d_bwd}
    assert _rows(conv, "torch", {"drawn"}, **kw)["conv2d/property/drawn/float64"].ok
    drawn = _rows(conv, "tf", {"drawn"}, **kw)["conv2d/property/drawn/float64"]
    assert "y: shape" in drawn.message
    assert _says("same-torch-port") in drawn.matches


def _np_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Keras' accuracy with np.argmax (NaN wins): one-hot rows, (N, 1) or (N,) labels."""
    if y_true.shape == y_pred.shape:
        y_true = np.argmax(y_true, -1)
    elif y_true.shape == (*y_pred.shape[:-1], 1):
        y_true = y_true[..., 0]
    return float(np.mean(y_true == np.argmax(y_pred, -1)))


def test_conventions_are_chosen_per_op_and_pin() -> None:
    jax_like = {"argmax": lambda x, axis=-1: np.argmax(x, axis=axis), "accuracy": _np_accuracy}
    assert PROFILES["jax"].choose[("argmax", "argmax-nan")] == "argmax-nan-wins"
    assert PROFILES["jax"].choose[("accuracy", "argmax-nan")] == "accuracy-argmax-nan-wins"
    own = run(jax_like, profile="jax", ops=["argmax", "accuracy"], examples=0)
    assert own.ok, own.summary()
    tf = run(jax_like, profile="tf", ops=["argmax", "accuracy"], examples=0)
    nan = {r.id: r.matches for r in tf.failures}
    assert set(nan) == {
        f"{op}/forward/{case}/{dt}"
        for op, case in (("argmax", "nan-skipped"), ("accuracy", "ties-and-nan"))
        for dt in ("float64", "float32")
    }
    assert all(any("NaN-winning" in m or "NaN winning" in m for m in ms) for ms in nan.values())


def test_the_matrix_command_and_its_errors() -> None:
    with pytest.raises(SystemExit, match="2"):
        semantics.main([])
    with pytest.raises(SystemExit, match="2"):
        semantics.main(["--markdown", "--json"])
    with pytest.raises(ValueError, match="unknown framework 'mxnet'"):
        semantics.conformance("mxnet")
    not_tf = ConformanceReport("jax", "jax", [], [])
    with pytest.raises(ValueError, match="a tf-profile report is needed"):
        semantics.conformance("jax", not_tf)
    assert all(
        p.cases or p.id in ("reduce-max-ties", "default-initializers") for p in semantics.PINS
    )
    for p in semantics.PINS:
        for case in p.cases:
            op, cid = case.split("/")
            TABLES[op].case(cid)  # every linked case exists


# --------------------------------------------------------------------------- the frameworks


def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(b, list):  # a trajectory
        return len(a) == len(b) and all(_close(u, v, tol) for u, v in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and max_rel_error(a, b)[0] <= tol


def _differs_from_tf(op: str, case: str, dtype: str, profile: str) -> bool:
    """Whether the profile's expected values on a case differ from TF's beyond tolerance."""
    theirs = expected_values(op, case, dtype, profile=profile)
    tf = expected_values(op, case, dtype)
    if theirs.raises or tf.raises:
        return theirs.raises != tf.raises
    tol = tolerance(op, np.float64 if dtype == "-" else dtype)
    same = _close(theirs.y, tf.y, tol)
    if same and theirs.grads is not None and tf.grads is not None:
        same = all(
            _close(a, b, tol) for a, b in zip(theirs.grads, tf.grads, strict=True) if b is not None
        )
    return not same


def _run(target: Any, profile: str) -> tuple[list[Row], list[str]]:
    """Every check but the finite differences and Hypothesis draws (run separately below)."""
    _, tasks, missing = plan(target, profile=profile, examples=0)
    return [t.run() for t in tasks if t.check != "vjp-fd"], missing


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_framework_passes_its_profile_and_fails_tf_on_its_conventions(framework: str) -> None:
    _, target = load_target(framework)  # one target: JAX's compiled functions are reused
    own, missing = _run(target, framework)
    assert missing == NOT_PROVIDED
    assert [r.id for r in own if not r.ok] == []
    tf, _ = _run(target, "tf")
    convention = {(r.op, r.case, r.dtype): r.convention for r in own}
    failed = {(r.op, r.case, r.dtype) for r in tf if not r.ok}
    differs = {
        key
        for key, c in convention.items()
        if c != "tf" and _differs_from_tf(*key, profile=framework)
    }
    assert failed == differs
    assert {op for op, _, _ in failed} >= {"max_pool2d", "argmax", "adam", "sgd"}
    for r in tf:
        if r.status == "fail":  # its fingerprint: the framework's convention, by its pins
            c = BY_ID[convention[r.op, r.case, r.dtype]]
            assert c.says in r.matches, (r.id, r.matches)
            assert set(c.pins) & set(r.pins), r.id
    # The measured matrix says the same, pin by pin.
    report = ConformanceReport(framework, "tf", tf, missing)
    for pin, found in semantics.conformance(framework, report).items():
        assert found.unexplained == (), pin
        if found.checks:
            assert found.agrees is semantics.BY_ID[pin].behaviour(framework).agrees, pin


def _drawn_and_fd(framework: str, profile: str, ops: list[str], fd: set[str], n: int) -> list[Row]:
    """The ``property`` rows of ``ops`` (``n`` draws) and the ``vjp-fd`` rows of ``fd``."""
    _, tasks, _ = plan(framework, profile=profile, ops=ops, examples=n)
    keep = [t for t in tasks if t.check == "property" or (t.check == "vjp-fd" and t.op in fd)]
    return [t.run() for t in keep]


@pytest.mark.jax
def test_jax_finite_differences_and_drawn_inputs() -> None:
    rows = _drawn_and_fd("jax", "jax", ["relu", "max_pool2d"], {"relu", "max_pool2d"}, 2)
    assert [r.id for r in rows if not r.ok] == []
    assert {r.check for r in rows} == {"vjp-fd", "property"}


@pytest.mark.torch
def test_torch_finite_differences_and_drawn_inputs() -> None:
    ops = ["conv2d", "max_pool2d", "one_hot"]
    rows = _drawn_and_fd("torch", "torch", ops, {"max_pool2d"}, 25)
    assert [r.id for r in rows if not r.ok] == []
    assert {r.check for r in rows} == {"vjp-fd", "property"}
    drawn = [r for r in _drawn_and_fd("torch", "tf", ops, set(), 25) if not r.ok]
    assert {r.op for r in drawn} == set(ops)  # the ports and F.one_hot's refusal, drawn
    for r in drawn:
        assert r.pins, r.id
        assert any("torch" in c.followed_by for c in BY_ID.values() if c.says in r.matches), r.id


@pytest.mark.jax
@pytest.mark.torch
def test_readme_matrix_results_are_what_the_frameworks_do_now() -> None:
    """The README block is the rendering of benchmarks/results/matrix.json (test_readme.py);
    here the measurement itself is redone against the installed JAX and PyTorch."""
    import json
    from pathlib import Path

    saved = Path(__file__).parents[1] / "benchmarks" / "results" / "matrix.json"
    assert json.loads(json.dumps(semantics.matrix_data())) == json.loads(saved.read_text())


@pytest.mark.jax
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jax_one_hot_cells_are_exactly_on_or_off(dtype) -> None:
    """JAX's one_hot has no on/off values; the target maps them without arithmetic, so each
    cell is exactly ``on_value`` or ``off_value`` as tf.one_hot's (``off + (on - off) * hot``
    gave -1.9999999999999998 for on -2.0, off 0.3 in float64)."""
    from nnref.oracles.jax import conform_target

    one_hot = conform_target()["one_hot"]
    idx = np.array([0, 2, 1, 3])
    for on, off in [(-2.0, 0.3), (0.7, 0.1), (1.0, 0.0)]:
        got = one_hot(idx, 3, on_value=on, off_value=off, dtype=dtype)
        want = nnref.one_hot(idx, 3, on_value=on, off_value=off, dtype=dtype)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_array_equal(got, want)
