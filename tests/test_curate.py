"""Curation end to end on generated demo traffic: planted faults caught, no leakage, stable snapshots."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.config import FlywheelConfig, WorkloadConfig, load_config
from flywheel.curate import CurationReport, curate_workload
from flywheel.datasets import load_examples
from flywheel.demo import DemoManifest, demo_config_path, generate_demo_traffic
from flywheel.ingest import ingest_paths
from flywheel.quality.dedup import jaccard, normalize_text, numbers, shingles
from flywheel.quality.pii import scrub_record
from flywheel.records import message_text
from flywheel.store.db import Warehouse

SIZE, SEED = 400, 7
WORKLOADS = ("support-routing", "order-extraction", "tool-assistant")
pytestmark = pytest.mark.slow  # the shared fixture curates three workloads (GE import included)


@dataclass
class Demo:
    root: Path
    manifest: DemoManifest
    warehouse: Warehouse
    config: FlywheelConfig
    reports: dict[str, CurationReport]


def workload(config: FlywheelConfig, workload_id: str, **curation: object) -> WorkloadConfig:
    base = config.workload(workload_id)
    settings = base.curation.model_copy(update={"export": ["parquet"], **curation})
    return base.model_copy(update={"curation": settings})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = tmp_path_factory.mktemp("curate")
    manifest = generate_demo_traffic(root / "data", seed=SEED, size=SIZE)
    warehouse = Warehouse(root / "warehouse.duckdb")
    for workload_id, planted in manifest.workloads.items():
        ingest_paths(warehouse, [planted.path], workload_id=workload_id)
    config = load_config(demo_config_path())
    reports = {w: curate_workload(warehouse, workload(config, w), home=root) for w in WORKLOADS}
    return Demo(root, manifest, warehouse, config, reports)


def query(warehouse: Warehouse, sql: str, *params: object) -> list[tuple]:
    return warehouse.read(lambda con: con.execute(sql, list(params)).fetchall())


def verdicts_by_line(demo: Demo, workload_id: str) -> dict[int, tuple[str | None, str | None]]:
    """Line number of the demo file -> (reason, dup_group) in the latest run."""
    rows = query(
        demo.warehouse,
        "SELECT i.source_ref, v.reason, v.dup_group FROM curation_verdicts v "
        "JOIN interactions i ON i.id = v.interaction_id WHERE v.run_id = ?",
        demo.reports[workload_id].run_id,
    )
    return {int(ref.rsplit(":", 1)[1]): (reason, group) for ref, reason, group in rows}


def recall(caught: int, planted: int) -> float:
    return caught / planted if planted else 1.0


@pytest.mark.parametrize("workload_id", WORKLOADS)
def test_every_interaction_has_one_verdict_and_the_funnel_adds_up(demo: Demo, workload_id: str) -> None:
    report = demo.reports[workload_id]
    n = query(demo.warehouse, "SELECT count(*) FROM interactions WHERE workload_id = ?", workload_id)[0][0]
    verdicts = query(
        demo.warehouse,
        "SELECT count(*), count(DISTINCT interaction_id), count(*) FILTER (WHERE keep) "
        "FROM curation_verdicts WHERE run_id = ?",
        report.run_id,
    )[0]
    assert verdicts == (n, n, report.n_out)
    assert report.n_in == n == report.n_out + sum(report.rejected.values())
    stored = query(
        demo.warehouse, "SELECT n_in, n_out, funnel FROM curation_runs WHERE run_id = ?", report.run_id
    )
    assert stored[0][:2] == (n, report.n_out) and json.loads(stored[0][2])["rejected"] == report.rejected
    examples = load_examples(demo.warehouse, workload_id)
    assert len(examples) == report.n_out and report.splits["eval"] > 0 and report.splits["val"] > 0


@pytest.mark.parametrize("workload_id", WORKLOADS)
def test_planted_faults_are_caught(demo: Demo, workload_id: str) -> None:
    planted = demo.manifest.workloads[workload_id]
    verdicts = verdicts_by_line(demo, workload_id)
    expected = {
        "error": {"error_response"},
        "refusal": {"refusal"},
        "empty": {"empty_answer"},
        "truncated": {"truncated"},
        "malformed_answer": {"unparseable_label", "label_not_in_set", "invalid_json", "schema_violation",
                             "unknown_tool", "unparseable_arguments", "invalid_arguments"},
    }  # fmt: skip
    for fault, reasons in expected.items():
        lines = planted.lines_with(fault) & verdicts.keys()  # exact duplicates collapse at ingest
        caught = sum(1 for line in lines if verdicts[line][0] in reasons)
        assert recall(caught, len(lines)) >= 0.99, (fault, caught, len(lines))
    # Byte-identical repeats collapse into one interaction at ingest; anything left is rejected here.
    duplicates = planted.lines_with("exact_duplicate")
    caught = sum(1 for line in duplicates if line not in verdicts or verdicts[line][0] == "exact_duplicate")
    assert duplicates and recall(caught, len(duplicates)) >= 0.99


@pytest.mark.parametrize("workload_id", WORKLOADS)
def test_planted_pii_never_reaches_the_snapshot(demo: Demo, workload_id: str) -> None:
    planted = demo.manifest.workloads[workload_id]
    items = [(entry["line"], item["value"]) for entry in planted.faults["pii"] for item in entry["items"]]
    by_line = {
        int(ref.rsplit(":", 1)[1]): orjson.loads(request)
        for ref, request in query(
            demo.warehouse, "SELECT source_ref, request FROM interactions WHERE workload_id = ?", workload_id
        )
    }
    scrubbed = {
        line: orjson.dumps(scrub_record(req["messages"]).messages).decode() for line, req in by_line.items()
    }
    checked = [(line, value) for line, value in items if line in scrubbed]
    caught = sum(1 for line, value in checked if value not in scrubbed[line])
    assert len(checked) >= 15 and recall(caught, len(checked)) >= 0.99
    texts = orjson.dumps(
        [[e.messages, e.target, e.label] for e in load_examples(demo.warehouse, workload_id)]
    ).decode()
    assert not [value for _, value in items if value in texts]
    report = demo.reports[workload_id]
    stored = query(demo.warehouse, "SELECT pii_type, n FROM pii_counts WHERE run_id = ?", report.run_id)
    assert dict(stored) == report.pii and sum(report.pii.values()) >= len(planted.faults["pii"])


@pytest.mark.parametrize("workload_id", WORKLOADS)
def test_planted_near_duplicates_are_grouped(demo: Demo, workload_id: str) -> None:
    verdicts = verdicts_by_line(demo, workload_id)
    pairs = [
        (e["line"], e["original_line"]) for e in demo.manifest.workloads[workload_id].faults["near_duplicate"]
    ]
    grouped = sum(1 for a, b in pairs if verdicts[a][1] is not None and verdicts[a][1] == verdicts[b][1])
    assert len(pairs) >= 15 and recall(grouped, len(pairs)) >= 0.9


@pytest.mark.parametrize("workload_id", WORKLOADS)
def test_no_near_duplicate_group_crosses_splits(demo: Demo, workload_id: str) -> None:
    rows = query(
        demo.warehouse,
        "SELECT split, dup_group, messages FROM snapshot_examples WHERE snapshot_id = ?",
        demo.reports[workload_id].snapshot_id,
    )
    splits_of_group = defaultdict(set)
    for split, group, _ in rows:
        if group is not None:
            splits_of_group[group].add(split)
    assert all(len(splits) == 1 for splits in splits_of_group.values())
    # Independently of the recorded groups: no eval input is a near duplicate of a train input.
    texts = {split: [] for split in ("train", "val", "eval")}
    for split, _, messages in rows:
        texts[split].append(normalize_text(" ".join(message_text(m) for m in orjson.loads(messages))))
    leaks = [
        (a, b)
        for a, b in itertools.product(texts["eval"], texts["train"])
        if numbers(a) == numbers(b) and jaccard(shingles(a), shingles(b)) >= 0.7
    ]
    assert leaks == []


def test_slices_are_reported_capped_and_rare_ones_flagged(demo: Demo) -> None:
    report = demo.reports["support-routing"]
    settings = demo.config.workload("support-routing").curation
    slices = report.slices
    assert slices["kind"] == "label" and slices["before"]["max_share"] > slices["after"]["max_share"]
    assert slices["after"]["max_share"] <= settings.max_slice_share + 0.01
    assert slices["after"]["entropy_bits"] > slices["before"]["entropy_bits"] and slices["capped"]
    assert report.clients["before"]["max_share"] > settings.max_client_share + 0.05
    assert report.clients["after"]["max_share"] <= settings.max_client_share + 0.01
    stats = query(
        demo.warehouse,
        "SELECT slice, n_after, rare FROM slice_stats WHERE run_id = ? AND slice_kind = 'label'",
        report.run_id,
    )
    assert {s for s, _, _ in stats} == set(demo.config.workload("support-routing").labels)
    assert all(rare == (n < settings.min_slice_count) for _, n, rare in stats)
    assert set(slices["rare"]) == {s for s, _, rare in stats if rare} != set()
    tools = demo.reports["tool-assistant"].slices["after"]["counts"]
    assert {"get_order_status", "cancel_order", "search_products", "schedule_callback", "none"} <= set(tools)
    assert demo.reports["order-extraction"].slices["kind"] == "topic"


def test_examples_follow_the_label_conventions_and_prompts_are_pruned(demo: Demo) -> None:
    labels = set(demo.config.workload("support-routing").labels or [])
    for example in load_examples(demo.warehouse, "support-routing"):
        assert example.label in labels and example.slice == example.label
        assert [m["role"] for m in example.messages] == ["user"], "system prompt pruned"
    for example in load_examples(demo.warehouse, "order-extraction"):
        answer = json.loads(example.target["content"])
        assert example.label == json.dumps(answer, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert example.response_format is not None
    for example in load_examples(demo.warehouse, "tool-assistant", splits=("train",)):
        calls = example.target.get("tool_calls") or []
        expected = [
            {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
            for c in calls
        ]
        assert (json.loads(example.label) if example.label else []) == expected
        assert example.slice == (calls[0]["function"]["name"] if calls else "none") and example.tools
    for report in demo.reports.values():
        assert report.tokens_per_example["after"] < 0.2 * report.tokens_per_example["before"]
        assert report.template is not None


def test_quality_results_stored_per_batch(demo: Demo) -> None:
    rows = query(
        demo.warehouse,
        "SELECT suite, expectation, column_name, success, unexpected_count FROM quality_results "
        "WHERE run_id = ?",
        demo.reports["order-extraction"].run_id,
    )
    by_column = {(e, c): (s, n) for _, e, c, s, n in rows}
    planted = demo.manifest.workloads["order-extraction"]
    errors = len(planted.lines_with("error"))
    assert by_column[("expect_column_values_to_be_in_set", "status")] == (False, errors)
    assert by_column[("expect_column_values_to_be_in_set", "answer_schema_valid")][0] is False
    assert by_column[("expect_column_values_to_be_json_parseable", "answer")][0] is False
    assert {suite for suite, *_ in rows} == {"order-extraction.interactions"}


def test_same_inputs_same_hash_and_an_identical_rerun_reuses_the_snapshot(demo: Demo, tmp_path: Path) -> None:
    settings = workload(demo.config, "tool-assistant")
    first = demo.reports["tool-assistant"]
    again = curate_workload(demo.warehouse, settings, home=demo.root)
    assert again.reused_snapshot and again.snapshot_id == first.snapshot_id
    assert again.content_hash == first.content_hash and again.expectations["batches"] == 0
    other = Warehouse(tmp_path / "other.duckdb")
    ingest_paths(other, [demo.manifest.workloads["tool-assistant"].path], workload_id="tool-assistant")
    fresh = curate_workload(other, settings.model_copy(update={"curation": settings.curation.model_copy(
        update={"expectations": False})}), home=tmp_path)  # fmt: skip
    assert fresh.content_hash == first.content_hash and fresh.snapshot_id == "tool-assistant.v1"


def test_new_data_feeds_train_and_grows_eval_without_leaks(tmp_path: Path) -> None:
    config = load_config(demo_config_path())
    settings = workload(config, "support-routing", expectations=False)
    first_batch = generate_demo_traffic(tmp_path / "a", seed=1, size=250).workloads["support-routing"].path
    second_batch = generate_demo_traffic(tmp_path / "b", seed=2, size=120).workloads["support-routing"].path
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [first_batch], workload_id="support-routing")
    v1 = curate_workload(warehouse, settings, home=tmp_path)
    ingest_paths(warehouse, [second_batch], workload_id="support-routing")
    v2 = curate_workload(warehouse, settings, home=tmp_path)
    assert (v1.snapshot_id, v2.snapshot_id) == ("support-routing.v1", "support-routing.v2")
    eval_1, eval_2 = (
        load_examples(warehouse, "support-routing", s, ("eval",)) for s in (v1.snapshot_id, v2.snapshot_id)
    )
    carried = [e for e in eval_2 if e.example_id in {x.example_id for x in eval_1}]
    assert carried == eval_1 and v2.eval_dropped == 0, "every eval row is carried over unchanged"
    added = {e.example_id for e in eval_2} - {e.example_id for e in eval_1}
    assert added and v2.eval_added == len(added) and v2.eval_snapshot_id == v2.snapshot_id
    train_1, train_2 = (
        {e.example_id for e in load_examples(warehouse, "support-routing", s, ("train", "val"))}
        for s in (v1.snapshot_id, v2.snapshot_id)
    )
    assert train_2 - train_1, "the new batch feeds train"
    assert not added & train_1, "no row a v1 model trained on joins eval"
    v3 = curate_workload(warehouse, settings, home=tmp_path, refresh_eval=True)
    assert v3.eval_snapshot_id == v3.snapshot_id == "support-routing.v3"
    eval_3 = {e.example_id for e in load_examples(warehouse, "support-routing", v3.snapshot_id, ("eval",))}
    assert eval_3 != {e.example_id for e in eval_1}


def _cli_config(demo: Demo, path: Path) -> Path:
    workloads = [workload(demo.config, "support-routing").model_dump(mode="json", exclude_none=True)]
    path.write_text(yaml.safe_dump({"workloads": workloads}))
    return path


def test_cli_curate_and_quality_json_contract(demo: Demo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(demo.warehouse.path, home / "warehouse.duckdb")
    base = ["--config", str(_cli_config(demo, tmp_path / "flywheel.yaml")), "--home", str(home)]
    runner = CliRunner()

    def run(*args: str) -> tuple[int, dict]:
        result = runner.invoke(app, [*base, *args, "--json"])
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        return result.exit_code, json.loads(lines[0])

    code, curated = run("curate", "--workload", "support-routing", "--refresh-eval")
    assert code == 0
    assert {"snapshot_id", "in", "out", "rejected", "splits", "pii"} <= curated.keys()
    n = query(demo.warehouse, "SELECT count(*) FROM interactions WHERE workload_id = 'support-routing'")[0][0]
    assert set(curated["splits"]) == {"train", "val", "eval"} and curated["in"] == n
    code, summary = run("quality", "--workload", "support-routing")
    assert code == 0 and summary["run_id"] == curated["run_id"] and summary["expectations"]
    assert summary["funnel"]["rejected"] == curated["rejected"]
    code, listed = run("quality", "--workload", "support-routing", "--rejected", "error_response")
    assert code == 0 and listed["count"] == curated["rejected"]["error_response"] == len(listed["rows"])
    assert all(row["source_ref"].rsplit(":", 1)[1].isdigit() and row["detail"] for row in listed["rows"])
    code, error = run("curate", "--workload", "nope")
    assert code == 2 and "unknown workload 'nope'" in error["error"]
    code, error = run("quality", "--workload", "never-curated")
    assert code == 1 and "flywheel curate --workload never-curated" in error["error"]
