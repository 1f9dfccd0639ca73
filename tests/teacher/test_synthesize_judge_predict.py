"""Synthesis for rare slices, LLM-as-judge scoring and the teacher as a Predictor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flywheel.records import Prediction, Predictor
from flywheel.store.db import Warehouse
from flywheel.teacher import TeacherPredictor, judge, judge_many, latest_labels, synthesize_for_slices
from flywheel.teacher.judge import parse_judge_score
from flywheel.teacher.structured import InvalidAnswer
from flywheel.teacher.synthesize import NearDuplicates
from flywheel.testing.oracles import keyword_oracle
from tests.teacher.conftest import PRICES, count, support_examples, support_workload, teacher

EXISTING = "ticket 2: question about refund"
FRESH = [
    "The blender I got last week stopped working, can I get a refund?",
    "Please refund the duplicate charge from Tuesday.",
    "I returned the shoes ten days ago and still have no refund.",
    "My parcel arrived crushed; I would like a refund rather than a replacement.",
    "How long does a refund take to reach a credit card?",
    "You billed me for a subscription I cancelled in March, refund it please.",
    "Can the refund go to store credit instead of PayPal?",
]


def writer(request: dict[str, Any]) -> Any:
    """Writes new inputs when asked to (including a copy and a near-copy of existing data)."""
    if request["messages"][0]["content"].startswith("You write realistic"):
        wanted = int(request["messages"][1]["content"].split("Write ")[1].split()[0])
        return json.dumps({"inputs": [EXISTING, EXISTING.upper() + "!", *FRESH[:wanted]]})
    return keyword_oracle(request)


def test_synthesize_adds_deduplicated_labeled_synthetic_examples(warehouse: Warehouse) -> None:
    seeds = {"refund": [e for e in support_examples(9) if e.slice == "refund"]}
    with teacher(writer) as (client, _):
        kwargs = {"client": client, "warehouse": warehouse, "prices": PRICES, "existing_texts": [EXISTING]}
        report = synthesize_for_slices(seeds, 5, support_workload(), **kwargs)
        again = synthesize_for_slices(seeds, 5, support_workload(), **kwargs)
    assert (report.labeled, report.failed) == (5, 0)
    assert report.duplicates >= 2  # the copy and the shouted near-copy of existing data
    assert report.calls == 6  # one generation call, five labeling calls
    assert (again.labeled, again.calls) == (5, 0)
    synthetic = [label for label in latest_labels(warehouse, "support").values() if label.synthetic]
    assert len(synthetic) == 5
    for label in synthetic:
        assert (label.mode, label.slice, label.label) == ("synthesize", "refund", "refund")
        assert label.messages[0] == {"role": "system", "content": "Route the ticket."}
        assert label.messages[-1] == {
            "role": "user",
            "content": FRESH[FRESH.index(label.messages[-1]["content"])],
        }
    assert count(warehouse, "SELECT count(*) FROM labels WHERE synthetic")[0][0] == 5


def test_near_duplicates_are_caught() -> None:
    seen = NearDuplicates(["Where is my parcel? It was due on Monday and has not arrived yet."])
    assert not seen.add("where is my parcel it was due on monday and has not arrived yet")
    assert not seen.add("Where is my parcel? It was due on Monday and has not arrived yet!!")
    assert seen.add("Please cancel my subscription before the next billing date.")
    assert not seen.add("please cancel my subscription before the next billing date")


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ('{"score": 8, "reason": "close"}', 8.0),
        ('{"score": "10", "reason": "same"}', 10.0),
        ('```json\n{"rating": "7/10", "explanation": "ok"}\n```', 7.0),
        ('Sure! Here is my verdict: {"score": 9.5, "reason": "fine"} Thanks.', 9.5),
        ("Score: 6 - mostly right", 6.0),
        # read whole: "10" is ten (a first-digit parser reads it as 1, the worst score)
        ("10", 10.0),
        ("10/10", 10.0),
        ("[[10]]", 10.0),
        ("The answer matches the reference.\n\nRating: [[8]]", 8.0),
        ("**9**.", 9.0),
        ('{"score": "4/5", "reason": "minor gap"}', 8.0),  # rescaled to the 1-10 scale
        ("Score: 7.5 out of 10", 7.5),
        ("[9]", 9.0),
    ],
)
def test_judge_replies_parse_robustly(reply: str, score: float) -> None:
    assert parse_judge_score(reply).score == score


def test_unusable_judge_replies_are_errors() -> None:
    with pytest.raises(InvalidAnswer, match="no_score"):
        parse_judge_score("looks good to me")
    with pytest.raises(InvalidAnswer, match="score_out_of_range"):
        parse_judge_score('{"score": 42}')


def judge_oracle(request: dict[str, Any]) -> str:
    prompt = request["messages"][-1]["content"]
    if "Candidate answer:\nParis" in prompt:
        return '{"score": "10", "reason": "correct"}'
    if "invalid" in prompt:  # the retry after "no score" below
        return '{"score": 2, "reason": "wrong city"}'
    return "It is wrong."


def test_judge_scores_against_the_reference_and_ledgers_as_evaluation(warehouse: Warehouse) -> None:
    with teacher(judge_oracle) as (client, app):
        single = judge("Paris", "Paris", client=client, prices=PRICES)
        scores = judge_many(
            [("Paris", "Paris"), ("Lyon", "Paris")],
            client=client,
            warehouse=warehouse,
            prices=PRICES,
            workload_id="faq",
        )
        sent = app.state.requests[0]
    assert single.score == 10.0 and single.reason == "correct"
    assert [s.score for s in scores] == [10.0, 2.0]
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["score", "reason"]
    assert count(warehouse, "SELECT kind, count(*) FROM cost_ledger GROUP BY ALL") == [("evaluation", 3)]


def test_teacher_predictor_answers_in_format_and_reuses_cached_answers(warehouse: Warehouse) -> None:
    from flywheel.teacher import label_examples

    examples = support_examples(4)
    with teacher(keyword_oracle) as (client, app):
        label_examples(
            examples[:2], support_workload(), "relabel", client=client, warehouse=warehouse, prices=PRICES
        )
        predictor = TeacherPredictor(client, support_workload(), warehouse=warehouse, prices=PRICES)
        predictions = predictor.predict(examples)
        completions = app.state.stats["completions"]
    typed: Predictor = predictor  # the Protocol evaluation programs against
    assert typed.name == "teacher:fake-teacher"
    assert all(isinstance(p, Prediction) for p in predictions)
    assert [p.message["content"] for p in predictions] == [e.label for e in examples]
    assert all(p.prompt_tokens > 0 and p.latency_ms > 0 for p in predictions)
    assert completions == 4  # 2 relabel calls reused, 2 new
    assert count(warehouse, "SELECT kind, count(*) FROM cost_ledger GROUP BY ALL ORDER BY 1") == [
        ("evaluation", 2),
        ("labeling", 2),
    ]
