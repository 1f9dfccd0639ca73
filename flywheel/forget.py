"""Forget interactions (a privacy request's answer): the rows and everything derived from them.

Selection (one of): every interaction of a source file (`source_ref` is `<file>:<line>`), a list of
interaction ids, or everything logged before a date (a call without a timestamp counts by its
ingestion time). Deleted in one write transaction: interactions, curation verdicts, snapshot
examples (by interaction and example id), labels, gold labels, and the quarantine rows of that source
file (with --before: the workload's quarantine rows from before the date). The export folders of
every snapshot that held a forgotten example are removed and their `export_path` cleared; the report
lists those snapshots, and the next `flywheel curate` builds a new snapshot (the content hash
changes, so none is reused). The workload's near-duplicate index (hashes and MinHash signatures of
its texts, beside the warehouse) is removed too; the next curate rebuilds it. Models trained on
those snapshots are listed: retrain them.

Idempotent: a second identical request finds nothing and reports zeros.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from flywheel.quality.dedup_index import index_path
from flywheel.store.db import Warehouse

IDS_TABLE = "forget_ids"


@dataclass(slots=True)
class ForgetRequest:
    workload_id: str
    source: str | None = None
    ids: list[str] | None = None
    before: datetime | None = None

    def __post_init__(self) -> None:
        chosen = [x for x in (self.source, self.ids, self.before) if x is not None]
        if len(chosen) != 1:
            raise ValueError("forget needs exactly one of --source FILE, --ids FILE, --before DATE")


@dataclass(slots=True)
class ForgetReport:
    workload_id: str
    selector: str
    deleted: dict[str, int] = field(default_factory=dict)
    snapshots_affected: list[str] = field(default_factory=list)
    exports_removed: list[str] = field(default_factory=list)
    indexes_removed: list[str] = field(default_factory=list)  # derived from the texts: rebuilt by curate
    models_to_retrain: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def forget(warehouse: Warehouse, request: ForgetRequest, home: Path) -> ForgetReport:
    """Delete the selected interactions and what was derived from them; see the module docstring."""
    if not warehouse.exists():
        raise FileNotFoundError(f"{warehouse.location}: no warehouse yet (nothing to forget)")
    warehouse.ensure_schema()
    report = ForgetReport(request.workload_id, _selector(request))
    exports = warehouse.write(lambda con: _delete(con, request, report))
    for export in exports:
        path = Path(export)
        if path.exists() and _inside(path, home):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            report.exports_removed.append(str(path))
    index = index_path(home, request.workload_id)
    if report.deleted.get("interactions") and index.exists():
        index.unlink()
        report.indexes_removed.append(str(index))
    return report


def _selector(request: ForgetRequest) -> str:
    if request.source is not None:
        return f"source={request.source}"
    if request.ids is not None:
        return f"ids={len(request.ids)}"
    return f"before={request.before}"


def _delete(con: duckdb.DuckDBPyConnection, request: ForgetRequest, report: ForgetReport) -> list[str]:
    workload = request.workload_id
    _select_ids(con, request)
    snapshots = [row[0] for row in con.execute(
        f"SELECT DISTINCT snapshot_id FROM snapshot_examples WHERE workload_id = ? AND "
        f"(interaction_id IN (SELECT id FROM {IDS_TABLE}) OR example_id IN (SELECT id FROM {IDS_TABLE})) "
        "ORDER BY 1", [workload]).fetchall()]  # fmt: skip
    report.snapshots_affected = snapshots
    report.models_to_retrain = [row[0] for row in con.execute(
        "SELECT model_id FROM models WHERE workload_id = ? AND list_contains(?, snapshot_id) ORDER BY 1",
        [workload, snapshots]).fetchall()]  # fmt: skip
    exports = [row[0] for row in con.execute(
        "SELECT export_path FROM dataset_snapshots WHERE list_contains(?, snapshot_id) "
        "AND export_path IS NOT NULL", [snapshots]).fetchall()]  # fmt: skip
    in_ids = f"IN (SELECT id FROM {IDS_TABLE})"
    statements = {
        "curation_verdicts": (f"workload_id = ? AND interaction_id {in_ids}", [workload]),
        "curation_prepared": (f"workload_id = ? AND interaction_id {in_ids}", [workload]),
        "snapshot_examples": (
            f"workload_id = ? AND (interaction_id {in_ids} OR example_id {in_ids})",
            [workload],
        ),
        "labels": (f"workload_id = ? AND example_id {in_ids}", [workload]),
        "gold_labels": (f"workload_id = ? AND interaction_id {in_ids}", [workload]),
        "interactions": (f"workload_id = ? AND id {in_ids}", [workload]),
    }
    if request.source is not None:
        statements["quarantine"] = (
            "(workload_id = ? OR workload_id IS NULL) AND " + _source_match(),
            [workload, *_source_params(request)],
        )
    elif request.before is not None:
        statements["quarantine"] = ("workload_id = ? AND quarantined_at < ?", [workload, request.before])
    for table, (where, params) in statements.items():
        report.deleted[table] = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[
            0
        ]
        con.execute(f"DELETE FROM {table} WHERE {where}", params)
    if exports:
        con.execute(
            "UPDATE dataset_snapshots SET export_path = NULL WHERE list_contains(?, snapshot_id)", [snapshots]
        )
    con.execute(f"DROP TABLE {IDS_TABLE}")
    return exports


def _select_ids(con: duckdb.DuckDBPyConnection, request: ForgetRequest) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {IDS_TABLE} (id VARCHAR)")
    if request.ids is not None:
        con.execute(
            f"INSERT INTO {IDS_TABLE} SELECT id FROM interactions "
            "WHERE workload_id = ? AND list_contains(?, id)",
            [request.workload_id, request.ids],
        )
    elif request.source is not None:
        con.execute(
            f"INSERT INTO {IDS_TABLE} SELECT id FROM interactions "
            f"WHERE workload_id = ? AND {_source_match()}",
            [request.workload_id, *_source_params(request)],
        )
    else:
        con.execute(
            f"INSERT INTO {IDS_TABLE} SELECT id FROM interactions "
            "WHERE workload_id = ? AND coalesce(ts, ingested_at) < ?",
            [request.workload_id, request.before],
        )


def _source_match() -> str:
    """source_ref is `<file as given to ingest>:<line>`: the file as given, or its absolute path."""
    return "(starts_with(source_ref, ? || ':') OR starts_with(source_ref, ? || ':'))"


def _source_params(request: ForgetRequest) -> list[str]:
    source = str(request.source)
    return [source, str(Path(source).resolve())]


def _inside(path: Path, home: Path) -> bool:
    try:
        path.resolve().relative_to(home.resolve())
    except ValueError:
        return False
    return True


def read_ids(path: Path) -> list[str]:
    """Interaction ids, one per line (blank lines and `#` comments skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FileNotFoundError(f"{path}: cannot read ids: {exc}") from exc
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
