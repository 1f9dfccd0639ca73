"""Label rows: what the teacher (or the logs, for replay) says each example's target is.

`latest_labels` gives the best label per example: relabel beats synthesize beats replay, and among
the same mode the newest wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from flywheel.records import canonical_dumps, utcnow
from flywheel.store.db import Warehouse

LABEL_COLUMNS = (
    "label_id",
    "example_id",
    "workload_id",
    "snapshot_id",
    "mode",
    "teacher_model",
    "prompt_version",
    "messages",
    "target",
    "label",
    "confidence",
    "votes",
    "logprobs",
    "cost_usd",
    "synthetic",
    "slice",
    "created_at",
)
JSON_COLUMNS = ("messages", "target", "votes", "logprobs")
MODE_RANK = {"relabel": 3, "synthesize": 2, "replay": 1}


@dataclass(slots=True)
class Label:
    example_id: str
    workload_id: str
    mode: str
    target: dict[str, Any]
    label: str | None
    teacher_model: str | None = None
    prompt_version: str | None = None
    snapshot_id: str | None = None
    messages: list[dict[str, Any]] | None = None
    confidence: float | None = 1.0
    votes: dict[str, int] | None = None
    logprobs: list[dict[str, Any]] | None = None
    cost_usd: float = 0.0
    synthetic: bool = False
    slice: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    label_id: str = ""

    def __post_init__(self) -> None:
        if not self.label_id:
            self.label_id = label_id(
                self.workload_id, self.example_id, self.mode, self.teacher_model, self.prompt_version
            )

    def row(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in LABEL_COLUMNS}
        for name in JSON_COLUMNS:
            if values[name] is not None:
                values[name] = canonical_dumps(values[name]).decode()
        return values


def label_id(workload_id: str, example_id: str, mode: str, model: str | None, settings: str | None) -> str:
    """Stable per (workload, example, mode, teacher, prompt version + settings): re-runs add nothing."""
    parts = [workload_id, example_id, mode, model or "", settings or ""]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def latest_labels(warehouse: Warehouse, workload_id: str, snapshot_id: str | None = None) -> dict[str, Label]:
    """example_id -> its best label (relabel > synthesize > replay, then newest)."""
    rank = " ".join(f"WHEN '{mode}' THEN {value}" for mode, value in MODE_RANK.items())
    sql = f"""
        SELECT {", ".join(LABEL_COLUMNS)} FROM labels
        WHERE workload_id = ? AND (? IS NULL OR snapshot_id = ?)
        QUALIFY row_number() OVER (
            PARTITION BY example_id ORDER BY CASE mode {rank} ELSE 0 END DESC, created_at DESC, label_id
        ) = 1
    """
    if not warehouse.exists():
        return {}
    warehouse.ensure_schema()
    rows = warehouse.read(lambda con: con.execute(sql, [workload_id, snapshot_id, snapshot_id]).fetchall())
    labels = {}
    for row in rows:
        values = dict(zip(LABEL_COLUMNS, row, strict=True))
        for name in JSON_COLUMNS:
            if values[name] is not None:
                values[name] = orjson.loads(values[name])
        labels[values["example_id"]] = Label(**values)
    return labels
