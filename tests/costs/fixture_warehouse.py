"""A small warehouse with every kind of row the savings views and the dashboard read.

Built by running every migration present and inserting rows directly (no stage code), so the tests
check the views against their own arithmetic. Two workloads:
- support: 10 days of production traffic (gpt-4o), then 10 days served by `flywheel serve` with a
  student and teacher fallbacks; labeling, training, evaluation, a promotion, curation, runs.
- orders: 15 days of production traffic only (gpt-4o-mini, some errors, one unpriced model) and a
  trained candidate with a measured tokens/s: projected, not yet served.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from flywheel.costs import hardware_profile, record_assumptions
from flywheel.pricing import PriceCatalog
from flywheel.store.db import Warehouse

DAY0 = datetime(2026, 1, 1, 9, 0)
SUPPORT, ORDERS = "support", "orders"
STUDENT_V1, STUDENT_V2 = "support/tiny/v1", "support/tiny/v2"
ORDERS_MODEL = "orders/tiny/v1"
STUDENT_COST = 0.0001  # USD logged per student-served call
SHADOW_COST = 0.007  # USD of the background teacher call of a shadowed request
EVAL_COST_PER_1K = 0.1  # the v1 evaluation's measured serving cost
V2_TRAIN_SECONDS = 360.0  # trained without a ledger row: priced at the hardware rate
ORDERS_TOKENS_PER_SECOND = 500.0


def day(n: int, hour: int = 0) -> datetime:
    return DAY0 + timedelta(days=n, hours=hour)


def _interaction(workload: str, i: int, ts: datetime, **fields: Any) -> dict[str, Any]:
    row = {
        "id": f"{workload}-{i}",
        "workload_id": workload,
        "client_id": f"client-{i % 3}",
        "source": "openai",
        "source_ref": f"{workload}.jsonl:{i + 1}",
        "ts": ts,
        "model": "gpt-4o",
        "request": orjson.dumps({"messages": [{"role": "user", "content": f"q{i}"}]}).decode(),
        "response": orjson.dumps({"message": {"role": "assistant", "content": "a"}}).decode(),
        "prompt_tokens": 2000 + (i % 7) * 100,
        "completion_tokens": 200 + (i % 5) * 10,
        "latency_ms": 700.0 + i % 11,
        "cost_usd": None,
        "status": "ok",
        "metadata": None,
        "batch_id": "fixture",
        "ingested_at": ts,
    }
    row.update(fields)
    return row


def support_traffic(prices: PriceCatalog) -> list[dict[str, Any]]:
    rows, i = [], 0
    for d in range(10):  # production traffic straight to the teacher
        for k in range(20):
            row = _interaction(SUPPORT, i, day(d, k % 12))
            row["cost_usd"] = prices.cost("gpt-4o", row["prompt_tokens"], row["completion_tokens"])
            rows.append(row)
            i += 1
    for d in range(10, 20):  # served by `flywheel serve`: 45 student answers, 5 fallbacks a day
        for k in range(50):
            ts = day(d, k % 12)
            if k < 45:
                meta = {"served_by": "student", "fallback_reason": None, "spool_id": f"s{i}"}
                if k % 15 == 0:  # shadowed: the teacher was asked too, in the background
                    meta |= {"shadow": "agree", "shadow_cost_usd": SHADOW_COST}
                cost = None if (d, k) == (12, 0) else STUDENT_COST  # one call the server did not price
                row = _interaction(SUPPORT, i, ts, model=STUDENT_V1, cost_usd=cost, latency_ms=20.0 + k % 4)
            else:
                reason = "low_confidence" if k % 2 else "invalid_format"
                meta = {"served_by": "teacher", "fallback_reason": reason, "spool_id": f"s{i}"}
                row = _interaction(SUPPORT, i, ts, latency_ms=900.0)
                row["cost_usd"] = prices.cost("gpt-4o", row["prompt_tokens"], row["completion_tokens"])
            row |= {"source": "spool", "metadata": orjson.dumps(meta).decode()}
            rows.append(row)
            i += 1
    return rows


def orders_traffic(prices: PriceCatalog) -> list[dict[str, Any]]:
    rows = []
    for i in range(15 * 30):
        row = _interaction(ORDERS, i, day(5 + i // 30, i % 12), model="gpt-4o-mini", prompt_tokens=800)
        if i % 50 == 7:
            row |= {"status": "error", "completion_tokens": 0}
        if i == 100:
            row["model"] = "mystery-model"  # not in the catalog: stays unpriced
        row["cost_usd"] = prices.cost(row["model"], row["prompt_tokens"], row["completion_tokens"])
        rows.append(row)
    return rows


def ledger_rows() -> list[dict[str, Any]]:
    def entry(n: int, workload: str | None, kind: str, usd: float, at: datetime, ref: str | None = None):
        return {
            "entry_id": f"e{n}",
            "workload_id": workload,
            "run_id": "r",
            "kind": kind,
            "model": "gpt-4o",
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "usd": usd,
            "ref": ref,
            "at": at,
        }

    rows = [entry(n, SUPPORT, "labeling", 0.05, day(8, n % 10)) for n in range(10)]
    rows += [
        entry(10, SUPPORT, "training", 0.20, day(9, 1), ref=STUDENT_V1),
        entry(11, SUPPORT, "evaluation", 0.10, day(9, 2)),
        entry(12, SUPPORT, "student_serving", 0.05, day(15, 0)),
        entry(13, None, "teacher_inference", 0.01, day(9, 3)),
        entry(14, ORDERS, "labeling", 0.30, day(12, 0)),
    ]
    return rows


def model_rows() -> list[dict[str, Any]]:
    def model(model_id: str, workload: str, seconds: float, tps: float, created: datetime, stage: str):
        return {
            "model_id": model_id,
            "workload_id": workload,
            "name": "tiny",
            "kind": "scratch",
            "path": f"/models/{model_id}",
            "train_seconds": seconds,
            "tokens_per_second": tps,
            "stage": stage,
            "created_at": created,
        }

    return [
        model(STUDENT_V1, SUPPORT, 120.0, 450.0, day(9, 1), "champion"),
        model(STUDENT_V2, SUPPORT, V2_TRAIN_SECONDS, 420.0, day(18, 1), "candidate"),
        model(ORDERS_MODEL, ORDERS, 60.0, ORDERS_TOKENS_PER_SECOND, day(13, 0), "candidate"),
    ]


def evaluation_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    scores = {  # run -> model -> (value, ci_low, ci_high)
        "eval-1": {STUDENT_V1: (0.90, 0.85, 0.94), "teacher": (0.92, 0.88, 0.95)},
        "eval-2": {
            STUDENT_V2: (0.80, 0.74, 0.86),
            STUDENT_V1: (0.90, 0.85, 0.94),
            "teacher": (0.92, 0.88, 0.95),
        },
    }
    evaluations = []
    for run, models in scores.items():
        for model_id, (value, low, high) in models.items():
            for metric, shift in (("accuracy", 0.0), ("macro_f1", -0.05)):
                for slice_name in (None, "billing"):
                    evaluations.append(
                        {
                            "eval_id": f"{run}-{model_id}-{metric}-{slice_name}",
                            "run_id": run,
                            "model_id": model_id,
                            "workload_id": SUPPORT,
                            "metric": metric,
                            "slice": slice_name,
                            "value": value + shift,
                            "ci_low": low + shift,
                            "ci_high": high + shift,
                            "n": 120,
                            "reference": "gold",
                            "at": day(9 if run == "eval-1" else 18, 3),
                        }
                    )
    summaries = [  # the shape flywheel/evaluate/store.py writes
        {"model": STUDENT_V1, "cost_per_1k": EVAL_COST_PER_1K, "cost_basis": "hardware"},
        {"model": "teacher", "cost_per_1k": 7.0, "cost_basis": "tokens"},
    ]
    runs = [
        _eval_run("eval-1", day(9, 2), "promote", STUDENT_V1, [], summaries),
        _eval_run("eval-2", day(18, 2), "reject", None, ["ci_low_below_threshold", "not_cheaper_enough"], []),
    ]
    return evaluations, runs


def _eval_run(run: str, started: datetime, decision: str, winner: str | None, reasons: list, models: list):
    return {
        "run_id": run,
        "workload_id": SUPPORT,
        "started_at": started,
        "finished_at": started + timedelta(minutes=5),
        "decision": decision,
        "winner": winner,
        "reasons": orjson.dumps(reasons).decode(),
        "results": orjson.dumps({"primary_metric": "accuracy", "models": models}).decode(),
    }


def curation_rows() -> dict[str, list[dict[str, Any]]]:
    funnel = orjson.dumps({"in": 200, "out": 150}).decode()
    runs = [
        {
            "run_id": f"cur-{n}",
            "workload_id": SUPPORT,
            "started_at": day(7 + n, 0),
            "finished_at": day(7 + n, 1),
            "n_in": 200,
            "n_out": 140 + 10 * n,
            "funnel": funnel,
            "report": "{}",
        }
        for n in range(2)
    ]
    verdicts = [
        {
            "run_id": "cur-1",
            "interaction_id": f"{SUPPORT}-{i}",
            "workload_id": SUPPORT,
            "keep": i >= 50,
            "reason": None if i >= 50 else ("near_duplicate" if i % 2 else "pii_email"),
        }
        for i in range(200)
    ]
    slices = [
        {
            "run_id": "cur-1",
            "workload_id": SUPPORT,
            "slice_kind": "label",
            "slice": name,
            "n_before": before,
            "n_after": after,
            "share_before": before / 200,
            "share_after": after / 150,
            "rare": after < 10,
        }
        for name, before, after in (("billing", 120, 70), ("refund", 70, 72), ("legal", 10, 8))
    ]
    return {"curation_runs": runs, "curation_verdicts": verdicts, "slice_stats": slices}


def run_rows() -> dict[str, list[dict[str, Any]]]:
    flows = [
        {
            "run_id": "flow-1",
            "workload_id": SUPPORT,
            "flow": "flywheel-loop",
            "started_at": day(9, 0),
            "finished_at": day(9, 0) + timedelta(seconds=754),
            "status": "completed",
            "prefect_flow_run_id": "0b7e6f0c-1111-4c7a-9c55-000000000001",
            "summary": orjson.dumps({"promoted": STUDENT_V1}).decode(),
        },
        {
            "run_id": "flow-2",
            "workload_id": ORDERS,
            "flow": "flywheel-loop",
            "started_at": day(13, 0),
            "finished_at": day(13, 0) + timedelta(seconds=31),
            "status": "failed",
            "prefect_flow_run_id": None,
            "summary": None,
        },
    ]
    labels = [
        {
            "run_id": "label-1",
            "workload_id": SUPPORT,
            "mode": "relabel",
            "started_at": day(8, 0),
            "finished_at": day(8, 0) + timedelta(seconds=95),
            "labeled": 150,
            "cached": 0,
            "calls": 150,
            "failed": 0,
            "cost_usd": 0.5,
            "stopped_reason": "completed",
        }
    ]
    return {"flywheel_runs": flows, "label_runs": labels}


def other_rows() -> dict[str, list[dict[str, Any]]]:
    labels = [
        {
            "label_id": f"l{i}",
            "example_id": f"x{i % 150}",
            "workload_id": SUPPORT,
            "mode": "relabel",
            "target": '{"role": "assistant", "content": "billing"}',
            "created_at": day(8, 1),
        }
        for i in range(160)
    ]
    quarantine = [
        {
            "id": f"q{i}",
            "raw": "{oops",
            "source": "openai",
            "source_ref": f"support.jsonl:{900 + i}",
            "stage": "ingest",
            "reason": "truncated_json",
            "workload_id": SUPPORT,
            "batch_id": "fixture",
            "quarantined_at": day(1),
        }
        for i in range(4)
    ]
    promotions = [
        {
            "promotion_id": "p1",
            "workload_id": SUPPORT,
            "model_id": STUDENT_V1,
            "previous_model_id": None,
            "action": "promote",
            "reason": "gate passed",
            "run_id": "eval-1",
            "at": day(9, 4),
        }
    ]
    shadow = [
        {"day": date(2026, 1, 15), "workload_id": SUPPORT, "model_id": STUDENT_V1, "metric": "accuracy",
         "value": 0.93, "ci_low": 0.88, "ci_high": 0.97, "n": 150, "target": 0.9, "is_primary": True},
        {"day": date(2026, 1, 16), "workload_id": SUPPORT, "model_id": STUDENT_V1, "metric": "accuracy",
         "value": 0.91, "ci_low": 0.86, "ci_high": 0.95, "n": 200, "target": 0.9, "is_primary": True},
        {"day": date(2026, 1, 16), "workload_id": SUPPORT, "model_id": STUDENT_V1, "metric": "macro_f1",
         "value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 200, "target": 0.9, "is_primary": False},
    ]  # fmt: skip
    return {
        "labels": labels,
        "quarantine": quarantine,
        "promotions": promotions,
        "shadow_evaluations": shadow,
    }


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    batch = pa.Table.from_pylist(rows)  # noqa: F841 - read by name in the SQL below
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM batch")


SERVED_COLUMNS = (
    "workload_id", "client_id", "ts", "model", "status", "request", "response", "prompt_tokens",
    "completion_tokens", "latency_ms", "cost_usd", "metadata",
)  # fmt: skip


def served_call(row: dict[str, Any]) -> dict[str, Any]:
    """A call `flywheel serve` answered, as the spool sync stores it (one row per call)."""
    return {
        "id": f"served:{row['id']}",
        "request_id": row["id"],
        **{key: row[key] for key in SERVED_COLUMNS},
        "spool_ref": f"spool-fixture.jsonl:{row['id']}",
        "synced_at": row["ingested_at"],
    }


def build_fixture_warehouse(path: Path) -> Warehouse:
    """Create the warehouse at `path`, fill it and record the cost assumptions (cpu-2core)."""
    prices = PriceCatalog.load()
    warehouse = Warehouse(path)
    evaluations, eval_runs = evaluation_rows()
    traffic = support_traffic(prices) + orders_traffic(prices)
    tables = {
        "interactions": [row for row in traffic if row["source"] != "spool"],
        "served_calls": [served_call(row) for row in traffic if row["source"] == "spool"],
        "cost_ledger": ledger_rows(),
        "models": model_rows(),
        "evaluations": evaluations,
        "eval_runs": eval_runs,
        **curation_rows(),
        **run_rows(),
        **other_rows(),
    }

    def fill(con: duckdb.DuckDBPyConnection) -> None:
        for table, rows in tables.items():
            insert_rows(con, table, rows)

    warehouse.write(fill)
    record_assumptions(warehouse, prices, serving=hardware_profile("cpu-2core"))
    return warehouse
