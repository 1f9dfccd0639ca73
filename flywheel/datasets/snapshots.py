"""Versioned dataset snapshots in the warehouse: write, find identical, reuse eval, load examples.

A snapshot is `<workload>.v<N>` plus its examples (snapshot_examples) and two hashes: the content hash
covers every example and its split (same inputs and config -> same hash, so an identical re-run
reuses the snapshot instead of adding a version), and the config hash covers the workload settings
curation depends on. `eval_snapshot_id` names the snapshot that holds the current eval split: each
curation carries every eval row forward and adds the eval share of rows never judged before (see
`flywheel.curate._eval_split`), so the split grows with the data, stays free of anything a model could
have trained on, and champion and candidates are always scored on the same, latest split.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from flywheel.config import WorkloadConfig
from flywheel.records import Example, canonical_dumps
from flywheel.store.db import NoSnapshot, Warehouse

SPLITS = ("train", "val", "eval")
EXAMPLE_SCHEMA = pa.schema(
    [
        ("snapshot_id", pa.string()),
        ("split", pa.string()),
        ("example_id", pa.string()),
        ("interaction_id", pa.string()),
        ("workload_id", pa.string()),
        ("messages", pa.string()),
        ("target", pa.string()),
        ("label", pa.string()),
        ("gold", pa.string()),
        ("slice", pa.string()),
        ("client_id", pa.string()),
        ("dup_group", pa.string()),
        ("tools", pa.string()),
        ("response_format", pa.string()),
        ("synthetic", pa.bool_()),
        ("weight", pa.float64()),
    ]
)
CURATION_KEYS = ("task", "labels", "json_schema", "tools", "label_parser", "curation")



@dataclass(slots=True)
class SnapshotRow:
    """An Example plus the columns only the snapshot table keeps."""

    example: Example
    client_id: str | None = None
    dup_group: str | None = None

    def values(self) -> tuple[Any, ...]:
        e = self.example
        return (
            e.split,
            e.example_id,
            e.interaction_id,
            e.workload_id,
            _json(e.messages),
            _json(e.target),
            e.label,
            e.gold,
            e.slice,
            self.client_id,
            self.dup_group,
            _json(e.tools),
            _json(e.response_format),
            e.synthetic,
            e.weight,
        )


@dataclass(slots=True)
class SnapshotInfo:
    snapshot_id: str
    workload_id: str
    content_hash: str
    config_hash: str
    eval_snapshot_id: str
    created_at: datetime
    n_train: int
    n_val: int
    n_eval: int
    export_path: str | None


def content_hash(rows: Iterable[SnapshotRow]) -> str:
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: (r.example.split or "", r.example.example_id)):
        values = list(row.values())
        if values[-1] == 1.0:  # the usual weight is left out: hashes stay those of snapshots before it
            values.pop()
        digest.update(canonical_dumps(values))
        digest.update(b"\n")
    return digest.hexdigest()


def config_hash(workload: WorkloadConfig) -> str:
    settings = workload.model_dump(mode="json", include=set(CURATION_KEYS))
    return hashlib.sha256(canonical_dumps(settings)).hexdigest()


def find_identical(
    con: duckdb.DuckDBPyConnection, workload_id: str, content: str, config: str
) -> SnapshotInfo | None:
    return _one_snapshot(
        con,
        "WHERE workload_id = ? AND content_hash = ? AND config_hash = ? ORDER BY created_at LIMIT 1",
        [workload_id, content, config],
    )


def snapshot_info(con: duckdb.DuckDBPyConnection, snapshot_id: str) -> SnapshotInfo | None:
    return _one_snapshot(con, "WHERE snapshot_id = ?", [snapshot_id])


def _one_snapshot(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> SnapshotInfo | None:
    row = con.execute(
        "SELECT snapshot_id, workload_id, content_hash, config_hash, eval_snapshot_id, created_at, "
        f"n_train, n_val, n_eval, export_path FROM dataset_snapshots {where}",
        params,
    ).fetchall()
    return SnapshotInfo(*row[0]) if row else None


def next_snapshot_id(con: duckdb.DuckDBPyConnection, workload_id: str) -> str:
    ids = con.execute(
        "SELECT snapshot_id FROM dataset_snapshots WHERE workload_id = ?", [workload_id]
    ).fetchall()
    versions = [int(m.group(1)) for (sid,) in ids if (m := re.search(r"\.v(\d+)$", sid))]
    return f"{workload_id}.v{max(versions, default=0) + 1}"


def latest_snapshot(con: duckdb.DuckDBPyConnection, workload_id: str) -> str | None:
    """The snapshot of the workload's latest curation run (an identical re-run may point back)."""
    row = con.execute(
        "SELECT snapshot_id FROM curation_runs WHERE workload_id = ? AND snapshot_id IS NOT NULL "
        "ORDER BY finished_at DESC LIMIT 1",
        [workload_id],
    ).fetchall()
    if not row:
        row = con.execute(
            "SELECT snapshot_id FROM dataset_snapshots WHERE workload_id = ? "
            "ORDER BY created_at DESC LIMIT 1",
            [workload_id],
        ).fetchall()
    return row[0][0] if row else None


