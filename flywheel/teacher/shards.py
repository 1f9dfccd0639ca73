"""The relabel stage fanned out: the flow plans shards, worker processes label them, the flow writes.

DuckDB allows one writer process, so a worker never writes the warehouse. It reads the teacher cache
read-only, calls the teacher under the run's shared budget and rate limits (flywheel/teacher/shared.py),
journals every paid answer to a file the moment it arrives (TeacherStore's journal: if anything dies
before the flow writes, the next teacher run replays it, so nothing paid for is lost) and returns its
rows. The flow writes every shard's rows and the run's one label_runs row in one transaction.

Workers are handed paths and examples, not the flow's objects: `label_shard` is a plain function a Dask
worker (or any process) can run from (config path, home).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.config import ConfigError, FlywheelConfig, RunnerConfig, load_config
from flywheel.pricing import PriceCatalog
from flywheel.records import Example, utcnow
from flywheel.store.db import Warehouse
from flywheel.store.factory import open_warehouse
from flywheel.teacher.cache import TeacherStore, write_batches
from flywheel.teacher.runs import LabelReport, new_run_id, upsert_run
from flywheel.teacher.shared import SharedBudget, SharedRateLimits
from flywheel.teacher.stage import LabelRequest, relabel_order

BUDGET_FILE = "budget.json"
LIMITS_DIR = "limits"


@dataclass(frozen=True)
class ShardJob:
    """One worker's share of a relabel run: which examples, and where the shared pot and limits live."""

    config_path: str
    home: str
    workload_id: str
    snapshot_id: str
    run_id: str
    index: int
    examples: tuple[Example, ...]
    shared_dir: str
    concurrency: int  # the teacher's concurrency split across the workers running at once


@dataclass
class ShardResult:
    index: int
    report: LabelReport
    rows: dict[str, list[dict[str, Any]]]
    journals: list[str]
    worker: str = ""  # host:pid of the process that labeled it


@dataclass
class ShardPlan:
    jobs: list[ShardJob]
    report: LabelReport
    shared_dir: Path
    snapshot_id: str
    teacher_model: str
    expected_gain: Any


class ShardStore(TeacherStore):
    """A TeacherStore that reads the warehouse's cache but writes nothing to it: rows are kept for the
    flow, paid answers are journaled (and the journal kept) so the flow or the next run writes them."""

    async def open(self) -> int:
        return 0  # no migrations, no journal recovery: both write the warehouse

    async def run(self, fn: Any) -> Any:
        raise RuntimeError("a labeling shard does not write the warehouse; the flow writes its rows")

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def handoff(self) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """(rows per table, journal paths); the journals are closed, which unlocks them for recovery."""
        journals = [*self._retired, *([self._journal] if self._journal is not None else [])]
        for journal in journals:
            journal.close()
        self._journal, self._retired = None, []
        rows = {table: rows for table, rows in self._pending.items() if rows}
        self._pending = {table: [] for table in self._pending}
        return rows, [journal.name for journal in journals]


