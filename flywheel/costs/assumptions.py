"""The prices the savings views need but SQL cannot know, estimated per workload and stored.

`record_assumptions` writes one `cost_assumptions` row per workload: the teacher's catalog price, the
serving and training hardware rates and the estimated serving cost of the candidate the projection
assumes. The views in 0007_costs.sql do the arithmetic; storing the inputs makes every figure the
dashboard shows traceable to a row.
"""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, fields
from typing import Any

import duckdb
import orjson

from flywheel.costs.hardware import serving_cost_per_1k
from flywheel.costs.teacher_cost import refresh_teacher_costs
from flywheel.hardware_profiles import HardwareProfile
from flywheel.pricing import PriceCatalog
from flywheel.records import utcnow
from flywheel.store.db import Warehouse
from flywheel.store.keyed import insert_rows

WORKLOADS_SQL = """
SELECT workload_id FROM v_traffic
UNION SELECT workload_id FROM models
UNION SELECT workload_id FROM cost_ledger WHERE workload_id IS NOT NULL
ORDER BY 1
"""
# Models the traffic was answered by, most used first: the first priced one is the teacher.
TEACHER_MODELS_SQL = """
SELECT workload_id, model, count(*) AS n FROM v_traffic
WHERE model IS NOT NULL AND coalesce(metadata->>'served_by', 'teacher') <> 'student'
GROUP BY ALL ORDER BY workload_id, n DESC, model
"""
# The candidate a projection assumes, in order of preference: the promoted champion, a champion the
# registry marks, the latest gate winner, the latest trained model.
STUDENT_SQL = (
    'SELECT workload_id, arg_max(model_id, "at") FROM promotions GROUP BY ALL',
    "SELECT workload_id, arg_max(model_id, created_at) FROM models WHERE stage = 'champion' GROUP BY ALL",
    "SELECT workload_id, arg_max(winner, finished_at) FROM eval_runs WHERE winner IS NOT NULL GROUP BY ALL",
    "SELECT workload_id, arg_max(model_id, created_at) FROM models GROUP BY ALL",
)
EVAL_RESULTS_SQL = "SELECT workload_id, results FROM eval_runs ORDER BY finished_at DESC, run_id"
MODELS_SQL = "SELECT model_id, tokens_per_second, metrics FROM models"
TOKENS_PER_REQUEST_SQL = """
SELECT workload_id, avg(completion_tokens) FROM interactions
WHERE status = 'ok' AND completion_tokens > 0 GROUP BY ALL
"""


@dataclass(frozen=True, slots=True)
class CostAssumptions:
    workload_id: str
    teacher_model: str | None
    teacher_input_per_1m: float | None
    teacher_output_per_1m: float | None
    hardware_profile: str
    hardware_usd_per_hour: float
    training_usd_per_hour: float
    student_model_id: str | None
    student_usd_per_1k: float | None
    student_cost_basis: str  # evaluation | throughput | unknown
    student_coverage: float | None = None  # share of traffic it answers: a partial promotion's, else 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_assumptions(
    con: duckdb.DuckDBPyConnection,
    prices: PriceCatalog,
    *,
    serving: HardwareProfile,
    training_usd_per_hour: float | None = None,
    teacher_models: dict[str, str] | None = None,
) -> list[CostAssumptions]:
    """One CostAssumptions per workload seen in the warehouse (traffic, models or ledger)."""
    workloads = [row[0] for row in con.execute(WORKLOADS_SQL).fetchall()]
    teachers = _teachers(con, prices, teacher_models or {})
    students = _students(con, serving.usd_per_hour)
    coverages = _coverages(con)
    training_rate = serving.usd_per_hour if training_usd_per_hour is None else training_usd_per_hour
    found = []
    for workload_id in workloads:
        teacher = teachers.get(workload_id)
        price = prices.price(teacher)
        student_id, student_cost, basis = students.get(workload_id, (None, None, "unknown"))
        found.append(
            CostAssumptions(
                workload_id=workload_id,
                teacher_model=teacher,
                teacher_input_per_1m=price.input_per_1m if price else None,
                teacher_output_per_1m=price.output_per_1m if price else None,
                hardware_profile=serving.name,
                hardware_usd_per_hour=serving.usd_per_hour,
                training_usd_per_hour=training_rate,
                student_model_id=student_id,
                student_usd_per_1k=student_cost,
                student_cost_basis=basis,
                student_coverage=coverages.get(student_id or ""),
            )
        )
    return found


