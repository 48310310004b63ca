"""The ``nnref`` command: ``nnref verify`` (and the training driver's ``nnref train``)."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from nnref._signals import STOP_SIGNALS, handled, stopped_by


def _verify(args: argparse.Namespace) -> int:
    from nnref._machine import numpy_simd
    from nnref.cases import DTYPES, TABLES
    from nnref.verify import EXTRAS, LEGS, all_cases, installed, leg_function, run_case, run_fd

    chosen = list(dict.fromkeys(args.op or ()))  # an op named twice is checked once
    ops = [op for op in chosen or list(TABLES) if op != "initializers"]
    unknown = sorted(set(ops) - set(TABLES))
    if unknown:
        print(f"nnref verify: unknown op(s) {unknown}; known: {sorted(TABLES)}", file=sys.stderr)
        return 2
    legs = ["fd"] if args.fd_only else list(LEGS)
    if not args.fd_only and not (installed("tf") and installed("keras")):
        print(
            "nnref verify: TensorFlow/Keras are not installed (pip install 'nnref[tf]'), "
            "or pass --fd-only",
            file=sys.stderr,
        )
        return 2
    versions = {"numpy": np.__version__, "numpy_simd": numpy_simd()}
    not_installed = [leg for leg in legs if not installed(leg)]
    for leg in legs:
        if leg != "fd" and leg not in not_installed:
            versions.update(_versions(leg))
    dtypes = [np.dtype(d) for d in dict.fromkeys(args.dtype)] if args.dtype else list(DTYPES)
    rows = []
    for op in ops:
        table = TABLES[op]
        for dt in dtypes if table.dtyped else dtypes[:1]:
            row: dict = {"op": op, "dtype": dt.name if table.dtyped else "-", "cases": 0}
            row["ok"] = True
            status: dict[str, str] = {}
            for leg in legs:
                fn = None if leg == "fd" else leg_function(op, leg) if installed(leg) else None
                if leg == "fd":
                    cases = [c for o, c in all_cases(fd=True) if o == op]
                    if not cases:
                        status[leg], row[leg] = "n/a", None
                        continue
                elif not installed(leg):
                    status[leg], row[leg] = "not installed", None
                    continue
                elif fn is None:
                    status[leg], row[leg] = "n/a", None
                    continue
                else:
                    cases = [c.id for c in table.cases]
                worst, where, ok = 0.0, "", True
                for case in cases:
                    r = run_fd(op, case, dt) if leg == "fd" else run_case(op, case, dt, leg, fn)
                    if leg != "fd" and "compared under the" in r.detail:
                        row.setdefault("profile_notes", []).append(f"{leg} {case}: {r.detail}")
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
                status[leg] = "ok" if ok else "FAIL"
                row["ok"] &= ok
                row["cases"] = max(row["cases"], len(cases))
            row["status"] = status
            if not row["cases"]:  # no leg has a case of this op: neither passed nor failed
                row["ok"] = None
            rows.append(row)
    if not args.fd_only and (not chosen or "initializers" in chosen):
        rows += _verify_initializers(dtypes)
    if all(r["ok"] is None for r in rows):
        legs_said = "finite differences (--fd-only)" if args.fd_only else "the installed oracles"
        return _fail(
            "verify",
            f"nothing to check: no case of {', '.join(chosen or ops)} for {legs_said}"
            + ("; drop --fd-only to use the oracles" if args.fd_only else ""),
            2,
        )
    failed = [r for r in rows if r["ok"] is False]
    unchecked = [r for r in rows if r["ok"] is None]
    if args.json:
        report = {
            "versions": versions,
            "not_installed": not_installed,
            "rows": rows,
            "failed": len(failed),
            "not_checked": len(unchecked),
        }
        print(json.dumps(report, indent=1))
    else:
        print("nnref verify: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        print(
            f"{'op':42s} {'dtype':8s} {'cases':>5s} "
            + " ".join(f"{leg:>13s}" for leg in legs)
            + "  verdict"
        )
        for r in rows:
            cells = " ".join(
                f"{r[leg]:13.2e}" if r[leg] is not None else f"{r['status'][leg]:>13s}"
                for leg in legs
            )
            verdict = {True: "ok", False: "FAIL", None: "not checked"}[r["ok"]]
            print(f"{r['op']:42s} {r['dtype']:8s} {r['cases']:5d} {cells}  {verdict}")
        for leg in not_installed:
            print(f"{leg}: not installed, not checked (pip install 'nnref[{EXTRAS[leg]}]')")
        notes = sorted({n.split(": ", 1)[1] for r in rows for n in r.get("profile_notes", [])})
        if notes:
            print("where a framework's convention differs from TF's, its column compares with it:")
            for n in notes:
                print(f"  {n}")
        print(
            f"{len(rows) - len(failed) - len(unchecked)} passed, {len(failed)} failed"
            + (f", {len(unchecked)} not checked (no case for the chosen legs)" if unchecked else "")
        )
    return 1 if failed else 0


def _verify_initializers(dtypes: list[np.dtype]) -> list[dict]:
    """One row per dtype: every initializer's sample statistics against Keras'."""
    from nnref.verify import INITIALIZERS, LEGS, run_initializer

    rows = []
    for dt in dtypes:
        results = [run_initializer(name, shape, dt) for name, shape in INITIALIZERS]
        worst = max(results, key=lambda r: r.error)
        for r in results:
            if not r.ok:
                print(f"FAIL initializers [{r.case}] {dt.name} keras: {r.detail}", file=sys.stderr)
        row: dict = dict.fromkeys(LEGS)
        row.update(
            op="initializers",
            dtype=dt.name,
            cases=len(results),
            ok=all(r.ok for r in results),
            keras=worst.error,
            keras_where=f"{worst.case}: {worst.worst}",
            status=dict.fromkeys(LEGS, "n/a") | {"keras": "ok"},
        )
        rows.append(row)
    return rows


def _versions(leg: str) -> dict[str, str]:
    import importlib

    from nnref.verify import LEGS

    return dict(importlib.import_module(str(LEGS[leg][0])).versions())


def _conform(args: argparse.Namespace) -> int:
    import time

    from nnref.conform import (
        CallTimeoutError,
        ConformInterrupted,
        TargetError,
        nchw,
        plan,
        run_plan,
    )
    from nnref.conform._target import check_call_timeout, load_target

    if args.target is None:
        if not args.export_vectors:
            return _fail("conform", "give a TARGET (or only --export-vectors DIR)", 2)
        return _export_vectors(args) or 0
    # Whatever the target prints, at import or in a call, goes to stderr: stdout holds the
    # report alone (one JSON object with --json).
    with _stdout_to_stderr():
        t0 = time.perf_counter()
        try:
            check_call_timeout(args.call_timeout)  # the caller's timer: before the target loads
            target: object = args.target
            if args.layout == "nchw":
                target = nchw(load_target(args.target)[1])
            planned = plan(
                target,
                ops=args.op,
                dtypes=args.dtype,
                profile=args.profile,
                examples=args.examples,
                seed=args.seed,
                rtol=dict(args.rtol or ()) or None,
            )
        except (TargetError, ValueError) as e:
            return _fail("conform", str(e), 2)
        planning = time.perf_counter() - t0
        # Written once the run can proceed: a mistyped TARGET leaves no DIR that looks like a
        # finished run, and an unwritable DIR stops before the target's calls.
        if args.export_vectors and (code := _export_vectors(args)):
            return code
        stop: BaseException | None = None
        try:
            report = run_plan(*planned, planning=planning, call_timeout=args.call_timeout)
        except ConformInterrupted as e:  # the checks made so far are reported, not lost
            report, stop = e.report, e.__cause__
        except CallTimeoutError as e:  # e.g. a timer the target's import started
            return _fail("conform", str(e), 2)
    if args.layout == "nchw":
        report.target = f"{args.target} (NCHW)"
    print(report.dumps() if args.json else report.summary())
    if report.interrupted is not None:
        how, code = _stopped(stop)
        done = "the JSON on stdout" if args.json else "the report above"
        msg = f"{how} at {report.interrupted}; {done} holds the checks made before it"
        return _fail("conform", msg, code)
    return 0 if report.ok else 1


def _export_vectors(args: argparse.Namespace) -> int | None:
    """Write ``--export-vectors DIR``: None when written, else the usage error's exit code
    (its message printed)."""
    import time

    from nnref.conform import export_vectors

    t0 = time.perf_counter()
    try:
        path = export_vectors(
            args.export_vectors,
            ops=args.op,
            dtypes=args.dtype,
            profile=args.profile,
            seed=args.seed,
        )
    except OSError as e:  # DIR is a file, or cannot be written
        why = "a file of that name exists" if isinstance(e, FileExistsError) else str(e)
        return _fail(
            "conform",
            f"--export-vectors {args.export_vectors!r}: cannot write the vectors there ({why})",
            2,
        )
    print(f"wrote {path} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return None


def _train(args: argparse.Namespace) -> int:
    from nnref._machine import keep_freed_memory
    from nnref._threads import shorten_blas_spin
    from nnref.data.datasets import load_dataset
    from nnref.train.loop import (
        CHECKPOINT,
        OUTPUT_FILES,
        BatchOutOfMemory,
        ConfigError,
        TrainingDiverged,
        TrainingInterrupted,
        batching_summary,
        make_config,
        prepare_out,
        train,
    )

    opts = {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "learning_rate": args.lr,
        "seed": args.seed,
        "dtype": args.dtype,
        "display_step": args.log_every,
        "conv_algorithm": "auto" if args.fast else None,
    }
    cfg = None

    def checkpoint_on_disk() -> Path | None:
        """``out``'s checkpoint, when one is on disk."""
        ckpt = out / CHECKPOINT if out is not None else None
        return ckpt if ckpt is not None and ckpt.is_file() else None

    try:
        if args.out == "":
            raise ConfigError("out", "''", "is empty; name a directory")
        out = Path(args.out) if args.out is not None else None
        # Every option and output path is checked before the data is loaded and training starts.
        cfg = make_config(args.recipe, **opts)
        if args.epochs is not None and args.epochs < 1:
            raise ConfigError("epochs", args.epochs, "must be a positive integer")
        if out is not None:
            prepare_out(out, resume=args.resume)
        elif args.resume:
            raise ConfigError("resume", None, "needs --out (the directory holding checkpoint.npz)")
        # Load once: --epochs counts the training set, and train() takes the same data.
        data = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
        if args.epochs is not None:
            cfg = make_config(args.recipe, data=data, epochs=args.epochs, **opts)
        print(
            f"nnref train {cfg.recipe}: {cfg.dataset} ({len(data.y_train)} training samples), "
            f"{cfg.steps} steps on {batching_summary(cfg, len(data.y_train))}, "
            f"{cfg.optimizer} lr {cfg.learning_rate:g}, {cfg.dtype}, seed {cfg.seed}"
            + (f", conv algorithm {cfg.conv_algorithm}" if cfg.conv_algorithm != "direct" else "")
        )
        keep_freed_memory()  # this process is the training loop's: no heap trim/refault cycle
        shorten_blas_spin()  # before the progress bar's thread: no thread is in a BLAS call
        train(cfg, out=out, resume=args.resume, progress=not args.no_progress, data=data)
    except ConfigError as e:
        return _fail("train", e.cli_message(), 2)
    except (ValueError, FileNotFoundError, ImportError) as e:
        return _fail("train", str(e), 2)
    except TrainingDiverged as e:
        return _fail("train", str(e), 1)
    except TrainingInterrupted as e:
        how, code = stopped_by(e.signum), 128 + e.signum  # 130 for Ctrl-C, 143 for SIGTERM
        if e.checkpoint is None:
            kept = " (no --out: nothing was kept)" if out is None else " (no checkpoint yet)"
            return _fail("train", f"{how} after step {e.step}{kept}", code)
        if e.complete:
            return _fail(
                "train",
                f"{how} after the last step ({e.step}), before the metrics and figures "
                f"were all written; {e.checkpoint} keeps the trained run: run the same command "
                "with --resume to finish the outputs",
                code,
            )
        return _fail(
            "train",
            f"{how} after step {e.step}; {e.checkpoint} holds step {e.checkpoint_step}: "
            "run the same command with --resume to continue",
            code,
        )
    except BrokenPipeError:
        raise  # stdout closed: main() stops quietly
    except OSError as e:  # writing a checkpoint or the outputs (disk full, directory removed)
        again = (
            f"; once that is fixed, the same command with --resume continues from {ckpt} (or, "
            "after the last step, writes the outputs)"
            if (ckpt := checkpoint_on_disk())
            else ""
        )
        return _fail("train", f"could not write the outputs: {e}{again}", 1)
    except MemoryError as e:  # a batch (or dataset) too large for the machine
        smaller = (
            f"; a smaller --batch-size needs less (this run: {cfg.batch_size})"
            if isinstance(e, BatchOutOfMemory) and cfg is not None and cfg.batch_size
            else ""
        )
        again = (
            f"; with more memory free, the same command continues from {ckpt}"
            if (ckpt := checkpoint_on_disk())
            else ""
        )
        what = str(e) or "an allocation failed"  # NumPy's says how much; a bare one says nothing
        return _fail("train", f"out of memory: {what}{smaller}{again}", 1)
    if out is not None:
        try:
            print(f"wrote {', '.join(f for f in OUTPUT_FILES if (out / f).is_file())} in {out}")
        except KeyboardInterrupt:  # main() would say only "interrupted": nothing was lost
            return _fail(
                "train", f"interrupted after the run finished; every output is in {out}", 130
            )
    return 0


