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
from flywheel.quality.prepared import INPUT_KEY_SQL, PreparedSink, answer_fields, decode, encode
from flywheel.quality.pruning import PromptTemplate, find_template
from flywheel.quality.rows import INTERACTION_SQL, CurationRow, prepare_rows, row_from_record
from flywheel.records import message_text

CHUNK_ROWS = 10_000
TEMPLATE_SAMPLE = 50_000
SNAPSHOT_REQUEST_KEYS = ("tools", "response_format")
# Rows are read CHUNK_ROWS ids at a time (ORDERED_IDS_SQL gives the order): one ORDER BY over the
# whole workload makes DuckDB sort, so hold, every row's request/response JSON or stored prepared row
# at once (~500 MiB at 62,400 rows). The chunk's own ORDER BY is the same total order (ids are unique).
ORDERED_IDS_SQL = "SELECT id FROM interactions WHERE workload_id = ? ORDER BY ingested_at, ts NULLS LAST, id"
CACHED_SQL = f"""
WITH chunk AS (SELECT unnest($5::VARCHAR[]) AS id),
rows AS (
    SELECT i.*, g.label AS gold_label, {INPUT_KEY_SQL} AS input_key,
           CASE WHEN c.prep_key = $1 AND c.input_key = {INPUT_KEY_SQL}
                     AND ($3 OR list_contains($2::VARCHAR[], i.batch_id)) THEN c.prepared END AS prepared
    FROM interactions i
    LEFT JOIN gold_labels g ON g.workload_id = i.workload_id AND g.interaction_id = i.id
    LEFT JOIN (
        SELECT * FROM curation_prepared WHERE workload_id = $4 AND interaction_id IN (SELECT id FROM chunk)
    ) c ON c.interaction_id = i.id
    WHERE i.workload_id = $4 AND i.id IN (SELECT id FROM chunk)
)
SELECT id, client_id, source_ref, batch_id, status, ts, prompt_tokens, completion_tokens, gold_label,
       input_key, prepared,
       CASE WHEN prepared IS NULL THEN request END AS request,
       CASE WHEN prepared IS NULL THEN response END AS response,
       CASE WHEN prepared IS NULL THEN feedback END AS feedback,
       CASE WHEN prepared IS NULL THEN metadata END AS metadata
FROM rows
ORDER BY ingested_at, ts NULLS LAST, id
"""
# The sample's ids first, then their requests by id: a window over the request column itself makes
# DuckDB hold every ok request's JSON at once (760 MiB at 62,400 rows, the curate's peak).
OK_SAMPLE_IDS_SQL = """
SELECT id FROM (
    SELECT id, row_number() OVER (ORDER BY ingested_at, ts NULLS LAST, id) - 1 AS position
    FROM interactions WHERE workload_id = ? AND status = 'ok'
) WHERE position % ? = 0
ORDER BY position
"""
REQUESTS_BY_ID_SQL = (
    "SELECT id, request FROM interactions WHERE workload_id = ? AND id IN (SELECT unnest(?::VARCHAR[]))"
)
REQUEST_FETCH_ROWS = 5_000


class Interner:
    """One shared object per distinct slimmed request, target and parsed answer: a classification
    workload's rows carry a few dozen distinct ones (~500 bytes a row held once per row otherwise).
    Nothing changes these after preparation (the snapshot copies them), so rows may share them.
    Distinct values past LIMIT are not remembered (a chat workload's targets are mostly distinct)."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self.seen: dict[bytes, Any] = {}

    def share(self, rows: list[CurationRow]) -> list[CurationRow]:
        for row in rows:
            row.request = self._one(row.request, row.request)
            if row.target is not None:
                row.target = self._one(row.target, row.target)
            if row.parsed is not None:
                row.parsed = self._one(row.parsed, answer_fields(row.parsed))
        return rows

    def _one(self, value: Any, body: Any) -> Any:
        key = orjson.dumps(body)  # a dict's key starts with "{", an answer's with "["
        found = self.seen.get(key)
        if found is None and len(self.seen) < self.LIMIT:
            self.seen[key] = value
        return value if found is None else found


@dataclass
class PreparedPool:
    """Every interaction of the workload, prepared and slimmed, with what was read on the way."""

    rows: list[CurationRow] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # ok answers' text (label proposal)
    quality: dict[str, list[pl.DataFrame]] = field(default_factory=dict)  # batch_id -> quality columns
    first_rows: dict[str, CurationRow] = field(default_factory=dict)  # batch_id -> its first row
    interner: Interner = field(default_factory=Interner)

    @staticmethod
    def want_answers(workload: WorkloadConfig) -> bool:
        """A classification workload without `labels`: the answers feed the label proposal."""
        return workload.task == "classification" and not workload.labels

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
    for request in _sample_requests(con, workload.id, step):
        messages = orjson.loads(request).get("messages") or []
        conversations.append([_intern(message, interned) for message in messages])
    return find_template(
        workload.id,
        conversations,
        min_coverage=config.min_template_coverage,
        min_static_tokens=config.min_static_tokens,
    )


def _sample_requests(con: duckdb.DuckDBPyConnection, workload_id: str, step: int) -> Iterator[str]:
    """Every step-th ok request's JSON in the curation order, REQUEST_FETCH_ROWS at a time."""
    ids = [row_id for (row_id,) in con.execute(OK_SAMPLE_IDS_SQL, [workload_id, step]).fetchall()]
    for start in range(0, len(ids), REQUEST_FETCH_ROWS):
        chunk = ids[start : start + REQUEST_FETCH_ROWS]
        found = dict(con.execute(REQUESTS_BY_ID_SQL, [workload_id, chunk]).fetchall())
        yield from (found[row_id] for row_id in chunk)