def record_assumptions(
    warehouse: Warehouse,
    prices: PriceCatalog,
    *,
    serving: HardwareProfile,
    training_usd_per_hour: float | None = None,
    teacher_models: dict[str, str] | None = None,
) -> list[CostAssumptions]:
    """Refresh the teacher cost model (token counts, model prices), then estimate and store (replace)
    every workload's assumptions in one short write transaction."""
    refresh_teacher_costs(warehouse, prices, teacher_models)

    def write(con: duckdb.DuckDBPyConnection) -> list[CostAssumptions]:
        found = estimate_assumptions(
            con,
            prices,
            serving=serving,
            training_usd_per_hour=training_usd_per_hour,
            teacher_models=teacher_models,
        )
        if found:
            now = utcnow()
            columns = [f.name for f in fields(CostAssumptions)] + ["updated_at"]
            rows = [(*astuple(item), now) for item in found]
            insert_rows(con, "cost_assumptions", columns, rows, key=["workload_id"], replace=True)
        return found

    return warehouse.write(write)


def _teachers(
    con: duckdb.DuckDBPyConnection, prices: PriceCatalog, configured: dict[str, str]
) -> dict[str, str]:
    """The workload's most used priced model, else its configured teacher, else its most used model."""
    used: dict[str, list[str]] = {}
    for workload_id, model, _ in con.execute(TEACHER_MODELS_SQL).fetchall():
        used.setdefault(workload_id, []).append(model)
    chosen = {}
    for workload_id in set(used) | set(configured):
        models = used.get(workload_id, [])
        priced = [m for m in models if m in prices]
        fallback = configured.get(workload_id) or (models[0] if models else None)
        if priced or fallback:
            chosen[workload_id] = priced[0] if priced else fallback
    return chosen


def _students(
    con: duckdb.DuckDBPyConnection, usd_per_hour: float
) -> dict[str, tuple[str, float | None, str]]:
    """workload -> (candidate model id, USD per 1k requests or None, basis)."""
    chosen: dict[str, str] = {}
    for sql in STUDENT_SQL:
        for workload_id, model_id in con.execute(sql).fetchall():
            chosen.setdefault(workload_id, model_id)
    results = con.execute(EVAL_RESULTS_SQL).fetchall()
    models = {row[0]: row[1:] for row in con.execute(MODELS_SQL).fetchall()}
    tokens_per_request = dict(con.execute(TOKENS_PER_REQUEST_SQL).fetchall())
    estimates = {}
    for workload_id, model_id in chosen.items():
        docs = [_loads(doc) for wid, doc in results if wid == workload_id]
        tokens_per_second, metrics = models.get(model_id, (None, None))
        docs.append(_loads(metrics))
        measured = next((c for c in (find_model_cost(d, model_id) for d in docs) if c is not None), None)
        if measured is not None:
            estimates[workload_id] = (model_id, measured, "evaluation")
            continue
        cost = serving_cost_per_1k(usd_per_hour, tokens_per_second, tokens_per_request.get(workload_id))
        estimates[workload_id] = (model_id, cost, "throughput" if cost is not None else "unknown")
    return estimates


def _coverages(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """model id -> the share of traffic it answers when served: its partial promotion's calibrated
    coverage (models.metrics.serving), 1.0 when promoted on all traffic or never promoted."""
    out = {}
    for model_id, _, raw in con.execute(MODELS_SQL).fetchall():
        metrics = _loads(raw)
        serving = metrics.get("serving") if isinstance(metrics, dict) else None
        partial = isinstance(serving, dict) and serving.get("threshold") is not None
        coverage = serving.get("coverage") if isinstance(serving, dict) else None
        out[model_id] = float(coverage) if partial and _is_number(coverage) else 1.0
    return out


def find_model_cost(doc: Any, model_id: str) -> float | None:
    """The measured cost_per_1k recorded for `model_id` anywhere in an evaluation's results JSON.

    Matches a summary object {"model": model_id, "cost_per_1k": x} or a mapping {model_id: {...}}.
    """
    if isinstance(doc, dict):
        if doc.get("model") == model_id and _is_number(doc.get("cost_per_1k")):
            return float(doc["cost_per_1k"])
        own = doc.get(model_id)
        if isinstance(own, dict) and _is_number(own.get("cost_per_1k")):
            return float(own["cost_per_1k"])
        children: Any = doc.values()
    elif isinstance(doc, list):
        children = doc
    else:
        return None
    for child in children:
        found = find_model_cost(child, model_id)
        if found is not None:
            return found
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _loads(doc: Any) -> Any:
    if isinstance(doc, str):
        try:
            return orjson.loads(doc)
        except orjson.JSONDecodeError:
            return None
    return doc
