"""Ingestion: run a connector over files and land every input unit in the warehouse exactly once.

Every unit a connector yields ends as exactly one of: ingested (new interaction), duplicate (its
content-addressed id is already there or earlier in the same run) or quarantined (with reason). The
counts add up by construction and are returned per file. Writes happen in short batch transactions,
so a crash loses at most the batch in flight, and a re-run turns what landed into duplicates.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from connectors import REGISTRY, ReadContext, SourceError
from connectors.detect import detect_format, resolve_paths
from flywheel.records import Interaction, Rejected, interaction_id, quarantine_id, utcnow
from flywheel.sharding import ParsedChunk, can_shard, parse_sharded
from flywheel.store.db import Warehouse

BATCH_SIZE = 20_000
MAX_PROBLEMS_SHOWN = 20
ProgressFn = Callable[[int], None]

INTERACTION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("workload_id", pa.string()),
        ("client_id", pa.string()),
        ("source", pa.string()),
        ("source_ref", pa.string()),
        ("ts", pa.timestamp("us")),
        ("model", pa.string()),
        ("request", pa.string()),
        ("response", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("cost_usd", pa.float64()),
        ("logprobs", pa.string()),
        ("feedback", pa.string()),
        ("status", pa.string()),
        ("metadata", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("raw", pa.string()),
        ("source", pa.string()),
        ("source_ref", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)


@dataclass
class FileReport:
    path: str
    format: str
    batch_id: str
    read: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    problems: list[str] = field(default_factory=list)  # the first few "file:line: reason: detail"

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("path", "format", "batch_id", "read", "ingested")}
        out |= {"duplicates": self.duplicates, "quarantined": self.quarantined}
        return out | {"reasons": dict(self.reasons), "error": self.error, "problems": self.problems}


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    def total(self, key: str) -> int:
        return sum(getattr(f, key) for f in self.files)

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.error]

    @property
    def nothing_read(self) -> bool:
        """True when no input could be used at all: the CLI's only non-zero exit."""
        usable = self.total("ingested") + self.total("duplicates")
        return usable == 0 and (bool(self.errors) or self.total("quarantined") > 0 or not self.files)

    def as_dict(self) -> dict[str, Any]:
        reasons: Counter[str] = Counter()
        for report in self.files:
            reasons.update(report.reasons)
        totals = {k: self.total(k) for k in ("read", "ingested", "duplicates", "quarantined")}
        extra = {"reasons": dict(reasons), "errors": self.errors}
        return totals | extra | {"files": [f.as_dict() for f in self.files]}


