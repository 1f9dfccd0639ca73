"""Asking for, and checking, answers in the workload's format.

Classification is constrained to the label set, extraction to the JSON schema, tool calls to the
workload's tools. With `json_schema=True` the constraint travels as response_format json_schema;
otherwise it is an instruction, and `parse_answer` is the check. An answer that fails the check gets
one retry with the error shown to the model (`retry_request`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from flywheel.answers import AnswerSpec, read_message
from flywheel.config import TeacherConfig, WorkloadConfig
from flywheel.records import Example, canonical_dumps, message_text


class InvalidAnswer(ValueError):
    """An answer that does not fit the workload's format; `reason` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class ParsedAnswer:
    label: str  # task-level answer: class, canonical JSON, canonical tool call(s), or text
    target: dict[str, Any]  # the assistant message a student learns, in the production format


def build_request(
    example: Example,
    workload: WorkloadConfig,
    teacher: TeacherConfig,
    *,
    json_schema: bool,
    k_votes: int | None = None,
) -> dict[str, Any]:
    """The chat.completions payload (without model) that asks the teacher for one example's answer."""
    request: dict[str, Any] = {"messages": [dict(m) for m in example.messages]}
    instruction = None
    if workload.task == "classification":
        if not workload.labels:
            raise ValueError(
                f"workloads[{workload.id}].labels: asking a teacher for a label needs the label set; "
                "add the set `flywheel curate` proposed (or run `flywheel init --from LOGS`)"
            )
        instruction = "Answer with exactly one label from this list: " + ", ".join(workload.labels or [])
        if json_schema:
            request["response_format"] = label_response_format(tuple(workload.labels or ()))
    elif workload.task == "extraction":
        schema = extraction_schema(example, workload)
        if json_schema and schema is not None:
            request["response_format"] = schema_response_format(schema)
        elif schema is not None:
            instruction = "Answer with only a JSON object that satisfies this JSON schema: " + json.dumps(
                schema
            )
    elif workload.task == "tool_call":
        tools = example.tools or workload.tools
        if tools:
            request.update(tools=tools, tool_choice="auto")
    if instruction:
        request["messages"] = with_instruction(request["messages"], instruction)
    sampling = (k_votes or teacher.k_votes) > 1
    request["temperature"] = teacher.vote_temperature if sampling else 0.0
    if teacher.max_tokens:
        request["max_tokens"] = teacher.max_tokens
    if teacher.logprobs_top_k is not None:
        request["logprobs"] = True
        if teacher.logprobs_top_k:
            request["top_logprobs"] = teacher.logprobs_top_k
    return request


def with_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """Add the instruction to the leading system message (some chat templates allow only one, first)."""
    if (
        messages
        and messages[0].get("role") in ("system", "developer")
        and isinstance(messages[0].get("content"), str)
    ):
        first = {**messages[0], "content": messages[0]["content"] + "\n\n" + instruction}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


@functools.lru_cache(maxsize=64)
def label_response_format(labels: tuple[str, ...]) -> dict[str, Any]:
    """Shared between requests (built once per label set); callers must not mutate it."""
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(labels)}},
        "required": ["label"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "label", "strict": True, "schema": schema}}


def schema_response_format(schema: dict[str, Any]) -> dict[str, Any]:
    strict = schema.get("additionalProperties") is False and set(schema.get("required") or []) == set(
        schema.get("properties") or {}
    )
    return {"type": "json_schema", "json_schema": {"name": "output", "strict": strict, "schema": schema}}


def extraction_schema(example: Example, workload: WorkloadConfig) -> dict[str, Any] | None:
    """The workload's schema, else the one the application sent with the request."""
    if workload.json_schema:
        return workload.json_schema
    response_format = example.response_format or {}
    return (response_format.get("json_schema") or {}).get("schema")


def uses_json_schema(request: dict[str, Any]) -> bool:
    return (request.get("response_format") or {}).get("type") == "json_schema"


def parse_answer(
    message: dict[str, Any],
    workload: WorkloadConfig,
    example: Example | None = None,
    finish_reason: str | None = None,
) -> ParsedAnswer:
    """Check an assistant message against the workload's answer contract (flywheel.answers), the
    same reading curation, evaluation and serving use; raises InvalidAnswer."""
    if finish_reason == "length":
        raise InvalidAnswer("truncated", "the answer hit max_tokens")
    if message.get("refusal"):
        raise InvalidAnswer("refusal", str(message["refusal"])[:200])
    request = {"tools": example.tools, "response_format": example.response_format} if example else {}
    answer = read_message(AnswerSpec.of(workload), message, request)
    if not answer.valid or answer.value is None:
        raise InvalidAnswer(answer.reason or "unreadable", answer.detail or "no answer could be read")
    return _label_and_target(workload.task, message, answer.value, answer.answer_json)


def _label_and_target(
    task: str, message: dict[str, Any], value: str, answer_json: str | None
) -> ParsedAnswer:
    """The label to store and the assistant message a student learns, in the production format."""
    if task == "extraction":
        content = json.dumps(json.loads(answer_json or value), ensure_ascii=False)
        return ParsedAnswer(value, {"role": "assistant", "content": content})
    if task == "tool_call" and message.get("tool_calls"):
        return _tool_call_target(message["tool_calls"])
    text = value if task == "classification" else message_text(message).strip()
    return ParsedAnswer(text, {"role": "assistant", "content": text})


def _tool_call_target(calls: list[dict[str, Any]]) -> ParsedAnswer:
    parsed, target_calls = [], []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        arguments = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else arguments
        arguments = arguments if isinstance(arguments, dict) else {}
        parsed.append({"name": function.get("name"), "arguments": arguments})
        encoded = json.dumps(arguments, ensure_ascii=False)
        target_calls.append(
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": function.get("name"), "arguments": encoded},
            }
        )
    label = canonical_dumps(parsed[0] if len(parsed) == 1 else parsed).decode()
    return ParsedAnswer(label, {"role": "assistant", "content": None, "tool_calls": target_calls})


def retry_request(request: dict[str, Any], message: dict[str, Any], error: InvalidAnswer) -> dict[str, Any]:
    """The same request plus the invalid answer and the error, asking for a corrected answer."""
    correction = (
        f"That answer is invalid ({error.reason}): {error.detail}. Reply again with a valid answer only."
    )
    follow_up: list[dict[str, Any]] = []
    calls = message.get("tool_calls") or []
    if calls:  # an assistant tool call must be followed by tool results, so the error goes there
        follow_up = [{"role": "tool", "tool_call_id": c.get("id", ""), "content": correction} for c in calls]
    else:
        follow_up = [{"role": "user", "content": correction}]
    return {**request, "messages": [*request["messages"], message, *follow_up]}
