"""Cascade calibration and partial promotion on eval sets whose answer is known by construction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flywheel.config import GateConfig
from flywheel.evaluate.cascade import calibrate, candidate_thresholds, claim_mask
from flywheel.evaluate.partial import CascadeSettings, decide_with_cascade
from flywheel.evaluate.runner import EvaluationResult, ReplayPredictor, Usage, evaluate_predictors
from flywheel.pricing import Price, PriceCatalog
from flywheel.records import Example, Prediction
from tests.evaluate.helpers import LABELS, classification_workload, label_examples

PRICES = PriceCatalog({"big-model": Price(2.5, 10.0)})
RESAMPLES = 400


class ConfidentPredictor:
    """Right with confidence 0.7-0.99 on examples `right(e)`, wrong with 0.05-0.45 elsewhere."""

    def __init__(self, name: str, right, invalid=lambda e: False) -> None:  # type: ignore[no-untyped-def]
        self.name, self._right, self._invalid = name, right, invalid

    def predict(self, examples: list[Example]) -> list[Prediction]:
        out = []
        for example in examples:
            index = int(example.example_id.rsplit("-", 1)[1])
            gold = example.gold or example.label or ""
            if self._right(example):
                answer, confidence = gold, 0.7 + (index % 30) / 100
            else:
                answer, confidence = next(x for x in LABELS if x != gold), 0.05 + (index % 41) / 100
            invalid = "outside_label_set" if self._invalid(example) else None
            message = {"role": "assistant", "content": answer}
            out.append(
                Prediction(message, confidence=confidence, completion_tokens=1, invalid_reason=invalid)
            )
        return out


def _index(example: Example) -> int:
    return int(example.example_id.rsplit("-", 1)[1])


def score(examples: list[Example], *predictors, teacher_target=None) -> EvaluationResult:  # type: ignore[no-untyped-def]
    usage = {e.interaction_id: Usage(400, 5, 600.0, cost_usd=0.001) for e in examples}
    if teacher_target is not None:
        examples = [teacher_target(e) for e in examples]
    return evaluate_predictors(
        [*predictors, ReplayPredictor(model="big-model", usage=usage)],
        examples,
        classification_workload(),
        prices=PRICES,
        n_resamples=RESAMPLES,
    )


def settings(result: EvaluationResult, **kw) -> CascadeSettings:  # type: ignore[no-untyped-def]
    return CascadeSettings("classification", result.slices, RESAMPLES, 0, **kw)


def test_thresholds_sit_between_confidence_levels() -> None:
    assert candidate_thresholds(np.array([0.9, 0.5, 0.5, np.inf, 0.7])) == [0.0, 0.6, pytest.approx(0.8)]
    assert candidate_thresholds(np.array([np.inf])) == [0.0]


def test_confident_right_unconfident_wrong_reference_teacher() -> None:
    """Agreement target 0.99 on 200 rows: the student may claim exactly its 120 right answers (one
    wrong one more puts the mix's CI low under 0.99), so the threshold lies between 0.45 and 0.7."""
    examples = label_examples({"billing": 100, "shipping": 60, "refund": 40}, gold=False)
    student = ConfidentPredictor("cand", lambda e: _index(e) % 5 < 3)  # 3 in 5 right: 120 of 200
    result = score(examples, student)
    cand, teacher = result.models["cand"], result.models["teacher"]
    assert cand.primary.value == pytest.approx(0.6) and teacher.primary.value == 1.0
    cascade = calibrate(
        cand, teacher, task="classification", metric="accuracy", floor=0.99, n_resamples=RESAMPLES
    )
    chosen = cascade.chosen
    assert chosen is not None
    assert chosen.claimed == 120 and chosen.coverage == pytest.approx(0.6)
    assert 0.45 < chosen.threshold < 0.7 and chosen.value == 1.0
    # every point that claims more also claims a wrong answer: its mix is below 1.0
    assert all(p.value < 1.0 for p in cascade.points if p.coverage > 0.6)
    # coverage is monotone in the threshold (points are listed coverage-descending)
    coverages = [p.coverage for p in cascade.points]
    assert coverages == sorted(coverages, reverse=True) and coverages[0] == 1.0


def test_gold_reference_mixes_the_teachers_own_gold_score() -> None:
    """Teacher wrong on 20 of 200 (0.90); the student is right on 120 (10 of them where the teacher is
    wrong). At the boundary the mix is 120 + the teacher's 70 right of the other 80 = 0.95, not 1.0."""
    examples = label_examples({"billing": 100, "shipping": 60, "refund": 40})

    def teacher_wrong(e: Example) -> bool:
        return _index(e) % 20 in (0, 3)  # 20 of 200: the student is right on the 10 at 0, wrong at 3

    def logged(e: Example) -> Example:
        answer = next(x for x in LABELS if x != e.gold) if teacher_wrong(e) else e.gold
        return replace(e, label=answer, target={"role": "assistant", "content": answer})

    student = ConfidentPredictor("cand", lambda e: _index(e) % 5 < 3)
    result = score(examples, student, teacher_target=logged)
    assert result.reference == "gold" and result.models["teacher"].primary.value == pytest.approx(0.9)
    cascade = calibrate(
        result.models["cand"], result.models["teacher"], task="classification", metric="accuracy",
        floor=0.9 - 0.05, n_resamples=RESAMPLES,
    )  # fmt: skip
    boundary = next(p for p in cascade.points if p.claimed == 120)
    assert boundary.value == pytest.approx(0.95)
    assert cascade.chosen is not None and cascade.chosen.coverage >= 0.6


def test_invalid_answers_always_go_to_the_teacher() -> None:
    examples = label_examples({"billing": 60, "shipping": 40}, gold=False)
    student = ConfidentPredictor("cand", lambda e: True, invalid=lambda e: _index(e) < 10)
    result = score(examples, student)
    mask = claim_mask(result.models["cand"], 0.0)
    assert mask.sum() == 100 - 20  # 10 invalid per label, whatever their confidence


def test_partial_promotion_when_the_full_candidate_fails() -> None:
    examples = label_examples({"billing": 100, "shipping": 60, "refund": 40}, gold=False)
    result = score(examples, ConfidentPredictor("cand", lambda e: _index(e) % 5 < 3))
    models = result.models
    gate = GateConfig(min_agreement=0.95)
    decision = decide_with_cascade(
        gate, [models["cand"]], models["teacher"], None, settings(result), reference="teacher"
    )
    assert decision.decision == "promote_partial" and decision.winner == "cand"
    assert decision.reasons == ["passed_partial", "agreement_below_target"]
    assert decision.cascade is not None and decision.cascade["coverage"] >= 0.6
    assert 0.0 < decision.cascade["threshold"] < 0.7
    partial = [c for c in decision.checks if c.check.startswith("partial:")]
    assert {c.check for c in partial} >= {
        "partial:agreement",
        "partial:format_validity",
        "partial:cost",
        "partial:coverage",
    }
    assert all(c.passed for c in partial)
    # the same cascade under a minimum coverage it cannot reach is a reject that says so
    strict = decide_with_cascade(
        GateConfig(min_agreement=0.95, min_coverage=0.9), [models["cand"]], models["teacher"], None,
        settings(result), reference="teacher",
    )  # fmt: skip
    assert strict.decision == "reject" and "coverage_below_minimum" in strict.reasons


def test_a_full_pass_stays_a_full_promotion_and_cost_failures_are_not_rescued() -> None:
    examples = label_examples({"billing": 100, "shipping": 60, "refund": 40}, gold=False)
    result = score(examples, ConfidentPredictor("cand", lambda e: True))
    models = result.models
    full = decide_with_cascade(
        GateConfig(), [models["cand"]], models["teacher"], None, settings(result), reference="teacher"
    )
    assert full.decision == "promote" and full.cascade is None
    assert full.cascades[0]["coverage"] == 1.0
    weak = score(examples, ConfidentPredictor("cand", lambda e: _index(e) % 5 < 3))
    costly = GateConfig(min_agreement=0.95, min_cost_reduction=1.0)
    decision = decide_with_cascade(
        costly, [weak.models["cand"]], weak.models["teacher"], None, settings(weak), reference="teacher"
    )
    assert decision.decision == "reject" and not any(c.check.startswith("partial:") for c in decision.checks)


def test_a_partial_champion_is_compared_as_it_is_served() -> None:
    """Against the weak champion's full score (0.6) a 0.97 candidate looks far better; against its
    served mix (1.0 at its threshold) it is worse by more than the champion margin."""
    examples = label_examples({"billing": 100, "shipping": 60, "refund": 40}, gold=False)
    champion = ConfidentPredictor("champ", lambda e: _index(e) % 5 < 3)
    candidate = ConfidentPredictor("cand", lambda e: _index(e) % 34 != 0)  # 6 of 200 wrong
    result = score(examples, champion, candidate)
    models = result.models
    gate = GateConfig(min_agreement=0.85)
    as_full = decide_with_cascade(
        gate, [models["cand"]], models["teacher"], models["champ"], settings(result), reference="teacher"
    )
    assert as_full.decision == "promote"
    served = settings(result, champion_serving=(0.55, "all"))
    as_served = decide_with_cascade(
        gate, [models["cand"]], models["teacher"], models["champ"], served, reference="teacher"
    )
    assert as_served.decision != "promote" and "inferior_to_champion" in as_served.failures("cand")


def test_the_running_curve_equals_the_bootstrap_of_each_mix() -> None:
    """Every point of the incrementally computed curve is exactly the seeded bootstrap estimate of the
    mixed statistics at its threshold (same resamples as every other estimate of the split)."""
    from flywheel.evaluate.bootstrap import estimate
    from flywheel.evaluate.cascade import mixed_stats
    from flywheel.evaluate.runner import metric_module

    examples = label_examples({"billing": 50, "shipping": 30}, gold=False)
    result = score(examples, ConfidentPredictor("cand", lambda e: _index(e) % 3 != 0))
    cand, teacher = result.models["cand"], result.models["teacher"]
    cascade = calibrate(
        cand, teacher, task="classification", metric="accuracy", floor=0.9, n_resamples=RESAMPLES
    )
    summarize = metric_module("classification").summarize
    for point in cascade.points[:: max(1, len(cascade.points) // 6)]:
        stats = mixed_stats(cand, teacher, claim_mask(cand, point.threshold))
        [accuracy] = [
            e for e in estimate(stats, summarize, n_resamples=RESAMPLES)[0] if e.metric == "accuracy"
        ]
        assert (point.value, point.ci_low, point.ci_high) == pytest.approx(
            (accuracy.value, accuracy.ci_low, accuracy.ci_high)
        )
