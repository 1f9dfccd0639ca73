from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors import SourceError, detect_format, resolve_paths
from tests.connectors.factories import chat_request, completion, write_jsonl

OPENAI = {"request": chat_request(), "response": completion(), "timestamp": 1}
NVIDIA = {
    "timestamp": 1,
    "workload_id": "w",
    "client_id": "c",
    "request": chat_request(),
    "response": completion(),
}
SPOOL = {"flywheel_spool": 1, "id": "x", "ts": 1.0, "request": chat_request(), "response": completion()}
BATCH_OUT = {
    "id": "b",
    "custom_id": "a",
    "response": {"status_code": 200, "body": completion()},
    "error": None,
}
BATCH_FAILED = {"id": "b", "custom_id": "a", "response": None, "error": {"code": "expired"}}
BATCH_IN = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": chat_request()}
LANGFUSE = {"id": "o", "traceId": "t", "type": "GENERATION", "input": "hi", "output": "yo"}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (OPENAI, "openai"),
        (NVIDIA, "nvidia"),
        (SPOOL, "spool"),
        (BATCH_OUT, "openai_batch"),
        (BATCH_FAILED, "openai_batch"),
        (LANGFUSE, "langfuse"),
        ({"type": "SPAN", "id": 1}, "langfuse"),
        ({"startTime": "2024-01-01"}, "langfuse"),
    ],
)
def test_jsonl_formats(tmp_path: Path, doc: dict, expected: str) -> None:
    assert detect_format(write_jsonl(tmp_path / "a.jsonl", [doc, doc])) == expected
    assert detect_format(write_jsonl(tmp_path / "a.jsonl.gz", [doc], gz=True)) == expected


def test_nvidia_needs_exactly_its_keys(tmp_path: Path) -> None:
    assert detect_format(write_jsonl(tmp_path / "a.jsonl", [{**NVIDIA, "latency_ms": 3}])) == "openai"


def test_broken_first_lines_do_not_hide_the_format(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [b"\xff\xfe garbage", b'{"request": {"mess', "", NVIDIA])
    assert detect_format(path) == "nvidia"


def test_truncated_gzip_is_sniffed_from_what_is_readable(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl.gz", [SPOOL] * 200, gz=True)
    path.write_bytes(path.read_bytes()[:-20])
    assert detect_format(path) == "spool"


def test_json_arrays_and_api_documents_are_langfuse(tmp_path: Path) -> None:
    path = tmp_path / "obs.json"
    path.write_bytes(b"  \n" + orjson.dumps([LANGFUSE]))
    assert detect_format(path) == "langfuse"
    pretty = tmp_path / "api.json"
    pretty.write_bytes(orjson.dumps({"data": [{**LANGFUSE, "startTime": "x"}]}, option=orjson.OPT_INDENT_2))
    assert detect_format(pretty) == "langfuse"


def test_tables(tmp_path: Path) -> None:
    for name in ("t.csv", "t.tsv", "t.CSV.gz"):
        (tmp_path / name).write_bytes(gzip.compress(b"a,b\n") if name.endswith(".gz") else b"a,b\n")
        assert detect_format(tmp_path / name) == "csv"
    plain = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"prompt": ["q"], "response": ["a"]}), plain)
    assert detect_format(plain) == "parquet"
    observations = tmp_path / "export"  # no suffix: the magic decides
    pq.write_table(
        pa.table({"id": ["o"], "type": ["GENERATION"], "input": ["hi"], "output": ["yo"]}), observations
    )
    assert detect_format(observations) == "langfuse"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty file"),
        (b"\n  \n", "empty file"),
        (bytes(range(256)) * 4, "binary data"),
        (b'{"foo": 1, "bar": 2}\n', "unknown schema, first record has keys: bar, foo"),
        (b"hello world\n", "no JSON object"),
        (b"PAR1 not really", "unreadable Parquet footer"),
    ],
)
def test_undetectable_files(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(SourceError, match="cannot detect the log format") as info:
        detect_format(path)
    assert why in str(info.value) and "--format" in str(info.value) and str(path) in str(info.value)


def test_batch_input_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="Batch API input file"):
        detect_format(write_jsonl(tmp_path / "in.jsonl", [BATCH_IN]))
    with pytest.raises(SourceError, match="no such file"):
        detect_format(tmp_path / "nope.jsonl")
    with pytest.raises(SourceError, match="is a directory"):
        detect_format(tmp_path)


def test_sniffing_reads_only_the_head(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as handle:
        handle.write(orjson.dumps(OPENAI) + b"\n")
        handle.write(b"x" * (8 * 1024 * 1024))  # an 8 MiB line: only the head is read
    assert detect_format(path) == "openai"


def test_resolve_paths(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "2024" / "05").mkdir(parents=True)
    (logs / ".cache").mkdir()
    for rel in (
        "b.jsonl",
        "a.csv",
        "2024/05/c.jsonl.gz",
        "2024/x.parquet",
        "notes.txt",
        ".cache/d.jsonl",
        ".e.jsonl",
    ):
        (logs / rel).write_bytes(b"")
    single = tmp_path / "one.jsonl"
    single.write_bytes(b"")
    got = resolve_paths([logs, str(single), str(logs / "*.jsonl"), str(tmp_path / "**" / "*.parquet")])
    assert got == [
        logs / "2024/05/c.jsonl.gz",
        logs / "2024/x.parquet",
        logs / "a.csv",
        logs / "b.jsonl",
        single,
    ]
    with pytest.raises(SourceError, match="matches no files"):
        resolve_paths([str(tmp_path / "*.nothing")])
    with pytest.raises(SourceError, match="no such file or directory"):
        resolve_paths([tmp_path / "missing.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no log files"):
        resolve_paths([tmp_path / "empty"])
