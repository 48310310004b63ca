"""Every figure in README.md comes from a command; this script renders them.

A README block between ``<!-- generated: NAME -->`` and ``<!-- end generated -->`` is the
rendering of ``benchmarks/results/NAME.json``, the saved output of NAME's command::

    python benchmarks/readme_figures.py --check             # README == rendering of the results?
    python benchmarks/readme_figures.py --write             # rewrite the blocks from the results
    python benchmarks/readme_figures.py --measure NAME ...  # run the commands, save the results
    python benchmarks/readme_figures.py --list              # blocks, commands, results files

Figures depend on the machine (BLAS kernels, TF build): measure on the reference machine,
``--write``, and commit the results files with the README. ``tests/test_readme.py`` fails when a
block differs from the rendering of its committed results.

Adding a block: one renderer, decorated with ``@block(NAME, *COMMAND)``, taking the parsed
results and returning the block's Markdown; the results file; the two markers in README.md.
COMMAND is an argv: ``{python}`` stands for this interpreter, ``{out}`` for the results file
(a command without ``{out}`` prints its JSON on stdout). Run from the repository root.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
BEGIN = "<!-- generated: {name} -->"
END = "<!-- end generated -->"
_MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->\n(.*?)^<!-- end generated -->$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    name: str
    command: tuple[str, ...]
    render: Callable[[Any], str]

    def results_file(self, results_dir: Path = RESULTS) -> Path:
        return results_dir / f"{self.name}.json"

    def command_line(self) -> str:
        out = str(self.results_file().relative_to(ROOT))
        return " ".join(
            a.replace("{python}", "python").replace("{out}", out) for a in self.command
        ) + ("" if "{out}" in self.command else f" > {out}")


BLOCKS: dict[str, Block] = {}


def block(name: str, *command: str) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register ``render`` as the renderer of README block ``name``, measured by ``command``."""

    def register(render: Callable[[Any], str]) -> Callable[[Any], str]:
        if name in BLOCKS:
            raise ValueError(f"README block {name!r} is registered twice")
        BLOCKS[name] = Block(name, tuple(command), render)
        return render

    return register


# --------------------------------------------------------------------------- renderers


def _e(x: float | None) -> str:
    return "—" if x is None else f"{x:.1e}"


#: Column titles of `nnref verify`'s legs, in its order.
_LEG_TITLES = {
    "fd": "FD",
    "tf": "TF",
    "keras": "Keras",
    "sklearn": "scikit-learn",
    "jax": "JAX",
    "torch": "PyTorch",
}


def _verify_cell(row: dict[str, Any], leg: str) -> str:
    status = row.get("status", {}).get(leg, "n/a")
    value = row.get(leg)
    if value is None:
        return "not installed" if status == "not installed" else "—"
    return f"{value:.1e}" + (" FAIL" if status == "FAIL" else "")


@block("verify", "{python}", "-m", "nnref", "verify", "--json")
def render_verify(results: dict[str, Any]) -> str:
    """`nnref verify --json`: worst error per op, dtype and oracle (one column per leg)."""
    legs = [leg for leg in _LEG_TITLES if any(leg in r for r in results["rows"])]
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    lines = [
        f"`nnref verify --json` on this machine ({versions}); {results['failed']} of "
        f"{len(results['rows'])} rows failed. `—`: the oracle has no counterpart of that op.",
        "",
        "| op | dtype | cases | " + " | ".join(_LEG_TITLES[leg] for leg in legs) + " | verdict |",
        "| --- " * (len(legs) + 4) + "|",
    ]
    for r in results["rows"]:
        cells = " | ".join(_verify_cell(r, leg) for leg in legs)
        verdict = "ok" if r["ok"] else "FAIL"
        lines.append(f"| `{r['op']}` | {r['dtype']} | {r['cases']} | {cells} | {verdict} |")
    return "\n".join(lines)


