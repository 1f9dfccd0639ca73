"""The Overview's headline tiles, the sidebar time range and the day axes, on the fixture warehouse
(AppTest), each checked against SQL over the raw tables (tests/dashboard/expected.py), not the views."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import ui
from dashboards.data import WAREHOUSE_ENV
from flywheel.store.db import Warehouse
from tests.costs.fixture_warehouse import STUDENT_V1, SUPPORT, _interaction, insert_rows, served_call
from tests.dashboard import expected
from tests.dashboard.conftest import figure, run_page, values


def _con(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def tiles(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def money_tiles(want: dict[str, Any]) -> dict[str, str]:
    return {
        "Teacher cost avoided": ui.usd(want["avoided_usd"]),
        "Student + fallback cost": ui.usd(want["student_fallback_usd"]),
        "Flywheel spend": ui.usd(want["flywheel_usd"]),
        "Net saved": ui.usd(want["net_saved_usd"]),
        "Student share": ui.pct(want["student_share"]),
    }


def health_tiles(want: dict[str, Any]) -> dict[str, str]:
    return {
        "Requests served": f"{want['requests']:,}",
        "Fallback rate": ui.pct(want["fallback_rate"]),
        "p95 latency": ui.ms(want["p95_ms"]),
    }


def x_range(app: AppTest, title: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(x) for x in figure(app, title)["layout"]["xaxis"]["range"]]


def test_tiles_over_all_history_equal_independent_sql(on_fixture: Path) -> None:
    app = run_page("overview")
    con = _con(on_fixture)
    want = expected.headline(con)
    outlook = expected.break_even(con)
    shown = tiles(app)
    assert {k: shown[k] for k in money_tiles(want)} == money_tiles(want)
    health = health_tiles(expected.serve_health(con, None, None))
    assert {k: shown[k] for k in health} == health
    assert want["net_saved_usd"] == pytest.approx(outlook["net_to_date_usd"])  # production nets to zero
    assert shown["Break-even"] == str(outlook["break_even_day"]) == "2026-01-14"
    assert shown["Projected, next 30 days"] == ui.usd(expected.projected_monthly(con))
    assert shown["Quality held"] == "1 of 1"
    basis = " ".join(c.value for c in app.caption)
    assert "support: the last 7 days of served traffic (to 2026-01-20)" in basis
    assert "orders: hypothetical, no student serves yet" in basis  # a candidate, never served


def test_the_time_range_moves_every_tile_and_chart(on_fixture: Path) -> None:
    con = _con(on_fixture)
    everything = tiles(run_page("overview"))
    for option, n in (("Last 7 days", 7), ("Last day", 1)):
        since, until = expected.last_days(con, n)
        app = run_page("overview", widgets={"time_range": option})
        shown = tiles(app)
        want = expected.headline(con, since, until)
        assert {k: shown[k] for k in money_tiles(want)} == money_tiles(want), option
        health = expected.serve_health(con, since, until)
        assert {k: shown[k] for k in health_tiles(health)} == health_tiles(health), option
        assert shown["Break-even"] == everything["Break-even"]  # all history, said in the caption
        half = timedelta(hours=12)
        assert x_range(app, "Cumulative savings") == [pd.Timestamp(since) - half, pd.Timestamp(until) + half]
    assert shown["Teacher cost avoided"] != everything["Teacher cost avoided"]


def test_a_custom_range_with_nothing_served_says_so(on_fixture: Path) -> None:
    chosen = {"time_range": "Custom range", "custom_days": (date(2026, 1, 2), date(2026, 1, 5))}
    app = run_page("overview", widgets=chosen)
    con = _con(on_fixture)
    want = expected.headline(con, date(2026, 1, 2), date(2026, 1, 5))
    assert want["served_requests"] == 0 and want["flywheel_usd"] == 0
    shown = tiles(app)
    assert shown["Student share"] == "nothing served" and shown["Net saved"] == ui.usd(0)
    assert any("Nothing served in this range" in i.value for i in app.info)
    half = timedelta(hours=12)
    assert x_range(app, "Cumulative savings") == [datetime(2026, 1, 2) - half, datetime(2026, 1, 5) + half]


@pytest.mark.parametrize(("page", "title"), [("overview", "Cumulative savings"), ("costs", "Cost ledger")])
def test_day_axes_span_the_datas_days(on_fixture: Path, page: str, title: str) -> None:
    days = expected.data_days(_con(on_fixture))
    app = run_page(page)
    half = timedelta(hours=12)
    assert x_range(app, title) == [pd.Timestamp(days[0]) - half, pd.Timestamp(days[-1]) + half]
    assert not figure(app, title)["layout"]["xaxis"].get("rangebreaks")  # 20 days in a row: no gap


def test_months_without_data_are_cut_out_of_the_axis(
    fixture_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = datetime(2026, 9, 1, 10)  # one served call 7 months after the fixture's traffic
    row = _interaction(SUPPORT, 99_999, later, model=STUDENT_V1, cost_usd=0.0001, latency_ms=30.0)
    row |= {"source": "spool", "metadata": orjson.dumps({"served_by": "student"}).decode()}
    Warehouse(fixture_copy).write(lambda con: insert_rows(con, "served_calls", [served_call(row)]))
    monkeypatch.setenv(WAREHOUSE_ENV, str(fixture_copy))
    app = run_page("overview")
    layout = figure(app, "Cumulative savings")["layout"]
    last_before = date(2026, 1, 20)
    assert [pd.Timestamp(x) for x in layout["xaxis"]["range"]] == [
        pd.Timestamp(date(2026, 1, 1)) - timedelta(hours=12),
        pd.Timestamp(later.date()) + timedelta(hours=12),
    ]
    (cut,) = layout["xaxis"]["rangebreaks"]
    assert [pd.Timestamp(b).date() for b in cut["bounds"]] == [date(2026, 1, 21), date(2026, 8, 31)]
    gap = (later.date() - last_before).days - 1
    assert any(a["text"] == f"{gap} days without data" for a in layout["annotations"])
    assert tiles(app)["Student share"] == ui.pct(451 / 501)


def test_before_break_even_the_tile_says_not_yet_with_the_projected_date(
    fixture_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big training bill on the last day: net is negative, the projection says when it pays off."""
    Warehouse(fixture_copy).write(
        lambda con: con.execute(
            'INSERT INTO cost_ledger (entry_id, workload_id, run_id, kind, usd, "at") '
            "VALUES ('big-training', ?, 'r', 'training', 5.0, ?)",
            [SUPPORT, datetime(2026, 1, 20, 12)],
        )
    )
    monkeypatch.setenv(WAREHOUSE_ENV, str(fixture_copy))
    con = _con(fixture_copy)
    outlook = expected.break_even(con)
    monthly = expected.projected_monthly(con)
    assert outlook["net_to_date_usd"] < 0 < monthly
    projected = outlook["last_day"] + timedelta(days=math.ceil(-outlook["net_to_date_usd"] / (monthly / 30)))
    app = run_page("overview")
    tile = next(m for m in app.metric if m.label == "Break-even")
    assert tile.value == "not yet"
    assert f"Projected {projected}" in tile.help and ui.usd(outlook["net_to_date_usd"]) in tile.help
    assert tiles(app)["Net saved"] == ui.usd(expected.headline(con)["net_saved_usd"])


