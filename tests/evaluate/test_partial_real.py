"""A real weak student (MiniLM encoder-extractor, 3 epochs on 260 demo logs) on the tool-assistant
workload: it fails the gate on all traffic, is promoted partially for the tool-call turns it is sure
of, and `serve` (the real app over the registry's manifest) answers exactly those and falls back on
the rest, each for the reason the evaluation predicts (under the calibrated threshold, invalid, or a
text turn)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from flywheel.answers.claims import TOOL_CALLS
from tests.bundle.loop import demo_workload, logged_requests, run_turn, serve, write_config

pytestmark = pytest.mark.slow


def test_weak_extractor_promoted_partially_and_served_by_threshold(tmp_path: Path, demo_logs: Path) -> None:
    workload = demo_workload(
        "tool-assistant", demo_logs, {"name": "weak", "kind": "encoder-extractor", "epochs": 3}
    )
    workload["gate"] = {"min_agreement": 0.99, "min_cost_reduction": 0.0}
    turn = run_turn(write_config(tmp_path / "home", workload), "tool-assistant")
    payload = turn.report.as_dict()
    assert payload["decision"] == "promote_partial", payload["summary"]
    cascade = payload["cascade"]
    assert cascade["claims"] == TOOL_CALLS and 0.2 <= cascade["coverage"] < 1.0
    manifest = json.loads((turn.loop.home / "champions.json").read_text())["tool-assistant"]
    assert manifest["threshold"] == cascade["threshold"] and manifest["claims"] == TOOL_CALLS
    tools = payload["tool_metrics"][turn.champion]
    assert tools["overall"]["coverage"] == pytest.approx(cascade["coverage"])

    scored = turn.report.result.models[turn.champion]
    ids = turn.report.result.example_ids
    logged = logged_requests(turn.loop, ids)
    responses = serve(turn.loop, [logged[i][0] for i in ids], on_unsure="student")
    expected, served = {}, {}
    for i, prediction, response in zip(ids, scored.predictions, responses, strict=True):
        assert response.status_code == 200, response.text
        if prediction.confidence < cascade["threshold"]:  # the router's order of checks
            expected[i] = "low_confidence"
        elif prediction.invalid_reason is not None:
            expected[i] = "invalid_format"
        elif not prediction.message.get("tool_calls"):
            expected[i] = "text_turn"
        else:
            expected[i] = None
        served[i] = response.headers.get("x-flywheel-fallback-wanted")
    assert served == expected
    claimed = sum(reason is None for reason in served.values())
    assert claimed / len(ids) == pytest.approx(cascade["coverage"])
    assert "low_confidence" in served.values()  # text turns: tests/serve/test_partial_serving.py
    reasons = Counter(reason or "student" for reason in served.values())
    print(
        f"\npartial: coverage {cascade['coverage']:.3f} at >= {cascade['threshold']:.4f}; "
        f"served {dict(reasons)}"
    )