def _intern(message: Any, interned: dict[bytes, Any]) -> Any:
    """One object per distinct message: the shared system prompt is held once, not once a request."""
    return interned.setdefault(orjson.dumps(message), message)


def iter_chunks(con: duckdb.DuckDBPyConnection, workload_id: str, size: int) -> Iterator[list[CurationRow]]:
    """The workload's interactions in the curation order (oldest batch first), `size` at a time."""
    reader = con.sql(INTERACTION_SQL, params=[workload_id]).to_arrow_reader(size)
    for batch in reader:
        yield [row_from_record(record) for record in pl.from_arrow(batch).iter_rows(named=True)]


def iter_records(
    con: duckdb.DuckDBPyConnection, workload_id: str, key: str, validated: set[str] | None, size: int
) -> Iterator[list[dict[str, Any]]]:
    """INTERACTION_SQL's rows with `input_key`, and `prepared` where a stored prepared row may be used
    (then the raw JSON columns are not read). `validated`: the batches whose rows may come from the
    store (None: any batch, the suite is off)."""
    params = [key, sorted(validated) if validated is not None else [], validated is None, workload_id]
    ids = [row_id for (row_id,) in con.execute(ORDERED_IDS_SQL, [workload_id]).fetchall()]
    for start in range(0, len(ids), size):
        chunk = con.sql(CACHED_SQL, params=[*params, ids[start : start + size]]).arrow()
        yield list(pl.from_arrow(chunk).iter_rows(named=True))


def prepare_pool(
    con: duckdb.DuckDBPyConnection,
    workload: WorkloadConfig,
    template: PromptTemplate | None,
    patterns: tuple[PiiPattern, ...],
    validated: set[str],
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    sink: PreparedSink | None = None,
) -> PreparedPool:
    """Prepare every row chunk by chunk; quality columns for the batches not validated before. With
    a `sink`, rows stored by an earlier curate under the same key are read instead of prepared, and
    the rows prepared now go to the sink (`prepared.py`)."""
    pool = PreparedPool()
    key = sink.key if sink is not None else ""
    checked = validated if workload.curation.expectations else None
    chunks = iter_records(con, workload.id, key, checked, chunk_rows) if sink is not None else None
    if chunks is None:
        for rows in iter_chunks(con, workload.id, chunk_rows):
            answers = _prepare_fresh(pool, rows, workload, template, patterns, validated, progress)
            if pool.want_answers(workload):
                pool.answers.extend(answers.values())
            pool.rows.extend(pool.interner.share(rows))
        return pool
    for records in chunks:
        rows: list[CurationRow] = []
        fresh: list[tuple[CurationRow, str]] = []
        stored: dict[str, str | None] = {}  # answers of the rows read from the store
        for record in records:
            if record["prepared"] is not None:
                row, stored[record["id"]] = decode(record)
            else:
                row = row_from_record(record)
                fresh.append((row, record["input_key"]))
            rows.append(row)
        if progress and len(rows) > len(fresh):
            progress(len(rows) - len(fresh))
        answers = _prepare_fresh(
            pool, [row for row, _ in fresh], workload, template, patterns, validated, progress
        )
        if pool.want_answers(workload):  # in the pool's order, stored and fresh rows mixed
            pool.answers.extend(
                a
                for row in rows
                if (a := answers.get(row.interaction_id, stored.get(row.interaction_id))) is not None
            )
        sink.add([(row.interaction_id, input_key, encode(row, answers.get(row.interaction_id)))
                  for row, input_key in fresh])  # fmt: skip
        pool.rows.extend(pool.interner.share(rows))
    return pool


def _prepare_fresh(
    pool: PreparedPool,
    rows: list[CurationRow],
    workload: WorkloadConfig,
    template: PromptTemplate | None,
    patterns: tuple[PiiPattern, ...],
    validated: set[str],
    progress: Callable[[int], None] | None,
) -> dict[str, str]:
    """Prepare, collect quality columns, slim; returns each ok row's logged answer text by id."""
    from flywheel.quality.expectations import quality_frame

    answers = _answers(rows)
    prepare_rows(rows, workload, template, patterns, progress)
    if workload.curation.expectations:
        for batch_id, members in _by_batch(rows, validated).items():
            pool.quality.setdefault(batch_id, []).append(quality_frame(members, workload))
            pool.first_rows.setdefault(batch_id, members[0])
    for row in rows:
        slim(row)
    return answers


def _answers(rows: list[CurationRow]) -> dict[str, str]:
    return {
        row.interaction_id: message_text(row.response["message"])
        for row in rows
        if row.status == "ok" and isinstance(row.response.get("message"), dict)
    }


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
