"""Every gate reason code, on real scores from the runner."""

from __future__ import annotations

import pytest

from flywheel.config import GateConfig
from flywheel.evaluate.gate import decide
from flywheel.evaluate.runner import EvaluationResult, ReplayPredictor, Usage, evaluate_predictors
from flywheel.pricing import Price, PriceCatalog
from flywheel.records import Example, Predictor
from tests.evaluate.helpers import (
    FnPredictor,
    classification_workload,
    gold_predictor,
    label_examples,
    wrong_on_slice,
)

EXAMPLES = label_examples({"billing": 60, "shipping": 40, "refund": 20})
PRICES = PriceCatalog({"big-model": Price(2.5, 10.0), "free-model": Price(0.0, 0.0)})


def teacher(model: str = "big-model") -> ReplayPredictor:
    return ReplayPredictor(model=model, usage={e.interaction_id: Usage(400, 5, 600.0) for e in EXAMPLES})


def score(*predictors: Predictor, teacher_model: str | None = "big-model") -> EvaluationResult:
    return evaluate_predictors(
        [*predictors, teacher(teacher_model) if teacher_model else ReplayPredictor()],
        EXAMPLES,
        classification_workload(),
        prices=PRICES,
        n_resamples=300,
    )


def gate(**overrides: object) -> GateConfig:
    return GateConfig(**overrides)  # type: ignore[arg-type]


def run(result: EvaluationResult, config: GateConfig, candidates: list[str], champion: str | None = None):
    return decide(
        config,
        [result.models[c] for c in candidates],
        result.models["teacher"],
        result.models[champion] if champion else None,
    )


def test_good_cheap_candidate_passes() -> None:
    result = score(gold_predictor())
    decision = run(result, gate(), ["good"])
    assert (decision.decision, decision.winner, decision.champion, decision.reasons) == (
        "promote",
        "good",
        "good",
        ["passed"],
    )
    assert all(c.passed for c in decision.checks)
    assert {c.check for c in decision.checks} == {"vs_teacher", "format_validity", "cost"}


def test_ci_low_below_teacher_relative_threshold() -> None:
    result = score(wrong_on_slice("weak", "billing", every=3))  # 20 of 120 wrong
    decision = run(result, gate(max_drop_vs_teacher=0.05), ["weak"])
    assert decision.decision == "reject" and decision.winner is None
    assert decision.reasons == ["ci_low_below_threshold"]
    [check] = [c for c in decision.checks if not c.passed]
    assert check.check == "vs_teacher" and check.threshold == pytest.approx(1.0 - 0.05)
    assert "teacher 1.0000" in check.detail


def test_ci_low_below_absolute_threshold_even_when_the_point_value_clears_it() -> None:
    result = score(wrong_on_slice("almost", "billing", every=20))  # 3 of 120 wrong: 0.975
    scored = result.models["almost"].primary
    assert scored.value >= 0.95 > scored.ci_low
    decision = run(result, gate(min_score=0.95, max_drop_vs_teacher=None), ["almost"])
    assert decision.reasons == ["ci_low_below_threshold"]
    assert run(result, gate(min_score=0.9, max_drop_vs_teacher=None), ["almost"]).decision == "promote"


def test_slice_below_floor() -> None:
    result = score(wrong_on_slice("no-refunds", "refund", every=2))  # refund slice: 10 of 20 right
    config = gate(max_drop_vs_teacher=None, slice_floor=0.8, slice_min_examples=20)
    decision = run(result, config, ["no-refunds"])
    assert decision.reasons == ["slice_below_floor:refund"]
    # too few examples to judge the slice, or a floor set for that slice: passes
    assert run(
        result, gate(max_drop_vs_teacher=None, slice_floor=0.8, slice_min_examples=21), ["no-refunds"]
    ).reasons == ["passed"]
    lenient = gate(max_drop_vs_teacher=None, slice_floor=0.8, slice_floors={"refund": 0.5})
    assert run(result, lenient, ["no-refunds"]).reasons == ["passed"]


def test_format_validity_below_threshold() -> None:
    def answer(example: Example) -> str:
        index = int(example.example_id.rsplit("-", 1)[1])
        return "I think it is billing!" if example.gold == "billing" and index < 5 else example.gold or ""

    result = score(FnPredictor("chatty", answer))  # 5 of 120 unparseable: 0.958
    decision = run(result, gate(max_drop_vs_teacher=None, min_format_validity=0.98), ["chatty"])
    assert decision.reasons == ["format_validity_below_threshold"]
    assert (
        run(result, gate(max_drop_vs_teacher=None, min_format_validity=0.95), ["chatty"]).decision
        == "promote"
    )


def test_inferior_to_champion_uses_the_paired_interval() -> None:
    result = score(
        gold_predictor("champ"), wrong_on_slice("worse", "shipping", every=4), gold_predictor("twin")
    )
    config = gate(max_drop_vs_teacher=0.2)
    decision = run(result, config, ["worse", "twin"], champion="champ")
    assert decision.failures("worse") == ["inferior_to_champion"]
    assert decision.failures("twin") == []  # identical answers: difference 0 on every resample
    assert decision.winner == "twin"
    # a generous margin lets the worse one pass the champion check
    assert (
        run(result, gate(max_drop_vs_teacher=0.2, champion_margin=0.2), ["worse"], "champ").decision
        == "promote"
    )


def test_not_cheaper_enough_and_cost_unknown() -> None:
    expensive = score(gold_predictor(), teacher_model="free-model")
    decision = run(expensive, gate(), ["good"])
    assert decision.reasons == ["not_cheaper_enough"]
    unknown = score(gold_predictor(), teacher_model=None)
    assert run(unknown, gate(), ["good"]).reasons == ["cost_unknown"]
    assert run(score(gold_predictor()), gate(min_cost_reduction=1.0), ["good"]).reasons == [
        "not_cheaper_enough"
    ]


def test_primary_metric_missing_and_lower_is_better_rejected() -> None:
    result = score(gold_predictor())
    assert run(result, gate(primary_metric="bleu"), ["good"]).reasons == ["primary_metric_missing"]
    with pytest.raises(ValueError, match="lower-is-better"):
        run(result, gate(primary_metric="hallucination_rate"), ["good"])


def test_no_candidates_keeps_the_champion() -> None:
    result = score(gold_predictor("champ"))
    decision = run(result, gate(), [], champion="champ")
    assert (decision.decision, decision.winner, decision.champion, decision.reasons) == (
        "reject",
        None,
        "champ",
        ["no_candidates"],
    )


def test_failing_gate_keeps_the_champion_and_collects_every_reason() -> None:
    result = score(gold_predictor("champ"), FnPredictor("broken", lambda e: "??"), teacher_model="free-model")
    decision = run(result, gate(slice_floor=0.5), ["broken"], champion="champ")
    assert decision.decision == "reject" and decision.champion == "champ"
    assert decision.reasons == [
        "ci_low_below_threshold",
        "slice_below_floor:billing",
        "slice_below_floor:refund",
        "slice_below_floor:shipping",
        "format_validity_below_threshold",
        "inferior_to_champion",
        "not_cheaper_enough",
    ]
    assert decision.as_dict()["checks"][0]["model"] == "broken"


def test_cheapest_passing_candidate_wins() -> None:
    result = score(gold_predictor("fast"), gold_predictor("slow", delay_s=0.002))
    assert result.models["fast"].cost_per_1k < result.models["slow"].cost_per_1k
    decision = run(result, gate(), ["slow", "fast"])
    assert decision.winner == "fast" and decision.failures("slow") == []
