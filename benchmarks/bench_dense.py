"""Dense training step (forward, backward, Adam): nnref vs PyTorch eager vs TF, same model,
batch and initial weights, float32.

Run: python benchmarks/bench_dense.py [--repeats 11] [--steps 20] [--settle 1] [--warm 0.1]
[--json out.json]

nnref's composed step is what a user writes from the public ops in one Python thread
(``dense_fwd``, ``relu_fwd``, ``sparse_softmax_cross_entropy_with_logits_fwd``, their VJPs,
``adam().update``); whatever parallelism there is lives inside the ops. It is timed twice: with
``dense_bwd_params`` for the first layer (its input needs no gradient, as PyTorch's autograd and
TF's tape skip it) and with ``dense_bwd`` everywhere (one more GEMM, the unused ``dx``). The
training driver is ``nnref.train``'s step. PyTorch: torch CPU eager, ``torch.optim.Adam(foreach=
True)``, ``torch.set_num_threads(2)``, ``torch.set_flush_denormal(True)`` during its steps:
the flush-to-zero arithmetic TF's kernels and nnref's optimizers compute in (the mode belongs to
the thread: PyTorch's worker threads are started with it on, and the main thread's is switched
off after each step, so that nnref's ops and threads run in IEEE mode). In IEEE arithmetic, PyTorch's 784-512-10 step went from 1.9 to
4.8 ms after ~500 steps on an Intel Xeon, as the Adam moments of dead units decayed through the
subnormal range. TF: ``tf.function`` GradientTape step +
Keras Adam.

Every contender is timed in alternation with PyTorch, then the nnref steps in alternation with
TF (``_harness.pairwise``: idle gaps, BLAS spin timeout; the method is printed with the
figures), after waiting for an idle machine; each block reports the median, the quartiles, the
median per-pair ratio and the CPU other processes used meanwhile. A sample is ``--steps``
consecutive steps after untimed ones (at least ``--settle`` steps, for at least ``--warm``
seconds), as a training loop runs them, reported per step: after the harness's idle gap the
first steps pay for waking the worker threads (OpenBLAS's took ~10 ms on this VM for a 0.6 ms
GEMM; TF's 784-128-256-10 step took 2.2-2.3 ms for ~20 steps, then 1.9), which a training loop
pays once. The
per-op breakdown times forward, backward and the Adam update inside consecutive steps, for
nnref and PyTorch.

Each contender trains on its own cycle through the same ``POOL`` batches of random inputs and
labels, as a training loop goes through an epoch. Trained on one batch, as this benchmark once
did, the models memorised it within a few hundred steps: the gradients fell towards 1e-20, the
optimizer states filled with subnormal numbers (72 Ki of the 784-512-10 model's 814 Ki after 1000
steps), and on Intel CPUs, where each subnormal operand costs a microcode assist, the composed
step went from 2.7 to 5.4 ms while TF (flush-to-zero) stayed as fast: the later blocks timed a
state no training run is in. Cycling 64 batches, the gradients stay above 1e-10 over 4000 steps.
"""

from __future__ import annotations

from _harness import LoadMeter, add_arguments, method, pairwise, report, wait_idle

import argparse
import functools
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import nnref
from nnref.optim import adam
from nnref.oracles.tf import import_keras, import_tf
from nnref.train import model as m

POOL = 64
CASES = [("784-128-256-10", [784, 128, 256, 10], 256), ("784-512-10", [784, 512, 10], 128)]
TORCH = "PyTorch eager, foreach Adam"
TF = "TF tf.function + Keras Adam"
COMPOSED = "nnref composed (first layer dense_bwd_params)"
COMPOSED_DX = "nnref composed (dense_bwd everywhere)"
DRIVER = "nnref training driver (nnref.train)"

Timer = Callable[[str, float], None] | None


