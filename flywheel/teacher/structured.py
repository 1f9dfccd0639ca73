"""Asking for, and checking, answers in the workload's format.

Classification is constrained to the label set, extraction to the JSON schema, tool calls to the
workload's tools. With `json_schema=True` the constraint travels as response_format json_schema;
otherwise it is an instruction, and `parse_answer` is the check. An answer that fails the check gets
one retry with the error shown to the model (`retry_request`).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from flywheel.config import TeacherConfig, WorkloadConfig
from flywheel.records import Example, canonical_dumps, message_text

FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


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
    """Check an assistant message against the workload's contract; raises InvalidAnswer."""
    if finish_reason == "length":
        raise InvalidAnswer("truncated", "the answer hit max_tokens")
    if message.get("refusal"):
        raise InvalidAnswer("refusal", str(message["refusal"])[:200])
    if workload.task == "classification":
        return _parse_label(message_text(message), workload)
    if workload.task == "extraction":
        schema = extraction_schema(example, workload) if example else workload.json_schema
        return _parse_json(message_text(message), schema)
    if workload.task == "tool_call":
        tools = (example.tools if example else None) or workload.tools or []
        return _parse_tool_calls(message, tools)
    text = message_text(message).strip()
    if not text:
        raise InvalidAnswer("empty_answer", "the answer has no text")
    return ParsedAnswer(text, {"role": "assistant", "content": text})


def _parse_label(text: str, workload: WorkloadConfig) -> ParsedAnswer:
    labels = workload.labels or []
    candidates = [text]
    try:
        loaded = json.loads(_unfence(text))
        if isinstance(loaded, dict) and isinstance(loaded.get("label"), str):
            candidates.insert(0, loaded["label"])
    except ValueError:
        pass
    parser = workload.label_parser
    if parser and parser.regex:
        match = re.search(parser.regex, text)
        if match:
            candidates.append(match.group(1) if match.groups() else match.group(0))
    by_folded = {label.lower(): label for label in labels}
    for candidate in candidates:
        folded = candidate.strip().strip("\"'`.!").strip().lower()
        if folded in by_folded:
            label = by_folded[folded]
            return ParsedAnswer(label, {"role": "assistant", "content": label})
    shown = text.strip()[:80]
    raise InvalidAnswer("label_not_in_set", f"{shown!r} is not one of: {', '.join(labels)}")


def _parse_json(text: str, schema: dict[str, Any] | None) -> ParsedAnswer:
    try:
        value = json.loads(_unfence(text))
    except ValueError as exc:
        raise InvalidAnswer("invalid_json", f"the answer is not JSON ({exc})") from None
    if schema is not None:
        _validate(value, schema, "schema_violation")
    content = json.dumps(value, ensure_ascii=False)
    return ParsedAnswer(canonical_dumps(value).decode(), {"role": "assistant", "content": content})


def _parse_tool_calls(message: dict[str, Any], tools: list[dict[str, Any]]) -> ParsedAnswer:
    calls = message.get("tool_calls") or []
    if not calls:
        text = message_text(message).strip()
        if not text:
            raise InvalidAnswer("empty_answer", "neither a tool call nor text")
        return ParsedAnswer(text, {"role": "assistant", "content": text})
    by_name = {t.get("function", {}).get("name"): t.get("function", {}) for t in tools}
    parsed, target_calls = [], []
    for i, call in enumerate(calls):
        function = call.get("function") or {}
        name = function.get("name")
        if name not in by_name:
            raise InvalidAnswer("unknown_tool", f"{name!r} is not one of: {', '.join(map(str, by_name))}")
        arguments = function.get("arguments")
        try:
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError as exc:
            raise InvalidAnswer(
                "unparseable_arguments", f"arguments of {name} are not JSON ({exc})"
            ) from None
        if by_name[name].get("parameters"):
            _validate(arguments, by_name[name]["parameters"], "invalid_arguments")
        parsed.append({"name": name, "arguments": arguments})
        encoded = json.dumps(arguments, ensure_ascii=False)
        target_calls.append(
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": encoded}}
        )
    label = canonical_dumps(parsed[0] if len(parsed) == 1 else parsed).decode()
    return ParsedAnswer(label, {"role": "assistant", "content": None, "tool_calls": target_calls})


def _validate(value: Any, schema: dict[str, Any], reason: str) -> None:
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise InvalidAnswer(reason, f"at {where}: {exc.message}") from None


def _unfence(text: str) -> str:
    match = FENCE_RE.match(text)
    return match.group(1) if match else text.strip()


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
