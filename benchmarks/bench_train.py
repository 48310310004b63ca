"""Training throughput of the dense recipes: nnref's step vs keras train_on_batch and a
tf.function GradientTape step, same model, same batch, same optimizer, in one run.

Run: python benchmarks/bench_train.py [--repeats 30] [--json out.json]
Prints ms/step, samples/s and the ratio nnref / best TF.
"""

from __future__ import annotations

from _harness import pairwise, report, wait_idle

import argparse
import json

import numpy as np

from nnref.optim import adam
from nnref.oracles.tf import import_keras, import_tf
from nnref.train import model as m

CASES = [
    ("MLP 784-128-256-10 b256", [784, 128, 256, 10], 256),
    ("784-512-10 b128", [784, 512, 10], 128),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json")
    args = ap.parse_args()
    tf, keras = import_tf(), import_keras()
    rng = np.random.default_rng(0)
    rows = []
    for title, sizes, bs in CASES:
        layers = []
        for units in sizes[1:-1]:
            layers += [m.dense(units), m.relu()]
        layers.append(m.dense(sizes[-1]))
        params = m.init_params(layers, (sizes[0],), np.random.default_rng(1), np.float32)
        x = rng.random((bs, sizes[0])).astype(np.float32)
        y = rng.integers(0, 10, bs)
        opt = adam()
        state = {"p": params, "s": opt.init(params)}

        def nn_step(state=state, layers=layers, x=x, y=y, opt=opt):
            out, res = m.forward(layers, state["p"], x)
            _, lres = m.loss_fwd("sparse_xent", out, y, 10)
            g = m.backward(layers, res, m.loss_bwd("sparse_xent", lres, out.dtype), len(state["p"]))
            state["p"], state["s"] = opt.update(g, state["s"], state["p"])

        model = keras.Sequential(
            [keras.Input((sizes[0],))]
            + [keras.layers.Dense(u, activation="relu") for u in sizes[1:-1]]
            + [keras.layers.Dense(sizes[-1])]
        )
        model.set_weights(params)
        model.compile(
            optimizer=keras.optimizers.Adam(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        tvars = [tf.Variable(p) for p in params]
        topt = keras.optimizers.Adam()

        n_hidden = len(sizes) - 2

        @tf.function
        def tf_step(xb, yb, tvars=tvars, topt=topt, n_hidden=n_hidden):
            with tf.GradientTape() as tape:
                h = xb
                for i in range(n_hidden):
                    h = tf.nn.relu(h @ tvars[2 * i] + tvars[2 * i + 1])
                out = h @ tvars[-2] + tvars[-1]
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=out)
                )
            topt.apply_gradients(zip(tape.gradient(loss, tvars), tvars, strict=True))
            return loss

        xt, yt = tf.constant(x), tf.constant(y)
        wait_idle()
        med = pairwise(
            {
                "nnref (Adam)": nn_step,
                "keras train_on_batch (Adam)": lambda model=model, x=x, y=y: model.train_on_batch(
                    x, y
                ),
                "tf.function tape + keras Adam": lambda: tf_step(xt, yt).numpy(),
            },
            "nnref (Adam)",
            repeats=args.repeats,
            warmup=5,
        )
        best = min(v.median for k, v in med.items() if k != "nnref (Adam)")
        rows += report(f"{title}, float32, training step", med)
        nn = med["nnref (Adam)"].median
        print(
            f"  samples/s: nnref {bs / nn:,.0f}, best TF {bs / best:,.0f}; "
            f"nnref / best TF time = {nn / best:.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
