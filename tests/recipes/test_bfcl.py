"""BFCL items as OpenAI logs (flywheel/recipes/bfcl.py), and all of bfcl-simple through the real
ingest and curate (skips without ../shared/data/bfcl-simple)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from flywheel.config import WorkloadConfig
from flywheel.curate import curate_workload
from flywheel.ingest import ingest_paths
from flywheel.recipes.bfcl import BfclDataError, gold_calls, load_items, pick_arguments, to_log, write_logs
from flywheel.schemas import schema_problem
from flywheel.store.db import Warehouse
from tests.recipes.conftest import real_data

FUNCTION = {
    "name": "math.hypot",
    "parameters": {
        "type": "dict",
        "properties": {"x": {"type": "integer"}, "y": {"type": "float"}, "z": {"type": "integer"}},
        "required": ["x", "y"],
    },
}


def write_bfcl(root: Path, questions: list[dict], answers: list[dict]) -> Path:
    (root / "possible_answer").mkdir(parents=True)
    for path, docs in ((root / "BFCL_v4_simple_python.json", questions),
                       (root / "possible_answer" / "BFCL_v4_simple_python.json", answers)):  # fmt: skip
        path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return root


def test_gold_call_takes_the_first_acceptable_value_and_omits_what_may_be_omitted() -> None:
    acceptable = {"x": [4], "y": ["", 5.0], "z": ["", 0], "unit": ["units", ""], "nothing": []}
    assert pick_arguments(acceptable, required=["x", "y"]) == {"x": 4, "y": 5.0, "unit": "units"}
    nested = {
        "area": [{"width": [20], "height": [12, 13]}],
        "conditions": [[{"field": ["age"], "op": ["", ">"]}]],
    }
    assert pick_arguments(nested) == {"area": {"width": 20, "height": 12}, "conditions": [{"field": "age"}]}
    assert pick_arguments({"hand": [["A", "K"]]}) == {"hand": ["A", "K"]}


def test_items_become_openai_logs(tmp_path: Path) -> None:
    question = {
        "id": "q0",
        "question": [[{"role": "user", "content": "hypot of 3 and 4"}]],
        "function": [FUNCTION],
    }
    answer = {"id": "q0", "ground_truth": [{"math.hypot": {"x": [3], "y": [4.0], "z": ["", 0]}}]}
    (item,) = load_items(write_bfcl(tmp_path, [question], [answer]))
    assert gold_calls(item) == [{"name": "math.hypot", "arguments": {"x": 3, "y": 4.0}}]
    log = to_log(item, 5)
    assert log["request"]["tools"] == [
        {"type": "function", "function": FUNCTION}
    ]  # schemas as BFCL wrote them
    (call,) = log["response"]["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "math.hypot", "arguments": '{"x":3,"y":4.0}'}
    assert log["metadata"]["label"] == gold_calls(item) and log["timestamp"] == log["response"]["created"]


def test_bad_files_are_named(tmp_path: Path) -> None:
    root = write_bfcl(
        tmp_path / "a", [{"id": "q0", "question": [], "function": []}], [{"id": "q0", "ground_truth": []}]
    )
    with pytest.raises(BfclDataError, match=r"BFCL_v4_simple_python.json:1: 'question'"):
        load_items(root)
    with pytest.raises(BfclDataError, match="no possible answer for id 'q0'"):
        load_items(write_bfcl(tmp_path / "b", [{"id": "q0", "question": [[]]}], []))
    with pytest.raises(BfclDataError, match="no such file"):
        load_items(tmp_path / "missing")


@pytest.mark.slow
def test_all_of_bfcl_simple_ingests_and_curates_as_a_tool_call_workload(tmp_path: Path) -> None:
    data = real_data("bfcl-simple")
    logs = tmp_path / "bfcl_simple.jsonl"
    assert write_logs(data, logs) == 400
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    started = time.monotonic()
    ingested = ingest_paths(warehouse, [logs], workload_id="bfcl").as_dict()
    ingest_seconds = time.monotonic() - started
    workload = WorkloadConfig(id="bfcl", task="tool_call", curation={"export": []})
    report = curate_workload(warehouse, workload, home=tmp_path / "home")
    print(f"bfcl-simple: ingest {ingested['ingested']} in {ingest_seconds:.2f}s, quarantined "
          f"{ingested['reasons']}; curate kept {report.n_out}/{report.n_in}, rejected {report.rejected}, "
          f"{report.seconds:.2f}s")  # fmt: skip
    assert ingested["read"] == 400 and ingested["ingested"] + ingested["quarantined"] == 400
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        quarantined = con.execute("SELECT count(*), count(reason) FROM quarantine").fetchone()
        requests = [orjson.loads(r) for (r,) in con.execute("SELECT request FROM interactions").fetchall()]
        examples = con.execute("SELECT label, gold FROM snapshot_examples").fetchall()
    assert quarantined == (ingested["quarantined"],) * 2  # each one with its reason
    # Every schema is standard JSON Schema now, and every gold call satisfies it.
    assert ingested["ingested"] == 400 and report.rejected == {} and report.n_out == 400
    assert all(schema_problem(t["function"]["parameters"]) is None for r in requests for t in r["tools"])
    assert not any('"type":"dict"' in orjson.dumps(r["tools"]).decode() for r in requests)
    assert all(label == gold for label, gold in examples)
