"""recipe-score of a partially promoted champion: the mix serve runs (student above its recorded
threshold, teacher below) is scored and priced beside the student alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flywheel.recipes.scoring import _as_served
from tests.evaluate.helpers import label_examples
from tests.evaluate.test_cascade import ConfidentPredictor, score


def test_a_partial_champion_is_scored_as_served_at_its_threshold() -> None:
    examples = label_examples({"billing": 60, "shipping": 40, "refund": 20})
    right = lambda e: int(e.example_id.rsplit("-", 1)[1]) % 2 == 0  # noqa: E731
    result = score(examples, ConfidentPredictor("weak", right))
    student, teacher = result.models["weak"], result.models["teacher"]
    record = SimpleNamespace(metrics={"serving": {"threshold": 0.6, "claims": "all", "coverage": 0.5}})

    served = _as_served(record, student, teacher, "classification", examples, 200)

    assert served is not None
    assert served["coverage"] == pytest.approx(0.5)  # the confident half: exactly the right answers
    accuracy = served["metrics"]["accuracy"][0]
    assert accuracy == pytest.approx(1.0) and student.estimates  # the mix is right where alone it is not
    alone = next(e.value for e in student.estimates if e.metric == "accuracy" and e.slice is None)
    assert alone == pytest.approx(0.5)
    assert served["cost_per_1k"] == pytest.approx(student.cost_per_1k + 0.5 * teacher.cost_per_1k)
    assert 0 < served["savings_pct"] < 1


def test_a_model_promoted_on_all_traffic_has_no_served_mix() -> None:
    examples = label_examples({"billing": 10, "refund": 10})
    result = score(examples, ConfidentPredictor("strong", lambda e: True))
    record = SimpleNamespace(metrics={"serving": {"coverage": 1.0}})
    assert _as_served(record, result.models["strong"], result.models["teacher"], "classification",
                      examples, 50) is None  # fmt: skip
