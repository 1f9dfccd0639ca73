"""Per-workload traffic statistics from the warehouse views (what `flywheel stats` prints)."""

from __future__ import annotations

from typing import Any

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
)


def workload_stats(warehouse: Warehouse) -> dict[str, Any]:
    """{"workloads": {id: {...}}, "quarantine": {"total", "reasons", "unassigned"}}."""
    if not warehouse.path.exists():
        return {"workloads": {}, "quarantine": {"total": 0, "reasons": {}, "unassigned": 0}}

    def query(con: Any) -> tuple[list[tuple], list[tuple]]:
        rows = con.execute(f"SELECT {', '.join(STATS_COLUMNS)} FROM v_workload_stats ORDER BY 1").fetchall()
        reasons = con.execute(
            "SELECT workload_id, reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 1, 3 DESC"
        ).fetchall()
        return rows, reasons

    rows, reasons = warehouse.read(query)
    workloads: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = dict(zip(STATS_COLUMNS[1:], row[1:], strict=True))
        for key in ("first_ts", "last_ts"):
            entry[key] = entry[key].isoformat() if entry[key] else None
        entry["cost_usd"] = round(float(entry["cost_usd"]), 6)
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
    return {"workloads": workloads, "quarantine": quarantine}


def _empty_entry() -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(STATS_COLUMNS[1:], 0)
    entry |= {"first_ts": None, "last_ts": None, "cost_usd": 0.0}
    return entry | {"quarantined": 0, "quarantine_reasons": {}}
