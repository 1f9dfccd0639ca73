"""Read the task-level answer out of a logged assistant message, or say why it cannot be used.

The label conventions every later stage relies on (see Example.label):
  classification -> the label string read with the workload's label_parser, checked against `labels`;
  extraction     -> the answer JSON re-serialised canonically (sorted keys, compact);
  tool_call      -> canonical JSON of [{"name", "arguments"}] in call order, or "" for a text answer;
  chat           -> the text.
A format failure is a reason string: unparseable_label, label_not_in_set, invalid_json,
schema_violation, unknown_tool, unparseable_arguments, invalid_arguments.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.records import canonical_dumps, message_text
from flywheel.schemas import build_validator


@dataclass(slots=True)
class ParsedAnswer:
    label: str | None
    reason: str | None = None
    detail: str = ""
    tool_names: list[str] = field(default_factory=list)
    arguments_text: str | None = None
    answer_json: str | None = None


def parse_answer(workload: WorkloadConfig, message: dict[str, Any], request: dict[str, Any]) -> ParsedAnswer:
    """The label of `message` under the workload's task, or a format reason with a short detail."""
    if workload.task == "classification":
        return parse_classification(workload, message_text(message))
    if workload.task == "extraction":
        return parse_extraction(message_text(message), schema_for(workload, request))
    if workload.task == "tool_call":
        return parse_tool_calls(message, tool_schemas(workload, request))
    return ParsedAnswer(message_text(message).strip())


def parse_classification(workload: WorkloadConfig, text: str) -> ParsedAnswer:
    parser = workload.label_parser
    label: str | None = text.strip()
    if parser is not None and parser.regex:
        match = _regex(parser.regex).search(text)
        label = (match.group(1) if match.re.groups else match.group(0)) if match else None
    elif parser is not None and parser.json_path:
        label = _json_path_value(text, parser.json_path)
    if label is None:
        return ParsedAnswer(None, "unparseable_label", f"cannot read a label from {_short(text)}")
    label = label.strip()
    if parser is not None and parser.lowercase:
        label = label.lower()
    if workload.labels and label not in workload.labels:
        return ParsedAnswer(label, "label_not_in_set", f"label {_short(label)} is not one of the labels")
    return ParsedAnswer(label)


def _json_path_value(text: str, path: str) -> str | None:
    try:
        value: Any = json.loads(text)
    except ValueError:
        return None
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, str) else None if value is None else json.dumps(value)


def parse_extraction(text: str, schema: dict[str, Any] | None) -> ParsedAnswer:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return ParsedAnswer(None, "invalid_json", f"answer is not JSON ({exc.msg} at char {exc.pos})")
    label = canonical_dumps(value).decode()
    if schema is not None:
        error = _schema_error(schema, value)
        if error:
            return ParsedAnswer(label, "schema_violation", error, answer_json=text)
    return ParsedAnswer(label, answer_json=text)


def parse_tool_calls(message: dict[str, Any], tools: dict[str, dict[str, Any] | None]) -> ParsedAnswer:
    calls = message.get("tool_calls") or []
    if not calls:
        return ParsedAnswer("")
    parsed, names = [], []
    first_arguments = None
    for call in calls:
        function = call.get("function") or {}
        name, arguments = function.get("name"), function.get("arguments")
        names.append(name)
        first_arguments = arguments if first_arguments is None else first_arguments
        failure = _call_failure(name, arguments, tools)
        if failure is not None:
            return ParsedAnswer(None, *failure, tool_names=names, arguments_text=first_arguments)
        parsed.append({"name": name, "arguments": json.loads(arguments or "{}")})
    label = canonical_dumps(parsed).decode()
    return ParsedAnswer(label, tool_names=names, arguments_text=first_arguments)


def _call_failure(
    name: Any, arguments: Any, tools: dict[str, dict[str, Any] | None]
) -> tuple[str, str] | None:
    if tools and name not in tools:
        return "unknown_tool", f"tool {name!r} is not in the request's tools"
    try:
        value = json.loads(arguments or "{}")
    except (TypeError, ValueError):
        return "unparseable_arguments", f"arguments of {name!r} are not JSON: {_short(str(arguments))}"
    if not isinstance(value, dict):
        return "unparseable_arguments", f"arguments of {name!r} are not a JSON object"
    schema = tools.get(name) if tools else None
    error = _schema_error(schema, value) if schema else None
    return ("invalid_arguments", f"{name}: {error}") if error else None


def schema_for(workload: WorkloadConfig, request: dict[str, Any]) -> dict[str, Any] | None:
    """The workload's JSON schema, else the one the request sent as response_format."""
    if workload.json_schema:
        return workload.json_schema
    response_format = request.get("response_format")
    if isinstance(response_format, dict):
        inner = response_format.get("json_schema")
        if isinstance(inner, dict) and isinstance(inner.get("schema"), dict):
            return inner["schema"]
    return None


def tool_schemas(workload: WorkloadConfig, request: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Tool name -> parameters schema, from the request's tools (else the workload's)."""
    tools = request.get("tools") or workload.tools or []
    out: dict[str, dict[str, Any] | None] = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            out[function["name"]] = parameters if isinstance(parameters, dict) else None
    return out


def _schema_error(schema: dict[str, Any], value: Any) -> str | None:
    validator = _validator(canonical_dumps(schema).decode())
    if isinstance(validator, str):  # the schema itself is unusable: say so instead of raising
        return validator
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    return f"{where}: {_short(error.message, 120)}"


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    return build_validator(json.loads(schema_json))


@functools.lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
