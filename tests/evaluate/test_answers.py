from __future__ import annotations

import json

import pytest

from flywheel.config import LabelParser, WorkloadConfig
from flywheel.evaluate.answers import (
    answer_from_label,
    answer_from_message,
    calls_from_label,
    parse_label,
    reference_answer,
)
from flywheel.records import Example

SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": ["string", "null"]}, "qty": {"type": "integer", "minimum": 1}},
    "required": ["order_id", "qty"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "get_order_status", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object"}}},
]


def msg(content: str | None = None, tool_calls: list | None = None) -> dict:
    return {"role": "assistant", "content": content, **({"tool_calls": tool_calls} if tool_calls else {})}


def call(name: str, arguments: object) -> dict:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


def example(**kw: object) -> Example:
    return Example(example_id="e", workload_id="w", messages=[], target=msg("x"), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "parser", "expected"),
    [
        ("billing", None, "billing"),
        ("  billing \n", LabelParser(regex=r"^\s*([a-z_]+)\s*$"), "billing"),
        ("Queue: refund.", LabelParser(regex=r"Queue: (\w+)"), "refund"),
        ("no match here!", LabelParser(regex=r"^([a-z]+)$"), None),
        ('{"intent": "Refund"}', LabelParser(json_path="$.intent", lowercase=True), "refund"),
        ('```json\n{"a": {"b": "x"}}\n```', LabelParser(json_path="$.a.b"), "x"),
        ("not json", LabelParser(json_path="$.intent"), None),
        ("SHIPPING", LabelParser(lowercase=True), "shipping"),
    ],
)
def test_parse_label(text: str, parser: LabelParser | None, expected: str | None) -> None:
    assert parse_label(text, parser) == expected


def test_classification_answer_validity_is_membership_in_the_label_set() -> None:
    workload = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"])
    assert answer_from_message(msg("billing"), workload).valid
    unknown = answer_from_message(msg("shipping"), workload)
    assert unknown.value == "shipping" and not unknown.valid
    assert answer_from_message(msg(None), workload).value is None


def test_extraction_answer_canonical_json_and_schema_validity() -> None:
    workload = WorkloadConfig(id="w", task="extraction", json_schema=SCHEMA)
    good = answer_from_message(msg('```json\n{"qty": 2, "order_id": "ORD-1"}\n```'), workload)
    assert good.valid and good.value == '{"order_id":"ORD-1","qty":2}'
    wrong_type = answer_from_message(msg('{"order_id": "ORD-1", "qty": "two"}'), workload)
    assert wrong_type.value is not None and not wrong_type.valid  # JSON, but not for the schema
    broken = answer_from_message(msg('{"order_id": "ORD-1", "qty": 2'), workload)
    assert broken.value is None and broken.reason == "invalid_json" and not broken.valid
    assert answer_from_message(msg("[1, 2]"), workload).value is None


def test_extraction_schema_from_the_request_response_format() -> None:
    workload = WorkloadConfig(id="w", task="extraction")
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
    assert not answer_from_message(
        msg('{"qty": 0, "order_id": null}'), workload, example(response_format=fmt)
    ).valid
    assert answer_from_message(msg('{"qty": 0, "order_id": null}'), workload).valid  # no schema anywhere


def test_tool_call_answers_normalise_arguments() -> None:
    workload = WorkloadConfig(id="w", task="tool_call", tools=TOOLS)
    as_string = answer_from_message(
        msg(tool_calls=[call("cancel_order", '{"reason": "x", "order_id": "1"}')]), workload
    )
    as_object = answer_from_message(
        msg(tool_calls=[call("cancel_order", {"order_id": "1", "reason": "x"})]), workload
    )
    assert as_string == as_object
    assert as_string.valid
    assert json.loads(as_string.value or "") == [
        {"arguments": {"order_id": "1", "reason": "x"}, "name": "cancel_order"}
    ]


def test_tool_call_validity() -> None:
    workload = WorkloadConfig(id="w", task="tool_call", tools=TOOLS)
    assert not answer_from_message(msg(tool_calls=[call("refund_everything", "{}")]), workload).valid
    assert not answer_from_message(msg(tool_calls=[call("cancel_order", "{oops")]), workload).valid
    assert not answer_from_message(msg(tool_calls=[call("cancel_order", "[1]")]), workload).valid
    text = answer_from_message(msg("Hello! How can I help?"), workload)
    assert text.value == "[]" and text.valid
    empty = answer_from_message(msg(""), workload)
    assert empty.value == "[]" and empty.reason == "empty_answer" and not empty.valid


@pytest.mark.parametrize(
    "label",
    [
        '{"type": "tool_call", "name": "get_order_status", "arguments": {"order_id": "ORD-1"}}',
        '{"name": "get_order_status", "arguments": "{\\"order_id\\": \\"ORD-1\\"}"}',
        '[{"type": "function", "function": {"name": "get_order_status", '
        '"arguments": {"order_id": "ORD-1"}}}]',
        '{"role": "assistant", "tool_calls": [{"function": {"name": "get_order_status", '
        '"arguments": "{\\"order_id\\":\\"ORD-1\\"}"}}]}',
    ],
)
def test_tool_call_label_spellings_agree(label: str) -> None:
    workload = WorkloadConfig(id="w", task="tool_call", tools=TOOLS)
    answer = answer_from_label(label, workload)
    assert answer.valid
    assert json.loads(answer.value or "") == [
        {"arguments": {"order_id": "ORD-1"}, "name": "get_order_status"}
    ]


def test_text_labels_mean_no_call() -> None:
    assert calls_from_label('{"type": "text", "content": "hi"}') == []
    assert calls_from_label("just words") == []


def test_reference_answer_gold_teacher_and_missing_gold() -> None:
    workload = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"])
    item = example(label="billing", gold="refund")
    assert reference_answer(item, workload, "gold").value == "refund"
    assert reference_answer(item, workload, "teacher").value == "billing"
    no_label = Example(example_id="e2", workload_id="w", messages=[], target=msg("refund"))
    assert reference_answer(no_label, workload, "teacher").value == "refund"
    with pytest.raises(ValueError, match="e2: reference 'gold'"):
        reference_answer(no_label, workload, "gold")
