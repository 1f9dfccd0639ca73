"""Requests constrained to the workload's format, and the checks on what comes back."""

from __future__ import annotations

import json

import pytest

from flywheel.config import LabelParser, TeacherConfig, WorkloadConfig
from flywheel.records import Example
from flywheel.teacher.structured import InvalidAnswer, build_request, parse_answer, retry_request
from tests.teacher.conftest import LABELS, support_workload

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": ["string", "null"]}, "qty": {"type": "integer", "minimum": 1}},
    "required": ["order_id", "qty"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order_status",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]
EXTRACTION = WorkloadConfig(id="orders", task="extraction", json_schema=SCHEMA)
TOOL_CALL = WorkloadConfig(id="assistant", task="tool_call", tools=TOOLS)


def example(workload_id: str = "support") -> Example:
    return Example(
        "e1", workload_id, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], {}
    )


def assistant(content: str | None = None, **extra: object) -> dict:
    return {"role": "assistant", "content": content, **extra}


def test_classification_request_constrains_to_the_label_set() -> None:
    teacher = TeacherConfig(max_tokens=5, logprobs_top_k=2)
    request = build_request(example(), support_workload(), teacher, json_schema=True)
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == LABELS
    assert request["messages"][0]["content"].startswith("Be brief.\n\nAnswer with exactly one label")
    assert (request["temperature"], request["max_tokens"], request["logprobs"], request["top_logprobs"]) == (
        0.0,
        5,
        True,
        2,
    )
    plain = build_request(example(), support_workload(), TeacherConfig(k_votes=3), json_schema=False)
    assert "response_format" not in plain and plain["temperature"] == 0.7


@pytest.mark.parametrize(
    ("content", "label"),
    [
        ('{"label": "refund"}', "refund"),
        ("Billing", "billing"),
        ("  shipping.\n", "shipping"),
        ('```json\n{"label": "billing"}\n```', "billing"),
    ],
)
def test_classification_answers_parse_to_the_canonical_label(content: str, label: str) -> None:
    parsed = parse_answer(assistant(content), support_workload())
    assert parsed.label == label and parsed.target == {"role": "assistant", "content": label}


def test_label_parser_regex_and_bad_labels() -> None:
    workload = support_workload(label_parser=LabelParser(regex=r"queue:\s*(\w+)"))
    assert parse_answer(assistant("Routing it. queue: refund"), workload).label == "refund"
    with pytest.raises(InvalidAnswer) as caught:
        parse_answer(assistant("the moon"), workload)
    assert caught.value.reason == "unparseable_label"  # the regex finds no label at all
    with pytest.raises(InvalidAnswer) as caught:
        parse_answer(assistant("queue: moon"), workload)
    assert caught.value.reason == "label_not_in_set"
    with pytest.raises(InvalidAnswer, match="truncated"):
        parse_answer(assistant("bil"), workload, finish_reason="length")
    with pytest.raises(InvalidAnswer, match="refusal"):
        parse_answer(assistant(None, refusal="I can't help with that"), workload)


def test_extraction_is_schema_checked_and_canonical() -> None:
    request = build_request(example("orders"), EXTRACTION, TeacherConfig(), json_schema=True)
    assert request["response_format"]["json_schema"] == {"name": "output", "strict": True, "schema": SCHEMA}
    parsed = parse_answer(assistant('{"qty": 2, "order_id": "ORD-1"}'), EXTRACTION)
    assert parsed.label == '{"order_id":"ORD-1","qty":2}'
    assert json.loads(parsed.target["content"]) == {"qty": 2, "order_id": "ORD-1"}
    with pytest.raises(InvalidAnswer) as caught:
        parse_answer(assistant('{"order_id": null, "qty": 0}'), EXTRACTION)
    assert caught.value.reason == "schema_violation" and "qty" in caught.value.detail
    with pytest.raises(InvalidAnswer, match="invalid_json"):
        parse_answer(assistant('{"order_id": "ORD-1", "qty": 2'), EXTRACTION)
    fallback = build_request(example("orders"), EXTRACTION, TeacherConfig(), json_schema=False)
    assert "response_format" not in fallback and '"qty"' in fallback["messages"][0]["content"]


def test_tool_calls_are_checked_against_the_tools() -> None:
    request = build_request(example("assistant"), TOOL_CALL, TeacherConfig(), json_schema=True)
    assert request["tools"] == TOOLS and request["tool_choice"] == "auto"
    call = {
        "id": "call_x",
        "type": "function",
        "function": {"name": "get_order_status", "arguments": '{"order_id": "ORD-9"}'},
    }
    parsed = parse_answer(assistant(None, tool_calls=[call]), TOOL_CALL)
    assert parsed.label == '{"arguments":{"order_id":"ORD-9"},"name":"get_order_status"}'
    assert parsed.target["tool_calls"][0]["function"] == {
        "name": "get_order_status",
        "arguments": '{"order_id": "ORD-9"}',
    }
    assert parse_answer(assistant("Glad I could help."), TOOL_CALL).label == "Glad I could help."
    for function, reason in [
        ({"name": "track_order", "arguments": "{}"}, "unknown_tool"),
        ({"name": "get_order_status", "arguments": "{order"}, "unparseable_arguments"),
        ({"name": "get_order_status", "arguments": "{}"}, "invalid_arguments"),
    ]:
        with pytest.raises(InvalidAnswer) as caught:
            parse_answer(assistant(None, tool_calls=[{"id": "c", "function": function}]), TOOL_CALL)
        assert caught.value.reason == reason


def test_retry_request_shows_the_error_after_the_answer() -> None:
    request = {"messages": [{"role": "user", "content": "hi"}]}
    error = InvalidAnswer("label_not_in_set", "'moon' is not one of: billing")
    retry = retry_request(request, assistant("moon"), error)
    assert retry["messages"][1] == assistant("moon")
    assert retry["messages"][2]["role"] == "user" and "label_not_in_set" in retry["messages"][2]["content"]
    call = {"id": "call_1", "function": {"name": "x", "arguments": "{}"}}
    tool_retry = retry_request(request, assistant(None, tool_calls=[call]), error)
    assert (
        tool_retry["messages"][2]["role"] == "tool" and tool_retry["messages"][2]["tool_call_id"] == "call_1"
    )
