from __future__ import annotations

import orjson

from flywheel.records import Example
from flywheel.train.formatting import (
    classifier_text,
    message_as_text,
    messages_row,
    parse_completion,
    prompt_completion_row,
    prompt_messages,
    target_text,
    tools_summary,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "cancel_order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]


def example(target: dict, label: str | None = None, **extra: object) -> Example:
    messages = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "cancel ORD-1"}]
    return Example("e1", "w", messages, target, label=label, **extra)


def test_classification_learns_the_label_not_the_raw_answer() -> None:
    ex = example({"role": "assistant", "content": "Queue: billing"}, label="billing")
    assert target_text(ex, "classification") == "billing"
    assert parse_completion(" billing\n", "classification") == {"role": "assistant", "content": "billing"}


def test_extraction_target_is_compact_sorted_json_and_parses_back() -> None:
    ex = example({"role": "assistant", "content": '{ "b": 1, "a": [1, 2] }'})
    assert target_text(ex, "extraction") == '{"a":[1,2],"b":1}'
    assert parse_completion('{"b": 1, "a": [1,2]}', "extraction")["content"] == '{"a":[1,2],"b":1}'
    assert parse_completion("{broken", "extraction")["content"] == "{broken"


def test_tool_call_round_trip_string_or_object_arguments() -> None:
    call = {
        "id": "x",
        "type": "function",
        "function": {"name": "cancel_order", "arguments": '{"order_id":"ORD-1"}'},
    }
    ex = example({"role": "assistant", "content": None, "tool_calls": [call]})
    text = target_text(ex, "tool_call")
    assert text == '{"arguments":{"order_id":"ORD-1"},"name":"cancel_order"}'
    message = parse_completion(text, "tool_call")
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {
        "name": "cancel_order",
        "arguments": '{"order_id":"ORD-1"}',
    }
    assert message_as_text(message) == text
    object_args = dict(call, function={"name": "cancel_order", "arguments": {"order_id": "ORD-1"}})
    assert target_text(example({"role": "assistant", "tool_calls": [object_args]}), "tool_call") == text


def test_tool_call_text_reply_and_garbage_stay_content() -> None:
    assert parse_completion("Happy to help!", "tool_call") == {
        "role": "assistant",
        "content": "Happy to help!",
    }
    assert parse_completion('{"name": 3}', "tool_call")["content"] == '{"name": 3}'
    assert parse_completion("", "tool_call") == {"role": "assistant", "content": ""}


def test_two_calls_become_two_lines() -> None:
    calls = '{"name":"a","arguments":{}}\n{"name":"b","arguments":{"x":1}}'
    message = parse_completion(calls, "tool_call")
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["a", "b"]
    assert message_as_text(message) == '{"arguments":{},"name":"a"}\n{"arguments":{"x":1},"name":"b"}'


def test_prompt_rows_flatten_roles_and_optionally_list_tools() -> None:
    ex = example({"role": "assistant", "content": "ok"}, tools=TOOLS)
    assert prompt_messages(ex)[0] == {"role": "system", "content": "be brief"}
    with_tools = prompt_messages(ex, include_tools=True)
    assert with_tools[0]["content"] == "tools:\ncancel_order(order_id, reason?)"
    assert tools_summary(TOOLS) == with_tools[0]["content"]
    row = prompt_completion_row(ex, "chat")
    assert row["completion"] == [{"role": "assistant", "content": "ok"}]
    assert messages_row(ex, "chat")["messages"][-1] == {"role": "assistant", "content": "ok"}


def test_classifier_text_skips_system_turns() -> None:
    ex = example({"role": "assistant", "content": "x"})
    assert classifier_text(ex) == "cancel ORD-1"
    assert orjson.loads(orjson.dumps(messages_row(ex, "chat")))  # rows are plain JSON