def _params(sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """He-normal kernels and small non-zero biases (so the bias terms do real work)."""
    out = []
    for a, b in itertools.pairwise(sizes):
        out.append((rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32))
        out.append((0.01 * rng.standard_normal(b)).astype(np.float32))
    return out


class Composed:
    """A user's step from nnref's public ops; ``timer`` (optional) gets (stage, seconds)."""

    def __init__(self, params: list[np.ndarray], *, first_layer_dx: bool) -> None:
        self.params = params
        self.opt = adam()
        self.state = self.opt.init(params)
        self.first_layer_dx = first_layer_dx

    def grads(self, x: np.ndarray, labels: np.ndarray, lap: Callable[[str], None]) -> list:
        n = len(self.params) // 2
        h, res = x, []
        for i in range(n):
            h, r = nnref.dense_fwd(h, self.params[2 * i], self.params[2 * i + 1])
            res.append(r)
            if i < n - 1:
                h, r = nnref.relu_fwd(h)
                res.append(r)
        _, lres = nnref.sparse_softmax_cross_entropy_with_logits_fwd(labels, h)
        lap("forward")
        _, g = nnref.sparse_softmax_cross_entropy_with_logits_bwd(
            lres, np.full(len(x), np.float32(1 / len(x)))
        )
        grads: list = [None] * len(self.params)
        for i in reversed(range(n)):
            if i < n - 1:
                (g,) = nnref.relu_bwd(res.pop(), g)
            if i == 0 and not self.first_layer_dx:
                grads[0], grads[1] = nnref.dense_bwd_params(res.pop(), g)
            else:
                g, grads[2 * i], grads[2 * i + 1] = nnref.dense_bwd(res.pop(), g)
        lap("backward")
        return grads

    def __call__(self, x: np.ndarray, labels: np.ndarray, timer: Timer = None) -> None:
        lap = _lapper(timer)
        grads = self.grads(x, labels, lap)
        self.params, self.state = self.opt.update(grads, self.state, self.params)
        lap("Adam update")


def _lapper(timer: Timer) -> Callable[[str], None]:
    t = [time.perf_counter()]

    def lap(name: str) -> None:
        if timer is not None:
            t.append(time.perf_counter())
            timer(name, t[-1] - t[-2])

    return lap


def driver(params: list[np.ndarray], sizes: list[int]) -> Callable[..., None]:
    """``nnref.train``'s step (``model.forward/backward``) + Adam, as ``nnref train`` runs it."""
    layers = []
    for units in sizes[1:-1]:
        layers += [m.dense(units), m.relu()]
    layers.append(m.dense(sizes[-1]))
    opt = adam()
    state = {"p": params, "s": opt.init(params)}

    def step(x: np.ndarray, labels: np.ndarray) -> None:
        out, res = m.forward(layers, state["p"], x)
        _, lres = m.loss_fwd("sparse_xent", out, labels, sizes[-1])
        g = m.backward(layers, res, m.loss_bwd("sparse_xent", lres, out.dtype), len(state["p"]))
        state["p"], state["s"] = opt.update(g, state["s"], state["p"])

    return step


class TorchStep:
    """PyTorch eager: ``x @ W + b``, relu, ``F.cross_entropy`` (mean), foreach Adam."""

    def __init__(
        self, torch: Any, params: list[np.ndarray], xs: np.ndarray, ys: np.ndarray
    ) -> None:
        self.torch = torch
        self.params = [torch.tensor(p.copy(), requires_grad=True) for p in params]
        self.opt = torch.optim.Adam(self.params, lr=1e-3, eps=1e-7, foreach=True)
        self.batches = itertools.cycle(
            [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in zip(xs, ys, strict=True)]
        )

    def __call__(self, timer: Timer = None) -> None:
        self.torch.set_flush_denormal(True)
        try:
            self._step(_lapper(timer))
        finally:
            self.torch.set_flush_denormal(False)

    def _step(self, lap: Callable[[str], None]) -> None:
        n = len(self.params) // 2
        h, y = next(self.batches)
        for i in range(n):
            h = h @ self.params[2 * i] + self.params[2 * i + 1]
            if i < n - 1:
                h = self.torch.relu(h)
        loss = self.torch.nn.functional.cross_entropy(h, y)
        lap("forward")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        lap("backward")
        self.opt.step()
        lap("Adam update")


def tf_step(tf: Any, keras: Any, params: list[np.ndarray]) -> Callable[..., Any]:
    tv = [tf.Variable(p) for p in params]
    opt = keras.optimizers.Adam()
    n = len(params) // 2

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            h = xb
            for i in range(n):
                h = h @ tv[2 * i] + tv[2 * i + 1]
                if i < n - 1:
                    h = tf.nn.relu(h)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yb, logits=h)
            )
        opt.apply_gradients(zip(tape.gradient(loss, tv), tv, strict=True))
        return loss

    return step


def breakdown(step: Callable[[Timer], None], repeats: int) -> dict[str, float]:
    """Median seconds of each stage over ``repeats`` consecutive steps (after two warm-ups)."""
    acc: dict[str, list[float]] = {}
    for i in range(repeats + 2):
        stages: dict[str, float] = {}
        step(lambda k, s, stages=stages: stages.__setitem__(k, s))
        if i >= 2:
            for k, s in stages.items():
                acc.setdefault(k, []).append(s)
    return {k: statistics.median(v) for k, v in acc.items()}


