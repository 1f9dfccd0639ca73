"""Ingestion: run a connector over files and land every input unit in the warehouse exactly once.

Every unit a connector yields ends as exactly one of: ingested (new interaction), duplicate (its
content-addressed id is already there or earlier in the same run) or quarantined (with reason). The
counts add up by construction and are returned per file. Writes happen in batch transactions fed
as the file is parsed, so a crash loses at most the batch in flight, and a re-run turns what landed
into duplicates.
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
from flywheel.ingest.columns import ParsedChunk, build_chunks
from flywheel.ingest.sharding import WorkerPool, can_shard, parse_sharded, wants_workers
from flywheel.ingest.writer import ChunkWriter
from flywheel.records import utcnow
from flywheel.store.db import Warehouse

# Lines per write transaction (four of the warehouse's row groups). Its inserts run while the lines
# are parsed (flywheel/ingest/writer.py); each commit closes the file for other processes to open,
# and a crash loses at most one batch.
BATCH_SIZE = 122_880
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
    with WorkerPool() as workers, ThreadPoolExecutor(1, thread_name_prefix="ingest-schema") as background:
        if wants_workers(paths, fmt):
            workers.start()  # before the schema thread: a fork is only safe while no other thread runs
        # Migrating a new warehouse takes a while; it happens while the first file is parsed.
        schema = background.submit(warehouse.ensure_schema)
        run = _Run(warehouse, ctx, progress, batch_size, schema.result, workers)
        for path in paths:
            report.files.append(ingest_file(run, path, fmt))
    return report


@dataclass
class _Run:
    """What the files of one ingest call share; `schema_ready` waits for the warehouse schema."""

    warehouse: Warehouse
    ctx: ReadContext
    progress: ProgressFn | None
    batch_size: int
    schema_ready: Callable[[], Any]
    workers: WorkerPool


def ingest_file(run: _Run, path: Path, fmt: str) -> FileReport:
    """Ingest one file; a file that cannot be read gets its error in the report."""
    batch_id = f"ing-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    file_report = FileReport(str(path), fmt, batch_id)
    started = utcnow()
    workload_id = run.ctx.workload_id
    writer = ChunkWriter(run.warehouse, file_report, workload_id, run.batch_size)
    try:
        try:
            file_report.format = _file_format(path, fmt)
            sharded = can_shard(path, file_report.format)
            writer.threads = 1 if sharded else None  # the workers take every core
            for chunk in _parsed_chunks(run, path, file_report.format, sharded):
                run.schema_ready()
                writer.add(chunk)
                if run.progress:
                    run.progress(chunk.read)
        except SourceError as exc:  # what was read before it stays: finish() commits it
            file_report.error = str(exc)
        if writer.lines or file_report.error is None:
            run.schema_ready()
            writer.finish(lambda con: _record_batch(con, file_report, workload_id, started))
    except BaseException:
        writer.abort()
        raise
    return file_report


def _file_format(path: Path, fmt: str) -> str:
    found = detect_format(path) if fmt == "auto" else fmt
    if found not in REGISTRY:
        raise SourceError(f"{path}: unknown format {found!r} (known: {sorted(REGISTRY)})")
    return found


def _parsed_chunks(run: _Run, path: Path, fmt: str, sharded: bool) -> Iterator[ParsedChunk]:
    if sharded:
        yield from parse_sharded(path, fmt, run.ctx, run.batch_size, run.workers)
        return
    yield from build_chunks(REGISTRY[fmt].items(path, run.ctx), run.batch_size)


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
