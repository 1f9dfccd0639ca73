"""Read and prepare a workload's interactions in chunks, keeping only what curation needs afterwards.

The raw request/response/metadata JSON of a logged call is most of its memory (a long system prompt, a
few-shot template, tool schemas: ~30 KiB per row once parsed into Python objects). Curation needs it
only while a row is prepared (pruned, scrubbed, parsed, checked) and while its quality columns for the
Great Expectations suite are computed, so rows are read from DuckDB in Arrow batches of
`CHUNK_ROWS`, prepared, and slimmed (request down to `tools`/`response_format`, the snapshot's
columns; response, metadata and feedback dropped) before the next chunk is read. What stays per row
is the pruned, scrubbed conversation and the verdict: what caps, splits and the snapshot need.

The prompt template is found first, on the ok requests in the same order as before; above
`TEMPLATE_SAMPLE` of them on an evenly spaced, deterministic sample (the most common static prefix
of 50,000 requests is the one of all of them for any template worth pruning).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
import polars as pl

from flywheel.config import WorkloadConfig
from flywheel.quality.pii import PiiPattern
from flywheel.quality.pruning import PromptTemplate, find_template
from flywheel.quality.rows import INTERACTION_SQL, CurationRow, prepare_rows, row_from_record
from flywheel.records import message_text

CHUNK_ROWS = 10_000
TEMPLATE_SAMPLE = 50_000
SNAPSHOT_REQUEST_KEYS = ("tools", "response_format")
OK_REQUESTS_SQL = """
SELECT request FROM interactions
WHERE workload_id = ? AND status = 'ok'
ORDER BY ingested_at, ts NULLS LAST, id
"""


@dataclass
class PreparedPool:
    """Every interaction of the workload, prepared and slimmed, with what was read on the way."""

    rows: list[CurationRow] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # ok answers' text (label proposal)
    quality: dict[str, list[pl.DataFrame]] = field(default_factory=dict)  # batch_id -> quality columns
    first_rows: dict[str, CurationRow] = field(default_factory=dict)  # batch_id -> its first row

    def quality_frames(self) -> dict[str, pl.DataFrame]:
        return {batch: pl.concat(frames) for batch, frames in self.quality.items()}

    def first_requests(self) -> dict[str, dict[str, Any]]:
        """Each validated batch's first (slimmed) request: its response_format names a JSON schema."""
        return {batch: row.request for batch, row in self.first_rows.items()}


def find_pool_template(con: duckdb.DuckDBPyConnection, workload: WorkloadConfig) -> PromptTemplate | None:
    """The workload's prompt template, from its ok requests (a sample above TEMPLATE_SAMPLE)."""
    config = workload.curation
    [(count,)] = con.execute(
        "SELECT count(*) FROM interactions WHERE workload_id = ? AND status = 'ok'", [workload.id]
    ).fetchall()
    step = max(1, math.ceil(count / TEMPLATE_SAMPLE))
    conversations: list[list[dict[str, Any]]] = []
    interned: dict[bytes, dict[str, Any]] = {}
    position = 0
    reader = con.sql(OK_REQUESTS_SQL, params=[workload.id]).to_arrow_reader(CHUNK_ROWS)
    for batch in reader:
        for request in batch.column(0).to_pylist():
            if position % step == 0:
                messages = orjson.loads(request).get("messages") or []
                conversations.append([_intern(message, interned) for message in messages])
            position += 1
    return find_template(
        workload.id,
        conversations,
        min_coverage=config.min_template_coverage,
        min_static_tokens=config.min_static_tokens,
    )


def _intern(message: Any, interned: dict[bytes, Any]) -> Any:
    """One object per distinct message: the shared system prompt is held once, not once a request."""
    return interned.setdefault(orjson.dumps(message), message)


def iter_chunks(con: duckdb.DuckDBPyConnection, workload_id: str, size: int) -> Iterator[list[CurationRow]]:
    """The workload's interactions in the curation order (oldest batch first), `size` at a time."""
    reader = con.sql(INTERACTION_SQL, params=[workload_id]).to_arrow_reader(size)
    for batch in reader:
        yield [row_from_record(record) for record in pl.from_arrow(batch).iter_rows(named=True)]


def prepare_pool(
    con: duckdb.DuckDBPyConnection,
    workload: WorkloadConfig,
    template: PromptTemplate | None,
    patterns: tuple[PiiPattern, ...],
    validated: set[str],
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> PreparedPool:
    """Prepare every row chunk by chunk; quality columns for the batches not validated before."""
    from flywheel.quality.expectations import quality_frame

    pool = PreparedPool()
    want_answers = workload.task == "classification" and not workload.labels
    for chunk in iter_chunks(con, workload.id, chunk_rows):
        if want_answers:
            pool.answers.extend(_answers(chunk))
        prepare_rows(chunk, workload, template, patterns, progress)
        if workload.curation.expectations:
            for batch_id, members in _by_batch(chunk, validated).items():
                pool.quality.setdefault(batch_id, []).append(quality_frame(members, workload))
                pool.first_rows.setdefault(batch_id, members[0])
        for row in chunk:
            slim(row)
        pool.rows.extend(chunk)
    return pool


def _answers(rows: list[CurationRow]) -> list[str]:
    return [
        message_text(row.response["message"])
        for row in rows
        if row.status == "ok" and isinstance(row.response.get("message"), dict)
    ]


def _by_batch(rows: list[CurationRow], validated: set[str]) -> dict[str, list[CurationRow]]:
    batches: dict[str, list[CurationRow]] = {}
    for row in rows:
        if row.batch_id not in validated:
            batches.setdefault(row.batch_id, []).append(row)
    return batches


def slim(row: CurationRow) -> None:
    """Drop the raw JSON a prepared row no longer needs (see the module docstring)."""
    row.request = {key: row.request[key] for key in SNAPSHOT_REQUEST_KEYS if key in row.request}
    row.response, row.metadata, row.feedback = {}, {}, None
