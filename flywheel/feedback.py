"""Feedback from `POST /v1/feedback` into the warehouse, joined to the calls it judges.

Each ingest reads every feedback line of `<spool>/.feedback/` (idempotent: the feedback id is the
key), then joins feedback not yet matched to its interaction: the spool line of the call has
id == request_id, kept as interactions.metadata.spool_id. A call still waiting for its shadow answer
is not in the warehouse yet, so unmatched feedback is retried by every later ingest and reported.
Matched feedback:
- sets interactions.feedback to {"score", "correction", "comment", "feedback_id"} (the latest one
  wins), which curation's negative-feedback check reads (thumbs down: score < 0);
- a correction becomes the interaction's gold label (gold_labels, as `flywheel labels import`
  writes it), so the next snapshot's gold uses it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from flywheel.config import WorkloadConfig
from flywheel.gold import GoldImport, LabelRow, label_for, store_labels
from flywheel.records import canonical_dumps, utcnow
from flywheel.store.db import Warehouse
from flywheel.store.keyed import insert_rows

FEEDBACK_VERSION = 1
SAMPLE = 20


@dataclass
class FeedbackReport:
    read: int = 0
    new: int = 0
    invalid: list[dict[str, str]] = field(default_factory=list)
    matched: int = 0
    unmatched: int = 0
    corrections: int = 0
    gold_imports: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "new": self.new,
            "invalid": len(self.invalid),
            "invalid_rows": self.invalid[:SAMPLE],
            "matched": self.matched,
            "unmatched": self.unmatched,
            "corrections": self.corrections,
            "gold_imports": self.gold_imports,
        }


def feedback_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted([*directory.glob("feedback-*.jsonl"), *directory.glob("feedback-*.jsonl.gz")])


def read_feedback(paths: list[Path], report: FeedbackReport) -> Iterator[tuple[Any, ...]]:
    """Warehouse rows (without the join) of every valid feedback line; the rest go to report.invalid."""
    from connectors.base import iter_lines, parse_json_line
    from flywheel.records import Rejected

    now = utcnow()
    for path in paths:
        for ref, line in iter_lines(path, "feedback"):
            report.read += 1
            doc = line if isinstance(line, Rejected) else parse_json_line(ref, line, "feedback")
            if isinstance(doc, Rejected):
                report.invalid.append({"ref": ref, "reason": doc.reason})
                continue
            row = _row(doc, ref, now)
            if row is None:
                report.invalid.append({"ref": ref, "reason": "wrong_schema"})
            else:
                yield row


def _row(doc: dict[str, Any], ref: str, now: datetime) -> tuple[Any, ...] | None:
    score, ts = doc.get("score"), doc.get("ts")
    if doc.get("flywheel_feedback") != FEEDBACK_VERSION or not isinstance(doc.get("id"), str):
        return None
    if not isinstance(doc.get("request_id"), str) or isinstance(score, bool):
        return None
    if not isinstance(score, int | float) or not isinstance(ts, int | float):
        return None
    correction = doc.get("correction")
    if correction is not None and not isinstance(correction, str):
        correction = canonical_dumps(correction).decode()
    received = datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
    comment = doc.get("comment") if isinstance(doc.get("comment"), str) else None
    client = doc.get("client_id") if isinstance(doc.get("client_id"), str) else None
    return (doc["id"], doc["request_id"], float(score), correction, comment, client, received, ref, now)


def ingest_feedback(
    warehouse: Warehouse, directory: Path, workloads: Mapping[str, WorkloadConfig]
) -> FeedbackReport:
    """Store new feedback lines, join unmatched feedback to interactions, apply it (feedback, gold)."""
    report = FeedbackReport()
    rows = list(read_feedback(feedback_files(directory), report))
    report.new = warehouse.write(lambda con: _insert(con, rows))
    matched = warehouse.write(_match)
    report.matched = len(matched)
    report.unmatched = warehouse.read(
        lambda con: con.execute("SELECT count(*) FROM feedback WHERE interaction_id IS NULL").fetchone()[0]
    )
    if matched:
        warehouse.write(lambda con: _apply_feedback(con, matched))
        _store_corrections(warehouse, directory, matched, workloads, report)
    return report


def _insert(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]]) -> int:
    columns = [
        "feedback_id", "request_id", "score", "correction", "comment", "client_id", "ts", "source_ref",
        "ingested_at",
    ]  # fmt: skip
    return insert_rows(con, "feedback", columns, rows, key=["feedback_id"])


def _match(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Join unmatched feedback to its call's interaction; returns the feedback ids matched now."""
    found = con.execute(
        """
        SELECT f.feedback_id, arg_min(i.id, i.ingested_at), arg_min(i.workload_id, i.ingested_at)
        FROM feedback f
        JOIN interactions i ON i.source = 'spool' AND i.metadata->>'spool_id' = f.request_id
        WHERE f.interaction_id IS NULL
        GROUP BY f.feedback_id
        """
    ).fetchall()
    if found:
        con.executemany(
            "UPDATE feedback SET interaction_id = ?, workload_id = ? WHERE feedback_id = ?",
            [(interaction, workload, fid) for fid, interaction, workload in found],
        )
    return [fid for fid, _, _ in found]


def _apply_feedback(con: duckdb.DuckDBPyConnection, feedback_ids: list[str]) -> None:
    """interactions.feedback of each touched interaction = its latest feedback."""
    latest = con.execute(
        """
        SELECT interaction_id, arg_max(feedback_id, ts), arg_max(score, ts), arg_max(correction, ts),
               arg_max(comment, ts)
        FROM feedback
        WHERE interaction_id IN (SELECT interaction_id FROM feedback WHERE list_contains(?, feedback_id))
        GROUP BY interaction_id
        """,
        [feedback_ids],
    ).fetchall()
    updates = [
        (
            orjson.dumps(
                {"score": score, "correction": correction, "comment": comment, "feedback_id": fid}
            ).decode(),
            interaction_id,
        )
        for interaction_id, fid, score, correction, comment in latest
    ]
    con.executemany("UPDATE interactions SET feedback = ? WHERE id = ?", updates)


def _store_corrections(
    warehouse: Warehouse,
    directory: Path,
    feedback_ids: list[str],
    workloads: Mapping[str, WorkloadConfig],
    report: FeedbackReport,
) -> None:
    """Each workload's newly matched corrections become gold labels (one import per workload)."""
    rows = warehouse.read(
        lambda con: con.execute(
            "SELECT workload_id, interaction_id, arg_max(correction, ts), arg_max(source_ref, ts) "
            "FROM feedback WHERE list_contains(?, feedback_id) AND correction IS NOT NULL GROUP BY ALL",
            [feedback_ids],
        ).fetchall()
    )
    by_workload: dict[str, dict[str, LabelRow]] = {}
    for workload_id, interaction_id, correction, ref in rows:
        workload = workloads.get(workload_id)
        label = label_for(correction, workload) if workload is not None else None
        if label is None:
            report.invalid.append({"ref": ref, "reason": "correction is not a label of the workload"})
            continue
        by_workload.setdefault(workload_id, {})[interaction_id] = LabelRow(interaction_id, label, ref)
    for workload_id, labels in by_workload.items():
        stamp = f"{utcnow():%Y%m%dT%H%M%S%f}"
        gold = GoldImport(f"feedback-{stamp}", workload_id, str(directory), "id", "request_id", "correction")
        gold.rows = gold.matched = len(labels)
        warehouse.write(lambda con, gold=gold, labels=labels: store_labels(con, gold, labels))
        report.corrections += len(labels)
        report.gold_imports.append(gold.import_id)
