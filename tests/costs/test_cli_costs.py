from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from tests.costs import independent
from tests.costs.fixture_warehouse import ORDERS, SUPPORT

runner = CliRunner()


def _json(args: list[str]) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return result.exit_code, json.loads(lines[0])


def test_costs_json_equals_independent_sql(fixture_copy: Path) -> None:
    code, payload = _json(["--home", str(fixture_copy.parent), "costs"])
    assert code == 0
    expected = independent.expected_summary(duckdb.connect(str(fixture_copy), read_only=True))
    for workload in (SUPPORT, ORDERS):
        got, want = payload["workloads"][workload], expected[workload]
        for key in ("teacher_usd", "actual_usd", "saved_usd", "saved_pct", "projected_monthly_saved_usd"):
            assert got[key] == pytest.approx(want[key], abs=2e-6), (workload, key)
    assert payload["assumptions"][SUPPORT]["teacher_model"] == "gpt-4o"
    assert payload["warehouse"] == str(fixture_copy)


def test_costs_for_one_workload(fixture_copy: Path) -> None:
    code, payload = _json(["--home", str(fixture_copy.parent), "costs", "--workload", ORDERS])
    assert code == 0 and list(payload["workloads"]) == [ORDERS] and list(payload["assumptions"]) == [ORDERS]
    assert payload["workloads"][ORDERS]["projection_basis"] == "ingested"


def test_unknown_workload_and_profile_are_clear_errors(fixture_copy: Path) -> None:
    code, payload = _json(["--home", str(fixture_copy.parent), "costs", "-w", "nope"])
    assert code == 1 and "nope" in payload["error"] and SUPPORT in payload["error"]
    code, payload = _json(["--home", str(fixture_copy.parent), "costs", "--hardware", "tpu"])
    assert code == 2 and "unknown hardware profile 'tpu'" in payload["error"]


def test_no_warehouse_says_what_to_run(tmp_path: Path) -> None:
    code, payload = _json(["--home", str(tmp_path), "costs"])
    assert code == 1 and "flywheel demo" in payload["error"]
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_human_output_is_a_table(fixture_copy: Path) -> None:
    result = runner.invoke(app, ["--home", str(fixture_copy.parent), "costs"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "savings ledger" in result.stdout and SUPPORT in result.stdout and "2026-01-13" in result.stdout


def test_demo_traffic_costs_nothing_more_before_any_student(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    data = tmp_path / "demo-data"
    assert runner.invoke(app, ["demo-data", "--out", str(data), "--size", "40", "--json"]).exit_code == 0
    for workload in ("support-routing", "order-extraction", "tool-assistant"):
        args = ["--home", home, "ingest", str(data / f"{workload}.jsonl"), "-w", workload, "--json"]
        assert runner.invoke(app, args).exit_code == 0
    code, payload = _json(["--home", home, "costs"])
    assert code == 0 and len(payload["workloads"]) == 3
    for summary in payload["workloads"].values():
        assert summary["teacher_usd"] > 0
        assert summary["actual_usd"] == pytest.approx(summary["teacher_usd"])
        assert summary["saved_usd"] == pytest.approx(0, abs=1e-9)
        assert summary["projection_basis"] in ("no_candidate_cost", None)
