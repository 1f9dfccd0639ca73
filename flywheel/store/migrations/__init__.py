"""Versioned schema migrations: `NNNN_name.sql` files in this package, applied in order, once.

Each stage adds its own numbered file; `schema_migrations` records what ran, so upgrading a warehouse
is running the files it has not seen. A migration runs inside one transaction.

DuckLake has no PRIMARY KEY (or UNIQUE) constraints and refuses tables that declare one, so on a
keyless backend the same files run with their key clauses removed (`keyless_ddl`); everything else
(views, table macros, defaults, ALTER TABLE) runs unchanged. Writers never rely on a key to drop
duplicates: they anti-join (flywheel.store.keyed), so the keys are documentation plus a safety net on
a DuckDB file.
"""

from __future__ import annotations

import re
from importlib import resources

import duckdb

MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# `, PRIMARY KEY (a, b)`, perhaps with a comment between the comma and the clause
TABLE_KEY_RE = re.compile(r",(?:\s*--[^\n]*)*\s*PRIMARY\s+KEY\s*\([^)]*\)", re.IGNORECASE)
COLUMN_KEY_RE = re.compile(r"\s+PRIMARY\s+KEY\b", re.IGNORECASE)  # `id VARCHAR PRIMARY KEY`
RECORDED_SQL = "SELECT count(*) FROM schema_migrations WHERE version = ?"
UNDROPPABLE_RE = re.compile(r"\bUNIQUE\b|\bCREATE\s+INDEX\b", re.IGNORECASE)


def keyless_ddl(sql: str) -> str:
    """The migration without key clauses, for DuckLake; fails loudly on a constraint it cannot drop."""
    stripped = COLUMN_KEY_RE.sub("", TABLE_KEY_RE.sub("", sql))
    code = "\n".join(line.split("--", 1)[0] for line in stripped.splitlines())
    if UNDROPPABLE_RE.search(code):
        raise RuntimeError("a migration declares UNIQUE or an index, which DuckLake lacks: use an anti-join")
    return stripped


def available_migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files(__package__).iterdir():
        match = MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a version number: {sorted(versions)}")
    return sorted(found)


def migrate(con: duckdb.DuckDBPyConnection, keyless: bool = False) -> list[int]:
    """Apply every migration the database has not recorded; returns the versions applied.

    keyless: the backend refuses key constraints (DuckLake), so they are removed first."""
    ddl = keyless_ddl if keyless else str
    con.execute(
        ddl(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
            "applied_at TIMESTAMP DEFAULT current_timestamp)"
        )
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in available_migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            # Checked again inside the transaction: another process sharing a lake may have applied it
            # since `done` was read (a DuckDB file's lock rules that out; a DuckLake has none).
            if con.execute(RECORDED_SQL, [version]).fetchone()[0]:
                con.execute("ROLLBACK")
                continue
            con.execute(ddl(sql))
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")  # a failed COMMIT (a lake's conflict) ended the transaction: no ROLLBACK
        applied.append(version)
    return applied
