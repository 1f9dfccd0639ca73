"""An ingest duplicate (the same call from another client or day) keeps what it carries."""

from __future__ import annotations

from pathlib import Path

from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl


def stored(warehouse: Warehouse) -> list[tuple]:
    sql = "SELECT client_id, feedback, metadata FROM interactions ORDER BY source_ref"
    return warehouse.read(lambda con: con.execute(sql).fetchall())


def test_feedback_and_gold_of_a_duplicate_reach_the_stored_copy(tmp_path: Path) -> None:
    first = chat_record(1, "billing", metadata={"team": "eu"})
    later = {**first, "client_id": "c2", "timestamp": 1_800_000_000, "feedback": {"thumbs": "down"},
             "metadata": {"label": "refund", "team": "us"}}  # fmt: skip
    warehouse = Warehouse(tmp_path / "w.duckdb")
    same_file = ingest_paths(warehouse, [write_jsonl(tmp_path / "a.jsonl", [first, later])], workload_id="w")
    assert (same_file.total("ingested"), same_file.total("duplicates")) == (1, 1)
    assert stored(warehouse) == [("c1", '{"thumbs":"down"}', '{"label":"refund","team":"eu"}')]

    other = Warehouse(tmp_path / "x.duckdb")
    ingest_paths(other, [write_jsonl(tmp_path / "b.jsonl", [first])], workload_id="w")
    for _ in range(2):  # a later file, then the same file again: merged once, nothing else changes
        report = ingest_paths(other, [write_jsonl(tmp_path / "c.jsonl", [later])], workload_id="w")
        assert (report.total("ingested"), report.total("duplicates")) == (0, 1)
        assert stored(other) == [("c1", '{"thumbs":"down"}', '{"label":"refund","team":"eu"}')]
