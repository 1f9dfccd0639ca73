"""Oracles for the fake OpenAI server: functions from a chat.completions request to an answer.

`answer_in_request_format(request, answer)` shapes a task-level answer the way the request asks for
it (a JSON object for a json_schema response_format, a tool call when tools are offered, plain text
otherwise), so one oracle serves replay-style, constrained and tool-calling requests alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from flywheel.records import message_text


def last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def label_enum(request: dict[str, Any]) -> list[str] | None:
    """The allowed labels when the request constrains the answer to {"label": <enum>}."""
    schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    label = (schema.get("properties") or {}).get("label") or {}
    return label.get("enum")


def answer_in_request_format(request: dict[str, Any], answer: Any) -> str | dict[str, Any]:
    """answer: a label string, a JSON-able object, or {"name", "arguments"} for a tool call."""
    if isinstance(answer, dict) and "name" in answer and "arguments" in answer and request.get("tools"):
        return {"content": None, "tool_calls": [{"function": answer}]}
    if label_enum(request) is not None:
        return json.dumps({"label": answer})
    if (request.get("response_format") or {}).get("type") in ("json_schema", "json_object"):
        return json.dumps(answer)
    return answer if isinstance(answer, str) else json.dumps(answer)


def lookup_oracle(answers: Mapping[str, Any], default: Any = "unknown") -> Callable[[dict[str, Any]], Any]:
    """Answers by the last user message's text (e.g. gold answers of demo traffic)."""

    def oracle(request: dict[str, Any]) -> str | dict[str, Any]:
        return answer_in_request_format(request, answers.get(last_user_text(request), default))

    return oracle


def keyword_oracle(request: dict[str, Any]) -> str | dict[str, Any]:
    """Classification: the first allowed label named in the user's text, else the first label."""
    text = last_user_text(request).lower()
    labels = label_enum(request) or ["other"]
    chosen = next((label for label in labels if label.lower() in text), labels[0])
    return answer_in_request_format(request, chosen)
