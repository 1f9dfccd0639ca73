"""The demo's served day: fresh traffic through the real serve app, counted in the ledger at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.demo.serving import demo_serving_stage
from tests.bundle.loop import demo_workload, run_turn, write_config

pytestmark = pytest.mark.slow


def test_a_served_day_shows_student_traffic_and_savings(tmp_path: Path, demo_logs: Path) -> None:
    student = {
        "name": "minilm", "kind": "encoder-classifier", "epochs": 2, "max_seq_length": 64,
        "learning_rate": 1e-4, "options": {"learning_curve": False},
    }  # fmt: skip
    workload = demo_workload("support-routing", demo_logs, student)
    config = write_config(tmp_path / "home", workload)
    text = config.read_text() + "serve:\n  confidence_threshold: 0.0\n"
    config.write_text(text)
    turn = run_turn(config, "support-routing")
    assert turn.champion
    served = demo_serving_stage(turn.loop, seed=3, size=40)
    routes = served["by_workload"]["support-routing"]
    assert served["served"] == sum(routes.values()) and routes.get("student", 0) > 0
    ledger = served["ledger"]["support-routing"]
    assert ledger["served_requests"] == served["served"]  # every call, no ingest in between
    assert ledger["student_requests"] == routes.get("student", 0)
    assert ledger["teacher_usd"] > ledger["actual_usd"]  # the students answered for less
