"""Test accuracy of every recipe at its defaults: the README's recipe table.

Run: python benchmarks/recipe_accuracy.py [--json PATH] [--recipes mlp cnn ...]
Each recipe trains as ``nnref train RECIPE`` does (its default dataset, steps, batches,
optimizer; float32, seed 0); ``sigmoid-mse`` also on digits, where a 3-unit sigmoid/MSE net is
not expected to classify. The figures are deterministic for a given NumPy and BLAS.
"""

from __future__ import annotations

import os

# One OpenBLAS thread, as tox runs the tests (tox.ini): float32 training gives other bits with 1
# and 2 BLAS threads, and the training tests compare these figures only on the same setting.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import time

import numpy as np

from nnref._machine import numpy_simd
from nnref.train.loop import make_config, train
from nnref.train.recipes import RECIPES


def measure(recipes: list[str]) -> dict:
    """One row per run: the configuration, the split sizes and the final test accuracy."""
    plan = [(r, None) for r in recipes]
    if "sigmoid-mse" in recipes:
        plan.append(("sigmoid-mse", "digits"))
    runs = []
    for recipe, dataset in plan:
        cfg = make_config(recipe, dataset=dataset)
        t = time.perf_counter()
        result = train(cfg, log=lambda s: None)
        seconds = time.perf_counter() - t
        runs.append(
            {
                **result.to_json()["config"],
                "train_samples": result.train_samples,
                "test_samples": result.test_samples,
                "test_accuracy": result.test_accuracy,
                "seconds": round(seconds, 1),
            }
        )
        print(
            f"{recipe:13s} on {cfg.dataset:6s}: test accuracy {result.test_accuracy:.4f} "
            f"[{seconds:.0f} s]",
            flush=True,
        )
    return {"platform": platform_key(), "runs": runs}


def platform_key() -> dict[str, str]:
    """What the figures depend on besides the code: NumPy, the CPU architecture and OpenBLAS'
    thread count (GEMM results differ in the last bits with it, and training amplifies them;
    OpenBLAS defaults to one thread per core)."""
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return {
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "numpy_simd": numpy_simd(),
        "blas_threads": threads or str(os.cpu_count()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=sorted(RECIPES))
    args = ap.parse_args()
    results = measure(args.recipes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
