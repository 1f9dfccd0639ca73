"""Relabel shards without a cluster: the library side of the fan-out (flywheel/teacher/shards.py).

Shards run here one after another, in this process; tests/flows/test_dask_runner.py runs them on Dask.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flywheel import loop as stages
from flywheel.config import load_config
from flywheel.teacher.cache import recover_journals
from flywheel.teacher.shards import finish_shards, label_shard, plan_shards
from flywheel.teacher.stage import LabelRequest
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from tests.flows.test_dask_runner import TICKETS, write_config

UNLIMITED = 1000.0  # the config's teacher.max_usd ($1) would stop these runs part-way


def _count(home: Path, sql: str) -> int:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def curated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DASK_TEACHER_KEY", "teacher-key")
    app = make_fake_openai_app(TICKETS.oracle)
    with serve_in_thread(app) as url:
        config = write_config(tmp_path, url)
        loop = stages.Loop.open(config, tmp_path / "home")
        stages.ingest_stage(loop, "support")
        stages.curate_stage(loop, "support")
        yield loop, str(config), app


def _plan(loop: stages.Loop, config: str, max_usd: float | None):  # type: ignore[no-untyped-def]
    request = LabelRequest("relabel", max_usd=max_usd)
    runner = load_config(config).runner
    return plan_shards(loop.config, config, loop.home, loop.warehouse, "support", request, runner)


def test_rerun_reads_the_cache_and_pays_nothing(curated) -> None:  # type: ignore[no-untyped-def]
    loop, config, app = curated
    plan = _plan(loop, config, UNLIMITED)
    assert len(plan.jobs) > 2 and sum(len(j.examples) for j in plan.jobs) == _count(
        loop.home, "SELECT n_train + n_val FROM dataset_snapshots"
    )
    first = finish_shards(loop.warehouse, plan, [label_shard(job) for job in plan.jobs])
    assert first["stopped_reason"] == "completed" and first["calls"] == first["labeled"] > 0
    paid = app.state.stats["completions"]
    assert paid == first["calls"]
    again = _plan(loop, config, UNLIMITED)
    second = finish_shards(loop.warehouse, again, [label_shard(job) for job in again.jobs])
    assert (second["calls"], second["cached"], second["labeled"]) == (0, first["labeled"], first["labeled"])
    assert app.state.stats["completions"] == paid  # workers found every answer in the warehouse's cache
    assert _count(loop.home, "SELECT count(*) FROM label_runs") == 2


def test_a_dead_flow_loses_no_paid_answer(curated) -> None:  # type: ignore[no-untyped-def]
    loop, config, _ = curated
    plan = _plan(loop, config, UNLIMITED)
    result = label_shard(plan.jobs[0])  # paid for, journaled, never written: the flow died here
    assert result.journals and _count(loop.home, "SELECT count(*) FROM cost_ledger") == 0
    recovered = recover_journals(loop.warehouse, loop.home / "teacher-journal")
    assert recovered == result.report.calls == _count(loop.home, "SELECT count(*) FROM cost_ledger") > 0


def test_a_failed_shard_marks_the_run_and_counts_its_examples_skipped(curated) -> None:  # type: ignore[no-untyped-def]
    loop, config, _ = curated
    plan = _plan(loop, config, UNLIMITED)
    done = label_shard(plan.jobs[0])
    summary = finish_shards(loop.warehouse, plan, [done], RuntimeError("worker lost"))
    assert summary["stopped_reason"] == "error"
    assert summary["skipped"] == sum(len(job.examples) for job in plan.jobs[1:])
    assert summary["labeled"] == len(plan.jobs[0].examples)
    assert _count(loop.home, "SELECT count(*) FROM labels") == summary["labeled"]


def test_only_relabel_fans_out(curated) -> None:  # type: ignore[no-untyped-def]
    loop, config, _ = curated
    runner = load_config(config).runner
    with pytest.raises(ValueError, match="only relabel fans out"):
        request = LabelRequest("synthesize")
        plan_shards(loop.config, config, loop.home, loop.warehouse, "support", request, runner)
