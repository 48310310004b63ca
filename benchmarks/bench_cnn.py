"""The seed CNN step (forward + backward), its conv layers and max-pool: nnref vs TensorFlow.

Run: python benchmarks/bench_cnn.py [--repeats 15] [--steps 5] [--settle 1] [--warm 0.1]
[--dtypes ...] [--json F]
(the README's `cnn-bench` block: ``python benchmarks/readme_figures.py --measure cnn-bench``)

The step is what a user writes: nnref's public ops (``conv2d_fwd/bwd`` with the conv bias,
``conv2d_bwd_filter``, ``max_pool2d_fwd/bwd``, the xent op) and NumPy (``@``, ``np.maximum``,
the dense layers' in-place bias), called from one Python thread; whatever parallelism there is
lives inside the ops. "exact" uses ``algorithm="direct"``, "fast" ``algorithm="auto"`` (conv2
by DFT, conv1 direct). TF is ``tf.function`` over the same network (relu before pool, as the lesson); nnref
pools before relu (max and relu commute: the same numbers, relu on a 4x smaller tensor).

Every contender is timed in alternation with TF (``_harness.pairwise``: idle gaps, BLAS spin
timeout; the method is printed with the figures), after waiting for an idle machine; each block
reports the median, the quartiles, the median per-pair ratio to TF and the CPU other processes
used meanwhile. A sample is ``--steps`` consecutive calls after untimed ones (at least
``--settle`` calls, for at least ``--warm`` seconds), as a training loop runs: the calls after
the harness's idle gap pay for waking the CPUs (this VM's vCPUs halt when idle; see
``_harness.pairwise``), 16-42% of an nnref step and 1-3% of TF's, whose threads spin; the steps
are timed that way too, one call per sample, for the record. The per-op breakdown times
each op inside consecutive steps.
"""

from __future__ import annotations

from _harness import LoadMeter, add_arguments, cpu_model, method, pairwise, report, wait_idle

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import nnref
from nnref.oracles.tf import import_tf
from nnref.train import model as m
from nnref.train.recipes import RECIPES

BATCH = 128


def _params(dt: np.dtype, rng: np.random.Generator) -> list[np.ndarray]:
    layers = RECIPES["cnn"].build(10)
    params = m.init_params(layers, (28, 28, 1), rng, dt)
    # Non-zero biases (the recipe starts them at 0), so the bias terms do real work.
    return [p if p.ndim > 1 else (0.01 * rng.standard_normal(p.shape)).astype(dt) for p in params]


class Step:
    """One composed training step; ``timer`` (optional) receives (stage, seconds)."""

    def __init__(self, params: list[np.ndarray], algorithm: str) -> None:
        self.params = params
        self.algorithm = algorithm

    def __call__(
        self, x: np.ndarray, labels: np.ndarray, timer: Callable[[str, float], None] | None = None
    ) -> list[np.ndarray]:
        w1, b1, w2, b2, w3, b3, w4, b4 = self.params
        t = [time.perf_counter()]

        def lap(name: str) -> None:
            if timer is not None:
                t.append(time.perf_counter())
                timer(name, t[-1] - t[-2])

        zero = x.dtype.type(0)
        z1, r1 = nnref.conv2d_fwd(x, w1, b1, padding="SAME", algorithm=self.algorithm)
        lap("conv1 fwd (+ bias)")
        p1, q1 = nnref.max_pool2d_fwd(z1, ksize=2, strides=2, padding="SAME")
        lap("pool1 fwd")
        a1 = np.maximum(p1, zero)
        lap("relu1 fwd")
        z2, r2 = nnref.conv2d_fwd(a1, w2, b2, padding="SAME", algorithm=self.algorithm)
        lap("conv2 fwd (+ bias)")
        p2, q2 = nnref.max_pool2d_fwd(z2, ksize=2, strides=2, padding="SAME")
        lap("pool2 fwd")
        a2 = np.maximum(p2, zero).reshape(len(x), -1)
        lap("relu2 fwd")
        h = a2 @ w3
        h += b3
        np.maximum(h, zero, out=h)
        o = h @ w4
        o += b4
        lap("dense fwd")
        _, lres = nnref.sparse_softmax_cross_entropy_with_logits_fwd(labels, o)
        g = nnref.sparse_softmax_cross_entropy_with_logits_bwd(
            lres, np.full(len(x), x.dtype.type(1 / len(x)))
        )[1]
        lap("xent fwd+bwd")
        dw4, db4 = h.T @ g, g.sum(axis=0)
        dh = g @ w4.T
        dh *= h > 0
        dw3, db3 = a2.T @ dh, dh.sum(axis=0)
        da2 = (dh @ w3.T).reshape(p2.shape)
        lap("dense bwd")
        dp2 = np.where(p2 > 0, da2, zero)
        lap("relu2 bwd")
        (dz2,) = nnref.max_pool2d_bwd(q2, dp2)
        lap("pool2 bwd")
        da1, dw2, db2 = nnref.conv2d_bwd(r2, dz2)
        lap("conv2 bwd (+ bias)")
        dp1 = np.where(p1 > 0, da1, zero)
        lap("relu1 bwd")
        (dz1,) = nnref.max_pool2d_bwd(q1, dp1)
        lap("pool1 bwd")
        dw1, db1 = nnref.conv2d_bwd_filter(r1, dz1)
        lap("conv1 bwd (filter + bias)")
        return [dw1, db1, dw2, db2, dw3, db3, dw4, db4]


