"""The DuckLake warehouse: its config, the keyless migrations, keyed writes and concurrent writers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flywheel.config import ConfigError, load_config
from flywheel.store.db import Warehouse
from flywheel.store.factory import open_warehouse, warehouse_at
from flywheel.store.keyed import insert_rows
from flywheel.store.lake import LakeWarehouse
from flywheel.store.migrations import available_migrations, keyless_ddl

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, warehouse: str) -> Path:
    path = tmp_path / "flywheel.yaml"
    path.write_text(f"home: {tmp_path}\n{warehouse}workloads: []\n")
    return path


def test_plain_path_is_still_a_duckdb_file(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "warehouse: data/w.duckdb\n"))
    assert config.warehouse.backend == "duckdb"
    assert config.warehouse_path(tmp_path) == tmp_path / "data/w.duckdb"
    opened = open_warehouse(config.warehouse, tmp_path)
    assert type(opened) is Warehouse and opened.path == tmp_path / "data/w.duckdb"


def test_lake_section_resolves_paths_against_home(tmp_path: Path) -> None:
    section = "warehouse:\n  backend: ducklake\n  catalog: sqlite:lake/cat.sqlite\n  data_path: lake/data\n"
    config = load_config(_config(tmp_path, section))
    lake = open_warehouse(config.warehouse, tmp_path)
    assert isinstance(lake, LakeWarehouse)
    assert (lake.catalog, lake.data_path) == (f"sqlite:{tmp_path}/lake/cat.sqlite", f"{tmp_path}/lake/data/")
    assert lake.location == f"ducklake:sqlite:{tmp_path}/lake/cat.sqlite"
    assert lake.local_dir == tmp_path
    with pytest.raises(ConfigError, match="no DuckDB file"):
        config.warehouse_path(tmp_path)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "warehouse:\n  backend: ducklake\n  catalog: sqlite:c.sqlite\n",
            "needs both `catalog` and `data_path`",
        ),
        (
            "warehouse:\n  backend: ducklake\n  catalog: postgres:host=db password=hunter2\n  data_path: d\n",
            "PGPASSWORD",
        ),
        (
            "warehouse:\n  backend: ducklake\n  catalog: mysql:db\n  data_path: d\n",
            "sqlite:<file> or postgres",
        ),
        ("warehouse:\n  catalog: sqlite:c.sqlite\n", "are for backend ducklake"),
        ("warehouse:\n  backend: lake\n", "backend"),
        ("warehouse:\n  backend: ducklake\n  catalog: sqlite:c\n  data_path: s3://b/x\n", "httpfs"),
        ("warehouse:\n  path: w.duckdb\n  dsn: x\n", "dsn"),
    ],
)
def test_bad_warehouse_sections_name_file_line_and_key(tmp_path: Path, section: str, message: str) -> None:
    path = _config(tmp_path, section)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert re.match(rf"{re.escape(str(path))}:[2-5]: warehouse", str(caught.value)), caught.value
    assert "hunter2" not in str(caught.value)


def test_keyless_ddl_removes_every_key_and_nothing_else() -> None:
    for version, name, sql in available_migrations():
        stripped = keyless_ddl(sql)
        code = "\n".join(line.split("--", 1)[0] for line in stripped.splitlines())
        assert "PRIMARY KEY" not in code.upper(), (version, name)
        assert stripped.count("CREATE") == sql.count("CREATE"), (version, name)
    assert keyless_ddl("CREATE TABLE t (a INT PRIMARY KEY, b INT)") == "CREATE TABLE t (a INT, b INT)"
    assert keyless_ddl("CREATE TABLE t (\n a INT, -- x\n PRIMARY KEY (a)\n)") == "CREATE TABLE t (\n a INT\n)"
    for refused in ("CREATE TABLE t (a INT UNIQUE)", "CREATE INDEX i ON t (a)"):
        with pytest.raises(RuntimeError, match="DuckLake lacks"):
            keyless_ddl(refused)


def _lake(tmp_path: Path) -> LakeWarehouse:
    return LakeWarehouse(f"sqlite:{tmp_path}/lake/catalog.sqlite", f"{tmp_path}/lake/data/")


@pytest.fixture(params=["duckdb", "ducklake"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "duckdb":
        return Warehouse(tmp_path / "w.duckdb")
    request.getfixturevalue("lake_extensions")
    return _lake(tmp_path)


def test_keyed_writes_ignore_keeps_first_and_replace_keeps_last(warehouse: Warehouse) -> None:
    columns = ["workload_id", "interaction_id", "label", "import_id", "source_ref", "imported_at"]

    def row(i: str, label: str) -> tuple[Any, ...]:
        return ("w", i, label, "imp", f"f:{i}", "2026-01-01 00:00:00")

    def write(rows: list[tuple[Any, ...]], replace: bool) -> int:
        key = ["workload_id", "interaction_id"]
        return warehouse.write(lambda con: insert_rows(con, "gold_labels", columns, rows, key, replace))

    assert write([row("a", "first"), row("b", "b"), row("a", "second")], replace=False) == 2
    assert write([row("a", "third"), row("c", "c")], replace=False) == 1
    assert _labels(warehouse) == {"a": "first", "b": "b", "c": "c"}
    assert write([row("a", "x"), row("a", "y"), row("d", "d")], replace=True) == 2
    assert _labels(warehouse) == {"a": "y", "b": "b", "c": "c", "d": "d"}
    assert write([], replace=True) == 0


def _labels(warehouse: Warehouse) -> dict[str, str]:
    rows = warehouse.read(lambda con: con.execute("SELECT interaction_id, label FROM gold_labels").fetchall())
    assert len(rows) == len({r[0] for r in rows}), rows  # no key was written twice
    return dict(rows)


def _schema(warehouse: Warehouse) -> dict[str, Any]:
    def read(con: Any) -> dict[str, Any]:
        columns = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY table_name, column_index"
        ).fetchall()
        macros = con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE database_name = current_database() "
            "AND function_type = 'table_macro' ORDER BY 1"
        ).fetchall()
        versions = con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        return {"columns": columns, "macros": macros, "versions": versions}

    warehouse.ensure_schema()
    return warehouse.read(read)


def test_lake_gets_the_same_tables_views_and_macros(tmp_path: Path, lake_extensions: None) -> None:
    file_schema, lake_schema = _schema(Warehouse(tmp_path / "w.duckdb")), _schema(_lake(tmp_path))
    assert lake_schema == file_schema
    assert len(file_schema["versions"]) == len(available_migrations())
    assert ("headline",) in lake_schema["macros"]
    again = _lake(tmp_path)
    again.ensure_schema()  # a second process finds every migration recorded and applies none
    assert _schema(again)["versions"] == file_schema["versions"]


def test_missing_lake_reads_as_missing_without_creating_it(tmp_path: Path, lake_extensions: None) -> None:
    lake = _lake(tmp_path)
    assert not lake.exists()
    with pytest.raises(FileNotFoundError, match=r"ducklake:sqlite:.*no warehouse yet"):
        lake.read(lambda con: con.execute("SELECT 1").fetchall())
    assert not lake.path.exists()


def test_reader_opens_an_existing_lake_by_location_alone(tmp_path: Path, lake_extensions: None) -> None:
    """The dashboard gets only FLYWHEEL_WAREHOUSE: the catalog recorded where the data lives."""
    lake = _lake(tmp_path)
    lake.write(lambda con: con.execute("CREATE TABLE t AS SELECT range AS x FROM range(5000)"))
    reader = warehouse_at(lake.location, timeout_s=5)
    assert isinstance(reader, LakeWarehouse) and reader.data_path is None
    assert reader.read(lambda con: con.execute("SELECT sum(x) FROM t").fetchone()[0]) == sum(range(5000))
    assert list((tmp_path / "lake/data").rglob("*.parquet")), "rows past the inlining limit become Parquet"


WRITER = """
import sys
from flywheel.store.lake import LakeWarehouse
lake = LakeWarehouse(sys.argv[1], sys.argv[2])
for i in range(int(sys.argv[4])):
    lake.write(lambda con: con.execute(
        "INSERT INTO ingest_batches VALUES (?, 'w', 'test', 'p', 1, 1, 0, 0, now(), now())",
        [f"{sys.argv[3]}-{i}"],
    ))
