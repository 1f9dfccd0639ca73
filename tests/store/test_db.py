import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from flywheel.store.db import ROW_GROUP_ROWS, Warehouse, WarehouseBusy, retry_on_lock
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


def test_writers_use_small_row_groups_and_share_one_instance_per_process(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    rows = ROW_GROUP_ROWS * 2 + 5
    with warehouse.connect() as con, warehouse.connect() as other:  # concurrent, as before
        con.execute(f"CREATE TABLE t AS SELECT range AS i FROM range({rows})")
        assert other.execute("SELECT current_database()").fetchone() == ("warehouse",)
    query = "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('t')"
    assert warehouse.read(lambda con: con.execute(query).fetchone()) == (3,)


def test_a_warehouse_written_with_the_default_row_groups_takes_writes(tmp_path: Path) -> None:
    """Files from before the small row groups: bigger groups, indexed tables (DuckDB #22109)."""
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    migrate(con)
    con.execute("CREATE TABLE big (k BIGINT PRIMARY KEY)")
    con.execute(f"INSERT INTO big SELECT range FROM range({ROW_GROUP_ROWS + 100})")
    con.close()
    warehouse = Warehouse(path)
    warehouse.write(lambda con: con.execute(f"INSERT INTO big VALUES ({ROW_GROUP_ROWS + 100})"))
    batch = "INSERT INTO ingest_batches VALUES ('b', 'w', 'openai', 'p', 1, 1, 0, 0, now(), now())"
    warehouse.write(lambda con: con.execute(batch))
    count = warehouse.read(lambda con: con.execute("SELECT count(*) FROM big").fetchone()[0])
    assert count == ROW_GROUP_ROWS + 101


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
