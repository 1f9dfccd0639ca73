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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors import REGISTRY, ReadContext, SourceError
from connectors.detect import detect_format, resolve_paths
from flywheel.ingest_columns import ParsedChunk, build_chunks, merge_chunks
from flywheel.records import utcnow
from flywheel.sharding import can_shard, parse_sharded
from flywheel.store.db import Warehouse

# Lines per write transaction: one DuckDB row group (122,880 rows). Each write opens the file, commits
# and checkpoints, and a checkpoint rewrites a row group it appended to, so smaller batches cost more
# (eight writes of 12,500 rows: three times one of 100,000) and a crash loses at most one batch.
BATCH_SIZE = 122_880
MAX_PROBLEMS_SHOWN = 20
ProgressFn = Callable[[int], None]


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
    with ThreadPoolExecutor(1, thread_name_prefix="ingest-schema") as background:
        # Migrating a new warehouse takes a while; it happens while the first file is parsed.
        schema = background.submit(warehouse.ensure_schema)
        for path in paths:
            report.files.append(ingest_file(warehouse, path, fmt, ctx, progress, batch_size, schema.result))
    return report


def ingest_file(
    warehouse: Warehouse,
    path: Path,
    fmt: str,
    ctx: ReadContext,
    progress: ProgressFn | None = None,
    batch_size: int = BATCH_SIZE,
    schema_ready: Callable[[], None] = lambda: None,
) -> FileReport:
    """Ingest one file; `schema_ready` waits for the warehouse schema before the first write."""
    batch_id = f"ing-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    file_report = FileReport(str(path), fmt, batch_id)
    started = utcnow()
    try:
        file_report.format = detect_format(path) if fmt == "auto" else fmt
        if file_report.format not in REGISTRY:
            raise SourceError(f"{path}: unknown format {file_report.format!r} (known: {sorted(REGISTRY)})")
        for chunk in _parsed_chunks(path, file_report.format, ctx, batch_size):
            schema_ready()
            _write_chunk(warehouse, chunk, file_report, ctx.workload_id)
            if progress:
                progress(chunk.read)
    except SourceError as exc:
        file_report.error = str(exc)
    if file_report.read or file_report.error is None:
        schema_ready()
        warehouse.write(lambda con: _record_batch(con, file_report, ctx.workload_id, started))
    return file_report


def _parsed_chunks(path: Path, fmt: str, ctx: ReadContext, batch_size: int) -> Iterator[ParsedChunk]:
    if can_shard(path, fmt):
        yield from _coalesced(parse_sharded(path, fmt, ctx, batch_size), batch_size)
        return
    yield from build_chunks(REGISTRY[fmt].items(path, ctx), batch_size)


def _coalesced(chunks: Iterable[ParsedChunk], batch_size: int) -> Iterator[ParsedChunk]:
    """Workers return a chunk per shard; writing them together keeps transactions at `batch_size`
    lines, since each write costs a connection, a commit and a checkpoint of the rows it touches."""
    pending: list[ParsedChunk] = []
    lines = 0
    for chunk in chunks:
        pending.append(chunk)
        lines += chunk.read
        if lines >= batch_size:
            yield merge_chunks(pending)
            pending, lines = [], 0
    if pending:
        yield merge_chunks(pending)


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
