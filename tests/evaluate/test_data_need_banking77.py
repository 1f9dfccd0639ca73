"""The data-need bench's workload: 14 BANKING77 intents as replay traffic, settings left to the data
(no training here; the bench runs the turn). Skips without ../shared/data/banking77."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from flywheel.config import load_config
from flywheel.train.config import resolve_settings

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "banking77"
BENCH = Path(__file__).resolve().parents[2] / "bench" / "data_need_banking77.py"

pytestmark = pytest.mark.skipif(not (DATA / "train.csv").exists(), reason="no ../shared/data/banking77")


def bench():
    spec = importlib.util.spec_from_file_location("data_need_banking77", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_workload_samples_14_intents_and_leaves_the_fit_to_the_data(tmp_path: Path) -> None:
    module = bench()
    traffic, intents = module.write_traffic(DATA, tmp_path, 500, 14, 0, module.CONFUSABLE)
    assert len(intents) == 14 and traffic.is_relative_to(tmp_path)
    with traffic.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 500 and {row["category"] for row in rows} <= set(intents)
    workload = load_config(module.write_config(tmp_path, traffic, intents)).workload("b14")
    settings = resolve_settings(workload.students[0], workload)
    assert settings.auto == ["epochs", "learning_rate", "max_seq_length"]
    assert workload.gate.min_agreement == 0.9
