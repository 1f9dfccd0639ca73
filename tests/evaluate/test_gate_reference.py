"""Gate semantics by reference (gold: non-inferior to the teacher; teacher: agreement >= target) and the
power check that turns an unresolvable failure into `insufficient_eval`."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.config import GateConfig
from flywheel.evaluate.gate import INSUFFICIENT_EVAL, decide, rows_to_resolve
from flywheel.evaluate.runner import EvaluationResult, ReplayPredictor, evaluate_predictors
from flywheel.evaluate.workflow import evaluate_workload
from flywheel.pricing import Price, PriceCatalog
from flywheel.records import Example
from flywheel.registry import Registry
from flywheel.report import markdown_report
from tests.evaluate.helpers import FnPredictor, classification_workload, insert_model, label_examples

PRICES = PriceCatalog({"big-model": Price(2.5, 10.0)})


def examples(scale: int, gold: bool) -> list[Example]:
    """40 x scale examples: billing 50%, shipping 25%, refund 25%."""
    return label_examples({"billing": 20 * scale, "shipping": 10 * scale, "refund": 10 * scale}, gold=gold)


def wrong_one_in(k: int, name: str = "cand") -> FnPredictor:
    """Right except every k-th billing example (1 in 2k overall): 95% agreement for k=10."""

    def answer(example: Example) -> str:
        index = int(example.example_id.rsplit("-", 1)[1])
        right = example.label or ""
        return "refund" if example.slice == "billing" and index % k == 0 else right

    return FnPredictor(name, answer)


def score(data: list[Example], *candidates: FnPredictor) -> EvaluationResult:
    return evaluate_predictors(
        [*candidates, ReplayPredictor(model="big-model")],
        data,
        classification_workload(),
        prices=PRICES,
        n_resamples=400,
    )


def judge(result: EvaluationResult, config: GateConfig, *names: str):
    return decide(
        config,
        [result.models[n] for n in names],
        result.models["teacher"],
        None,
        reference=result.reference,
    )


def test_teacher_reference_judges_agreement_not_non_inferiority() -> None:
    result = score(examples(4, gold=False), wrong_one_in(10))  # 160 rows, 95% agreement
    assert result.reference == "teacher" and result.models["teacher"].primary.value == 1.0
    decision = judge(result, GateConfig(max_drop_vs_teacher=0.05, min_agreement=0.90), "cand")
    # "within 0.05 of the teacher's 1.0" would need ci_low >= 0.95: impossible at 95% agreement.
    assert decision.decision == "promote", decision.checks
    names = {c.check for c in decision.checks}
    assert "agreement" in names and "vs_teacher" not in names
    assert decision.target.criterion == "agreement" and decision.target.floor == 0.90
    assert "agreement with the teacher (accuracy) CI low >= 0.900" in decision.target.text
    assert "min_agreement" in decision.as_dict()["target"]


def test_teacher_reference_rejects_a_candidate_the_data_show_to_fail() -> None:
    result = score(examples(1, gold=False), wrong_one_in(2))  # 40 rows, 75% agreement, CI high < 0.9
    decision = judge(result, GateConfig(min_agreement=0.90), "cand")
    assert decision.decision == "reject" and decision.reasons == ["agreement_below_target"]
    assert decision.eval_rows_needed is None


def test_small_split_is_insufficient_eval_and_the_estimate_resolves_it() -> None:
    config = GateConfig(min_agreement=0.90)  # margin (1 - 0.90) / 2 = 0.05
    small = score(examples(1, gold=False), wrong_one_in(10))  # 40 rows, 95% agreement
    decision = judge(small, config, "cand")
    assert decision.decision == INSUFFICIENT_EVAL and decision.winner is None
    assert decision.reasons == [INSUFFICIENT_EVAL]
    [check] = [c for c in decision.checks if not c.passed]
    assert check.check == "agreement" and check.value > 0.05 and check.threshold == pytest.approx(0.05)
    needed = decision.eval_rows_needed
    assert needed == check.rows_needed and needed > 40
    assert needed == rows_to_resolve(40, check.value, 0.05)
    assert f"about {needed} eval rows would resolve it" in decision.summary
    # The same candidate on a split as large as the estimate (rounded up to the fixture's step) is
    # decided: its CI half-width is within the margin now, and it passes.
    scale = -(-needed // 40)
    large = score(examples(scale, gold=False), wrong_one_in(10))
    primary = large.models["cand"].primary
    assert (primary.ci_high - primary.ci_low) / 2 <= 0.05
    assert judge(large, config, "cand").decision == "promote"


def test_gold_power_check_uses_max_drop_vs_teacher_as_the_margin() -> None:
    small = score(examples(1, gold=True), wrong_one_in(10))  # teacher 1.0 on gold, candidate 0.95
    assert small.reference == "gold"
    decision = judge(small, GateConfig(max_drop_vs_teacher=0.05), "cand")
    assert decision.decision == INSUFFICIENT_EVAL
    assert decision.target.criterion == "non_inferior_to_teacher" and decision.target.margin == 0.05
    # With a wider margin the same split resolves it: a plain verdict, no rows asked for.
    wide = judge(small, GateConfig(max_drop_vs_teacher=0.2), "cand")
    assert wide.decision == "promote" and wide.eval_rows_needed is None


def test_a_real_failure_beside_insufficient_eval_is_a_reject() -> None:
    result = score(examples(1, gold=False), wrong_one_in(10))
    decision = judge(
        result, GateConfig(min_agreement=0.90, min_format_validity=1.0, min_cost_reduction=1.0), "cand"
    )
    assert decision.decision == "reject"
    assert set(decision.reasons) == {INSUFFICIENT_EVAL, "not_cheaper_enough"}


def test_a_perfect_candidate_on_a_tiny_split_stays_promotable() -> None:
    tiny = label_examples({"billing": 4, "shipping": 3, "refund": 3}, gold=False)
    result = score(tiny, FnPredictor("perfect", lambda e: e.label))
    assert judge(result, GateConfig(), "perfect").decision == "promote"


def test_unknown_reference_is_an_error() -> None:
    result = score(examples(1, gold=True), wrong_one_in(10))
    with pytest.raises(ValueError, match="reference must be one of gold, teacher"):
        decide(GateConfig(), [result.models["cand"]], result.models["teacher"], None, reference="auto")


def test_workflow_stores_insufficient_eval_keeps_the_champion_and_reports_the_target(tmp_path) -> None:
    from flywheel.evaluate.store import eval_runs
    from flywheel.store.db import Warehouse

    home = tmp_path / "home"
    registry = Registry(Warehouse(home / "warehouse.duckdb"), home)
    insert_model(registry.warehouse, home, "routing/cand/1")
    report = evaluate_workload(
        registry,
        classification_workload(min_agreement=0.9),
        examples(1, gold=False),
        candidates={"routing/cand/1": wrong_one_in(10)},
        teacher=ReplayPredictor(model="big-model"),
        prices=PRICES,
        n_resamples=400,
    )
    payload = report.as_dict()
    assert payload["decision"] == INSUFFICIENT_EVAL and payload["champion"] is None
    assert payload["target"]["min_agreement"] == 0.9 and payload["target"]["criterion"] == "agreement"
    assert payload["eval_rows_needed"] > payload["n_examples"] == 40
    assert registry.champion("routing") is None
    stored = eval_runs(registry.warehouse, "routing")[0]
    assert stored["decision"] == INSUFFICIENT_EVAL and stored["reasons"][0] == INSUFFICIENT_EVAL
    card = (registry.artifact_dir(registry.get("routing/cand/1")) / "README.md").read_text()
    assert "Target: agreement with the teacher (accuracy) CI low >= 0.900" in card
    text = markdown_report("routing", {"evaluate": payload}, {"evaluate": 1.0})
    assert "**insufficient_eval**" in text and "Target: agreement with the teacher" in text
    assert f"about {payload['eval_rows_needed']} eval rows" in text


def cli_with_a_fake_student(
    tmp_path, monkeypatch, scale: int, wrong_every: int
) -> tuple[Any, list[str], Any]:
    """`flywheel evaluate -w support-routing` args over a candidate answering `wrong_one_in(wrong_every)`
    on examples(scale) (teacher references), with training and snapshots stubbed out."""
    import sys
    import types
    from pathlib import Path

    from flywheel.demo import demo_config_path
    from flywheel.store.db import Warehouse

    data = examples(scale, gold=False)
    for example in data:
        example.workload_id = "support-routing"
    datasets = types.ModuleType("flywheel.datasets")
    datasets.load_examples = lambda warehouse, workload_id, splits: data  # type: ignore[attr-defined]
    student = types.ModuleType("flywheel.train.student")
    student.load_student = lambda path: wrong_one_in(wrong_every, Path(path).name)  # type: ignore[attr-defined]
    student.read_manifest = lambda path: {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flywheel.datasets", datasets)
    monkeypatch.setitem(sys.modules, "flywheel.train.student", student)
    home = tmp_path / "home"
    warehouse = Warehouse(home / "warehouse.duckdb")
    insert_model(warehouse, home, "support-routing/cand/1", workload_id="support-routing")
    args = ["--home", str(home), "--config", str(demo_config_path()), "evaluate", "-w", "support-routing"]
    return warehouse, args, home


def test_cli_evaluate_shows_the_target_and_the_rows_needed(tmp_path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from flywheel.cli import app

    _, args, _ = cli_with_a_fake_student(tmp_path, monkeypatch, scale=1, wrong_every=10)
    runner = CliRunner()
    shown = runner.invoke(app, [*args, "--resamples", "400", "--dry-run"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())  # rich wraps lines at the terminal width
    assert "target: agreement with the teacher (accuracy) CI low >= 0.900" in text
    assert "insufficient_eval: champion none" in text and "eval rows would resolve the margin" in text
    result = runner.invoke(app, [*args, "--resamples", "400", "--json"])
    payload = json.loads(result.stdout)
    assert result.exit_code == 0 and payload["decision"] == INSUFFICIENT_EVAL
    assert payload["reference"] == "teacher" and payload["target"]["min_agreement"] == 0.9
    assert payload["eval_rows_needed"] > 40 and payload["champion"] is None


def test_evaluate_after_a_decision_shows_that_decision_and_its_reasons(tmp_path, monkeypatch) -> None:
    """`flywheel evaluate -w W` right after a turn re-judges what the turn judged (dry run): the same
    decision and reasons as the turn's decision line, never a bare `no_candidates`."""
    import json

    from typer.testing import CliRunner

    from flywheel.cli import app
    from flywheel.cli.run import decision_line
    from flywheel.registry import Registry
    from flywheel.report import summarize_turn

    warehouse, args, home = cli_with_a_fake_student(tmp_path, monkeypatch, scale=3, wrong_every=1)
    runner = CliRunner()
    first = json.loads(runner.invoke(app, [*args, "--resamples", "400", "--json"]).stdout)
    assert first["decision"] == "reject" and "agreement_below_target" in first["reasons"]
    assert not Registry(warehouse, home).list_models("support-routing", "candidate")
    line = decision_line("support-routing", summarize_turn("support-routing", {"evaluate": first}))
    assert line.startswith("support-routing: reject (agreement_below_target")
    again = runner.invoke(app, [*args, "--resamples", "400", "--json"])
    payload = json.loads(again.stdout)
    assert again.exit_code == 0 and payload["rejudged_run"] == first["run_id"]
    assert (payload["decision"], payload["reasons"]) == (first["decision"], first["reasons"])
    assert payload["applied"] is False
    shown = runner.invoke(app, [*args, "--resamples", "400"])
    text = " ".join(shown.output.split())
    assert "no new candidate" in text and "reject: champion none" in text and "agreement_below_target" in text
