"""The one teacher cost model: what a request cost (or would have cost) on the teacher.

teacher cost = tokens x catalog price, where
- tokens are the request's logged usage when present, else its FULL logged request (every message,
  the system prompt and few-shot turns included, tool schemas, response_format) and answer counted with
  the model family's tokenizer (flywheel/costs/tokens.py). Counts land in `token_counts` once per
  interaction, with the method used (`tiktoken:o200k_base`, `quicktok:llama3`, `estimate:chars/4`;
  `error` for failed calls, which are not billed);
- the price is read at query time from `model_prices`, which `refresh_teacher_costs` rewrites from the
  catalog (flywheel/pricing/prices.yaml plus flywheel.yaml `prices:`), so a price added later re-prices
  every request already in the warehouse.
The SQL is the view v_request_costs (flywheel/store/migrations/0010_teacher_cost.sql): `flywheel stats`,
`flywheel costs`, `flywheel evaluate` (the replayed teacher's cost per 1k) and the dashboard read it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from flywheel.costs.tokens import TokenCounter, counter_for
from flywheel.pricing import PriceCatalog, config_hint
from flywheel.records import utcnow
from flywheel.store.db import Warehouse
from flywheel.store.keyed import insert_from

COUNT_BATCH = 2_000  # interactions counted per read/write round: writers hold the file briefly
ERROR_METHOD = "error"  # a failed call: not billed, 0 tokens
PENDING_SQL = """
SELECT i.id, i.workload_id, i.model, i.status, i.request, i.response
FROM v_traffic i
WHERE (i.prompt_tokens IS NULL OR i.completion_tokens IS NULL)
  AND NOT EXISTS (SELECT 1 FROM token_counts t WHERE t.id = i.id)
LIMIT ?
"""
REQUEST_COSTS_SQL = """
SELECT id, any_value(prompt_tokens), any_value(completion_tokens), any_value(token_method),
       any_value(teacher_usd), any_value(latency_ms), any_value(model)
