from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from flywheel.records import Interaction, Rejected
from tests.connectors.factories import (
    chat_request,
    completion,
    error_body,
    read,
    stream_chunks,
    tool_call,
    write_jsonl,
)


def nvidia_doc(**overrides: object) -> dict:
    doc = {
        "timestamp": 1_715_000_000,
        "workload_id": "weather",
        "client_id": "app-1",
        "request": chat_request(tools=True),
        "response": completion(content=None, tool_calls=[tool_call()]),
    }
    doc.update(overrides)
    return doc


def test_tool_call_record_with_string_arguments(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [nvidia_doc()])
    (item,) = read("nvidia", path, workload_id=None)
    assert isinstance(item, Interaction)
    assert (item.workload_id, item.client_id, item.source) == ("weather", "app-1", "nvidia")
    assert item.source_ref == f"{path}:1"
    assert item.ts == datetime(2024, 5, 6, 12, 53, 20)
    assert item.request["tools"][0]["function"]["name"] == "get_weather"
    call = item.response["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert item.response["finish_reason"] == "tool_calls"
    assert (item.prompt_tokens, item.completion_tokens, item.status) == (20, 5, "ok")


def test_tool_call_arguments_given_as_object_become_a_json_string(tmp_path: Path) -> None:
    doc = nvidia_doc(response=completion(content=None, tool_calls=[tool_call(arguments={"city": "Paris"})]))
    (item,) = read("nvidia", write_jsonl(tmp_path / "logs.jsonl", [doc]))
    arguments = item.response["message"]["tool_calls"][0]["function"]["arguments"]
    assert isinstance(arguments, str)
    assert orjson.loads(arguments) == {"city": "Paris"}


def test_record_workload_wins_over_the_default(tmp_path: Path) -> None:
    (item,) = read("nvidia", write_jsonl(tmp_path / "a.jsonl", [nvidia_doc()]), workload_id="default")
    assert item.workload_id == "weather"


def test_streamed_chunks_and_error_responses(tmp_path: Path) -> None:
    docs = [nvidia_doc(response=stream_chunks("Sunny, 21C.")), nvidia_doc(response=error_body())]
    streamed, failed = read("nvidia", write_jsonl(tmp_path / "a.jsonl", docs))
    assert streamed.response == {
        "message": {"role": "assistant", "content": "Sunny, 21C."},
        "finish_reason": "stop",
    }
    assert failed.status == "error"
    assert failed.response == {
        "error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
    }


def test_missing_required_key_is_wrong_schema_naming_the_key(tmp_path: Path) -> None:
    doc = nvidia_doc()
    del doc["client_id"]
    path = write_jsonl(tmp_path / "a.jsonl", [nvidia_doc(), doc])
    good, bad = read("nvidia", path)
    assert isinstance(good, Interaction)
    assert isinstance(bad, Rejected)
    assert (bad.reason, bad.source_ref, bad.source) == ("wrong_schema", f"{path}:2", "nvidia")
    assert "client_id" in bad.detail
    assert '"workload_id":"weather"' in bad.raw


def test_malformed_lines_keep_their_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl", [nvidia_doc(), "", b'{"timestamp": 17150', b"not json", nvidia_doc()]
    )
    items = read("nvidia", path)
    assert [type(i).__name__ for i in items] == ["Interaction", "Rejected", "Rejected", "Interaction"]
    assert (items[1].reason, items[1].source_ref) == ("truncated_json", f"{path}:3")
    assert (items[2].reason, items[2].source_ref) == ("invalid_json", f"{path}:4")
    assert items[3].source_ref == f"{path}:5"


def test_bad_timestamp_and_extra_keys(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [nvidia_doc(timestamp={"s": 1}), nvidia_doc(trace="t-9")])
    bad, good = read("nvidia", path)
    assert bad.reason == "bad_timestamp"
    assert good.metadata == {"extra": {"trace": "t-9"}}


def test_gzip_input(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl.gz", [nvidia_doc(), nvidia_doc(client_id="app-2")], gz=True)
    items = read("nvidia", path)
    assert [i.client_id for i in items] == ["app-1", "app-2"]
    assert items[1].source_ref == f"{path}:2"


def test_truncated_gzip_ends_with_one_rejection(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl.gz", [nvidia_doc()] * 50, gz=True)
    path.write_bytes(path.read_bytes()[:-40])
    items = read("nvidia", path)
    assert isinstance(items[-1], Rejected)
    assert items[-1].reason in ("unreadable_file", "truncated_json")
