"""Cross-entropies and MSE: pinned values (huge logits, clipping, reductions) and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import nnref
from nnref.check import check_vjp
from nnref.check.compare import assert_close

FLOATS = [pytest.param(np.float32, id="float32"), pytest.param(np.float64, id="float64")]
HUGE = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]])
HUGE_LABELS = np.array([1, 1, 0])


@pytest.mark.parametrize("dt", FLOATS)
def test_sparse_xent_huge_logits_table(dt) -> None:
    z = HUGE.astype(dt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, res = nnref.sparse_softmax_cross_entropy_with_logits_fwd(HUGE_LABELS, z)
        _, g = nnref.sparse_softmax_cross_entropy_with_logits_bwd(res, np.ones(3, dt))
    assert loss.dtype == dt
    assert g.dtype == dt
    np.testing.assert_array_equal(loss[:2], [20000, 0])
    # The shifted form gives ln 2 to the last bit in float32 (the unshifted form: 0.69335938).
    assert loss[2] == dt(np.log(2.0))
    np.testing.assert_array_equal(g, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]])


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_sparse_xent_huge_logits_match_tf_bitwise(dt) -> None:
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    z = HUGE.astype(dt)
    dy = np.array([0.5, 2.0, -1.0], dt)
    y_tf, (_, g_tf) = tape_vjp(
        lambda lab, x: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=x),
        (HUGE_LABELS, z),
        dy,
    )
    y, res = nnref.sparse_softmax_cross_entropy_with_logits_fwd(HUGE_LABELS, z)
    np.testing.assert_array_equal(y, y_tf)
    np.testing.assert_array_equal(
        nnref.sparse_softmax_cross_entropy_with_logits_bwd(res, dy)[1], g_tf
    )


def test_dense_xent_huge_logits_equal_sparse() -> None:
    oh = nnref.one_hot(HUGE_LABELS, 3, dtype=np.float64)
    dense, res = nnref.softmax_cross_entropy_with_logits_fwd(oh, HUGE)
    np.testing.assert_array_equal(
        dense, nnref.sparse_softmax_cross_entropy_with_logits(HUGE_LABELS, HUGE)
    )
    dlab, dz = nnref.softmax_cross_entropy_with_logits_bwd(res, np.ones(3))
    np.testing.assert_array_equal(dz, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]])
    np.testing.assert_array_equal(dlab, -nnref.log_softmax(HUGE))


def test_dense_xent_gradient_is_tfs_formula_and_the_checker_says_so(rng) -> None:
    """TF's dlogits is softmax - p even when rows of p sum to 1.3; nnref mirrors TF, and the
    gradient checker (correctly) rejects it as the derivative of the loss."""
    z = rng.standard_normal((4, 5))
    p = rng.random((4, 5))
    p = p / p.sum(1, keepdims=True) * 1.3
    _, res = nnref.softmax_cross_entropy_with_logits_fwd(p, z)
    dy = rng.standard_normal(4)
    _, dz = nnref.softmax_cross_entropy_with_logits_bwd(res, dy)
    assert_close(dz, dy[:, None] * (nnref.softmax(z) - p), what="dlogits")
    r = check_vjp(
        nnref.softmax_cross_entropy_with_logits_fwd,
        nnref.softmax_cross_entropy_with_logits_bwd,
        (p, z),
        names=("labels", "logits"),
        raise_on_failure=False,
    )
    assert not r.ok
    assert r.worst is not None
    assert r.input_names[r.worst.input] == "logits"


@pytest.mark.parametrize(
    ("labels", "err", "match"),
    [
        pytest.param(
            np.array([0, -1]),
            ValueError,
            r"label value of -1 which is outside the valid range of \[0, 3\)",
            id="negative",
        ),
        pytest.param(
            np.array([0, 3]),
            ValueError,
            r"label value of 3 which is outside the valid range of \[0, 3\)",
            id="equal-K",
        ),
        pytest.param(np.array([7, 0]), ValueError, r"label value of 7", id="large"),
        pytest.param(
            np.array([0.0, 1.0]),
            TypeError,
            r"'labels' must hold integer class indices, got dtype float64 with shape \(2,\)",
            id="float-labels",
        ),
        pytest.param(
            np.array([[0], [1]]),
            ValueError,
            r"'labels' \(2, 1\) must have the shape of 'logits' \(2, 3\) without its last \(class\) axis",
            id="rank-mismatch",
        ),
        pytest.param(np.array([True, False]), TypeError, "dtype bool", id="bool-labels"),
    ],
)
def test_sparse_xent_bad_labels(labels, err, match) -> None:
    with pytest.raises(err, match=f"sparse_softmax_cross_entropy_with_logits: .*{match}"):
        nnref.sparse_softmax_cross_entropy_with_logits(labels, np.zeros((2, 3)))


def test_xent_bad_logits() -> None:
    with pytest.raises(
        TypeError, match="argument 'logits' must be float32 or float64, got dtype int64"
    ):
        nnref.sparse_softmax_cross_entropy_with_logits(np.array([0]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"argument 'logits' is empty \(shape \(0, 3\)\)"):
        nnref.sparse_softmax_cross_entropy_with_logits(np.zeros(0, np.int64), np.zeros((0, 3)))
    with pytest.raises(
        ValueError, match=r"'labels' \(2, 4\) and 'logits' \(2, 3\) must have the same shape"
    ):
        nnref.softmax_cross_entropy_with_logits(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"'labels' float32\(2, 3\) and 'logits' float64\(2, 3\)"):
        nnref.softmax_cross_entropy_with_logits(np.zeros((2, 3), np.float32), np.zeros((2, 3)))


@pytest.mark.tf
def test_out_of_range_label_message_matches_tf_value() -> None:
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="label value of -1 which is outside the valid range of \\[0, 3\\)",
    ):
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.constant([0, -1]), logits=tf.zeros((2, 3))
        )
    with pytest.raises(
        ValueError, match="label value of -1 which is outside the valid range of \\[0, 3\\)"
    ):
        nnref.sparse_softmax_cross_entropy_with_logits(np.array([0, -1]), np.zeros((2, 3)))


# ----------------------------------------------------------------------------- Keras semantics


def test_scce_clip_without_renormalisation() -> None:
    # p_y = 1 exactly with 5 classes: clipped row sums to 1 - 1e-7 + 4e-7, so the loss is ~4e-7.
    p = np.array([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]])
    per = nnref.sparse_categorical_crossentropy(np.array([0, 4]), p, reduction="none")
    q = np.clip(p, 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(per, np.log(q.sum(1)) - np.log(q[[0, 1], [0, 4]]), rtol=1e-15)
    assert 3.9e-7 < per[0] < 4.1e-7
    np.testing.assert_allclose(per[1], -np.log(1e-7) + np.log(1 + 3e-7), rtol=1e-12)


CLIPPED = np.array([[0.6, 0.4, 0.0], [1e-9, 0.5, 0.5 - 1e-9], [0.2, 1.5, 0.3]])


def test_scce_blocks_gradient_at_clipped_entries() -> None:
    _, res = nnref.sparse_categorical_crossentropy_fwd(np.array([0, 1, 2]), CLIPPED)
    g = nnref.sparse_categorical_crossentropy_bwd(res, 1.0)[1]
    assert g[0, 2] == 0
    assert g[1, 0] == 0
    assert g[2, 1] == 0
    assert np.all(g[0, :2] != 0)


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_clipped_probability_gradients_match_tf(dt) -> None:
    """CCE's clipped entries still get gradient through the renormalisation; SCCE's do not."""
    from nnref.oracles.tf import import_tf, tape_vjp

    tf = import_tf()
    p = CLIPPED.astype(dt)
    lab = np.array([0, 1, 2])
    oh = nnref.one_hot(lab, 3, dtype=dt)
    for fwd, bwd, y, fn in [
        (
            nnref.sparse_categorical_crossentropy_fwd,
            nnref.sparse_categorical_crossentropy_bwd,
            lab,
            tf.keras.losses.sparse_categorical_crossentropy,
        ),
        (
            nnref.categorical_crossentropy_fwd,
            nnref.categorical_crossentropy_bwd,
            oh,
            tf.keras.losses.categorical_crossentropy,
        ),
    ]:
        dy = np.array([0.5, -2.0, 1.5], dt)
        y_tf, g_tf = tape_vjp(fn, (y, p), dy)
        val, res = fwd(y, p, reduction="none")
        g = bwd(res, dy)
        assert_close(val, y_tf, what=f"{fwd.__name__} value")
        assert_close(g[1], g_tf[1], what=f"{fwd.__name__} dy_pred")
        np.testing.assert_array_equal(g[1] == 0, g_tf[1] == 0)


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_keras_probability_loss_pinned_values(dt) -> None:
    """Values recorded in reference/tf-semantics.md, checked live against Keras."""
    from nnref.oracles.tf import import_keras

    keras = import_keras()
    p = np.array([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [0.1, 0.2, 0.3, 0.2, 0.2]], dt)
    q = p * np.array([[1.0], [1.0], [5.0]], dt)  # third row scaled by 5: entries clip at 1 - 1e-7
    lab = np.array([0, 4, 2])
    oh = nnref.one_hot(lab, 5, dtype=dt)
    k_scce = keras.losses.SparseCategoricalCrossentropy(reduction="none", dtype=dt.__name__)(lab, q)
    k_cce = keras.losses.CategoricalCrossentropy(reduction="none", dtype=dt.__name__)(oh, q)
    ours_s = nnref.sparse_categorical_crossentropy(lab, q, reduction="none")
    ours_c = nnref.categorical_crossentropy(oh, q, reduction="none")
    assert_close(ours_s, np.asarray(k_scce), what="SCCE per-sample")
    assert_close(ours_c, np.asarray(k_cce), what="CCE per-sample")
    # SCCE clips before its implicit renormalisation, CCE renormalises first: they differ.
    assert abs(ours_s[2] - ours_c[2]) > 0.1


@pytest.mark.tf
def test_sum_over_batch_size_divides_by_n_not_by_weights() -> None:
    from nnref.oracles.tf import import_keras

    keras = import_keras()
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 5))
    lab = np.array([0, 4, 2, 2, 1, 3])
    sw = np.array([1, 0, 2, 0, 1, 1.0])
    k = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")(
        lab, z, sample_weight=sw
    )
    ours = nnref.sparse_categorical_crossentropy(lab, z, from_logits=True, sample_weight=sw)
    per = nnref.sparse_softmax_cross_entropy_with_logits(lab, z)
    np.testing.assert_allclose(ours, np.sum(sw * per) / 6, rtol=1e-15)
    assert_close(ours, np.asarray(k), what="SCCE weighted sum_over_batch_size")


def test_label_smoothing_formula(rng) -> None:
    z = rng.standard_normal((4, 5))
    y = nnref.one_hot(np.array([0, 1, 2, 3]), 5, dtype=np.float64)
    ys = y * 0.9 + 0.1 / 5
    want = np.mean(-(ys * nnref.log_softmax(z)).sum(1))
    got = nnref.categorical_crossentropy(y, z, from_logits=True, label_smoothing=0.1)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    with pytest.raises(
        ValueError,
        match=r"categorical_crossentropy: 'label_smoothing' must be in \[0, 1\], got 1.5",
    ):
        nnref.categorical_crossentropy(y, z, label_smoothing=1.5)
    for bad in ("a", "0.1", True, None, [0.1]):
        with pytest.raises(
            TypeError,
            match=r"^categorical_crossentropy: 'label_smoothing' must be a float in \[0, 1\]",
        ):
            nnref.categorical_crossentropy(y, z, label_smoothing=bad)
    assert nnref.categorical_crossentropy(y, z, label_smoothing=np.float32(0.5)) == (
        nnref.categorical_crossentropy(y, z, label_smoothing=float(np.float32(0.5)))
    )


def test_keras_labels_and_reduction_errors() -> None:
    z = np.zeros((3, 4))
    # (N, 1) labels are squeezed, as Keras does.
    np.testing.assert_array_equal(
        nnref.sparse_categorical_crossentropy(
            np.array([[0], [1], [2]]), z, from_logits=True, reduction="none"
        ),
        np.full(3, np.log(4.0)),
    )
    with pytest.raises(ValueError, match="'reduction' must be one of"):
        nnref.sparse_categorical_crossentropy(np.array([0, 1, 2]), z, reduction="avg")
    with pytest.raises(
        ValueError,
        match=r"'sample_weight' \(2,\) does not broadcast to the per-sample loss shape \(3,\)",
    ):
        nnref.mean_squared_error(z, z, sample_weight=np.ones(2))
    with pytest.raises(TypeError, match="'sample_weight' must be real numbers"):
        nnref.mean_squared_error(z, z, sample_weight=np.array(["a", "b", "c"]))
    with pytest.raises(
        ValueError, match=r"label value of 4 which is outside the valid range of \[0, 4\)"
    ):
        nnref.sparse_categorical_crossentropy(np.array([0, 1, 4]), z)
    with pytest.raises(TypeError, match="'y_true' must hold integer class indices"):
        nnref.sparse_categorical_crossentropy(np.array([0.0, 1.0, 2.0]), z)


def test_mse_values_and_errors() -> None:
    t = np.array([[1.0, 2.0], [0.0, 0.0]])
    p = np.array([[2.0, 4.0], [1.0, -1.0]])
    np.testing.assert_array_equal(nnref.mean_squared_error(t, p, reduction="none"), [2.5, 1.0])
    assert nnref.mean_squared_error(t, p) == 1.75
    assert nnref.mean_squared_error(t, p, reduction="sum") == 3.5
    _, res = nnref.mean_squared_error_fwd(t, p)
    dt_, dp = nnref.mean_squared_error_bwd(res, 1.0)
    np.testing.assert_array_equal(dp, [[0.5, 1.0], [0.5, -0.5]])  # 2 (p - t) / (N D)
    np.testing.assert_array_equal(dt_, -dp)
    with pytest.raises(
        ValueError,
        match=r"mean_squared_error: arguments 'y_true' \(2, 2\) and 'y_pred' \(2, 3\) must have the same shape",
    ):
        nnref.mean_squared_error(t, np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"mean_squared_error: argument 'dy' must have the output's shape \(\)"
    ):
        nnref.mean_squared_error_bwd(res, np.ones(2))


def test_scalar_loss_accepts_python_float_cotangent() -> None:
    z = np.zeros((2, 3), np.float32)
    _, res = nnref.sparse_categorical_crossentropy_fwd(np.array([0, 1]), z, from_logits=True)
    _, g = nnref.sparse_categorical_crossentropy_bwd(res, 1.0)
    assert g.dtype == np.float32


@pytest.mark.parametrize("dt", FLOATS)
def test_sparse_xent_bits_equal_the_plain_formulas(dt, rng) -> None:
    """The gather and in-place forward, and the one-pass ``(p - onehot) g``, against the
    whole-array formulas, for batch shapes of rank 0-2 and read-only inputs."""
    for batch in ((), (7,), (2, 3)):
        z = (rng.standard_normal((*batch, 5)) * 4).astype(dt)
        y = rng.integers(0, 5, batch)
        g = rng.standard_normal(batch).astype(dt)
        for a in (z, y, g):
            a.setflags(write=False)
        s = z - z.max(axis=-1, keepdims=True)
        sum_e = np.exp(s).sum(axis=-1, keepdims=True)
        want_loss = np.log(sum_e)[..., 0] - np.take_along_axis(s, y[..., None], axis=-1)[..., 0]
        p = np.exp(s) / sum_e
        want_dz = (p - np.eye(5, dtype=dt)[y]) * g[..., None]
        loss, res = nnref.sparse_softmax_cross_entropy_with_logits_fwd(y, z)
        _, dz = nnref.sparse_softmax_cross_entropy_with_logits_bwd(res, g)
        assert loss.shape == batch
        assert dz.shape == z.shape
        assert loss.tobytes() == np.asarray(want_loss).tobytes(), batch
        assert res.probs.tobytes() == p.tobytes(), batch
        assert dz.tobytes() == want_dz.tobytes(), batch


@pytest.mark.tf
@pytest.mark.parametrize("reduction", ["none", "sum_over_batch_size"])
def test_sample_weight_ranks_are_aligned_as_keras(reduction: str) -> None:
    """Keras' ``squeeze_or_expand_to_same_rank``: per-sample losses (N,) with weights (N, 1)
    are (N, 1) losses, and losses (N, 1) (labels (N, 1)) take weights (N,) as (N, 1). nnref
    squeezed the first to (N,) and refused the second (an adversarial probe). Values and the
    gradient through a random cotangent agree with Keras'."""
    from nnref.oracles.tf import import_keras, import_tf

    keras, tf = import_keras(), import_tf()
    rng = np.random.default_rng(5)
    cases = [
        (np.array([0, 2]), rng.standard_normal((2, 3)), np.array([[1.0], [2.0]])),
        (np.array([[0], [2]]), rng.standard_normal((2, 1, 3)), np.array([2.0, 0.5])),
    ]
    for labels, z, sw in cases:
        loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=reduction, dtype="float64"
        )
        zt = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(zt)
            k = loss(labels, zt, sample_weight=sw)
        y, res = nnref.sparse_categorical_crossentropy_fwd(
            labels, z, from_logits=True, reduction=reduction, sample_weight=sw
        )
        assert y.shape == tuple(k.shape)
        assert_close(y, np.asarray(k), what="weighted SCCE")
        dy = rng.standard_normal(y.shape)
        (g_k,) = tape.gradient(k, [zt], output_gradients=tf.constant(dy))
        dz = nnref.sparse_categorical_crossentropy_bwd(res, dy)[1]
        assert_close(dz, np.asarray(g_k), what="weighted SCCE gradient")


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_dense_xent_zero_loss_is_positive_zero_as_tf(dt) -> None:
    """A row whose one-hot label picks a logit 1e4 above the rest has loss exactly 0: TF's
    kernel sums ``p * (log sum exp(s) - s)`` and gives +0.0; nnref negated the sum of
    ``p * log_softmax`` and gave -0.0 (an adversarial probe), in the TF op and in CCE
    ``from_logits=True``. CCE on probabilities keeps Keras' ``-reduce_sum``."""
    from nnref.oracles.tf import import_keras, import_tf

    keras, tf = import_keras(), import_tf()
    z = np.array([[-1e4, 1e4, 0.0], [0.0, 1e4, -1e4], [1.0, 2.0, 3.0]], dt)
    p = np.array([[0, 1, 0], [0, 1, 0], [0, 0, 0]], dt)
    want_tf = tf.nn.softmax_cross_entropy_with_logits(labels=p, logits=z).numpy()
    want_keras = keras.losses.categorical_crossentropy(p, z, from_logits=True).numpy()
    got_tf = nnref.softmax_cross_entropy_with_logits(p, z)
    got_keras = nnref.categorical_crossentropy(p, z, from_logits=True, reduction="none")
    for got, want in ((got_tf, want_tf), (got_keras, want_keras)):
        assert got.dtype == want.dtype == dt
        np.testing.assert_array_equal(got, [0, 0, 0])
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
        assert not np.signbit(got).any()


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_mse_gradient_bits_and_zero_signs_match_keras(dt) -> None:
    """Keras differentiates ``mean(square(t - p))``: ``dt = (g / D) * ((t - p) * 2)`` and
    ``dp = -dt``. nnref computed ``dp = g (p - t) (2 / D)``: where ``p == t`` its zeros had the
    opposite signs (``dp`` -0.0 for a negative cotangent, TF +0.0), and for D = 3 about half
    the float32 entries were an ulp off (an adversarial probe)."""
    from nnref.oracles.tf import import_keras, tape_vjp

    keras = import_keras()
    rng = np.random.default_rng(11)
    t = rng.standard_normal((6, 3)).astype(dt)
    p = rng.standard_normal((6, 3)).astype(dt)
    p[:2] = t[:2]  # zero gradients, signed by the cotangent
    p[2, 1] = t[2, 1]
    dy = rng.standard_normal(6).astype(dt)
    dy[0], dy[1] = -abs(dy[0]), abs(dy[1])
    _, (want_t, want_p) = tape_vjp(keras.losses.mean_squared_error, (t, p), dy)
    _, res = nnref.mean_squared_error_fwd(t, p, reduction="none")
    got_t, got_p = nnref.mean_squared_error_bwd(res, dy)
    for got, want in ((got_t, want_t), (got_p, want_p)):
        assert got.shape == want.shape
        assert got.dtype == want.dtype == dt
        assert got.tobytes() == want.tobytes()
    assert np.signbit(got_p[0]).tolist() == [False] * 3  # -(g * +0.0) with g < 0


