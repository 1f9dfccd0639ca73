"""End to end on a tiny workload: a weak student is promoted partially, the registry's manifest carries
its calibrated threshold, `serve` answers above it and falls back to the teacher below it, and the
cost projection counts only the share the student answers."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from openai import AsyncOpenAI

from flywheel.config import FlywheelConfig
from flywheel.config.serve import ServeConfig
from flywheel.costs import record_assumptions
from flywheel.evaluate.runner import ReplayPredictor, Usage
from flywheel.evaluate.workflow import evaluate_workload
from flywheel.hardware_profiles import hardware_profile
from flywheel.pricing import Price, PriceCatalog
from flywheel.records import Example, Prediction, message_text
from flywheel.registry import Registry
from flywheel.serve.app import make_app
from flywheel.serve.champions import ChampionWatcher
from flywheel.serve.settings import build_settings
from flywheel.serve.spool import SpoolWriter
from flywheel.store.db import Warehouse
from flywheel.testing.fake_openai import make_fake_openai_app
from tests.evaluate.helpers import LABELS, classification_workload, insert_model, label_examples

TICKET = re.compile(r"ticket about (\w+) number (\d+)")
EXAMPLES = label_examples({"billing": 100, "shipping": 60, "refund": 40}, gold=False)
PRICES = PriceCatalog({"big-model": Price(2.5, 10.0)})


class WeakStudent:
    """Reads the ticket: right and sure (0.7-0.99) on 3 numbers in 5, wrong and unsure (< 0.5) else."""

    name = "weak"

    def predict(self, examples: list[Example]) -> list[Prediction]:
        out = []
        for example in examples:
            label, number = TICKET.search(message_text(example.messages[-1])).groups()  # type: ignore[union-attr]
            index = int(number)
            if index % 5 < 3:
                answer, confidence = label, 0.7 + (index % 30) / 100
            else:
                answer, confidence = next(x for x in LABELS if x != label), 0.05 + (index % 41) / 100
            out.append(Prediction({"role": "assistant", "content": answer}, confidence, completion_tokens=1))
        return out


def teacher_answer(request: dict) -> str:
    return TICKET.search(request["messages"][-1]["content"]).group(1)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("partial") / "home"
    registry = Registry(Warehouse(home / "warehouse.duckdb"), home)
    insert_model(registry.warehouse, home, "routing/weak/1")
    teacher = ReplayPredictor(
        model="big-model", usage={e.interaction_id: Usage(400, 5, 600.0, cost_usd=0.001) for e in EXAMPLES}
    )
    workload = classification_workload(min_agreement=0.99)
    report = evaluate_workload(
        registry, workload, EXAMPLES, candidates={"routing/weak/1": WeakStudent()}, teacher=teacher,
        prices=PRICES, snapshot_id="snap-1", n_resamples=300,
    )  # fmt: skip
    return registry, workload, report


def test_weak_student_is_promoted_partially_and_recorded(promoted) -> None:  # type: ignore[no-untyped-def]
    registry, _, report = promoted
    payload = report.as_dict()
    assert payload["decision"] == "promote_partial" and payload["champion"] == "routing/weak/1"
    assert payload["reasons"] == ["passed_partial", "agreement_below_target"]
    cascade = payload["cascade"]
    # 0.99 on 200 rows: one wrong answer more puts the mix's CI low under it, so the student claims
    # exactly its 120 right answers (confidence 0.7 and up; its wrong ones are all under 0.46)
    assert (
        cascade["coverage"] == pytest.approx(0.6)
        and 0.45 < cascade["threshold"] < 0.7
        and cascade["claims"] == "all"
    )
    entry = json.loads(registry.manifest_path.read_text())["routing"]
    assert (entry["threshold"], entry["coverage"], entry["claims"]) == (
        cascade["threshold"], cascade["coverage"], "all",
    )  # fmt: skip
    rows = registry.warehouse.read(
        lambda con: con.execute(
            "SELECT model_id, coverage, threshold, promoted_partially FROM v_cascades"
        ).fetchall()
    )
    assert rows == [
        ("routing/weak/1", pytest.approx(cascade["coverage"]), pytest.approx(cascade["threshold"]), True)
    ]
    # the overview judges a partial champion by what it serves (the mix), not by its full score (0.6)
    held = registry.warehouse.read(
        lambda con: con.execute("SELECT champion_value, champion_ci_low FROM v_quality_held").fetchone()
    )
    assert held == (pytest.approx(cascade["value"]), pytest.approx(cascade["ci_low"])) == (1.0, 1.0)
    [history] = registry.history("routing")
    assert history.reason.startswith("partial promotion in run")


def test_projection_counts_only_the_covered_share(promoted) -> None:  # type: ignore[no-untyped-def]
    registry, _, report = promoted
    warehouse = registry.warehouse
    warehouse.write(lambda con: con.execute(
        "INSERT INTO interactions (id, workload_id, source, source_ref, ts, model, request, response, "
        "prompt_tokens, completion_tokens, status, batch_id, ingested_at) SELECT 'i' || i, 'routing', "
        "'f', 'f:' || i, now(), 'big-model', '{}', '{}', 400, 5, 'ok', 'b', now() FROM range(100) t(i)"
    ))  # fmt: skip
    [assumed] = record_assumptions(warehouse, PRICES, serving=hardware_profile("cpu-2core"))
    coverage = report.decision.cascade["coverage"]
    assert assumed.student_coverage == pytest.approx(coverage)
    teacher_per, student_per, saved = warehouse.read(lambda con: con.execute(
        "SELECT teacher_usd / requests, student_usd_per_1k / 1000, saved_per_request FROM v_savings_summary"
    ).fetchone())  # fmt: skip
    assert saved == pytest.approx(teacher_per * coverage - student_per)


def test_serve_answers_above_the_threshold_and_falls_back_below(promoted) -> None:  # type: ignore[no-untyped-def]
    registry, workload, report = promoted
    threshold = report.decision.cascade["threshold"]
    config = FlywheelConfig(workloads=[workload.model_dump()], serve=ServeConfig())
    teacher_app = make_fake_openai_app(teacher_answer)
    teacher = AsyncOpenAI(
        base_url="http://teacher/v1", api_key="t", max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=teacher_app)),
    )  # fmt: skip
    watcher = ChampionWatcher(registry.manifest_path, loader=lambda path: WeakStudent())
    app = make_app(build_settings(config, environ={}), champions=watcher, teacher_client=teacher,
                   spool=SpoolWriter(registry.home / "spool"))  # fmt: skip
    tickets = {i: f"ticket about billing number {i}" for i in (0, 1, 2, 3, 4, 29)}

    async def scenario() -> dict[int, httpx.Response]:
        async with app.router.lifespan_context(app):
            await watcher.wait_loaded()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
                body = {"model": "routing", "messages": [{"role": "user", "content": ""}]}
                return {
                    i: await http.post(
                        "/v1/chat/completions", json=body | {"messages": [{"role": "user", "content": t}]}
                    )
                    for i, t in tickets.items()
                }

    responses = asyncio.run(scenario())
    student = WeakStudent().predict(
        [e for e in EXAMPLES if e.example_id in {f"billing-{i}" for i in tickets}]
    )
    confidence = {i: p.confidence for i, p in zip(sorted(tickets), student, strict=True)}
    for i, response in responses.items():
        assert response.status_code == 200, response.text
        above = confidence[i] >= threshold
        assert response.headers["x-flywheel-served-by"] == ("student" if above else "teacher"), (
            i,
            confidence[i],
        )
        if not above:
            assert response.headers["x-flywheel-fallback-reason"] == "low_confidence"
        # below the threshold the student is wrong; the teacher's answer is right either way
        assert response.json()["choices"][0]["message"]["content"] == "billing"
    assert {i for i in tickets if confidence[i] >= threshold} == {0, 1, 2}
    # an explicit serve.thresholds entry still wins over the calibrated one
    settings = build_settings(
        FlywheelConfig(workloads=[workload.model_dump()], serve=ServeConfig(thresholds={"routing": 0.0})),
        environ={},
    )
    assert settings.threshold("routing", threshold) == 0.0
    assert build_settings(config, environ={}).threshold("routing", threshold) == threshold


def test_cli_table_and_run_report_show_the_cascade(promoted) -> None:  # type: ignore[no-untyped-def]
    from flywheel.cli.app import out
    from flywheel.cli.evaluate import _render_evaluation
    from flywheel.report import markdown_report

    _, _, report = promoted
    payload = report.as_dict()
    with out.capture() as captured:
        _render_evaluation(payload)
    text = captured.get()
    assert "promote_partial" in text and "cascade routing/weak/1: answers 60.0% at confidence >=" in text
    page = markdown_report("routing", {"evaluate": payload}, {})
    assert "## Cascade" in page and "Promoted partially: `routing/weak/1` answers 60.0%" in page
