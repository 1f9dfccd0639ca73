"""Registry stages, promotions history, rollback, the champions manifest, model cards and the CLI."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.demo import demo_config_path
from flywheel.registry import CARD_START, Registry, RegistryError, atomic_write
from flywheel.store.db import Warehouse
from tests.evaluate.helpers import FnPredictor, insert_model, label_examples

runner = CliRunner()


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    home = tmp_path / "home"
    return Registry(Warehouse(home / "warehouse.duckdb"), home)


def add(registry: Registry, *model_ids: str, stage: str = "candidate") -> None:
    for model_id in model_ids:
        insert_model(registry.warehouse, registry.home, model_id, stage=stage)


def manifest(registry: Registry) -> dict:
    return json.loads(registry.manifest_path.read_text())


def test_empty_registry_reads_without_a_warehouse(registry: Registry) -> None:
    assert registry.list_models() == [] and registry.champion("routing") is None and registry.history() == []


def test_manual_promotion_retires_the_previous_champion(registry: Registry) -> None:
    add(registry, "routing/a/1", "routing/b/1")
    first = registry.promote("routing/a/1", "first model")
    assert (first.action, first.previous_model_id) == ("manual", None)
    second = registry.promote("routing/b/1", "better on refunds")
    assert second.previous_model_id == "routing/a/1"
    stages = {r.model_id: r.stage for r in registry.list_models("routing")}
    assert stages == {"routing/a/1": "retired", "routing/b/1": "champion"}
    assert [p.model_id for p in registry.history("routing")] == ["routing/a/1", "routing/b/1"]
    entry = manifest(registry)["routing"]
    assert entry["model_id"] == "routing/b/1" and entry["kind"] == "scratch"
    assert Path(entry["path"]).is_absolute() and Path(entry["path"]).is_dir()
    assert entry["promoted_at"] == second.at.isoformat()


def test_rollback_walks_back_the_champion_history(registry: Registry) -> None:
    add(registry, "routing/a/1", "routing/b/1", "routing/c/1")
    for model_id in ("routing/a/1", "routing/b/1", "routing/c/1"):
        registry.promote(model_id, "next")
    back = registry.rollback("routing", "c is broken")
    assert (back.action, back.model_id, back.previous_model_id) == ("rollback", "routing/b/1", "routing/c/1")
    assert registry.rollback("routing").model_id == "routing/a/1"
    assert manifest(registry)["routing"]["model_id"] == "routing/a/1"
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback("routing")
    assert registry.get("routing/c/1").stage == "retired"


def test_registry_errors_are_clear(registry: Registry) -> None:
    add(registry, "routing/a/1")
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        registry.promote("nope", "x")
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.promote("routing/a/1", "  ")
    with pytest.raises(RegistryError, match="has no champion"):
        registry.rollback("routing")
    registry.promote("routing/a/1", "x")
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote("routing/a/1", "again")
    with pytest.raises(RegistryError, match="unknown stage"):
        registry.list_models(stage="production")
    add(registry, "routing/ghost/1")
    (registry.home / "models" / "routing__ghost__1").rmdir()
    with pytest.raises(RegistryError, match=r"artifact directory .* is missing"):
        registry.promote("routing/ghost/1", "x")


def test_champions_are_per_workload(registry: Registry) -> None:
    add(registry, "routing/a/1")
    insert_model(registry.warehouse, registry.home, "orders/x/1", workload_id="orders")
    registry.promote("routing/a/1", "x")
    registry.promote("orders/x/1", "y")
    assert set(manifest(registry)) == {"routing", "orders"}
    assert registry.champion("routing").model_id == "routing/a/1"


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "champions.json"
    atomic_write(target, b"{}")
    atomic_write(target, b'{"a": 1}')
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["champions.json"]


def test_model_card_section_is_replaced_not_appended(registry: Registry) -> None:
    add(registry, "routing/a/1")
    card_path = registry.artifact_dir(registry.get("routing/a/1")) / "README.md"
    card_path.write_text("# My model\n\nHand-written notes.\n")
    registry.update_card("routing/a/1", "## Evaluation (run-1)\n\naccuracy 0.9")
    registry.update_card("routing/a/1", "## Evaluation (run-2)\n\naccuracy 0.95")
    text = card_path.read_text()
    assert text.startswith("# My model\n\nHand-written notes.")
    assert text.count(CARD_START) == 1 and "run-2" in text and "run-1" not in text


def test_record_metrics_merges(registry: Registry) -> None:
    add(registry, "routing/a/1")
    registry.record_metrics("routing/a/1", {"evaluation": {"run_id": "r1"}})
    registry.record_metrics("routing/a/1", {"train_loss": 0.1})
    assert registry.get("routing/a/1").metrics == {"evaluation": {"run_id": "r1"}, "train_loss": 0.1}


def cli_json(args: list[str]) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return result.exit_code, json.loads(lines[0])


def test_cli_models_promote_rollback(registry: Registry) -> None:
    add(registry, "routing/a/1", "routing/b/1")
    home = ["--home", str(registry.home)]
    code, payload = cli_json([*home, "models", "--workload", "routing"])
    assert code == 0 and [m["stage"] for m in payload["models"]] == ["candidate", "candidate"]
    code, payload = cli_json([*home, "promote", "routing/a/1", "--reason", "first"])
    assert code == 0 and payload["champion"] == "routing/a/1" and payload["previous_champion"] is None
    code, payload = cli_json([*home, "promote", "routing/b/1", "--reason", "better"])
    assert payload["previous_champion"] == "routing/a/1" and payload["action"] == "manual"
    code, payload = cli_json([*home, "rollback", "--workload", "routing"])
    assert code == 0 and payload["champion"] == "routing/a/1" and payload["action"] == "rollback"
    assert Path(payload["manifest"]).exists()
    code, payload = cli_json([*home, "models", "--stage", "champion"])
    assert [m["model_id"] for m in payload["models"]] == ["routing/a/1"]
    code, payload = cli_json([*home, "promote", "nope", "--reason", "x"])
    assert code == 1 and "unknown model 'nope'" in payload["error"]
    code, payload = cli_json([*home, "rollback", "--workload", "routing"])
    assert code == 1 and "no previous champion" in payload["error"]


def test_cli_evaluate_wires_eval_split_candidates_and_teacher(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flywheel evaluate` with stand-ins for the curation and training stages."""
    examples = label_examples({"billing": 30, "refund": 30})
    for example in examples:
        example.workload_id = "support-routing"
    datasets = types.ModuleType("flywheel.datasets")
    datasets.load_examples = lambda warehouse, workload_id, splits: examples  # type: ignore[attr-defined]
    student = types.ModuleType("flywheel.train.student")
    student.load_student = lambda path: FnPredictor(Path(path).name, lambda e: e.gold)  # type: ignore[attr-defined]
    student.read_manifest = lambda path: {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flywheel.datasets", datasets)
    monkeypatch.setitem(sys.modules, "flywheel.train.student", student)
    insert_model(registry.warehouse, registry.home, "support-routing/good/1", workload_id="support-routing")
    args = ["--home", str(registry.home), "--config", str(demo_config_path())]
    code, payload = cli_json([*args, "evaluate", "--workload", "support-routing", "--resamples", "200"])
    assert code == 0, payload
    assert payload["decision"] == "promote" and payload["champion"] == "support-routing/good/1"
    assert payload["reasons"] == ["passed"]
    assert {"model", "metric", "value", "ci_low", "ci_high"} <= set(payload["results"][0])
    teacher = next(m for m in payload["models"] if m["model"] == "teacher")
    assert teacher["cost_basis"] == "tokens"  # gpt-4o-mini from the config, priced by the catalog
    code, payload = cli_json([*args, "evaluate", "--workload", "support-routing", "--resamples", "200"])
    assert payload["decision"] == "reject" and payload["reasons"] == ["no_candidates"]
    assert payload["champion"] == "support-routing/good/1"
    code, payload = cli_json([*args, "evaluate", "--workload", "nope"])
    assert code == 2 and "unknown workload 'nope'" in payload["error"]


def test_rollback_to_teacher_leaves_the_workload_to_its_teacher(registry: Registry) -> None:
    add(registry, "routing/a/1", "routing/b/1")
    home = ["--home", str(registry.home)]
    cli_json([*home, "promote", "routing/a/1", "--reason", "first"])
    code, payload = cli_json([*home, "rollback", "-w", "routing", "--to", "teacher", "--reason", "drift"])
    assert code == 0 and payload["champion"] == "teacher" and payload["previous_champion"] == "routing/a/1"
    assert registry.champion("routing") is None
    assert "routing" not in json.loads(registry.manifest_path.read_text())
    code, payload = cli_json([*home, "rollback", "-w", "routing", "--to", "teacher"])
    assert code == 1 and "already served by its teacher" in payload["error"]
    cli_json([*home, "promote", "routing/b/1", "--reason", "retrained"])
    code, payload = cli_json([*home, "rollback", "-w", "routing"])  # b's predecessor was the teacher
    assert code == 0 and payload["champion"] == "teacher" and registry.champion("routing") is None
    code, payload = cli_json([*home, "rollback", "-w", "routing", "--to", "routing/a/1"])
    assert code == 0 and registry.champion("routing").model_id == "routing/a/1"
    code, payload = cli_json([*home, "rollback", "-w", "routing", "--to", "other/x/1"])
    assert code == 1 and "not a model of workload" in payload["error"]