def test_reduction_array_and_ragged_sample_weight_errors_are_named() -> None:
    """A NumPy array as ``reduction`` and a ragged ``sample_weight`` reached NumPy's bare
    ValueErrors ("truth value of an array ... is ambiguous", "inhomogeneous shape"), naming
    neither the op nor the argument (an adversarial probe)."""
    z = np.zeros((2, 3))
    with pytest.raises(
        ValueError, match=r"^sparse_categorical_crossentropy: 'reduction' must be one of"
    ):
        nnref.sparse_categorical_crossentropy([0, 1], z, reduction=np.array(["sum", "none"]))
    with pytest.raises(
        ValueError,
        match=r"^mean_squared_error: 'sample_weight' must be a rectangular array, got a ragged "
        r"list \(per-sample loss shape \(2,\)\)$",
    ):
        nnref.mean_squared_error(z, z, sample_weight=[[1.0], [1.0, 2.0]])


# --------------------------------------------------------------------------- Keras 3 reductions

KERAS_LOSSES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "mean_squared_error": "MeanSquaredError",
}


def _loss_inputs(op: str, batch: tuple[int, ...], dt, rng) -> tuple[tuple, dict]:
    """``(y_true, y_pred)`` and static arguments giving per-sample losses of shape ``batch``;
    the cross-entropies alternate between logits and probabilities (Keras' clip path)."""
    k = 4
    if op == "mean_squared_error":
        t, p = (rng.standard_normal((*batch, k)).astype(dt) for _ in range(2))
        return (t, p), {}
    from_logits = len(batch) != 1
    z = rng.standard_normal((*batch, k)).astype(dt)
    y_pred = z if from_logits else (np.abs(z) + dt(0.1)).astype(dt)
    lab = rng.integers(0, k, batch)
    y_true = lab if op == "sparse_categorical_crossentropy" else np.eye(k, dtype=dt)[lab]
    return (y_true, y_pred), {"from_logits": from_logits}


