from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from flywheel.costs import hardware_profile, record_assumptions, savings_daily, savings_report
from flywheel.pricing import PriceCatalog
from flywheel.store.db import Warehouse
from tests.costs import independent
from tests.costs.fixture_warehouse import (
    ORDERS,
    ORDERS_MODEL,
    STUDENT_V1,
    SUPPORT,
    V2_TRAIN_SECONDS,
    _interaction,
    insert_rows,
    served_call,
)

MONEY = {"abs": 2e-6}  # the report rounds to micro-dollars


def _expected(path: Path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return independent.expected_summary(con)
    finally:
        con.close()


def test_summary_equals_independent_arithmetic_over_raw_tables(fixture_db: Path) -> None:
    report = savings_report(Warehouse(fixture_db))
    expected = _expected(fixture_db)
    assert set(report["workloads"]) == set(expected) == {SUPPORT, ORDERS, "(unassigned)"}
    for workload, want in expected.items():
        got = report["workloads"][workload]
        for key in ("teacher_usd", "actual_usd", "saved_usd", "projected_monthly_saved_usd"):
            assert got[key] == (None if want[key] is None else pytest.approx(want[key], **MONEY)), (
                workload,
                key,
            )
        assert got["saved_pct"] == (
            None if want["saved_pct"] is None else pytest.approx(want["saved_pct"], abs=1e-6)
        )
        assert got["break_even_day"] == (want["break_even_day"] and want["break_even_day"].isoformat())


def test_support_ledger_reads_as_expected(fixture_db: Path) -> None:
    support = savings_report(Warehouse(fixture_db), SUPPORT)["workloads"][SUPPORT]
    assert (support["requests"], support["student_requests"], support["fallback_requests"]) == (700, 450, 50)
    assert support["fallback_rate"] == pytest.approx(0.1)
    assert support["saved_usd"] > 0 and support["break_even_day"] == "2026-01-13"
    assert support["projection_basis"] == "served" and support["window_days"] == 7
    assert support["monthly_requests"] == pytest.approx(50 * 30)
    # Investment: 10 x $0.05 labeling + $0.20 training + $0.10 evaluation + v2's 360 s at $0.10/h.
    assert support["flywheel_usd"] == pytest.approx(0.8 + V2_TRAIN_SECONDS * 0.10 / 3600, **MONEY)


def test_totals_add_up(fixture_db: Path) -> None:
    report = savings_report(Warehouse(fixture_db))
    for key in ("teacher_usd", "actual_usd", "saved_usd"):
        assert report["totals"][key] == pytest.approx(
            sum(w[key] for w in report["workloads"].values()), **MONEY
        )
    assert report["totals"]["saved_pct"] == pytest.approx(
        report["totals"]["saved_usd"] / report["totals"]["teacher_usd"], abs=1e-6
    )


def test_daily_ledger_running_totals_match_the_days(fixture_db: Path) -> None:
    daily = savings_daily(Warehouse(fixture_db), SUPPORT)
    expected = independent.expected_daily(duckdb.connect(str(fixture_db), read_only=True))[SUPPORT]
    assert [date.fromisoformat(d["day"]) for d in daily] == sorted(expected)
    running = 0.0
    for row in daily:
        want = expected[date.fromisoformat(row["day"])]
        saved = want["teacher"] - want["serving"] - want["flywheel"]
        running += saved
        assert row["saved_usd"] == pytest.approx(saved, **MONEY)
        assert row["cum_saved_usd"] == pytest.approx(running, abs=1e-5)
    assert daily[-1]["cum_saved_usd"] == pytest.approx(
        savings_report(Warehouse(fixture_db), SUPPORT)["workloads"][SUPPORT]["saved_usd"], abs=1e-5
    )


def test_assumptions_pick_the_production_teacher_and_the_measured_candidate_cost(fixture_db: Path) -> None:
    con = duckdb.connect(str(fixture_db), read_only=True)
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT workload_id, teacher_model, teacher_input_per_1m, student_model_id, student_usd_per_1k, "
            "student_cost_basis FROM cost_assumptions"
        ).fetchall()
    }
    assert rows[SUPPORT] == ("gpt-4o", 2.5, STUDENT_V1, pytest.approx(0.1), "evaluation")
    orders_per_1k = independent.orders_student_per_request(con) * 1000
    assert rows[ORDERS] == ("gpt-4o-mini", 0.15, ORDERS_MODEL, pytest.approx(orders_per_1k), "throughput")


def test_served_traffic_without_a_catalog_price_uses_the_workloads_logged_rate(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    production = _interaction("chat", 0, datetime(2026, 2, 1), model="in-house-70b", cost_usd=0.002)
    production |= {"prompt_tokens": 900, "completion_tokens": 100}  # $2 per 1M tokens, logged
    meta = orjson.dumps({"served_by": "student"}).decode()
    served = _interaction("chat", 1, datetime(2026, 2, 2), model="chat/s/v1", source="spool", metadata=meta)
    served |= {"prompt_tokens": 400, "completion_tokens": 100, "cost_usd": 0.0001}
    warehouse.write(lambda con: insert_rows(con, "interactions", [production]))
    warehouse.write(lambda con: insert_rows(con, "served_calls", [served_call(served)]))
    record_assumptions(warehouse, PriceCatalog.load(), serving=hardware_profile("cpu-2core"))
    chat = savings_report(warehouse)["workloads"]["chat"]
    assert chat["teacher_usd"] == pytest.approx(0.002 + 500 * 2e-6)
    assert chat["actual_usd"] == pytest.approx(0.002 + 0.0001)
    assert chat["unpriced"] == 0


def test_unknown_costs_are_counted_not_guessed(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    row = _interaction("x", 0, datetime(2026, 2, 1), model="mystery", cost_usd=None)
    warehouse.write(lambda con: insert_rows(con, "interactions", [row]))
    x = savings_report(warehouse)["workloads"]["x"]  # never priced: no assumptions recorded
    assert (x["unpriced"], x["teacher_usd"], x["actual_usd"]) == (1, 0.0, 0.0)
    assert x["saved_pct"] is None and x["projected_monthly_saved_usd"] is None


def test_recording_assumptions_twice_replaces_them(fixture_copy: Path) -> None:
    warehouse = Warehouse(fixture_copy)
    before = savings_report(warehouse)
    record_assumptions(warehouse, PriceCatalog.load(), serving=hardware_profile("gpu-t4"))
    record_assumptions(warehouse, PriceCatalog.load(), serving=hardware_profile("cpu-2core"))
    count = warehouse.read(lambda con: con.execute("SELECT count(*) FROM cost_assumptions").fetchone()[0])
    assert count == 2 and savings_report(warehouse) == before


def test_a_pricier_training_machine_raises_the_investment(fixture_copy: Path) -> None:
    warehouse = Warehouse(fixture_copy)
    before = savings_report(warehouse, SUPPORT)["workloads"][SUPPORT]["flywheel_usd"]
    record_assumptions(
        warehouse, PriceCatalog.load(), serving=hardware_profile("cpu-2core"), training_usd_per_hour=3.5
    )
    after = savings_report(warehouse, SUPPORT)["workloads"][SUPPORT]["flywheel_usd"]
    assert after - before == pytest.approx(V2_TRAIN_SECONDS * (3.5 - 0.10) / 3600, **MONEY)
