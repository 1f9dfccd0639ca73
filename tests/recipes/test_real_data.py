"""A few rows of the real public data through the recipe and the loop's stages (skips without the data)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from flywheel.loop import Loop, curate_stage, ingest_stage, label_stage, train_stage
from flywheel.recipes import RecipeOptions, get_recipe, write_recipe
from tests.recipes.conftest import real_data


def open_loop(config: Path, workload: str) -> Loop:
    """The recipe's loop without the Great Expectations suite (tests/quality covers it; its import
    alone costs ~10 s)."""
    loop = Loop.open(config)
    loop.workload(workload).curation.expectations = False
    return loop


@pytest.mark.slow
def test_banking77_rows_train_a_student_scored_on_gold(tmp_path: Path) -> None:
    from flywheel.recipes.scoring import score_on_gold

    data = real_data("banking77")
    written = write_recipe("banking77", data, tmp_path / "run", RecipeOptions(limit=60, epochs=1, seed=2))
    loop = open_loop(written.config_path, "banking77")
    assert ingest_stage(loop, "banking77")["ingested"] == 60
    curated = curate_stage(loop, "banking77")
    assert curated["out"] > 40
    assert label_stage(loop, "banking77")["labeled"] > 0
    trained = train_stage(loop, "banking77")
    (model_id,) = trained["trained"]
    result = score_on_gold(written.config_path, "banking77", data, model_id=model_id, limit=40, resamples=20)
    assert result["n"] == 40 and not result["promoted"]
    assert 0 <= result["student"]["metrics"]["accuracy"][0] <= 1
    assert result["teacher"]["metrics"]["accuracy"][0] == 1.0  # its logged answers are the gold column
    assert result["teacher"]["cost_basis"] == "tokens" and result["student"]["cost_basis"] == "hardware"
    assert result["teacher"]["prompt_tokens_mean"] > 300  # the 77-intent system prompt is paid for
    assert 0 < result["savings_pct"] < 1


def test_snips_rows_ingest_and_curate_and_gold_fits_the_schema(tmp_path: Path) -> None:
    data = real_data("snips")
    written = write_recipe("snips", data, tmp_path / "run", RecipeOptions(limit=80, seed=2))
    loop = open_loop(written.config_path, "snips")
    ingested = ingest_stage(loop, "snips")
    assert (ingested["read"], ingested["quarantined"]) == (80, 0)
    assert curate_stage(loop, "snips")["out"] > 60
    workload = loop.workload("snips")
    gold = get_recipe("snips").gold(data, workload)
    assert len(gold) == 700 and {e.slice for e in gold} == set(
        workload.json_schema["properties"]["intent"]["enum"]
    )
    validator = jsonschema.Draft202012Validator(workload.json_schema)  # validate() rechecks the schema
    assert all(validator.is_valid(json.loads(example.target["content"])) for example in gold)
