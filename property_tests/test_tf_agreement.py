"""Agreement with TensorFlow on generated inputs: every op's value and VJP, and the conv/pool
output-shape formulas. float64 to 1e-12, float32 to 2e-5 (nnref.check.compare.ORACLE_RTOL)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnref
from nnref import strategies as nst
from nnref.check.compare import ORACLE_RTOL, max_rel_error

pytestmark = pytest.mark.tf


def _agree(fwd, bwd, tf_fn, args, static, dy_draw):
    from nnref.oracles.tf import tape_vjp

    y, res = fwd(*args, **static)
    dy = dy_draw(y)
    grads = bwd(res, dy)
    y_tf, g_tf = tape_vjp(tf_fn, args, dy)
    assert y.shape == y_tf.shape
    assert y.dtype == y_tf.dtype
    rtol = ORACLE_RTOL[y.dtype.name]
    if y.size:
        assert max_rel_error(y, y_tf)[0] <= rtol
    scale = float(np.abs(dy).max()) if dy.size else 0.0  # the cotangent's magnitude
    for a, g, gt in zip(args, grads, g_tf, strict=True):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size:
            assert max_rel_error(g, gt, floor=scale)[0] <= rtol


def _dy(data):
    """Cotangents with |dy| >= 1e-6: results in the subnormal range are flushed to zero by TF's
    CPU kernels (documented difference), which tiny cotangents would provoke."""
    return lambda y: data.draw(
        nst.finite_arrays(
            dtype=y.dtype, shape=y.shape, min_value=-1, max_value=1, min_magnitude=1e-6
        )
    )


@given(args=nst.conv2d_args(allow_empty=True), data=st.data())
def test_conv2d_matches_tf(args, data) -> None:
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    st_ = args["static"]
    x, w = args["x"], args["w"]
    y = nnref.conv2d(x, w, **st_)
    if y.size == 0:
        # Empty outputs: TF's float64 kernel returns the same empty shape when the raw output
        # size is 0 and raises when it is negative (nnref: empty for both; TF float32/oneDNN
        # returns an input-shaped tensor and dilated TF raises: pinned in tests/test_conv.py).
        if st_["dilations"] == [1, 1]:
            x64, w64 = tf.constant(x.astype(np.float64)), tf.constant(w.astype(np.float64))
            pads = (
                [(0, 0), (0, 0)]
                if st_["padding"] == "VALID"
                else (None if st_["padding"] == "SAME" else [tuple(p) for p in st_["padding"][1:3]])
            )
            raw = [
                (n + sum(p) - k) // s + 1
                for n, k, s, p in zip(
                    x.shape[1:3], w.shape[:2], st_["strides"], pads or [(0, 0), (0, 0)], strict=True
                )
            ]
            if min(raw) < 0:
                with pytest.raises(tf.errors.InvalidArgumentError, match="negative"):
                    tf.nn.conv2d(x64, w64, st_["strides"], st_["padding"])
            else:
                assert y.shape == tuple(
                    tf.nn.conv2d(x64, w64, st_["strides"], st_["padding"]).shape
                )
        return

    # TF runs its float64 kernels on the same values, the results rounded to x's dtype. Its
    # float32 (oneDNN) kernels are wrong for some one-channel batches with a width stride
    # (pinned in tests/test_conv.py: reads of uninitialised memory), TF 2.16's segfaulted on
    # explicit pads with a stride, and TF's conv twice aborted the CI worker running this test
    # when it still used them (once inside conv2d_backprop_filter, once after it inside NumPy:
    # heap corruption, not reproduced alone), so they are the likely cause. The case tables
    # still compare TF's float32 kernels on their fixed configurations.
    def tf_conv(op, a, b, *conv_args, **kw):
        out = op(tf.cast(a, tf.float64), tf.cast(b, tf.float64), *conv_args, **kw)
        return tf.cast(out, x.dtype)

    if st_["dilations"] != [1, 1]:
        if st_["strides"] != [1, 1] or not isinstance(st_["padding"], str):
            # tf.nn.convolution refuses strides with dilations and explicit pads: forward only
            y_tf = tf_conv(
                tf.nn.conv2d, x, w, st_["strides"], st_["padding"], dilations=st_["dilations"]
            ).numpy()
            assert y.shape == y_tf.shape
            assert max_rel_error(y, y_tf)[0] <= ORACLE_RTOL[y.dtype.name]
            return
        fn = lambda a, b: tf_conv(  # noqa: E731
            tf.nn.convolution, a, b, 1, st_["padding"], dilations=st_["dilations"]
        )
    else:
        fn = lambda a, b: tf_conv(tf.nn.conv2d, a, b, st_["strides"], st_["padding"])  # noqa: E731
    _agree(nnref.conv2d_fwd, nnref.conv2d_bwd, fn, (x, w), st_, _dy(data))


@given(args=nst.max_pool2d_args(), data=st.data())
def test_max_pool2d_matches_tf(args, data) -> None:
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    s = args["static"]
    _agree(
        nnref.max_pool2d_fwd,
        nnref.max_pool2d_bwd,
        lambda a: tf.nn.max_pool2d(a, s["ksize"], s["strides"], s["padding"]),
        (args["x"],),
        s,
        _dy(data),
    )


@given(args=nst.dense_args(), data=st.data())
def test_dense_matches_tf(args, data) -> None:
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    _agree(
        nnref.dense_fwd,
        nnref.dense_bwd,
        lambda x, w, b: tf.nn.bias_add(tf.linalg.matmul(x, w), b),
        args,
        {},
        _dy(data),
    )


@given(z=nst.logits(scale=20.0, allow_subnormal=False), data=st.data())
def test_activations_match_tf(z, data) -> None:
    """Without subnormal inputs: TF treats them as zero (relu'(5e-324) is 0 in TF, 1 in nnref;
    pinned in tests/test_activations.py)."""
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    for name in ("relu", "sigmoid", "softmax", "log_softmax"):
        _agree(
            getattr(nnref, f"{name}_fwd"),
            getattr(nnref, f"{name}_bwd"),
            getattr(tf.nn, name),
            (z,),
            {},
            _dy(data),
        )


@given(args=nst.xent_args(), data=st.data())
def test_cross_entropies_match_tf(args, data) -> None:
    from nnref.oracles.tf import import_tf

    tf = import_tf()
    lab, z = args
    if lab.dtype.kind == "i":
        _agree(
            nnref.sparse_softmax_cross_entropy_with_logits_fwd,
            nnref.sparse_softmax_cross_entropy_with_logits_bwd,
            lambda a, b: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=a, logits=b),
            (lab, z),
            {},
            _dy(data),
        )
    else:
        _agree(
            nnref.softmax_cross_entropy_with_logits_fwd,
            nnref.softmax_cross_entropy_with_logits_bwd,
            lambda a, b: tf.nn.softmax_cross_entropy_with_logits(labels=a, logits=b),
            (lab, z),
            {},
            _dy(data),
        )
