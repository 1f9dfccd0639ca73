"""The savings ledger recomputed from raw tables, without the views: what the tests compare against.

Plain SQL reads the rows; Python applies the definitions in flywheel/costs/__init__.py with the
fixture's known prices (catalog gpt-4o / gpt-4o-mini, cpu-2core at $0.10/h, the v1 evaluation's
measured cost), so a wrong join or filter in a view shows up as a mismatch.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import duckdb

from flywheel.pricing import PriceCatalog
from tests.costs.fixture_warehouse import EVAL_COST_PER_1K, ORDERS, ORDERS_TOKENS_PER_SECOND, SUPPORT

USD_PER_HOUR = 0.10  # cpu-2core
TEACHERS = {SUPPORT: "gpt-4o", ORDERS: "gpt-4o-mini"}


def orders_student_per_request(con: duckdb.DuckDBPyConnection) -> float:
    (tokens,) = con.execute(
        "SELECT avg(completion_tokens) FROM interactions "
        "WHERE workload_id = ? AND status = 'ok' AND completion_tokens > 0",
        [ORDERS],
    ).fetchone()
    return USD_PER_HOUR / 3600 * (tokens / ORDERS_TOKENS_PER_SECOND)


def student_per_request(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    return {SUPPORT: EVAL_COST_PER_1K / 1000, ORDERS: orders_student_per_request(con)}


def request_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per interaction: workload, day, served_by, teacher_usd, served_usd."""
    prices = PriceCatalog.load()
    student_cost = student_per_request(con)
    raw = con.execute(
        "SELECT workload_id, CAST(coalesce(ts, ingested_at) AS DATE), source, "
        "json_extract_string(metadata, '$.served_by'), model, prompt_tokens, completion_tokens, cost_usd, "
        "CAST(json_extract(metadata, '$.shadow_cost_usd') AS DOUBLE) FROM interactions "
        "WHERE source <> 'spool' UNION ALL "
        "SELECT workload_id, CAST(coalesce(ts, synced_at) AS DATE), 'spool', "
        "json_extract_string(metadata, '$.served_by'), model, prompt_tokens, completion_tokens, cost_usd, "
        "CAST(json_extract(metadata, '$.shadow_cost_usd') AS DOUBLE) FROM served_calls"
    ).fetchall()
    rows = []
    for workload, day, source, served_by, model, prompt, completion, cost, shadow in raw:
        kind = (served_by or "teacher") if source == "spool" else "production"
        if kind == "student":  # what the workload's teacher would have charged
            teacher = prices.cost(TEACHERS[workload], prompt, completion)
            served = cost if cost is not None else student_cost[workload]
        else:  # what the answering model charged: its catalog price, else its logged cost, else unknown
            own = prices.cost(model, prompt, completion)
            teacher = served = own if own is not None else cost
        if teacher is None or served is None:
            teacher = served = shadow = 0.0  # unpriced: counted as a request, adds nothing to any sum
        served += shadow or 0.0
        rows.append(
            {
                "workload": workload,
                "day": day,
                "source": source,
                "kind": kind,
                "teacher": teacher,
                "served": served,
            }
        )
    return rows


def spend_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, date, str, float]]:
    """(workload, day, kind, usd): ledger rows, plus training priced from wall time without one."""
    ledger = con.execute(
        "SELECT coalesce(workload_id, '(unassigned)'), CAST(\"at\" AS DATE), kind, usd FROM cost_ledger"
    ).fetchall()
    unledgered = con.execute(
        "SELECT workload_id, CAST(created_at AS DATE), train_seconds FROM models "
        "WHERE model_id NOT IN (SELECT ref FROM cost_ledger WHERE kind = 'training' AND ref IS NOT NULL)"
    ).fetchall()
    return ledger + [(w, d, "training", s * USD_PER_HOUR / 3600) for w, d, s in unledgered]


def expected_daily(con: duckdb.DuckDBPyConnection) -> dict[str, dict[date, dict[str, float]]]:
    days: dict[str, dict[date, dict[str, float]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(float))
    )
    for row in request_rows(con):
        entry = days[row["workload"]][row["day"]]
        entry["requests"] += 1
        entry["teacher"] += row["teacher"]
        entry["serving"] += row["served"]
        if row["source"] == "spool":
            entry["spool_requests"] += 1
            entry["spool_teacher"] += row["teacher"]
            entry["spool_serving"] += row["served"]
    for workload, day, kind, usd in spend_rows(con):
        entry = days[workload][day]
        if kind == "student_serving":
            entry["serving"] += usd
            entry["spool_serving"] += usd
        else:
            entry["flywheel"] += usd
    return days


def expected_summary(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Per workload: teacher/actual/saved/saved_pct, break-even day and the monthly projection."""
    student_cost = student_per_request(con)
    summary = {}
    for workload, days in expected_daily(con).items():
        teacher = sum(d["teacher"] for d in days.values())
        actual = sum(d["serving"] + d["flywheel"] for d in days.values())
        summary[workload] = {
            "teacher_usd": teacher,
            "actual_usd": actual,
            "saved_usd": teacher - actual,
            "saved_pct": (teacher - actual) / teacher if teacher else None,
            "break_even_day": _break_even(days),
            "projected_monthly_saved_usd": _projection(days, student_cost.get(workload)),
        }
    return summary


def _break_even(days: dict[date, dict[str, float]]) -> date | None:
    serving_saved = invested = 0.0
    for day in sorted(days):
        serving_saved += days[day]["teacher"] - days[day]["serving"]
        invested += days[day]["flywheel"]
        if serving_saved > 0 and serving_saved >= invested:
            return day
    return None


def _projection(days: dict[date, dict[str, float]], student_cost: float | None) -> float | None:
    traffic_days = [d for d, entry in days.items() if entry["requests"]]
    if not traffic_days:
        return None
    last, first = max(traffic_days), min(traffic_days)
    window = [days[d] for d in days if last - timedelta(days=6) <= d <= last]
    requests = sum(e["requests"] for e in window)
    monthly = requests / min(7, (last - first).days + 1) * 30
    spool = sum(e["spool_requests"] for e in window)
    if spool:
        per_request = (
            sum(e["spool_teacher"] for e in window) - sum(e["spool_serving"] for e in window)
        ) / spool
    elif student_cost is not None:
        per_request = sum(e["teacher"] for e in window) / requests - student_cost
    else:
        return None
    return per_request * monthly
