"""Frozen test vectors: each case's inputs, hyperparameters, expected outputs and VJPs as
``.npz`` files (no pickle) and a JSON manifest, so an implementation in C, Rust or CUDA can be
tested without Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import nnref
from nnref.cases import TABLES
from nnref.cases.conventions import Profile
from nnref.conform._checks import case_inputs
from nnref.verify import tolerance

TOLERANCE_RULE = (
    "an output a passes against the expected e when max |a - e| / (|e| + rms(e)) <= tolerance "
    "(entries equal when both are the same inf or both NaN; differences within 64 smallest "
    "normal numbers are ignored)"
)


def _static_json(static: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in static.items():
        if isinstance(v, np.ndarray):
            arrays[f"static.{k}"] = v
            out[k] = {"array": f"static.{k}"}
        elif isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
            out[k] = np.dtype(v).name
        else:
            out[k] = v
    return out


def export_vectors(
    directory: str | Path,
    *,
    ops: list[str] | None = None,
    dtypes: list[str] | None = None,
    profile: Profile,
    seed: int = 0,
) -> Path:
    """Write ``directory/<op>/<case>.<dtype>.npz`` and ``directory/manifest.json``; return
    the manifest's path."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for op in ops or list(TABLES):
        t = TABLES[op]
        for dt in (dtypes or ["float64", "float32"]) if t.dtyped else ["-"]:
            for c in t.cases:
                if t.kind == "batches":
                    continue  # drawn from a generator: checked by its properties, not values
                args, static, dy, expect, convention = case_inputs(
                    op, c.id, dt, seed=seed, profile=profile
                )
                arrays: dict[str, np.ndarray] = {}
                inputs = []
                for name, a in zip(t.names, args, strict=True):
                    if isinstance(a, list):
                        for i, v in enumerate(a):
                            arrays[f"input.{name}.{i}"] = np.asarray(v)
                        inputs.append({"name": name, "list": len(a)})
                    elif isinstance(a, np.ndarray):
                        arrays[f"input.{name}"] = a
                        inputs.append({"name": name, "array": f"input.{name}"})
                    else:
                        inputs.append({"name": name, "value": a})
                exp = expect(args, static, dy)
                outputs = []
                if not exp.raises:
                    if t.kind == "optimizer":
                        for s, ps in enumerate(exp.y):
                            for i, p in enumerate(ps):
                                arrays[f"expected.step{s + 1}.param{i}"] = p
                        outputs.append({"trajectory": len(exp.y), "params": len(exp.y[0])})
                    else:
                        arrays["expected.y"] = np.asarray(exp.y)
                        outputs.append("expected.y")
                    if dy is not None:
                        arrays["dy"] = dy
                    for name, g in zip(t.names, exp.grads or (), strict=False):
                        if g is not None:
                            arrays[f"expected.d{name}"] = np.asarray(g)
                            outputs.append(f"expected.d{name}")
                static_json = _static_json(static, arrays)
                rel = Path(op) / f"{c.id}.{'any' if dt == '-' else dt}.npz"
                (root / op).mkdir(exist_ok=True)
                np.savez(root / rel, **arrays)
                entries.append(
                    {
                        "op": op,
                        "case": c.id,
                        "dtype": dt,
                        "file": rel.as_posix(),
                        "what": c.what,
                        "pins": list(c.pins),
                        "convention": convention,
                        "inputs": inputs,
                        "static": static_json,
                        "outputs": outputs,
                        "raises": exp.raises,
                        "tolerance": tolerance(op, np.float64 if dt == "-" else dt),
                    }
                )
    manifest = {
        "nnref": nnref.__version__,
        "profile": profile.name,
        "seed": seed,
        "tolerance_rule": TOLERANCE_RULE,
        "contract": "inputs in nnref's layout (NHWC activations, HWIO kernels); 'dy' is the "
        "cotangent at which the expected VJPs were taken; optimizer cases: at step t the "
        "gradient is curvature * p + noise[t], params after each step in expected.stepT.paramI",
        "vectors": entries,
    }
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path
