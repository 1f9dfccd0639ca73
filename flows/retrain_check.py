"""Run the loop only when it is worth it: new data, drift, or a quality drop in shadow evaluation.

Ingests and curates first (both idempotent and cheap when nothing changed), then compares the
latest snapshot with the champion's and records why it did or did not trigger.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.flywheel_flow import flywheel_loop
from flows.tasks import curate_task, ingest_task
from flywheel import loop as stages
from flywheel.triggers import retrain_decision


@flow(name="retrain-check")
def retrain_check(
    workload: str,
    config: str = "flywheel.yaml",
    home: str | None = None,
    force: bool = False,
    max_usd: float | None = None,
) -> dict[str, Any]:
    ingest_task(config, home, workload)
    curated = curate_task(config, home, workload)
    loop = stages.Loop.open(config, home)
    decision = retrain_decision(loop.warehouse, loop.workload(workload), curated["snapshot_id"])
    if force:
        decision = decision | {"trigger": True, "reasons": [*decision["reasons"], "forced"]}
    run_id = stages.start_run(loop, workload, "retrain-check")
    stages.finish_run(loop, run_id, "completed", decision)
    get_run_logger().info("%s: trigger=%s because %s", workload, decision["trigger"], decision["reasons"])
    create_markdown_artifact(_explain(decision), description=f"retrain check for {workload}")
    if decision["trigger"]:
        decision["turn"] = flywheel_loop(workload, config, home, max_usd=max_usd)
    return decision


def _explain(decision: dict[str, Any]) -> str:
    verdict = "retrain" if decision["trigger"] else "no retrain"
    lines = [f"# Retrain check: {decision['workload_id']}: **{verdict}**", ""]
    for key in ("reasons", "champion", "snapshot_id", "new_records", "drift", "shadow_drop"):
        lines.append(f"- {key}: {decision.get(key)}")
    return "\n".join(lines) + "\n"