def _errata(args: argparse.Namespace) -> int:
    from nnref.train.errata import run_errata
    from nnref.train.loop import ConfigError

    try:
        rows = run_errata(
            steps=args.steps,
            seed=args.seed,
            log=(lambda s: None) if args.json else lambda s: print(s, flush=True),
        )
    except ConfigError as e:
        return _fail("errata", e.cli_message(), 2)
    except ImportError as e:
        return _fail("errata", str(e), 2)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send stdout to stderr meanwhile: Python's prints, and writes to file descriptor 1 (a
    compiled target's ``printf``, ``os.write(1, ...)``) where the process has one."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 (an embedded interpreter): Python's prints only
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            # C stdio's buffer still holds what the target printed to stdout (no C library by
            # that name: nothing to flush).
            with contextlib.suppress(OSError, AttributeError, TypeError):
                ctypes.CDLL(None).fflush(None)
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def _escape_unencodable_stdout() -> Iterator[None]:
    """While a command runs, print what stdout's encoding cannot (a non-UTF-8 file name, which
    Python keeps as surrogates, under a UTF-8 locale) with backslash escapes, as stderr does,
    rather than raise UnicodeEncodeError: the "wrote ... in DIR" line once did so after the
    run. The caller's setting is restored after (``main`` may run inside another program)."""
    stdout = sys.stdout
    if not (isinstance(stdout, io.TextIOWrapper) and stdout.errors == "strict"):
        yield
        return
    stdout.reconfigure(errors="backslashreplace")
    try:
        yield
    finally:
        stdout.reconfigure(errors="strict")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``) or SIGHUP (a closed terminal, a dropped SSH session),
    raised where Python next runs, as Ctrl-C raises ``KeyboardInterrupt``: the commands stop as
    they do on Ctrl-C (``conform`` reports the checks made: ``nnref conform ... > out.json``
    keeps them when the terminal closes), with exit 128 + the signal's number instead of 130.
    ``nnref train`` ends its step first (its own handler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> NoReturn:
    raise _Terminated(signum)


def _stopped(e: BaseException | None) -> tuple[str, int]:
    """How a stop is said, and its exit code 128 + the signal's number: SIGTERM 143, SIGHUP
    129, Ctrl-C 130."""
    signum = e.signum if isinstance(e, _Terminated) else signal.SIGINT
    return stopped_by(signum), 128 + signum


def _fail(command: str, message: str, code: int) -> int:
    """Print ``nnref COMMAND: message`` as one line on stderr and return ``code``."""
    print(f"{' '.join(['nnref', command]).strip()}: {' '.join(message.split())}", file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (the flag, the value, where to read more), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _non_negative(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def _positive_seconds(text: str) -> float:
    from nnref.conform._target import TIMEOUT_RANGE

    lo, hi = TIMEOUT_RANGE
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(f"expected {lo:g} to {hi:g} seconds, got {v:g}")
    return v


def _rtol_item(text: str) -> tuple[str, float]:
    """``--rtol OP=TOL`` as ``(op, tol)``: a known op and a finite tolerance >= 0."""
    from nnref.cases import TABLES

    op, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected OP=TOL (e.g. conv2d=1e-4), got {text!r}")
    if op not in TABLES:
        raise argparse.ArgumentTypeError(f"unknown op {op!r} in {text!r}; ops: {sorted(TABLES)}")
    try:
        tol = float(value)
    except ValueError:
        tol = float("nan")
    if not 0 <= tol < float("inf"):
        raise argparse.ArgumentTypeError(
            f"the tolerance in {text!r} must be a finite number >= 0, got {value!r}"
        )
    return op, tol


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="nnref", description="nnref: a verified NumPy reference for neural-network ops"
    )
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "verify",
        help="check every op against finite differences and every installed oracle",
        description="Run every op's cases against finite differences and the installed oracles "
        "(TF, Keras, scikit-learn, JAX, PyTorch) and print the worst error per op and dtype "
        "(error: max |a-b| / (|b| + rms(b))).",
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

    c = sub.add_parser(
        "conform",
        help="run nnref's verified cases against another implementation",
        description="Check an implementation that provides ops by nnref's names (NAME_fwd / "
        "NAME_bwd, or plain NAME) against nnref's case tables, semantic pins and Hypothesis "
        "strategies; exit 0 when every provided op passes, 1 on a failure, 2 on a usage error.",
    )
    c.add_argument(
        "target",
        nargs="?",
        help="a module name, module:attribute, a .py path, or a built-in (nnref, jax, torch)",
    )
    from nnref.cases import TABLES
    from nnref.conform import PROFILES

    c.add_argument(
        "--op",
        action="append",
        choices=list(TABLES),
        metavar="OP",
        help="only this op (repeatable)",
    )
    c.add_argument(
        "--dtype", action="append", choices=["float32", "float64"], help="only this dtype"
    )

    c.add_argument(
        "--profile",
        default="tf",
        choices=sorted(PROFILES),
        help="which framework's conventions are expected (default: tf)",
    )
    c.add_argument("--json", action="store_true", help="one JSON object on stdout")
    c.add_argument(
        "--examples",
        type=_non_negative,
        help="Hypothesis examples per op and dtype (default: Hypothesis' profile; 0: none)",
    )
    c.add_argument("--seed", type=_non_negative, default=0, help="seeds inputs and Hypothesis")
    c.add_argument(
        "--export-vectors",
        metavar="DIR",
        help="write every case's inputs, expected outputs and VJPs as .npz + manifest.json",
    )
    c.add_argument(
        "--layout",
        choices=["nhwc", "nchw"],
        default="nhwc",
        help="nchw: the target's conv2d / max_pool2d / bias_add take NCHW inputs (OIHW kernels)",
    )
    c.add_argument(
        "--rtol",
        action="append",
        type=_rtol_item,
        metavar="OP=TOL",
        help="tolerance override for one op (repeatable)",
    )
    c.add_argument(
        "--call-timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="a call of the target (a forward, a backward, a finite-difference sweep) that "
        "runs longer is stopped, reported in its row, and the run goes on (default: no limit)",
    )
    c.set_defaults(func=_conform)

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
    g.add_argument(
        "--steps",
        type=int,
        help="optimizer steps, >= 1 (default: the lesson's; 2000 for sigmoid-mse, whose lesson "
        "runs 200)",
    )
    g.add_argument(
        "--epochs", type=int, help="epochs, >= 1, converted to steps for the recipe's batching"
    )
    t.add_argument(
        "--batch-size", type=int, help="samples per step, >= 1 (sigmoid-mse trains full-batch)"
    )
    t.add_argument("--optimizer", choices=["sgd", "adam", "rmsprop"])
    t.add_argument("--lr", type=float, help="learning rate, a finite number > 0")
    t.add_argument("--seed", type=int, default=0, help="an integer >= 0 (default 0)")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument(
        "--out",
        help="a new directory for metrics.csv/json, curves.png, predictions.png, checkpoint.npz "
        "(checked before training; an earlier run there is continued only with --resume)",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint.npz (same options, larger --steps)",
    )
    t.add_argument(
        "--log-every", type=int, help="steps between log lines, >= 1 (default: the lesson's)"
    )
    t.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none when stderr is a file)"
    )
    t.add_argument(
        "--fast",
        action="store_true",
        help="conv layers use conv2d(algorithm='auto'): the DFT convolution where it is faster "
        "(cnn: conv2); agrees to rounding but is not exact (zeros and ties, see conv2d_fwd)",
    )
    t.set_defaults(func=_train)

    e = sub.add_parser("errata", help="run each lesson's bug beside the fixed recipe")
    e.add_argument("--steps", type=int, help="steps per run, >= 1 (default: each recipe's)")
    e.add_argument("--seed", type=int, default=0, help="an integer >= 0 (default 0)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_errata)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nnref`` with ``argv``; return the exit code (2: usage error, 130: interrupted, 143:
    stopped by SIGTERM, 129: by SIGHUP)."""
    command = ""
    try:
        # SIGTERM and SIGHUP raise _Terminated while a command runs (in the main thread only).
        # (Ctrl-C keeps Python's own handler: KeyboardInterrupt.)
        stops = [s for s in STOP_SIGNALS if s != signal.SIGINT]
        with _escape_unencodable_stdout(), handled(stops, _raise_terminated):
            args = build_parser().parse_args(argv)
            command = args.command
            return int(args.func(args))
    except SystemExit as e:  # --help, or a usage error already printed as one line
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt as e:
        return _fail(command, *_stopped(e))
    except BrokenPipeError:
        # The reader went away (nnref verify | head): stop quietly, and keep Python's exit-time
        # flush of stdout from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
