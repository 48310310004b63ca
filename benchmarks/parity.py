"""Long step-by-step training parity with TensorFlow (the tests run a short version).

Run: python benchmarks/parity.py [--steps 200] [--recipes mlp cnn ...] [--json PATH]
For each recipe (default: all six) and dtype: max relative difference of the per-step batch
loss between nnref and a GradientTape + Keras-optimizer loop from the same weights on the same
batches. ``--json`` saves the figures (the README's parity table is rendered from them).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from nnref.oracles.tf_train import parity_losses
from nnref.train.loop import make_config
from nnref.train.recipes import RECIPES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=sorted(RECIPES))
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    worst64 = 0.0
    rows = []
    for recipe in args.recipes:
        for dt in ("float64", "float32"):
            t = time.perf_counter()
            ours, theirs = parity_losses(make_config(recipe, dtype=dt), args.steps)
            rel = np.abs(np.array(ours) - theirs) / np.abs(theirs)
            if dt == "float64":
                worst64 = max(worst64, float(rel.max()))
            rows.append(
                {
                    "recipe": recipe,
                    "dtype": dt,
                    "max_rel": float(rel.max()),
                    "at_step": int(rel.argmax()) + 1,
                    "last_rel": float(rel[-1]),
                }
            )
            print(
                f"{recipe:13s} {dt}: max rel loss difference over {args.steps} steps {rel.max():.2e} "
                f"(step {rel.argmax() + 1}), last {rel[-1]:.2e}  [{time.perf_counter() - t:.0f} s]"
            )
    print(f"float64 worst {worst64:.2e}: {'within' if worst64 <= 1e-9 else 'OVER'} the 1e-9 target")
    if args.json:
        from nnref.oracles.tf import import_keras, import_tf

        versions = {
            "numpy": np.__version__,
            "tensorflow": import_tf().__version__,
            "keras": import_keras().__version__,
        }
        with open(args.json, "w") as f:
            json.dump({"steps": args.steps, "versions": versions, "rows": rows}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
