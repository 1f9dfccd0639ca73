from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flywheel.datasets import latest_snapshot_id, load_examples
from flywheel.datasets.export import export_snapshot
from flywheel.datasets.snapshots import SnapshotInfo, SnapshotRow, content_hash, write_snapshot
from flywheel.records import Example, utcnow
from flywheel.store.db import Warehouse


def rows() -> list[SnapshotRow]:
    out = []
    for i, split in enumerate(["train", "train", "val", "eval"]):
        example = Example(
            example_id=f"ex{i}",
            workload_id="w",
            messages=[{"role": "user", "content": f"where is ORD-{i}?"}],
            target={"role": "assistant", "content": None, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "get_order_status",
                                                             "arguments": f'{{"order_id": "ORD-{i}"}}'}}]}
            if i % 2 else {"role": "assistant", "content": "billing"},
            label=f"label{i}", slice="s", split=split, interaction_id=f"i{i}",
            tools=[{"type": "function", "function": {"name": "get_order_status"}}],
        )  # fmt: skip
        out.append(SnapshotRow(example, client_id="acme", dup_group=None))
    return out


def test_content_hash_is_order_independent_and_content_sensitive() -> None:
    original = rows()
    assert content_hash(original) == content_hash(list(reversed(original)))
    changed = rows()
    changed[0].example.split = "val"
    assert content_hash(changed) != content_hash(original)


def test_write_then_load_examples(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    with pytest.raises(LookupError, match="no snapshot for w: run `flywheel curate --workload w`"):
        load_examples(warehouse, "w")
    assert latest_snapshot_id(warehouse, "w") is None
    snapshot = rows()
    info = SnapshotInfo("w.v1", "w", content_hash(snapshot), "cfg", "w.v1", utcnow(), 2, 1, 1, None)
    warehouse.write(lambda con: write_snapshot(con, info, snapshot))
    assert latest_snapshot_id(warehouse, "w") == "w.v1"
    examples = load_examples(warehouse, "w")
    assert [e.split for e in examples] == ["train", "train", "val", "eval"]
    assert examples[1].target["tool_calls"][0]["function"]["name"] == "get_order_status"
    assert examples[0] == snapshot[0].example
    assert [e.example_id for e in load_examples(warehouse, "w", "w.v1", splits=("eval",))] == ["ex3"]
    with pytest.raises(LookupError):
        load_examples(warehouse, "w", "w.v9")


def test_export_parquet_and_hf(tmp_path: Path) -> None:
    from datasets import load_from_disk

    out = export_snapshot(rows(), tmp_path / "export", ["parquet", "hf"], snapshot_id="w.v1")
    assert pq.read_table(out / "parquet" / "train.parquet").num_rows == 2
    messages = load_from_disk(str(out / "hf" / "messages"))
    assert set(messages) == {"train", "val", "eval"}
    first = messages["train"][0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant"] and first[-1]["content"] == "billing"
    prompt_completion = load_from_disk(str(out / "hf" / "prompt_completion"))
    tool_target = prompt_completion["train"][1]["completion"][0]
    assert tool_target["tool_calls"][0]["function"]["name"] == "get_order_status"
    assert not (tmp_path / "export.partial").exists()
