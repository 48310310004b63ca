"""nnref's gradient checker beside torch.autograd.gradcheck and jax.test_util.check_grads.

Run: python benchmarks/checker_peers.py [--seeds 2] [--json PATH]   (on demand: tox -e checker-peers)

One corpus of hand-written backward passes, each a NumPy ``fwd(*args) -> (y, residuals)`` and
``bwd(residuals, dy) -> grads`` (nnref's contract), broken ones with their bug in one line and
correct ones to count false failures, each checked by every checker on the same inputs:

- nnref ``check_vjp`` at its defaults (float32 through the float64 shadow), and natively in
  float32 (``shadow=False``, what a function that only runs in float32 gets);
- ``torch.autograd.gradcheck`` through a ``torch.autograd.Function`` calling the NumPy pair:
  defaults in float64 and float32, and float32 with a tuned ``eps``/``atol``/``rtol``;
- ``jax.test_util.check_grads(..., order=1, modes=["rev"])`` through a ``jax.custom_vjp``
  calling the pair with ``pure_callback`` (``custom_vjp`` has no forward mode), float64 and
  float32.

A float32-only bug (a float16 accumulation, an ``exp`` overflow) is a bug in float32 and a
correct case in float64. Localisation: ``entry`` when the report names an entry of the wrong
input where the broken gradient differs from the right one, ``input`` when it names the wrong
input only, ``none`` otherwise (nothing named, or an input whose gradient is right). Time is wall-clock per check; memory is the peak resident set
size above the one at the check's start, sampled every 2 ms in a thread (RSS, so torch's and
XLA's native buffers count; memory the process already holds and reuses does not).
"""

from __future__ import annotations

import os

# Before NumPy loads: OpenBLAS' workers sleep ~0.4 ms after a call instead of spinning ~0.1 s
# into the next check's timing (the checks run back to back, with no idle gap between them).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import _harness  # after the variable above

import argparse
import json
import platform
import re
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import nnref
from nnref.check import check_vjp

Arrays = tuple[np.ndarray, ...]
Bwd = Callable[[Any, np.ndarray], tuple[Any, ...]]

# --------------------------------------------------------------------------- ops not in nnref


def tanh_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.tanh(x)
    return y, y


