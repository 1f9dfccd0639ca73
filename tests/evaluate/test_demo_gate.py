"""On the three demo workloads: an undertrained candidate is rejected with the right reason, a good one
is promoted, and rollback restores the previous champion. The teacher replays its logged answers
(planted wrong and malformed answers included) and everything is scored against the gold answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flywheel.config import load_config
from flywheel.demo import demo_config_path, generate_demo_traffic
from flywheel.evaluate.runner import ReplayPredictor
from flywheel.evaluate.workflow import evaluate_workload
from flywheel.pricing import PriceCatalog
from flywheel.records import Example, canonical_dumps
from flywheel.registry import Registry
from flywheel.store.db import Warehouse
from tests.evaluate.helpers import FnPredictor, insert_model

SKIPPED_FAULTS = {"error", "malformed_line", "exact_duplicate", "near_duplicate", "streamed"}
CONFIG = load_config(demo_config_path())


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo_traffic(out, seed=11, size=300)
    return out


def gold_string(task: str, answer: Any) -> str:
    if task == "classification":
        return answer
    return canonical_dumps(answer).decode()


def demo_examples(demo_dir: Path, workload_id: str) -> list[Example]:
    """Eval examples as curation would give them: clean lines, logged target, gold label, slice."""
    task = CONFIG.workload(workload_id).task
    gold = {row["line"]: row for row in map(json.loads, (demo_dir / f"{workload_id}.gold.jsonl").open())}
    examples = []
    for number, line in enumerate((demo_dir / f"{workload_id}.jsonl").open("rb"), start=1):
        row = gold.get(number)
        if row is None or row["answer"] is None or SKIPPED_FAULTS & set(row["faults"]):
            continue
        record = json.loads(line)
        request = record["request"]
        examples.append(
            Example(
                example_id=f"{workload_id}:{number}",
                workload_id=workload_id,
                messages=request["messages"],
                target=record["response"]["choices"][0]["message"],
                gold=gold_string(task, row["answer"]),
                slice=row["slice"],
                split="eval",
                tools=request.get("tools"),
                response_format=request.get("response_format"),
            )
        )
    return examples


def gold_message(example: Example, task: str) -> dict[str, Any]:
    if task != "tool_call":
        return {"role": "assistant", "content": example.gold}
    answer = json.loads(example.gold or "{}")
    if answer.get("type") == "text":
        return {"role": "assistant", "content": answer["content"]}
    call = {
        "type": "function",
        "function": {"name": answer["name"], "arguments": json.dumps(answer["arguments"])},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


UNDERTRAINED = {
    # always the majority queue
    "support-routing": lambda e: "billing",
    # valid JSON for the schema, but extracts nothing
    "order-extraction": lambda e: json.dumps(
        {
            "order_id": None,
            "customer_name": None,
            "email": None,
            "phone": None,
            "items": [],
            "delivery_city": None,
        }
    ),
    # small talk for everything
    "tool-assistant": lambda e: "Hi! How can I help you today?",
}


@pytest.mark.parametrize("workload_id", ["support-routing", "order-extraction", "tool-assistant"])
def test_demo_undertrained_rejected_good_promoted_rollback(
    workload_id: str, demo_dir: Path, tmp_path: Path
) -> None:
    workload = CONFIG.workload(workload_id)
    examples = demo_examples(demo_dir, workload_id)
    assert len(examples) > 200
    home = tmp_path / "home"
    registry = Registry(Warehouse(home / "warehouse.duckdb"), home)
    teacher = ReplayPredictor(model="gpt-4o-mini")  # tokens estimated from the text, priced by the catalog

    def turn(candidates: dict[str, Any], champion: tuple[str, Any] | None = None) -> Any:
        for model_id in candidates:
            insert_model(registry.warehouse, home, model_id, workload_id)
        return evaluate_workload(
            registry,
            workload,
            examples,
            candidates=candidates,
            teacher=teacher,
            champion=champion,
            prices=PriceCatalog.load(),
            n_resamples=300,
        )

    good = FnPredictor("good", lambda e: gold_message(e, workload.task))
    rejected = turn({f"{workload_id}/undertrained/1": FnPredictor("u", UNDERTRAINED[workload_id])})
    assert rejected.decision.decision == "reject"
    assert rejected.decision.reasons[0] == "ci_low_below_threshold"
    assert registry.champion(workload_id) is None

    first = turn({f"{workload_id}/good/1": good})
    assert first.decision.decision == "promote", first.decision.checks
    teacher_score = first.result.models["teacher"].primary.value
    assert 0.85 < teacher_score < 1.0  # the teacher's planted mistakes count against it

    second = turn({f"{workload_id}/good/2": good}, champion=(f"{workload_id}/good/1", good))
    assert second.decision.winner == f"{workload_id}/good/2"
    registry.rollback(workload_id, "regression reported")
    assert registry.champion(workload_id).model_id == f"{workload_id}/good/1"
    assert json.loads(registry.manifest_path.read_text())[workload_id]["model_id"] == f"{workload_id}/good/1"