def _agreement(tf: Any, params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """max |g_nnref - g_TF| / max |g_TF| over the first step's gradients (float32)."""
    tv = [tf.Variable(p) for p in params]
    n = len(params) // 2
    with tf.GradientTape() as tape:
        h = tf.constant(x)
        for i in range(n):
            h = h @ tv[2 * i] + tv[2 * i + 1]
            if i < n - 1:
                h = tf.nn.relu(h)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))
    ref = [g.numpy() for g in tape.gradient(loss, tv)]
    ours = Composed(params, first_layer_dx=False).grads(x, y, lambda _: None)
    return max(
        float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(ours, ref, strict=True)
    )


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.machine()
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=11, help="pairs per contender (odd)")
    ap.add_argument("--steps", type=int, default=20, help="timed consecutive steps per sample")
    ap.add_argument("--settle", type=int, default=1, help="untimed steps before each sample")
    ap.add_argument(
        "--warm", type=float, default=0.1, help="seconds of untimed steps before each sample"
    )
    add_arguments(ap)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    # PyTorch's intra-op workers keep the mode of the thread that starts them, and its step
    # runs there as much as in the caller: started now with flush-to-zero on, they keep it (the
    # caller's is switched around each step; nnref's workers start later, in IEEE mode).
    torch.set_flush_denormal(True)
    torch.ones(1 << 22).add_(1)  # large enough to start the pool
    torch.set_flush_denormal(False)
    idle = functools.partial(wait_idle, max_wait=args.max_wait)
    tf, keras = import_tf(), import_keras()
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    breakdowns: list[dict[str, Any]] = []
    agreement = {}
    print(f"method: {method(args.steps, args.settle, args.warm)}")
    for name, sizes, batch in CASES:
        params = _params(sizes, rng)
        xs = rng.random((POOL, batch, sizes[0])).astype(np.float32)
        ys = rng.integers(0, sizes[-1], (POOL, batch))
        agreement[name] = _agreement(tf, params, xs[0], ys[0])
        print(
            f"[{name}] first-step gradients, nnref vs TF: max |dg| / max |g| = "
            f"{agreement[name]:.1e}"
        )
        composed = Composed(params, first_layer_dx=False)
        composed_dx = Composed(params, first_layer_dx=True)
        drive = driver(params, sizes)
        torch_step = TorchStep(torch, params, xs, ys)
        tf_fn = tf_step(tf, keras, params)
        tf_batches = itertools.cycle(
            [(tf.constant(x), tf.constant(y)) for x, y in zip(xs, ys, strict=True)]
        )
        batches = {
            k: itertools.cycle(list(zip(xs, ys, strict=True)))
            for k in (COMPOSED, COMPOSED_DX, DRIVER)
        }
        nn = {
            COMPOSED: lambda c=composed, b=batches[COMPOSED]: c(*next(b)),
            COMPOSED_DX: lambda c=composed_dx, b=batches[COMPOSED_DX]: c(*next(b)),
            DRIVER: lambda d=drive, b=batches[DRIVER]: d(*next(b)),
        }
        tf_run = functools.partial(lambda f, b: f(*next(b)).numpy(), tf_fn, tf_batches)
        title = f"MLP {name}, batch {batch}, float32, ms per training step"
        for baseline, fns in (
            (TORCH, {**nn, TF: tf_run, TORCH: torch_step}),
            (TF, {**nn, TF: tf_run}),
        ):
            print(f"idle check: others used {idle():.2f} cores")
            t = pairwise(
                fns,
                baseline,
                repeats=args.repeats,
                warmup=3,
                steps=args.steps,
                settle=args.settle,
                warm=args.warm,
            )
            for r in report(f"{title}, vs {baseline}", t):
                rows.append({**r, "model": name, "batch": batch, "baseline": baseline})
        for label, fn in ((COMPOSED, composed), (TORCH, torch_step)):
            idle()
            b = batches[COMPOSED]
            step = (lambda timer, fn=fn, b=b: fn(*next(b), timer)) if label != TORCH else fn
            with LoadMeter() as lm:
                per = breakdown(step, 3 * args.repeats)
            total = sum(per.values())
            print(
                f"\n  per-op breakdown, {label}, {name} (median of {3 * args.repeats} consecutive "
                f"steps, others' load {lm.others_cores:.2f} cores), sum {total * 1e3:.2f} ms:"
            )
            for k, v in per.items():
                print(f"    {k:14s} {v * 1e3:7.3f} ms  {100 * v / total:4.1f}%")
            breakdowns.append(
                {
                    "model": name,
                    "contender": label,
                    "stages_s": per,
                    "others_cores": lm.others_cores,
                }
            )
    if args.json:
        out = {
            "method": method(args.steps, args.settle, args.warm),
            "versions": {
                "numpy": np.__version__,
                "torch": torch.__version__,
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "python": platform.python_version(),
            },
            "cpu": _cpu(),
            "repeats": args.repeats,
            "steps_per_call": args.steps,
            "agreement_with_tf": agreement,
            "rows": rows,
            "breakdown": breakdowns,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
