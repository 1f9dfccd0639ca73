"""The cache key and the journal that keeps paid answers when a run dies before its flush."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flywheel.records import utcnow
from flywheel.store.db import Warehouse
from flywheel.teacher import cache_key, label_examples
from flywheel.teacher.cache import CachedAnswer, TeacherStore, ledger_row
from flywheel.teacher.client import Completion
from flywheel.testing.oracles import keyword_oracle
from tests.teacher.conftest import PRICES, count, support_examples, support_workload, teacher

ROOT = Path(__file__).resolve().parents[2]


def test_cache_key_covers_model_messages_params_prompt_version_and_sample() -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    key = cache_key(base, "v1")
    assert key == cache_key(dict(reversed(base.items())), "v1")  # key order does not matter
    assert len({
        key,
        cache_key({**base, "model": "m2"}, "v1"),
        cache_key({**base, "messages": [{"role": "user", "content": "hi!"}]}, "v1"),
        cache_key({**base, "temperature": 0.7}, "v1"),
        cache_key(base, "v2"),
        cache_key(base, "v1", sample=1),
    }) == 6  # fmt: skip


def answer(key: str) -> CachedAnswer:
    completion = Completion({"role": "assistant", "content": "billing"}, "stop", "fake-teacher", 10, 2, 5.0)
    return CachedAnswer(key, "fake-teacher", {"messages": []}, completion, 0.012, utcnow())


def test_journaled_answers_survive_a_run_that_never_flushed(warehouse: Warehouse) -> None:
    async def die_before_flush() -> None:
        store = TeacherStore(warehouse, flush_interval_s=3600)
        await store.open()
        for key in ("k1", "k2"):
            paid = answer(key)
            store.record_answer(paid, ledger_row(paid, workload_id="support", run_id="r1", kind="labeling"))
        store._journal.close()  # the process "dies": no flush, the lock goes with the file handle

    asyncio.run(die_before_flush())
    assert count(warehouse, "SELECT count(*) FROM teacher_cache")[0][0] == 0

    async def next_run() -> int:
        store = TeacherStore(warehouse)
        recovered = await store.open()
        await store.close()
        return recovered

    assert asyncio.run(next_run()) == 2
    assert count(warehouse, "SELECT cache_key, cost_usd FROM teacher_cache ORDER BY 1") == [
        ("k1", 0.012),
        ("k2", 0.012),
    ]
    assert count(warehouse, "SELECT count(*), sum(usd) FROM cost_ledger")[0] == (2, 0.024)
    assert not list((warehouse.path.parent / "teacher-journal").glob("*.jsonl"))
    assert asyncio.run(next_run()) == 0  # replaying is done once


def test_killed_run_loses_no_paid_answer(tmp_path: Path) -> None:
    """SIGKILL a labeling process mid-run; the re-run pays only for what was never answered."""
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with teacher(keyword_oracle, app_options={"latency_s": 0.02}, concurrency=4) as (client, app):
        script = textwrap.dedent(
            f"""
            import os, sys
            sys.path.insert(0, {str(ROOT)!r})
            from flywheel.config import TeacherConfig
            from flywheel.store.db import Warehouse
            from flywheel.teacher import label_examples, make_client
            from tests.teacher.conftest import PRICES, support_examples, support_workload
            done = []
            def progress(n):
                done.append(n)
                if len(done) == 25:
                    os._exit(9)  # no flush, no cleanup: like SIGKILL
            config = TeacherConfig(base_url={client.config.base_url!r}, model="fake-teacher", concurrency=4)
            client = make_client(config, {{"OPENAI_API_KEY": "k"}})
            label_examples(support_examples(60), support_workload(), "relabel", client=client,
                           warehouse=Warehouse({str(warehouse.path)!r}), prices=PRICES, progress=progress)
            """
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        died = subprocess.run([sys.executable, "-c", script], env=env, timeout=120, check=False)
        assert died.returncode == 9
        paid_before = app.state.stats["completions"]
        rerun = label_examples(
            support_examples(60),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
    kept = 60 - rerun.calls  # answers the dead process had received, recovered from its journal
    assert rerun.labeled == 60
    # every answer it labeled with was kept; only calls still in flight at the kill (<= concurrency) re-run
    assert 25 <= kept <= paid_before <= kept + 4
    assert count(warehouse, "SELECT count(*) FROM teacher_cache")[0][0] == 60
    assert count(warehouse, "SELECT count(*) FROM cost_ledger")[0][0] == 60


def test_cancelled_run_keeps_what_it_paid_for_and_says_interrupted(warehouse: Warehouse) -> None:
    from flywheel.teacher import alabel_examples

    with teacher(keyword_oracle, app_options={"latency_s": 0.02}, concurrency=4) as (client, app):

        async def run_then_cancel() -> None:
            done: list[int] = []
            kwargs = {"client": client, "warehouse": warehouse, "prices": PRICES, "progress": done.append}
            task = asyncio.ensure_future(
                alabel_examples(support_examples(80), support_workload(), "relabel", **kwargs)
            )
            while len(done) < 10:
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        client.run_sync(run_then_cancel())
        paid = app.state.stats["completions"]
    cached = count(warehouse, "SELECT count(*) FROM teacher_cache")[0][0]
    assert 10 <= cached <= paid <= cached + 4  # only calls cut off in flight are missing
    assert count(warehouse, "SELECT count(*) FROM cost_ledger")[0][0] == cached
    assert count(warehouse, "SELECT stopped_reason, finished_at IS NOT NULL FROM label_runs") == [
        ("interrupted", True)
    ]
