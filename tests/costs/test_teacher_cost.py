"""One teacher cost: `flywheel stats`, `costs` and `evaluate` agree on logs without usage.

The logs are what applications really send: a long system prompt, few-shot turns and a tool schema in
every request, and no `usage`. The expected cost is computed here from the stored requests with the
same tokenizer (tiktoken's o200k_base) and OpenAI's chat accounting, and the catalog price typed in.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.costs.teacher_cost import refresh_teacher_costs
from flywheel.costs.tokens import tiktoken_encoding
from flywheel.datasets import load_examples
from flywheel.pricing import PriceCatalog
from flywheel.store import migrations
from flywheel.store.db import Warehouse
from tests.costs.fixture_warehouse import _interaction, day, insert_rows

runner = CliRunner()
GPT_4O_MINI = (0.15, 0.60)  # USD per 1M input / output tokens (flywheel/pricing/prices.yaml)
SYSTEM = (
    "You are the ShopWave support router. Read the customer's ticket and answer with exactly one queue "
    "name: billing, refund or shipping. Billing covers charges, invoices and payment methods. Refund "
    "covers money back for returned or cancelled orders. Shipping covers delivery times, tracking "
    "numbers, lost parcels and addresses. Never explain your answer. "
) * 3
FEW_SHOT = [
    ("I was charged twice for my subscription this month.", "billing"),
    ("My parcel says delivered but it never arrived at my door.", "shipping"),
    ("I returned the blender two weeks ago and still have no money back.", "refund"),
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by id",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]
SUBJECTS = {
    "billing": ["invoice", "card", "charge", "payment", "subscription fee", "receipt"],
    "refund": ["refund", "money back", "reimbursement", "credit for the return"],
    "shipping": ["parcel", "tracking number", "delivery", "courier", "package"],
}
ITEMS = ["lamp", "kettle", "sofa", "phone case", "desk", "blender", "jacket", "printer", "rug"]
VERBS = ["is wrong", "never showed up", "looks strange", "has not been processed", "is late"]


def usage_free_logs(path: Path, n: int, model: str, seed: int = 1) -> Path:
    """OpenAI chat logs without `usage`: full few-shot prompts with a tool schema, a label answer."""
    rng = random.Random(seed)
    with path.open("wb") as handle:
        for i in range(n):
            label = ["billing", "refund", "shipping"][i % 3]
            ticket = (
                f"Hi, the {rng.choice(SUBJECTS[label])} for my {rng.choice(ITEMS)} {rng.choice(VERBS)}. "
                f"Ref {rng.randint(10_000, 99_999)}"
            )
            messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
            for question, answer in FEW_SHOT:
                messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            messages.append({"role": "user", "content": ticket})
            record = {
                "request": {"model": model, "messages": messages, "tools": TOOLS},
                "response": {
                    "model": model,
                    "choices": [{"message": {"role": "assistant", "content": label}}],
                },  # no "usage"
                "timestamp": 1_767_000_000 + i * 600,
            }
            handle.write(orjson.dumps(record) + b"\n")
    return path


def write_config(path: Path, logs: Path, model: str, prices: dict[str, Any] | None = None) -> Path:
    config = {
        "teacher": {"model": model},
        "prices": prices or {},
        "workloads": [
            {
                "id": "routing",
                "task": "classification",
                "labels": ["billing", "refund", "shipping"],
                "sources": [{"path": str(logs), "format": "openai"}],
            }
        ],
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def cli(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--json"])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert result.exit_code == 0 and len(lines) == 1, result.output
    return json.loads(lines[0])


def independent_tokens(warehouse: Path) -> dict[str, tuple[int, int]]:
    """interaction id -> (prompt, completion) tokens of the stored request and answer, counted here."""
    encoding = tiktoken_encoding("o200k_base")

    def n(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("SELECT id, request, response FROM interactions").fetchall()
    finally:
        con.close()
    counts = {}
    for interaction_id, request_json, response_json in rows:
        request, response = json.loads(request_json), json.loads(response_json)
        prompt = 3 + sum(3 + n(m["role"]) + n(m["content"]) for m in request["messages"])
        prompt += n(json.dumps(request["tools"], sort_keys=True, separators=(",", ":")))
        counts[interaction_id] = (prompt, n(response["message"]["content"]))
    return counts


def price(tokens: tuple[int, int], rates: tuple[float, float]) -> float:
    return (tokens[0] * rates[0] + tokens[1] * rates[1]) / 1e6


def teacher(payload: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in payload["models"] if m["model"] == "teacher")


@pytest.mark.slow
def test_stats_costs_and_evaluate_agree_on_logs_without_usage(tmp_path: Path) -> None:
    logs = usage_free_logs(tmp_path / "logs.jsonl", 150, "gpt-4o-mini")
    base = ["--config", str(write_config(tmp_path / "flywheel.yaml", logs, "gpt-4o-mini"))]
    base += ["--home", str(tmp_path / "home")]
    assert cli(*base, "ingest")["ingested"] == 150
    cli(*base, "curate", "-w", "routing")
    evaluation = cli(*base, "evaluate", "-w", "routing", "--resamples", "100")
    stats = cli(*base, "stats")["workloads"]["routing"]
    costs = cli(*base, "costs")["workloads"]["routing"]

    warehouse = tmp_path / "home" / "warehouse.duckdb"
    expected = {i: price(t, GPT_4O_MINI) for i, t in independent_tokens(warehouse).items()}
    per_request = sum(expected.values()) / len(expected)
    eval_ids = [e.interaction_id for e in load_examples(Warehouse(warehouse), "routing", splits=("eval",))]
    eval_per_request = sum(expected[i] for i in eval_ids) / len(eval_ids)

    assert stats["token_methods"] == costs["token_methods"] == {"tiktoken:o200k_base": 150}
    assert stats["prompt_tokens"] == sum(t[0] for t in independent_tokens(warehouse).values())
    assert stats["prompt_tokens"] / 150 > 300  # the full prompt, few-shot and tools included
    assert stats["teacher_usd_per_request"] == pytest.approx(per_request, abs=2e-9)
    assert costs["teacher_usd_per_request"] == pytest.approx(per_request, abs=2e-9)
    assert costs["teacher_usd"] == pytest.approx(stats["teacher_usd"], abs=1e-6)
    assert stats["unpriced"] == costs["unpriced"] == 0 and stats["cost_usd"] == stats["teacher_usd"]
    assert costs["saved_usd"] == pytest.approx(0, abs=1e-9)  # no student yet: nothing saved, nothing lost
    scored = teacher(evaluation)
    assert scored["cost_basis"] == "tokens"
    assert scored["token_methods"] == {"tiktoken:o200k_base": len(eval_ids)}
    assert scored["cost_per_1k"] / 1000 == pytest.approx(eval_per_request, rel=1e-9)
    for figure in (stats["teacher_usd_per_request"], scored["cost_per_1k"] / 1000):
        assert figure == pytest.approx(costs["teacher_usd_per_request"], rel=0.01)


@pytest.mark.slow
def test_a_price_added_after_ingest_reprices_history_and_unpriced_models_warn(tmp_path: Path) -> None:
    logs = usage_free_logs(tmp_path / "logs.jsonl", 60, "acme-llm-1")
    config = write_config(tmp_path / "flywheel.yaml", logs, "acme-llm-1")
    base = ["--config", str(config), "--home", str(tmp_path / "home")]
    cli(*base, "ingest")
    cli(*base, "curate", "-w", "routing")
    fix = 'prices: {"acme-llm-1": {"input": <USD per 1M input tokens>, "output": <USD per 1M output>}}'

    stats = cli(*base, "stats")
    costs = cli(*base, "costs")
    evaluation = cli(*base, "evaluate", "-w", "routing", "--resamples", "100", "--dry-run")
    assert stats["workloads"]["routing"]["unpriced"] == costs["workloads"]["routing"]["unpriced"] == 60
    assert stats["workloads"]["routing"]["teacher_usd"] == costs["workloads"]["routing"]["teacher_usd"] == 0
    assert any(fix in warning and "60 requests" in warning for warning in stats["warnings"])
    assert costs["warnings"] == stats["warnings"]
    assert costs["workloads"]["routing"]["unpriced_models"][0]["fix"] == fix
    assert teacher(evaluation)["cost_per_1k"] is None and teacher(evaluation)["cost_basis"] == "unknown"
    assert fix in teacher(evaluation)["cost_warnings"][0]
    result = runner.invoke(app, [*base, "stats"])
    assert "warning:" in result.stderr and "acme-llm-1" in result.stderr

    write_config(config, logs, "acme-llm-1", prices={"acme-llm-1": {"input": 2.0, "output": 8.0}})
    stats = cli(*base, "stats")["workloads"]["routing"]
    costs = cli(*base, "costs")["workloads"]["routing"]
    evaluation = cli(*base, "evaluate", "-w", "routing", "--resamples", "100", "--dry-run")
    con = duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True)
    sql = "SELECT sum(prompt_tokens), sum(completion_tokens) FROM token_counts"
    prompt, completion = con.execute(sql).fetchone()
    con.close()
    expected = (prompt * 2.0 + completion * 8.0) / 1e6
    assert stats["token_methods"] == {"estimate:chars/4": 60} and stats["unpriced_models"] == []
    assert stats["unpriced"] == costs["unpriced"] == 0
    assert stats["teacher_usd"] == pytest.approx(expected, abs=1e-6)
    assert costs["teacher_usd"] == pytest.approx(expected, abs=1e-6)
    per_request = teacher(evaluation)["cost_per_1k"] / 1000
    assert per_request == pytest.approx(costs["teacher_usd_per_request"], rel=0.01)


def test_an_old_warehouse_upgrades_and_its_history_is_repriced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse written before 0010 (and 0008): calls without usage were stored with cost_usd 0.0."""
    available = migrations.available_migrations
    monkeypatch.setattr(migrations, "available_migrations", lambda: [m for m in available() if m[0] < 8])
    path = tmp_path / "old.duckdb"
    old = Warehouse(path)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Where is it?"}]
    request = orjson.dumps({"messages": messages}).decode()
    answer = orjson.dumps({"message": {"role": "assistant", "content": "shipping"}}).decode()
    no_usage = {"prompt_tokens": None, "completion_tokens": None}
    error = orjson.dumps({"error": {"code": 500}}).decode()
    rows = [
        _interaction("w", 0, day(0), model="o3-mini-2025-01-31", cost_usd=0.0, request=request,
                     response=answer, **no_usage),
        _interaction("w", 1, day(0), model="gpt-4o", prompt_tokens=1000, completion_tokens=100),
        _interaction("w", 2, day(1), model="o3-mini", status="error", response=error, **no_usage),
    ]  # fmt: skip
    old.write(lambda con: insert_rows(con, "interactions", rows))
    monkeypatch.setattr(migrations, "available_migrations", available)

    warehouse = Warehouse(path)
    report = refresh_teacher_costs(warehouse, PriceCatalog.load())
    assert report.counted == 2 and report.methods == {"tiktoken:o200k_base": 1, "error": 1}
    got = warehouse.read(
        lambda con: con.execute(
            "SELECT id, prompt_tokens, completion_tokens, token_method, price_key, teacher_usd "
            "FROM v_request_costs ORDER BY id"
        ).fetchall()
    )
    encoding = tiktoken_encoding("o200k_base")
    prompt = 3 + 3 + 1 + len(encoding.encode(SYSTEM)) + 3 + 1 + len(encoding.encode("Where is it?"))
    completion = len(encoding.encode("shipping"))
    assert got[0][:5] == ("w-0", prompt, completion, "tiktoken:o200k_base", "o3-mini")  # not o3, not $0
    assert got[0][5] == pytest.approx((prompt * 1.10 + completion * 4.40) / 1e6)
    assert got[1][3:] == ("usage", "gpt-4o", pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6))
    assert got[2][1:4] == (0, 0, "error") and got[2][5] == 0.0  # a failed call is not billed
    sql = "SELECT max(version) FROM schema_migrations"
    assert warehouse.read(lambda con: con.execute(sql).fetchone())[0] >= 8