@block(
    "conform-example",
    "{python}",
    "-m",
    "nnref",
    "conform",
    "benchmarks/conform_example.py",
    "--op",
    "relu",
    "--examples",
    "20",
    "--json",
)
def render_conform_example(report: dict[str, Any]) -> str:
    """The README's conform example: the source it runs on, and what the report says."""
    source = (ROOT / "benchmarks" / "conform_example.py").read_text().rstrip()
    failures = [r for r in report["rows"] if not r["ok"]]
    out = [f"$ nnref conform my_layers.py --op relu   # {len(report['rows'])} checks"]
    for r in failures:
        out.append(f"- {r['id']}: {r['message']}")
        out += [f"  matches {m}" for m in r["matches"]]
    out.append(f"{len(report['rows']) - len(failures)} passed, {len(failures)} failed")
    return f"```python\n{source}\n```\n\n```console\n" + "\n".join(out) + "\n```"


@block(
    "conform-time",
    "{python}",
    "-m",
    "nnref",
    "conform",
    "nnref",
    "--examples",
    "200",
    "--json",
)
def render_conform_time(report: dict[str, Any]) -> str:
    """How long the whole suite takes: nnref against itself, every op, both dtypes."""
    rows = report["rows"]
    ops = len({r["op"] for r in rows})
    drawn = sum(r["check"] == "property" for r in rows)
    return (
        f"`nnref conform nnref --examples 200` (every op, both dtypes, 200 Hypothesis examples "
        f"per op and dtype, as the `ci` profile): {len(rows)} checks of {ops} ops, "
        f"{drawn} property checks, {'all pass' if report['ok'] else 'FAILURES'}, "
        f"in {report['seconds']:.0f} s on this machine."
    )


@block("matrix", "{python}", "-m", "nnref.oracles.semantics", "--json")
def render_matrix(data: dict[str, Any]) -> str:
    """The TF / JAX / PyTorch matrix: the measured pins joined with what `nnref conform
    jax|torch --profile tf` shows on their cases (`nnref.oracles.semantics.render_matrix`)."""
    from nnref.oracles.semantics import render_matrix as render

    return render(data)


@block("errata", "{python}", "-m", "nnref", "errata", "--json")
def render_errata(rows: list[dict[str, Any]]) -> str:
    """`nnref errata --json`: each lesson's bug beside the fixed recipe."""
    lines = [
        "| lesson bug | what it does | test accuracy fixed / bug |",
        "| --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['bug']} | {r['effect']}; last batch loss {r['fixed_loss']:.3g} fixed vs "
            f"{r['bug_loss']:.3g} bug ({r['steps']} steps on {r['dataset']}) "
            f"| {r['fixed_test_accuracy']:.4f} / {r['bug_test_accuracy']:.4f} |"
        )
    return "\n".join(lines)


#: What each recipe is: the lesson, and the network (structure, not measured figures).
_RECIPE_TEXT = {
    "mlp": ("000 MLP", "64-128-256-10 relu, {opt} (the original notebook's rate), {batches}"),
    "cnn": (
        "001 CNN",
        "conv5x5x32-pool-conv5x5x64-pool-fc1024, N(0, 0.05) weights, {opt}, {batches}",
    ),
    "naive-dense": (
        "002 NaiveDense vs Keras",
        "64-512-10, uniform(0, 0.1) weights, softmax + Keras probability SCCE, {opt} (the "
        "lesson's Keras twin), {batches}",
    ),
    "digits-kfold": (
        "003 digits + KFold",
        "64-30-10, N(0, 1) weights and biases, one {opt}, {batches}",
    ),
    "three-layer": ("004 TF1 three-layer", "64-128-64-10 Glorot, {opt}, {batches}"),
    "sigmoid-mse": (
        "003 NumPy 2-3-1",
        "2-3-1 sigmoid, no biases, MSE, full-batch GD {lr}, {batches}",
    ),
}
_OPT = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}
_BATCHING = {
    "stream": "shuffled batches",
    "sequential": "sequential batches",
    "kfold": "KFold batches",
    "full": "full batch",
}


