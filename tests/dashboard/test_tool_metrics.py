"""The workload page's cascade and per-tool section shows the rows evaluate stored (handcrafted set)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from dashboards.data import WAREHOUSE_ENV
from flywheel.evaluate.store import save_tool_metrics
from flywheel.evaluate.tool_metrics import tool_metrics
from flywheel.store.db import Warehouse
from tests.costs.fixture_warehouse import SUPPORT
from tests.dashboard.conftest import run_page
from tests.evaluate.test_tool_metrics import ANSWERS, REFERENCES

AT = datetime(2026, 12, 1, 12, 0)


def test_workload_page_shows_cascade_and_per_tool_metrics(
    fixture_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = Warehouse(fixture_copy)
    rows = tool_metrics(REFERENCES, ANSWERS, np.array([True, True, False, False, True, False]))
    save_tool_metrics(warehouse, "run-tools", SUPPORT, {"support/tiny/v3": rows}, AT)
    cascade = {"model": "support/tiny/v3", "claims": "tool_calls", "metric": "tool_call_exact",
               "floor": 0.9, "threshold": 0.61, "coverage": 0.5, "value": 0.95, "ci_low": 0.91}  # fmt: skip
    results = {"primary_metric": "tool_call_exact", "cascade": cascade, "cascades": [cascade]}
    warehouse.write(lambda con: con.execute(
        "INSERT INTO eval_runs VALUES ('run-tools', ?, NULL, ?, ?, 'promote_partial', 'support/tiny/v3', "
        "?, ?)", [SUPPORT, AT, AT, json.dumps(["passed_partial"]), json.dumps(results)],
    ))  # fmt: skip
    monkeypatch.setenv(WAREHOUSE_ENV, str(fixture_copy))
    app = run_page("workload", workload=SUPPORT)
    frames = [t.value for t in app.dataframe]
    shown = next(f for f in frames if "promoted_partially" in f.columns)
    assert shown[["model_id", "threshold", "coverage"]].values.tolist() == [["support/tiny/v3", 0.61, 0.5]]
    assert bool(shown["promoted_partially"].iloc[0])
    per_tool = next(f for f in frames if "arguments_exact" in f.columns).set_index("tool")
    assert per_tool.loc["get_weather", "arguments_exact"] == 0.5 and per_tool.loc["book", "coverage"] == 0.0
    per_param = next(f for f in frames if "f1" in f.columns).set_index(["tool", "parameter"])
    assert per_param.loc[("get_weather", "unit"), "f1"] == pytest.approx(2 / 3)
    caption = " ".join(c.value for c in app.caption)
    assert "decision accuracy 50.0%" in caption
    assert "function-name accuracy on tool-call turns 50.0%" in caption
