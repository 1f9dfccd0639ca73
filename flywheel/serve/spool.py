"""The capture spool: every served call as one JSON line, durable before the client sees an answer.

Line format: the contract in `connectors/spool.py` (version `SPOOL_VERSION`). Files are
`<dir>/spool-<UTC timestamp>.jsonl`, rotated by size or age (optionally gzipped to `.jsonl.gz`), and
read back by the `spool` ingest connector. Hidden files (a leading ".") are never ingested.

Durability: `write()` returns only after the line is written and `os.fsync`ed. Concurrent writers are
group-committed: lines queued while a flush runs are written and fsynced together, so 200 concurrent
requests cost a handful of fsyncs, not 200.

Shadowed calls (the student answered; the teacher is asked afterwards for comparison) need one line
holding both answers, yet the student's answer is acknowledged before the teacher replies. So the
call first goes durably into a hidden write-ahead log (`.pending.wal`); when the teacher answers, the
complete line goes to the spool and a "done" marker to the log. `recover()` (run at start-up) moves
calls whose shadow never finished into the spool without a teacher answer, so a kill -9 loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

SPOOL_VERSION = 1
PENDING_LOG = ".pending.wal"
DIR_LOCK = ".lock"
GZIP_TMP_SUFFIX = ".gz.tmp"


class SpoolError(RuntimeError):
    """The spool could not make a record durable; the call must not be acknowledged."""


def encode_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n"


class SpoolWriter:
    """Appends records to rotating JSONL files with fsync; thread-safe, async group commit."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_seconds: float = 3600.0,
        gzip_rotated: bool = False,
        clock: Callable[[], float] = time.time,
        prefix: str = "spool",
    ) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.gzip_rotated = gzip_rotated
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._wal_fd: int | None = None
        self._dir_lock_fd: int | None = None
        self._pending_ids: set[str] = set()
        self._queue: list[tuple[bytes | None, bytes | None, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.lines_written = 0
        self.fsyncs = 0

    @property
    def current_path(self) -> Path | None:
        return self._path

    # -- synchronous API (tests, recovery, tools) ---------------------------------------------------
    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (blocking)."""
        self._commit([encode_line(record)], [])

    def recover(self) -> int:
        """Move calls left in the write-ahead log by a previous process into the spool; remove stale
        temporary files. Returns how many calls were recovered."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_directory()
        for stale in self.directory.glob(f".*{GZIP_TMP_SUFFIX}"):
            stale.unlink(missing_ok=True)
        wal = self.directory / PENDING_LOG
        unfinished = _unfinished_calls(wal) if wal.exists() else []
        lines = [encode_line(_without_shadow(record)) for record in unfinished]
        if lines:
            self._commit(lines, [])
        with self._lock:
            self._close_wal()
            wal.unlink(missing_ok=True)
            _fsync_dir(self.directory)
        return len(lines)

    def maybe_rotate(self) -> Path | None:
        """Rotate the current file when it is too big or too old; returns the closed file."""
        with self._lock:
            if self._fd is None or not self._due():
                return None
            closed = self._rotate_locked()
        self._compress_later(closed)
        return closed

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._close_wal()
            if self._dir_lock_fd is not None:
                os.close(self._dir_lock_fd)  # releases the flock
                self._dir_lock_fd = None

    def _lock_directory(self) -> None:
        """One server per spool directory: its write-ahead log must not be recovered by another."""
        if self._dir_lock_fd is not None:
            return
        fd = os.open(self.directory / DIR_LOCK, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise SpoolError(
                f"{self.directory} is in use by another flywheel server (one per spool dir)"
            ) from exc
        self._dir_lock_fd = fd

    # -- asynchronous API (the server) -------------------------------------------------------------
    async def write(self, record: dict[str, Any]) -> None:
        """Durably append one record; returns after fsync. Raises SpoolError when that failed."""
        await self._enqueue(encode_line(record), None)

    async def write_pending(self, record: dict[str, Any]) -> None:
        """Durably log a call whose shadow answer is still outstanding."""
        self._pending_ids.add(record["id"])
        await self._enqueue(None, orjson.dumps({"pending": record}) + b"\n")

    async def resolve_pending(self, record: dict[str, Any]) -> None:
        """Append the completed record of a pending call and mark it done in the log."""
        # Leave the outstanding set first, so the commit that writes the marker can compact the log.
        self._pending_ids.discard(record["id"])
        try:
            await self._enqueue(encode_line(record), orjson.dumps({"done": record["id"]}) + b"\n")
        except BaseException:
            self._pending_ids.add(record["id"])  # still only in the log: keep it there
            raise

    async def drain(self) -> None:
        """Wait until every queued line is durable."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _enqueue(self, spool_line: bytes | None, wal_line: bytes | None) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((spool_line, wal_line, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        await future

    async def _flush_loop(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            spool_lines = [s for s, _, _ in batch if s is not None]
            wal_lines = [w for _, w, _ in batch if w is not None]
            try:
                await asyncio.to_thread(self._commit, spool_lines, wal_lines)
            except Exception as exc:
                error = SpoolError(f"capture spool write failed: {exc}")
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(error)
            else:
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)

    # -- file handling (under the lock) ------------------------------------------------------------
    def _commit(self, spool_lines: list[bytes], wal_lines: list[bytes]) -> None:
        """Spool lines first, then log lines: a "done" marker is only durable after its record is."""
        rotated: list[Path] = []
        with self._lock:
            if spool_lines:
                if self._fd is not None and self._due():
                    rotated.append(self._rotate_locked())
                fd = self._open_locked()
                data = b"".join(spool_lines)
                _append_durably(fd, data)
                self._size += len(data)
                self.lines_written += len(spool_lines)
                self.fsyncs += 1
            if wal_lines:
                _append_durably(self._open_wal_locked(), b"".join(wal_lines))
                self.fsyncs += 1
            self._compact_wal_locked()
        for path in rotated:
            self._compress_later(path)

    def _due(self) -> bool:
        too_old = self._clock() - self._opened_at >= self.rotate_seconds
        return self._size >= self.rotate_bytes or too_old

    def _open_locked(self) -> int:
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._path = self._new_path()
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            _fsync_dir(self.directory)  # the new file's name must survive a crash too
            self._opened_at = self._clock()
            self._size = 0
        return self._fd

    def _new_path(self) -> Path:
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{self.prefix}-{stamp}.jsonl"
        serial = 1
        while path.exists() or path.with_suffix(".jsonl.gz").exists():
            path = self.directory / f"{self.prefix}-{stamp}-{serial}.jsonl"
            serial += 1
        return path

    def _rotate_locked(self) -> Path:
        assert self._fd is not None and self._path is not None
        os.close(self._fd)
        closed, self._fd, self._path = self._path, None, None
        return closed

    def _compress_later(self, path: Path) -> None:
        if self.gzip_rotated:
            threading.Thread(target=compress_file, args=(path,), daemon=True, name="spool-gzip").start()

    def _open_wal_locked(self) -> int:
        if self._wal_fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._wal_fd = os.open(
                self.directory / PENDING_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640
            )
            _fsync_dir(self.directory)
        return self._wal_fd

    def _compact_wal_locked(self) -> None:
        """Nothing outstanding: the log's content is dead, so start it over (bounded size)."""
        if not self._pending_ids and self._wal_fd is not None and os.fstat(self._wal_fd).st_size:
            os.ftruncate(self._wal_fd, 0)

    def _close_wal(self) -> None:
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None


def compress_file(path: Path) -> Path:
    """path.jsonl -> path.jsonl.gz durably (temp file, fsync, rename), then remove the original."""
    target = path.with_name(path.name + ".gz")
    tmp = path.with_name("." + path.name + GZIP_TMP_SUFFIX)
    with path.open("rb") as source, tmp.open("wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            shutil.copyfileobj(source, packed)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, target)
    _fsync_dir(path.parent)
    path.unlink()
    return target


def spool_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The spool's data files, oldest first (what the ingest connector reads)."""
    directory = Path(directory)
    return sorted([*directory.glob("spool-*.jsonl"), *directory.glob("spool-*.jsonl.gz")])


def _unfinished_calls(wal: Path) -> list[dict[str, Any]]:
    pending: dict[str, dict[str, Any]] = {}
    for raw in wal.read_bytes().splitlines():
        try:
            entry = orjson.loads(raw)
        except orjson.JSONDecodeError:  # torn last line: it was never fsynced, so never acknowledged
            continue
        if isinstance(entry.get("pending"), dict):
            pending[entry["pending"]["id"]] = entry["pending"]
        elif isinstance(entry.get("done"), str):
            pending.pop(entry["done"], None)
    return list(pending.values())


def _without_shadow(record: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(record.get("metadata") or {})
    metadata["shadow"] = "lost_on_restart"
    return {**record, "teacher_response": None, "metadata": metadata}


def _append_durably(fd: int, data: bytes) -> None:
    """Append and fsync, or leave the file as it was. A full disk (ENOSPC, EFBIG) can take half a
    batch: that torn tail would fuse with the next line written after space is freed, so a record
    acknowledged later would be unreadable. Cutting the tail off keeps every later line whole."""
    start = os.fstat(fd).st_size
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):  # shrinking a file needs no free space
            os.ftruncate(fd, start)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