# Weights as Keras aligns them (squeeze_or_expand_to_same_rank) on per-sample losses of the
# given shape: the id says what each exercises.
_WEIGHTS = {
    "unweighted": ((5,), lambda r: None),
    "w-n": ((5,), lambda r: r.uniform(0, 2, 5)),
    "w-n1-on-n-losses": ((5,), lambda r: r.uniform(0, 2, (5, 1))),
    "w-n-on-n1-losses": ((5, 1), lambda r: r.uniform(0, 2, 5)),
    "w-n1-on-nt-losses-divisor-not-broadcast": ((5, 3), lambda r: r.uniform(0, 2, (5, 1))),
    "w-nt": ((5, 3), lambda r: r.uniform(0, 2, (5, 3))),
    "w-scalar-divisor-is-w": ((5,), lambda r: np.float64(1.75)),
    "w-int": ((5,), lambda r: np.array([2, 0, 1, 3, 1])),
    "w-one-zero": ((5,), lambda r: np.array([0.0, 1.5, 0.5, 2.0, 1.0])),
    "w-all-zero-divide-no-nan": ((5,), lambda r: np.zeros(5)),
    "w-sum-zero-divide-no-nan": ((5,), lambda r: np.array([1.0, -1.0, 0.5, -0.5, 0.0])),
    "scalar-loss-unreduced": ((), lambda r: np.float64(2.5)),
    "scalar-loss-zero-weight": ((), lambda r: np.float64(0.0)),
}


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("weights", list(_WEIGHTS))
@pytest.mark.parametrize("reduction", [None, "mean", "mean_with_sample_weight"])
@pytest.mark.parametrize("op", list(KERAS_LOSSES))
def test_keras3_reductions_match_keras(op: str, reduction, weights: str, dt, rng) -> None:
    """Keras 3 also accepts ``reduction=None`` ("none"), ``"mean"`` (``sum_over_batch_size``)
    and ``"mean_with_sample_weight"`` (``divide_no_nan(sum(w l), sum(w))`` with ``w`` the
    rank-aligned weights before broadcasting, ``N`` without weights; 0-d weighted losses are
    returned unreduced). nnref refused all three. Value, then both gradients through a random
    cotangent, against the Keras class under GradientTape."""
    from nnref.oracles.tf import import_keras, tape_vjp

    keras = import_keras()
    batch, draw = _WEIGHTS[weights]
    args, static = _loss_inputs(op, batch, dt, rng)
    sw = draw(rng)
    loss = getattr(keras.losses, KERAS_LOSSES[op])(
        reduction=reduction, dtype=np.dtype(dt).name, **static
    )
    fwd, bwd = getattr(nnref, f"{op}_fwd"), getattr(nnref, f"{op}_bwd")
    y, res = fwd(*args, reduction=reduction, sample_weight=sw, **static)
    dy = rng.standard_normal(y.shape).astype(dt)
    want_y, want_g = tape_vjp(lambda t, p: loss(t, p, sample_weight=sw), args, dy)
    what = f"{op} reduction={reduction!r} {weights} {np.dtype(dt).name}"
    assert y.shape == np.shape(want_y), what
    assert_close(y, want_y, what=f"{what}: value")
    for name, got, want in zip(("dy_true", "dy_pred"), bwd(res, dy), want_g, strict=True):
        if want is None:
            assert got is None, what
            continue
        assert_close(got, want, what=f"{what}: {name}")


