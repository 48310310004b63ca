"""conv2d, max-pool and the seed CNN training step (forward + backward): nnref vs TensorFlow.

Run: python benchmarks/bench_cnn.py [--repeats 15] [--json out.json]
Prints medians (each contender timed in alternation with TF, idle gaps between calls; see
_harness.py) and the ratio nnref / TF tf.function.
"""

from __future__ import annotations

from _harness import pairwise, report, wait_idle

import argparse
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

import nnref
from nnref.oracles.tf import import_tf
from nnref.train import model as m
from nnref.train.recipes import RECIPES


def cnn_step_nnref(layers, params, x, y):
    out, res = m.forward(layers, params, x)
    _, lres = m.loss_fwd("sparse_xent", out, y, 10)
    return m.backward(layers, res, m.loss_bwd("sparse_xent", lres, out.dtype), len(params))


POOL = ThreadPoolExecutor(2)


def cnn_step_two_threads(layers, params, x, y):
    """Half a batch per Python thread, one BLAS thread each (NumPy's element-wise work is
    single-threaded; this is the only way to use the second core for it); the mean-loss
    gradients of the halves are averaged."""
    h = len(x) // 2
    with threadpool_limits(1, user_api="blas"):
        parts = [
            POOL.submit(cnn_step_nnref, layers, params, x[s], y[s])
            for s in (slice(0, h), slice(h, None))
        ]
        a, b = (p.result() for p in parts)
    half = x.dtype.type(0.5)
    return [(p + q) * half for p, q in zip(a, b, strict=True)]


def gemm_floor(dt: type, rng: np.random.Generator):
    """The step's GEMMs alone, operands preallocated (conv as im2col GEMMs, SAME 5x5): no
    NumPy step can be faster than this, whatever it does around them."""
    shapes = [  # (M, K, N) for C = A @ B
        (128 * 784, 25, 32),  # conv1 forward
        (25, 128 * 784, 32),  # conv1 dW
        (128 * 196, 800, 64),  # conv2 forward
        (800, 128 * 196, 64),  # conv2 dW
        (128 * 196, 64, 800),  # conv2 dX (dcols)
        (128, 3136, 1024),  # fc1 forward
        (3136, 128, 1024),  # fc1 dW
        (128, 1024, 3136),  # fc1 dX
        (128, 1024, 10),  # fc2 forward
        (1024, 128, 10),  # fc2 dW
        (128, 10, 1024),  # fc2 dX
    ]
    ops = [
        (rng.random((m_, k)).astype(dt), rng.random((k, n)).astype(dt), np.empty((m_, n), dt))
        for m_, k, n in shapes
    ]

    def run() -> None:
        for a, b, c in ops:
            np.matmul(a, b, out=c)

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json")
    args = ap.parse_args()
    tf = import_tf()
    rows = []
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        x = rng.random((128, 28, 28, 1)).astype(dt)
        y = rng.integers(0, 10, 128)
        layers = RECIPES["cnn"].build(10)
        params = m.init_params(layers, (28, 28, 1), np.random.default_rng(1), dt)
        # max-pool and relu commute with identical gradients: pooling first runs relu on a 4x
        # smaller tensor (the recipe keeps the lesson's relu -> pool order; same numbers).
        swapped = [layers[0], layers[2], layers[1], layers[3], layers[5], layers[4], *layers[6:]]
        tvars = [tf.Variable(p) for p in params]

        @tf.function
        def tf_step(xb, yb, tvars=tvars):
            with tf.GradientTape() as tape:
                h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(xb, tvars[0], 1, "SAME"), tvars[1]))
                h = tf.nn.max_pool2d(h, 2, 2, "SAME")
                h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(h, tvars[2], 1, "SAME"), tvars[3]))
                h = tf.nn.max_pool2d(h, 2, 2, "SAME")
                h = tf.reshape(h, [tf.shape(h)[0], -1])
                h = tf.nn.relu(h @ tvars[4] + tvars[5])
                out = h @ tvars[6] + tvars[7]
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=out)
                )
            return tape.gradient(loss, tvars)

        xt, yt = tf.constant(x), tf.constant(y)
        wait_idle()
        med = pairwise(
            {
                "nnref (lesson order: relu, pool)": lambda: cnn_step_nnref(layers, params, x, y),
                "nnref (pool, relu)": lambda: cnn_step_nnref(swapped, params, x, y),
                "nnref (pool, relu), 2 threads x half batch": lambda: cnn_step_two_threads(
                    swapped, params, x, y
                ),
                "tf.function": lambda: [g.numpy() for g in tf_step(xt, yt)],
                "GEMM floor (the step's GEMMs alone, NumPy)": gemm_floor(dt, rng),
            },
            "tf.function",
            repeats=args.repeats,
        )
        rows += report(f"CNN step fwd+bwd, batch 128, {name}", med)

        # Each conv layer alone (fwd + bwd), and max-pool alone.
        for label, xs, ws in [
            ("conv1 28x28x1->32 5x5 SAME", (128, 28, 28, 1), (5, 5, 1, 32)),
            ("conv2 14x14x32->64 5x5 SAME", (128, 14, 14, 32), (5, 5, 32, 64)),
        ]:
            xa = rng.standard_normal(xs).astype(dt)
            wa = (rng.standard_normal(ws) * 0.05).astype(dt)
            dy = rng.standard_normal((xs[0], xs[1], xs[2], ws[3])).astype(dt)
            xv, wv, dyv = tf.constant(xa), tf.Variable(wa), tf.constant(dy)

            @tf.function
            def tf_conv(a, wv=wv, dyv=dyv):
                with tf.GradientTape() as tape:
                    tape.watch(a)
                    out = tf.nn.conv2d(a, wv, 1, "SAME")
                return tape.gradient(out, [a, wv], output_gradients=dyv)

            def nn_conv(xa=xa, wa=wa, dy=dy):
                _, r = nnref.conv2d_fwd(xa, wa, padding="SAME")
                return nnref.conv2d_bwd(r, dy)

            med = pairwise(
                {
                    "nnref": nn_conv,
                    "tf.function": lambda xv=xv, f=tf_conv: [g.numpy() for g in f(xv)],
                },
                "tf.function",
                repeats=args.repeats,
            )
            rows += report(f"{label} fwd+bwd, {name}", med)

        xp = rng.standard_normal((128, 28, 28, 32)).astype(dt)
        dyp = rng.standard_normal((128, 14, 14, 32)).astype(dt)
        xpv, dypv = tf.constant(xp), tf.constant(dyp)

        @tf.function
        def tf_pool(a, dypv=dypv):
            with tf.GradientTape() as tape:
                tape.watch(a)
                out = tf.nn.max_pool2d(a, 2, 2, "SAME")
            return tape.gradient(out, a, output_gradients=dypv)

        def nn_pool(xp=xp, dyp=dyp):
            _, r = nnref.max_pool2d_fwd(xp, ksize=2, strides=2, padding="SAME")
            return nnref.max_pool2d_bwd(r, dyp)

        med = pairwise(
            {"nnref": nn_pool, "tf.function": lambda: tf_pool(xpv).numpy()},
            "tf.function",
            repeats=args.repeats,
        )
        rows += report(f"max-pool 2x2 fwd+bwd 128x28x28x32, {name}", med)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
