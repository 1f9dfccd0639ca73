"""The chat judge score through the teacher's judge mode, against the local fake OpenAI server."""

from __future__ import annotations

import httpx
import pytest

from flywheel.config import TeacherConfig, WorkloadConfig
from flywheel.evaluate.judge import teacher_judge
from flywheel.evaluate.runner import evaluate_predictors
from flywheel.pricing import Price, PriceCatalog
from flywheel.records import Example
from flywheel.teacher import make_client
from flywheel.testing.fake_openai import make_fake_openai_app
from tests.evaluate.helpers import FnPredictor


def judge_oracle(request: dict) -> str:
    """Scores 10 when the candidate repeats the reference word for word, else 4."""
    prompt = request["messages"][-1]["content"]
    return (
        '{"score": 10, "reason": "same"}' if prompt.count("the parcel ships today") == 2 else '{"score": 4}'
    )


def test_judge_scores_are_rescaled_and_averaged() -> None:
    app = make_fake_openai_app(judge_oracle)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
    config = TeacherConfig(base_url="http://fake/v1", model="fake-teacher")
    with make_client(config, {"OPENAI_API_KEY": "k"}, http_client=http) as client:
        judge = teacher_judge(client, prices=PriceCatalog({"fake-teacher": Price(0.0, 0.0)}))
        workload = WorkloadConfig(id="faq", task="chat")
        examples = [
            Example(
                example_id=str(i),
                workload_id="faq",
                messages=[{"role": "user", "content": "when does it ship?"}],
                target={"role": "assistant", "content": "the parcel ships today"},
            )
            for i in range(4)
        ]
        student = FnPredictor("s", lambda e: "the parcel ships today" if e.example_id in "01" else "no idea")
        result = evaluate_predictors([student], examples, workload, judge=judge, n_resamples=100)
    judged = result.models["s"].get("judge_score")
    # two answers scored 10 -> 1.0 and two scored 4 -> 1/3 on the 1..10 scale
    assert judged.value == pytest.approx((1.0 + 1.0 + 1 / 3 + 1 / 3) / 4)
    assert result.models["s"].primary_metric == "semantic_agreement"
