"""Real (tiny) encoder-classifier training whose epochs, learning rate and max length come from the
data: what was chosen is on record in the manifest, the card, the bundle and the loaded student."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from flywheel.bundle import BUNDLE_FILE
from flywheel.config import StudentConfig
from flywheel.train import load_student, train_candidate
from flywheel.train.fitting import LR_FACTORS
from flywheel.train.student import read_manifest

pytestmark = pytest.mark.slow
QUIET = {"val_examples": 4, "postprocess": {"measure_examples": 2}}


def split(routing) -> tuple[list, list]:
    train, val, _ = routing
    pool = train + val
    return pool[:60], pool[60:90]  # 30 val examples: enough to early-stop on


def train_on(student: StudentConfig, routing, demo_workloads, out_dir: Path):
    """The student trained on the routing split (60 train, 30 val) of the demo's support-routing."""
    train, val = split(routing)
    workload = demo_workloads["support-routing"]
    return train_candidate(student, workload, train, val, out_dir=out_dir, snapshot_id=None, warehouse=None)


def test_unset_settings_are_chosen_from_the_data_and_recorded(
    tmp_path: Path, routing, demo_workloads
) -> None:
    train, _ = split(routing)
    student = StudentConfig.model_validate(
        {"name": "auto", "kind": "encoder-classifier", "options": {**QUIET, "fit_budget_s": 40}}
    )
    trained = train_on(student, routing, demo_workloads, tmp_path)
    manifest = read_manifest(trained.path)
    fit, length = manifest["fit"], manifest["fit"]["max_length"]
    assert length["source"] == "p95 of training inputs" and length["total"] == len(train)
    assert manifest["max_seq_length"] == length["max_length"] < 256  # short tickets: p95, not 256
    bundle = orjson.loads((trained.path / BUNDLE_FILE).read_bytes())
    assert bundle["input"]["max_length"] == manifest["max_seq_length"]
    assert load_student(trained.path).max_length == manifest["max_seq_length"]
    rates = [t["learning_rate"] for t in fit["trials"]]
    default = fit["plan"]["learning_rates"][0]
    assert (
        rates == [float(f"{default * f:.3g}") for f in LR_FACTORS] and fit["chosen"]["learning_rate"] in rates
    )
    assert fit["chosen"]["val"]["epoch"] <= fit["chosen"]["val"]["epochs_run"]
    # the search keeps to its budget in compute seconds (the fit's own CPU time per thread), whatever
    # else the machine is running; wall time is recorded beside it
    assert fit["seconds"] < 40 + 60 and fit["wall_seconds"] > 0
    points = manifest["learning_curve"]["points"]
    assert [p["n"] for p in points] == [15, 21, 30, 42, 60] and all(p["total"] == 30 for p in points)
    # per-example results for the data-need bootstrap; the full point agrees with the chosen trial's val
    assert all(len(p["hits"]) == 30 and p["correct"] == p["hits"].count("1") for p in points)
    assert points[-1]["score"] == pytest.approx(fit["chosen"]["val"]["accuracy"], abs=1 / 30 + 1e-9)
    assert trained.fit and trained.fit["learning_curve"] == [[p["n"], p["score"]] for p in points]
    assert "## How it was fit" in (trained.path / "README.md").read_text()


def test_explicit_epochs_learning_rate_and_length_are_kept(tmp_path: Path, routing, demo_workloads) -> None:
    student = StudentConfig.model_validate(
        {
            "name": "fixed",
            "kind": "encoder-classifier",
            "epochs": 1,
            "learning_rate": 2e-4,
            "max_seq_length": 24,
            "options": {**QUIET, "learning_curve": False},
        }
    )
    trained = train_on(student, routing, demo_workloads, tmp_path)
    manifest = read_manifest(trained.path)
    fit = manifest["fit"]
    assert [t["learning_rate"] for t in fit["trials"]] == [2e-4] and fit["plan"]["epochs"] == 1
    assert fit["max_length"]["source"] == "config" and manifest["max_seq_length"] == 24
    assert fit["chosen"]["val"]["epochs_run"] == 1.0 and manifest["learning_curve"] is None