FROM v_request_costs WHERE list_contains(?, id) GROUP BY id
"""


@dataclass(frozen=True, slots=True)
class RequestCost:
    """One request as the cost model sees it."""

    prompt_tokens: int | None
    completion_tokens: int | None
    token_method: str | None
    teacher_usd: float | None
    latency_ms: float | None = None
    model: str | None = None


@dataclass
class RefreshReport:
    counted: int = 0
    methods: Counter[str] = field(default_factory=Counter)
    models: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "counted": self.counted,
            "methods": dict(self.methods),
            "models": self.models,
            "seconds": round(self.seconds, 3),
        }


def refresh_teacher_costs(
    warehouse: Warehouse, prices: PriceCatalog, teacher_models: Mapping[str, str] | None = None
) -> RefreshReport:
    """Count the tokens of interactions without usage, then rewrite model_prices from `prices`.

    `teacher_models` (workload -> model) names the tokenizer for rows whose own model is not a known
    family (a student's id on served traffic) and adds the teachers to model_prices.
    """
    started = time.perf_counter()
    warehouse.ensure_schema()
    report = count_missing_tokens(warehouse, teacher_models or {})
    report.models = warehouse.write(
        lambda con: write_model_prices(con, prices, (teacher_models or {}).values())
    )
    report.seconds = time.perf_counter() - started
    return report


def count_missing_tokens(warehouse: Warehouse, teacher_models: Mapping[str, str]) -> RefreshReport:
    """Fill token_counts for every interaction that logged no usage, COUNT_BATCH rows per round."""
    report = RefreshReport()
    done: set[str] = set()
    while True:
        rows = warehouse.read(lambda con: con.execute(PENDING_SQL, [COUNT_BATCH]).fetchall())
        rows = [row for row in rows if row[0] not in done]  # a row that did not land is not retried
        if not rows:
            return report
        counts = [count_row(row, teacher_models) for row in rows]
        batch = pa.table(
            {
                "id": [row[0] for row in rows],
                "prompt_tokens": pa.array([c[0] for c in counts], pa.int32()),
                "completion_tokens": pa.array([c[1] for c in counts], pa.int32()),
                "method": [c[2] for c in counts],
                "counted_at": pa.array([utcnow()] * len(rows), pa.timestamp("us")),
            }
        )
        warehouse.write(lambda con, table=batch: _insert_counts(con, table))
        done.update(row[0] for row in rows)
        report.counted += len(rows)
        report.methods.update(c[2] for c in counts)


def _insert_counts(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    con.register("counted_batch", table)
    try:
        insert_from(con, "token_counts", table.column_names, "counted_batch", key=["id"])
    finally:
        con.unregister("counted_batch")


def count_row(row: tuple[Any, ...], teacher_models: Mapping[str, str]) -> tuple[int, int, str]:
    """(prompt_tokens, completion_tokens, method) of one (id, workload, model, status, request, response)."""
    _, workload_id, model, status, request, response = row
    if status != "ok":
        return 0, 0, ERROR_METHOD
    counter = _counter(model, teacher_models.get(workload_id))
    answer = _loads(response).get("message")
    return counter.request(_loads(request)), counter.answer(answer), counter.method


def count_call(
    model: str | None, request: dict[str, Any], answer: dict[str, Any] | None
) -> tuple[int, int, str]:
    """(prompt_tokens, completion_tokens, method) of a request and its answer, for callers that hold
    the call itself rather than a warehouse row (e.g. an eval example with no logged interaction)."""
    counter = counter_for(model)
    return counter.request(request), counter.answer(answer), counter.method


def write_model_prices(con: duckdb.DuckDBPyConnection, prices: PriceCatalog, extra: Iterable[str]) -> int:
    """Replace model_prices with every model in traffic (and `extra`) resolved against `prices`."""
    sql = "SELECT DISTINCT model FROM v_traffic WHERE model IS NOT NULL"
    seen = [row[0] for row in con.execute(sql).fetchall()]
    models = list(dict.fromkeys([*seen, *(m for m in extra if m)]))
    now = utcnow()
    rows = []
    for model in models:
        found = prices.resolve(model)
        price = found.price if found else None
        rows.append(
            (
                model,
                found.key if found else None,
                price.input_per_1m if price else None,
                price.output_per_1m if price else None,
                price.as_of if price else None,
                price.source if price else None,
                now,
            )
        )
    con.execute("DELETE FROM model_prices")
    if rows:
        con.executemany("INSERT INTO model_prices VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def request_costs(warehouse: Warehouse, interaction_ids: Iterable[str]) -> dict[str, RequestCost]:
    """The cost model's tokens and teacher_usd of these interactions (after a refresh)."""
    ids = sorted({i for i in interaction_ids if i})
    if not ids or not warehouse.exists():
        return {}
    rows = warehouse.read(lambda con: con.execute(REQUEST_COSTS_SQL, [ids]).fetchall())
    return {row[0]: RequestCost(*row[1:]) for row in rows}


def unpriced_models(con: duckdb.DuckDBPyConnection, workload_id: str | None = None) -> list[dict[str, Any]]:
    """Models with traffic and no price, each with the flywheel.yaml line that prices it."""
    where, params = ("WHERE workload_id = ?", [workload_id]) if workload_id else ("", [])
    rows = con.execute(
        f"SELECT workload_id, model, requests FROM v_unpriced_models {where} ORDER BY requests DESC, model",
        params,
    ).fetchall()
    return [{"workload_id": w, "model": m, "requests": n, "fix": config_hint(m)} for w, m, n in rows]


def token_methods(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """workload -> {token counting method: requests} (`uncounted`: no refresh since ingest)."""
    rows = con.execute(
        "SELECT workload_id, coalesce(token_method, 'uncounted'), count(*) FROM v_request_costs "
        "GROUP BY ALL ORDER BY 1, 3 DESC"
    ).fetchall()
    methods: dict[str, dict[str, int]] = {}
    for workload_id, method, count in rows:
        methods.setdefault(workload_id, {})[method] = count
    return methods


def unpriced_warning(item: dict[str, Any]) -> str:
    """One line: which model, how many requests, and the config line that fixes it."""
    n = item["requests"]
    return (
        f"{item['workload_id']}: {n:,} request{'s' if n != 1 else ''} to {item['model']!r} "
        f"{'have' if n != 1 else 'has'} no price (unknown, not free); add to flywheel.yaml: {item['fix']}"
    )


def _counter(model: str | None, teacher: str | None) -> TokenCounter:
    found = counter_for(model)
    if found.estimated and teacher:
        return counter_for(teacher)
    return found


def _loads(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        loaded = orjson.loads(value) if value else {}
    except orjson.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
