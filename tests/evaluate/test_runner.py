from __future__ import annotations

import json

import pytest

from flywheel.config import WorkloadConfig
from flywheel.costs.tokens import tiktoken_encoding
from flywheel.evaluate.runner import ReplayPredictor, Usage, evaluate_predictors, resolve_reference
from flywheel.hardware_profiles import cost_per_1k_requests, load_hardware_profiles, usd_per_hour
from flywheel.pricing import Price, PriceCatalog
from flywheel.records import Example, Prediction
from tests.evaluate.helpers import (
    ApiPredictor,
    FnPredictor,
    classification_workload,
    gold_predictor,
    label_examples,
    wrong_on_slice,
)

PRICES = PriceCatalog({"big-model": Price(1.0, 2.0)})  # $ per 1M input / output tokens


def test_scores_slices_and_class_f1() -> None:
    examples = label_examples({"billing": 30, "shipping": 20, "refund": 10})
    result = evaluate_predictors(
        [gold_predictor(), wrong_on_slice("bad", "refund")],
        examples,
        classification_workload(),
        n_resamples=200,
    )
    assert result.reference == "gold" and result.n_examples == 60 and result.skipped == 0
    assert result.slice_counts == {"billing": 30, "refund": 10, "shipping": 20}
    good, bad = result.models["good"], result.models["bad"]
    assert good.primary_metric == "accuracy"
    assert (good.primary.value, good.primary.ci_low, good.primary.ci_high) == (1.0, 1.0, 1.0)
    assert bad.primary.value == pytest.approx(50 / 60)
    assert bad.primary.ci_low < 50 / 60 < bad.primary.ci_high
    assert bad.get("accuracy", "refund").value == 0.0 and bad.get("accuracy", "refund").n == 10
    assert bad.get("accuracy", "billing").value == 1.0
    assert bad.get("class_f1:refund").value == 0.0
    assert bad.get("class_f1:refund", "refund") is None  # per-class F1 is reported overall only
    matrix = bad.extras["confusion_matrix"]
    assert matrix["labels"] == ["billing", "refund", "shipping"]
    assert matrix["matrix"][1] == [10, 0, 0, 0]  # every refund ticket was routed to billing
    rows = result.rows()
    assert {"model", "metric", "slice", "value", "ci_low", "ci_high", "n"} <= set(rows[0])
    assert all(r["slice"] is None for r in rows) and all(r["slice"] for r in result.rows(slices=True))


def test_teacher_replay_cost_latency_and_tokens_per_second_by_hand() -> None:
    examples = label_examples({"billing": 10, "refund": 10})
    usage = {e.interaction_id: Usage(1000, 100, 800.0) for e in examples}
    teacher = ReplayPredictor(model="big-model", usage=usage)
    result = evaluate_predictors(
        [teacher], examples, classification_workload(), prices=PRICES, n_resamples=100
    )
    scored = result.models["teacher"]
    # (1000 x $1 + 100 x $2) / 1M per request = $0.0012 -> $1.20 per 1k requests
    assert scored.cost_per_1k == pytest.approx(1.2)
    assert scored.cost_basis == "tokens"
    assert scored.latency_ms_mean == pytest.approx(800.0)
    assert scored.tokens_per_second == pytest.approx(100 / 0.8)
    assert scored.primary.value == 1.0  # its logged answers agree with gold here


def test_unpriced_teacher_cost_is_unknown_not_free() -> None:
    examples = label_examples({"billing": 5})
    result = evaluate_predictors(
        [ReplayPredictor(model="mystery-model"), ReplayPredictor(name="no-model")],
        examples,
        classification_workload(),
        prices=PRICES,
        n_resamples=100,
    )
    assert result.models["teacher"].cost_per_1k is None
    assert result.models["no-model"].cost_basis == "unknown"


