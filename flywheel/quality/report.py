"""What `flywheel quality` shows: the latest run's funnel, GE results, PII and slices, or its rejects.

Rejected rows are shown PII-scrubbed: the raw text stays in `interactions`, but nothing printed or
returned by a command leaks it.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from flywheel.quality.pii import scrub
from flywheel.records import message_text

RECENT_BATCHES = 5


def latest_run(con: duckdb.DuckDBPyConnection, workload_id: str) -> tuple[str, str | None, dict[str, Any]]:
    row = con.execute(
        "SELECT run_id, snapshot_id, funnel FROM curation_runs WHERE workload_id = ? "
        "ORDER BY finished_at DESC LIMIT 1",
        [workload_id],
    ).fetchall()
    if not row:
        raise LookupError(f"no curation run for {workload_id}")
    return row[0][0], row[0][1], orjson.loads(row[0][2])


def quality_summary(con: duckdb.DuckDBPyConnection, workload_id: str) -> dict[str, Any]:
    run_id, snapshot_id, funnel = latest_run(con, workload_id)
    expectations = con.execute(
        'SELECT batch_id, suite, expectation, column_name, success, unexpected_count, element_count, "at" '
        "FROM quality_results WHERE workload_id = ? AND batch_id IN ("
        "  SELECT batch_id FROM quality_results WHERE workload_id = ? GROUP BY batch_id"
        '  ORDER BY max("at") DESC LIMIT ?) ORDER BY "at", batch_id, expectation, column_name',
        [workload_id, workload_id, RECENT_BATCHES],
    ).fetchall()
    keys = (
        "batch_id",
        "suite",
        "expectation",
        "column",
        "success",
        "unexpected_count",
        "element_count",
        "at",
    )
    pii = con.execute(
        "SELECT pii_type, n FROM pii_counts WHERE run_id = ? ORDER BY n DESC, pii_type", [run_id]
    ).fetchall()
    slices = con.execute(
        "SELECT slice_kind, slice, n_before, n_after, share_before, share_after, rare FROM slice_stats "
        "WHERE run_id = ? ORDER BY slice_kind, n_before DESC, slice",
        [run_id],
    ).fetchall()
    slice_keys = ("slice_kind", "slice", "n_before", "n_after", "share_before", "share_after", "rare")
    report = _run_report(con, run_id)
    return {
        "workload_id": workload_id,
        "run_id": run_id,
        "snapshot_id": snapshot_id,
        "funnel": funnel,
        "expectations": [dict(zip(keys, row, strict=True)) for row in expectations],
        "failed_expectations": sum(1 for row in expectations if row[4] is False),
        "pii": {kind: n for kind, n in pii},
        "slices": [dict(zip(slice_keys, row, strict=True)) for row in slices],
        "slice_warnings": (report.get("slices") or {}).get("warnings", []),
        "dedup": report.get("dedup", {}),
        "dedup_calibration": report.get("dedup_calibration", []),
    }


def _run_report(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    row = con.execute("SELECT report FROM curation_runs WHERE run_id = ?", [run_id]).fetchone()
    return orjson.loads(row[0]) if row and row[0] else {}


def rejected_rows(
    con: duckdb.DuckDBPyConnection, workload_id: str, reason: str, limit: int
) -> dict[str, Any]:
    """The latest run's rows rejected for `reason`, with where they came from and why."""
    run_id, _, funnel = latest_run(con, workload_id)
    count = con.execute(
        "SELECT count(*) FROM curation_verdicts WHERE run_id = ? AND reason = ?", [run_id, reason]
    ).fetchall()[0][0]
    records = con.execute(
        "SELECT v.interaction_id, i.source_ref, v.detail, v.dup_group, i.client_id, i.request, i.response "
        "FROM curation_verdicts v JOIN interactions i "
        "ON i.id = v.interaction_id AND i.workload_id = v.workload_id "
        "WHERE v.run_id = ? AND v.reason = ? ORDER BY i.ingested_at, i.source_ref LIMIT ?",
        [run_id, reason, limit],
    ).fetchall()
    rows = []
    for interaction_id, source_ref, detail, dup_group, client_id, request, response in records:
        rows.append(
            {
                "interaction_id": interaction_id,
                "source_ref": source_ref,
                "reason": reason,
                "detail": detail,
                "dup_group": dup_group,
                "client_id": client_id,
                "input": _input_text(orjson.loads(request)),
                "answer": _answer_text(orjson.loads(response)),
            }
        )
    return {
        "workload_id": workload_id,
        "run_id": run_id,
        "reason": reason,
        "count": count,
        "reasons": funnel.get("rejected", {}),
        "rows": rows,
    }


def _input_text(request: dict[str, Any]) -> str:
    messages = [m for m in request.get("messages") or [] if m.get("role") not in ("system", "developer")]
    return scrub(message_text(messages[-1]) if messages else "")[0]


def _answer_text(response: dict[str, Any]) -> str | None:
    if "error" in response:
        error = response["error"]
        return f"error: {error.get('message', error) if isinstance(error, dict) else error}"[:300]
    message = response.get("message") or {}
    text = message_text(message) or message.get("refusal") or ""
    calls = message.get("tool_calls")
    if calls:
        text += " " + orjson.dumps([c.get("function") for c in calls]).decode()
    return scrub(text.strip())[0] or None