def ingest_paths(
    warehouse: Warehouse,
    patterns: Iterable[str | Path],
    *,
    workload_id: str | None,
    fmt: str = "auto",
    mapping: dict[str, Any] | None = None,
    price_fn: Callable[[str | None, int | None, int | None], float | None] | None = None,
    progress: ProgressFn | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestReport:
    """Ingest every file the patterns name. A file that cannot be read is reported, not raised."""
    report = IngestReport()
    try:
        paths = resolve_paths([str(p) for p in patterns])
    except SourceError as exc:
        report.files.append(FileReport(str(patterns), fmt, "-", error=str(exc)))
        return report
    ctx = ReadContext(workload_id=workload_id, mapping=mapping or {}, price_fn=price_fn)
    for path in paths:
        report.files.append(ingest_file(warehouse, path, fmt, ctx, progress, batch_size))
    return report


def ingest_file(
    warehouse: Warehouse,
    path: Path,
    fmt: str,
    ctx: ReadContext,
    progress: ProgressFn | None = None,
    batch_size: int = BATCH_SIZE,
) -> FileReport:
    batch_id = f"ing-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    file_report = FileReport(str(path), fmt, batch_id)
    started = utcnow()
    try:
        file_report.format = detect_format(path) if fmt == "auto" else fmt
        if file_report.format not in REGISTRY:
            raise SourceError(f"{path}: unknown format {file_report.format!r} (known: {sorted(REGISTRY)})")
        for chunk in _parsed_chunks(path, file_report.format, ctx, batch_size):
            _write_chunk(warehouse, chunk, file_report, ctx.workload_id)
            if progress:
                progress(chunk.read)
    except SourceError as exc:
        file_report.error = str(exc)
    if file_report.read or file_report.error is None:
        warehouse.write(lambda con: _record_batch(con, file_report, ctx.workload_id, started))
    return file_report


def _parsed_chunks(path: Path, fmt: str, ctx: ReadContext, batch_size: int) -> Iterator[ParsedChunk]:
    if can_shard(path, fmt):
        yield from parse_sharded(path, fmt, ctx, batch_size)
        return
    chunk: list[Interaction | Rejected] = []
    for item in REGISTRY[fmt].read(path, ctx):
        chunk.append(item)
        if len(chunk) >= batch_size:
            yield parse_chunk(chunk)
            chunk = []
    if chunk:
        yield parse_chunk(chunk)


def parse_chunk(chunk: list[Interaction | Rejected]) -> ParsedChunk:
    interactions, repeated, quarantine = to_tables(chunk)
    reasons = Counter(item.reason for item in chunk if isinstance(item, Rejected))
    return ParsedChunk(interactions, repeated, quarantine, reasons, len(chunk))


def _write_chunk(
    warehouse: Warehouse, chunk: ParsedChunk, report: FileReport, workload_id: str | None
) -> None:
    now = utcnow()

    def write(con: Any) -> int:
        con.register("new_rows", chunk.interactions)
        con.register("new_quarantine", chunk.quarantine)
        inserted = con.execute(
            "INSERT INTO interactions SELECT n.*, ?::VARCHAR AS batch_id, ?::TIMESTAMP AS ingested_at "
            "FROM new_rows n ANTI JOIN interactions i ON i.id = n.id",
            [report.batch_id, now],
        ).fetchone()[0]
        con.execute(
            "INSERT INTO quarantine SELECT q.id, q.raw, q.source, q.source_ref, 'ingest', q.reason, "
            "q.detail, ?, ?, ? FROM new_quarantine q ANTI JOIN quarantine o ON o.id = q.id",
            [workload_id, report.batch_id, now],
        )
        con.unregister("new_rows")
        con.unregister("new_quarantine")
        return inserted

    inserted = warehouse.write(write)
    report.read += chunk.read
    report.ingested += inserted
    report.duplicates += (chunk.interactions.num_rows - inserted) + chunk.repeated
    report.quarantined += chunk.quarantine.num_rows
    report.reasons.update(chunk.reasons)
    room = MAX_PROBLEMS_SHOWN - len(report.problems)
    if room > 0:
        sample = chunk.quarantine.slice(0, room).select(["source_ref", "reason", "detail"]).to_pylist()
        report.problems.extend(f"{r['source_ref']}: {r['reason']}: {r['detail']}" for r in sample)


def to_tables(chunk: list[Interaction | Rejected]) -> tuple[pa.Table, int, pa.Table]:
    """Columnar batches for DuckDB; the second value counts ids repeated inside this chunk."""
    rows: list[tuple[Any, ...]] = []
    rejected: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    repeated = 0
    for item in chunk:
        if isinstance(item, Rejected):
            rejected.append(_rejected_row(item))
            continue
        request, response = item.canonical_json()
        row_id = interaction_id(item.workload_id, request, response)
        if row_id in seen:
            repeated += 1
            continue
        seen.add(row_id)
        rows.append(_interaction_row(item, row_id, request, response))
    return _columnar(rows, INTERACTION_SCHEMA), repeated, _columnar(rejected, QUARANTINE_SCHEMA)


def _columnar(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    # Row tuples transposed once: far cheaper than appending to one list per column per row.
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema.names]
    arrays = [pa.array(column, type=f.type) for column, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _interaction_row(item: Interaction, row_id: str, request: bytes, response: bytes) -> tuple[Any, ...]:
    return (
        row_id,
        item.workload_id,
        item.client_id,
        item.source,
        item.source_ref,
        item.ts,
        item.model,
        request.decode(),
        response.decode(),
        item.prompt_tokens,
        item.completion_tokens,
        item.latency_ms,
        item.cost_usd,
        _json_or_none(item.logprobs),
        _json_or_none(item.feedback),
        item.status,
        _json_or_none(item.metadata or None),
    )


def _rejected_row(item: Rejected) -> tuple[Any, ...]:
    reason_id = quarantine_id(item.source_ref, item.raw, item.reason)
    return (reason_id, item.raw, item.source, item.source_ref, item.reason, item.detail)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _record_batch(con: Any, report: FileReport, workload_id: str | None, started: Any) -> None:
    con.execute(
        "INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            report.batch_id,
            workload_id,
            report.format,
            report.path,
            report.read,
            report.ingested,
            report.duplicates,
            report.quarantined,
            started,
            utcnow(),
        ],
    )
