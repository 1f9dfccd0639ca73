"""The student serving / training cost model, over the hardware profiles of flywheel/hardware_profiles.py."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any


def serving_cost_per_1k(
    usd_per_hour: float, tokens_per_second: float | None, tokens_per_request: float | None
) -> float | None:
    """USD per 1k requests of a machine generating `tokens_per_second`; None when not measured.

    A request takes tokens_per_request / tokens_per_second seconds of the machine.
    """
    if not tokens_per_second or tokens_per_second <= 0 or not tokens_per_request or tokens_per_request <= 0:
        return None
    seconds_per_request = tokens_per_request / tokens_per_second
    return usd_per_hour / 3600 * seconds_per_request * 1000


def training_cost_usd(train_seconds: float, usd_per_hour: float) -> float:
    """Wall time x hardware rate."""
    if train_seconds < 0:
        raise ValueError(f"train_seconds must be >= 0, got {train_seconds}")
    return train_seconds * usd_per_hour / 3600


def training_ledger_row(
    *,
    model_id: str,
    workload_id: str,
    run_id: str | None,
    train_seconds: float,
    usd_per_hour: float,
    recorded_at: datetime,
) -> dict[str, Any]:
    """A cost_ledger row for one training job; its id makes re-recording the same job a no-op.

    `ref` is the model id: the savings views price a model's train_seconds only when no training row
    refers to it, so recording this row never double-counts.
    """
    entry_id = hashlib.sha256(f"training\x00{model_id}\x00{run_id or ''}".encode()).hexdigest()
    return {
        "entry_id": entry_id,
        "workload_id": workload_id,
        "run_id": run_id,
        "kind": "training",
        "model": model_id,
        "prompt_tokens": None,
        "completion_tokens": None,
        "usd": training_cost_usd(train_seconds, usd_per_hour),
        "ref": model_id,
        "at": recorded_at,
    }
