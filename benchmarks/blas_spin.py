"""The composed seed-CNN step with OpenBLAS' worker spin as nnref sets it, and as OpenBLAS
leaves it: what a user gets without setting anything.

Run: python benchmarks/blas_spin.py [--repeats 5] [--steps 20] [--json F]

After each multithreaded GEMM (the step's dense layers are the user's ``@``) OpenBLAS' idle
workers busy-wait for 2**28 TSC ticks (~0.1 s) by default, taking a core from nnref's threads.
nnref shortens that to 2**20 ticks the first time its threads share the cores while no other
Python thread is alive, unless ``OPENBLAS_THREAD_TIMEOUT`` is set
(``nnref.shorten_blas_spin``). The variable is read
when NumPy loads OpenBLAS, so each sample is a fresh process: "nnref" without the variable,
"OpenBLAS default" with ``OPENBLAS_THREAD_TIMEOUT=28`` (OpenBLAS' own value, which nnref then
leaves alone). The two alternate, after waiting for an idle machine; each sample is the median
of ``--steps`` consecutive steps after 5 untimed ones. (The other benchmarks leave the variable
unset, as this script's "nnref" samples do.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {"nnref": None, "OpenBLAS default": "28"}
ALGORITHMS = {"exact": "direct", "fast": "auto"}


def child(algorithm: str, steps: int) -> None:
    """One sample: ``steps`` composed float32 steps in this process, as JSON on stdout."""
    import numpy as np  # OpenBLAS reads OPENBLAS_THREAD_TIMEOUT now, or finds it unset

    sys.path.insert(0, str(HERE))
    import bench_cnn

    import nnref
    from nnref import _threads

    nnref.keep_freed_memory()
    rng = np.random.default_rng(0)
    step = bench_cnn.Step(bench_cnn._params(np.dtype(np.float32), rng), algorithm)
    xs = rng.standard_normal((4, bench_cnn.BATCH, 28, 28, 1)).astype(np.float32)
    ys = rng.integers(0, 10, (4, bench_cnn.BATCH))
    times = []
    for i in range(5 + steps):
        t = time.perf_counter()
        step(xs[i % 4], ys[i % 4])
        times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "ms": 1e3 * statistics.median(times[5:]),
                "spin_shortened": _threads.blas_spin_shortened(),
            }
        )
    )


def sample(algorithm: str, timeout: str | None, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = timeout
    argv = [sys.executable, __file__, "--child", algorithm, "--steps", str(steps)]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="samples per setting and step")
    ap.add_argument("--steps", type=int, default=20, help="timed consecutive steps per sample")
    ap.add_argument("--json", metavar="F", help="write the results to F")
    ap.add_argument("--child", choices=sorted(ALGORITHMS.values()), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    sys.path.insert(0, str(HERE))
    from _harness import LoadMeter, cpu_model, wait_idle

    wait_idle()
    rows = []
    for label, algorithm in ALGORITHMS.items():
        ms: dict[str, list[float]] = {s: [] for s in SETTINGS}
        shortened: dict[str, set[bool]] = {s: set() for s in SETTINGS}
        with LoadMeter() as load:  # the samples' processes count as this one's
            for r in range(args.repeats):
                order = list(SETTINGS) if r % 2 == 0 else list(reversed(SETTINGS))
                for setting in order:
                    s = sample(algorithm, SETTINGS[setting], args.steps)
                    ms[setting].append(s["ms"])
                    shortened[setting].add(s["spin_shortened"])
        others = load.others_cores
        for setting in SETTINGS:
            row = {
                "step": label,
                "setting": setting,
                "ms": statistics.median(ms[setting]),
                "samples": ms[setting],
                "spin_shortened": sorted(shortened[setting]),
                "others_cores": others,
            }
            rows.append(row)
            print(
                f"{label:5s} {setting:16s} {row['ms']:7.1f} ms per step "
                f"(samples {', '.join(f'{x:.1f}' for x in ms[setting])}; "
                f"spin shortened: {row['spin_shortened']}; load {others:.2f})"
            )
    results = {"cpu": cpu_model(), "repeats": args.repeats, "steps": args.steps, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