@pytest.mark.tf
@pytest.mark.parametrize("dt", FLOATS)
def test_mean_with_sample_weight_zero_divisor_is_zero_with_keras_bits(dt) -> None:
    """``divide_no_nan``: all-zero weights, or weights summing to 0, give a loss of +0.0 and a
    zero gradient, bit for bit (zero signs included) as Keras; an infinite loss under a zero
    weight (``inf * 0`` is NaN) still gives 0."""
    from nnref.oracles.tf import import_keras, tape_vjp

    keras = import_keras()
    labels = np.array([0, 2, 1, 1])
    z = np.random.default_rng(2).standard_normal((4, 3)).astype(dt)
    dy = np.asarray(dt(-1.3))
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight", dtype=np.dtype(dt).name
    )
    for sw in (np.zeros(4), np.array([1.0, -1.0, 2.0, -2.0]), np.zeros((4, 1))):
        want_y, (_, want_g) = tape_vjp(
            lambda t, p, sw=sw: loss(t, p, sample_weight=sw), (labels, z), dy
        )
        y, res = nnref.sparse_categorical_crossentropy_fwd(
            labels, z, from_logits=True, reduction="mean_with_sample_weight", sample_weight=sw
        )
        g = nnref.sparse_categorical_crossentropy_bwd(res, dy)[1]
        assert y.dtype == g.dtype == dt
        assert y.tobytes() == np.asarray(want_y).tobytes() == np.zeros((), dt).tobytes(), sw
        assert g.tobytes() == np.asarray(want_g).tobytes(), sw
        assert not g.any()
    t = np.array([[np.inf, 0.0], [1.0, 2.0]], dt)
    mse = keras.losses.MeanSquaredError(
        reduction="mean_with_sample_weight", dtype=np.dtype(dt).name
    )
    want = mse(t, np.zeros_like(t), sample_weight=np.zeros(2))
    with np.errstate(invalid="ignore"):  # inf * 0, as in Keras
        got = nnref.mean_squared_error(
            t, np.zeros_like(t), reduction="mean_with_sample_weight", sample_weight=np.zeros(2)
        )
    assert got.tobytes() == np.asarray(want).tobytes() == np.zeros((), dt).tobytes()


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", list(KERAS_LOSSES))
def test_mean_and_none_spellings_are_bitwise_aliases(op: str, dt, rng) -> None:
    """``"mean"`` is ``"sum_over_batch_size"`` and ``None`` is ``"none"`` bit for bit (value and
    VJP), as in Keras (measured bitwise there too); ``"mean_with_sample_weight"`` without
    weights divides by N, so it is ``"sum_over_batch_size"`` as well."""
    args, static = _loss_inputs(op, (6,), dt, rng)
    fwd, bwd = getattr(nnref, f"{op}_fwd"), getattr(nnref, f"{op}_bwd")
    dy0 = np.asarray(dt(rng.standard_normal()))
    dyn = rng.standard_normal(6).astype(dt)
    for alias, canonical, dy in (
        ("mean", "sum_over_batch_size", dy0),
        ("mean_with_sample_weight", "sum_over_batch_size", dy0),
        (None, "none", dyn),
    ):
        y1, r1 = fwd(*args, reduction=alias, **static)
        y2, r2 = fwd(*args, reduction=canonical, **static)
        assert y1.shape == y2.shape
        assert y1.dtype == y2.dtype == dt
        assert y1.tobytes() == y2.tobytes(), alias
        for g1, g2 in zip(bwd(r1, dy), bwd(r2, dy), strict=True):
            assert (g1 is None and g2 is None) or g1.tobytes() == g2.tobytes(), alias


