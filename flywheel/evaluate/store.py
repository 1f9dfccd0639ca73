"""Warehouse rows for evaluation: every estimate, the run with its decision, logged teacher usage, and
the eval examples as they were logged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import duckdb
import orjson

from flywheel.costs.teacher_cost import refresh_teacher_costs, request_costs
from flywheel.evaluate.gate import GateDecision
from flywheel.evaluate.runner import EvaluationResult, Usage
from flywheel.evaluate.tool_metrics import ToolMetric
from flywheel.pricing import PriceCatalog
from flywheel.records import Example, canonical_dumps
from flywheel.store.db import Warehouse

EVALUATION_COLUMNS = (
    "eval_id",
    "run_id",
    "model_id",
    "workload_id",
    "snapshot_id",
    "metric",
    "slice",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "reference",
    '"at"',
)


def eval_id(run_id: str, model_id: str, metric: str, slice_name: str | None) -> str:
    key = "\x00".join([run_id, model_id, metric, slice_name if slice_name is not None else "\x01"])
    return hashlib.sha256(key.encode()).hexdigest()


def run_payload(result: EvaluationResult, decision: GateDecision) -> dict[str, Any]:
    """What eval_runs.results holds: model summaries, every gate check and the overall estimates."""
    return {
        "reference": result.reference,
        "primary_metric": decision.primary_metric,
        "n_examples": result.n_examples,
        "skipped": result.skipped,
        "slice_counts": result.slice_counts,
        "n_resamples": result.n_resamples,
        "seed": result.seed,
        "models": [m.summary() for m in result.models.values()],
        "checks": decision.as_dict()["checks"],
        "target": decision.target.as_dict() if decision.target else None,
        "summary": decision.summary,
        "eval_rows_needed": decision.eval_rows_needed,
        "cascade": decision.cascade,
        "cascades": decision.cascades,
        "results": result.rows(),
    }


def save_evaluation(
    warehouse: Warehouse,
    *,
    run_id: str,
    result: EvaluationResult,
    decision: GateDecision,
    snapshot_id: str | None,
    started_at: datetime,
    finished_at: datetime,
) -> int:
    """Insert the run and all its estimates in one transaction; returns the estimate rows written."""
    rows = [
        (
            eval_id(run_id, model, item.metric, item.slice),
            run_id,
            model,
            result.workload_id,
            snapshot_id,
            item.metric,
            item.slice,
            item.value,
            item.ci_low,
            item.ci_high,
            item.n,
            result.reference,
            finished_at,
        )
        for model, scored in result.models.items()
        for item in scored.estimates
    ]
    run_row = [
        run_id,
        result.workload_id,
        snapshot_id,
        started_at,
        finished_at,
        decision.decision,
        decision.winner,
        orjson.dumps(decision.reasons).decode(),
        orjson.dumps(run_payload(result, decision), default=str).decode(),
    ]

    def write(con: duckdb.DuckDBPyConnection) -> int:
        con.execute("INSERT INTO eval_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", run_row)
        if rows:
            placeholders = ", ".join("?" * len(EVALUATION_COLUMNS))
            con.executemany(
                f"INSERT INTO evaluations ({', '.join(EVALUATION_COLUMNS)}) VALUES ({placeholders})", rows
            )
        return len(rows)

    return warehouse.write(write)


def save_tool_metrics(
    warehouse: Warehouse, run_id: str, workload_id: str, rows: Mapping[str, list[ToolMetric]], at: datetime
) -> int:
    """The per-tool rows of one evaluation run (flywheel/evaluate/tool_metrics.py)."""
    values = [
        (run_id, model, workload_id, r.tool, r.parameter, r.metric, r.value, r.n, at)
        for model, found in rows.items()
        for r in found
    ]
    if values:
        warehouse.write(
            lambda con: con.executemany(
                "INSERT INTO tool_evaluations (run_id, model_id, workload_id, tool, parameter, metric, "
                'value, n, "at") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                values,
            )
        )
    return len(values)


def teacher_usage(
    warehouse: Warehouse,
    interaction_ids: Iterable[str],
    prices: PriceCatalog | None = None,
    teacher_models: Mapping[str, str] | None = None,
) -> dict[str, Usage]:
    """The teacher cost model's tokens, cost and logged latency of the interactions behind eval
    examples, for replay costing: the same per-request figures `flywheel costs` sums. With `prices`
    the model is refreshed first (tokens counted for calls without usage, prices re-read)."""
    ids = [i for i in interaction_ids if i]
    if not ids or not warehouse.exists():
        return {}
    if prices is not None:
        refresh_teacher_costs(warehouse, prices, teacher_models)
    return {
        interaction_id: Usage(
            int(c.prompt_tokens),
            int(c.completion_tokens),
            float(c.latency_ms or 0.0),
            c.teacher_usd,
            c.token_method or "usage",
            c.model,
        )
        for interaction_id, c in request_costs(warehouse, ids).items()
        if c.prompt_tokens is not None and c.completion_tokens is not None
    }


def raw_examples(warehouse: Warehouse, examples: list[Example]) -> list[Example]:
    """The eval examples as the application sent them: the logged request (full prompt, PII and
    all), the logged answer as the teacher's target, and the gold label (imported by `flywheel labels
    import`, else as logged, else the snapshot's). Predictors then
    see exactly what serving sees. Examples without a logged interaction (synthetic) stay as they are.
    """
    ids = sorted({e.interaction_id for e in examples if e.interaction_id})
    if not ids or not warehouse.exists():
        return list(examples)

    def read(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        return con.execute(
            "SELECT i.id, any_value(i.request), any_value(i.response), any_value(i.metadata), "
            "any_value(g.label) FROM interactions i LEFT JOIN gold_labels g "
            "ON g.workload_id = i.workload_id AND g.interaction_id = i.id "
            "WHERE list_contains(?, i.id) GROUP BY i.id",
            [ids],
        ).fetchall()

    logged = {row[0]: row[1:] for row in warehouse.read(read)}
    return [_as_logged(e, logged.get(e.interaction_id or "")) for e in examples]


def _as_logged(example: Example, row: tuple[Any, ...] | None) -> Example:
    if row is None:
        return example
    request, response = orjson.loads(row[0]), orjson.loads(row[1])
    metadata = orjson.loads(row[2]) if row[2] else {}
    gold = row[3] if row[3] is not None else metadata.get("label") if isinstance(metadata, dict) else None
    if gold is not None and not isinstance(gold, str):
        gold = canonical_dumps(gold).decode()
    return replace(
        example,
        messages=list(request.get("messages") or []),
        target=response.get("message") or {},
        label=None,
        gold=gold if gold is not None else example.gold,
        tools=request.get("tools"),
        response_format=request.get("response_format"),
        request=request,
    )


def eval_runs(warehouse: Warehouse, workload_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The latest evaluation runs, newest first, with reasons decoded."""
    if not warehouse.exists():
        return []
    warehouse.ensure_schema()
    sql = (
        "SELECT run_id, workload_id, snapshot_id, started_at, finished_at, decision, winner, reasons "
        "FROM eval_runs"
    )
    params: list[Any] = []
    if workload_id is not None:
        sql += " WHERE workload_id = ?"
        params.append(workload_id)
    params.append(limit)
    rows = warehouse.read(
        lambda con: con.execute(sql + " ORDER BY finished_at DESC LIMIT ?", params).fetchall()
    )
    keys = (
        "run_id",
        "workload_id",
        "snapshot_id",
        "started_at",
        "finished_at",
        "decision",
        "winner",
        "reasons",
    )
    return [{**dict(zip(keys, row, strict=True)), "reasons": orjson.loads(row[7])} for row in rows]


def standing_scores(warehouse: Warehouse, workload_id: str, champion_id: str | None) -> dict[str, Any]:
    """The champion's and the teacher's scores from the latest evaluation that scored the champion,
    for a turn that judged nothing new (so its report still says who serves and how well)."""
    if champion_id is None:
        return {"champion": None, "models": []}

    def query(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        return con.execute(
            """
            WITH latest AS (
                SELECT q.run_id, g.primary_metric FROM v_model_quality q
                JOIN v_gate_decisions g USING (run_id)
                WHERE q.workload_id = ? AND q.model_id = ?
                ORDER BY q.evaluated_at DESC LIMIT 1
            )
            SELECT CASE WHEN q.is_teacher THEN 'teacher' ELSE q.model_id END, q.metric,
                   q.value, q.ci_low, q.ci_high
            FROM v_model_quality q JOIN latest l ON q.run_id = l.run_id AND q.metric = l.primary_metric
            WHERE q.is_teacher OR q.model_id = ?
            """,
            [workload_id, champion_id, champion_id],
        ).fetchall()

    rows = warehouse.read(query)
    models = [{"model": m, "value": v, "ci_low": lo, "ci_high": hi} for m, _, v, lo, hi in rows]
    return {"champion": champion_id, "primary_metric": rows[0][1] if rows else None, "models": models}


def last_judged(warehouse: Warehouse, workload_id: str) -> tuple[str, list[str]] | None:
    """(run id, the candidates it judged) of the workload's latest evaluation, None before the first."""
    if not warehouse.exists():
        return None
    warehouse.ensure_schema()
    row = warehouse.read(
        lambda con: con.execute(
            "SELECT run_id, results FROM eval_runs WHERE workload_id = ? ORDER BY finished_at DESC LIMIT 1",
            [workload_id],
        ).fetchone()
    )
    if row is None:
        return None
    checks = orjson.loads(row[1]).get("checks") or []
    models = sorted({c["model"] for c in checks if c.get("model") and c["model"] != "teacher"})
    return row[0], models
