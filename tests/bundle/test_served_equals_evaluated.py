"""Parity on raw requests: what `flywheel serve` answers is exactly what `evaluate` scored.

Each test runs one real turn (ingest, curate, train, evaluate + gate, promote) on logs written as an
application would write them, then sends the logged eval requests, unchanged (full prompts, the
application's own `model` name), to a real serve app, and compares.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from flywheel.answers import AnswerSpec, read_message
from flywheel.bundle import read_bundle
from flywheel.recipes import default_data
from flywheel.records import message_text
from tests.bundle.loop import content, demo_workload, logged_requests, run_turn, serve, write_config

pytestmark = pytest.mark.slow
BANKING = default_data("banking77")
WRAPPED = re.compile(r"^\[\[\[\[([A-Z][^\[\]]*)\]\]\]\]$")
INTENTS = 8


def title(category: str) -> str:
    return category.replace("_", " ").title()


def write_wrapped_banking_logs(out: Path, per_intent: int = 40, shots: int = 6) -> tuple[Path, list[str]]:
    """BANKING77 traffic shaped like the logs that broke serving: a 1,000+ token static few-shot
    prompt with the item at its end, answers wrapped as [[[[Card Arrival]]]], no usage logged."""
    rows: dict[str, list[str]] = {}
    with (BANKING / "train.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["category"], []).append(row["text"])
    intents = sorted(rows)[:INTENTS]
    examples = "".join(
        f"Message: {text}\nAnswer: [[[[{title(c)}]]]]\n\n" for i in range(shots) for c in intents
        for text in [rows[c][i]]
    )  # fmt: skip
    prefix = (
        "Classify the customer's message into one banking intent. Answer with the intent name "
        f"wrapped in four square brackets, like the examples.\n\n{examples}"
    )
    assert len(prefix) / 4 > 1000, "the static prompt must be over 1,000 tokens"
    lines = []
    for i in range(shots, shots + per_intent):
        for category in intents:
            request = {
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are a banking support analyst."},
                    {"role": "user", "content": f"{prefix}Message: {rows[category][i]}\nAnswer:"},
                ],
            }
            answer = {"role": "assistant", "content": f"[[[[{title(category)}]]]]"}
            response = {"model": "gpt-4o-mini", "choices": [{"message": answer, "finish_reason": "stop"}]}
            lines.append(orjson.dumps({"request": request, "response": response}))
    path = out / "banking-wrapped.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, [title(c).lower() for c in intents]


@pytest.mark.skipif(not (BANKING / "train.csv").exists(), reason="../shared/data/banking77 is absent")
def test_long_static_prompt_and_wrapped_labels_served_as_evaluated(tmp_path: Path) -> None:
    logs, labels = write_wrapped_banking_logs(tmp_path)
    workload = {
        "id": "banking-wrapped",
        "task": "classification",
        "labels": labels,
        "label_parser": {"regex": r"\[\[\[\[(.+?)\]\]\]\]", "lowercase": True},
        "sources": [{"path": str(logs), "format": "openai"}],
        "students": [
            {
                "name": "minilm",
                "kind": "encoder-classifier",
                "epochs": 4,
                "max_seq_length": 64,
                "learning_rate": 1e-4,
                "options": {"learning_curve": False},
            }
        ],  # fixed settings: the test is about serving, not about the fit search
        "gate": {"min_agreement": 0.6, "min_cost_reduction": 0.0},
        "curation": {"eval_fraction": 0.3},
    }
    turn = run_turn(write_config(tmp_path / "home", workload), "banking-wrapped")
    champion = turn.champion
    bundle = read_bundle(turn.loop.home / "models" / "banking-wrapped" / champion.split("/")[-1])
    assert bundle.template and bundle.template["text_prefix"], "the static few-shot block is pruned"
    assert "gpt-4o-mini" in bundle.request_models

    evaluated = turn.evaluated()
    logged = logged_requests(turn.loop, list(evaluated))
    ids = sorted(evaluated)
    # The application changes nothing but its base_url: same model name, the full 1,300-token prompt.
    responses = serve(turn.loop, [logged[i][0] for i in ids], on_unsure="student")
    served = {i: content(r) for i, r in zip(ids, responses, strict=True)}

    assert all(served[i]["content"] == message_text(evaluated[i]) for i in ids), "served != evaluated"
    assert all(WRAPPED.match(served[i]["content"] or "") for i in ids), "not in the teacher's format"
    spec = AnswerSpec.of(turn.loop.workload("banking-wrapped"))
    agree = [
        read_message(spec, served[i], None).value == read_message(spec, logged[i][1], None).value for i in ids
    ]
    agreement = sum(agree) / len(agree)
    reported = turn.report.result.models[champion].primary
    accuracy = turn.report.result.models[champion].get("accuracy")
    assert accuracy is not None and agreement >= accuracy.value - 0.03, (agreement, accuracy.value)
    print(  # the figures behind issue 16's acceptance (pytest -s shows them)
        f"\nwrapped banking77: {len(ids)} eval requests; evaluate accuracy vs teacher {accuracy.value:.3f} "
        f"(CI {accuracy.ci_low:.3f}-{accuracy.ci_high:.3f}); served agreement {agreement:.3f}; "
        f"{len(Counter(served[i]['content'] for i in ids))} distinct answers"
    )
    assert agreement >= 0.6, f"agreement {agreement:.3f} (a constant answer scores 1/{INTENTS})"
    assert len(Counter(served[i]["content"] for i in ids)) >= INTENTS // 2
    assert reported is not None


@pytest.mark.parametrize(
    ("workload_id", "student"),
    [
        ("order-extraction", {"name": "extractor", "kind": "encoder-extractor", "epochs": 1}),
        ("support-routing", {"name": "scratch", "kind": "scratch", "epochs": 1, "max_seq_length": 96}),
    ],
)
def test_every_student_kind_serves_what_evaluate_scored(
    tmp_path: Path, demo_logs: Path, workload_id: str, student: dict[str, Any]
) -> None:
    config = write_config(tmp_path / "home", demo_workload(workload_id, demo_logs, student))
    turn = run_turn(config, workload_id)
    evaluated = turn.evaluated()
    logged = logged_requests(turn.loop, list(evaluated))
    ids = sorted(evaluated)[:60]
    responses = serve(turn.loop, [logged[i][0] for i in ids], on_unsure="student", confidence_threshold=0.0)
    for i, response in zip(ids, responses, strict=True):
        served = content(response)
        assert message_text(served) == message_text(evaluated[i]), i
        assert (served.get("tool_calls") or None) == (evaluated[i].get("tool_calls") or None), i
