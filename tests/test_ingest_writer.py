"""ChunkWriter (flywheel/ingest/writer.py) against a real DuckDB file: whole row groups per insert,
repeats across chunks, commits every batch, counts only for what committed, rollback on abort."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.ingest import FileReport
from flywheel.ingest import writer as ingest_writer
from flywheel.ingest.columns import ParsedChunk, build_chunks
from flywheel.records import Interaction, Rejected
from flywheel.store.db import Warehouse


def _chunk(numbers: list[int], first_line: int, bad: int = 0) -> ParsedChunk:
    items: list[Interaction | Rejected] = []
    for offset, i in enumerate(numbers):
        items.append(
            Interaction(
                workload_id="w",
                request={"messages": [{"role": "user", "content": f"ticket {i}"}]},
                response={"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"},
                source="openai",
                source_ref=f"logs.jsonl:{first_line + offset}",
            )
        )
    line = first_line + len(numbers)
    items += [Rejected("openai", f"logs.jsonl:{line + k}", "invalid_json", "{", "eof") for k in range(bad)]
    return next(build_chunks(items, len(items)))


def _stored(warehouse: Warehouse, sql: str) -> list[tuple]:
    return warehouse.read(lambda con: con.execute(sql).fetchall())


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Row groups of 8 rows; records the size of every insert statement."""
    monkeypatch.setattr(ingest_writer, "ROW_GROUP_ROWS", 8)
    sizes: list[int] = []
    insert_rows = ingest_writer._insert_rows

    def spy(con: object, rows: object, batch_id: str) -> int:
        sizes.append(rows.num_rows)  # type: ignore[attr-defined]
        return insert_rows(con, rows, batch_id)

    monkeypatch.setattr(ingest_writer, "_insert_rows", spy)
    return sizes


def test_inserts_take_whole_row_groups_and_repeats_across_chunks_count_once(
    tmp_path: Path, inserts: list[int]
) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = FileReport("logs.jsonl", "openai", "b1")
    writer = ingest_writer.ChunkWriter(warehouse, report, "w", batch_size=1000)
    writer.add(_chunk(list(range(0, 5)), 1))  # 5 pending: less than a row group
    assert inserts == []
    writer.add(_chunk([3, 4, *range(5, 10)], 6, bad=2))  # 3 and 4 repeat the first chunk
    assert inserts == [9]  # a whole group and the row that makes DuckDB write it; 1 row waits
    writer.add(_chunk(list(range(10, 27)), 15))
    assert inserts == [9, 16]  # whole groups from there on
    assert report.read == 0  # nothing committed yet
    writer.finish()
    assert inserts == [9, 16, 2]
    assert (report.read, report.ingested, report.duplicates, report.quarantined) == (31, 27, 2, 2)
    refs = _stored(warehouse, "SELECT source_ref FROM interactions WHERE request LIKE '%ticket 3\"%'")
    assert refs == [("logs.jsonl:4",)]  # the first line with that content
    assert _stored(warehouse, "SELECT count(*) FROM quarantine") == [(2,)]


def test_a_batch_commits_when_it_has_batch_size_lines(tmp_path: Path, inserts: list[int]) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = FileReport("logs.jsonl", "openai", "b1")
    writer = ingest_writer.ChunkWriter(warehouse, report, "w", batch_size=10)
    writer.add(_chunk(list(range(0, 6)), 1))
    writer.add(_chunk(list(range(6, 12)), 7))  # 12 lines >= 10: insert everything, commit
    assert (report.read, report.ingested) == (12, 12)
    assert _stored(warehouse, "SELECT count(*) FROM interactions") == [(12,)]
    writer.add(_chunk(list(range(0, 3)), 13))  # stored by the committed batch: the anti-join drops them
    writer.finish()
    assert (report.read, report.ingested, report.duplicates) == (15, 12, 3)


def test_abort_rolls_back_the_open_batch_and_counts_nothing(tmp_path: Path, inserts: list[int]) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = FileReport("logs.jsonl", "openai", "b1")
    writer = ingest_writer.ChunkWriter(warehouse, report, "w", batch_size=10)
    writer.add(_chunk(list(range(0, 12)), 1))  # committed
    writer.add(_chunk(list(range(20, 29)), 13))  # one row group inserted, not committed
    assert inserts == [12, 9]
    writer.abort()
    assert (report.read, report.ingested) == (12, 12)
    assert _stored(warehouse, "SELECT count(*) FROM interactions") == [(12,)]
    writer.finish()  # nothing left: the connection was closed by the rollback
    assert report.read == 12


def test_finish_writes_the_last_record_with_the_final_counts(tmp_path: Path, inserts: list[int]) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = FileReport("logs.jsonl", "openai", "b1")
    writer = ingest_writer.ChunkWriter(warehouse, report, "w", batch_size=100)
    writer.add(_chunk(list(range(0, 4)), 1, bad=1))
    seen: list[tuple[int, int]] = []
    writer.finish(lambda con: seen.append((report.read, report.ingested)))
    assert seen == [(5, 4)]
    assert (report.read, report.ingested, report.quarantined) == (5, 4, 1)


def test_one_duckdb_thread_while_workers_parse_then_the_default_again(
    tmp_path: Path, inserts: list[int]
) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    default = warehouse.write(_threads)
    report = FileReport("logs.jsonl", "openai", "b1")
    writer = ingest_writer.ChunkWriter(warehouse, report, "w", batch_size=100)
    writer.threads = 1
    writer.add(_chunk(list(range(0, 9)), 1))  # one row group: the connection opens
    with warehouse.connect() as con:  # the same process shares the writer's instance
        assert _threads(con) == 1
    writer.finish()
    assert warehouse.write(_threads) == default


def _threads(con: object) -> int:
    return con.execute("SELECT current_setting('threads')").fetchone()[0]  # type: ignore[attr-defined]
