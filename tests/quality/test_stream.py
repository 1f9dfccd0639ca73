"""Chunked preparation: the same rows, verdicts and quality columns whatever the chunk size, and the
raw JSON of a prepared row is dropped (what keeps curation's memory bounded)."""

from pathlib import Path

import orjson
import pytest

from flywheel.config import WorkloadConfig
from flywheel.ingest import ingest_paths
from flywheel.quality.pii import DEFAULT_PATTERNS
from flywheel.quality.stream import PreparedPool, find_pool_template, prepare_pool
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl

SYSTEM = "You route support tickets for ShopWave. Answer with exactly one queue name and nothing else. " * 3
WORKLOAD = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"])


def _records() -> list[dict]:
    records = []
    for i in range(23):
        record = chat_record(i, "billing" if i % 3 else ("refund" if i % 2 else "no idea"))
        text = f"ticket {i}: charged twice, mail me at user{i}@example.com"
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
        record["request"] = {"model": "gpt-4o-mini", "messages": messages}
        if i % 5 == 0:
            record["request"]["response_format"] = {"type": "text"}
        records.append(record)
    return records


def _snapshot(pool: PreparedPool) -> list[tuple]:
    return [
        (r.interaction_id, r.reason, r.detail, r.label, r.input_text, sorted(r.pii.items()), r.messages)
        for r in pool.rows
    ]


def test_chunk_size_changes_nothing_and_raw_json_is_dropped(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [write_jsonl(tmp_path / "logs.jsonl", _records())], workload_id="w")
    template = warehouse.read(lambda con: find_pool_template(con, WORKLOAD))
    assert template is not None and template.n_static_tokens > 16

    def prepared(chunk_rows: int) -> PreparedPool:
        return warehouse.read(
            lambda con: prepare_pool(con, WORKLOAD, template, DEFAULT_PATTERNS, set(), chunk_rows=chunk_rows)
        )

    whole, chunked = prepared(10_000), prepared(4)
    assert len(whole.rows) == 23 and _snapshot(whole) == _snapshot(chunked)
    assert any(r.reason for r in whole.rows) and any(r.pii for r in whole.rows)
    frames, chunked_frames = whole.quality_frames(), chunked.quality_frames()
    assert frames.keys() == chunked_frames.keys()
    assert all(frames[b].equals(chunked_frames[b]) for b in frames)
    assert sum(f.height for f in frames.values()) == 23
    for row in chunked.rows:  # only the snapshot's request keys survive preparation
        assert row.response == {} and row.metadata == {} and row.feedback is None
        assert set(row.request) <= {"tools", "response_format"}
        assert all(m.get("role") != "system" for m in row.messages)  # pruned to the variable part
    assert sum("response_format" in row.request for row in chunked.rows) == 5


def test_rows_read_by_id_chunks_keep_the_curation_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a sink, rows are read CHUNK ids at a time (no sort over every row's JSON): the same rows,
    verdicts and order as one query over the whole workload, whatever the chunk size."""
    from flywheel.quality import stream
    from flywheel.quality.prepared import PreparedSink
    from flywheel.quality.rows import INTERACTION_SQL

    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [write_jsonl(tmp_path / "logs.jsonl", _records())], workload_id="w")
    order = warehouse.read(lambda con: [r[0] for r in con.execute(INTERACTION_SQL, ["w"]).fetchall()])
    template = warehouse.read(lambda con: find_pool_template(con, WORKLOAD))

    def prepared(chunk_rows: int) -> PreparedPool:
        sink = PreparedSink("w", "key")
        try:
            return warehouse.read(
                lambda con: prepare_pool(
                    con, WORKLOAD, template, DEFAULT_PATTERNS, set(), chunk_rows=chunk_rows, sink=sink
                )
            )
        finally:
            sink.close()

    plain = warehouse.read(lambda con: prepare_pool(con, WORKLOAD, template, DEFAULT_PATTERNS, set()))
    whole, chunked = prepared(10_000), prepared(4)
    assert [r.interaction_id for r in chunked.rows] == order and len(order) == 23
    assert _snapshot(chunked) == _snapshot(whole) == _snapshot(plain)
    # equal targets, answers and requests are one shared object (Interner), read from store or not
    for pool in (chunked, plain):
        targets = {orjson.dumps(r.target) for r in pool.rows if r.target is not None}
        assert len({id(r.target) for r in pool.rows if r.target is not None}) == len(targets) < 23
        requests = {orjson.dumps(r.request) for r in pool.rows}
        assert len({id(r.request) for r in pool.rows}) == len(requests) == 2
    # the template sample: every step-th ok request in the same order, fetched by id in chunks
    monkeypatch.setattr(stream, "REQUEST_FETCH_ROWS", 2)
    ok = warehouse.read(
        lambda con: [
            r[0]
            for r in con.execute(
                "SELECT request FROM interactions WHERE workload_id = 'w' AND status = 'ok' "
                "ORDER BY ingested_at, ts NULLS LAST, id"
            ).fetchall()
        ]
    )
    sample = warehouse.read(lambda con: list(stream._sample_requests(con, "w", 3)))
    assert sample == ok[::3] and len(sample) == len(ok[::3]) > 2
