"""Small, fast curation runs on hand-made logs: duplicates, contrasts, empty outcomes, bad input."""

from pathlib import Path

import pytest

from flywheel.config import WorkloadConfig
from flywheel.curate import NothingKept, curate_workload
from flywheel.datasets import load_examples
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl

TEXTS = [
    "I was charged twice for my last order and need one payment back",
    "The app keeps crashing when I open the basket on my phone",
    "Where can I download the invoice for my March subscription",
    "My parcel shows delivered but nothing arrived at the door",
    "Please close my account and delete the saved card details",
]


def record(i: int, text: str, answer: str = "billing", **request: object) -> dict:
    base = chat_record(i, answer)
    base["request"] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **request}
    return base


def curate(tmp_path: Path, records: list[dict], **settings: object) -> tuple[Warehouse, object]:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [write_jsonl(tmp_path / "logs.jsonl", records)], workload_id="w")
    curation = {
        "expectations": False,
        "export": [],
        "max_client_share": None,
        "max_slice_share": None,
        **settings,
    }
    workload = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"], curation=curation)
    return warehouse, curate_workload(warehouse, workload, home=tmp_path)


def test_text_variants_ingest_keeps_are_exact_duplicates_here(tmp_path: Path) -> None:
    records = [record(i, text) for i, text in enumerate(TEXTS)]
    records.append(record(10, TEXTS[0].upper() + "!!", temperature=0.7))  # other params, same text
    records.append(record(11, TEXTS[1].replace("crashing", "crashng")))  # near duplicate
    warehouse, report = curate(tmp_path, records)
    assert report.rejected == {"exact_duplicate": 1, "near_duplicate": 1}
    assert report.n_out == len(TEXTS)
    details = warehouse.read(
        lambda con: con.execute("SELECT reason, detail FROM curation_verdicts WHERE NOT keep").fetchall()
    )
    assert all(detail.endswith(("logs.jsonl:1", "logs.jsonl:2")) for _, detail in details)


def test_near_identical_inputs_with_different_answers_are_kept_together(tmp_path: Path) -> None:
    records = [record(i, text) for i, text in enumerate(TEXTS)]
    records.append(record(10, TEXTS[0] + " now", answer="refund"))
    warehouse, report = curate(tmp_path, records, val_fraction=0.5)
    assert report.rejected == {} and report.dedup["kept_contrasts"] == 1
    examples = {e.interaction_id: e for e in load_examples(warehouse, "w")}
    groups = warehouse.read(
        lambda con: con.execute(
            "SELECT dup_group, split FROM snapshot_examples WHERE dup_group IS NOT NULL"
        ).fetchall()
    )
    assert len(groups) == 2 and len({g for g, _ in groups}) == 1 and len({s for _, s in groups}) == 1
    assert {e.label for e in examples.values()} == {"billing", "refund"}


def test_everything_rejected_is_an_error_that_names_the_top_reason(tmp_path: Path) -> None:
    records = [chat_record(i, response={"error": {"message": "rate limited", "code": 429}}) for i in range(4)]
    records += [record(9, "")]  # an empty request: a second, rarer reason
    with pytest.raises(
        NothingKept, match=r"kept 0 of 5 rows; top rejection reason: error_response \(4 rows\)"
    ):
        curate(tmp_path, records)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(LookupError, match="no snapshot for w"):  # no empty snapshot was written
        load_examples(warehouse, "w")
    verdicts = warehouse.read(
        lambda con: con.execute("SELECT reason, count(*) FROM curation_verdicts GROUP BY reason").fetchall()
    )
    assert dict(verdicts)["error_response"] == 4 and sum(n for _, n in verdicts) == 5  # still explained


def test_no_interactions_is_a_clear_error(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(FileNotFoundError, match="no warehouse yet"):
        curate_workload(warehouse, WorkloadConfig(id="w", task="chat"), home=tmp_path)
    ingest_paths(warehouse, [write_jsonl(tmp_path / "a.jsonl", [chat_record(1)])], workload_id="other")
    with pytest.raises(LookupError, match="no interactions for workload 'w'"):
        curate_workload(warehouse, WorkloadConfig(id="w", task="chat"), home=tmp_path)


def test_csv_gold_labels_and_missing_clients(tmp_path: Path) -> None:
    path = tmp_path / "logs.csv"
    rows = ["text,category,truth"] + [f'"{t} ({i})",billing,refund' for i, t in enumerate(TEXTS * 4)]
    path.write_text("\n".join(rows) + "\n")
    warehouse = Warehouse(tmp_path / "w.duckdb")
    mapping = {"prompt": "text", "response": "category", "label": "truth"}
    ingest_paths(warehouse, [path], workload_id="w", fmt="csv", mapping=mapping)
    curation = {"expectations": False, "export": [], "min_slice_count": 5}
    workload = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"], curation=curation)
    report = curate_workload(warehouse, workload, home=tmp_path)
    examples = load_examples(warehouse, "w")
    assert examples and all(e.label == "billing" and e.gold == "refund" for e in examples)
    assert set(report.clients["before"]["counts"]) == {"unknown"} and report.rejected == {}
    assert report.slices["rare"] == ["refund"], "a label never seen is rare (synthesize it)"


def test_duplicates_are_found_across_batches_and_the_older_one_is_kept(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    first = write_jsonl(tmp_path / "day1.jsonl", [record(i, text) for i, text in enumerate(TEXTS)])
    second = write_jsonl(tmp_path / "day2.jsonl", [record(20, TEXTS[3].replace("arrived", "arived") + " :(")])
    ingest_paths(warehouse, [first], workload_id="w")
    ingest_paths(warehouse, [second], workload_id="w")
    workload = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"],
                              curation={"expectations": False, "export": []})  # fmt: skip
    report = curate_workload(warehouse, workload, home=tmp_path)
    assert report.rejected == {"near_duplicate": 1}
    rejected = warehouse.read(
        lambda con: con.execute(
            "SELECT i.source_ref, v.detail FROM curation_verdicts v "
            "JOIN interactions i ON i.id = v.interaction_id WHERE v.reason = 'near_duplicate'"
        ).fetchall()
    )
    assert rejected[0][0].endswith("day2.jsonl:1") and rejected[0][1].endswith("day1.jsonl:4")