def plan_shards(
    config: FlywheelConfig,
    config_path: str,
    home: Path,
    warehouse: Warehouse,
    workload_id: str,
    request: LabelRequest,
    runner: RunnerConfig,
) -> ShardPlan:
    """Cut the relabel run into shards in priority order; create its shared budget and limits; record
    the run as started (an interrupted run still shows in label_runs)."""
    if request.mode != "relabel":
        raise ValueError(
            f"only relabel fans out (replay is free; synthesize dedups across slices): {request.mode}"
        )
    teacher = config.teacher_for(workload_id)
    if not teacher.base_url:
        raise ConfigError("teacher.base_url is not set: relabel needs a live teacher")
    if PriceCatalog.load(config.prices).price(teacher.model) is None:
        raise ConfigError(
            f"no price for teacher model {teacher.model!r}: add it under `prices:` in flywheel.yaml"
        )
    snapshot_id, ordered, gain = relabel_order(config, warehouse, workload_id, request)
    report = LabelReport(new_run_id(workload_id, "relabel"), workload_id, "relabel")
    shared = Path(tempfile.mkdtemp(prefix=f"{report.run_id}-", dir=_shared_root(home)))
    SharedBudget.create(
        shared / BUDGET_FILE, request.max_usd if request.max_usd is not None else teacher.max_usd
    )
    jobs = [
        ShardJob(
            config_path=str(Path(config_path).resolve()),
            home=str(home),
            workload_id=workload_id,
            snapshot_id=snapshot_id,
            run_id=report.run_id,
            index=index,
            examples=tuple(ordered[start : start + runner.shard_size]),
            shared_dir=str(shared),
            concurrency=max(1, teacher.concurrency // runner.concurrent_tasks),
        )
        for index, start in enumerate(range(0, len(ordered), runner.shard_size))
    ]
    warehouse.write(lambda con: upsert_run(con, report))
    return ShardPlan(jobs, report, shared, snapshot_id, teacher.model, gain)


def _shared_root(home: Path) -> Path:
    root = home / "shared-limits"
    root.mkdir(parents=True, exist_ok=True)
    return root


def label_shard(job: ShardJob) -> ShardResult:
    """Relabel one shard in this process under the run's shared budget and limits (a worker's task)."""
    from flywheel.teacher.client import make_client

    config = load_config(job.config_path)
    workload = config.workload(job.workload_id)
    teacher = config.teacher_for(job.workload_id).model_copy(update={"concurrency": job.concurrency})
    warehouse = open_warehouse(config.warehouse, config.home_dir(job.home))
    shared = Path(job.shared_dir)
    limits = SharedRateLimits(shared / LIMITS_DIR, teacher.requests_per_minute, teacher.tokens_per_minute)
    client = make_client(teacher, limits=limits)
    report = LabelReport(job.run_id, job.workload_id, "relabel")
    store = ShardStore(warehouse)
    try:
        client.run_sync(_relabel(client, job, workload, warehouse, config, report, store))
    except BaseException:
        store.handoff()  # close (unlock) its journals: the next teacher run replays what was paid
        raise
    finally:
        client.close()
    rows, journals = store.handoff()
    return ShardResult(job.index, report, rows, journals, f"{socket.gethostname()}:{os.getpid()}")


async def _relabel(
    client: Any, job: ShardJob, workload: Any, warehouse: Warehouse, config: FlywheelConfig,
    report: LabelReport, store: ShardStore,
) -> None:  # fmt: skip
    from flywheel.teacher.relabel import open_run, relabel_examples

    budget = SharedBudget(Path(job.shared_dir) / BUDGET_FILE)
    prices = PriceCatalog.load(config.prices)
    opened = open_run(
        client, warehouse, prices, report, snapshot_id=job.snapshot_id, store=store, budget=budget
    )
    async with opened as run:
        await relabel_examples(run, list(job.examples), workload, None)


def finish_shards(
    warehouse: Warehouse, plan: ShardPlan, results: Sequence[ShardResult], error: BaseException | None = None
) -> dict[str, Any]:
    """Write the finished shards' rows and the run's label_runs row in one transaction (the flow's job),
    then drop their journals and the shared state. A failed shard's journal stays for the next run."""
    report = plan.report
    rows: dict[str, list[dict[str, Any]]] = {}
    for result in sorted(results, key=lambda r: r.index):
        report.merge(result.report)
        for table, table_rows in result.rows.items():
            rows.setdefault(table, []).extend(table_rows)
    finished = {result.index for result in results}  # a failed shard's examples were not labeled
    report.skipped += sum(len(job.examples) for job in plan.jobs if job.index not in finished)
    if error is not None:
        report.stopped_reason = "error"
    report.finished_at = utcnow()

    def write(con: Any) -> None:
        if rows:
            write_batches(con, rows)
        upsert_run(con, report)

    warehouse.write(write)
    for result in results:
        for journal in result.journals:
            Path(journal).unlink(missing_ok=True)
    shutil.rmtree(plan.shared_dir, ignore_errors=True)
    return report.as_dict() | {
        "snapshot_id": plan.snapshot_id,
        "teacher_model": plan.teacher_model,
        "expected_gain": plan.expected_gain,
        "shards": len(plan.jobs),
        "workers": sorted({result.worker for result in results}),
    }