def driver_step(params: list[np.ndarray], algorithm: str) -> Callable[..., list[np.ndarray]]:
    """The training driver's step (``nnref.train.model``: lesson order relu -> pool, conv bias
    and relu fused into one pass)."""
    layers = RECIPES["cnn"].build(10)

    def run(x: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        out, res = m.forward(layers, params, x, conv_algorithm=algorithm)
        _, lres = m.loss_fwd("sparse_xent", out, labels, 10)
        return m.backward(layers, res, m.loss_bwd("sparse_xent", lres, out.dtype), len(params))

    return run


def tf_step(tf: Any, params: list[np.ndarray]) -> Callable[..., Any]:
    tv = [tf.Variable(p) for p in params]

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(xb, tv[0], 1, "SAME"), tv[1]))
            h = tf.nn.max_pool2d(h, 2, 2, "SAME")
            h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(h, tv[2], 1, "SAME"), tv[3]))
            h = tf.nn.max_pool2d(h, 2, 2, "SAME")
            h = tf.reshape(h, [tf.shape(h)[0], -1])
            h = tf.nn.relu(h @ tv[4] + tv[5])
            out = h @ tv[6] + tv[7]
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=out)
            )
        return tape.gradient(loss, tv)

    return step


def breakdown(step: Step, x: np.ndarray, labels: np.ndarray, repeats: int) -> dict[str, float]:
    """Median seconds of each stage over ``repeats`` consecutive steps (after two warm-ups)."""
    acc: dict[str, list[float]] = {}
    for i in range(repeats + 2):
        stages: dict[str, float] = {}
        step(x, labels, timer=lambda k, s, stages=stages: stages.__setitem__(k, s))
        if i >= 2:
            for k, s in stages.items():
                acc.setdefault(k, []).append(s)
    return {k: statistics.median(v) for k, v in acc.items()}


