"""The `runner:` section (flywheel/config/runner.py) as a Prefect task runner, and the fan-outs on it.

`kind: local` keeps everything in the flow's process (Prefect's default thread pool). `kind: dask`
builds a prefect_dask.DaskTaskRunner: a LocalCluster of `workers` processes for the stage, or the
existing scheduler at `address`; `kind: ray` a prefect_ray.RayTaskRunner: a local Ray with `workers`
CPUs, or the cluster at `address`. Only work that writes nothing to the warehouse is submitted (DuckDB has
one writer process): the workers return rows and this process writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

from flywheel import loop as stages
from flywheel.config import RunnerConfig
from flywheel.evaluate.remote import PredictJob, PredictOutcome, predict_job
from flywheel.loop import Loop
from flywheel.records import Example
from flywheel.teacher.shards import ShardJob, ShardResult, finish_shards, label_shard, plan_shards
from flywheel.teacher.stage import LabelRequest


def task_runner(runner: RunnerConfig) -> Any:
    """The Prefect task runner the config names (import of prefect_dask only when it is used)."""
    if runner.kind == "local":
        return ThreadPoolTaskRunner()
    if runner.kind == "ray":
        return _ray_runner(runner)
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
            "dashboard_address": ":0",  # a free port: two clusters on one machine must not clash
        },
    )


def _ray_runner(runner: RunnerConfig) -> Any:
    try:
        from prefect_ray import RayTaskRunner
    except ImportError as exc:  # the optional extra is missing
        raise RuntimeError("runner.kind: ray needs prefect-ray: pip install 'flywheel[ray]'") from exc
    if runner.address:
        return RayTaskRunner(address=runner.address)
    # one CPU per task (Ray's default), so `workers` tasks run at once, as with Dask's processes
    return RayTaskRunner(init_kwargs={"num_cpus": runner.workers, "include_dashboard": False})


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


@task(name="predict-eval-split", retries=1, retry_delay_seconds=[5])
def predict_task(job: PredictJob) -> PredictOutcome:
    return predict_job(job)  # reads model files only: a retry is safe


@flow(name="evaluate-fanout")
def predict_fanout_flow(jobs: list[PredictJob]) -> list[PredictOutcome]:
    """Every model answers the eval split in its own task on the flow's task runner."""
    return [future.result() for future in [predict_task.submit(job) for job in jobs]]


def evaluate_fanout(loop: Loop, config_path: str, workload_id: str) -> dict[str, Any]:
    """The evaluate-and-gate stage with each model's predictions made on the configured runner; the
    scoring, gate and registry writes run here (evaluate_task's result, plus where each model ran)."""
    config = str(Path(config_path).resolve())
    workers: dict[str, str] = {}

    def remote(dirs: Mapping[str, Path], examples: list[Example], workload: str) -> dict[str, PredictOutcome]:
        jobs = [PredictJob(config, workload, m, str(d), tuple(examples)) for m, d in dirs.items()]
        fanout = predict_fanout_flow.with_options(task_runner=task_runner(loop.config.runner))
        outcomes = {outcome.model_id: outcome for outcome in fanout(jobs)}
        workers.update({m: o.worker for m, o in outcomes.items()})
        return outcomes

    report = stages.evaluate_stage(loop, workload_id, remote=remote)
    if report is None:
        return {
            "decision": "skipped",
            "reasons": ["no new candidate to judge"],
            **stages.standing(loop, workload_id),
        }
    return report.as_dict() | {"runner": loop.config.runner.kind, "predicted_by": workers}
