"""Served traffic in the money views the moment it is served: the serve spool read into `served_calls`.

`flywheel serve` makes every call durable in its spool before answering. `sync_served_calls` reads the
spool files (plain and rotated .gz; hidden files such as the write-ahead log are not finished calls)
into one `served_calls` row per call, keyed by the call's request id: a re-read adds nothing, and
identical repeated calls are each counted. The avoided teacher cost of a student-served call is its
request as the application sent it, counted with the teacher's tokenizer (flywheel/costs/teacher_cost.py);
a call the teacher answered carries the teacher's own usage and bill.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson

from flywheel.records import to_timestamp, utcnow
from flywheel.store.db import Warehouse
from flywheel.store.keyed import insert_rows

COLUMNS = (
    "id, request_id, workload_id, client_id, ts, model, status, request, response, prompt_tokens, "
    "completion_tokens, latency_ms, cost_usd, metadata, spool_ref, synced_at"
)


@dataclass
class SyncReport:
    files: int = 0
    lines: int = 0
    added: int = 0
    skipped_lines: int = 0  # not a served call (malformed, or not a spool record)

    def as_dict(self) -> dict[str, int]:
        return {"files": self.files, "lines": self.lines, "added": self.added, "skipped": self.skipped_lines}


def spool_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.jsonl*") if not p.name.startswith(".") and _is_log(p))


def _is_log(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.gz"))


def sync_served_calls(warehouse: Warehouse, directory: Path) -> SyncReport:
    """Read spool files that changed since the last sync into served_calls (idempotent)."""
    report = SyncReport()
    files = spool_files(directory)
    if not files:
        return report
    warehouse.ensure_schema()
    known = dict(
        ((path, (size, mtime)) for path, size, mtime in warehouse.read(
            lambda con: con.execute("SELECT path, size, mtime FROM served_spool_files").fetchall()
        ))
    )  # fmt: skip
    for path in files:
        stat = path.stat()
        if known.get(str(path)) == (stat.st_size, stat.st_mtime):
            continue
        rows, lines = _rows(path, report)
        warehouse.write(lambda con, r=rows, n=lines, p=path, st=stat: _store(con, r, p, st, n, report))
        report.files += 1
        report.lines += lines
    return report


def _rows(path: Path, report: SyncReport) -> tuple[list[tuple[Any, ...]], int]:
    rows, count = [], 0
    now = utcnow()
    for number, line in _lines(path):
        count += 1
        row = served_row(line, f"{path.name}:{number}", now)
        if row is None:
            report.skipped_lines += 1
        else:
            rows.append(row)
    return rows, count


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def served_row(line: bytes, ref: str, now: Any) -> tuple[Any, ...] | None:
    """One spool line as a served_calls row; None when the line is not a finished served call."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or "flywheel_spool" not in record or not record.get("id"):
        return None
    response = record.get("response") or {}
    choices = response.get("choices") if isinstance(response, dict) else None
    ok = bool(choices)
    message = (choices[0].get("message") or {}) if ok else None
    served_by = record.get("served_by") or "teacher"
    teacher_usage = served_by == "teacher" and ok
    metadata = dict(record.get("metadata") or {})
    metadata.update(served_by=served_by, fallback_reason=record.get("fallback_reason"))
    return (
        f"served:{record['id']}",
        str(record["id"]),
        str(record.get("workload_id") or ""),
        record.get("client_id"),
        _timestamp(record.get("ts")),
        record.get("model"),
        "ok" if ok else "error",
        orjson.dumps(record.get("request") or {}).decode(),
        orjson.dumps({"message": message} if ok else {"error": response.get("error")}).decode(),
        record.get("prompt_tokens") if teacher_usage else None,
        record.get("completion_tokens") if teacher_usage else None,
        record.get("latency_ms"),
        record.get("cost_usd"),
        orjson.dumps(metadata, default=str).decode(),
        ref,
        now,
    )


def _timestamp(value: Any) -> Any:
    try:
        return to_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None


def _store(
    con: duckdb.DuckDBPyConnection,
    rows: list[tuple[Any, ...]],
    path: Path,
    stat: Any,
    lines: int,
    report: SyncReport,
) -> None:
    columns = [c.strip() for c in COLUMNS.split(",")]
    report.added += insert_rows(con, "served_calls", columns, rows, key=["id"])
    insert_rows(
        con,
        "served_spool_files",
        ["path", "size", "mtime", "lines", "synced_at"],
        [(str(path), stat.st_size, stat.st_mtime, lines, utcnow())],
        key=["path"],
        replace=True,
    )
