"""The eval split grows with the data and stays fair: carried rows kept, new rows take their share,
nothing a model may have trained on joins it, and near twins of eval rows stay out of train."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from flywheel.config import WorkloadConfig
from flywheel.curate import CurationReport, curate_workload
from flywheel.datasets import load_examples
from flywheel.ingest import ingest_paths
from flywheel.records import Example
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl

LABELS = ["billing", "refund", "shipping"]
VOCAB = [f"{a}{b}" for a in ("par", "mon", "tel", "vor", "kin", "sul", "bra", "dex") for b in
         ("ta", "ro", "mi", "zu", "ke", "lo", "ni", "fa", "go", "pe")]  # fmt: skip


def text(i: int) -> str:
    rng = random.Random(i)
    return " ".join(rng.sample(VOCAB, 9))


def record(i: int, body: str | None = None) -> dict:
    base = chat_record(i, LABELS[i % 3])
    base["request"] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": body or text(i)}]}
    return base


def other(label: str | None) -> str:
    return LABELS[(LABELS.index(label or "billing") + 1) % 3]


def workload(**curation: object) -> WorkloadConfig:
    settings = {"expectations": False, "export": [], "max_client_share": None, "max_slice_share": None}
    return WorkloadConfig(id="w", task="classification", labels=LABELS, curation={**settings, **curation})


def add_batch(warehouse: Warehouse, tmp_path: Path, name: str, records: list[dict]) -> set[str]:
    report = ingest_paths(warehouse, [write_jsonl(tmp_path / f"{name}.jsonl", records)], workload_id="w")
    assert report.as_dict()["ingested"] == len(records)
    return set(
        i
        for (i,) in warehouse.read(
            lambda con: con.execute(
                "SELECT id FROM interactions WHERE source_ref LIKE ?", [f"%{name}.jsonl:%"]
            ).fetchall()
        )
    )


def split(warehouse: Warehouse, report: CurationReport, name: str) -> list[Example]:
    return load_examples(warehouse, "w", report.snapshot_id, (name,))


def test_eval_keeps_carried_rows_and_takes_its_share_of_new_ones(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    settings = workload(eval_fraction=0.1)
    add_batch(warehouse, tmp_path, "day1", [record(i) for i in range(300)])
    v1 = curate_workload(warehouse, settings, home=tmp_path)
    eval_1 = {e.interaction_id for e in split(warehouse, v1, "eval")}
    train_1 = {e.interaction_id for e in split(warehouse, v1, "train") + split(warehouse, v1, "val")}
    assert 27 <= len(eval_1) <= 33

    new_ids = add_batch(warehouse, tmp_path, "day2", [record(i) for i in range(300, 500)])
    v2 = curate_workload(warehouse, settings, home=tmp_path)
    eval_2 = split(warehouse, v2, "eval")
    ids_2 = {e.interaction_id for e in eval_2}
    assert eval_1 <= ids_2, "every carried eval row stays"
    added = ids_2 - eval_1
    assert added <= new_ids and not added & train_1, "only rows no model could have trained on"
    assert 17 <= len(added) <= 23 and (v2.eval_carried, v2.eval_added) == (len(eval_1), len(added))
    per_label = Counter(e.label for e in eval_2 if e.interaction_id in added)
    assert set(per_label) == set(LABELS) and max(per_label.values()) - min(per_label.values()) <= 2
    assert v2.eval_snapshot_id == v2.snapshot_id  # the eval split changed: this snapshot holds it
    # Champion and candidates are scored on the latest split (what evaluate_stage loads).
    latest = {e.interaction_id for e in load_examples(warehouse, "w", splits=("eval",))}
    assert latest == ids_2

    again = curate_workload(warehouse, settings, home=tmp_path)  # no new data: nothing moves
    assert again.reused_snapshot and again.snapshot_id == v2.snapshot_id and again.eval_added == 0


def test_eval_growth_is_bounded_and_never_takes_a_twin_of_training_data(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    add_batch(warehouse, tmp_path, "day1", [record(i) for i in range(200)])
    settings = workload(eval_fraction=0.1, max_eval_examples=30)
    v1 = curate_workload(warehouse, settings, home=tmp_path)
    eval_1 = {e.interaction_id: e for e in split(warehouse, v1, "eval")}
    train_1 = split(warehouse, v1, "train")
    # day 2: near twins of training rows and of eval rows with another label (contrasts, so curation
    # keeps them), and fresh rows
    twin_of_train = [record(1000 + k, train_1[k].messages[-1]["content"] + " pls") for k in range(30)]
    for k, twin in enumerate(twin_of_train):
        twin["response"]["choices"][0]["message"]["content"] = other(train_1[k].label)
    eval_rows = list(eval_1.values())[:3]
    twin_of_eval = [record(2000 + k, e.messages[-1]["content"] + " pls") for k, e in enumerate(eval_rows)]
    for twin, e in zip(twin_of_eval, eval_rows, strict=True):
        twin["response"]["choices"][0]["message"]["content"] = other(e.label)
    add_batch(
        warehouse, tmp_path, "day2", twin_of_train + twin_of_eval + [record(i) for i in range(200, 400)]
    )
    v2 = curate_workload(warehouse, settings, home=tmp_path)
    eval_2 = {e.interaction_id for e in split(warehouse, v2, "eval")}
    assert set(eval_1) <= eval_2 and len(eval_2) <= 30, "bounded by max_eval_examples, carried kept"
    assert len(eval_2) > len(eval_1)
    twin_ids = {
        i
        for (i,) in warehouse.read(
            lambda con: con.execute(
                "SELECT id FROM interactions WHERE source_ref LIKE '%day2.jsonl:%' "
                "AND CAST(source_ref.split(':')[-1] AS INT) <= 33"
            ).fetchall()
        )
    }
    assert len(twin_ids) == 33 and not twin_ids & eval_2, "no twin of training data becomes eval"
    assert v2.dedup["near_duplicate_of_eval"] == 3 and v2.dedup["kept_contrasts"] >= 33
    train_twins = twin_ids & {
        e.interaction_id for e in split(warehouse, v2, "train") + split(warehouse, v2, "val")
    }
    assert len(train_twins) == 30, "twins of training rows are training data, not eval"
    train_2 = {e.interaction_id for e in split(warehouse, v2, "train") + split(warehouse, v2, "val")}
    groups = dict(
        warehouse.read(
            lambda con: con.execute(
                "SELECT interaction_id, dup_group FROM snapshot_examples WHERE snapshot_id = ?",
                [v2.snapshot_id],
            ).fetchall()
        )
    )
    eval_groups = {groups[i] for i in eval_2 if groups.get(i)}
    assert not {groups[i] for i in train_2 if groups.get(i)} & eval_groups, "no eval twin in train"


def test_refresh_eval_carves_a_new_split(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    add_batch(warehouse, tmp_path, "day1", [record(i) for i in range(200)])
    v1 = curate_workload(warehouse, workload(), home=tmp_path)
    v2 = curate_workload(warehouse, workload(seed=99), home=tmp_path, refresh_eval=True)
    assert (v2.eval_carried, v2.eval_snapshot_id) == (0, v2.snapshot_id)
    assert {e.example_id for e in split(warehouse, v2, "eval")} != {
        e.example_id for e in split(warehouse, v1, "eval")
    }
