"""When is another turn of the flywheel worth it? Compare the latest snapshot with the champion's.

Three reasons to retrain, each measured and recorded whether it fires or not:
- volume: at least `schedule.min_new_records` train/val examples the champion never saw;
- drift: Jensen-Shannon divergence between the slice distributions of the two snapshots' training
  data over `schedule.drift_threshold` (base-2 logs, so it lies in [0, 1]);
- quality: the champion's latest shadow score fell more than the gate's champion margin below the
  score it was promoted with.
A workload without a champion always triggers (there is nothing serving yet).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.store.db import Warehouse


def js_divergence(p: Counter[str], q: Counter[str]) -> float:
    """Jensen-Shannon divergence (base 2) between two count distributions; 0 when either is empty."""
    total_p, total_q = sum(p.values()), sum(q.values())
    if not total_p or not total_q:
        return 0.0
    divergence = 0.0
    for key in set(p) | set(q):
        a, b = p[key] / total_p, q[key] / total_q
        m = (a + b) / 2
        divergence += (a * math.log2(a / m) if a else 0.0) + (b * math.log2(b / m) if b else 0.0)
    return max(0.0, divergence / 2)


def retrain_decision(
    warehouse: Warehouse, workload: WorkloadConfig, snapshot_id: str | None
) -> dict[str, Any]:
    """{"trigger", "reasons", "new_records", "drift", "shadow_drop", ...} for the given latest snapshot."""
    champion = warehouse.read(lambda con: _champion(con, workload.id))
    decision: dict[str, Any] = {"workload_id": workload.id, "snapshot_id": snapshot_id, "champion": None}
    if champion is None:
        return decision | {"trigger": True, "reasons": ["no_champion"], "new_records": None, "drift": None}
    model_id, champion_snapshot = champion
    new_records, drift = warehouse.read(lambda con: _compare(con, snapshot_id, champion_snapshot))
    shadow_drop = warehouse.read(lambda con: _shadow_drop(con, workload.id, model_id))
    reasons = []
    if new_records >= workload.schedule.min_new_records:
        reasons.append(f"new_records>={workload.schedule.min_new_records}")
    if drift > workload.schedule.drift_threshold:
        reasons.append(f"drift>{workload.schedule.drift_threshold}")
    if shadow_drop is not None and shadow_drop > workload.gate.champion_margin:
        reasons.append(f"shadow_drop>{workload.gate.champion_margin}")
    return decision | {
        "champion": model_id,
        "champion_snapshot_id": champion_snapshot,
        "trigger": bool(reasons),
        "reasons": reasons or ["no_trigger"],
        "new_records": new_records,
        "drift": round(drift, 4),
        "shadow_drop": shadow_drop,
    }


def _champion(con: Any, workload_id: str) -> tuple[str, str | None] | None:
    row = con.execute(
        "SELECT model_id, snapshot_id FROM models WHERE workload_id = ? AND stage = 'champion' "
        "ORDER BY created_at DESC LIMIT 1",
        [workload_id],
    ).fetchone()
    return (row[0], row[1]) if row else None


def _compare(con: Any, latest: str | None, champion_snapshot: str | None) -> tuple[int, float]:
    if latest is None or champion_snapshot is None or latest == champion_snapshot:
        return 0, 0.0
    new = con.execute(
        "SELECT count(*) FROM snapshot_examples n WHERE n.snapshot_id = ? AND n.split <> 'eval' "
        "AND n.example_id NOT IN (SELECT example_id FROM snapshot_examples WHERE snapshot_id = ?)",
        [latest, champion_snapshot],
    ).fetchone()[0]
    return int(new), js_divergence(_slices(con, latest), _slices(con, champion_snapshot))


def _slices(con: Any, snapshot_id: str) -> Counter[str]:
    rows = con.execute(
        "SELECT coalesce(slice, '-'), count(*) FROM snapshot_examples "
        "WHERE snapshot_id = ? AND split <> 'eval' GROUP BY 1",
        [snapshot_id],
    ).fetchall()
    return Counter(dict(rows))


def _shadow_drop(con: Any, workload_id: str, model_id: str) -> float | None:
    """Promotion-time score minus the latest shadow score of the same metric (None: no shadow data)."""
    row = con.execute(
        "SELECT s.value, e.value FROM shadow_evaluations s JOIN evaluations e "
        "ON e.model_id = s.model_id AND e.metric = s.metric AND e.slice IS NULL "
        "WHERE s.workload_id = ? AND s.model_id = ? AND s.value IS NOT NULL "
        'ORDER BY s.day DESC, e."at" DESC LIMIT 1',
        [workload_id, model_id],
    ).fetchone()
    return None if row is None or row[1] is None else round(float(row[1]) - float(row[0]), 4)