def _agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(
        float(np.max(np.abs(p - q)) / (np.max(np.abs(q)) + 1e-300))
        for p, q in zip(a, b, strict=True)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--steps", type=int, default=5, help="timed consecutive calls per sample")
    ap.add_argument("--settle", type=int, default=1, help="untimed calls before each sample")
    ap.add_argument(
        "--warm", type=float, default=0.1, help="seconds of untimed calls before each sample"
    )
    add_arguments(ap)
    args = ap.parse_args()
    idle = functools.partial(wait_idle, max_wait=args.max_wait)
    timed = functools.partial(pairwise, steps=args.steps, settle=args.settle, warm=args.warm)
    tf = import_tf()
    rows: list[dict] = []
    rng = np.random.default_rng(0)
    print(f"method: {method(args.steps, args.settle, args.warm)}")
    for name in args.dtypes.split(","):
        dt = np.dtype(name)
        x = rng.random((BATCH, 28, 28, 1)).astype(dt)
        labels = rng.integers(0, 10, BATCH)
        params = _params(dt, rng)
        exact, fast = Step(params, "direct"), Step(params, "auto")
        tf_fn = tf_step(tf, params)
        xt, yt = tf.constant(x), tf.constant(labels)

        def tf_run(tf_fn=tf_fn, xt=xt, yt=yt) -> list[np.ndarray]:
            return [g.numpy() for g in tf_fn(xt, yt)]

        ref = tf_run()
        print(
            "agreement with TF (in float32 a max-pool window whose two largest values are within "
            "rounding routes its gradient by rounding: one moved cell shows as ~1e-3 here)"
        )
        for label, f in (("exact", exact), ("fast", fast)):
            print(
                f"[{name}] composed {label} step vs TF: max |dg| / max |g| = "
                f"{_agreement(f(x, labels), ref):.1e}"
            )
        driver = driver_step(params, "direct")
        print(f"idle check: others used {idle():.2f} cores")
        steps = {
            "nnref composed, exact (direct conv)": lambda: exact(x, labels),
            "nnref composed, fast (conv2 dft)": lambda: fast(x, labels),
            "nnref training driver (exact)": lambda: driver(x, labels),
            "tf.function": tf_run,
        }
        t = timed(steps, "tf.function", repeats=args.repeats)
        rows += report(f"seed CNN step fwd+bwd, batch {BATCH}, {name}", t)
        if (args.steps, args.settle, args.warm) != (1, 0, 0):  # waking up's cost, for the record
            idle()
            del steps["nnref training driver (exact)"]
            t = pairwise(steps, "tf.function", repeats=args.repeats)
            rows += report(f"seed CNN step fwd+bwd, batch {BATCH}, {name}, single calls", t)
        for label, step in (("exact", exact), ("fast", fast)):
            idle()
            with LoadMeter() as lm:
                per = breakdown(step, x, labels, args.repeats)
            total = sum(per.values())
            print(
                f"\n  per-op breakdown, composed {label} step, {name} (median of "
                f"{args.repeats} consecutive steps, others' load {lm.others_cores:.2f} cores), "
                f"sum {total * 1e3:.1f} ms:"
            )
            for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
                print(f"    {k:24s} {v * 1e3:7.2f} ms  {100 * v / total:4.1f}%")
            rows.append(
                {
                    "case": f"breakdown {label} {name}",
                    "stages_s": per,
                    "others_cores": lm.others_cores,
                    "method": "consecutive steps, medians",
                }
            )

        for label, xs, ws, algos in [
            ("conv1 28x28x1->32 5x5 SAME", (BATCH, 28, 28, 1), (5, 5, 1, 32), ["direct"]),
            ("conv2 14x14x32->64 5x5 SAME", (BATCH, 14, 14, 32), (5, 5, 32, 64), ["direct", "dft"]),
        ]:
            xa = rng.standard_normal(xs).astype(dt)
            wa = (rng.standard_normal(ws) * 0.05).astype(dt)
            dy = rng.standard_normal((*xs[:3], ws[3])).astype(dt)
            xv, wv, dyv = tf.constant(xa), tf.Variable(wa), tf.constant(dy)

            @tf.function
            def tf_conv(a, wv=wv, dyv=dyv):
                with tf.GradientTape() as tape:
                    tape.watch(a)
                    out = tf.nn.conv2d(a, wv, 1, "SAME")
                # The output is returned: a graph that returns only the gradients prunes the
                # forward conv (its gradient does not read it), and TF would be timed without it.
                return [out, *tape.gradient(out, [a, wv], output_gradients=dyv)]

            def nn_conv(alg, xa=xa, wa=wa, dy=dy):
                y, r = nnref.conv2d_fwd(xa, wa, padding="SAME", algorithm=alg)
                return [y, *nnref.conv2d_bwd(r, dy)]

            idle()
            t = timed(
                {
                    **{f"nnref algorithm={a}": (lambda a=a: nn_conv(a)) for a in algos},
                    "tf.function": lambda xv=xv, f=tf_conv: [g.numpy() for g in f(xv)],
                },
                "tf.function",
                repeats=args.repeats,
            )
            rows += report(f"{label} fwd+dx+dw, {name}", t)

        xp = np.maximum(rng.standard_normal((BATCH, 28, 28, 32)), 0).astype(dt)  # relu-like
        dyp = rng.standard_normal((BATCH, 14, 14, 32)).astype(dt)
        xpv, dypv = tf.constant(xp), tf.constant(dyp)

        @tf.function
        def tf_pool(a, dypv=dypv):
            with tf.GradientTape() as tape:
                tape.watch(a)
                out = tf.nn.max_pool2d(a, 2, 2, "SAME")
            return [out, tape.gradient(out, a, output_gradients=dypv)]

        def nn_pool(xp=xp, dyp=dyp):
            y, r = nnref.max_pool2d_fwd(xp, ksize=2, strides=2, padding="SAME")
            return [y, *nnref.max_pool2d_bwd(r, dyp)]

        idle()
        t = timed(
            {"nnref": nn_pool, "tf.function": lambda: [g.numpy() for g in tf_pool(xpv)]},
            "tf.function",
            repeats=args.repeats,
        )
        rows += report(f"max-pool 2x2 fwd+bwd {BATCH}x28x28x32, {name}", t)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "versions": {"numpy": np.__version__, "tensorflow": tf.__version__},
                    "cpu": cpu_model(),
                    "method": method(args.steps, args.settle, args.warm),
                    "repeats": args.repeats,
                    "rows": rows,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
