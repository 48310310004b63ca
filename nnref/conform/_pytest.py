"""pytest plugin: ``pytest --nnref-conform=TARGET`` adds one test per op x check x case x dtype
of ``nnref conform TARGET`` to the run (registered through the ``pytest11`` entry point; it
does nothing unless the option is given)."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("nnref", "nnref conformance")
    g.addoption(
        "--nnref-conform",
        action="append",
        metavar="TARGET",
        help="add nnref's conformance checks of TARGET (module, module:attr, .py path, "
        "nnref, jax, torch) to the run; repeatable",
    )
    g.addoption("--nnref-conform-profile", default="tf", help="conventions expected (tf)")
    g.addoption(
        "--nnref-conform-op", action="append", metavar="OP", help="only this op (repeatable)"
    )
    g.addoption(
        "--nnref-conform-examples",
        type=int,
        default=None,
        help="Hypothesis examples per op and dtype (default: Hypothesis' profile)",
    )


class ConformanceFailure(Exception):
    """A failed conformance row (its report replaces the traceback)."""


class ConformanceItem(pytest.Item):
    def __init__(self, *, task: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task

    def runtest(self) -> None:
        row = self.task.run()
        if not row.ok:
            matches = f"\nmatches {'; '.join(row.matches)}" if row.matches else ""
            raise ConformanceFailure(f"{row.message}{matches}\nrepro:\n{row.repro}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "nnref-conform", None, self.name


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection sees the items
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    targets = config.getoption("nnref_conform")
    if not targets:
        return
    from nnref.conform import NoSelectedOpsError, TargetError, plan

    lacking = []  # targets without any selected op: an error only if no target has one
    for target in targets:
        try:
            _, tasks, _ = plan(
                target,
                ops=config.getoption("nnref_conform_op"),
                profile=config.getoption("nnref_conform_profile"),
                examples=config.getoption("nnref_conform_examples"),
            )
        except NoSelectedOpsError as e:
            lacking.append(f"--nnref-conform={target}: {e}")
            continue
        except (TargetError, ValueError) as e:
            raise pytest.UsageError(f"--nnref-conform={target}: {e}") from None
        items.extend(
            ConformanceItem.from_parent(session, name=f"nnref-conform[{target}]/{t.id}", task=t)
            for t in tasks
        )
    if len(lacking) == len(targets):
        raise pytest.UsageError("; ".join(lacking))
