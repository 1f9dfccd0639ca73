"""`flywheel label --json` on a dataset snapshot, against the fake OpenAI server over loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.datasets.snapshots import SnapshotInfo, SnapshotRow, write_snapshot
from flywheel.records import utcnow
from flywheel.store.db import Warehouse
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from flywheel.testing.oracles import keyword_oracle
from tests.teacher.conftest import API_KEY, LABELS, support_examples

runner = CliRunner()
REFUND_IDEAS = [
    "I was charged twice, please refund one payment.",
    "The lamp arrived broken, I want a refund.",
    "How do I get a refund for a gift card?",
]


def oracle(request: dict[str, Any]) -> Any:
    if request["messages"][0]["content"].startswith("You write realistic"):
        return json.dumps({"inputs": REFUND_IDEAS})
    return keyword_oracle(request)


def seed_snapshot(home: Path) -> None:
    examples = support_examples(12)
    for example in examples[9:]:
        example.split = "eval"
    info = SnapshotInfo("support.v1", "support", "c", "c", "support.v1", utcnow(), 9, 0, 3, None)

    def write(con: Any) -> None:
        write_snapshot(con, info, [SnapshotRow(e) for e in examples])
        rare_refunds = ("cur-1", "support", "support.v1", "label", "refund", 3, 3, 0.1, 0.1, True)
        con.execute("INSERT INTO slice_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(rare_refunds))

    Warehouse(home / "warehouse.duckdb").write(write)


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"], env=env)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return result.exit_code, json.loads(lines[0])


def test_label_replay_relabel_synthesize_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seed_snapshot(home)
    fake = make_fake_openai_app(oracle)
    with serve_in_thread(fake) as base_url:
        config = {
            "teacher": {"base_url": base_url, "model": "fake-teacher", "api_key_env": "FAKE_TEACHER_KEY"},
            "prices": {"fake-teacher": {"input": 1000, "output": 1000}},
            "workloads": [{"id": "support", "task": "classification", "labels": LABELS}],
        }
        path = tmp_path / "flywheel.yaml"
        path.write_text(yaml.safe_dump(config))
        base = ["--home", str(home), "--config", str(path), "label", "--workload", "support"]
        env = {"FAKE_TEACHER_KEY": API_KEY}

        # the same default splits as a flywheel turn's label stage (train and val)...
        code, replay = invoke([*base, "--mode", "replay"], env)
        assert code == 0 and (replay["labeled"], replay["calls"], replay["cost_usd"]) == (9, 0, 0)
        code, replay = invoke([*base, "--mode", "replay", "--splits", "train,val,eval"], env)
        assert code == 0 and (replay["labeled"], replay["calls"], replay["cost_usd"]) == (12, 0, 0)
        code, relabel = invoke([*base, "--mode", "relabel", "--splits", "train"], env)
        assert code == 0 and (relabel["labeled"], relabel["calls"], relabel["failed"]) == (9, 9, 0)
        assert relabel["cost_usd"] > 0 and relabel["snapshot_id"] == "support.v1"
        # no served traffic yet: nothing is flagged, the budget goes in snapshot order
        assert relabel["expected_gain"] | {"by_reason": {}, "by_top_reason": {}} == {
            "served": 0, "flagged": 0, "by_reason": {}, "by_top_reason": {}, "selected": 0,
            "estimated_errors": 0, "estimated_errors_covered": 0, "share_of_errors_covered": None,
            "uniform_share": None, "gain_vs_uniform": None,
        }  # fmt: skip
        assert replay["expected_gain"] is None
        code, again = invoke([*base, "--mode", "relabel", "--splits", "train"], env)
        assert (again["cached"], again["calls"], again["cost_usd"]) == (9, 0, 0)
        code, synth = invoke([*base, "--mode", "synthesize", "--per-slice", "2"], env)
        assert code == 0 and synth["labeled"] == 2 and synth["mode"] == "synthesize"
        code, capped = invoke([*base, "--mode", "relabel", "--splits", "eval", "--max-usd", "0"], env)
        assert (capped["stopped_reason"], capped["calls"], capped["skipped"]) == ("budget", 0, 3)

        code, missing = invoke([*base, "--mode", "relabel"], {})
        assert code == 2 and "FAKE_TEACHER_KEY" in missing["error"]
        code, bad = invoke([*base, "--mode", "guess"], env)
        assert code == 2 and "--mode" in bad["error"]
    for payload in (replay, relabel, again, synth, capped):
        assert {"labeled", "cached", "calls", "failed", "cost_usd"} <= payload.keys()
