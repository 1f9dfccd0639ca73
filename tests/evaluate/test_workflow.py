"""evaluate_workload on a real DuckDB warehouse: stored rows, promotion, retirement, cards, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flywheel.evaluate.runner import ReplayPredictor, Usage
from flywheel.evaluate.store import eval_runs, teacher_usage
from flywheel.evaluate.workflow import evaluate_workload
from flywheel.pricing import Price, PriceCatalog
from flywheel.registry import Registry
from flywheel.store.db import Warehouse
from tests.evaluate.helpers import (
    classification_workload,
    gold_predictor,
    insert_model,
    label_examples,
    wrong_on_slice,
)

EXAMPLES = label_examples({"billing": 50, "shipping": 30, "refund": 20})
PRICES = PriceCatalog({"big-model": Price(2.5, 10.0)})
TEACHER = ReplayPredictor(model="big-model", usage={e.interaction_id: Usage(300, 3, 500.0) for e in EXAMPLES})


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    home = tmp_path / "home"
    return Registry(Warehouse(home / "warehouse.duckdb"), home)


def evaluate(registry: Registry, candidates: dict, champion: tuple | None = None, **kw: object):
    return evaluate_workload(
        registry,
        classification_workload(),
        EXAMPLES,
        candidates=candidates,
        teacher=TEACHER,
        champion=champion,
        prices=PRICES,
        snapshot_id="snap-1",
        n_resamples=200,
        **kw,  # type: ignore[arg-type]
    )


def test_promotes_the_good_candidate_and_stores_everything(registry: Registry) -> None:
    warehouse = registry.warehouse
    insert_model(warehouse, registry.home, "routing/good/1")
    insert_model(warehouse, registry.home, "routing/weak/1")
    report = evaluate(
        registry, {"routing/good/1": gold_predictor(), "routing/weak/1": wrong_on_slice("w", "billing", 2)}
    )
    payload = report.as_dict()
    assert payload["decision"] == "promote" and payload["champion"] == "routing/good/1"
    assert payload["reasons"] == ["passed"]
    assert {"model", "metric", "value", "ci_low", "ci_high"} <= set(payload["results"][0])
    json.dumps(payload, default=str)  # the CLI prints it

    assert registry.champion("routing").model_id == "routing/good/1"
    assert registry.get("routing/weak/1").stage == "retired"
    assert report.retired == ["routing/weak/1"]
    [promotion] = registry.history("routing")
    assert promotion.action == "promote" and promotion.run_id == report.run_id
    assert "gate passed" in promotion.reason
    manifest = json.loads(registry.manifest_path.read_text())
    assert manifest["routing"]["model_id"] == "routing/good/1"
    assert Path(manifest["routing"]["path"]).is_dir()

    [run] = eval_runs(warehouse, "routing")
    assert (run["decision"], run["winner"], run["reasons"]) == ("promote", "routing/good/1", ["passed"])
    counts = warehouse.read(
        lambda con: con.execute(
            "SELECT model_id, count(*), count(slice) FROM evaluations WHERE run_id = ? GROUP BY model_id",
            [report.run_id],
        ).fetchall()
    )
    # overall: accuracy, format_validity, macro_f1, 3 class F1 = 6; per slice: 3 metrics x 3 slices = 9
    assert sorted(counts) == [("routing/good/1", 15, 9), ("routing/weak/1", 15, 9), ("teacher", 15, 9)]
    weak = registry.get("routing/weak/1")
    assert weak.metrics["evaluation"]["gate"] == ["ci_low_below_threshold"]
    card = (registry.artifact_dir(weak) / "README.md").read_text()
    assert "## Lineage" in card and f"## Evaluation ({report.run_id})" in card and "not promoted" in card


def test_a_worse_candidate_is_rejected_and_the_champion_stays(registry: Registry) -> None:
    insert_model(registry.warehouse, registry.home, "routing/champ/1", stage="champion")
    insert_model(registry.warehouse, registry.home, "routing/worse/2")
    registry.write_manifest()
    before = registry.manifest_path.read_text()
    report = evaluate(
        registry,
        {"routing/worse/2": wrong_on_slice("w", "shipping", 3)},
        champion=("routing/champ/1", gold_predictor()),
    )
    assert report.decision.decision == "reject"
    assert report.decision.champion == "routing/champ/1"
    assert "inferior_to_champion" in report.decision.reasons
    assert registry.champion("routing").model_id == "routing/champ/1"
    assert registry.manifest_path.read_text() == before
    champ_card = (registry.artifact_dir(registry.get("routing/champ/1")) / "README.md").read_text()
    assert champ_card.count("## Evaluation (") == 1  # the champion was re-scored too


def test_dry_run_stores_the_decision_but_changes_nothing(registry: Registry) -> None:
    insert_model(registry.warehouse, registry.home, "routing/good/1")
    report = evaluate(registry, {"routing/good/1": gold_predictor()}, apply=False)
    assert report.decision.decision == "promote" and not report.applied
    assert registry.get("routing/good/1").stage == "candidate"
    assert registry.history("routing") == []
    assert eval_runs(registry.warehouse)[0]["decision"] == "promote"


def test_promote_then_rollback_restores_the_previous_champion(registry: Registry) -> None:
    insert_model(registry.warehouse, registry.home, "routing/v1/1")
    evaluate(registry, {"routing/v1/1": gold_predictor()})
    insert_model(registry.warehouse, registry.home, "routing/v2/1")
    report = evaluate(
        registry, {"routing/v2/1": gold_predictor()}, champion=("routing/v1/1", gold_predictor())
    )
    assert report.decision.winner == "routing/v2/1"
    assert registry.get("routing/v1/1").stage == "retired"
    registry.rollback("routing", "v2 misroutes VIP tickets")
    assert registry.champion("routing").model_id == "routing/v1/1"
    assert registry.get("routing/v2/1").stage == "retired"
    assert json.loads(registry.manifest_path.read_text())["routing"]["model_id"] == "routing/v1/1"


def test_teacher_usage_comes_from_logged_interactions(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    warehouse.write(
        lambda con: con.execute(
            "INSERT INTO interactions (id, workload_id, source, source_ref, request, response, "
            "prompt_tokens, completion_tokens, latency_ms, status, batch_id, ingested_at) VALUES "
            "('a', 'w', 's', 'f:1', '{}', '{}', 120, 4, 350.0, 'ok', 'b', now()), "
            "('b', 'w', 's', 'f:2', '{}', '{}', NULL, NULL, NULL, 'ok', 'b', now())"
        )
    )
    assert teacher_usage(warehouse, ["a", "b", "missing"]) == {"a": Usage(120, 4, 350.0)}
    assert teacher_usage(Warehouse(tmp_path / "none.duckdb"), ["a"]) == {}
