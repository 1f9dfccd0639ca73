"""Read the task-level answer out of an assistant message, or a stored label, or say why not.

The one reading every stage shares (curation, teacher labelling, evaluation, serving):
  classification -> the label: code fences stripped, a dotted JSON path (else a JSON answer's
                    "label"), then the parser's regex group, then lowercase; matched to the label set
                    exactly, else case-insensitively (the set's own spelling is the value);
                    reasons unparseable_label, label_not_in_set;
  extraction     -> canonical JSON (sorted keys, compact) of the answer object, fences stripped;
                    reasons invalid_json, not_an_object, schema_violation;
  tool_call      -> canonical JSON of the calls [{"arguments", "name"}] sorted, "[]" for a text reply;
                    reasons unknown_tool, unparseable_arguments, invalid_arguments;
  chat           -> the stripped text.
Any task: no text and no tool call is `empty_answer`. `value` is None when nothing could be read;
an answer with a reason may still carry its value (a label outside the set), but `valid` is False
and metrics never score it as right.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from flywheel.answers.spec import AnswerSpec, ParserSpec, schema_error, schema_for, short, tool_schemas
from flywheel.records import canonical_dumps, message_text

NO_CALL = "[]"
FENCE_RE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Answer:
    """A comparable answer: `value` (None when unreadable) and why it is not valid (None = valid)."""

    value: str | None
    reason: str | None = None
    detail: str = ""
    tool_names: tuple[str, ...] = ()
    answer_json: str | None = None  # extraction: the JSON text as the model wrote it

    @property
    def valid(self) -> bool:
        return self.reason is None and self.value is not None

    @property
    def label(self) -> str | None:
        return self.value


def read_message(spec: AnswerSpec, message: dict[str, Any] | None, request: dict[str, Any] | None) -> Answer:
    """The answer of an assistant message to `request` under the contract `spec`."""
    message = message or {}
    text = message_text(message)
    if not message.get("tool_calls") and not text.strip():
        return Answer(NO_CALL if spec.task == "tool_call" else None, "empty_answer", "no text, no tool call")
    if spec.task == "classification":
        return read_classification(spec, text)
    if spec.task == "extraction":
        return read_extraction(text, schema_for(spec, request))
    if spec.task == "tool_call":
        return read_tool_calls(_calls(message), tool_schemas(spec, request), text)
    return Answer(text.strip())


def read_label(spec: AnswerSpec, label: str, request: dict[str, Any] | None = None) -> Answer:
    """The answer of a stored label (Example.label/gold): already task-level, so no label parser;
    tool-call labels may be any usual spelling (see `calls_from_label`)."""
    if spec.task == "classification":
        return read_classification(spec.canonical(), label)
    if spec.task == "extraction":
        return read_extraction(label, schema_for(spec, request))
    if spec.task == "tool_call":
        calls = calls_from_label(label)
        text = "" if calls else label
        if not calls and not text.strip():
            return Answer(NO_CALL, "empty_answer", "empty label")
        return read_tool_calls(calls, tool_schemas(spec, request), text)
    text = label.strip()
    return Answer(text, None if text else "empty_answer")


def read_classification(spec: AnswerSpec, text: str) -> Answer:
    label = parse_label(text, spec.parser)
    if label is None:
        return Answer(None, "unparseable_label", f"cannot read a label from {short(text)}")
    if not spec.labels or label in spec.labels:
        return Answer(label)
    folded = {known.casefold(): known for known in spec.labels}
    match = folded.get(label.strip("\"'`.!").strip().casefold())
    if match is not None:
        return Answer(match)
    return Answer(label, "label_not_in_set", f"label {short(label)} is not one of the labels")


def parse_label(text: str, parser: ParserSpec | Any | None) -> str | None:
    """A label out of free text: dotted JSON path (fences stripped), then regex group, then lowercase."""
    value: str | None = text.strip()
    if parser is not None and parser.json_path:
        value = _json_path_value(strip_fences(text), parser.json_path)
    elif value and value[0] in "{`":  # a JSON-mode answer {"label": ...} (the relabel request asks for it)
        value = _json_path_value(strip_fences(text), "label") or value
    if value is not None and parser is not None and parser.regex:
        match = _regex(parser.regex).search(value)
        value = None if match is None else (match.group(1) if match.re.groups else match.group(0))
    if value is not None and parser is not None and parser.lowercase:
        value = value.lower()
    value = value.strip() if value else None
    return value or None


def _json_path_value(text: str, path: str) -> str | None:
    try:
        node: Any = json.loads(text)
    except ValueError:
        return None
    for key in [p for p in path.removeprefix("$").split(".") if p]:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, str) else (None if node is None else json.dumps(node))


def strip_fences(text: str) -> str:
    match = FENCE_RE.match(text)
    return match.group(1) if match else text


def read_extraction(text: str, schema: dict[str, Any] | None) -> Answer:
    body = strip_fences(text).strip()
    try:
        value = json.loads(body)
    except ValueError as exc:
        return Answer(None, "invalid_json", f"answer is not JSON ({exc})"[:160])
    if not isinstance(value, dict) and (schema is None or schema.get("type", "object") == "object"):
        return Answer(None, "not_an_object", f"answer is JSON {type(value).__name__}, not an object")
    label = canonical_dumps(value).decode()
    error = schema_error(schema, value) if schema is not None else None
    if error:
        return Answer(label, "schema_violation", error, answer_json=body)
    return Answer(label, answer_json=body)


def read_tool_calls(calls: list[Any], tools: dict[str, dict[str, Any] | None], text: str = "") -> Answer:
    """Tool calls checked against the offered tools; no call at all is a text reply ("[]")."""
    if not calls:
        return Answer(NO_CALL) if text.strip() else Answer(NO_CALL, "empty_answer", "no text, no tool call")
    parsed, names = [], []
    for call in calls:
        name, arguments = _name_and_arguments(call)
        names.append(name)
        failure = _call_failure(name, arguments, tools)
        if failure is not None:
            return Answer(None, failure[0], failure[1], tool_names=tuple(names))
        parsed.append({"arguments": arguments, "name": name})
    parsed.sort(key=canonical_dumps)
    return Answer(canonical_dumps(parsed).decode(), tool_names=tuple(names))


def _name_and_arguments(call: Any) -> tuple[str, Any]:
    if not isinstance(call, dict):
        return "", str(call)
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    arguments = function.get("arguments")
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = {}
    elif isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # stays a string: reported as unparseable below
            arguments = json.loads(arguments)
    return str(function.get("name") or ""), arguments


def _call_failure(
    name: str, arguments: Any, tools: dict[str, dict[str, Any] | None]
) -> tuple[str, str] | None:
    if not name:
        return "unknown_tool", "a tool call without a function name"
    if tools and name not in tools:
        return "unknown_tool", f"tool {name!r} is not in the request's tools"
    if isinstance(arguments, str):
        return "unparseable_arguments", f"arguments of {name!r} are not JSON: {short(arguments)}"
    if not isinstance(arguments, dict):
        return "unparseable_arguments", f"arguments of {name!r} are not a JSON object"
    schema = tools.get(name) if tools else None
    error = schema_error(schema, arguments) if schema else None
    return ("invalid_arguments", f"{name}: {error}") if error else None


def _calls(message: dict[str, Any]) -> list[Any]:
    calls = message.get("tool_calls") or []
    return calls if isinstance(calls, list) else [calls]


def calls_from_label(label: str) -> list[Any]:
    """Tool calls from a label string: {"name","arguments"}, {"type": "tool_call"|"text", ...},
    an assistant message with "tool_calls", or a list of calls. Anything else is a text answer."""
    try:
        value = json.loads(label)
    except ValueError:
        return []
    if isinstance(value, list):
        return value
    if not isinstance(value, dict) or value.get("type") == "text":
        return []
    if "tool_calls" in value:
        return _calls(value)
    return [value] if ("name" in value or "function" in value) else []


@functools.lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
