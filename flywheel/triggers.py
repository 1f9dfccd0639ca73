"""When is another turn of the flywheel worth it? Compare the latest snapshot with the champion's.

Three reasons to retrain, each measured and recorded whether it fires or not:
- volume: at least `schedule.min_new_records` train/val examples the champion never saw;
- drift: Jensen-Shannon divergence between the slice distributions of the two snapshots' training
  data over `schedule.drift_threshold` (base-2 logs, so it lies in [0, 1]);
- quality: the champion's latest shadow score fell more than the gate's champion margin below the
  score it was promoted with;
- live agreement: over the last `schedule.shadow_window_days`, the upper CI bound of the champion's
  agreement with the teacher on shadowed calls (primary metric, >= `min_shadow_pairs` pairs) is
  below the gate's target (`gate.min_agreement`): it is worse than the target even at best;
- complaints: the share of negative feedback (`POST /v1/feedback`) in the window is over
  `schedule.max_complaint_rate` (with at least `min_feedback` feedback).
A workload without a champion always triggers (there is nothing serving yet).

Rollback: a sustained drop (the last `schedule.rollback_days` days of shadow rows of the champion all
have ci_high below `schedule.rollback_floor`, default the gate's target) makes `rollback` due; with
`schedule.auto_rollback: true`, `apply_rollback` hands the workload back to the teacher through
Registry.rollback, whose promotions row (action "rollback") says why.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from flywheel.config import WorkloadConfig
from flywheel.store.db import Warehouse

if TYPE_CHECKING:
    from flywheel.registry import Registry


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
    live = live_signals(warehouse, workload, champion[0] if champion else None)
    if champion is None:
        return (
            decision
            | live
            | {
                "trigger": True,
                "reasons": ["no_champion"],
                "new_records": None,
                "drift": None,
                "rollback": {"due": False, "reason": None},
            }
        )
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
    reasons.extend(live_reasons(live, workload))
    return (
        decision
        | live
        | {
            "rollback": rollback_due(warehouse, workload, model_id),
            "champion": model_id,
            "champion_snapshot_id": champion_snapshot,
            "trigger": bool(reasons),
            "reasons": reasons or ["no_trigger"],
            "new_records": new_records,
            "drift": round(drift, 4),
            "shadow_drop": shadow_drop,
        }
    )


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


def live_signals(warehouse: Warehouse, workload: WorkloadConfig, model_id: str | None) -> dict[str, Any]:
    """The window's live agreement of `model_id` (any student when None) and its feedback."""
    from flywheel.monitor import monitor_summary

    summary = monitor_summary(warehouse, workload, workload.schedule.shadow_window_days, model_id)
    return {"shadow_agreement": summary["shadow_agreement"], "feedback": summary["feedback"]}


def live_reasons(live: dict[str, Any], workload: WorkloadConfig) -> list[str]:
    schedule, reasons = workload.schedule, []
    agreement, feedback = live["shadow_agreement"], live["feedback"]
    high = agreement["ci_high"]
    if agreement["n"] >= schedule.min_shadow_pairs and high is not None and high < agreement["target"]:
        reasons.append(f"shadow_agreement<{agreement['target']}")
    rate = feedback["complaint_rate"]
    if feedback["total"] >= schedule.min_feedback and rate is not None and rate > schedule.max_complaint_rate:
        reasons.append(f"complaints>{schedule.max_complaint_rate}")
    return reasons


def rollback_due(warehouse: Warehouse, workload: WorkloadConfig, model_id: str) -> dict[str, Any]:
    """Is the champion's drop sustained: its last `rollback_days` days of shadow rows (primary metric)
    all have ci_high under the floor, over at least `min_shadow_pairs` pairs?"""
    schedule = workload.schedule
    floor = schedule.rollback_floor if schedule.rollback_floor is not None else workload.gate.min_agreement
    rows = warehouse.read(lambda con: _daily_agreement(con, workload, model_id, schedule.rollback_days))
    below = [r for r in rows if r[2] is not None and r[2] < floor]
    pairs = sum(r[3] for r in rows)
    sustained = len(rows) == schedule.rollback_days and len(below) == len(rows)
    due = sustained and pairs >= schedule.min_shadow_pairs
    reason = None
    if due:
        days = ", ".join(f"{day}: {value:.3f} [<= {high:.3f}]" for day, value, high, _ in rows)
        reason = (
            f"live agreement of {model_id} below the floor {floor:.2f} for {len(rows)} day(s) "
            f"({pairs} shadow pairs; {days})"
        )
    return {"due": due, "floor": floor, "days": [str(r[0]) for r in rows], "reason": reason}


def _daily_agreement(
    con: Any, workload: WorkloadConfig, model_id: str, days: int
) -> list[tuple[Any, float, float, int]]:
    from flywheel.evaluate.runner import primary_metric

    return con.execute(
        "SELECT day, value, ci_high, n FROM shadow_evaluations WHERE workload_id = ? AND model_id = ? "
        "AND metric = ? AND value IS NOT NULL ORDER BY day DESC LIMIT ?",
        [workload.id, model_id, primary_metric(workload), days],
    ).fetchall()


def apply_rollback(registry: Registry, workload: WorkloadConfig, decision: dict[str, Any]) -> dict[str, Any]:
    """Hand the workload back to the teacher when a rollback is due and `auto_rollback` is on."""
    due = decision.get("rollback") or {}
    if not due.get("due"):
        return {"action": None}
    if not workload.schedule.auto_rollback:
        return {"action": "none", "why": "rollback due but schedule.auto_rollback is false"}
    promotion = registry.rollback(workload.id, reason=f"auto_rollback: {due['reason']}", to="teacher")
    return {"action": "rollback", "to": "teacher"} | promotion.as_dict()
