"""Rows, the report, and copy-paste repro snippets."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Checks in report order: a shape error (or an input the forward modified in place) is
#: reported under ``signature``, value errors under ``forward`` / ``vjp``, so one does not bury
#: the other.
CHECKS: tuple[str, ...] = (
    "signature",
    "forward",
    "vjp",
    "vjp-fd",
    "raises",
    "property",
    "batches",
    "trajectory",
)


@dataclass(frozen=True)
class Row:
    """One check of one op on one case and dtype."""

    op: str
    check: str
    case: str
    dtype: str
    ok: bool
    #: Worst error ``max |a - b| / (|b| + rms(b))`` (0 when exact; inf for a non-finite
    #: mismatch; None where no values were compared).
    error: float | None
    tolerance: float | None
    #: The worst entry, e.g. ``dx[0, 3, 1, 2]``, or the step and parameter of a trajectory.
    where: str
    message: str
    repro: str
    #: "pass", "fail", or "not checked" (e.g. gradients of a plain-form op).
    status: str = "pass"
    pins: tuple[str, ...] = ()
    #: The convention the expected values follow under the chosen profile.
    convention: str = "tf"
    #: Known conventions the implementation matches instead, on a failure.
    matches: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """A stable id: ``op/check/case/dtype``."""
        return f"{self.op}/{self.check}/{self.case}/{self.dtype}"


@dataclass
class ConformanceReport:
    target: str
    profile: str
    rows: list[Row]
    not_provided: list[str]
    notes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: Set when Ctrl-C (or, under the CLI, SIGTERM) stopped the run: the check that was running,
    #: and how many of the run's checks were done (``rows`` holds those).
    interrupted: str | None = None

    @property
    def ok(self) -> bool:
        """Every check passed, and every check of the run was made."""
        return self.interrupted is None and all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "profile": self.profile,
            "rows": [_row_json(r) for r in self.rows],
            "not_provided": self.not_provided,
            "notes": self.notes,
            "seconds": self.seconds,
            "interrupted": self.interrupted,
        }

    def summary(self, *, repro: bool = True) -> str:
        """The human report: a line per op, then failures grouped by check."""
        lines = [f"nnref conform {self.target} (profile {self.profile})"]
        ops = list(dict.fromkeys(r.op for r in self.rows))
        for op in ops:
            rows = [r for r in self.rows if r.op == op]
            bad = Counter(r.check for r in rows if not r.ok)
            checked = sum(r.status != "not checked" for r in rows)
            verdict = (
                "ok" if not bad else "FAIL (" + ", ".join(f"{c} {n}" for c, n in bad.items()) + ")"
            )
            note = f"; {self.notes[op]}" if op in self.notes else ""
            lines.append(f"  {op:42s} {checked:4d} checks  {verdict}{note}")
        if self.not_provided:
            lines.append("  not provided (not checked): " + ", ".join(self.not_provided))
        if self.failures and repro:
            lines.append(
                "\nRepro snippets: the first failure of each op and check below; all in --json."
            )
        for check in CHECKS:
            rows = [r for r in self.failures if r.check == check and r.status == "fail"]
            skipped = [r for r in self.failures if r.check == check and r.status != "fail"]
            if not rows and not skipped:
                continue
            lines.append(f"\n{check} failures ({len(rows)}):")
            shown: set[str] = set()
            for r in rows:
                lines.append(f"- {r.id}: {r.message}")
                if r.matches:
                    lines.append(f"  matches {'; '.join(r.matches)}")
                if repro and r.repro and r.op not in shown:  # one repro per op and check
                    shown.add(r.op)
                    lines.append("  repro:\n" + "\n".join("    " + s for s in r.repro.splitlines()))
            if skipped:
                lines.append(
                    f"  ({len(skipped)} more not compared because of the failures above: "
                    + ", ".join(r.id for r in skipped[:4])
                    + (", ..." if len(skipped) > 4 else "")
                    + ")"
                )
        n_fail = len(self.failures)
        counts = f"{len(self.rows) - n_fail} passed, {n_fail} failed in {self.seconds:.1f} s"
        if self.interrupted is not None:
            lines.append(f"\ninterrupted at {self.interrupted}: {counts} so far")
        else:
            lines.append(f"\n{counts}" + ("" if n_fail else ": conforms"))
        return "\n".join(lines)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, allow_nan=False, default=_jsonable)


def _row_json(r: Row) -> dict[str, Any]:
    d = asdict(r)
    d["id"] = r.id
    d["pins"] = list(r.pins)
    d["matches"] = list(r.matches)
    for k in ("error", "tolerance"):  # JSON has no inf/NaN: an infinite error is a string
        v = d[k]
        if v is not None and not np.isfinite(v):
            d[k] = "inf" if v > 0 else "nan"
    return d


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


# --------------------------------------------------------------------------- repro snippets

#: Arrays up to this many entries are written out as literals; larger ones are regenerated
#: from the case table by seed (nnref needed, not its test suite).
LITERAL_MAX = 64


def literal(v: Any) -> str:
    """Python source that rebuilds ``v`` exactly (arrays as ``np.array(..., dtype=...)``)."""
    if isinstance(v, np.ndarray):
        body = _floats(v.tolist()) if v.dtype.kind == "f" else repr(v.tolist())
        return f"np.array({body}, dtype=np.{v.dtype.name})"
    if isinstance(v, np.dtype):
        return f"np.{v.name}"
    if isinstance(v, type) and issubclass(v, np.generic):
        return f"np.{np.dtype(v).name}"
    if isinstance(v, np.generic):
        return repr(v.item())
    if isinstance(v, list | tuple):
        inner = ", ".join(literal(u) for u in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {literal(u)}" for k, u in v.items()) + "}"
    return repr(v)


def _floats(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_floats(u) for u in v) + "]"
    if v != v:
        return "np.nan"
    if v in (float("inf"), float("-inf")):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(v)


def entry(name: str, idx: tuple[int, ...]) -> str:
    """``name[i, j]``: an array's entry as the rows name it (``name`` alone for a 0-d array)."""
    return f"{name}[{', '.join(map(str, idx))}]" if idx else name


def pair(actual: np.ndarray, desired: Any, idx: tuple[int, ...]) -> str:
    """``"a vs expected b"`` at ``idx``, each entry printed as its value (``2.09681``, ``1``,
    ``nan``), not as a NumPy scalar's repr (``np.float32(2.09681)``)."""
    # str, not format: f"{np.float32(x)}" prints the float64 digits of the float32 value.
    return f"{actual[idx]!s} vs expected {np.asarray(desired)[idx]!s}"


def small(args: Any) -> bool:
    """Whether every array in ``args`` is small enough to write out."""
    arrays = [a for a in _flatten(args) if isinstance(a, np.ndarray)]
    return all(a.size <= LITERAL_MAX for a in arrays)


def _flatten(v: Any) -> list[Any]:
    if isinstance(v, list | tuple):
        return [u for w in v for u in _flatten(w)]
    if isinstance(v, dict):
        return [u for w in v.values() for u in _flatten(w)]
    return [v]
