from __future__ import annotations

from datetime import datetime
from pathlib import Path

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


def spool_line(**overrides: object) -> dict:
    line = {
        "flywheel_spool": 1,
        "id": "req-1",
        "ts": 1_715_000_000.5,
        "workload_id": "weather",
        "client_id": "app-1",
        "request": chat_request(tools=True),
        "response": completion(content=None, tool_calls=[tool_call()], model="gpt-4o-mini"),
        "served_by": "student",
        "model": "student-weather-v3",
        "fallback_reason": None,
        "latency_ms": 41.5,
        "prompt_tokens": 33,
        "completion_tokens": 12,
        "cost_usd": 0.000001,
        "teacher_response": None,
    }
    line.update(overrides)
    return line


def test_student_served_call_with_tool_calls(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "spool-0001.jsonl", [spool_line()])
    (item,) = read("spool", path, workload_id=None)
    assert isinstance(item, Interaction)
    assert (item.source, item.source_ref, item.workload_id, item.client_id) == (
        "spool",
        f"{path}:1",
        "weather",
        "app-1",
    )
    assert item.ts == datetime(2024, 5, 6, 12, 53, 20, 500000)
    assert (item.model, item.prompt_tokens, item.completion_tokens) == ("student-weather-v3", 33, 12)
    assert (item.latency_ms, item.cost_usd) == (41.5, 0.000001)
    assert item.request["tools"][0]["function"]["name"] == "get_weather"
    assert item.response["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert item.metadata == {
        "spool_id": "req-1", "served_by": "student", "fallback_reason": None, "provenance": "student"
    }  # fmt: skip


def test_teacher_fallback_and_shadow_answer(tmp_path: Path) -> None:
    lines = [
        spool_line(
            served_by="teacher", fallback_reason="low_confidence", model="gpt-4o", response=completion("A")
        ),
        spool_line(id="req-2", response=completion("B"), teacher_response=completion("A", model="gpt-4o")),
    ]
    fallback, shadowed = read("spool", write_jsonl(tmp_path / "s.jsonl", lines))
    assert (
        fallback.metadata["served_by"] == "teacher"
        and fallback.metadata["fallback_reason"] == "low_confidence"
        and fallback.metadata["provenance"] == "fallback"  # a teacher answer that is a new label
    )
    assert shadowed.metadata["teacher_response"] == {
        "message": {"role": "assistant", "content": "A"},
        "finish_reason": "stop",
    }
    assert shadowed.metadata["teacher_model"] == "gpt-4o"


def test_streamed_and_error_responses(tmp_path: Path) -> None:
    lines = [spool_line(response=stream_chunks("Sunny.")), spool_line(response=error_body("student crashed"))]
    streamed, failed = read("spool", write_jsonl(tmp_path / "s.jsonl", lines))
    assert streamed.response["message"]["content"] == "Sunny."
    assert failed.status == "error" and failed.response["error"]["message"] == "student crashed"


def test_partial_last_line_from_a_killed_server(tmp_path: Path) -> None:
    full = write_jsonl(tmp_path / "s.jsonl", [spool_line(), spool_line(id="req-2")], trailing_newline=False)
    full.write_bytes(full.read_bytes()[:-30])
    good, cut = read("spool", full)
    assert isinstance(good, Interaction) and isinstance(cut, Rejected)
    assert (cut.reason, cut.source_ref) == ("truncated_json", f"{full}:2")


def test_schema_violations(tmp_path: Path) -> None:
    no_id = spool_line()
    del no_id["id"]
    lines = [
        spool_line(flywheel_spool=2),
        no_id,
        spool_line(served_by="cache"),
        spool_line(prompt_tokens="many"),
    ]
    path = write_jsonl(tmp_path / "s.jsonl", lines)
    items = read("spool", path)
    assert [(i.reason, i.source_ref) for i in items] == [
        ("wrong_schema", f"{path}:1"),
        ("wrong_schema", f"{path}:2"),
        ("wrong_schema", f"{path}:3"),
        ("bad_field", f"{path}:4"),
    ]
    assert "'id'" in items[1].detail


def test_rotated_gzip_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "spool-0000.jsonl.gz", [spool_line(), spool_line(id="req-2")], gz=True)
    assert [i.metadata["spool_id"] for i in read("spool", path)] == ["req-1", "req-2"]
