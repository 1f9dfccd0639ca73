"""Recipes: written configs load and point at the data, noise is exact and seeded, errors are clear."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.config import load_config
from flywheel.recipes import RecipeDataMissing, RecipeOptions, get_recipe, write_recipe
from flywheel.recipes.banking77 import read_rows
from tests.recipes.conftest import LABELS


def test_banking77_config_reads_the_dataset_in_place(banking_dir: Path, tmp_path: Path) -> None:
    written = write_recipe("banking77", banking_dir, tmp_path / "out")
    config = load_config(written.config_path)
    workload = config.workload("banking77")
    assert workload.task == "classification" and workload.labels == LABELS
    (source,) = workload.sources
    assert source.path == str(banking_dir.resolve() / "train.csv") and source.format == "csv"
    assert (
        source.mapping is not None
        and source.mapping.prompt == "text"
        and source.mapping.response == "category"
    )
    assert all(label in (source.mapping.system_prompt or "") for label in LABELS)
    assert [s.kind for s in workload.students] == ["encoder-classifier"]
    assert config.home_dir() == (tmp_path / "out" / ".flywheel").resolve()
    assert config.teacher.model == "gpt-4o-mini"
    assert not (tmp_path / "out" / "traffic").exists()  # nothing copied without an option
    assert written.held_out == [str(banking_dir.resolve() / "test.csv")]
    assert written.run_command == f"flywheel --config {written.config_path} run -w banking77"


def test_noise_replaces_an_exact_seeded_share_with_wrong_labels(banking_dir: Path, tmp_path: Path) -> None:
    options = RecipeOptions(noise=0.1, seed=3)
    first = write_recipe("banking77", banking_dir, tmp_path / "a", options)
    again = write_recipe("banking77", banking_dir, tmp_path / "b", options)
    original = read_rows(banking_dir / "train.csv")
    noisy = read_rows(Path(first.traffic[0]))
    changed = [
        i for i, (o, n) in enumerate(zip(original, noisy, strict=True)) if o["category"] != n["category"]
    ]
    assert len(changed) == 10 and all(noisy[i]["category"] in LABELS for i in changed)
    assert [r["text"] for r in noisy] == [r["text"] for r in original]
    assert read_rows(Path(again.traffic[0])) == noisy
    manifest = json.loads((tmp_path / "a" / "traffic" / "noise.json").read_text())
    assert manifest["corrupted_rows"] == changed and first.notes["corrupted"] == 10


def test_limit_takes_a_seeded_subset(banking_dir: Path, tmp_path: Path) -> None:
    written = write_recipe(
        "banking77", banking_dir, tmp_path / "o", RecipeOptions(limit=30, epochs=1, batch_size=8)
    )
    rows = read_rows(Path(written.traffic[0]))
    assert len(rows) == 30 and len({r["text"] for r in rows}) == 30
    student = load_config(written.config_path).workload("banking77").students[0]
    assert (student.epochs, student.batch_size) == (1, 8)


def test_teacher_options_reach_the_config(banking_dir: Path, tmp_path: Path) -> None:
    options = RecipeOptions(teacher_url="http://127.0.0.1:9/v1", k_votes=5, api_key_env="MY_KEY")
    teacher = load_config(write_recipe("banking77", banking_dir, tmp_path / "o", options).config_path).teacher
    assert (teacher.base_url, teacher.k_votes, teacher.api_key_env) == ("http://127.0.0.1:9/v1", 5, "MY_KEY")


def test_snips_config_has_a_schema_of_intents_and_slots(snips_dir: Path, tmp_path: Path) -> None:
    written = write_recipe("snips", snips_dir, tmp_path / "o")
    workload = load_config(written.config_path).workload("snips")
    schema = workload.json_schema
    assert schema is not None
    assert schema["properties"]["intent"]["enum"] == ["GetWeather", "PlayMusic"]
    assert sorted(schema["properties"]["slots"]["properties"]) == ["city", "genre"]
    assert workload.sources[0].format == "snips" and workload.sources[0].path.endswith("train_*_full.json")
    assert [s.kind for s in workload.students] == ["encoder-extractor"]
    (gold,) = get_recipe("snips").gold(snips_dir, workload)
    answer = json.loads(gold.target["content"])
    assert answer == {"intent": "GetWeather", "slots": {"city": "Oslo"}}
    assert gold.messages[-1] == {"role": "user", "content": "rain in Oslo tomorrow"}
    jsonschema.validate(answer, schema)
    jsonschema.validate({"intent": "PlayMusic", "slots": {"genre": ["jazz", "soul"]}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"intent": "Nope", "slots": {}}, schema)


def test_snips_limit_writes_a_subset_in_the_span_format(snips_dir: Path, tmp_path: Path) -> None:
    from connectors.snips import iter_utterances

    written = write_recipe("snips", snips_dir, tmp_path / "o", RecipeOptions(limit=3, seed=1))
    assert len(list(iter_utterances(Path(written.traffic[0])))) == 3


def test_missing_data_and_bad_options_are_clear(tmp_path: Path, snips_dir: Path) -> None:
    with pytest.raises(RecipeDataMissing, match=r"banking77: .*nowhere/train.csv not found"):
        write_recipe("banking77", tmp_path / "nowhere", tmp_path / "o")
    with pytest.raises(ValueError, match="unknown recipe 'imdb'"):
        write_recipe("imdb", tmp_path, tmp_path / "o")
    with pytest.raises(ValueError, match="noise must be in"):
        RecipeOptions(noise=1.0)
    with pytest.raises(ValueError, match="banking77 only"):
        write_recipe("snips", snips_dir, tmp_path / "o", RecipeOptions(noise=0.1))


def test_cli_writes_a_recipe_and_names_missing_data(banking_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["recipe", "banking77", "--data", str(banking_dir), "--out", str(tmp_path / "o"),
                             "--json"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["run"].endswith("run -w banking77") and Path(payload["config_path"]).exists()
    missing = runner.invoke(
        app, ["recipe", "banking77", "--data", str(tmp_path / "x"), "--out", str(tmp_path)]
    )
    assert missing.exit_code == 1 and "train.csv not found" in missing.output
    config = payload["config_path"]
    unscored = runner.invoke(
        app, ["--config", config, "recipe-score", "banking77", "--data", str(banking_dir)]
    )
    assert unscored.exit_code == 1 and "no promoted champion" in unscored.output


def test_the_noisy_csv_is_a_valid_source(banking_dir: Path, tmp_path: Path) -> None:
    from flywheel.loop import Loop, ingest_stage

    written = write_recipe("banking77", banking_dir, tmp_path / "o", RecipeOptions(noise=0.2, limit=50))
    report = ingest_stage(Loop.open(written.config_path), "banking77")
    assert (report["read"], report["ingested"], report["quarantined"]) == (50, 50, 0)
    with Path(written.traffic[0]).open(newline="") as handle:
        assert next(csv.reader(handle)) == ["text", "category"]
