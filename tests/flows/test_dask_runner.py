"""The loop through Prefect with `runner: {kind: dask | ray}` (issue 22 item 3): relabel fans out over a
real local cluster of two worker processes (a Dask LocalCluster, a local Ray) against a loopback fake
teacher; the two workers together stop at the run's budget (one shared pot, not one per process); the
flow alone writes the warehouse; then the same flow trains, each model answers the eval split in a
worker, and the flow scores and gates. The ray case needs the [ray] extra (not in dev: it is heavy)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
import yaml

from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from tests.conftest import write_jsonl
from tests.flows.tickets import Tickets

pytestmark = pytest.mark.slow
KINDS = {
    "billing": "I see a charge on my card that I do not recognise",
    "shipping": "where is my parcel, the delivery is late",
}
WORDS = [f"{a}{b}" for a in ("mar", "ven", "tol", "quis", "bran") for b in ("ak", "el", "im", "os")]
MAX_USD = 1.0
PRICE = {"input": 1000.0, "output": 1000.0}  # $ per 1M tokens: ~$0.05-0.1 a call, ~15 calls in $1

TICKETS = Tickets(KINDS, WORDS, 5)


def write_config(tmp_path: Path, teacher_url: str, kind: str = "dask") -> Path:
    logs = write_jsonl(
        tmp_path / "calls.jsonl", [TICKETS.logged_call(kind, i) for i in range(50) for kind in KINDS]
    )
    student = {
        "name": "minilm", "kind": "encoder-classifier", "epochs": 1, "learning_rate": 1e-4,
        "max_seq_length": 32, "options": {"learning_curve": False},
    }  # fmt: skip
    curation = {"expectations": False, "export": [], "max_client_share": None, "max_slice_share": None}
    workload = {
        "id": "support", "task": "classification", "labels": sorted(KINDS), "curation": curation,
        "sources": [{"path": str(logs), "format": "openai"}], "students": [student],
    }  # fmt: skip
    config = {
        "home": str(tmp_path / "home"),
        "teacher": {
            "base_url": teacher_url, "model": "teacher-large", "api_key_env": "DASK_TEACHER_KEY",
            "max_usd": MAX_USD, "concurrency": 4,
        },
        "prices": {"teacher-large": PRICE},
        "runner": {"kind": kind, "workers": 2, "shard_size": 8},
        "workloads": [workload],
    }  # fmt: skip
    path = tmp_path / "flywheel.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _rows(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_relabel_fans_out_under_one_budget_then_the_loop_goes_on(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    pytest.importorskip(f"prefect_{kind}", reason=f"the [{kind}] extra is not installed")
    from flows.flywheel_flow import flywheel_loop
    from flywheel import loop as stages

    monkeypatch.setenv("DASK_TEACHER_KEY", "teacher-key")
    app = make_fake_openai_app(TICKETS.oracle)
    with serve_in_thread(app) as url:
        config = write_config(tmp_path, url, kind)
        home = tmp_path / "home"
        turn = flywheel_loop("support", str(config), str(home), label_mode="relabel")

    # the shards ran in both worker processes of the cluster, neither of them this one
    assert turn["label"]["runner"] == kind and turn["label"]["shards"] > 2
    workers = {worker.rpartition(":")[2] for worker in turn["label"]["workers"]}
    assert len(workers) == 2 and str(os.getpid()) not in workers
    label = _rows(home, "SELECT run_id, mode, labeled, calls, cost_usd, stopped_reason FROM label_runs")
    assert len(label) == 1
    run_id, mode, labeled, calls, cost, stopped = label[0]
    ledger = _rows(home, f"SELECT count(*), sum(usd), max(usd) FROM cost_ledger WHERE run_id = '{run_id}'")
    n_calls, spent, largest = ledger[0]
    # both worker processes called the teacher (the shards were spread), every paid call is in the
    # ledger (written by the flow), and together they stopped at the one budget
    assert mode == "relabel" and stopped == "budget"
    assert n_calls == calls == app.state.stats["completions"] > 2
    assert spent == pytest.approx(cost)
    assert MAX_USD - largest < spent <= MAX_USD  # per-process pots would have spent up to 2 x MAX_USD
    examples = _rows(home, "SELECT n_train + n_val FROM dataset_snapshots")
    assert labeled == n_calls < examples[0][0]  # the budget, not the data, ended the run
    labels = _rows(home, "SELECT count(*) FROM labels WHERE mode = 'relabel'")
    assert labels[0][0] == labeled
    # the shared state is gone and every worker journal was written and removed
    assert not list((home / "shared-limits").iterdir())
    assert not list((home / "teacher-journal").glob("*.jsonl"))
    # the same turn trained, then each model answered the eval split in a worker and the flow gated
    assert set(turn["seconds"]) == {"ingest", "curate", "label", "train", "evaluate", "costs"}
    assert turn["decision"] in ("promote", "promote_partial", "reject", "insufficient_eval")
    (model_id, worker), *_ = turn["predicted_by"].items()
    assert worker.rpartition(":")[2] != str(os.getpid())
    # scored in this process instead, the same model gets the same scores (a dry run writes nothing)
    local = stages.evaluate_stage(stages.Loop.open(config, home), "support", [model_id], dry_run=True)
    assert len(turn["predicted_by"]) == 1  # one candidate, no champion yet: its score is the turn's
    assert local.result.models[model_id].primary.value == turn["student_score"]
