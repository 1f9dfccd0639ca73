"""Prefect tasks: each opens the run's Loop from (config path, home) and calls one library stage.

Tasks pass ids and paths, never data: the warehouse is the hand-off between stages. Retries cover
what can fail transiently (files and the warehouse lock, the teacher endpoint); the stages themselves
are idempotent, so a retry or a re-run never duplicates work or rows.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from flywheel import loop as stages
from flywheel.store.db import WarehouseBusy

RETRY_DELAYS = [2, 10, 30]


def _retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except (WarehouseBusy, OSError, TimeoutError):
        return True
    except Exception:  # deterministic (bad data, bad config): a retry would fail the same way
        return False
    return False


@task(name="ingest", retries=3, retry_delay_seconds=RETRY_DELAYS)
def ingest_task(config: str, home: str | None, workload: str) -> dict[str, Any]:
    return stages.ingest_stage(stages.Loop.open(config, home), workload)


@task(name="curate", retries=2, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_retry_if_transient)
def curate_task(config: str, home: str | None, workload: str, refresh_eval: bool = False) -> dict[str, Any]:
    return stages.curate_stage(stages.Loop.open(config, home), workload, refresh_eval)


@task(name="label", retries=3, retry_delay_seconds=RETRY_DELAYS)
def label_task(
    config: str, home: str | None, workload: str, mode: str = "replay", max_usd: float | None = None
) -> dict[str, Any]:
    return stages.label_stage(stages.Loop.open(config, home), workload, mode, max_usd)


@task(name="train", retries=1, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_retry_if_transient)
def train_task(
    config: str, home: str | None, workload: str, candidates: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    return stages.train_stage(stages.Loop.open(config, home), workload, candidates, force)


@task(
    name="evaluate-and-gate",
    retries=1,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=_retry_if_transient,
)
def evaluate_task(config: str, home: str | None, workload: str) -> dict[str, Any]:
    loop = stages.Loop.open(config, home)
    report = stages.evaluate_stage(loop, workload)
    if report is None:
        return {
            "decision": "skipped",
            "reasons": ["no new candidate to judge"],
            **stages.standing(loop, workload),
        }
    return report.as_dict()


@task(name="costs", retries=2, retry_delay_seconds=RETRY_DELAYS)
def costs_task(config: str, home: str | None, workload: str) -> dict[str, Any]:
    return stages.costs_stage(stages.Loop.open(config, home), workload)


@task(
    name="serve-demo-day", retries=1, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_retry_if_transient
)
def serve_demo_day_task(config: str, home: str | None, seed: int, size: int) -> dict[str, Any]:
    from flywheel.demo.serving import demo_serving_stage

    return demo_serving_stage(stages.Loop.open(config, home), seed, size)
