"""How a served workload is doing over a recent window: traffic, fallbacks, live agreement, feedback.

Read-only over what the warehouse holds: every served call (served_calls, read from the serve spool
by `flywheel costs`/`monitor`: each repeated call counted), and what ingest stored (shadow answers,
feedback). The live
agreement is the workload's primary task metric of the student's answers against the teacher's on
the window's shadow pairs, with a bootstrap CI (flywheel/evaluate/served.py), next to the gate's
target (gate.min_agreement). `flywheel monitor` prints it; the retrain triggers use the same numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from flywheel.config import WorkloadConfig
from flywheel.evaluate.runner import primary_metric
from flywheel.evaluate.served import load_pairs, window_estimate, window_start
from flywheel.store.db import Warehouse

DEFAULT_WINDOW_DAYS = 7.0
TRAFFIC_SQL = """
SELECT coalesce(metadata->>'served_by', 'teacher') AS served_by,
       CASE WHEN metadata->>'served_by' = 'teacher'
            THEN coalesce(metadata->>'fallback_reason', 'unspecified') END AS reason,
       count(*)
FROM served_calls
WHERE workload_id = ? AND coalesce(ts, synced_at) >= ?
GROUP BY ALL
"""
FEEDBACK_SQL = """
SELECT count(*) FILTER (WHERE score > 0), count(*) FILTER (WHERE score < 0),
       count(*) FILTER (WHERE correction IS NOT NULL), count(*)
FROM feedback WHERE workload_id = ? AND ts >= ?
"""


def monitor_summary(
    warehouse: Warehouse,
    workload: WorkloadConfig,
    days: float = DEFAULT_WINDOW_DAYS,
    model_id: str | None = None,
) -> dict[str, Any]:
    """The window's figures (see `flywheel monitor --json`); agreement of `model_id` when given."""
    since = window_start(days)
    empty = not warehouse.exists()
    traffic = [] if empty else warehouse.read(lambda con: _traffic(con, workload.id, since))
    feedback = (0, 0, 0, 0) if empty else warehouse.read(lambda con: _feedback(con, workload.id, since))
    champion = None if empty else warehouse.read(lambda con: _champion(con, workload.id))
    pairs = [] if empty else load_pairs(warehouse, workload.id, since)
    estimate = window_estimate(pairs, workload, model_id)
    served = sum(n for _, _, n in traffic)
    student = sum(n for by, _, n in traffic if by == "student")
    positive, negative, corrections, total = feedback
    return {
        "workload_id": workload.id,
        "since": since.isoformat() + "Z",
        "champion": champion,
        "served": served,
        "student_share": round(student / served, 4) if served else None,
        "fallbacks": {reason: n for _, reason, n in sorted(traffic, key=str) if reason is not None},
        "shadow_pairs": len(pairs),
        "shadow_agreement": {
            "metric": primary_metric(workload),
            "value": _round(estimate.value) if estimate else None,
            "ci_low": _round(estimate.ci_low) if estimate else None,
            "ci_high": _round(estimate.ci_high) if estimate else None,
            "n": estimate.n if estimate else 0,
            "target": workload.gate.min_agreement,
        },
        "feedback": {
            "positive": positive,
            "negative": negative,
            "corrections": corrections,
            "total": total,
            "complaint_rate": round(negative / total, 4) if total else None,
        },
    }


def _traffic(con: duckdb.DuckDBPyConnection, workload_id: str, since: datetime) -> list[tuple[Any, ...]]:
    return con.execute(TRAFFIC_SQL, [workload_id, since]).fetchall()


def _feedback(con: duckdb.DuckDBPyConnection, workload_id: str, since: datetime) -> tuple[int, ...]:
    try:
        row = con.execute(FEEDBACK_SQL, [workload_id, since]).fetchone()
    except duckdb.CatalogException:  # a warehouse from before feedback existed
        return (0, 0, 0, 0)
    return tuple(int(x or 0) for x in row)


def _champion(con: duckdb.DuckDBPyConnection, workload_id: str) -> str | None:
    row = con.execute(
        "SELECT model_id FROM models WHERE workload_id = ? AND stage = 'champion' "
        "ORDER BY created_at DESC LIMIT 1",
        [workload_id],
    ).fetchone()
    return row[0] if row else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
