"""Label run bookkeeping: the report a run returns and its `label_runs` row."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flywheel.records import Example, canonical_dumps, utcnow
from flywheel.store.keyed import insert_rows
from flywheel.teacher.labels import Label

RUN_COLUMNS = (
    "run_id",
    "workload_id",
    "mode",
    "started_at",
    "finished_at",
    "labeled",
    "cached",
    "calls",
    "failed",
    "cost_usd",
    "stopped_reason",
)


@dataclass
class LabelReport:
    """What a label run did. cost_usd is new spending in this run (cached answers cost nothing now)."""

    run_id: str
    workload_id: str
    mode: str
    labeled: int = 0
    cached: int = 0  # items labeled without any new call
    calls: int = 0  # paid teacher calls made
    failed: int = 0
    skipped: int = 0  # not attempted because the budget ran out
    duplicates: int = 0  # synthesized inputs dropped as (near-)duplicates of existing data
    cost_usd: float = 0.0
    stopped_reason: str = "completed"  # completed | budget | interrupted | error
    failures: Counter[str] = field(default_factory=Counter)
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    labels: list[Label] = field(default_factory=list, repr=False)

    @property
    def seconds(self) -> float:
        end = self.finished_at or utcnow()
        return round((end - self.started_at).total_seconds(), 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workload_id": self.workload_id,
            "mode": self.mode,
            "labeled": self.labeled,
            "cached": self.cached,
            "calls": self.calls,
            "failed": self.failed,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "cost_usd": round(self.cost_usd, 8),
            "stopped_reason": self.stopped_reason,
            "failures": dict(self.failures),
            "seconds": self.seconds,
        }

    def run_row(self) -> dict[str, Any]:
        values = {**self.as_dict(), "started_at": self.started_at, "finished_at": self.finished_at}
        return {name: values[name] for name in RUN_COLUMNS}

    def merge(self, other: LabelReport) -> None:
        for name in ("labeled", "cached", "calls", "failed", "skipped", "duplicates", "cost_usd"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)
        self.labels.extend(other.labels)
        if other.stopped_reason != "completed":
            self.stopped_reason = other.stopped_reason


def upsert_run(con: Any, report: LabelReport) -> None:
    row = report.run_row()
    insert_rows(con, "label_runs", RUN_COLUMNS, [[row[c] for c in RUN_COLUMNS]], key=["run_id"], replace=True)


def quarantine_row(example: Example, reason: str, detail: str, run_id: str) -> dict[str, Any]:
    """A failed item, kept with its reason (stage 'label'); re-failing the same way adds nothing."""
    raw = canonical_dumps(example.messages).decode()
    return {
        "id": hashlib.sha256(f"{example.example_id}\x00{reason}\x00label".encode()).hexdigest(),
        "raw": raw,
        "source": "teacher",
        "source_ref": example.example_id,
        "stage": "label",
        "reason": reason,
        "detail": detail[:1000],
        "workload_id": example.workload_id,
        "batch_id": run_id,
        "quarantined_at": utcnow(),
    }


def new_run_id(workload_id: str, mode: str) -> str:
    return f"{workload_id}-{mode}-{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
