"""Turn an assistant message (or a stored label string) into the answer the metrics compare.

Per task type the comparable answer is a string, plus whether the message had a valid format:
- classification: the label read by the workload's label_parser; valid when it is in the label set.
- extraction: canonical JSON of the extracted object; valid when it parses and satisfies the schema.
- tool_call: canonical JSON of the sorted list of calls [{"arguments", "name"}] ("[]" = answered in
  text); valid when every call names a known tool and its arguments parse to a JSON object.
- chat: the stripped text; valid when it is not empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from flywheel.config import LabelParser, WorkloadConfig
from flywheel.records import Example, canonical_dumps, message_text
from flywheel.schemas import build_validator

NO_CALL = "[]"
FENCE_RE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Answer:
    """A comparable answer: `value` is None when nothing could be read from the message."""

    value: str | None
    valid: bool


def answer_from_message(
    message: dict[str, Any] | None, workload: WorkloadConfig, example: Example | None = None
) -> Answer:
    """The comparable answer of an assistant message, for the workload's task type."""
    if workload.task == "classification":
        return _classification_answer(message_text(message), workload)
    if workload.task == "extraction":
        return _extraction_answer(message_text(message), _schema_for(workload, example))
    if workload.task == "tool_call":
        return _tool_call_answer(_calls_of_message(message), _known_tools(workload, example), message)
    text = message_text(message).strip()
    return Answer(text, bool(text))


def answer_from_label(label: str, workload: WorkloadConfig, example: Example | None = None) -> Answer:
    """The comparable answer of a stored label string (Example.label or Example.gold).

    Labels are already the task-level answer (a class name, canonical JSON, canonical tool-call JSON),
    so no label_parser applies; tool-call labels may be any of the usual spellings (see
    `calls_from_label`).
    """
    if workload.task == "classification":
        label = label.strip()
        return Answer(label or None, bool(label) and _in_label_set(label, workload))
    if workload.task == "extraction":
        return _extraction_answer(label, _schema_for(workload, example))
    if workload.task == "tool_call":
        return _tool_call_answer(calls_from_label(label), _known_tools(workload, example), None)
    return Answer(label.strip(), bool(label.strip()))


def reference_answer(example: Example, workload: WorkloadConfig, reference: str) -> Answer:
    """The answer a prediction is scored against: the gold label, or the teacher's target."""
    if reference == "gold":
        if example.gold is None:
            raise ValueError(f"example {example.example_id}: reference 'gold' but the example has no gold")
        return answer_from_label(example.gold, workload, example)
    if example.label is not None:
        return answer_from_label(example.label, workload, example)
    return answer_from_message(example.target, workload, example)


def input_text(example: Example) -> str:
    """What the user wrote: the non-system messages, which extracted values must come from."""
    return "\n".join(message_text(m) for m in example.messages if m.get("role") != "system")


def parse_label(text: str, parser: LabelParser | None) -> str | None:
    """Read a label out of free text with a LabelParser (regex group, dotted JSON path, lowercase)."""
    value: str | None = text.strip()
    if parser is not None and parser.json_path:
        value = _json_path_value(text, parser.json_path)
    if value is not None and parser is not None and parser.regex:
        match = re.search(parser.regex, value)
        value = None if match is None else (match.group(1) if match.groups() else match.group(0))
    if value is not None and parser is not None and parser.lowercase:
        value = value.lower()
    return value.strip() if value else None


def _json_path_value(text: str, path: str) -> str | None:
    try:
        node: Any = orjson.loads(_strip_fences(text))
    except orjson.JSONDecodeError:
        return None
    for key in path.removeprefix("$").strip(".").split("."):
        if not key:
            continue
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, str) else (None if node is None else orjson.dumps(node).decode())


def _classification_answer(text: str, workload: WorkloadConfig) -> Answer:
    label = parse_label(text, workload.label_parser)
    return Answer(label, label is not None and _in_label_set(label, workload))


def _in_label_set(label: str, workload: WorkloadConfig) -> bool:
    return workload.labels is None or label in workload.labels


def _strip_fences(text: str) -> str:
    match = FENCE_RE.match(text)
    return match.group(1) if match else text


def _extraction_answer(text: str, schema: dict[str, Any] | None) -> Answer:
    try:
        obj = orjson.loads(_strip_fences(text).strip() or b"null")
    except orjson.JSONDecodeError:
        return Answer(None, False)
    if not isinstance(obj, dict):
        return Answer(None, False)
    return Answer(canonical_dumps(obj).decode(), schema is None or _schema_valid(obj, schema))


def _schema_for(workload: WorkloadConfig, example: Example | None) -> dict[str, Any] | None:
    if workload.json_schema is not None:
        return workload.json_schema
    fmt = (example.response_format if example is not None else None) or {}
    inner = fmt.get("json_schema") if isinstance(fmt, dict) else None
    return inner.get("schema") if isinstance(inner, dict) else None


def _schema_valid(obj: dict[str, Any], schema: dict[str, Any]) -> bool:
    validator = _validator(canonical_dumps(schema).decode())
    return not isinstance(validator, str) and validator.is_valid(obj)  # a str: the schema is unusable


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    return build_validator(orjson.loads(schema_json))


def _known_tools(workload: WorkloadConfig, example: Example | None) -> set[str] | None:
    tools = workload.tools or (example.tools if example is not None else None)
    if not tools:
        return None
    return {str((t.get("function") or t).get("name")) for t in tools if isinstance(t, dict)}


def _calls_of_message(message: dict[str, Any] | None) -> list[Any]:
    calls = (message or {}).get("tool_calls") or []
    return calls if isinstance(calls, list) else [calls]


def calls_from_label(label: str) -> list[Any]:
    """Tool calls from a label string: {"name","arguments"}, {"type": "tool_call"|"text", ...},
    an assistant message with "tool_calls", or a list of calls. Anything else is a text answer."""
    try:
        value = orjson.loads(label)
    except orjson.JSONDecodeError:
        return []
    if isinstance(value, list):
        return value
    if not isinstance(value, dict) or value.get("type") == "text":
        return []
    if "tool_calls" in value:
        return _calls_of_message(value)
    return [value] if ("name" in value or "function" in value) else []


def _tool_call_answer(calls: list[Any], known: set[str] | None, message: dict[str, Any] | None) -> Answer:
    normalised, valid = [], True
    for call in calls:
        name, arguments, ok = _normalise_call(call)
        valid = valid and ok and (known is None or name in known)
        normalised.append({"arguments": arguments, "name": name})
    if not normalised and message is not None:
        valid = bool(message_text(message).strip())
    normalised.sort(key=lambda c: canonical_dumps(c))
    return Answer(canonical_dumps(normalised).decode(), valid)


def _normalise_call(call: Any) -> tuple[str, Any, bool]:
    """(name, arguments as a JSON value, arguments parsed to an object)."""
    if not isinstance(call, dict):
        return "", {"__unparsed__": str(call)}, False
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    name = str(function.get("name") or "")
    arguments = function.get("arguments")
    if arguments is None or arguments == "":
        return name, {}, bool(name)
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return name, {"__unparsed__": arguments}, False
    return name, arguments, bool(name) and isinstance(arguments, dict)
