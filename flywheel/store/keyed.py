"""Keyed writes that need no PRIMARY KEY: INSERT OR IGNORE and INSERT OR REPLACE as plain SQL.

DuckLake has no key constraints, so `INSERT OR IGNORE`, `INSERT OR REPLACE` and `ON CONFLICT` fail
there. These helpers stage the rows in a temporary table and anti-join (ignore: first row of a key
wins, as row-by-row OR IGNORE does) or delete-then-insert (replace: last row wins), which runs the
same on a DuckDB file and on a lake. Callers are inside one write transaction, so a failure leaves
the table as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

STAGED = "keyed_staged"


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    key: Sequence[str],
    replace: bool = False,
) -> int:
    """Insert `rows` (tuples in `columns` order) keyed by `key`; returns how many rows were written."""
    if not rows:
        return 0
    names = _names(columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} AS SELECT {names} FROM {table} LIMIT 0")
    try:
        con.executemany(f"INSERT INTO {STAGED} VALUES ({', '.join('?' for _ in columns)})", rows)
        return _merge(con, table, names, key, replace)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {STAGED}")


def insert_from(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    source: str,
    key: Sequence[str],
    replace: bool = False,
) -> int:
    """As insert_rows, from a relation the connection can name (e.g. a registered Arrow table)."""
    names = _names(columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} AS SELECT {names} FROM {source}")
    try:
        return _merge(con, table, names, key, replace)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {STAGED}")


def _merge(con: duckdb.DuckDBPyConnection, table: str, names: str, key: Sequence[str], replace: bool) -> int:
    match = " AND ".join(f't."{k}" IS NOT DISTINCT FROM s."{k}"' for k in key)
    # rowid is the staging order: the first row of a key wins for ignore, the last for replace.
    order = "DESC" if replace else "ASC"
    partition = ", ".join(f'"{k}"' for k in key)
    if replace:
        con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM {STAGED} s WHERE {match})")
        fresh = ""
    else:
        fresh = f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})"
    written = con.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {STAGED} s {fresh} "
        f"QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY rowid {order}) = 1"
    ).fetchone()
    return int(written[0]) if written else 0


def _names(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)  # quoted: cost_ledger has a column "at"
