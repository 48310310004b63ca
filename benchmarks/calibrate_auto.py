"""Calibration of ``conv2d(algorithm="auto")``: DFT/direct time against the FLOP estimate.

Run: python benchmarks/calibrate_auto.py [--threads 1]

For each convolution (SAME, float32, forward + dx + dw) prints the measured time ratio
DFT/direct, the estimated FLOP ratio behind ``"auto"`` (``nnref.ops.conv._dft_flops``), their
quotient (how far the estimate is off) and what ``"auto"`` picks. ``--threads 1`` (the default)
times CPU seconds with one nnref thread and one BLAS thread, as the constants in
``nnref/ops/conv.py`` were calibrated; ``--threads 2`` times wall seconds on two threads.
"""

from __future__ import annotations

import argparse
import os

if __name__ == "__main__":  # before NumPy loads
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ARGS = ap.parse_args()
    os.environ["NNREF_NUM_THREADS"] = str(ARGS.threads)
    if ARGS.threads == 1:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"

import time

import numpy as np

import nnref
from nnref.ops import conv

CASES = [  # (N, H, W, C_in), (KH, KW, C_in, C_out)
    ((128, 14, 14, 32), (5, 5, 32, 64)),
    ((128, 7, 7, 32), (5, 5, 32, 64)),
    ((128, 4, 4, 32), (5, 5, 32, 64)),
    ((32, 4, 4, 32), (5, 5, 32, 64)),
    ((128, 2, 2, 32), (5, 5, 32, 64)),
    ((128, 14, 14, 32), (3, 3, 32, 64)),
    ((128, 8, 8, 32), (3, 3, 32, 64)),
    ((128, 6, 6, 32), (3, 3, 32, 64)),
    ((128, 3, 3, 32), (3, 3, 32, 64)),
    ((128, 2, 2, 32), (3, 3, 32, 64)),
    ((128, 28, 28, 16), (5, 5, 16, 32)),
    ((128, 28, 28, 16), (3, 3, 16, 32)),
    ((128, 28, 28, 32), (3, 3, 32, 32)),
    ((128, 28, 28, 1), (5, 5, 1, 32)),
    ((128, 28, 28, 3), (5, 5, 3, 32)),
    ((32, 56, 56, 64), (3, 3, 64, 64)),
]


def _seconds(f, wall: bool, repeats: int = 5) -> float:
    clock = time.perf_counter if wall else time.process_time
    f()
    best = float("inf")
    for _ in range(repeats):
        t = clock()
        f()
        best = min(best, clock() - t)
    return best


def main() -> None:
    wall = ARGS.threads != 1
    rng = np.random.default_rng(0)
    print(
        f"{'threads' if wall else 'thread'} {ARGS.threads}, {'wall' if wall else 'CPU'} time; "
        f"auto: DFT when direct >= {conv._DFT_MIN_FLOPS:.0e} FLOPs and "
        f"{conv._DFT_PENALTY} x DFT FLOPs < direct's"
    )
    print(
        f"{'x':18s} {'w':16s} {'direct ms':>9s} {'DFT/direct':>10s} {'FLOPs':>6s} {'off':>5s} auto"
    )
    for xs, ws in CASES:
        x = rng.standard_normal(xs).astype(np.float32)
        w = (0.05 * rng.standard_normal(ws)).astype(np.float32)

        dy = rng.standard_normal((*xs[:3], ws[3])).astype(np.float32)

        def run(algorithm: str, x=x, w=w, dy=dy) -> None:
            _, res = nnref.conv2d_fwd(x, w, padding="SAME", algorithm=algorithm)
            nnref.conv2d_bwd(res, dy)

        direct, dft = _seconds(lambda: run("direct"), wall), _seconds(lambda: run("dft"), wall)
        plan = nnref.conv2d_fwd(x[:1], w, padding="SAME")[1].plan
        est_dft, est_direct = conv._dft_flops(x, w, plan)
        pick = "dft" if conv._dft_wins(x, w, (1, 1), (1, 1), plan) else "direct"
        measured, est = dft / direct, est_dft / est_direct
        print(
            f"{xs!s:18s} {ws!s:16s} {direct * 1e3:9.2f} {measured:10.2f} {est:6.3f} "
            f"{measured / est:5.1f} {pick}{'' if (measured < 1) == (pick == 'dft') else '  (miss)'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
