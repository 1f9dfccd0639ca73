"""The flywheel: one turn of the loop for one workload, and one flow per stage for manual runs.

python -m flows.flywheel_flow --workload support-routing --config flywheel.yaml
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson
from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run

from flows.runners import evaluate_fanout, label_fanout
from flows.tasks import costs_task, curate_task, evaluate_task, ingest_task, label_task, train_task
from flywheel import loop as stages
from flywheel.report import markdown_report, summarize_turn

STEPS = ("ingest", "curate", "label", "train", "evaluate", "costs")


@flow(name="flywheel")
def flywheel_loop(
    workload: str,
    config: str = "flywheel.yaml",
    home: str | None = None,
    force: bool = False,
    candidates: list[str] | None = None,
    max_usd: float | None = None,
    label_mode: str = "replay",
    refresh_eval: bool = False,
) -> dict[str, Any]:
    """Ingest -> curate -> label -> train -> evaluate and gate -> costs, for one workload."""
    loop = stages.Loop.open(config, home)
    with stages.workload_lock(loop.home, workload):
        run_id = stages.start_run(loop, workload, "flywheel", str(flow_run.get_id() or ""))
        try:
            result = _turn(loop, workload, config, home, force, candidates, max_usd, label_mode, refresh_eval)
        except BaseException as exc:
            stages.finish_run(loop, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            raise
        stages.finish_run(loop, run_id, "completed", result)
    return result | {"run_id": run_id}


def _turn(loop: stages.Loop, workload: str, config: str, home: str | None, force: bool,
          candidates: list[str] | None, max_usd: float | None, label_mode: str,
          refresh_eval: bool) -> dict[str, Any]:  # fmt: skip
    progress = create_progress_artifact(0.0, description=f"flywheel turn for {workload}")
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    calls = {
        "ingest": lambda: ingest_task(config, home, workload),
        "curate": lambda: curate_task(config, home, workload, refresh_eval),
        "label": lambda: label_step(loop, config, home, workload, label_mode, max_usd),
        "train": lambda: train_task(config, home, workload, candidates, force),
        "evaluate": lambda: evaluate_step(loop, config, home, workload),
        "costs": lambda: costs_task(config, home, workload),
    }
    for index, step in enumerate(STEPS, start=1):
        started = time.monotonic()
        results[step] = calls[step]()
        seconds[step] = round(time.monotonic() - started, 2)
        update_progress_artifact(progress, 100.0 * index / len(STEPS))
        get_run_logger().info("%s: %s done in %.1fs", workload, step, seconds[step])
    _artifacts(workload, results, seconds)
    summary = summarize_turn(workload, results) | {
        "seconds": seconds,
        "label": _label_summary(results["label"]),
    }
    if "predicted_by" in results["evaluate"]:  # the eval-split predictions ran on the runner's workers
        summary["predicted_by"] = results["evaluate"]["predicted_by"]
    return summary


def evaluate_step(loop: stages.Loop, config: str, home: str | None, workload: str) -> dict[str, Any]:
    """Each model's eval-split predictions fan out over the configured task runner; scoring and the
    gate (they write the warehouse) run here."""
    if loop.config.runner.fans_out:
        return evaluate_fanout(loop, config, workload)
    return evaluate_task(config, home, workload)


def _label_summary(label: dict[str, Any]) -> dict[str, Any]:
    """What the label stage spent and where it ran (runner and worker processes when fanned out)."""
    keys = ("mode", "labeled", "calls", "cost_usd", "stopped_reason", "runner", "shards", "workers")
    return {key: label[key] for key in keys if key in label}


def label_step(
    loop: stages.Loop, config: str, home: str | None, workload: str, mode: str, max_usd: float | None
) -> dict[str, Any]:
    """relabel fans out over the configured task runner (flows/runners.py); the rest runs here."""
    if mode == "relabel" and loop.config.runner.fans_out:
        return label_fanout(loop, config, workload, max_usd)
    return label_task(config, home, workload, mode, max_usd)


def _artifacts(workload: str, results: dict[str, Any], seconds: dict[str, float]) -> None:
    key = f"flywheel-{workload}".lower().replace("_", "-").replace(".", "-")
    create_markdown_artifact(markdown_report(workload, results, seconds), key=key, description="Turn report")
    rows = (results.get("evaluate") or {}).get("results") or []
    if rows:
        table = [{k: r.get(k) for k in ("model", "metric", "value", "ci_low", "ci_high")} for r in rows]
        create_table_artifact(table, key=f"{key}-scores", description="Scores with 95% CIs")


@flow(name="ingest")
def ingest_flow(workload: str, config: str = "flywheel.yaml", home: str | None = None) -> dict[str, Any]:
    return ingest_task(config, home, workload)


@flow(name="curate")
def curate_flow(
    workload: str, config: str = "flywheel.yaml", home: str | None = None, refresh_eval: bool = False
) -> dict[str, Any]:
    return curate_task(config, home, workload, refresh_eval)


@flow(name="label")
def label_flow(
    workload: str,
    config: str = "flywheel.yaml",
    home: str | None = None,
    mode: str = "replay",
    max_usd: float | None = None,
) -> dict[str, Any]:
    return label_step(stages.Loop.open(config, home), config, home, workload, mode, max_usd)


@flow(name="train")
def train_flow(
    workload: str,
    config: str = "flywheel.yaml",
    home: str | None = None,
    candidates: list[str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    return train_task(config, home, workload, candidates, force)


@flow(name="evaluate-and-gate")
def evaluate_flow(workload: str, config: str = "flywheel.yaml", home: str | None = None) -> dict[str, Any]:
    return evaluate_step(stages.Loop.open(config, home), config, home, workload)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one flywheel turn for a workload through Prefect.")
    parser.add_argument("--workload", required=True)
    parser.add_argument("--config", default="flywheel.yaml")
    parser.add_argument("--home")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    result = flywheel_loop(args.workload, args.config, args.home, args.force)
    print(orjson.dumps(result, default=str).decode())


if __name__ == "__main__":
    main()
