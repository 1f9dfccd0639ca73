"""A DuckLake warehouse: the catalog in SQLite or Postgres, the data as Parquet files in a directory.

The same SQL as the DuckDB file runs here (the migrations without their key clauses, see
flywheel.store.migrations), and many processes on many machines can write at once: DuckLake keeps
snapshots in the catalog database, so there is no file lock to wait for.

DuckDB fetches extensions from its download site by name, which is unreachable offline; the
extensions come instead from the PyPI packages `duckdb-extension-<name>` and are LOADed by path. Those
packages exist for exactly one DuckDB version each, so the version must match `duckdb.__version__`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import time
from pathlib import Path

import duckdb

from flywheel.store.db import DEFAULT_TIMEOUT_S, Warehouse, retry_on_lock

# The catalog kind -> the DuckDB extension that reads that database.
CATALOG_EXTENSIONS = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}
# One idle connection per lake and process keeps its DuckDB instance (extensions loaded, lake attached)
# alive: loading the two extensions and attaching costs ~0.3-1 s, which every short write would pay
# again once its connection closed. The file backend cannot do this (an open connection holds the
# file lock); a lake has no lock. Keyed by pid so that a forked child never uses its parent's instance.
_anchors: dict[tuple[int, str], duckdb.DuckDBPyConnection] = {}
# What a concurrent first use of one lake raises in the loser: a DuckLake commit conflict, or the
# catalog's own tables created twice (Postgres: duplicate key on its system catalog).
RACE_MARKERS = ("conflict", "Failed to commit", "Failed to initialize DuckLake", "duplicate key value")


class LakeUnavailable(RuntimeError):
    """The DuckLake extensions are not installed for this DuckDB version."""


def extension_path(name: str) -> Path:
    """The extension file inside its PyPI package, for this DuckDB's exact version."""
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LakeUnavailable(
            f"the DuckLake backend needs duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}, "
            "which is not installed; PyPI has them for duckdb 1.5.5 at the newest (`make install-lake`)"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    found = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not found.exists():
        shipped = sorted(p.name for p in (root / "extensions").glob("v*"))
        raise LakeUnavailable(f"{package} ships {shipped}, not v{duckdb.__version__}: pin them together")
    return found


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class LakeWarehouse(Warehouse):
    """A DuckLake warehouse. Unlike the file it keeps one idle connection per process (`_anchors`)."""

    keyless = True

    def __init__(
        self,
        catalog: str,
        data_path: str | None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        local_dir: Path | None = None,
    ) -> None:
        """catalog: `sqlite:<file>` or `postgres:<dsn>`. data_path: None attaches an existing lake
        with the data path its catalog recorded (what a reader such as the dashboard does)."""
        kind = catalog.partition(":")[0]
        if kind not in CATALOG_EXTENSIONS:
            raise ValueError(f"DuckLake catalog must start with sqlite: or postgres:, got {catalog!r}")
        # `path` is the SQLite catalog file (Postgres has none): what `exists()` looks for.
        super().__init__(Path(catalog.partition(":")[2]) if kind == "sqlite" else Path(), timeout_s)
        self.catalog, self.data_path, self.kind = catalog, data_path, kind
        self._local_dir = local_dir or (self.path.parent if kind == "sqlite" else Path.cwd())

    @property
    def local_dir(self) -> Path:
        return self._local_dir

    @property
    def location(self) -> str:
        return f"ducklake:{self.catalog}"

    def exists(self) -> bool:
        """A SQLite catalog exists once its file does; a Postgres one once migrations recorded a row."""
        if self.kind == "sqlite":
            return self.path.exists()
        con = self._open(read_only=True)
        try:
            found = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'warehouse' "
                "AND table_name = 'schema_migrations'"
            ).fetchone()
        finally:
            con.close()
        return bool(found and found[0])

    def ensure_schema(self) -> None:
        """Migrate, retrying while another process initialises or migrates the same lake at the same
        moment (its commit wins, ours conflicts: a later attempt finds its work recorded)."""
        deadline, delay = time.monotonic() + self.timeout_s, 0.1
        while True:
            try:
                return super().ensure_schema()
            except duckdb.Error as exc:
                if not _is_race(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        # Readers and writers share one attach: DuckLake reads a consistent snapshot and has no lock.
        if self.kind == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.data_path:
            Path(self.data_path).mkdir(parents=True, exist_ok=True)
        return retry_on_lock(self._attach, self.timeout_s, self.location)

    def _attach(self) -> duckdb.DuckDBPyConnection:
        # One named in-memory instance per lake in a process, as the file backend shares one per file.
        instance = hashlib.sha256(f"{self.catalog}|{self.data_path}".encode()).hexdigest()[:16]
        anchor = _anchors.get((os.getpid(), instance))
        if anchor is not None:
            return _using_lake(anchor.cursor())
        con = duckdb.connect(f":memory:flywheel-lake-{instance}")
        try:
            for name in (CATALOG_EXTENSIONS[self.kind], "ducklake"):
                con.execute(f"LOAD {_quote(str(extension_path(name)))}")
            options = f" (DATA_PATH {_quote(self.data_path)})" if self.data_path else ""
            con.execute(f"ATTACH IF NOT EXISTS {_quote('ducklake:' + self.catalog)} AS warehouse{options}")
            con.execute("USE warehouse")
        except BaseException:
            con.close()
            raise
        _anchors[(os.getpid(), instance)] = con
        return _using_lake(con.cursor())


def _is_race(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.TransactionException) or any(m in str(exc) for m in RACE_MARKERS)


def _using_lake(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute("USE warehouse")  # the default catalog is per connection, cursors included
    return con
