"""README figures: every generated block is the rendering of its committed results file
(``benchmarks/readme_figures.py``), and the cheap figures are recomputed here."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from nnref._machine import numpy_simd
from nnref.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_figures", ROOT / "benchmarks" / "readme_figures.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_every_readme_block_is_the_rendering_of_its_results(figures) -> None:
    text = README.read_text()
    assert set(figures.readme_blocks(text)) == set(figures.BLOCKS)
    stale = figures.stale(text)
    assert not stale, (
        "\n".join(stale.values()) + "\nrun: python benchmarks/readme_figures.py --write"
    )


def test_a_changed_figure_is_caught_and_rewritten(figures) -> None:
    text = README.read_text()
    body = figures.readme_blocks(text)["errata"]
    accuracy = body.rsplit("| ", 1)[1].split(" /")[0]  # the last row's fixed accuracy
    edited = text.replace(body, body.replace(f"| {accuracy} /", "| 0.1234 /"))
    assert edited != text
    stale = figures.stale(edited)
    assert list(stale) == ["errata"]
    assert "-| " in stale["errata"]
    assert "0.1234" in stale["errata"]
    assert figures.rewrite(edited) == text


def test_markers_without_a_renderer_or_missing_blocks_are_errors(figures) -> None:
    text = README.read_text()
    with pytest.raises(ValueError, match="'nonsense' has no renderer"):
        figures.readme_blocks(text + "\n<!-- generated: nonsense -->\nx\n<!-- end generated -->\n")
    name = next(iter(figures.BLOCKS))
    without = text.replace(f"<!-- generated: {name} -->", "<!-- gone -->")
    with pytest.raises(ValueError, match=f"README lacks the generated block\\(s\\) \\['{name}'\\]"):
        figures.readme_blocks(without)


def test_a_block_is_one_renderer_and_one_results_file(figures, tmp_path) -> None:
    @figures.block("demo-count", "{python}", "-c", "print('{\"n\": 3}')")
    def render_demo(results):
        return f"n = {results['n']}"

    try:
        (tmp_path / "demo-count.json").write_text('{"n": 3}')
        text = "a\n<!-- generated: demo-count -->\nold\n<!-- end generated -->\nb\n"
        for name in set(figures.BLOCKS) - {"demo-count"}:
            body = figures.render(name)
            (tmp_path / f"{name}.json").write_text(figures.BLOCKS[name].results_file().read_text())
            text += f"<!-- generated: {name} -->\n{body}\n<!-- end generated -->\n"
        new = figures.rewrite(text, tmp_path)
        assert "<!-- generated: demo-count -->\nn = 3\n<!-- end generated -->" in new
        assert figures.BLOCKS["demo-count"].command_line() == (
            "python -c print('{\"n\": 3}') > benchmarks/results/demo-count.json"
        )
    finally:
        del figures.BLOCKS["demo-count"]


def _committed(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())


def test_verify_finite_difference_column_recomputed(capsys) -> None:
    committed = _committed("verify")
    measured_on = (committed["versions"]["numpy"], committed["versions"].get("numpy_simd"))
    if measured_on != (np.__version__, numpy_simd()):
        pytest.skip(f"README measured on NumPy {measured_on[0]} dispatching {measured_on[1]}")
    assert main(["verify", "--fd-only", "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)["rows"]

    def fd_column(rows: list[dict]) -> dict:  # as rendered, where FD applies
        return {(r["op"], r["dtype"]): f"{r['fd']:.1e}" for r in rows if r.get("fd") is not None}

    assert fd_column(fresh) == fd_column(committed["rows"])


def test_verified_against_table_names_the_oracles_the_code_runs() -> None:
    """The README's oracle table is the legs' own labels, op by op (they once drifted apart:
    the MSE leg computes ``t - p``, Keras' order, and the table said ``p - t``)."""
    from nnref.oracles import jax, keras, tf, torch

    header = "| op | TF oracle | Keras oracle | JAX oracle | PyTorch oracle |"
    lines = README.read_text().split(header, 1)[1].splitlines()[2:]
    table = {}
    for line in lines:
        if not line.startswith("|"):
            break
        op, *cells = (c.strip().strip("`") for c in line.strip().strip("|").split(" | "))
        table[op] = cells
    labels = (tf.COUNTERPARTS, keras.COUNTERPARTS, jax.NAMES, torch.NAMES)
    code = {op: [d.get(op) for d in labels] for op in table}
    assert len(table) >= 12
    assert table == code
