"""Chunks of warehouse rows (flywheel/ingest/columns.py): layout, de-duplication, merging."""

from __future__ import annotations

from datetime import datetime

from flywheel.ingest.columns import INTERACTION_SCHEMA, ChunkBuilder, build_chunks
from flywheel.records import INTERACTION_COLUMNS, Interaction, Rejected


def _interaction(i: int, line: int) -> Interaction:
    return Interaction(
        workload_id="w",
        request={"messages": [{"role": "user", "content": f"ticket {i}"}]},
        response={"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"},
        source="openai",
        source_ref=f"logs.jsonl:{line}",
        ts=datetime(2024, 1, 1),
        feedback={"thumbs": "up"} if i % 2 else None,
    )


def test_rows_follow_the_interaction_columns() -> None:
    assert INTERACTION_SCHEMA.names == list(INTERACTION_COLUMNS[: len(INTERACTION_SCHEMA)])
    assert INTERACTION_COLUMNS[len(INTERACTION_SCHEMA) :] == ("batch_id", "ingested_at")
    item = _interaction(1, 1)
    row = item.row()
    assert len(row) == len(INTERACTION_SCHEMA) and row[0] == item.id


def test_an_interaction_and_its_row_store_the_same() -> None:
    items = [_interaction(i, i) for i in range(5)]
    from_items = list(build_chunks(items, 10))
    from_rows = list(build_chunks([item.row() for item in items], 10))
    assert from_items[0].interactions.equals(from_rows[0].interactions)


def test_repeats_are_counted_once_per_chunk() -> None:
    lines = iter(range(1, 100))
    first = [_interaction(i, next(lines)) for i in (1, 2, 1, 3)]  # 1 repeats inside the chunk
    second = [_interaction(i, next(lines)) for i in (4, 2, 5)]  # 2 repeats the first chunk: not here
    bad = Rejected("openai", "logs.jsonl:99", "invalid_json", "{", "eof")
    chunks = [*build_chunks([*first, bad], 100), *build_chunks(second, 100)]
    assert [c.repeated for c in chunks] == [1, 0]
    assert [c.interactions.num_rows for c in chunks] == [3, 3]
    assert [(c.read, c.quarantine.num_rows, c.reasons) for c in chunks] == [
        (5, 1, {"invalid_json": 1}),
        (3, 0, {}),
    ]


def test_builder_starts_afresh_after_each_chunk() -> None:
    builder = ChunkBuilder()
    builder.add(_interaction(1, 1))
    assert builder.build().interactions.num_rows == 1
    builder.add(_interaction(1, 2))  # the same content in the next chunk is not a repeat here
    chunk = builder.build()
    assert (chunk.interactions.num_rows, chunk.repeated, chunk.read) == (1, 0, 1)
