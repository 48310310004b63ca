"""Long step-by-step training parity with TensorFlow (the tests run a short version).

Run: python benchmarks/parity.py [--steps 200] [--recipes mlp cnn digits-kfold]
For each recipe and dtype: max relative difference of the per-step batch loss between nnref
and a GradientTape + Keras-optimizer loop from the same weights on the same batches.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nnref.oracles.tf_train import parity_losses
from nnref.train.loop import make_config
from nnref.train.recipes import RECIPES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument(
        "--recipes", nargs="+", default=["mlp", "cnn", "digits-kfold"], choices=sorted(RECIPES)
    )
    args = ap.parse_args()
    worst64 = 0.0
    for recipe in args.recipes:
        for dt in ("float64", "float32"):
            t = time.perf_counter()
            ours, theirs = parity_losses(make_config(recipe, dtype=dt), args.steps)
            rel = np.abs(np.array(ours) - theirs) / np.abs(theirs)
            if dt == "float64":
                worst64 = max(worst64, float(rel.max()))
            print(
                f"{recipe:13s} {dt}: max rel loss difference over {args.steps} steps {rel.max():.2e} "
                f"(step {rel.argmax() + 1}), last {rel[-1]:.2e}  [{time.perf_counter() - t:.0f} s]"
            )
    print(f"float64 worst {worst64:.2e}: {'within' if worst64 <= 1e-9 else 'OVER'} the 1e-9 target")


if __name__ == "__main__":
    main()