def test_replay_without_usage_counts_the_example_with_the_teachers_tokenizer() -> None:
    example = label_examples({"billing": 1})[0]
    unknown = ReplayPredictor()  # no model: the labelled chars/4 estimate, chat framing included
    [prediction] = unknown.predict([example])
    assert prediction.message == example.target
    text = "ticket about billing number 0"
    assert prediction.prompt_tokens == 3 + 3 + 1 + -(-len(text) // 4)  # framing, reply, "user", text
    assert prediction.completion_tokens == 2  # "billing"
    assert unknown.token_methods == {"estimate:chars/4": 1}
    gpt = ReplayPredictor(model="gpt-4o-mini")
    [prediction] = gpt.predict([example])
    encoding = tiktoken_encoding("o200k_base")
    assert prediction.prompt_tokens == 3 + 3 + 1 + len(encoding.encode(text))
    assert prediction.completion_tokens == len(encoding.encode("billing"))
    assert gpt.token_methods == {"tiktoken:o200k_base": 1}


def test_student_cost_from_hardware_rate_and_measured_throughput() -> None:
    examples = label_examples({"billing": 40})
    slow = gold_predictor("slow", delay_s=0.005)
    result = evaluate_predictors([slow], examples, classification_workload(), hardware_usd_per_hour=0.36)
    scored = result.models["slow"]
    assert scored.wall_seconds >= 40 * 0.005
    assert scored.requests_per_second == pytest.approx(40 / scored.wall_seconds)
    # $0.36/h = $0.0001/s; cost per request = wall / n seconds
    assert scored.cost_per_1k == pytest.approx(0.0001 * scored.wall_seconds / 40 * 1000)
    assert scored.cost_basis == "hardware"
    assert scored.latency_ms_mean == pytest.approx(scored.wall_seconds * 1000 / 40)
    assert scored.tokens_per_second == pytest.approx(80 / scored.wall_seconds)


def test_api_predictor_is_priced_by_tokens() -> None:
    examples = label_examples({"billing": 4})
    api = ApiPredictor("api", "big-model", lambda e: e.gold, tokens=(500, 50))
    result = evaluate_predictors([api], examples, classification_workload(), prices=PRICES, n_resamples=100)
    assert result.models["api"].cost_per_1k == pytest.approx((500 * 1 + 50 * 2) / 1e6 * 1000)
    assert result.models["api"].tokens_per_second == pytest.approx(50 / 0.5)


def test_hardware_profiles() -> None:
    profiles = {name: p.usd_per_hour for name, p in load_hardware_profiles().items()}
    assert {"cpu-2core", "cpu-8core", "gpu-t4", "gpu-a10g", "gpu-h100"} <= set(profiles)
    assert usd_per_hour("cpu-2core") == 0.10
    with pytest.raises(ValueError, match="unknown hardware profile 'tpu'"):
        usd_per_hour("tpu")
    # 10 requests/s = 36,000/h -> $0.10 / 36 per 1k
    assert cost_per_1k_requests(0.10, 10.0) == pytest.approx(0.10 / 36)
    assert cost_per_1k_requests(0.10, 0.0) is None


def test_reference_resolution() -> None:
    with_gold = label_examples({"billing": 3})
    mixed = with_gold + label_examples({"refund": 2}, gold=False)
    assert resolve_reference(with_gold, "auto") == "gold"
    assert resolve_reference(mixed, "auto") == "teacher"
    with pytest.raises(ValueError, match="2 of 5 eval examples have no gold"):
        resolve_reference(mixed, "gold")


def test_teacher_reference_scores_agreement_and_skips_unreadable_targets() -> None:
    workload = classification_workload()
    examples = label_examples({"billing": 8}, gold=False)
    examples.append(
        Example(
            example_id="x", workload_id="routing", messages=[], target={"role": "assistant", "content": ""}
        )
    )
    always_refund = FnPredictor("refund-bot", lambda e: "refund")
    result = evaluate_predictors([always_refund, ReplayPredictor()], examples, workload, n_resamples=100)
    assert result.reference == "teacher" and result.skipped == 1 and result.n_examples == 8
    assert result.models["refund-bot"].primary.value == 0.0
    assert result.models["teacher"].primary.value == 1.0


def test_progress_and_batching() -> None:
    examples = label_examples({"billing": 150})
    seen: list[int] = []
    predictor = gold_predictor()
    evaluate_predictors(
        [predictor], examples, classification_workload(), progress=seen.append, n_resamples=100
    )
    assert seen == [64, 64, 22] and predictor.calls == 3


def test_bad_inputs_fail_clearly() -> None:
    workload = classification_workload()
    examples = label_examples({"billing": 3})
    with pytest.raises(ValueError, match="eval split is empty"):
        evaluate_predictors([gold_predictor()], [], workload)
    with pytest.raises(ValueError, match="names must be unique"):
        evaluate_predictors([gold_predictor(), gold_predictor()], examples, workload)

    class Short:
        name = "short"

        def predict(self, batch: list[Example]) -> list[Prediction]:
            return []

    with pytest.raises(ValueError, match="'short' returned 0 answers for 3"):
        evaluate_predictors([Short()], examples, workload)


def test_extraction_and_tool_call_workloads_end_to_end() -> None:
    extraction = WorkloadConfig(
        id="orders",
        task="extraction",
        json_schema={
            "type": "object",
            "properties": {"city": {"type": ["string", "null"]}},
            "required": ["city"],
        },
    )
    examples = [
        Example(
            example_id=str(i),
            workload_id="orders",
            messages=[{"role": "user", "content": f"deliver to City{i}"}],
            target={"role": "assistant", "content": f'{{"city": "City{i}"}}'},
            gold=f'{{"city": "City{i}"}}',
        )
        for i in range(10)
    ]
    invented = FnPredictor("invents", lambda e: '{"city": "Atlantis"}' if e.example_id == "0" else e.gold)
    result = evaluate_predictors([invented], examples, extraction, n_resamples=100)
    scored = result.models["invents"]
    assert scored.primary_metric == "field_f1" and scored.primary.value == pytest.approx(0.9)
    assert scored.get("hallucination_rate").value == pytest.approx(0.1)

    tools = WorkloadConfig(
        id="tools", task="tool_call", tools=[{"type": "function", "function": {"name": "f"}}]
    )
    tool_examples = [
        Example(
            example_id=str(i),
            workload_id="tools",
            messages=[{"role": "user", "content": "x"}],
            target={"role": "assistant", "content": "hi"},
            gold=json.dumps({"name": "f", "arguments": {"i": i}}),
        )
        for i in range(4)
    ]

    def answer(e: Example) -> dict:
        arguments = json.dumps({"i": int(e.example_id)})
        call = {"type": "function", "function": {"name": "f", "arguments": arguments}}
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    result = evaluate_predictors([FnPredictor("caller", answer)], tool_examples, tools, n_resamples=100)
    assert result.models["caller"].primary_metric == "tool_call_exact"
    assert result.models["caller"].primary.value == 1.0
