"""DuckDB connections that keep write transactions short and retry on the cross-process file lock.

DuckDB lets one process hold a database file for writing; any other process, readers included, fails
with `Could not set lock on file` while it does. So writers open, write one short transaction and
close; readers and writers both retry with backoff until `timeout_s`.

Writers attach the file with row groups of ROW_GROUP_ROWS rows instead of DuckDB's 122,880. That
default suits narrow analytic rows; an interaction carries ~0.7 KB of JSON, so a 122,880-row group
is ~85 MB before compression, and an ingest of 100k lines (one partial group) left all of its
compression to the commit: 0.23 s after the last line was parsed. With 30,720-row groups (~20 MB)
each full group is compressed while the insert statement runs, alongside the parse, and the commit
takes 0.02 s; the file grows ~7% and scans of tables under 250k rows use more than one thread.
Writers of one file in one process share a DuckDB instance (a named in-memory database that
attaches the file), as `duckdb.connect(path)` would share one.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import duckdb

from flywheel.store.migrations import migrate

T = TypeVar("T")
LOCK_MARKERS = (
    "Could not set lock",
    "Conflicting lock",
    "database is locked",
    "Resource temporarily unavailable",
)
DEFAULT_TIMEOUT_S = 120.0
ROW_GROUP_ROWS = 30_720  # a multiple of 2,048, as DuckDB requires


class NoSnapshot(LookupError):
    """The workload has no dataset snapshot yet: curate first."""


class WarehouseBusy(RuntimeError):
    """The warehouse stayed locked by another process for longer than the timeout."""


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.Error) and any(marker in str(exc) for marker in LOCK_MARKERS)


def retry_on_lock(fn: Callable[[], T], timeout_s: float = DEFAULT_TIMEOUT_S, what: str = "warehouse") -> T:
    """Call `fn` until it stops failing on the file lock; jittered exponential backoff."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            return fn()
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"{what} is locked by another process for over {timeout_s:.0f}s") from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)


class Warehouse:
    """A DuckDB warehouse file. Holds no open connection: each use opens one briefly."""

    keyless = False  # True where the backend has no PRIMARY KEY constraints (DuckLake)

    def __init__(self, path: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._migrated = False

    @property
    def location(self) -> str:
        """What error messages name: the file here, the catalog for a DuckLake."""
        return str(self.path)

    @property
    def local_dir(self) -> Path:
        """A local directory beside the warehouse for crash-recovery journals."""
        return self.path.parent

    def exists(self) -> bool:
        """Whether anything has been written yet (readers report "run ingest first" instead)."""
        return self.path.exists()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        if read_only:
            connect = partial(duckdb.connect, str(self.path), read_only=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connect = self._attach_for_writing
        return retry_on_lock(connect, self.timeout_s, self.location)

    def _attach_for_writing(self) -> duckdb.DuckDBPyConnection:
        instance = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        con = duckdb.connect(f":memory:flywheel-{instance}")
        try:
            quoted = str(self.path).replace("'", "''")
            con.execute(f"ATTACH IF NOT EXISTS '{quoted}' AS warehouse (ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
            con.execute("USE warehouse")
        except BaseException:
            con.close()
            raise
        return con

    def ensure_schema(self) -> None:
        """Apply pending migrations once per Warehouse object (cheap no-op when up to date)."""
        if self._migrated:
            return
        con = self._open(read_only=False)
        try:
            migrate(con, keyless=self.keyless)
        finally:
            con.close()
        self._migrated = True

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; for writes, the caller's statements run in one transaction."""
        if read_only:
            if not self.exists():
                raise FileNotFoundError(f"{self.location}: no warehouse yet (run `flywheel ingest` first)")
        else:
            self.ensure_schema()
        con = self._open(read_only)
        try:
            if read_only:
                yield con
            else:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                # Outside the try: a COMMIT that fails (a DuckLake conflict) has already ended the
                # transaction, and a ROLLBACK would replace its error with "no transaction is active".
                con.execute("COMMIT")
        finally:
            con.close()

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `fn` in one short write transaction."""
        with self.connect() as con:
            return fn(con)

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `fn` on a read-only connection, retrying while a writer holds the lock."""

        def attempt() -> T:
            with self.connect(read_only=True) as con:
                return fn(con)

        return retry_on_lock(attempt, self.timeout_s, self.location)
