"""Shadow pairs from the warehouse: served calls the student answered and the teacher also answered.

`flywheel serve` shadows a share of the student's answers (serve.shadow_rate): the spool line holds
both, and ingest keeps the teacher's as metadata.teacher_response. `shadow_stage` (run by every
ingest of the spool) scores them per day and champion with the workload's task metrics, the teacher's
answer being the reference, into `shadow_evaluations`; `window_estimate` scores one window at once
(what `flywheel monitor` and the retrain triggers read).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import orjson

from flywheel.config import WorkloadConfig
from flywheel.evaluate.bootstrap import Estimate
from flywheel.evaluate.runner import primary_metric
from flywheel.evaluate.shadow import ShadowPair, run_shadow, shadow_evaluate
from flywheel.store.db import Warehouse

DEFAULT_DAYS = 30  # days re-scored by each ingest (older days keep their rows)
RESAMPLES = 1000
PAIRS_SQL = """
SELECT coalesce(ts, ingested_at), coalesce(metadata->>'student_model', model), request, response,
       metadata->'teacher_response'
FROM interactions
WHERE workload_id = ? AND source = 'spool' AND metadata->>'served_by' = 'student'
  AND json_type(metadata->'teacher_response') = 'OBJECT' AND coalesce(ts, ingested_at) >= ?
ORDER BY 1, id
"""


def load_pairs(warehouse: Warehouse, workload_id: str, since: datetime) -> list[ShadowPair]:
    """Every shadowed student answer of the workload since `since` (UTC, naive)."""
    rows = warehouse.read(lambda con: _rows(con, workload_id, since))
    pairs = [_pair(*row) for row in rows]
    return [p for p in pairs if p is not None]


def _rows(con: duckdb.DuckDBPyConnection, workload_id: str, since: datetime) -> list[tuple[Any, ...]]:
    return con.execute(PAIRS_SQL, [workload_id, since]).fetchall()


def _pair(ts: datetime, model_id: str | None, request: str, response: str, teacher: str) -> ShadowPair | None:
    request_doc, response_doc, teacher_doc = (orjson.loads(x) for x in (request, response, teacher))
    student, reference = response_doc.get("message"), teacher_doc.get("message")
    if not isinstance(student, dict) or not isinstance(reference, dict) or not model_id:
        return None
    return ShadowPair(
        day=ts.date(),
        model_id=model_id,
        messages=list(request_doc.get("messages") or []),
        student=student,
        teacher=reference,
        tools=request_doc.get("tools"),
        response_format=request_doc.get("response_format"),
    )


def shadow_stage(warehouse: Warehouse, workload: WorkloadConfig, days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """Score the last `days` days of shadow pairs into shadow_evaluations (replacing those days)."""
    if not warehouse.exists():
        return {"pairs": 0, "rows": 0}
    pairs = load_pairs(warehouse, workload.id, window_start(days))
    rows = run_shadow(warehouse, workload, pairs, n_resamples=RESAMPLES) if pairs else []
    return {"pairs": len(pairs), "rows": len(rows), "days": sorted({r.day.isoformat() for r in rows})}


def window_start(days: float, now: datetime | None = None) -> datetime:
    """The start of the last `days` days, as the naive UTC the warehouse stores."""
    current = now or datetime.now(UTC)
    return (current - timedelta(days=days)).replace(tzinfo=None)


def window_estimate(
    pairs: list[ShadowPair], workload: WorkloadConfig, model_id: str | None = None
) -> Estimate | None:
    """The primary metric over all `pairs` (of `model_id` when given) as one estimate with its CI."""
    chosen = [p for p in pairs if model_id is None or p.model_id == model_id]
    if not chosen:
        return None
    label = chosen[-1].model_id if model_id is None else model_id
    pooled = [_relabel(p, label) for p in chosen]
    metric = primary_metric(workload)
    rows = shadow_evaluate(pooled, workload, n_resamples=RESAMPLES)
    return next((r.estimate for r in rows if r.estimate.metric == metric), None)


def _relabel(pair: ShadowPair, model_id: str) -> ShadowPair:
    """One group for the whole window: same day and model on every pair."""
    return replace(pair, day=date(2000, 1, 1), model_id=model_id)
