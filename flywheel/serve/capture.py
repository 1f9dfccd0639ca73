"""One served call as a spool line (the contract in connectors/spool.py)."""

from __future__ import annotations

from typing import Any

from flywheel.serve.router import Call, Outcome
from flywheel.serve.spool import SPOOL_VERSION


def capture_record(call: Call, outcome: Outcome, latency_ms: float) -> dict[str, Any]:
    if outcome.completion is not None:
        response = outcome.completion
    else:
        error = outcome.error
        response = error.body() if error is not None else {"error": {"message": "no answer"}}
    metadata: dict[str, Any] = {"route": outcome.route, **outcome.metadata}
    if outcome.error is not None:
        metadata["http_status"] = outcome.error.status
    return {
        "flywheel_spool": SPOOL_VERSION,
        "id": call.request_id,
        "ts": call.arrived_ts,
        "workload_id": call.workload_id,
        "client_id": call.client_id,
        "request": call.payload,
        "response": response,
        "served_by": outcome.served_by,
        "model": outcome.model,
        "fallback_reason": outcome.fallback_reason if outcome.served_by == "teacher" else None,
        "latency_ms": round(latency_ms, 3),
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "teacher_response": None,
        "metadata": metadata,
    }


def with_shadow(record: dict[str, Any], shadow: dict[str, Any]) -> dict[str, Any]:
    """The record completed with a shadow result (teacher answer, agreement, its cost)."""
    metadata = dict(record.get("metadata") or {})
    metadata.update({k: v for k, v in shadow.items() if k != "teacher_response"})
    return {**record, "teacher_response": shadow.get("teacher_response"), "metadata": metadata}
