"""Reliability suite: every test records what it tried (cases, crashes, records lost) and the session
prints the totals, the figures RELIABILITY.md quotes. RELIABILITY_FIGURES=path also writes them as JSON."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

import pytest

from tests.reliability.helpers import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    totals: dict[str, int] = defaultdict(int)
    for row in FIGURES:
        for key, value in row.items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] += value
    terminalreporter.section("reliability figures")
    for row in FIGURES:
        terminalreporter.line(json.dumps(row, sort_keys=True))
    terminalreporter.line("totals: " + json.dumps(dict(sorted(totals.items()))))
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump({"tests": FIGURES, "totals": totals}, handle, indent=1, sort_keys=True)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A row of figures for this test, kept only when the test passes its assertions."""
    row: dict[str, Any] = {"test": request.node.name}
    yield row
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.passed:
        FIGURES.append(row)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
