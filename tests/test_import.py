"""``import nnref`` needs NumPy only and stays cheap."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_pull_in_heavy_dependencies() -> None:
    code = (
        "import sys, nnref, nnref.check, nnref.verify, nnref.oracles.tf, nnref.oracles.jax, "
        "nnref.oracles.torch, nnref.oracles.semantics; "
        "heavy = [m for m in ('tensorflow', 'keras', 'hypothesis', 'matplotlib', 'sklearn', "
        "'jax', 'optax', 'torch') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