def test_the_workload_page_obeys_the_time_range(on_fixture: Path) -> None:
    con = _con(on_fixture)
    since, until = expected.last_days(con, 7)
    app = run_page("workload", widgets={"time_range": "Last 7 days"}, workload=SUPPORT)
    rates = figure(app, "Fallback to the teacher")["data"][0]
    raw = con.execute(
        "SELECT CAST(ts AS DATE) AS day, "
        "count(*) FILTER (WHERE metadata->>'served_by' = 'teacher') / count(*) FROM served_calls "
        "WHERE workload_id = ? AND CAST(ts AS DATE) BETWEEN ? AND ? GROUP BY ALL ORDER BY day",
        [SUPPORT, since, until],
    ).fetchall()
    assert [pd.Timestamp(x).date() for x in rates["x"]] == [day for day, _ in raw] and len(raw) == 7
    assert values(rates["y"]) == pytest.approx([rate for _, rate in raw])
    notes = [c.value for c in app.caption]
    assert any(n.startswith("Live agreement, feedback, fallbacks and latency: Last 7 days") for n in notes)


def test_a_warehouse_from_before_the_headline_asks_for_an_upgrade(
    fixture_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def downgrade(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("DROP MACRO TABLE headline")

    Warehouse(fixture_copy).write(downgrade)
    monkeypatch.setenv(WAREHOUSE_ENV, str(fixture_copy))
    app = run_page("overview")
    assert any("has no `headline` yet: run `flywheel costs` once" in i.value for i in app.info)
    assert not app.metric
