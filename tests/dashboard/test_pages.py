"""Every page on the fixture warehouse (AppTest), its numbers checked against SQL over raw tables."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dashboards import ui
from dashboards.data import WAREHOUSE_ENV
from flywheel.store.db import Warehouse
from tests.costs import independent
from tests.costs.fixture_warehouse import ORDERS, SUPPORT
from tests.dashboard.conftest import PAGES, figure, figures, run_page, table_with, values


def _raw(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_charts_on_the_fixture(on_fixture: Path, page: str) -> None:
    app = run_page(page, **({"workload": SUPPORT} if page == "workload" else {}))
    assert figures(app), f"{page}: no chart"
    assert not app.info, [i.value for i in app.info]


def test_overview_table_equals_independent_sql(on_fixture: Path) -> None:
    app = run_page("overview")
    expected = independent.expected_summary(duckdb.connect(str(on_fixture), read_only=True))
    table = table_with(app, "quality_held").set_index("workload_id")
    for workload in (SUPPORT, ORDERS):
        for key in ("teacher_usd", "actual_usd", "saved_usd", "projected_monthly_saved_usd"):
            assert table.loc[workload, key] == pytest.approx(expected[workload][key], abs=1e-9)
    assert bool(table.loc[SUPPORT, "quality_held"]) is True


def test_costs_page_ledger_equals_independent_sql(on_fixture: Path) -> None:
    app = run_page("costs")
    expected = independent.expected_summary(duckdb.connect(str(on_fixture), read_only=True))
    table = app.dataframe[0].value.set_index("workload_id")
    for workload, want in expected.items():
        for key in ("teacher_usd", "actual_usd", "saved_usd", "saved_pct"):
            got = table.loc[workload, key]
            assert (got != got and want[key] is None) or got == pytest.approx(want[key], abs=1e-9), (
                workload,
                key,
            )
    assert str(table.loc[SUPPORT, "break_even_day"])[:10] == expected[SUPPORT]["break_even_day"].isoformat()
    assert any(
        a["text"] == "break-even" for a in figure(app, f"Break-even: {SUPPORT}")["layout"]["annotations"]
    )
    assert not figure(app, f"Break-even: {ORDERS}")["layout"].get("annotations")  # not broken even yet
    ledger = figure(app, "Cost ledger by kind")
    spent = sum(v for trace in ledger["data"] for v in values(trace["y"]))
    (total,) = _raw(on_fixture, "SELECT sum(usd) FROM cost_ledger")[0]
    assert spent == pytest.approx(total + 360 * 0.10 / 3600 + 60 * 0.10 / 3600)  # + unledgered training
    assert any("break_even_day: the first day" in m.value for m in app.markdown)  # the definitions
    unpriced = [w.value for w in app.warning]  # the fixture's one call to a model the catalog lacks
    assert len(unpriced) == 1 and "1 request to 'mystery-model' has no price" in unpriced[0]
    assert 'prices: {"mystery-model": {"input":' in unpriced[0]


def test_workload_page_shows_the_workloads_own_rows(on_fixture: Path) -> None:
    app = run_page("workload", workload=SUPPORT)
    funnel = figure(app, "Data funnel")["data"][0]
    (logged, ingested, ok) = _raw(
        on_fixture,
        "SELECT count(*) + (SELECT count(*) FROM quarantine WHERE workload_id = ?), count(*), "
        "count(*) FILTER (status = 'ok') FROM interactions WHERE workload_id = ?",
        [SUPPORT, SUPPORT],
    )[0]
    assert values(funnel["x"])[:3] == [logged, ingested, ok] and funnel["y"][-2:] == ["curated", "labeled"]
    reasons = figure(app, "Fallback reasons")["data"][0]
    raw = dict(
        _raw(
            on_fixture,
            "SELECT metadata->>'fallback_reason', count(*) FROM served_calls "
            "WHERE workload_id = ? AND metadata->>'served_by' = 'teacher' GROUP BY ALL",
            [SUPPORT],
        )
    )
    assert dict(zip(reasons["x"], values(reasons["y"]), strict=True)) == raw
    quality = figure(app, "accuracy by model version")["data"][0]
    assert quality["x"] == ["support/tiny/v1", "support/tiny/v2", "teacher"]  # the latest evaluation
    gate = next(t.value for t in app.dataframe if "reasons" in t.value.columns)
    assert gate["reasons"].iloc[0] == "ci_low_below_threshold, not_cheaper_enough"
    assert SUPPORT in app.query_params["workload"]  # each workload has its own URL


def test_workload_page_shows_live_agreement_against_the_gate_target(on_fixture: Path) -> None:
    app = run_page("workload", workload=SUPPORT)
    traces = figure(app, "Live agreement with the teacher (accuracy")["data"]
    rows = _raw(
        on_fixture,
        "SELECT value, target FROM shadow_evaluations WHERE workload_id = ? AND is_primary ORDER BY day",
        [SUPPORT],
    )
    student = next(t for t in traces if t["name"] == "support/tiny/v1")
    target = next(t for t in traces if t["name"] == "gate target")
    assert values(student["y"]) == [value for value, _ in rows]  # the primary metric only
    assert values(target["y"]) == [target for _, target in rows] == [0.9, 0.9]


def test_workload_page_empty_states_say_what_to_run(on_fixture: Path) -> None:
    app = run_page("workload", workload=ORDERS)
    notices = " ".join(i.value for i in app.info)
    assert f"flywheel evaluate --workload {ORDERS}" in notices and "flywheel serve" in notices
    assert figure(app, "Data funnel")


def test_runs_page_lists_every_run_and_links_prefect(
    on_fixture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    app = run_page("runs")
    table = app.dataframe[0].value
    (count,) = _raw(
        on_fixture,
        "SELECT (SELECT count(*) FROM flywheel_runs) + (SELECT count(*) FROM label_runs) "
        "+ (SELECT count(*) FROM eval_runs)",
    )[0]
    assert len(table) == count
    (prefect_id,) = _raw(on_fixture, "SELECT prefect_flow_run_id FROM flywheel_runs WHERE run_id = 'flow-1'")[
        0
    ]
    link = table.set_index("run_id").loc["flow-1", "prefect"]
    assert link == f"http://127.0.0.1:4200/runs/flow-run/{prefect_id}"
    assert set(table["status"]) == {"completed", "failed"}
    evaluated = table.set_index("run_id").loc["eval-2"]
    assert (evaluated["decision"], evaluated["reasons"]) == (
        "reject",
        "ci_low_below_threshold, not_cheaper_enough",
    )


def test_runs_page_reads_decisions_and_reasons_out_of_run_summaries(
    fixture_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summaries the flows record (flows/flywheel_flow.py, retrain_check.py) as readable columns."""
    turn = {"decision": "insufficient_eval", "reasons": ["eval split too small"], "champion": None}
    check = {"trigger": False, "reasons": [], "workload_id": SUPPORT}
    failed = {"error": "RuntimeError: teacher unreachable"}
    rows = [
        ("turn", "flywheel", "completed", turn, "0b7e6f0c-2222-4c7a-9c55-000000000002"),
        ("check", "retrain-check", "completed", check, None),
        ("boom", "flywheel", "failed", failed, ""),
    ]
    started = datetime(2026, 1, 20, 21)  # late on the fixture's last day

    def insert(con: duckdb.DuckDBPyConnection) -> None:
        for run_id, flow, status, summary, prefect_id in rows:
            con.execute(
                "INSERT INTO flywheel_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, SUPPORT, flow, started, started + timedelta(seconds=90), status, prefect_id,
                 json.dumps(summary)],
            )  # fmt: skip

    Warehouse(fixture_copy).write(insert)
    monkeypatch.setenv(WAREHOUSE_ENV, str(fixture_copy))
    monkeypatch.setenv("PREFECT_UI_URL", "http://prefect.example:4200/")
    app = run_page("runs", widgets={"time_range": "Last 7 days"})
    table = app.dataframe[0].value.set_index("run_id")
    assert table.loc["turn", ["decision", "reasons"]].tolist() == [
        "insufficient_eval",
        "eval split too small",
    ]
    assert table.loc["check", "decision"] == "no retrain" and ui.missing(table.loc["check", "reasons"])
    assert table.loc["boom", ["decision", "reasons"]].tolist() == ["error", failed["error"]]
    assert table.loc["turn", "duration_s"] == 90.0
    assert table.loc["turn", "prefect"] == "http://prefect.example:4200/runs/flow-run/" + rows[0][4]
    assert ui.missing(table.loc["boom", "prefect"])  # no Prefect run, no link
    assert "flow-1" not in table.index  # started 2026-01-10: outside the last 7 days of data
    shown = [pd.Timestamp(x) for x in figure(app, "Run durations")["layout"]["xaxis"]["range"]]
    # the runs' own days (flow-2 on 2026-01-14 is the first in range), the last run an hour inside
    assert shown == [pd.Timestamp(2026, 1, 13, 12), pd.Timestamp(started) + timedelta(hours=1)]


@pytest.mark.parametrize("page", PAGES)
def test_without_a_warehouse_every_page_says_what_to_run(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WAREHOUSE_ENV, str(tmp_path / "none.duckdb"))
    app = run_page(page)
    assert not figures(app)
    assert any("flywheel demo" in i.value for i in app.info), [i.value for i in app.info]
    assert not (tmp_path / "none.duckdb").exists()


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_warehouse_shows_empty_states(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = Warehouse(tmp_path / "empty.duckdb")
    warehouse.ensure_schema()
    monkeypatch.setenv(WAREHOUSE_ENV, str(warehouse.path))
    app = run_page(page)
    assert not figures(app) and app.info
    assert all("`flywheel " in i.value for i in app.info), [i.value for i in app.info]


def test_an_old_warehouse_asks_for_an_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE interactions (id VARCHAR)")
    con.close()
    monkeypatch.setenv(WAREHOUSE_ENV, str(path))
    app = run_page("overview")
    assert "run `flywheel costs` once" in app.info[0].value
