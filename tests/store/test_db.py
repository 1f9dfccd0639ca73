import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from flywheel.store.db import Warehouse, WarehouseBusy, retry_on_lock
from flywheel.store.migrations import available_migrations, migrate


def test_migrations_apply_once(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = migrate(con)
    assert first == [v for v, _, _ in available_migrations()]
    assert migrate(con) == []
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"interactions", "quarantine", "ingest_batches", "schema_migrations"} <= tables


def test_write_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")

    def failing(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("INSERT INTO ingest_batches VALUES ('b', 'w', 'openai', 'p', 1, 1, 0, 0, now(), now())")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        warehouse.write(failing)
    assert warehouse.read(lambda con: con.execute("SELECT count(*) FROM ingest_batches").fetchone()[0]) == 0


def test_read_only_on_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="flywheel ingest"):
        Warehouse(tmp_path / "none.duckdb").read(lambda con: None)


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE IF NOT EXISTS held(x INT)")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_reader_waits_for_writer_in_another_process(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.ensure_schema()
    proc = _hold_lock(warehouse.path, 1.5)
    started = time.monotonic()
    count = warehouse.read(lambda con: con.execute("SELECT count(*) FROM interactions").fetchone()[0])
    waited = time.monotonic() - started
    proc.wait(10)
    assert count == 0
    assert waited > 0.5  # it really met the lock and retried


def test_writer_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse(path).ensure_schema()
    proc = _hold_lock(path, 5)
    try:
        with pytest.raises(WarehouseBusy, match="locked by another process"):
            Warehouse(path, timeout_s=0.5).write(lambda con: None)
    finally:
        proc.kill()
        proc.wait(10)


def test_retry_on_lock_passes_through_other_errors() -> None:
    def broken() -> None:
        raise duckdb.CatalogException("no such table")

    with pytest.raises(duckdb.CatalogException):
        retry_on_lock(broken, timeout_s=1)
