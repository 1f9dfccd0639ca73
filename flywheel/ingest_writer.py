"""Writing one file's parsed chunks to the warehouse while the rest of the file is still parsed.

Chunks are inserted as they arrive, into a write transaction that commits every `batch_size` lines
and after the file's last chunk. The insert work (Arrow to DuckDB, the anti-join that drops rows
already stored) so overlaps the workers' parsing, and what is left when parsing ends is the commit
of the last batch. A crash loses at most the uncommitted batch; a re-run turns what did land into
duplicates. Counts reach the file's report only when their transaction commits.

Small chunks (a worker's shard) are inserted together, at least `batch_size // 4` lines at a time,
because every insert's anti-join scans the ids already stored: on a warehouse of a million rows, 16
inserts of 6,300 rows cost three times one of 100,000 (0.64 s against 0.22 s); 4 of 25,000 the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb

from flywheel.ingest_columns import ParsedChunk, merge_chunks
from flywheel.records import utcnow
from flywheel.store.db import Warehouse

MAX_PROBLEMS_SHOWN = 20


class Counts(Protocol):
    """The per-file tallies the writer adds to (FileReport)."""

    batch_id: str
    read: int
    ingested: int
    duplicates: int
    quarantined: int
    reasons: Counter[str]
    problems: list[str]


@dataclass
class _Uncommitted:
    read: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


class ChunkWriter:
    """Feeds one file's chunks into short write transactions; `finish` commits the rest."""

    def __init__(
        self, warehouse: Warehouse, report: Counts, workload_id: str | None, batch_size: int
    ) -> None:
        self._warehouse = warehouse
        self._report = report
        self._workload_id = workload_id
        self._batch_size = batch_size
        self._insert_lines = max(1, batch_size // 4)
        self._pending: list[ParsedChunk] = []
        self._pending_lines = 0
        self._transaction: ExitStack | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._uncommitted = _Uncommitted()

    @property
    def lines(self) -> int:
        """Input lines handed to the writer so far, committed or not."""
        return self._report.read + self._uncommitted.read + self._pending_lines

    def add(self, chunk: ParsedChunk) -> None:
        self._pending.append(chunk)
        self._pending_lines += chunk.read
        if self._pending_lines >= self._insert_lines:
            self._insert_pending()
        if self._uncommitted.read >= self._batch_size:
            self._commit()

    def finish(self, last_write: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> None:
        """Insert what is pending and commit, with `last_write` (given the final counts) in the
        same transaction."""
        self._insert_pending()
        if last_write is not None:
            con = self._connection()
            self._apply_counts()  # last_write records the file's final counts
            last_write(con)
        self._commit()

    def abort(self) -> None:
        """Roll back the open transaction (the process is being stopped or the parse failed)."""
        if self._transaction is not None:
            transaction, self._transaction, self._con = self._transaction, None, None
            transaction.__exit__(RuntimeError, RuntimeError("ingest aborted"), None)
        self._pending, self._pending_lines, self._uncommitted = [], 0, _Uncommitted()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._transaction = ExitStack()
            self._con = self._transaction.enter_context(self._warehouse.connect())
        return self._con

    def _insert_pending(self) -> None:
        if not self._pending:
            return
        chunk = merge_chunks(self._pending)
        self._pending, self._pending_lines = [], 0
        inserted = _insert(self._connection(), chunk, self._report.batch_id, self._workload_id)
        done = self._uncommitted
        done.read += chunk.read
        done.ingested += inserted
        done.duplicates += (chunk.interactions.num_rows - inserted) + chunk.repeated
        done.quarantined += chunk.quarantine.num_rows
        done.reasons.update(chunk.reasons)
        room = MAX_PROBLEMS_SHOWN - len(self._report.problems) - len(done.problems)
        if room > 0:
            sample = chunk.quarantine.slice(0, room).select(["source_ref", "reason", "detail"]).to_pylist()
            done.problems.extend(f"{r['source_ref']}: {r['reason']}: {r['detail']}" for r in sample)

    def _commit(self) -> None:
        if self._transaction is None:
            self._apply_counts()
            return
        transaction, self._transaction, self._con = self._transaction, None, None
        transaction.close()  # COMMIT, then close the connection: other processes may open the file
        self._apply_counts()

    def _apply_counts(self) -> None:
        done, report = self._uncommitted, self._report
        report.read += done.read
        report.ingested += done.ingested
        report.duplicates += done.duplicates
        report.quarantined += done.quarantined
        report.reasons.update(done.reasons)
        report.problems.extend(done.problems)
        self._uncommitted = _Uncommitted()


def _insert(con: Any, chunk: ParsedChunk, batch_id: str, workload_id: str | None) -> int:
    """Insert the chunk's new interactions and quarantine rows; returns the interactions inserted."""
    now = utcnow()
    con.register("new_rows", chunk.interactions)
    con.register("new_quarantine", chunk.quarantine)
    inserted = con.execute(
        "INSERT INTO interactions SELECT n.*, ?::VARCHAR AS batch_id, ?::TIMESTAMP AS ingested_at "
        "FROM new_rows n ANTI JOIN interactions i ON i.id = n.id",
        [batch_id, now],
    ).fetchone()[0]
    con.execute(
        "INSERT INTO quarantine SELECT q.id, q.raw, q.source, q.source_ref, 'ingest', q.reason, "
        "q.detail, ?, ?, ? FROM new_quarantine q ANTI JOIN quarantine o ON o.id = q.id",
        [workload_id, batch_id, now],
    ).fetchall()
    con.unregister("new_rows")
    con.unregister("new_quarantine")
    return inserted
