"""Chat is gated on a metric a good free-form student can pass and a bad one cannot: semantic
agreement (the shipped MiniLM, offline) by default, the teacher as judge when it is live."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from rouge_score import rouge_scorer

from flywheel.config import TeacherConfig, WorkloadConfig
from flywheel.evaluate.gate import decide
from flywheel.evaluate.judge import judge_enabled, judged_workload, teacher_judge
from flywheel.evaluate.runner import EvaluationResult, ReplayPredictor, evaluate_predictors, metric_module
from flywheel.pricing import Price, PriceCatalog
from flywheel.store.db import Warehouse
from flywheel.teacher import make_client
from flywheel.testing.fake_openai import make_fake_openai_app
from tests.evaluate.chat_data import (
    CANNED,
    QA,
    canned_answer,
    chat_examples,
    good_answer,
    index_of,
    shuffled_answer,
)
from tests.evaluate.helpers import FnPredictor

PRICES = PriceCatalog({"big-model": Price(2.5, 10.0), "fake-teacher": Price(0.15, 0.6)})
NON_LATIN = [answer for _, answer, student in QA if answer == student]


def students() -> list[FnPredictor]:
    def mostly_good(example):  # wrong on one question in 16: 94% agreement
        return shuffled_answer(example) if index_of(example) == 3 else good_answer(example)

    return [
        FnPredictor("good", good_answer),
        FnPredictor("mostly-good", mostly_good),
        FnPredictor("canned", canned_answer),
        FnPredictor("shuffled", shuffled_answer),
    ]


def score(workload: WorkloadConfig, judge=None, names=None, copies: int = 4) -> EvaluationResult:
    chosen = [s for s in students() if names is None or s.name in names]
    return evaluate_predictors(
        [*chosen, ReplayPredictor(model="big-model")],
        chat_examples(copies),
        workload,
        prices=PRICES,
        n_resamples=400,
        judge=judge,
    )


def test_rouge_l_reads_every_script() -> None:
    module = metric_module("chat")
    itself = module.compute(predictions=NON_LATIN, references=NON_LATIN, return_stats=True)
    assert list(itself["stats"]["rouge_l"]) == [1.0] * len(NON_LATIN)
    # rouge_score's own tokenizer keeps [a-z0-9] only: the teacher scored 0 against itself
    default = rouge_scorer.RougeScorer(["rougeL"])
    no_digits = [a for a in NON_LATIN if not any(c.isdigit() for c in a)]
    assert len(no_digits) == 3 and all(default.score(a, a)["rougeL"].fmeasure == 0 for a in no_digits)
    # words of any script, one token per character where words are not spaced
    partial = module.compute(
        predictions=["您的包裹明天发货。", "Ваш заказ отправлен вчера."],
        references=["您的包裹今天发货。", "Ваш заказ отправлен сегодня."],
        return_stats=True,
    )
    assert list(partial["stats"]["rouge_l"]) == pytest.approx([7 / 8, 3 / 4])  # 明 != 今: 7 of 8 characters


@pytest.mark.slow  # ~40-60 s on the shared 2-core machine (MiniLM encodes, bootstrap of 5 models)
def test_chat_gate_promotes_a_good_student_and_rejects_canned_and_shuffled_answers() -> None:
    workload = WorkloadConfig(id="faq", task="chat")
    assert workload.gate.min_agreement == 0.85  # the chat default
    result = score(workload)
    assert result.primary_metric == "semantic_agreement" and result.reference == "teacher"
    value = {name: model.primary.value for name, model in result.models.items()}
    assert value == pytest.approx(
        {"good": 1.0, "mostly-good": 60 / 64, "canned": 0.0, "shuffled": 0.0, "teacher": 1.0}
    )
    # the good student words its answers its own way: ROUGE-L is far from the 0.94 a ROUGE gate asked
    assert result.models["good"].get("rouge_l").value < 0.75
    assert result.models["teacher"].get("rouge_l").value == 1.0  # non-Latin answers included
    decision = decide(
        workload.gate,
        [result.models[n] for n in ("good", "mostly-good", "canned", "shuffled")],
        result.models["teacher"],
        None,
        reference=result.reference,
    )
    assert decision.decision == "promote" and decision.winner in ("good", "mostly-good")
    assert decision.failures("good") == decision.failures("mostly-good") == []
    assert decision.failures("canned") == decision.failures("shuffled") == ["agreement_below_target"]


def judge_oracle(request: dict) -> str:
    """A judge that knows the good rewordings; replies in the formats real judges use."""
    prompt = request["messages"][-1]["content"]
    reference = prompt.split("Reference answer:\n", 1)[1].split("\n\nCandidate answer:\n")[0].strip()
    candidate = prompt.split("Candidate answer:\n", 1)[1].strip()
    good = {answer: student for _, answer, student in QA}
    if good.get(reference) == candidate:
        return "10/10" if len(candidate) % 2 else "The meaning is the same.\n\nRating: [[9]]"
    return '{"score": 2, "reason": "a different answer"}'


@pytest.mark.slow  # ~60 s on the shared 2-core machine (the judge's calls land in a real DuckDB cache)
def test_judge_gate_with_a_live_teacher(tmp_path: Path) -> None:
    app = make_fake_openai_app(judge_oracle)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
    teacher = TeacherConfig(base_url="http://fake/v1", model="fake-teacher")
    workload = WorkloadConfig(id="faq", task="chat")
    assert judge_enabled(workload, teacher) and not judge_enabled(workload, TeacherConfig())
    judged = judged_workload(workload)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with make_client(teacher, {"OPENAI_API_KEY": "k"}, http_client=http) as client:
        judge = teacher_judge(client, warehouse=warehouse, prices=PRICES, workload_id="faq")
        result = score(judged, judge, ("good", "mostly-good", "canned"), copies=2)
        calls = app.state.stats["completions"]
        score(judged, judge, ("good", "canned"), copies=2)  # a re-run: all from the teacher cache
        assert app.state.stats["completions"] == calls
    # identical answers (the replayed teacher, the non-Latin ones) are settled without the judge:
    # 12 rewordings + 16 canned + the mostly-good slip, each distinct pair once
    assert calls == 12 + 16 + 1
    assert result.primary_metric == "judge_agreement"
    value = {name: model.primary.value for name, model in result.models.items()}
    assert value == pytest.approx({"good": 1.0, "mostly-good": 30 / 32, "canned": 0.0, "teacher": 1.0})
    decision = decide(
        judged.gate,
        [result.models[n] for n in ("good", "canned")],
        result.models["teacher"],
        None,
        reference=result.reference,
    )
    assert decision.winner == "good"
    assert decision.failures("canned") == ["agreement_below_target"]


def test_evaluate_stage_judges_chat_through_the_configured_teacher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flywheel.config import FlywheelConfig
    from flywheel.loop import Loop, chat_judge
    from tests.serve.conftest import serve_with_lifespan

    monkeypatch.setenv("JUDGE_KEY", "k")
    app = make_fake_openai_app(judge_oracle)
    with serve_with_lifespan(app) as url:
        teacher = TeacherConfig(base_url=url, model="fake-teacher", api_key_env="JUDGE_KEY", max_usd=1.0)
        workloads = [
            WorkloadConfig(id="faq", task="chat"),
            WorkloadConfig(id="faq-offline", task="chat", gate={"judge": False}),
            WorkloadConfig(id="faq-rouge", task="chat", gate={"primary_metric": "rouge_l"}),
        ]
        config = FlywheelConfig(teacher=teacher, workloads=workloads)
        loop = Loop(config, tmp_path, Warehouse(tmp_path / "w.duckdb"), PRICES)
        judge, workload, client = chat_judge(loop, config.workload("faq"))
        try:
            _, answer, reworded = QA[0]  # the judge replies 10/10 to this rewording
            assert workload.gate.primary_metric == "judge_agreement"
            assert judge([answer, reworded, CANNED], [answer, answer, answer]) == [
                1.0,
                1.0,
                pytest.approx(1 / 9),
            ]
            assert app.state.stats["completions"] == 2  # the identical answer was not asked
        finally:
            client.close()
        spent = loop.warehouse.read(
            lambda con: con.execute("SELECT kind, count(*) FROM cost_ledger GROUP BY ALL").fetchall()
        )
        assert spent == [("evaluation", 2)]
        assert chat_judge(loop, config.workload("faq-offline"))[0] is None
        _, kept, rouge_client = chat_judge(loop, config.workload("faq-rouge"))
        rouge_client.close()
        assert kept.gate.primary_metric == "rouge_l"  # a metric named in flywheel.yaml stays


@pytest.mark.slow  # ~30-60 s on the shared 2-core machine (MiniLM encodes, bootstrap)
def test_chat_gate_against_gold_is_non_inferiority_on_semantic_agreement() -> None:
    """Gold answers (people's) where the logged teacher was wrong on one question in 16: the teacher
    scores 0.94, the floor is 0.94 - 0.05, and a student that rewords the gold answers passes."""
    from dataclasses import replace

    examples = [
        replace(
            e,
            gold=QA[index_of(e)][1],
            target={
                "role": "assistant",
                "content": shuffled_answer(e) if index_of(e) == 5 else QA[index_of(e)][1],
            },
        )
        for e in chat_examples()
    ]
    workload = WorkloadConfig(id="faq", task="chat")
    result = evaluate_predictors(
        [
            FnPredictor("good", good_answer),
            FnPredictor("canned", canned_answer),
            ReplayPredictor(model="big-model"),
        ],
        examples,
        workload,
        prices=PRICES,
        n_resamples=400,
    )
    assert result.reference == "gold"
    assert result.models["teacher"].primary.value == pytest.approx(60 / 64)
    decision = decide(
        workload.gate,
        [result.models["good"], result.models["canned"]],
        result.models["teacher"],
        None,
        reference=result.reference,
    )
    assert decision.target.floor == pytest.approx(60 / 64 - 0.05)
    assert decision.winner == "good" and decision.failures("canned") == ["ci_low_below_threshold"]
