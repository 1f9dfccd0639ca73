"""`flywheel train --json`: the output contract, on a snapshot curated from demo traffic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.demo import generate_demo_traffic

runner = CliRunner()
CONFIG = """
workloads:
  - id: support-routing
    task: classification
    labels: [billing, technical_issue, order_status, account_access, shipping, refund, returns,
             product_question, cancellation, complaint, feedback]
    label_parser: {regex: '^\\s*([a-z_]+)\\s*$'}
    sources: [{path: demo-data/support-routing.jsonl, format: openai}]
    students:
      - name: tiny
        batch_size: 4
        max_seq_length: 96
        options: {max_steps: 3, val_examples: 2, postprocess: {measure_examples: 1}}
"""


def invoke_json(args: list[str]) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return result.exit_code, json.loads(lines[0])


def test_train_without_a_snapshot_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "flywheel.yaml"
    config.write_text(CONFIG)
    code, payload = invoke_json(
        ["--config", str(config), "--home", str(tmp_path / "h"), "train", "-w", "support-routing"]
    )
    assert code == 1
    assert "support-routing" in payload["error"]
    code, payload = invoke_json(
        ["--config", str(config), "--home", str(tmp_path / "h"), "train", "-w", "nope"]
    )
    assert code == 2 and "unknown workload 'nope'" in payload["error"]


@pytest.mark.slow
def test_ingest_curate_train_json_contract(tmp_path: Path) -> None:
    generate_demo_traffic(tmp_path / "demo-data", seed=5, size=120)
    config = tmp_path / "flywheel.yaml"
    config.write_text(CONFIG)
    base = ["--config", str(config), "--home", str(tmp_path / "home")]
    assert invoke_json([*base, "ingest"])[0] == 0
    code, curated = invoke_json([*base, "curate", "-w", "support-routing"])
    assert code == 0, curated
    code, payload = invoke_json([*base, "train", "-w", "support-routing", "-c", "tiny"])
    assert code == 0, payload
    assert payload["snapshot_id"] == curated["snapshot_id"]
    [candidate] = payload["candidates"]
    assert {"name", "model_id", "path", "params", "train_seconds", "tokens_per_second"} <= set(candidate)
    assert candidate["name"] == "tiny" and candidate["model_id"].startswith("support-routing/tiny/v")
    assert Path(candidate["path"], "flywheel.json").exists()
    assert candidate["params"] > 0 and candidate["tokens_per_second"] > 0
    # the CLI is the run's train stage: a student already trained on this snapshot is not retrained
    code, again = invoke_json([*base, "train", "-w", "support-routing", "-c", "tiny"])
    assert code == 0 and again["candidates"] == [] and again["skipped"] == ["tiny"]
