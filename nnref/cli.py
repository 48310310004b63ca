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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