def read_rows(
    con: duckdb.DuckDBPyConnection, snapshot_id: str, splits: Iterable[str] = SPLITS
) -> list[SnapshotRow]:
    wanted = list(splits)
    records = con.execute(
        "SELECT split, example_id, interaction_id, workload_id, messages, target, label, gold, slice, "
        "client_id, dup_group, tools, response_format, synthetic, weight FROM snapshot_examples "
        "WHERE snapshot_id = ? AND list_contains(?, split) ORDER BY split, example_id",
        [snapshot_id, wanted],
    ).fetchall()
    order = {name: i for i, name in enumerate(SPLITS)}
    rows = [_row(record) for record in records]
    rows.sort(key=lambda r: (order.get(r.example.split or "", 9), r.example.example_id))
    return rows


def _row(record: tuple[Any, ...]) -> SnapshotRow:
    (split, example_id, interaction_id, workload_id, messages, target, label, gold, slice_name, client_id,
     dup_group, tools, response_format, synthetic, weight) = record  # fmt: skip
    example = Example(
        example_id=example_id,
        workload_id=workload_id,
        messages=orjson.loads(messages),
        target=orjson.loads(target),
        label=label,
        gold=gold,
        slice=slice_name,
        split=split,
        tools=orjson.loads(tools) if tools else None,
        response_format=orjson.loads(response_format) if response_format else None,
        interaction_id=interaction_id,
        synthetic=bool(synthetic),
        weight=1.0 if weight is None else weight,
    )
    return SnapshotRow(example, client_id, dup_group)


def write_snapshot(con: duckdb.DuckDBPyConnection, info: SnapshotInfo, rows: list[SnapshotRow]) -> None:
    """Insert the snapshot and its examples (the caller's transaction makes it all-or-nothing)."""
    con.execute(
        "INSERT INTO dataset_snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            info.snapshot_id,
            info.workload_id,
            info.content_hash,
            info.config_hash,
            info.eval_snapshot_id,
            info.created_at,
            info.n_train,
            info.n_val,
            info.n_eval,
            info.export_path,
        ],
    )
    columns: list[list[Any]] = [[] for _ in EXAMPLE_SCHEMA.names]
    for row in rows:
        for column, value in zip(columns, (info.snapshot_id, *row.values()), strict=True):
            column.append(value)
    table = pa.Table.from_arrays([pa.array(c, t.type) for c, t in zip(columns, EXAMPLE_SCHEMA, strict=True)],
                                 schema=EXAMPLE_SCHEMA)  # fmt: skip
    con.register("new_snapshot_examples", table)
    try:
        con.execute("INSERT INTO snapshot_examples SELECT * FROM new_snapshot_examples")
    finally:
        con.unregister("new_snapshot_examples")


def latest_snapshot_id(warehouse: Warehouse, workload_id: str) -> str | None:
    """The workload's current snapshot id, or None when it was never curated."""
    try:
        return warehouse.read(lambda con: latest_snapshot(con, workload_id))
    except (FileNotFoundError, duckdb.CatalogException):
        return None


def load_examples(
    warehouse: Warehouse,
    workload_id: str,
    snapshot_id: str | None = None,
    splits: Iterable[str] = SPLITS,
) -> list[Example]:
    """The examples of a snapshot (the latest when None), ordered by split then example id."""
    snapshot_id = snapshot_id or latest_snapshot_id(warehouse, workload_id)
    if snapshot_id is None:
        raise NoSnapshot(f"no snapshot for {workload_id}: run `flywheel curate --workload {workload_id}`")
    wanted = tuple(splits)
    rows = warehouse.read(lambda con: read_rows(con, snapshot_id, wanted))
    if not rows:
        known = warehouse.read(lambda con: snapshot_info(con, snapshot_id))
        if known is None:
            raise LookupError(f"no snapshot {snapshot_id!r} for {workload_id}")
    return [row.example for row in rows]


def _json(value: Any) -> str | None:
    return None if value is None else canonical_dumps(value).decode()