def _batches(run: dict[str, Any]) -> str:
    from nnref.data.batching import kfold_sizes
    from nnref.train.loop import batches_per_epoch
    from nnref.train.recipes import RECIPES

    batching = RECIPES[run["recipe"]].batching
    steps, n = run["steps"], run["train_samples"]
    if batching == "full":
        return f"{steps} steps"
    if batching == "kfold":
        per = batches_per_epoch(batching, n, run["batch_size"])
        sizes = kfold_sizes(n, per)
        parts = " + ".join(
            f"{sizes.count(s)}\N{MULTIPLICATION SIGN}{s}" for s in sorted(set(sizes), reverse=True)
        )
        return f"KFold batches ({parts}), {steps // per} epochs"
    if batching == "sequential":
        return f"{steps} sequential steps of {run['batch_size']}"
    return f"{steps} steps of {run['batch_size']}"


@block("recipes", "{python}", "benchmarks/recipe_accuracy.py", "--json", "{out}")
def render_recipes(results: dict[str, Any]) -> str:
    """`benchmarks/recipe_accuracy.py`: every recipe's test accuracy at its defaults."""
    from nnref.train.recipes import RECIPES

    runs = {(r["recipe"], r["dataset"]): r for r in results["runs"]}
    digits = next(r for r in results["runs"] if r["dataset"] == "digits")
    first = next(iter(results["runs"]))
    lines = [
        f"Default dataset digits ({digits['train_samples']} train / {digits['test_samples']} "
        f"held-out, the lesson's 80/20 split), {first['dtype']}, seed {first['seed']}. Step "
        "budgets are the lessons' numbers of optimizer steps, except `sigmoid-mse`'s (2000 "
        "for its lesson's 200: see its notes). Test accuracies from "
        f"`python benchmarks/recipe_accuracy.py` (NumPy {results['platform']['numpy']} "
        f"dispatching {results['platform'].get('numpy_simd', '?')}, "
        f"OpenBLAS threads: {results['platform']['blas_threads']}, as tox runs the tests).",
        "",
        "| recipe | lesson | network, optimizer, batches | test accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for name, recipe in RECIPES.items():
        run = runs[name, recipe.dataset]
        lesson, text = _RECIPE_TEXT[name]
        desc = text.format(
            opt=f"{_OPT[run['optimizer']]} {run['learning_rate']:g}",
            lr=f"{run['learning_rate']:g}",
            batches=_batches(run),
        )
        acc = f"{run['test_accuracy']:.4f}"
        if recipe.dataset != "digits":
            acc += f" on `{recipe.dataset}`"
            if (name, "digits") in runs:
                acc += f" ({runs[name, 'digits']['test_accuracy']:.4f} on digits)"
        lines.append(f"| `{name}` | {lesson} | {desc} | {acc} |")
    toy = runs.get(("sigmoid-mse", "digits"))
    if toy is not None:
        lines += [
            "",
            "`sigmoid-mse` is the lesson's two-feature toy network: its default dataset is `toy` "
            "(the lesson's CSV cannot be downloaded, so a deterministic two-blob set stands in). "
            "A 3-unit sigmoid/MSE net is not a 10-class digits classifier "
            f"({toy['test_accuracy']:.4f} on digits), so it is held to the toy set, not to the "
            "0.95 bar of the classifier recipes.",
        ]
    return "\n".join(lines)


@block("parity", "{python}", "benchmarks/parity.py", "--json", "{out}")
def render_parity(results: dict[str, Any]) -> str:
    """`benchmarks/parity.py --json`: per-step loss of nnref vs a TF GradientTape loop."""
    from nnref.train.recipes import RECIPES

    v = results["versions"]
    rows: dict[str, dict[str, float]] = {}
    for r in results["rows"]:
        rows.setdefault(r["recipe"], {})[r["dtype"]] = r["max_rel"]
    lines = [
        f"`python benchmarks/parity.py --json` ({results['steps']} steps, TF {v['tensorflow']} / "
        f"Keras {v['keras']} / NumPy {v['numpy']}):",
        "",
        "| recipe | float64: max relative loss difference | float32 |",
        "| --- | --- | --- |",
    ]
    for name, r in rows.items():
        recipe = RECIPES[name]
        what = f"{_OPT[recipe.optimizer]}, {_BATCHING[recipe.batching]}"
        lines.append(f"| `{name}` ({what}) | {_e(r.get('float64'))} | {_e(r.get('float32'))} |")
    return "\n".join(lines)


_CNN_STEP = "seed CNN step fwd+bwd, batch 128, {dt}"
_CNN_SINGLE = _CNN_STEP + ", single calls"
_CNN_ROWS = [  # (README label, case, contender)
    ("composed, exact", _CNN_STEP, "nnref composed, exact (direct conv)"),
    ("composed, fast", _CNN_STEP, "nnref composed, fast (conv2 dft)"),
    ("training driver, exact", _CNN_STEP, "nnref training driver (exact)"),
    ("TF `tf.function`", _CNN_STEP, "tf.function"),
    ("composed, exact: single call", _CNN_SINGLE, "nnref composed, exact (direct conv)"),
    ("composed, fast: single call", _CNN_SINGLE, "nnref composed, fast (conv2 dft)"),
    ("TF `tf.function`: single call", _CNN_SINGLE, "tf.function"),
    (
        "conv1 28x28x1->32 fwd+dx+dw, direct",
        "conv1 28x28x1->32 5x5 SAME fwd+dx+dw, {dt}",
        "nnref algorithm=direct",
    ),
    (
        "conv2 14x14x32->64 fwd+dx+dw, direct",
        "conv2 14x14x32->64 5x5 SAME fwd+dx+dw, {dt}",
        "nnref algorithm=direct",
    ),
    (
        "conv2 14x14x32->64 fwd+dx+dw, dft",
        "conv2 14x14x32->64 5x5 SAME fwd+dx+dw, {dt}",
        "nnref algorithm=dft",
    ),
    ("max-pool 2x2 fwd+bwd, 128x28x28x32", "max-pool 2x2 fwd+bwd 128x28x28x32, {dt}", "nnref"),
]
#: Issue 17's targets: (what, README label, dtype, bound on the median ratio to TF).
_CNN_TARGETS = [
    ("exact step", "composed, exact", "float32", 1.7),
    ("exact step", "composed, exact", "float64", 0.8),
    ("fast step", "composed, fast", "float32", 1.15),
    ("fast step", "composed, fast", "float64", 0.5),
    ("max-pool", "max-pool 2x2 fwd+bwd, 128x28x28x32", "float32", 1.5),
    ('conv2 `algorithm="dft"`', "conv2 14x14x32->64 fwd+dx+dw, dft", "float32", 0.9),
]
_CNN_STAGES = [  # (README stage, bench_cnn.py's laps)
    ("conv2 backward (dx + dw + db)", ("conv2 bwd (+ bias)",)),
    ("conv2 forward (+ bias)", ("conv2 fwd (+ bias)",)),
    (
        "conv1 forward (+ bias) + filter and bias gradients",
        ("conv1 fwd (+ bias)", "conv1 bwd (filter + bias)"),
    ),
    ("dense forward + backward (user's `@`)", ("dense fwd", "dense bwd")),
    ("softmax cross-entropy forward + backward", ("xent fwd+bwd",)),
    (
        "max-pool forward + backward (both layers)",
        ("pool1 fwd", "pool2 fwd", "pool1 bwd", "pool2 bwd"),
    ),
    (
        "relu (user's NumPy, one thread)",
        tuple(f"relu{i} {d}" for i in (1, 2) for d in ("fwd", "bwd")),
    ),
]


def _s_as_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


@block("cnn-bench", "{python}", "benchmarks/bench_cnn.py", "--json", "{out}")
def render_cnn_bench(results: dict[str, Any]) -> str:
    """`benchmarks/bench_cnn.py --json`: the seed CNN step, its convs and max-pool vs TF."""
    timed = {(r["case"], r["contender"]): r for r in results["rows"] if "contender" in r}
    dtypes = [
        dt for dt in ("float32", "float64") if (_CNN_STEP.format(dt=dt), "tf.function") in timed
    ]
    v = results["versions"]
    loads = [r["others_cores"] for r in results["rows"]]
    lines = [
        f"`python benchmarks/bench_cnn.py --json` ({results['repeats']} pairs per row; "
        f"{results['cpu']}; NumPy {v['numpy']}, TF {v['tensorflow']}; {results['method']}; "
        f"CPU used by other processes during the blocks: {min(loads):.2f}-{max(loads):.2f} cores "
        'of 2, the "load" column):',
        "",
        "| contender | "
        + " | ".join(f"{dt}: ms [quartiles] | / TF [quartiles] | load" for dt in dtypes)
        + " |",
        "| --- |" + " --- | --- | --- |" * len(dtypes),
    ]
    ratio: dict[tuple[str, str], float] = {}
    for label, case, contender in _CNN_ROWS:
        if not any((case.format(dt=dt), contender) in timed for dt in dtypes):
            continue  # not measured by this run (single calls: before --steps existed)
        cells = []
        for dt in dtypes:
            r = timed.get((case.format(dt=dt), contender))
            if r is None:
                cells.append("— | — | —")
                continue
            ratio[label, dt] = r["ratio"]
            rel = (
                "1"
                if contender == "tf.function" and case in (_CNN_STEP, _CNN_SINGLE)
                else f"{r['ratio']:.2f} [{r['ratio_q1']:.2f}-{r['ratio_q3']:.2f}]"
            )
            cells.append(
                f"{_s_as_ms(r['median_s'])} [{_s_as_ms(r['q1_s'])}-{_s_as_ms(r['q3_s'])}] | {rel} | "
                f"{r['others_cores']:.2f}"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    verdicts = []
    for what, label, dt, bound in _CNN_TARGETS:
        got = ratio.get((label, dt))
        if got is not None:
            met = "met" if got <= bound else "**not met**"
            single = ratio.get((f"{label}: single call", dt))
            cold = "" if single is None else f" (single calls: {single:.2f})"
            shown = f"{got:.2f}" if f"{got:.2f}" != f"{bound:.2f}" else f"{got:.3f}"
            verdicts.append(f"{what} {dt} ≤ {bound}x TF: {shown}, {met}{cold}")
    lines += ["", "Issue 17's targets (median ratio to TF): " + "; ".join(verdicts) + "."]
    shares = {
        r["case"].split()[1]: r
        for r in results["rows"]
        if r["case"].startswith("breakdown") and r["case"].endswith(dtypes[0])
    }
    if shares:
        lines += [
            "",
            f"Where the composed step's time goes ({dtypes[0]}; each op timed inside "
            f"{results['repeats']} consecutive steps, medians; load "
            + ", ".join(f"{k} {r['others_cores']:.2f}" for k, r in shares.items())
            + "):",
            "",
            "| stage | " + " | ".join(shares) + " |",
            "| --- |" + " --- |" * len(shares),
        ]
        for stage, laps in _CNN_STAGES:
            cells = []
            for r in shares.values():
                total = sum(r["stages_s"].values())
                part = sum(r["stages_s"].get(k, 0.0) for k in laps)
                cells.append(f"{100 * part / total:.0f}% ({_s_as_ms(part)} ms)")
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1e3 else f"{ms / 1e3:.1f} s"


@block("blas-spin", "{python}", "benchmarks/blas_spin.py", "--json", "{out}")
def render_blas_spin(results: dict[str, Any]) -> str:
    """`benchmarks/blas_spin.py`: the composed CNN step with OpenBLAS' worker spin as nnref
    sets it and as OpenBLAS leaves it, each sample a fresh process."""
    rows = {(r["step"], r["setting"]): r for r in results["rows"]}
    steps = list(dict.fromkeys(r["step"] for r in results["rows"]))
    loads = [r["others_cores"] for r in results["rows"]]
    lines = [
        f"`python benchmarks/blas_spin.py --json` ({results['cpu']}; float32, batch 128; "
        f"{results['repeats']} fresh processes per cell, alternating, each the median of "
        f"{results['steps']} consecutive steps; CPU used by other processes: "
        f"{min(loads):.2f}-{max(loads):.2f} cores of 2):",
        "",
        "| composed step | nnref sets the spin: ms | OpenBLAS' default spin: ms | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for step in steps:
        ours, theirs = rows[step, "nnref"], rows[step, "OpenBLAS default"]
        lines.append(
            f"| {step} | {ours['ms']:.1f} | {theirs['ms']:.1f} | {ours['ms'] / theirs['ms']:.2f} |"
        )
    return "\n".join(lines)


def _mb(mb: float) -> str:
    return f"{mb:.0f} MB" if mb < 1024 else f"{mb / 1024:.1f} GB"


@block(
    "checker-peers", "{python}", "benchmarks/checker_peers.py", "--seeds", "5", "--json", "{out}"
)
def render_checker_peers(results: dict[str, Any]) -> str:
    """`benchmarks/checker_peers.py`: nnref.check vs torch gradcheck vs jax check_grads."""
    v = results["versions"]
    cases = results["cases"]
    n_broken = sum(bool(c["broken_in"]) for c in cases)
    n_f32 = sum(c["broken_in"] == ["float32"] for c in cases)
    lines = [
        f"`python benchmarks/checker_peers.py --seeds {results['seeds']}` (NumPy {v['numpy']}, "
        f"torch {v['torch']}, JAX {v['jax']}): {len(cases)} backward passes, {n_broken} broken "
        f"({n_f32} of them only in float32: correct cases in float64) and "
        f"{len(cases) - n_broken} correct, at {results['seeds']} seeds (the 200x300 cases at "
        f"{results['big_seeds']}). Localised: the report names an entry where the gradient is "
        "wrong / only the wrong input / neither (nothing, or an input whose gradient is right). "
        f"Method: {results['method']}.",
        "",
        "| checker | dtype | settings | broken caught | correct failed | entry / input / neither "
        "| median | max | peak memory (case) | missed (broken) / failed (correct) |",
        "| --- " * 10 + "|",
    ]
    for s in results["summary"]:
        g = s["grades"]
        missed = ", ".join(f"`{c}`" for c in s["missed"]) or "—"
        false = ", ".join(f"`{c}`" for c in s["falsely_failed"]) or "—"
        lines.append(
            f"| {s['checker']} | {s['dtype']} | {s['settings']} "
            f"| {s['detected']}/{s['broken']} ({100 * s['detected'] / s['broken']:.0f}%) "
            f"| {s['false_failures']}/{s['correct']} "
            f"({100 * s['false_failures'] / s['correct']:.0f}%) "
            f"| {g['entry']} / {g['input']} / {g['none']} | {_ms(s['median_ms'])} "
            f"| {_ms(s['max_ms'])} | {_mb(s['peak_mb'])} (`{s['peak_case']}`) "
            f"| {missed} / {false} |"
        )
    bugs = "; ".join(f"`{c['id']}`: {c['bug']}" for c in cases if c["bug"])
    lines += ["", f"The broken cases: {bugs}."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- machinery


def load_results(name: str, results_dir: Path = RESULTS) -> Any:
    return json.loads(BLOCKS[name].results_file(results_dir).read_text())


def render(name: str, results: Any = None, results_dir: Path = RESULTS) -> str:
    """Block ``name`` rendered from ``results`` (default: its saved results file)."""
    return BLOCKS[name].render(load_results(name, results_dir) if results is None else results)


def readme_blocks(text: str) -> dict[str, str]:
    """Each generated block's current body, by name; ``ValueError`` on unknown or repeated
    names, and on registered blocks missing from the README."""
    found: dict[str, str] = {}
    for m in _MARKER.finditer(text):
        name = m.group(1)
        if name not in BLOCKS:
            raise ValueError(f"README block {name!r} has no renderer in {Path(__file__).name}")
        if name in found:
            raise ValueError(f"README block {name!r} appears twice")
        found[name] = m.group(2).rstrip("\n")
    missing = sorted(set(BLOCKS) - set(found))
    if missing:
        raise ValueError(f"README lacks the generated block(s) {missing}")
    return found


def rewrite(text: str, results_dir: Path = RESULTS) -> str:
    """``text`` with every generated block replaced by its rendering."""
    readme_blocks(text)  # validates the markers

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return f"{BEGIN.format(name=name)}\n{render(name, results_dir=results_dir)}\n{END}"

    return _MARKER.sub(sub, text)


def stale(text: str, results_dir: Path = RESULTS) -> dict[str, str]:
    """The blocks of ``text`` that differ from their rendering, with a unified diff each."""
    out = {}
    for name, body in readme_blocks(text).items():
        want = render(name, results_dir=results_dir)
        if body != want:
            diff = difflib.unified_diff(
                body.splitlines(), want.splitlines(), "README.md", f"rendered {name}", lineterm=""
            )
            out[name] = "\n".join(diff)
    return out


def measure(name: str) -> Path:
    """Run block ``name``'s command and save its JSON results."""
    b = BLOCKS[name]
    path = b.results_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [a.replace("{python}", sys.executable).replace("{out}", str(path)) for a in b.command]
    proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if "{out}" not in b.command:
        data = json.loads(proc.stdout)  # verify exits 1 on a failed op: its table says FAIL
        path.write_text(json.dumps(data, indent=1) + "\n")
    elif proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    g.add_argument("--write", action="store_true", help="rewrite README.md's blocks")
    g.add_argument("--measure", nargs="+", metavar="NAME", help="run and save (or 'all')")
    g.add_argument("--list", action="store_true", help="each block's command and results file")
    args = ap.parse_args(argv)
    if args.list:
        for b in BLOCKS.values():
            print(f"{b.name:10s} {b.command_line()}")
        return 0
    if args.measure:
        names = list(BLOCKS) if args.measure == ["all"] else args.measure
        unknown = sorted(set(names) - set(BLOCKS))
        if unknown:
            ap.error(f"unknown block(s) {unknown}; known: {sorted(BLOCKS)}")
        for name in names:
            print(f"{name}: {BLOCKS[name].command_line()}", flush=True)
            print(f"  saved {measure(name).relative_to(ROOT)}", flush=True)
        return 0
    text = README.read_text()
    if args.write:
        README.write_text(rewrite(text))
        return 0
    bad = stale(text)
    for name, diff in bad.items():
        print(f"README block {name!r} differs from {BLOCKS[name].command_line()}:\n{diff}")
    if bad:
        print("run: python benchmarks/readme_figures.py --write")
    return 1 if bad else 0


# --------------------------------------------------------------------------- dense-bench
# (after main(): registered at import, before the guard below runs main)

_DENSE_TORCH = "PyTorch eager, foreach Adam"
_DENSE_TF = "TF tf.function + Keras Adam"
_DENSE_COMPOSED = "nnref composed (first layer dense_bwd_params)"
_DENSE_LABELS = {
    _DENSE_COMPOSED: "nnref composed, first layer `dense_bwd_params`",
    "nnref composed (dense_bwd everywhere)": "nnref composed, `dense_bwd` everywhere",
    "nnref training driver (nnref.train)": "nnref training driver (`nnref.train`)",
    _DENSE_TF: "TF `tf.function` tape + Keras Adam",
    _DENSE_TORCH: "PyTorch eager, foreach Adam",
}


def _ratio(r: dict[str, Any] | None, invert: bool = False) -> tuple[float, str]:
    if r is None:
        return 1.0, "1"
    q = (r["ratio"], r["ratio_q1"], r["ratio_q3"])
    if invert:  # a median of per-pair ratios inverts exactly (odd number of pairs)
        q = (1 / q[0], 1 / q[2], 1 / q[1])
    return q[0], f"{q[0]:.2f} [{q[1]:.2f}\N{EN DASH}{q[2]:.2f}]"


@block("dense-bench", "{python}", "benchmarks/bench_dense.py", "--json", "{out}")
def render_dense_bench(results: dict[str, Any]) -> str:
    """`benchmarks/bench_dense.py --json`: the dense training step vs PyTorch and TF, ratios,
    load, issue 18's targets and the per-op breakdown."""
    v = results["versions"]
    models: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    batches = {}
    for r in results["rows"]:
        models.setdefault(r["model"], {}).setdefault(r["baseline"], {})[r["contender"]] = r
        batches[r["model"]] = r["batch"]
    lines = [
        f"`python benchmarks/bench_dense.py` ({results['repeats']} pairs per contender; "
        f"{results['cpu']}; NumPy {v['numpy']}, PyTorch {v['torch']}, TF {v['tensorflow']}, "
        f"Keras {v['keras']}; float32; {results['method']}; first-step gradients agree with "
        "TF's to "
        + ", ".join(f"{e:.0e}" for e in results["agreement_with_tf"].values())
        + " relative). Load: cores other processes used during the block (of 2).",
        "",
        "| model, batch | contender | ms per step [quartiles] | / PyTorch [quartiles] "
        "| / TF [quartiles] | load |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    met: dict[str, list[str]] = {"torch": [], "tf": []}
    for model, blocks in models.items():
        vs_torch, vs_tf = blocks[_DENSE_TORCH], blocks[_DENSE_TF]
        for name, label in _DENSE_LABELS.items():
            r = vs_torch[name]
            to_torch = _ratio(None if name == _DENSE_TORCH else r)
            if name == _DENSE_TORCH:
                to_tf = _ratio(vs_torch[_DENSE_TF], invert=True)
            else:
                to_tf = _ratio(None if name == _DENSE_TF else vs_tf[name])
            load = max(r["others_cores"], vs_tf.get(name, r)["others_cores"])
            bold = "**" if name == _DENSE_COMPOSED else ""
            lines.append(
                f"| {model}, {batches[model]} | {label} | {r['median_s'] * 1e3:.2f} "
                f"[{r['q1_s'] * 1e3:.2f}\N{EN DASH}{r['q3_s'] * 1e3:.2f}] | {bold}{to_torch[1]}{bold} "
                f"| {bold}{to_tf[1]}{bold} | {load:.2f} |"
            )
            if name == _DENSE_COMPOSED:
                met["torch"].append(f"{model} {to_torch[0]:.2f}" + _verdict(to_torch[0], 1.0))
                met["tf"].append(f"{model} {to_tf[0]:.2f}" + _verdict(to_tf[0], 0.75))
    lines += [
        "",
        "Issue 18's targets for the composed step (first layer `dense_bwd_params`), as measured "
        f"above: ≤ 1.0\N{MULTIPLICATION SIGN} PyTorch: {'; '.join(met['torch'])}; ≤ 0.75\N{MULTIPLICATION SIGN} TF: {'; '.join(met['tf'])}.",
        "",
        "Where the step's time goes (each stage timed inside consecutive steps, medians, ms):",
        "",
        "| model | contender | forward | backward | Adam update | load |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in results["breakdown"]:
        st = b["stages_s"]
        lines.append(
            f"| {b['model']} | {_DENSE_LABELS[b['contender']]} | {st['forward'] * 1e3:.3f} "
            f"| {st['backward'] * 1e3:.3f} | {st['Adam update'] * 1e3:.3f} "
            f"| {b['others_cores']:.2f} |"
        )
    return "\n".join(lines)


def _verdict(ratio: float, target: float) -> str:
    return "" if ratio <= target else " (**not met**)"


if __name__ == "__main__":
    sys.exit(main())
