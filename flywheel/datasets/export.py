"""Export a snapshot to Parquet and to Hugging Face `datasets` (messages and prompt/completion).

Layout under the export directory:
  parquet/<split>.parquet        every snapshot column; messages/target/tools as JSON text
  hf/messages/                   DatasetDict: {"messages": request messages + the target message}
  hf/prompt_completion/          DatasetDict: {"prompt": request messages, "completion": [target]}
Both HF datasets also carry example_id, label, gold and slice; `tools` is JSON text (tool schemas do
not fit one Arrow type). The export is written to a temporary directory and renamed into place, so
a crash never leaves half a snapshot behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.datasets.snapshots import EXAMPLE_SCHEMA, SPLITS, SnapshotRow
from flywheel.records import message_text

FORMATS = ("parquet", "hf")


def export_snapshot(
    rows: list[SnapshotRow], out_dir: Path, formats: Iterable[str] = FORMATS, snapshot_id: str = ""
) -> Path:
    """Write the requested formats to `out_dir` (replacing it) and return it."""
    formats = list(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)} (known: {', '.join(FORMATS)})")
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    by_split = {split: [r for r in rows if r.example.split == split] for split in SPLITS}
    if "parquet" in formats:
        _write_parquet(by_split, staging / "parquet", snapshot_id)
    if "hf" in formats:
        _write_hf(by_split, staging / "hf")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return out_dir


def _write_parquet(by_split: dict[str, list[SnapshotRow]], directory: Path, snapshot_id: str) -> None:
    directory.mkdir(parents=True)
    for split, rows in by_split.items():
        columns = list(zip(*[(snapshot_id, *row.values()) for row in rows], strict=True)) or [
            [] for _ in EXAMPLE_SCHEMA
        ]
        arrays = [pa.array(list(c), f.type) for c, f in zip(columns, EXAMPLE_SCHEMA, strict=True)]
        pq.write_table(pa.Table.from_arrays(arrays, schema=EXAMPLE_SCHEMA), directory / f"{split}.parquet")


def _write_hf(by_split: dict[str, list[SnapshotRow]], directory: Path) -> None:
    from datasets import Dataset, DatasetDict
    from datasets.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # stdout/stderr belong to the CLI's own progress and JSON
    try:
        _save_hf(by_split, directory, Dataset, DatasetDict)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _save_hf(by_split: dict[str, list[SnapshotRow]], directory: Path, Dataset: Any, DatasetDict: Any) -> None:
    conversational = {split: [_messages_record(r) for r in rows] for split, rows in by_split.items()}
    prompt_completion = {
        split: [_prompt_completion_record(r) for r in rows] for split, rows in by_split.items()
    }
    for name, records in (("messages", conversational), ("prompt_completion", prompt_completion)):
        dataset = DatasetDict({split: Dataset.from_list(items) for split, items in records.items() if items})
        dataset.save_to_disk(str(directory / name))


def chat_message(message: dict[str, Any]) -> dict[str, Any]:
    """The fixed shape HF chat templates expect: role, text content, tool calls when present."""
    out: dict[str, Any] = {"role": message.get("role", "user"), "content": message_text(message) or None}
    calls = message.get("tool_calls")
    out["tool_calls"] = (
        [
            {
                "type": "function",
                "function": {
                    "name": (c.get("function") or {}).get("name"),
                    "arguments": (c.get("function") or {}).get("arguments"),
                },
            }
            for c in calls
        ]
        if calls
        else None
    )
    return out


def _common(row: SnapshotRow) -> dict[str, Any]:
    example = row.example
    values = row.values()
    return {
        "example_id": example.example_id,
        "label": example.label,
        "gold": example.gold,
        "slice": example.slice,
        "tools": values[11],
        "weight": example.weight,  # below 1.0: curation kept it downweighted (negative feedback)
    }


def _messages_record(row: SnapshotRow) -> dict[str, Any]:
    messages = [chat_message(m) for m in row.example.messages] + [chat_message(row.example.target)]
    return {"messages": messages, **_common(row)}


def _prompt_completion_record(row: SnapshotRow) -> dict[str, Any]:
    return {
        "prompt": [chat_message(m) for m in row.example.messages],
        "completion": [chat_message(row.example.target)],
        **_common(row),
    }