def tanh_bwd(y: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    return ((1 - y * y) * dy,)


def layer_norm_fwd(x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Normalise the last axis (no gain or bias): ``(x - mean) / sqrt(var + 1e-5)``."""
    mu = x.mean(-1, keepdims=True)
    inv = 1 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + x.dtype.type(1e-5))
    xhat = (x - mu) * inv
    return xhat, (xhat, inv)


def layer_norm_bwd(res: tuple[np.ndarray, np.ndarray], dy: np.ndarray) -> tuple[np.ndarray]:
    xhat, inv = res
    m = dy.mean(-1, keepdims=True)
    return (inv * (dy - m - xhat * (dy * xhat).mean(-1, keepdims=True)),)


def naive_sigmoid_fwd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 1 / (1 + np.exp(-np.maximum(x, x.dtype.type(-80)))), x


def sigmoid_from_x_bwd(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    s = naive_sigmoid_fwd(x)[0]
    return (dy * s * (1 - s),)


def naive_sigmoid_bwd(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-x)  # overflows in float32 below x ~ -88.7: inf / inf = nan
        return (dy * e / (1 + e) ** 2,)


def pool_fwd(x: np.ndarray) -> tuple[np.ndarray, Any]:
    return nnref.max_pool2d_fwd(x, ksize=2, strides=2)


def conv_fwd(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, Any]:
    return nnref.conv2d_fwd(x, w)


# --------------------------------------------------------------------------- broken backward


def _edit(bwd: Bwd, k: int, change: Callable[[np.ndarray, Any], np.ndarray]) -> Bwd:
    """``bwd`` with its ``k``-th gradient replaced by ``change(g, residuals)``."""

    def broken(res: Any, dy: np.ndarray) -> tuple[Any, ...]:
        gs = list(bwd(res, dy))
        gs[k] = change(gs[k].copy(), res).astype(gs[k].dtype)
        return tuple(gs)

    return broken


def _flip_one(g: np.ndarray, _: Any) -> np.ndarray:
    g[123, 45] = -g[123, 45]
    return g


def _column(g: np.ndarray, _: Any) -> np.ndarray:
    g[:, 0] *= 1.01
    return g


def dense_half_bwd(res: Any, dy: np.ndarray) -> tuple[np.ndarray, ...]:
    dx, dw, db = nnref.dense_bwd(res, dy)
    if dy.dtype == np.float32:  # an autocast-style bug: float32 products summed in float16
        dx = (dy.astype(np.float16) @ res.w.T.astype(np.float16)).astype(np.float32)
    return dx, dw, db


def relu_leaky_bwd(res: Any, dy: np.ndarray) -> tuple[np.ndarray]:
    return (np.where(res.y > 0, dy, dy * dy.dtype.type(0.01)),)


def softmax_no_sum_bwd(res: Any, dy: np.ndarray) -> tuple[np.ndarray]:
    return (res.y * dy,)


def log_softmax_no_sum_bwd(res: Any, dy: np.ndarray) -> tuple[np.ndarray]:
    return (dy - np.exp(res.y) * dy,)


def pool_average_bwd(res: Any, dy: np.ndarray) -> tuple[np.ndarray]:
    return ((np.repeat(np.repeat(dy, 2, 1), 2, 2) / dy.dtype.type(4)),)


def layer_norm_no_mean_bwd(res: tuple[np.ndarray, np.ndarray], dy: np.ndarray) -> tuple[np.ndarray]:
    xhat, inv = res
    return (inv * (dy - xhat * (dy * xhat).mean(-1, keepdims=True)),)


def tanh_off_bwd(y: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray]:
    return ((1 - y * y + y.dtype.type(1e-4)) * dy,)


# --------------------------------------------------------------------------- the corpus


def _normal(*shape: int, scale: float = 1.0) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape) * scale


def _away_from_zero(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    def draw(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(shape)
        return x + np.sign(x) * 0.1

    return draw


def _zeros_among(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    def draw(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(shape)
        return np.where(rng.random(shape) < 0.3, 0.0, x)

    return draw


def _distinct(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0


def _with_overflow(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    def draw(rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal(shape)
        x.flat[-1] = -100.0
        return x

    return draw


@dataclass(frozen=True)
class Case:
    id: str
    bug: str  # one line; "" for a correct backward pass
    fwd: Callable[..., tuple[Any, Any]]
    bwd: Bwd
    ref_bwd: Bwd
    draws: tuple[Callable[[np.random.Generator], np.ndarray], ...]
    broken_in: frozenset[str] = field(default_factory=frozenset)  # dtypes where bwd is wrong
    big: bool = False

    def broken(self, dtype: str) -> bool:
        return dtype in self.broken_in


BOTH = frozenset({"float32", "float64"})
F32 = frozenset({"float32"})
DENSE = (_normal(6, 5), _normal(5, 4, scale=0.5), _normal(4))
SQUARE = (_normal(5, 6), _normal(6, 6, scale=0.4), _normal(6))
CONV = (_normal(1, 5, 5, 2), _normal(3, 3, 2, 3, scale=0.3))
LARGE = (_normal(4, 200), _normal(200, 300, scale=0.07), _normal(300))

CASES = [
    Case("dense", "", nnref.dense_fwd, nnref.dense_bwd, nnref.dense_bwd, DENSE),
    Case("relu", "", nnref.relu_fwd, nnref.relu_bwd, nnref.relu_bwd, (_away_from_zero(4, 6),)),
    Case(
        "relu-exact-zeros",
        "",
        nnref.relu_fwd,
        nnref.relu_bwd,
        nnref.relu_bwd,
        (_zeros_among(4, 6),),
    ),
    Case("tanh", "", tanh_fwd, tanh_bwd, tanh_bwd, (_normal(4, 6),)),
    Case("softmax", "", nnref.softmax_fwd, nnref.softmax_bwd, nnref.softmax_bwd, (_normal(4, 6),)),
    Case(
        "log-softmax",
        "",
        nnref.log_softmax_fwd,
        nnref.log_softmax_bwd,
        nnref.log_softmax_bwd,
        (_normal(4, 6),),
    ),
    Case("conv2d", "", conv_fwd, nnref.conv2d_bwd, nnref.conv2d_bwd, CONV),
    Case(
        "max-pool",
        "",
        pool_fwd,
        nnref.max_pool2d_bwd,
        nnref.max_pool2d_bwd,
        (_distinct(1, 4, 4, 2),),
    ),
    Case("layer-norm", "", layer_norm_fwd, layer_norm_bwd, layer_norm_bwd, (_normal(3, 8),)),
    Case("dense-200x300", "", nnref.dense_fwd, nnref.dense_bwd, nnref.dense_bwd, LARGE, big=True),
    Case(
        "dense-transposed-dw",
        "dW returned transposed (square 6x6 kernel)",
        nnref.dense_fwd,
        _edit(nnref.dense_bwd, 1, lambda g, _: g.T),
        nnref.dense_bwd,
        SQUARE,
        BOTH,
    ),
    Case(
        "dense-dx-1.001",
        "dx scaled by 1.001",
        nnref.dense_fwd,
        _edit(nnref.dense_bwd, 0, lambda g, _: g * 1.001),
        nnref.dense_bwd,
        DENSE,
        BOTH,
    ),
    Case(
        "dense-db-reversed",
        "db in reverse order, dx and dW right",
        nnref.dense_fwd,
        _edit(nnref.dense_bwd, 2, lambda g, _: g[::-1]),
        nnref.dense_bwd,
        DENSE,
        BOTH,
    ),
    Case(
        "dense-column-1%",
        "dW's first column 1% too large",
        nnref.dense_fwd,
        _edit(nnref.dense_bwd, 1, _column),
        nnref.dense_bwd,
        DENSE,
        BOTH,
    ),
    Case(
        "dense-200x300-one-sign",
        "one flipped sign among dW's 60 000 entries (200x300 weight)",
        nnref.dense_fwd,
        _edit(nnref.dense_bwd, 1, _flip_one),
        nnref.dense_bwd,
        LARGE,
        BOTH,
        big=True,
    ),
    Case(
        "relu-leaky-grad",
        "slope 0.01 (leaky relu's) below zero",
        nnref.relu_fwd,
        relu_leaky_bwd,
        nnref.relu_bwd,
        (_away_from_zero(4, 6),),
        BOTH,
    ),
    Case(
        "tanh-1e-4",
        "derivative 1 - y^2 + 1e-4",
        tanh_fwd,
        tanh_off_bwd,
        tanh_bwd,
        (_normal(4, 6),),
        BOTH,
    ),
    Case(
        "softmax-zero",
        "gradient replaced by zeros",
        nnref.softmax_fwd,
        lambda res, dy: (np.zeros_like(dy),),
        nnref.softmax_bwd,
        (_normal(4, 6),),
        BOTH,
    ),
    Case(
        "softmax-no-sum",
        "y * dy: the -y * sum(y * dy) term missing",
        nnref.softmax_fwd,
        softmax_no_sum_bwd,
        nnref.softmax_bwd,
        (_normal(4, 6),),
        BOTH,
    ),
    Case(
        "log-softmax-no-sum",
        "dy - softmax * dy instead of dy - softmax * sum(dy)",
        nnref.log_softmax_fwd,
        log_softmax_no_sum_bwd,
        nnref.log_softmax_bwd,
        (_normal(4, 6),),
        BOTH,
    ),
    Case(
        "conv2d-flipped-dw",
        "dW flipped in both spatial axes",
        conv_fwd,
        _edit(nnref.conv2d_bwd, 1, lambda g, _: g[::-1, ::-1]),
        nnref.conv2d_bwd,
        CONV,
        BOTH,
    ),
    Case(
        "max-pool-average",
        "average-pool backward (dy / 4 to every window entry)",
        pool_fwd,
        pool_average_bwd,
        nnref.max_pool2d_bwd,
        (_distinct(1, 4, 4, 2),),
        BOTH,
    ),
    Case(
        "layer-norm-no-mean",
        "the -mean(dy) term missing",
        layer_norm_fwd,
        layer_norm_no_mean_bwd,
        layer_norm_bwd,
        (_normal(3, 8),),
        BOTH,
    ),
    Case(
        "dense-float16-dx",
        "float32 only: dx accumulated in float16",
        nnref.dense_fwd,
        dense_half_bwd,
        nnref.dense_bwd,
        DENSE,
        F32,
    ),
    Case(
        "sigmoid-exp-overflow",
        "float32 only: exp(-x) overflows at x = -100, the gradient is NaN",
        naive_sigmoid_fwd,
        naive_sigmoid_bwd,
        sigmoid_from_x_bwd,
        (_with_overflow(4, 6),),
        F32,
    ),
]


# --------------------------------------------------------------------------- the checkers


def _where_nnref(r: Any) -> tuple[int | None, tuple[int, ...] | None]:
    """The input and entry a failed nnref check names."""
    w = r.worst
    if w is not None and w.status == "violation":
        return w.input, w.index
    if r.precision_worst is not None and r.precision_worst[4] > 1:
        name, entry = r.precision_worst[:2]
        return r.input_names.index(name), entry
    m = re.search(r"d(\w+)\[([\d, ]*)\]", r.linearity_error or "")
    if m:  # "Backward is not linear in the cotangent: dx0[2, 1] of ..."
        return r.input_names.index(m.group(1)), tuple(int(v) for v in m.group(2).split(","))
    return None, None


def nnref_check(shadow: bool | str) -> Callable[..., tuple[bool, Any, Any]]:
    def run(case: Case, args: Arrays, seed: int) -> tuple[bool, Any, Any]:
        r = check_vjp(case.fwd, case.bwd, args, seed=seed, shadow=shadow, raise_on_failure=False)
        return (False, None, None) if r.ok else (True, *_where_nnref(r))

    return run


def torch_check(**tol: float) -> Callable[..., tuple[bool, Any, Any]]:
    import torch

    def run(case: Case, args: Arrays, seed: int) -> tuple[bool, Any, Any]:
        class Op(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, *xs: Any) -> Any:
                y, ctx.res = case.fwd(*(x.detach().numpy() for x in xs))
                return torch.from_numpy(np.array(y))

            @staticmethod
            def backward(ctx: Any, dy: Any) -> Any:
                gs = case.bwd(ctx.res, np.array(dy.detach().numpy()))
                return tuple(torch.from_numpy(np.array(g)) for g in gs)

        xs = tuple(torch.from_numpy(a.copy()).requires_grad_() for a in args)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                torch.autograd.gradcheck(Op.apply, xs, **tol)
        except Exception as e:  # GradcheckError, or the pair failing under torch
            m = re.search(r"with respect to input (\d+)", str(e))
            return True, int(m.group(1)) if m else None, None
        return False, None, None

    return run


def jax_check() -> Callable[..., tuple[bool, Any, Any]]:
    import jax
    from jax.test_util import check_grads

    jax.config.update("jax_enable_x64", True)

    def run(case: Case, args: Arrays, seed: int) -> tuple[bool, Any, Any]:
        dt = args[0].dtype
        y_shape = np.shape(case.fwd(*args)[0])

        def host_bwd(*a: np.ndarray) -> tuple[np.ndarray, ...]:
            *xs, dy = (np.asarray(v) for v in a)
            return tuple(np.asarray(g, dt) for g in case.bwd(case.fwd(*xs)[1], dy))

        @jax.custom_vjp
        def f(*xs: Any) -> Any:
            out = jax.ShapeDtypeStruct(y_shape, dt)
            return jax.pure_callback(lambda *a: np.asarray(case.fwd(*a)[0], dt), out, *xs)

        def f_fwd(*xs: Any) -> Any:
            return f(*xs), xs

        def f_bwd(xs: Any, dy: Any) -> Any:
            shapes = tuple(jax.ShapeDtypeStruct(x.shape, dt) for x in xs)
            return jax.pure_callback(host_bwd, shapes, *xs, dy)

        f.defvjp(f_fwd, f_bwd)
        try:
            with np.errstate(all="ignore"):
                check_grads(f, tuple(jax.numpy.asarray(a) for a in args), order=1, modes=["rev"])
        except AssertionError:
            return True, None, None
        return False, None, None

    return run


#: (checker, dtype, runner factory, settings shown with the figures)
CHECKERS: list[tuple[str, str, Callable[[], Callable[..., tuple[bool, Any, Any]]], str]] = [
    ("nnref check_vjp", "float64", lambda: nnref_check("auto"), "defaults"),
    ("nnref check_vjp", "float32", lambda: nnref_check("auto"), "defaults (float64 shadow)"),
    ("nnref check_vjp", "float32", lambda: nnref_check(False), "shadow=False (native float32)"),
    ("torch gradcheck", "float64", lambda: torch_check(), "defaults"),
    ("torch gradcheck", "float32", lambda: torch_check(), "defaults"),
    (
        "torch gradcheck",
        "float32",
        lambda: torch_check(eps=1e-3, atol=1e-3, rtol=1e-2),
        "eps=1e-3, atol=1e-3, rtol=1e-2",
    ),
    ("jax check_grads", "float64", jax_check, "defaults, modes=['rev']"),
    ("jax check_grads", "float32", jax_check, "defaults, modes=['rev']"),
]


# --------------------------------------------------------------------------- measuring


class PeakRSS:
    """Peak resident set size above the one at entry, sampled every 2 ms in a thread."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    @property
    def mb(self) -> float:
        return (self.peak - self.start) / 2**20


def _bug_mask(case: Case, args: Arrays, k: int) -> np.ndarray:
    """Entries of input ``k`` where the broken gradient differs from the right one."""
    y, res = case.fwd(*args)
    dy = np.random.default_rng(1).standard_normal(np.shape(y)).astype(args[0].dtype)
    with np.errstate(all="ignore"):
        a, b = np.asarray(case.bwd(res, dy)[k]), np.asarray(case.ref_bwd(res, dy)[k])
    return ~(a == b)


def _grade(case: Case, args: Arrays, where: int | None, entry: Any) -> str:
    bad = []
    for k in range(len(args)):
        mask = _bug_mask(case, args, k)
        if mask.any():
            bad.append(k)
            if k == where and entry is not None and mask[tuple(entry)]:
                return "entry"
    return "input" if where in bad else "none"


def measure(seeds: int, big_seeds: int, checkers: list[str]) -> list[dict[str, Any]]:
    """Every check's verdict, grade, time and memory: each case at ``seeds`` seeds (the
    200x300 cases at the first ``big_seeds``: torch's full Jacobians take ~30 s and GBs)."""
    runners = [
        (name, dt, make(), how) for name, dt, make, how in CHECKERS if name.split()[0] in checkers
    ]
    rows = []
    for seed in range(seeds):
        for ci, case in enumerate(CASES):
            if case.big and seed >= big_seeds:
                continue
            draws = [d(np.random.default_rng([seed, ci, k])) for k, d in enumerate(case.draws)]
            for name, dt, run, how in runners:
                args = tuple(a.astype(dt) for a in draws)
                with PeakRSS() as mem:
                    t = time.perf_counter()
                    failed, where, entry = run(case, args, seed)
                    seconds = time.perf_counter() - t
                broken = case.broken(dt)
                rows.append(
                    {
                        "checker": name,
                        "dtype": dt,
                        "settings": how,
                        "case": case.id,
                        "seed": seed,
                        "broken": broken,
                        "failed": failed,
                        "grade": _grade(case, args, where, entry) if failed and broken else None,
                        "seconds": seconds,
                        "peak_mb": mem.mb,
                    }
                )
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, dt, _, how in CHECKERS:
        rs = [r for r in rows if (r["checker"], r["dtype"], r["settings"]) == (name, dt, how)]
        if not rs:
            continue
        broken = [r for r in rs if r["broken"]]
        correct = [r for r in rs if not r["broken"]]
        caught = [r for r in broken if r["failed"]]
        false = [r for r in correct if r["failed"]]
        times = [r["seconds"] for r in rs]
        out.append(
            {
                "checker": name,
                "dtype": dt,
                "settings": how,
                "broken": len(broken),
                "detected": len(caught),
                "correct": len(correct),
                "false_failures": len(false),
                "grades": {
                    g: sum(r["grade"] == g for r in caught) for g in ("entry", "input", "none")
                },
                "missed": sorted({r["case"] for r in broken if not r["failed"]}),
                "falsely_failed": sorted({r["case"] for r in false}),
                "median_ms": 1e3 * statistics.median(times),
                "max_ms": 1e3 * max(times),
                "peak_mb": max(r["peak_mb"] for r in rs),
                "peak_case": max(rs, key=lambda r: r["peak_mb"])["case"],
            }
        )
    return out


def _versions(checkers: list[str]) -> dict[str, str]:
    v = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "jax"):
        if mod in checkers:
            v[mod] = __import__(mod).__version__
    return v


def table(summary: list[dict[str, Any]]) -> str:
    lines = [
        f"{'checker':<16} {'dtype':<8} {'settings':<32} {'detected':>9} {'false':>7} "
        f"{'entry/input/none':>17} {'median':>9} {'max':>9} {'peak RSS':>9}"
    ]
    for s in summary:
        g = s["grades"]
        lines.append(
            f"{s['checker']:<16} {s['dtype']:<8} {s['settings']:<32} "
            f"{100 * s['detected'] / s['broken']:>8.0f}% "
            f"{100 * s['false_failures'] / s['correct']:>6.0f}% "
            f"{g['entry']:>7}/{g['input']}/{g['none']:<5} {s['median_ms']:>7.1f}ms "
            f"{s['max_ms'] / 1e3:>8.2f}s {s['peak_mb']:>7.0f}MB"
        )
        if s["missed"]:
            lines.append(f"    missed: {', '.join(s['missed'])}")
        if s["falsely_failed"]:
            lines.append(f"    false failures: {', '.join(s['falsely_failed'])}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per case (default 3)")
    ap.add_argument(
        "--big-seeds", type=int, default=1, help="seeds for the 200x300 cases (default 1)"
    )
    ap.add_argument(
        "--checkers",
        nargs="+",
        default=["nnref", "torch", "jax"],
        choices=["nnref", "torch", "jax"],
    )
    ap.add_argument("--json", help="write the figures and every check to this file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with _harness.LoadMeter() as load:
        rows = measure(args.seeds, args.big_seeds, args.checkers)
    summary = summarise(rows)
    result = {
        "versions": _versions(args.checkers),
        "seeds": args.seeds,
        "big_seeds": args.big_seeds,
        "cases": [{"id": c.id, "bug": c.bug, "broken_in": sorted(c.broken_in)} for c in CASES],
        "method": (
            "each check timed alone, wall clock; peak RSS above the check's start, sampled "
            f"every 2 ms; OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}; "
            f"other processes used {load.others_cores:.2f} cores meanwhile"
        ),
        "total_s": time.perf_counter() - t0,
        "summary": summary,
        "checks": rows,
    }
    print(table(summary))
    print(result["method"], f"; {result['total_s']:.0f} s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
