"""`flywheel forget`: interactions and everything derived from them go; curate rebuilds; idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.config import WorkloadConfig
from flywheel.curate import curate_workload
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl

TEXTS = [
    "charged twice for order",
    "parcel never arrived",
    "download my invoice",
    "close my account",
    "app crashes on login",
    "refund for broken mug",
    "change delivery address",
    "promo code fails",
]


def record(i: int, text: str) -> dict:
    base = chat_record(i, "billing" if i % 2 else "refund")
    base["request"] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{text} #{i}"}]}
    return base


def count(warehouse: Warehouse, sql: str) -> int:
    return warehouse.read(lambda con: con.execute(sql).fetchone()[0])


def forget_cli(home: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--home", str(home), "forget", "-w", "w", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_forget_a_source_deletes_what_derives_from_it_and_curate_rebuilds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a = write_jsonl(tmp_path / "a.jsonl", [record(i, t) for i, t in enumerate(TEXTS[:4])] + [b"{bad"])
    b = write_jsonl(tmp_path / "b.jsonl", [record(i + 10, t) for i, t in enumerate(TEXTS[4:])])
    warehouse = Warehouse(home / "warehouse.duckdb")
    ingest_paths(warehouse, [a, b], workload_id="w")
    first = warehouse.read(
        lambda con: con.execute("SELECT id FROM interactions ORDER BY source_ref").fetchone()[0]
    )
    gold = "INSERT INTO gold_labels VALUES ('w', ?, 'refund', 'imp-1', 'gold.csv:2', now())"
    warehouse.write(lambda con: con.execute(gold, [first]))
    curation = {
        "expectations": False,
        "export": ["parquet"],
        "max_client_share": None,
        "max_slice_share": None,
        "eval_fraction": 0.25,
        "val_fraction": 0.0,
    }
    workload = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"], curation=curation)
    report = curate_workload(warehouse, workload, home=home)
    assert report.n_out == 8 and Path(report.export_path).exists()

    result = forget_cli(home, "--source", str(a))
    deleted = result["deleted"]
    assert deleted["interactions"] == 4 and deleted["curation_verdicts"] == 4
    assert deleted["snapshot_examples"] == 4 and deleted["gold_labels"] == 1 and deleted["quarantine"] == 1
    assert result["snapshots_affected"] == [report.snapshot_id]
    assert result["exports_removed"] and not Path(report.export_path).exists()
    index = home / "indexes" / "w.dedup.npz"  # hashes and signatures of the texts: derived data
    assert result["indexes_removed"] == [str(index)] and not index.exists()
    assert count(warehouse, "SELECT count(*) FROM interactions") == 4
    assert count(warehouse, "SELECT count(*) FROM quarantine") == 0

    again = forget_cli(home, "--source", str(a))
    assert set(again["deleted"].values()) == {0} and again["snapshots_affected"] == []

    rebuilt = curate_workload(warehouse, workload, home=home)
    assert rebuilt.n_out == 4 and rebuilt.snapshot_id != report.snapshot_id and not rebuilt.reused_snapshot
    assert index.exists()


def test_forget_by_ids_and_before_and_one_selector_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    logs = write_jsonl(tmp_path / "a.jsonl", [record(i, t) for i, t in enumerate(TEXTS)])
    warehouse = Warehouse(home / "warehouse.duckdb")
    ingest_paths(warehouse, [logs], workload_id="w")
    ids = warehouse.read(
        lambda con: [r[0] for r in con.execute("SELECT id FROM interactions LIMIT 2").fetchall()]
    )
    (tmp_path / "ids.txt").write_text("# privacy request 42\n" + "\n".join(ids) + "\n")
    assert forget_cli(home, "--ids", str(tmp_path / "ids.txt"))["deleted"]["interactions"] == 2
    # chat_record timestamps are 2023-11-14T22:13:20Z + i seconds
    assert forget_cli(home, "--before", "2030-01-01")["deleted"]["interactions"] == 6
    assert count(warehouse, "SELECT count(*) FROM interactions") == 0
    result = CliRunner().invoke(app, ["--home", str(home), "forget", "-w", "w", "--json"])
    assert result.exit_code == 2 and "exactly one of" in result.stdout
