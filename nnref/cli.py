"""The ``nnref`` command: ``nnref verify`` (and the training driver's ``nnref train``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np


def _verify(args: argparse.Namespace) -> int:
    from nnref.verify import DTYPES, SPECS, all_cases, run_fd, run_oracle

    legs = ["fd"] if args.fd_only else ["fd", "tf", "keras"]
    versions = {"numpy": np.__version__}
    if not args.fd_only:
        try:
            from nnref.oracles.tf import import_keras, import_tf

            versions["tensorflow"] = import_tf().__version__
            versions["keras"] = import_keras().__version__
        except ImportError:
            print(
                "nnref verify: TensorFlow/Keras are not installed (pip install 'nnref[tf]'), "
                "or pass --fd-only",
                file=sys.stderr,
            )
            return 2
    ops = args.op or list(SPECS)
    unknown = sorted(set(ops) - set(SPECS))
    if unknown:
        print(f"nnref verify: unknown op(s) {unknown}; known: {sorted(SPECS)}", file=sys.stderr)
        return 2
    dtypes = [np.dtype(d) for d in args.dtype] if args.dtype else list(DTYPES)
    rows = []
    for op in ops:
        for dt in dtypes:
            row = {"op": op, "dtype": dt.name, "cases": 0, "ok": True}
            for leg in legs:
                cases = [c for o, c in all_cases(fd=leg == "fd") if o == op]
                worst, where, ok = 0.0, "", True
                for case in cases:
                    r = run_fd(op, case, dt) if leg == "fd" else run_oracle(op, case, dt, leg)
                    ok &= r.ok
                    if r.error >= worst:
                        worst, where = r.error, f"{case}: {r.worst}"
                    if not r.ok:
                        print(
                            f"FAIL {op} [{case}] {dt.name} {leg}: {r.detail or r.worst}",
                            file=sys.stderr,
                        )
                row[leg] = worst
                row[f"{leg}_where"] = where
                row["ok"] &= ok
                row["cases"] = max(row["cases"], len(cases))
            rows.append(row)
    failed = [r for r in rows if not r["ok"]]
    if args.json:
        print(json.dumps({"versions": versions, "rows": rows, "failed": len(failed)}, indent=1))
    else:
        print("nnref verify: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        head = f"{'op':42s} {'dtype':8s} {'cases':>5s} " + " ".join(
            f"{leg + ' error':>12s}" for leg in legs
        )
        print(head + "  verdict")
        for r in rows:
            errs = " ".join(f"{r[leg]:12.2e}" for leg in legs)
            print(
                f"{r['op']:42s} {r['dtype']:8s} {r['cases']:5d} {errs}  {'ok' if r['ok'] else 'FAIL'}"
            )
        print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nnref.data.datasets import load_dataset
    from nnref.train.loop import make_config, train
    from nnref.train.recipes import RECIPES

    try:
        # Load once: --epochs counts the training set, and train() takes the same data.
        data = load_dataset(args.dataset or RECIPES[args.recipe].dataset, data_dir=args.data_dir)
        cfg = make_config(
            args.recipe,
            data=data,
            dataset=args.dataset,
            data_dir=args.data_dir,
            steps=args.steps,
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            learning_rate=args.lr,
            seed=args.seed,
            dtype=args.dtype,
            display_step=args.log_every,
            conv_algorithm="auto" if args.fast else None,
        )
        out = Path(args.out) if args.out else None
        if args.resume and out is None:
            raise ValueError("--resume needs --out (the directory holding checkpoint.npz)")
        print(
            f"nnref train {cfg.recipe}: {cfg.dataset}, {cfg.steps} steps, batch {cfg.batch_size}, "
            f"{cfg.optimizer} lr {cfg.learning_rate}, {cfg.dtype}, seed {cfg.seed}"
            + (f", conv algorithm {cfg.conv_algorithm}" if cfg.conv_algorithm != "direct" else "")
        )
        result = train(cfg, out=out, resume=args.resume, progress=not args.no_progress, data=data)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"nnref train: {e}", file=sys.stderr)
        return 2
    if out is not None:
        print(
            f"wrote {out}/metrics.csv, metrics.json, checkpoint.npz"
            + (", curves.png, predictions.png" if (out / "curves.png").exists() else "")
        )
    return 0 if np.isfinite(result.history[-1]["loss"] if result.history else 0.0) else 1


def _errata(args: argparse.Namespace) -> int:
    from nnref.train.errata import run_errata

    rows = run_errata(
        steps=args.steps, seed=args.seed, log=(lambda s: None) if args.json else print
    )
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nnref", description="nnref: a verified NumPy reference for neural-network ops"
    )
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "verify",
        help="check every op against finite differences, TensorFlow and Keras",
        description="Run every op's cases against three oracles on the installed TF/Keras and "
        "print the worst error per op and dtype (error: max |a-b| / (|b| + rms(b))).",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")
    v.add_argument(
        "--fd-only", action="store_true", help="finite differences only (no TensorFlow needed)"
    )
    v.add_argument("--op", action="append", help="only this op (repeatable)")
    v.add_argument(
        "--dtype",
        action="append",
        choices=["float32", "float64"],
        help="only this dtype (repeatable)",
    )
    v.set_defaults(func=_verify)

    from nnref.train.recipes import RECIPES

    t = sub.add_parser(
        "train",
        help="train a lesson recipe (default dataset: scikit-learn's bundled digits)",
        description="Train one of the lessons' networks on nnref's verified ops. "
        + " ".join(f"{r.name}: {r.lesson}." for r in RECIPES.values()),
    )
    t.add_argument("recipe", choices=sorted(RECIPES))
    t.add_argument(
        "--dataset",
        choices=["digits", "mnist", "toy"],
        help="default: the recipe's (digits; toy for sigmoid-mse)",
    )
    t.add_argument(
        "--data-dir", help="directory with mnist.npz or the IDX files (default: Keras' cache)"
    )
    g = t.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="optimizer steps (default: the lesson's)")
    g.add_argument(
        "--epochs", type=int, help="epochs, converted to steps for the recipe's batching"
    )
    t.add_argument("--batch-size", type=int)
    t.add_argument("--optimizer", choices=["sgd", "adam", "rmsprop"])
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument(
        "--out", help="directory for metrics.csv/json, curves.png, predictions.png, checkpoint.npz"
    )
    t.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.npz")
    t.add_argument("--log-every", type=int, help="steps between log lines (default: the lesson's)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--fast",
        action="store_true",
        help="conv layers use conv2d(algorithm='auto'): the DFT convolution where it is faster "
        "(cnn: conv2); agrees to rounding but is not exact (zeros and ties, see conv2d_fwd)",
    )
    t.set_defaults(func=_train)

    e = sub.add_parser("errata", help="run each lesson's bug beside the fixed recipe")
    e.add_argument("--steps", type=int, help="steps per run (default: each recipe's)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_errata)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
