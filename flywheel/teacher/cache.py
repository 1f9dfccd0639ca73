"""The teacher cache and every warehouse write of a teacher run, batched and journaled.

Answers are keyed by a hash of (model, messages, params, prompt version), so a re-run finds them and
makes no call. A paid answer is appended to a local journal file the moment it arrives and written to
the warehouse in short batched transactions (DuckDB allows one writer process; per-row transactions
would cap a run at a few hundred rows a second). If the process dies between the two, the next run
replays the journal first, so no answer that was paid for is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import pyarrow as pa

from flywheel.records import canonical_dumps
from flywheel.store.db import Warehouse
from flywheel.store.keyed import insert_from
from flywheel.teacher.client import Completion

log = logging.getLogger("flywheel.teacher")
CACHE_COLUMNS = (
    "cache_key",
    "model",
    "request",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "created_at",
)
LEDGER_COLUMNS = (
    "entry_id",
    "workload_id",
    "run_id",
    "kind",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "usd",
    "ref",
    "at",
)
QUARANTINE_COLUMNS = (
    "id",
    "raw",
    "source",
    "source_ref",
    "stage",
    "reason",
    "detail",
    "workload_id",
    "batch_id",
    "quarantined_at",
)
PRIMARY_KEYS = {
    "teacher_cache": "cache_key",
    "cost_ledger": "entry_id",
    "labels": "label_id",
    "quarantine": "id",
}


def cache_key(request: dict[str, Any], prompt_version: str, sample: int = 0) -> str:
    """sha256 over the model, messages, every other request param, the prompt version and sample index."""
    params = {k: v for k, v in request.items() if k not in ("model", "messages")}
    material = {
        "model": request.get("model"),
        "messages": request.get("messages"),
        "params": params,
        "prompt_version": prompt_version,
        "sample": sample,
    }
    return hashlib.sha256(canonical_dumps(material)).hexdigest()


@dataclass(slots=True)
class CachedAnswer:
    cache_key: str
    model: str
    request: dict[str, Any]
    completion: Completion
    cost_usd: float
    created_at: datetime

    def row(self) -> dict[str, Any]:
        return {
            "cache_key": self.cache_key,
            "model": self.model,
            "request": canonical_dumps(self.request).decode(),
            "response": canonical_dumps(self.completion.as_json()).decode(),
            "prompt_tokens": self.completion.prompt_tokens,
            "completion_tokens": self.completion.completion_tokens,
            "cost_usd": self.cost_usd,
            "created_at": self.created_at,
        }

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> CachedAnswer:
        key, model, request, response, prompt_tokens, completion_tokens, cost, created = row
        body = orjson.loads(response)
        completion = Completion(
            message=body["message"],
            finish_reason=body.get("finish_reason"),
            model=body.get("model") or model,
            prompt_tokens=prompt_tokens or 0,
            completion_tokens=completion_tokens or 0,
            latency_ms=body.get("latency_ms") or 0.0,
            logprobs=body.get("logprobs"),
        )
        return cls(key, model, orjson.loads(request), completion, cost or 0.0, created)


def ledger_row(answer: CachedAnswer, *, workload_id: str | None, run_id: str, kind: str) -> dict[str, Any]:
    """One cost_ledger row per paid call; the id makes replaying a journal idempotent."""
    return {
        "entry_id": hashlib.sha256(f"{run_id}\x00{kind}\x00{answer.cache_key}".encode()).hexdigest(),
        "workload_id": workload_id,
        "run_id": run_id,
        "kind": kind,
        "model": answer.completion.model,
        "prompt_tokens": answer.completion.prompt_tokens,
        "completion_tokens": answer.completion.completion_tokens,
        "usd": answer.cost_usd,
        "ref": answer.cache_key,
        "at": answer.created_at,
    }


class TeacherStore:
    """Serialised warehouse access for one teacher run: cache lookups and batched, journaled writes."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        journal_dir: Path | None = None,
        flush_interval_s: float = 2.0,
        max_pending: int = 4096,
    ) -> None:
        self.warehouse = warehouse
        self.journal_dir = journal_dir or warehouse.local_dir / "teacher-journal"
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self._pending: dict[str, list[dict[str, Any]]] = {table: [] for table in PRIMARY_KEYS}
        self._journal: TextIO | None = None
        self._retired: list[TextIO] = []  # journals whose rows are queued or being flushed
        self._db = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False

    async def open(self) -> int:
        """Create the schema, replay journals left by dead runs, start the flusher; returns rows replayed."""
        await self.run(lambda con: None)  # applies pending migrations
        recovered = await asyncio.to_thread(recover_journals, self.warehouse, self.journal_dir)
        self._flusher = asyncio.create_task(self._flush_periodically())
        return recovered

    async def run(self, fn: Any) -> Any:
        """fn(con) in one write transaction, serialised with the batch flushes."""
        async with self._db:
            write = asyncio.ensure_future(asyncio.to_thread(self.warehouse.write, fn))
            try:
                return await asyncio.shield(write)
            except asyncio.CancelledError:
                # The thread cannot be stopped: hold the lock until its transaction ends, or a second
                # writer in this process would race it on the same keys.
                await asyncio.wait([write])
                raise

    async def lookup(self, keys: list[str]) -> dict[str, CachedAnswer]:
        if not keys:
            return {}
        sql = (
            f"SELECT {', '.join('c.' + c for c in CACHE_COLUMNS)} FROM teacher_cache c "
            "JOIN (SELECT unnest(?::VARCHAR[]) AS k) q ON c.cache_key = q.k"
        )
        async with self._db:
            rows = await asyncio.to_thread(
                self.warehouse.read, lambda con: con.execute(sql, [keys]).fetchall()
            )
        return {row[0]: CachedAnswer.from_row(row) for row in rows}

    def record_answer(self, answer: CachedAnswer, ledger: dict[str, Any]) -> None:
        """Journal a paid answer and its ledger row now; they reach the warehouse with the next flush."""
        cache_row = answer.row()
        journal = self._open_journal()
        journal.write(orjson.dumps({"cache": cache_row, "ledger": ledger}, default=str).decode() + "\n")
        journal.flush()
        self._add("teacher_cache", cache_row)
        self._add("cost_ledger", ledger)

    def record(self, table: str, row: dict[str, Any]) -> None:
        """Queue a derived row (labels, quarantine): rebuilt for free from the cache if it is lost."""
        self._add(table, row)

    def _add(self, table: str, row: dict[str, Any]) -> None:
        self._pending[table].append(row)
        if sum(len(rows) for rows in self._pending.values()) >= self.max_pending:
            self._wake.set()

    def _open_journal(self) -> TextIO:
        if self._journal is None:
            self.journal_dir.mkdir(parents=True, exist_ok=True)
            path = self.journal_dir / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
            self._journal = path.open("a", encoding="utf-8")
            _lock(self._journal)
        return self._journal

    async def flush(self) -> None:
        """Write everything queued in one transaction; the journals covering it are then deleted."""
        batch = {table: rows for table, rows in self._pending.items() if rows}
        if not batch:
            return
        self._pending = {table: [] for table in PRIMARY_KEYS}
        if self._journal is not None:  # answers arriving during the flush go to a fresh file
            self._retired.append(self._journal)
            self._journal = None
        retired = list(self._retired)
        try:
            await self.run(lambda con: write_batches(con, batch))
        except BaseException:
            for table, rows in batch.items():  # keep them for the next flush; the journals still hold them
                self._pending[table][:0] = rows
            raise
        for journal in retired:
            journal.close()
            Path(journal.name).unlink(missing_ok=True)
            self._retired.remove(journal)

    async def _flush_periodically(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # a busy warehouse must not kill the run; rows stay queued
                log.warning("teacher cache flush failed, will retry: %s", exc)

    async def close(self) -> None:
        """Stop the flusher and write what is left (also on cancellation)."""
        if self._flusher is not None:  # let it finish the flush it may be in, rather than cancel it
            self._closing = True
            self._wake.set()
            with contextlib.suppress(Exception):
                await self._flusher
            self._flusher = None
        await self.flush()


def write_batches(con: Any, batch: dict[str, list[dict[str, Any]]]) -> None:
    for table, rows in batch.items():
        name = f"batch_{table}"
        con.register(name, pa.Table.from_pylist(rows))
        try:
            insert_from(con, table, list(rows[0]), name, key=[PRIMARY_KEYS[table]])
        finally:
            con.unregister(name)


def recover_journals(warehouse: Warehouse, journal_dir: Path) -> int:
    """Write rows from journals of runs that died before flushing; skip journals a live run holds."""
    if not journal_dir.is_dir():
        return 0
    recovered = 0
    for path in sorted(journal_dir.glob("*.jsonl")):
        with path.open("r+", encoding="utf-8") as handle:
            if not _try_lock(handle):
                continue
            batch: dict[str, list[dict[str, Any]]] = {"teacher_cache": [], "cost_ledger": []}
            for line in handle:
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a line cut short when the process died: that answer was never complete
                batch["teacher_cache"].append(_timestamps(entry["cache"], "created_at"))
                batch["cost_ledger"].append(_timestamps(entry["ledger"], "at"))
            if batch["teacher_cache"]:
                warehouse.write(lambda con, b=batch: write_batches(con, b))
                recovered += len(batch["teacher_cache"])
        path.unlink(missing_ok=True)
    if recovered:
        log.info("recovered %d teacher answers from an interrupted run", recovered)
    return recovered


def _timestamps(row: dict[str, Any], column: str) -> dict[str, Any]:
    if isinstance(row.get(column), str):
        row[column] = datetime.fromisoformat(row[column])
    return row


def _lock(handle: TextIO) -> None:
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _try_lock(handle: TextIO) -> bool:
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): only this process writes journals it can see
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class MemoryStore:
    """A TeacherStore stand-in with no warehouse: no cache across runs, nothing written."""

    def __init__(self) -> None:
        self.answers: dict[str, CachedAnswer] = {}

    async def open(self) -> int:
        return 0

    async def run(self, fn: Any) -> None:
        return None

    async def lookup(self, keys: list[str]) -> dict[str, CachedAnswer]:
        return {key: self.answers[key] for key in keys if key in self.answers}

    def record_answer(self, answer: CachedAnswer, ledger: dict[str, Any]) -> None:
        self.answers[answer.cache_key] = answer

    def record(self, table: str, row: dict[str, Any]) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None
