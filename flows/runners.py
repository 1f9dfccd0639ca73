"""The `runner:` section (flywheel/config/runner.py) as a Prefect task runner, and the fan-outs on it.

`kind: local` keeps everything in the flow's process (Prefect's default thread pool). `kind: dask`
builds a prefect_dask.DaskTaskRunner: a LocalCluster of `workers` processes for the stage, or the
existing scheduler at `address`. Only work that writes nothing to the warehouse is submitted (DuckDB has
one writer process): the workers return rows and this process writes them.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from flywheel.config import RunnerConfig
from flywheel.loop import Loop
from flywheel.teacher.shards import ShardJob, ShardResult, finish_shards, label_shard, plan_shards
from flywheel.teacher.stage import LabelRequest


def task_runner(runner: RunnerConfig) -> Any:
    """The Prefect task runner the config names (import of prefect_dask only when it is used)."""
    if runner.kind == "local":
        return ThreadPoolTaskRunner()
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # the optional extra is missing
        raise RuntimeError("runner.kind: dask needs prefect-dask: pip install 'flywheel[dask]'") from exc
    if runner.address:
        return DaskTaskRunner(address=runner.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": runner.workers,
            "threads_per_worker": runner.threads_per_worker,
            "processes": True,
            "dashboard_address": None,  # no web UI port to clash with on a shared machine
        },
    )


@task(name="label-shard", retries=0)
def label_shard_task(job: ShardJob) -> ShardResult:
    # No retries here: a shard that failed half-way has paid answers in its journal; the next run
    # replays them and asks only for the rest, while a retry now would race the flow's write.
    return label_shard(job)


@flow(name="label-fanout")
def label_fanout_flow(jobs: list[ShardJob]) -> list[ShardResult | BaseException]:
    """Submit every shard to the flow's task runner; each one's result or its error."""
    futures = [label_shard_task.submit(job) for job in jobs]
    outcomes: list[ShardResult | BaseException] = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except Exception as exc:  # keep the other shards' paid answers: the caller writes them
            outcomes.append(exc)
    return outcomes


def label_fanout(loop: Loop, config_path: str, workload_id: str, max_usd: float | None) -> dict[str, Any]:
    """Relabel the workload's latest snapshot on the configured runner; the warehouse writes stay here."""
    runner = loop.config.runner
    request = LabelRequest("relabel", None, ("train", "val"), max_usd)
    plan = plan_shards(loop.config, config_path, loop.home, loop.warehouse, workload_id, request, runner)
    if not plan.jobs:
        return finish_shards(loop.warehouse, plan, [])
    fanout = label_fanout_flow.with_options(task_runner=task_runner(runner))
    outcomes = fanout(plan.jobs)
    results = [o for o in outcomes if isinstance(o, ShardResult)]
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    summary = finish_shards(loop.warehouse, plan, results, errors[0] if errors else None)
    if errors:
        raise errors[0]
    return summary | {"runner": runner.kind}
