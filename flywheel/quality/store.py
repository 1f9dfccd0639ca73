"""Curation's reads and writes: one read of everything a run needs, one transaction for its results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
import pyarrow as pa

from flywheel.datasets.snapshots import (
    SnapshotInfo,
    SnapshotRow,
    latest_snapshot,
    next_snapshot_id,
    read_rows,
    snapshot_info,
    write_snapshot,
)
from flywheel.quality.pruning import PromptTemplate, save_template
from flywheel.quality.rows import CurationRow
from flywheel.records import utcnow

if TYPE_CHECKING:
    from flywheel.curate import CurationReport
    from flywheel.quality.expectations import ExpectationResult

VERDICT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("interaction_id", pa.string()),
        ("workload_id", pa.string()),
        ("keep", pa.bool_()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("dup_group", pa.string()),
    ]
)


@dataclass
class CurationState:
    """What a curation run reads from the warehouse before computing anything (the rows themselves are
    read and prepared chunk by chunk: `flywheel.quality.stream`)."""

    validated_batches: set[str]
    quarantined: int
    next_snapshot_id: str
    snapshots: dict[tuple[str, str], SnapshotInfo] = field(default_factory=dict)
    eval_snapshot_id: str | None = None
    eval_rows: list[SnapshotRow] | None = None
    seen_ids: set[str] = field(default_factory=set)  # interactions an earlier snapshot's run judged

    def find_identical(self, content: str, config: str) -> SnapshotInfo | None:
        return self.snapshots.get((content, config))


def read_state(con: duckdb.DuckDBPyConnection, workload_id: str, refresh_eval: bool) -> CurationState:
    validated = con.execute(
        "SELECT DISTINCT batch_id FROM quality_results WHERE workload_id = ? AND batch_id IS NOT NULL",
        [workload_id],
    ).fetchall()
    quarantined = con.execute(
        "SELECT count(*) FROM quarantine WHERE workload_id = ?", [workload_id]
    ).fetchall()
    state = CurationState(
        validated_batches={batch for (batch,) in validated},
        quarantined=int(quarantined[0][0]),
        next_snapshot_id=next_snapshot_id(con, workload_id),
    )
    ids = con.execute(
        "SELECT snapshot_id FROM dataset_snapshots WHERE workload_id = ? ORDER BY created_at", [workload_id]
    ).fetchall()
    for (snapshot_id,) in ids:
        info = snapshot_info(con, snapshot_id)
        if info is not None:
            state.snapshots.setdefault((info.content_hash, info.config_hash), info)
    latest = latest_snapshot(con, workload_id)
    if latest is not None and not refresh_eval:
        info = snapshot_info(con, latest)
        if info is not None:
            state.eval_snapshot_id = info.eval_snapshot_id
            state.eval_rows = read_rows(con, info.eval_snapshot_id, ["eval"])
            state.seen_ids = seen_interactions(con, workload_id, latest)
    return state


def seen_interactions(con: duckdb.DuckDBPyConnection, workload_id: str, snapshot_id: str) -> set[str]:
    """Every interaction the latest run that wrote or reused a snapshot judged, plus that snapshot's
    members: rows a model trained on an earlier snapshot may have seen, so never fresh eval rows."""
    rows = con.execute(
        """
        SELECT interaction_id FROM curation_verdicts WHERE run_id = (
            SELECT run_id FROM curation_runs WHERE workload_id = ? AND snapshot_id IS NOT NULL
            ORDER BY finished_at DESC LIMIT 1)
        UNION
        SELECT interaction_id FROM snapshot_examples WHERE snapshot_id = ? AND interaction_id IS NOT NULL
        """,
        [workload_id, snapshot_id],
    ).fetchall()
    return {interaction_id for (interaction_id,) in rows}


def write_results(
    con: duckdb.DuckDBPyConnection,
    report: CurationReport,
    snapshot: SnapshotInfo | None,
    snapshot_rows: list[SnapshotRow],
    rows: list[CurationRow],
    template: PromptTemplate | None,
    quality: list[ExpectationResult],
    slice_stats: list[dict[str, Any]],
    started: datetime,
) -> None:
    """Everything a run produced, inside the caller's single write transaction."""
    run_id, workload_id = report.run_id, report.workload_id
    if template is not None:
        save_template(con, template)
    if snapshot is not None:
        write_snapshot(con, snapshot, snapshot_rows)
    con.execute(
        "INSERT INTO curation_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            workload_id,
            report.snapshot_id,
            started,
            utcnow(),
            report.n_in,
            report.n_out,
            orjson.dumps(report.funnel()).decode(),
            orjson.dumps(report.as_dict(), default=str).decode(),
        ],
    )
    _insert_verdicts(con, run_id, workload_id, rows)
    now = utcnow()
    if quality:
        con.executemany(
            "INSERT INTO quality_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [run_id, workload_id, q.suite, q.expectation, q.column, q.success, q.unexpected_count,
                 q.element_count, now, q.batch_id]
                for q in quality
            ],
        )  # fmt: skip
    if report.pii:
        con.executemany(
            "INSERT INTO pii_counts VALUES (?, ?, ?, ?)",
            [[run_id, workload_id, kind, n] for kind, n in sorted(report.pii.items())],
        )
    if slice_stats:
        con.executemany(
            "INSERT INTO slice_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [run_id, workload_id, report.snapshot_id, s["slice_kind"], s["slice"], s["n_before"],
                 s["n_after"], s["share_before"], s["share_after"], s["rare"]]
                for s in slice_stats
            ],
        )  # fmt: skip


def _insert_verdicts(
    con: duckdb.DuckDBPyConnection, run_id: str, workload_id: str, rows: list[CurationRow]
) -> None:
    columns = {
        "run_id": [run_id] * len(rows),
        "interaction_id": [row.interaction_id for row in rows],
        "workload_id": [workload_id] * len(rows),
        "keep": [row.kept for row in rows],
        "reason": [row.reason for row in rows],
        "detail": [row.detail or None for row in rows],
        "dup_group": [row.dup_group for row in rows],
    }
    con.register("new_verdicts", pa.table(columns, schema=VERDICT_SCHEMA))
    try:
        con.execute("INSERT INTO curation_verdicts SELECT * FROM new_verdicts")
    finally:
        con.unregister("new_verdicts")
