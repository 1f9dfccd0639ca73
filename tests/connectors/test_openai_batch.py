from __future__ import annotations

from pathlib import Path

import pytest

from connectors import SourceError
from flywheel.records import Interaction, Rejected
from tests.connectors.factories import chat_request, completion, error_body, read, tool_call, write_jsonl


def input_line(custom_id: str, **body_extra: object) -> dict:
    body = {**chat_request(prompt=f"question {custom_id}", tools=True), **body_extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def output_line(
    custom_id: str, body: dict | None = None, status: int = 200, error: dict | None = None
) -> dict:
    response = (
        None
        if body is None and error
        else {"status_code": status, "request_id": f"req_{custom_id}", "body": body}
    )
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response, "error": error}


def make_batch(
    tmp_path: Path,
    outputs: list,
    ids: tuple[str, ...] = ("a", "b", "c"),
    gz: bool = False,
    input_name: str = "batch_1_input.jsonl",
    output_name: str = "batch_1_output.jsonl",
) -> Path:
    suffix = ".gz" if gz else ""
    write_jsonl(tmp_path / (input_name + suffix), [input_line(i) for i in ids], gz=gz)
    return write_jsonl(tmp_path / (output_name + suffix), outputs, gz=gz)


def test_joins_requests_by_custom_id_in_any_order(tmp_path: Path) -> None:
    calls = completion(content=None, tool_calls=[tool_call()])
    path = make_batch(tmp_path, [output_line("c", completion("third")), output_line("a", calls)])
    third, first = read("openai_batch", path)
    assert isinstance(third, Interaction) and isinstance(first, Interaction)
    assert third.request["messages"][-1]["content"] == "question c"
    assert third.response["message"]["content"] == "third"
    assert first.request["tools"][0]["function"]["name"] == "get_weather"
    assert first.response["message"]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'
    assert (first.source, first.source_ref, first.workload_id) == ("openai_batch", f"{path}:2", "wl")
    assert first.metadata == {
        "batch_custom_id": "a",
        "batch_output_id": "batch_req_a",
        "batch_request_id": "req_a",
        "http_status": 200,
    }
    assert first.ts is not None and first.prompt_tokens == 20


def test_http_errors_and_batch_errors_are_error_interactions(tmp_path: Path) -> None:
    outputs = [
        output_line("a", error_body("Invalid model"), status=400),
        output_line("b", None, error={"code": "batch_expired", "message": "expired"}),
        output_line("c", None, status=500),
    ]
    items = read("openai_batch", make_batch(tmp_path, outputs))
    assert [i.status for i in items] == ["error", "error", "error"]
    assert items[0].response == {
        "error": {"message": "Invalid model", "type": "requests", "code": "rate_limit_exceeded"}
    }
    assert items[1].response == {"error": {"message": "expired", "code": "batch_expired"}}
    assert items[2].response == {"error": {"message": "HTTP 500", "code": 500}}


def test_unknown_custom_id_and_malformed_lines(tmp_path: Path) -> None:
    outputs = [
        output_line("zzz", completion()),
        b'{"id": "batch_req_x", "custom_id": "a", "resp',
        {"id": "x"},
    ]
    path = make_batch(tmp_path, outputs)
    missing, truncated, no_id = read("openai_batch", path)
    assert (missing.reason, missing.source_ref) == ("batch_request_missing", f"{path}:1")
    assert "zzz" in missing.detail
    assert (truncated.reason, truncated.source_ref) == ("truncated_json", f"{path}:2")
    assert (no_id.reason, no_id.source_ref) == ("wrong_schema", f"{path}:3")


def test_workload_from_request_metadata(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "requests_input.jsonl", [input_line("a", metadata={"workload_id": "triage"})])
    path = write_jsonl(tmp_path / "results.jsonl", [output_line("a", completion())])
    (item,) = read("openai_batch", path, workload_id="default")
    assert item.workload_id == "triage"


def test_explicit_input_mapping_relative_to_the_output(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "reqs.jsonl", [input_line("a")])
    write_jsonl(tmp_path / "other_input.jsonl", [input_line("a", temperature=0.1)])
    path = write_jsonl(tmp_path / "out.jsonl", [output_line("a", completion())])
    (item,) = read("openai_batch", path, batch_input="in/reqs.jsonl")
    assert "temperature" not in item.request
    with pytest.raises(SourceError, match="does not exist"):
        read("openai_batch", path, batch_input="nope.jsonl")


def test_gzip_output_and_gzip_input(tmp_path: Path) -> None:
    path = make_batch(
        tmp_path, [output_line("b", completion("two")), output_line("a", completion("one"))], gz=True
    )
    items = read("openai_batch", path)
    assert [i.response["message"]["content"] for i in items] == ["two", "one"]
    assert [i.request["messages"][-1]["content"] for i in items] == ["question b", "question a"]


def test_input_discovery_errors(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "out.jsonl", [output_line("a", completion())])
    with pytest.raises(SourceError, match="no Batch API input file"):
        read("openai_batch", path)
    write_jsonl(tmp_path / "x_input.jsonl", [input_line("a")])
    write_jsonl(tmp_path / "y_input.jsonl", [input_line("a")])
    with pytest.raises(SourceError, match="several Batch API input files"):
        read("openai_batch", path)
    with pytest.raises(SourceError, match="input file"):
        read("openai_batch", tmp_path / "x_input.jsonl")


def test_empty_output(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"\n\n")
    with pytest.raises(SourceError, match="no Batch API input file"):
        read("openai_batch", path)  # fails before the first item, even for an empty output
    write_jsonl(tmp_path / "in.jsonl", [input_line("a")])
    assert read("openai_batch", path) == []


def test_damaged_input_lines_are_not_indexed(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b_input.jsonl", [input_line("a"), b'{"custom_id": "b", "bo', input_line("c")])
    path = write_jsonl(tmp_path / "b_output.jsonl", [output_line(i, completion()) for i in "abc"])
    assert [type(i).__name__ for i in read("openai_batch", path)] == [
        "Interaction",
        "Rejected",
        "Interaction",
    ]
    assert isinstance(read("openai_batch", path)[1], Rejected)