"""


def test_many_processes_write_one_postgres_lake_at_once(
    tmp_path: Path, postgres: Any, lake_extensions: None
) -> None:
    """What the file cannot do: three writer processes at the same time, none waiting on a lock. The
    lake is new, so they also race to initialise and migrate it: the losers retry and find it done."""
    catalog, data = f"postgres:{postgres('concurrent')}", f"{tmp_path}/data/"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, catalog, data, name, "15"], env=env, stderr=subprocess.PIPE
        )
        for name in ("a", "b", "c")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    count = LakeWarehouse(catalog, data).read(
        lambda con: con.execute("SELECT count(DISTINCT batch_id), count(*) FROM ingest_batches").fetchone()
    )
    assert count == (45, 45)
    versions = LakeWarehouse(catalog, data).read(
        lambda con: con.execute("SELECT count(*), count(DISTINCT version) FROM schema_migrations").fetchone()
    )
    assert versions == (len(available_migrations()),) * 2


def test_dashboard_reads_the_lake_the_cli_names(
    tmp_path: Path, lake_extensions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flywheel dashboard` sets FLYWHEEL_WAREHOUSE to the warehouse's location; for a lake that is
    `ducklake:<catalog>`, and the dashboard's views read through it."""
    from dashboards import data

    lake = _lake(tmp_path)
    lake.ensure_schema()
    monkeypatch.setenv("FLYWHEEL_WAREHOUSE", lake.location)
    data.clear_cache()
    view = data.load("v_savings_summary")
    assert view.problem is None and view.frame.empty  # the view exists; no traffic yet
    monkeypatch.setenv("FLYWHEEL_WAREHOUSE", f"ducklake:sqlite:{tmp_path}/missing.sqlite")
    data.clear_cache()
    assert "no warehouse" in str(data.load("v_savings_summary").problem).lower()
