from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors import REGISTRY, ReadContext, SourceError
from flywheel.records import Interaction, Rejected
from tests.connectors.factories import read

CSV = (
    b"prompt,response,topic\n"
    b"What is 2+2?,4,math\n"
    b'"Write a haiku\nabout rain","Soft rain on the roof\nwhispers ""hello""",poetry\n'
    b"\n"
    b"Capital of France?,Paris,geo\n"
)


def test_csv_rows_with_quoted_newlines_keep_physical_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_bytes(CSV)
    items = read("csv", path)
    assert [i.source_ref for i in items] == [f"{path}:2", f"{path}:3", f"{path}:7"]
    haiku = items[1]
    assert isinstance(haiku, Interaction)
    assert haiku.request == {"messages": [{"role": "user", "content": "Write a haiku\nabout rain"}]}
    assert haiku.response == {
        "message": {"role": "assistant", "content": 'Soft rain on the roof\nwhispers "hello"'},
        "finish_reason": "stop",
    }
    assert (haiku.source, haiku.workload_id, haiku.metadata) == (
        "csv",
        "wl",
        {"columns": {"topic": "poetry"}},
    )


def test_label_mapping_system_and_envelope_columns(tmp_path: Path) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(
        "text,gold,sys,customer,when,llm\n"
        "My card was charged twice,billing,Classify the ticket.,c-1,2024-05-06T12:00:00Z,gpt-4o\n"
        "App crashes on login,bug,,c-2,1715000000,gpt-4o\n"
    )
    mapping = {
        "prompt": "text",
        "label": "gold",
        "system": "sys",
        "client_id": "customer",
        "timestamp": "when",
        "model": "llm",
        "system_prompt": "Default system.",
    }
    first, second = read("csv", path, **mapping)
    assert first.request["messages"] == [
        {"role": "system", "content": "Classify the ticket."},
        {"role": "user", "content": "My card was charged twice"},
    ]
    assert first.response["message"]["content"] == "billing"
    assert first.metadata == {"label": "billing"}
    assert (first.client_id, first.model, first.ts) == ("c-1", "gpt-4o", datetime(2024, 5, 6, 12, 0))
    assert second.request["messages"][0] == {"role": "system", "content": "Default system."}
    assert second.ts == datetime(2024, 5, 6, 12, 53, 20)


def test_label_is_metadata_when_a_response_column_exists(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,response,label\nq,model answer,gold answer\n")
    (item,) = read("csv", path)
    assert item.response["message"]["content"] == "model answer"
    assert item.metadata == {"label": "gold answer"}


def test_bad_rows_are_quarantined_with_reasons(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"prompt,response\nok,fine\nbad \xff\xfe bytes,x\nonly one field\na,b,c\nlast,one\n")
    items = read("csv", path)
    assert [(getattr(i, "reason", "ok"), i.source_ref) for i in items] == [
        ("ok", f"{path}:2"),
        ("invalid_utf8", f"{path}:3"),
        ("wrong_field_count", f"{path}:4"),
        ("wrong_field_count", f"{path}:5"),
        ("ok", f"{path}:6"),
    ]
    assert items[1].raw.startswith("bad ")
    assert items[3].raw == "a,b,c" and "expected 2 fields, got 3" in items[3].detail


def test_missing_mapped_column_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("question,answer\nq,a\n")
    with pytest.raises(SourceError, match=r"prompt='input'.*columns: question, answer"):
        read("csv", path, prompt="input", response="answer")
    with pytest.raises(SourceError, match="no prompt column"):
        read("csv", path)
    assert len(read("csv", path, prompt="question", response="answer")) == 1


def test_gzip_csv_tsv_bom_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbfprompt,response\nq,a\n"))
    assert read("csv", path)[0].request["messages"][0]["content"] == "q"
    tsv = tmp_path / "t.tsv"
    tsv.write_text("prompt\tresponse\nq, with comma\ta\n")
    assert read("csv", tsv)[0].request["messages"][0]["content"] == "q, with comma"
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    assert read("csv", empty) == []


def test_missing_workload_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,response,wl\nq,a,\nq,a,sentiment\n")
    first, second = REGISTRY["csv"].read(path, ReadContext(workload_id=None, mapping={"workload_id": "wl"}))
    assert isinstance(first, Rejected) and first.reason == "missing_workload_id"
    assert second.workload_id == "sentiment"


def test_parquet_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table(
        {
            "prompt": ["q1", None, "q3"],
            "label": [1, 0, None],
            "score": [0.5, 0.1, 0.9],
            "at": pa.array([datetime(2024, 1, 1), None, datetime(2024, 1, 2)], pa.timestamp("ms")),
        }
    )
    pq.write_table(table, path, row_group_size=2)
    items = read("parquet", path, timestamp="at")
    assert [(getattr(i, "reason", "ok"), i.source_ref) for i in items] == [
        ("ok", f"{path}:row 1"),
        ("missing_field", f"{path}:row 2"),
        ("missing_field", f"{path}:row 3"),
    ]
    first = items[0]
    assert first.response["message"]["content"] == "1"
    assert first.metadata == {"label": 1, "columns": {"score": 0.5}}
    assert (first.ts, first.source) == (datetime(2024, 1, 1), "parquet")
    with pytest.raises(SourceError, match=r"response='answer'.*prompt, label, score, at"):
        read("parquet", path, response="answer")
