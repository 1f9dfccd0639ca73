"""Read the savings ledger views (v_savings_summary, v_savings_daily) into JSON-ready dicts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import duckdb

from flywheel.costs.teacher_cost import token_methods, unpriced_models, unpriced_warning
from flywheel.store.db import Warehouse

# The keys `flywheel costs --json` promises per workload; the rest of the summary row follows them.
SUMMARY_KEYS = ("teacher_usd", "actual_usd", "saved_usd", "saved_pct", "projected_monthly_saved_usd")
TOTALS_SQL = """
SELECT coalesce(sum(requests), 0) AS requests,
       coalesce(sum(teacher_usd), 0) AS teacher_usd, coalesce(sum(actual_usd), 0) AS actual_usd,
       coalesce(sum(saved_usd), 0) AS saved_usd,
       sum(saved_usd) / nullif(sum(teacher_usd), 0) AS saved_pct,
       sum(projected_monthly_saved_usd) AS projected_monthly_saved_usd
FROM v_savings_summary {where}
"""
DIGITS = 6
PER_REQUEST_DIGITS = 9  # a request can cost well under a micro-dollar


def savings_report(warehouse: Warehouse, workload_id: str | None = None) -> dict[str, Any]:
    """{"workloads": {id: summary}, "totals": {...}}, optionally for one workload."""
    where, params = ("WHERE workload_id = ?", [workload_id]) if workload_id else ("", [])

    def query(con: duckdb.DuckDBPyConnection) -> tuple[list[dict[str, Any]], ...]:
        summary = _dicts(con, f"SELECT * FROM v_savings_summary {where} ORDER BY workload_id", params)
        totals = _dicts(con, TOTALS_SQL.format(where=where), params)
        return summary, totals, token_methods(con), unpriced_models(con, workload_id)

    summary, totals, methods, unpriced = warehouse.read(query)
    workloads = {}
    for row in summary:
        entry = {key: row.pop(key) for key in SUMMARY_KEYS}
        workload = row.pop("workload_id")
        row["teacher_usd_per_request"] = entry["teacher_usd"] / row["requests"] if row["requests"] else None
        workloads[workload] = jsonable(entry | row) | {
            "token_methods": methods.get(workload, {}),
            "unpriced_models": [u for u in unpriced if u["workload_id"] == workload],
        }
    return {
        "workloads": workloads,
        "totals": jsonable(totals[0]),
        "warnings": [unpriced_warning(u) for u in unpriced],
    }


def savings_daily(warehouse: Warehouse, workload_id: str | None = None) -> list[dict[str, Any]]:
    """v_savings_daily rows (one per workload and day, with running totals), oldest first."""
    where, params = ("WHERE workload_id = ?", [workload_id]) if workload_id else ("", [])
    sql = f"SELECT * FROM v_savings_daily {where} ORDER BY workload_id, day"
    return [jsonable(row) for row in warehouse.read(lambda con: _dicts(con, sql, params))]


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Dates as ISO strings, floats rounded to micro-dollars (sums of float cents carry noise)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, float):
            value = round(value, PER_REQUEST_DIGITS if key.endswith("_per_request") else DIGITS)
        out[key] = value
    return out
