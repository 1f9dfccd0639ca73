"""Feedback from a log field (curation.feedback): read, judged, excluded or downweighted, counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from flywheel.config import WorkloadConfig
from flywheel.config.curation import CurationConfig, FeedbackConfig
from flywheel.curate import CurationReport, curate_workload
from flywheel.datasets import load_examples
from flywheel.ingest import ingest_paths
from flywheel.quality.feedback import field_value, read_outcome
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl

REWARDS = [0.9, 0.2, None, "0.1", 0.75, 0.0, "n/a", 1.0] * 3  # 9 below 0.5 ("0.1" is numeric text)


def rule(**settings: Any) -> FeedbackConfig:
    return FeedbackConfig(**{"field": "metadata.reward", **settings})


@pytest.mark.parametrize(
    ("parts", "settings", "negative", "detail"),
    [
        ({"metadata": {"reward": 0.2}}, {"negative_below": 0.5}, True, "metadata.reward=0.2 < 0.5"),
        ({"metadata": {"reward": "0.2"}}, {"negative_below": 0.5}, True, "metadata.reward='0.2' < 0.5"),
        ({"metadata": {"reward": 0.5}}, {"negative_below": 0.5}, False, ""),
        ({"metadata": {"reward": "great"}}, {"negative_below": 0.5}, False, ""),
        ({"metadata": {"reward": True}}, {"negative_below": 0.5}, False, ""),
        (
            {"metadata": {"reward": False}},
            {"negative_values": [False]},
            True,
            "metadata.reward=False is a negative value",
        ),
        ({"metadata": {"reward": 0}}, {"negative_values": [False]}, False, ""),
        ({"metadata": {"reward": " Down "}}, {"negative_values": ["down"]}, True, "is a negative value"),
        ({"metadata": {"reward": "👎"}}, {}, True, "reads as negative feedback"),
        ({"metadata": {"reward": {"rating": "up"}}}, {}, False, ""),
    ],
)
def test_outcomes(parts: dict, settings: dict, negative: bool, detail: str) -> None:
    outcome = read_outcome(parts, rule(**settings))
    assert outcome is not None and outcome.negative is negative and detail in outcome.detail


def test_paths_reach_into_objects_and_lists_and_missing_is_no_feedback() -> None:
    parts = {"feedback": {"scores": [{"v": 3}]}, "metadata": {}, "request": {"metadata": {"thumbs": "up"}}}
    assert (
        field_value(parts, "feedback.scores.0.v") == 3
        and field_value(parts, "request.metadata.thumbs") == "up"
    )
    assert (
        field_value(parts, "feedback.scores.1.v") is None and field_value(parts, "metadata.reward.x") is None
    )
    assert read_outcome(parts, rule(negative_below=1)) is None


def test_config_names_what_is_wrong() -> None:
    with pytest.raises(
        ValidationError, match="must be a dotted path starting with one of feedback, metadata"
    ):
        FeedbackConfig(field="reward")
    with pytest.raises(ValidationError, match="action"):
        FeedbackConfig(field="metadata.reward", action="drop")
    with pytest.raises(ValidationError, match="weight"):
        CurationConfig(feedback={"field": "feedback", "action": "downweight", "weight": 1.5})


def curate(tmp_path: Path, feedback: dict[str, Any] | None) -> tuple[Warehouse, CurationReport]:
    records = []
    for i, reward in enumerate(REWARDS):
        record = chat_record(i, "billing" if i % 2 else "refund")
        record["request"]["messages"][0]["content"] = f"customer message {i}: " + "lorem ipsum " * (i % 5)
        record["metadata"] = {} if reward is None else {"reward": reward}
        records.append(record)
    records[5]["feedback"] = {"thumbs": "down"}  # the logged feedback: the default rule's, not the field's
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [write_jsonl(tmp_path / "logs.jsonl", records)], workload_id="w")
    curation = {"expectations": False, "export": [], "dedup": False, "max_client_share": None,
                "max_slice_share": None, "eval_fraction": 0.3, "feedback": feedback}  # fmt: skip
    workload = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"], curation=curation)
    return warehouse, curate_workload(warehouse, workload, home=tmp_path)


def stored_funnel(warehouse: Warehouse, report: CurationReport) -> dict[str, Any]:
    sql = "SELECT funnel FROM curation_runs WHERE run_id = ?"
    return orjson.loads(warehouse.read(lambda con: con.execute(sql, [report.run_id]).fetchone()[0]))


def test_negative_outcomes_are_excluded_with_a_reason_in_the_funnel(tmp_path: Path) -> None:
    warehouse, report = curate(tmp_path, {"field": "metadata.reward", "negative_below": 0.5})
    assert report.rejected == {"negative_feedback": 9} and report.n_out == len(REWARDS) - 9
    assert report.feedback == {
        "field": "metadata.reward",
        "action": "exclude",
        "with_value": 21,
        "negative": 9,
    }
    assert stored_funnel(warehouse, report)["rejected"] == {"negative_feedback": 9}
    details = warehouse.read(
        lambda con: con.execute("SELECT DISTINCT detail FROM curation_verdicts WHERE NOT keep").fetchall()
    )
    assert {d for (d,) in details} == {"metadata.reward=0.2 < 0.5", "metadata.reward='0.1' < 0.5",
                                        "metadata.reward=0.0 < 0.5"}  # fmt: skip


def test_negative_outcomes_can_be_kept_downweighted_and_never_in_eval(tmp_path: Path) -> None:
    settings = {"field": "metadata.reward", "negative_below": 0.5, "action": "downweight", "weight": 0.2}
    warehouse, report = curate(tmp_path, settings)
    assert report.rejected == {} and report.n_out == len(REWARDS)
    assert report.downweighted == {"negative_feedback": 9}
    assert stored_funnel(warehouse, report)["downweighted"] == {"negative_feedback": 9}
    examples = load_examples(warehouse, "w")
    assert {e.weight for e in examples if e.split == "eval"} == {1.0} and report.splits["eval"] > 0
    assert [e.weight for e in examples].count(0.2) == 9


def test_without_a_field_the_logged_feedback_decides_as_before(tmp_path: Path) -> None:
    _, report = curate(tmp_path, None)
    assert report.rejected == {"negative_feedback": 1} and report.downweighted == {} and report.feedback == {}
