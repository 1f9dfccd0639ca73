"""Run the loop only when it is worth it: new data, drift, a live-agreement drop, complaints.

Ingests (which scores shadow pairs and joins feedback) and curates first (both idempotent and cheap
when nothing changed), then compares the latest snapshot and the live signals with the champion's
and records why it did or did not trigger. A sustained agreement drop rolls the workload back to the
teacher when `schedule.auto_rollback` is on (flywheel/triggers.py decides; this flow reports it).
"""

from __future__ import annotations

import re
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.flywheel_flow import flywheel_loop
from flows.tasks import curate_task, ingest_task
from flywheel import loop as stages
from flywheel.curate import NothingKept
from flywheel.datasets import latest_snapshot_id
from flywheel.registry import Registry
from flywheel.triggers import apply_rollback, retrain_decision

EXPLAINED = ("reasons", "champion", "snapshot_id", "new_records", "drift", "shadow_drop")


@flow(name="retrain-check")
def retrain_check(
    workload: str,
    config: str = "flywheel.yaml",
    home: str | None = None,
    force: bool = False,
    max_usd: float | None = None,
    retrain: bool = True,
) -> dict[str, Any]:
    ingest_task(config, home, workload)
    loop = stages.Loop.open(config, home)
    try:
        snapshot_id = curate_task(config, home, workload)["snapshot_id"]
    except NothingKept as exc:  # nothing new to learn from; the live signals still count
        get_run_logger().warning("%s", exc)
        snapshot_id = latest_snapshot_id(loop.warehouse, workload)
    decision = retrain_decision(loop.warehouse, loop.workload(workload), snapshot_id)
    if force:
        decision = decision | {"trigger": True, "reasons": [*decision["reasons"], "forced"]}
    decision["rollback_action"] = apply_rollback(
        Registry(loop.warehouse, loop.home), loop.workload(workload), decision
    )
    run_id = stages.start_run(loop, workload, "retrain-check")
    stages.finish_run(loop, run_id, "completed", decision)
    get_run_logger().info("%s: trigger=%s because %s", workload, decision["trigger"], decision["reasons"])
    create_markdown_artifact(_explain(decision), description=f"retrain check for {workload}")
    if decision["rollback_action"].get("action") == "rollback":
        create_markdown_artifact(
            _rollback(decision), key=_key(f"rollback-{workload}"), description=f"rollback of {workload}"
        )
    if decision["trigger"] and retrain:
        decision["turn"] = flywheel_loop(workload, config, home, max_usd=max_usd)
    return decision


def _explain(decision: dict[str, Any]) -> str:
    verdict = "retrain" if decision["trigger"] else "no retrain"
    lines = [f"# Retrain check: {decision['workload_id']}: **{verdict}**", ""]
    lines += [f"- {key}: {decision.get(key)}" for key in EXPLAINED]
    agreement, feedback = decision.get("shadow_agreement") or {}, decision.get("feedback") or {}
    lines.append(
        f"- live agreement ({agreement.get('metric')}): {agreement.get('value')} "
        f"[{agreement.get('ci_low')}, {agreement.get('ci_high')}] over {agreement.get('n')} pairs, "
        f"target {agreement.get('target')}"
    )
    lines.append(f"- feedback: {feedback.get('negative')} negative of {feedback.get('total')}")
    lines.append(f"- rollback: {decision.get('rollback_action')}")
    return "\n".join(lines) + "\n"


def _key(text: str) -> str:
    """Prefect artifact keys are lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower())


def _rollback(decision: dict[str, Any]) -> str:
    action = decision["rollback_action"]
    return (
        f"# Rolled back: {decision['workload_id']}\n\n"
        f"- from: {action.get('previous_model_id')}\n- to: teacher (every call proxied)\n"
        f"- why: {action.get('reason')}\n"
    )
