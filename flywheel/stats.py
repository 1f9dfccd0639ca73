"""Per-workload traffic statistics from the warehouse views (what `flywheel stats` prints).

Tokens and money come from the teacher cost model (flywheel/costs/teacher_cost.py), the same one
`flywheel costs` and `flywheel evaluate` use: cost_usd is what answering the traffic cost, teacher_usd
what the teacher charged (or would have) for it, unpriced the requests with no price at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flywheel.costs.teacher_cost import (
    refresh_teacher_costs,
    token_methods,
    unpriced_models,
    unpriced_warning,
)
from flywheel.pricing import PriceCatalog
from flywheel.store.db import Warehouse

STATS_COLUMNS = (
    "workload_id",
    "interactions",
    "ok",
    "errors",
    "clients",
    "first_ts",
    "last_ts",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "unpriced",
    "teacher_usd",
    "teacher_usd_per_request",
    "counted_tokens",
)
MONEY = ("cost_usd", "teacher_usd", "teacher_usd_per_request")


def workload_stats(
    warehouse: Warehouse,
    prices: PriceCatalog | None = None,
    teacher_models: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """{"workloads": {id: {...}}, "quarantine": {...}, "warnings": [...]}.

    With `prices`, the cost model is refreshed first (tokens counted for calls without usage, prices
    re-read from the catalog); without, the figures are those of the last refresh.
    """
    if not warehouse.exists():
        return {"workloads": {}, "quarantine": {"total": 0, "reasons": {}, "unassigned": 0}, "warnings": []}
    if prices is not None:
        refresh_teacher_costs(warehouse, prices, teacher_models)

    def query(con: Any) -> tuple[list[tuple], list[tuple], dict[str, dict[str, int]], list[dict[str, Any]]]:
        rows = con.execute(f"SELECT {', '.join(STATS_COLUMNS)} FROM v_workload_stats ORDER BY 1").fetchall()
        reasons = con.execute(
            "SELECT workload_id, reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 1, 3 DESC"
        ).fetchall()
        return rows, reasons, token_methods(con), unpriced_models(con)

    rows, reasons, methods, unpriced = warehouse.read(query)
    workloads: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = dict(zip(STATS_COLUMNS[1:], row[1:], strict=True))
        for key in ("first_ts", "last_ts"):
            entry[key] = entry[key].isoformat() if entry[key] else None
        for key in MONEY:
            entry[key] = round(float(entry[key] or 0.0), 9 if key == "teacher_usd_per_request" else 6)
        entry["token_methods"] = methods.get(row[0], {})
        entry["unpriced_models"] = [u for u in unpriced if u["workload_id"] == row[0]]
        workloads[row[0]] = entry | {"quarantined": 0, "quarantine_reasons": {}}
    unassigned = 0
    totals: dict[str, int] = {}
    for workload_id, reason, count in reasons:
        totals[reason] = totals.get(reason, 0) + count
        if workload_id is None:
            unassigned += count
            continue
        entry = workloads.setdefault(workload_id, _empty_entry())
        entry["quarantined"] += count
        entry["quarantine_reasons"][reason] = count
    quarantine = {"total": sum(totals.values()), "reasons": totals, "unassigned": unassigned}
    warnings = [unpriced_warning(u) for u in unpriced]
    return {"workloads": workloads, "quarantine": quarantine, "warnings": warnings}


def _empty_entry() -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(STATS_COLUMNS[1:], 0)
    entry |= {"first_ts": None, "last_ts": None} | dict.fromkeys(MONEY, 0.0)
    return entry | {"token_methods": {}, "unpriced_models": [], "quarantined": 0, "quarantine_reasons": {}}