def test_mean_with_sample_weight_pinned_values() -> None:
    """The divisor is the sum of the weights as Keras aligns them, never their broadcast: (N, 1)
    weights on (N, T) losses divide by sum(w), giving T times the weighted mean; a scalar weight
    divides by itself; one 0-d loss is returned weighted and unreduced (w l, not w l / w)."""
    t = np.zeros((2, 3, 1))
    p = np.arange(6.0).reshape(2, 3, 1)  # per-sample losses p**2, shape (2, 3)
    per = p[..., 0] ** 2
    w = np.array([[1.0], [3.0]])
    got = nnref.mean_squared_error(t, p, reduction="mean_with_sample_weight", sample_weight=w)
    assert got == (per * w).sum() / 4.0
    got = nnref.mean_squared_error(t, p, reduction="mean_with_sample_weight", sample_weight=2.0)
    assert got == per.sum()
    one = nnref.mean_squared_error(
        np.zeros(2), np.array([1.0, 2.0]), reduction="mean_with_sample_weight", sample_weight=4.0
    )
    assert one.shape == ()
    assert one == 4.0 * 2.5
    with pytest.raises(ValueError, match="'y_pred' is empty"):  # Keras returns the empty losses
        nnref.mean_squared_error(
            np.zeros((0, 2)), np.zeros((0, 2)), reduction="mean_with_sample_weight"
        )
