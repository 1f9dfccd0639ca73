"""What the schema-tool student reads and learns, in plain Python (no torch): the conversation as
one context string, each offered function as text, one question per parameter, where a gold value
sits in the context, and how a copied span becomes a value of the parameter's type.

The student never keeps a closed set of function names: everything it scores comes from the
request's own `tools`, so a function never seen in training is handled like any other.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from flywheel.records import Example, message_text
from flywheel.schemas import json_types
from flywheel.train.formatting import render_tool_calls

# The "reply in text" option is scored like a function, so "no call" competes with every tool.
TEXT_OPTION = "reply in text: answer the user directly without calling any function"
# Parameter answer modes (the mode head): absent (omit an optional parameter), a copied span,
# or a boolean literal, which rarely appears verbatim in a request.
ABSENT, SPAN, TRUE, FALSE = 0, 1, 2, 3
MODES = 4
NUMBER_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+")
NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "fifty": 50, "hundred": 100, "thousand": 1000, "once": 1, "twice": 2,
    "single": 1, "double": 2, "triple": 3, "dozen": 12, "half": 0.5,
}  # fmt: skip
WORD_RE = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
LIST_SPLIT_RE = re.compile(r"\s*(?:,|;|\band\b|\bor\b|&)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    description: str
    properties: dict[str, dict[str, Any]]
    required: tuple[str, ...]


def offered_functions(tools: list[dict[str, Any]] | None) -> list[Function]:
    """The request's functions, in order, one per name; tools without a usable name are skipped."""
    out: dict[str, Function] = {}
    for tool in tools or []:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name = function.get("name")
        if not isinstance(name, str) or not name or name in out:
            continue
        parameters = function.get("parameters") if isinstance(function.get("parameters"), dict) else {}
        properties = parameters.get("properties") if isinstance(parameters.get("properties"), dict) else {}
        required = parameters.get("required") if isinstance(parameters.get("required"), list) else []
        out[name] = Function(
            name=name,
            description=str(function.get("description") or ""),
            properties={k: v if isinstance(v, dict) else {} for k, v in properties.items()},
            required=tuple(r for r in required if isinstance(r, str)),
        )
    return list(out.values())


def readable(name: str) -> str:
    """`math.hypot` / `get_order_details` -> words a sentence encoder knows."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return re.sub(r"[._\-/]+", " ", spaced).strip().lower()


def function_text(function: Function, limit: int = 360) -> str:
    """The function as the chooser reads it: name, the start of its description, parameter names.
    Short on purpose: every training step encodes it once per conversation and option."""
    params = ", ".join(readable(k) for k in function.properties)
    return f"{readable(function.name)}. {function.description[:200]} Parameters: {params}"[:limit]


def context_text(messages: list[dict[str, Any]]) -> str:
    """The non-system turns, newest last, each prefixed by its role; assistant calls as JSON lines
    and tool results verbatim, so a value can be copied from an earlier call or result."""
    parts = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        text = message_text(message)
        if message.get("tool_calls"):
            calls = render_tool_calls(message["tool_calls"])
            text = f"{text}\n{calls}" if text else calls
        if text:
            parts.append(f"{role}: {text}")
    return "\n".join(parts)


def param_types(prop: dict[str, Any]) -> list[str]:
    raw = prop.get("type")
    names = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []
    found: list[str] = []
    for name in names:
        for kind in json_types(str(name)) or ["string"]:
            if kind not in found and kind != "null":
                found.append(kind)
    return found or ["string"]


def question(name: str, prop: dict[str, Any]) -> str:
    """What the span head is asked for one parameter: its name, description, type and options."""
    text = f"{readable(name)} ({'/'.join(param_types(prop))}): {str(prop.get('description') or '')[:160]}"
    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        text += " options: " + " | ".join(str(v) for v in enum[:20])
    default = prop.get("default")
    if default is not None:
        text += f" default: {default}"
    return text


def gold_calls(example: Example) -> list[tuple[str, dict[str, Any]]]:
    """(name, arguments) of the target's tool calls; [] for a text reply."""
    calls = []
    for call in example.target.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = orjson.loads(arguments) if arguments.strip() else {}
            except orjson.JSONDecodeError:
                arguments = {}
        calls.append((str(function.get("name")), arguments if isinstance(arguments, dict) else {}))
    return calls


def number_value(text: str) -> float | None:
    """The first number written in `text` (digits with thousands separators, or a number word)."""
    match = NUMBER_RE.search(text)
    if match is not None:
        try:
            return float(match.group().replace(",", ""))
        except ValueError:
            return None
    word = WORD_RE.search(text)
    return float(NUMBER_WORDS[word.group(1).lower()]) if word else None


def _number_spans(context: str) -> list[tuple[int, int, float]]:
    spans = []
    for match in NUMBER_RE.finditer(context):
        try:
            spans.append((match.start(), match.end(), float(match.group().replace(",", ""))))
        except ValueError:
            continue
    words = WORD_RE.finditer(context)
    spans += [(m.start(), m.end(), float(NUMBER_WORDS[m.group(1).lower()])) for m in words]
    return sorted(spans)


def locate_value(context: str, value: Any) -> tuple[int, int] | None:
    """Where the gold value is written in the context (the last mention: the newest turn wins)."""
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return None
    if isinstance(value, int | float):
        hits = [(s, e) for s, e, v in _number_spans(context) if abs(v - value) < 1e-9]
        if not hits and 0 < abs(value) < 1:  # a rate written as a percentage
            hits = [(s, e + 1) for s, e, v in _number_spans(context)
                    if context[e : e + 1] == "%" and abs(v / 100 - value) < 1e-9]  # fmt: skip
        return hits[-1] if hits else None
    if isinstance(value, list):
        found = [locate_value(context, v) for v in value]
        if not found or any(f is None for f in found):
            return None
        start, end = min(f[0] for f in found if f), max(f[1] for f in found if f)
        return (start, end) if end - start <= 300 else None
    text = str(value).strip()
    if not text:
        return None
    position = context.lower().rfind(text.lower())
    return (position, position + len(text)) if position >= 0 else None


def coerce_value(span: str, prop: dict[str, Any]) -> Any:
    """A copied span as a value of the parameter's type (enum: the closest option); None if not."""
    span = span.strip().strip("\"'`")
    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        return closest_option(span, enum)
    types = param_types(prop)
    kind = types[0]
    if kind == "array":
        items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
        parts = [p for p in LIST_SPLIT_RE.split(span.strip("[]() ")) if p.strip("[]() ")]
        values = [coerce_value(p.strip("[]() "), items) for p in parts]
        return [v for v in values if v is not None] or None
    if kind in ("integer", "number"):
        number = number_value(span)
        if number is None:
            return None
        if span.endswith("%") and kind == "number":
            number /= 100
        return int(number) if kind == "integer" and number == int(number) else number
    if kind == "boolean":
        return span.lower() in ("true", "yes", "1")
    return span or None


def closest_option(span: str, options: list[Any]) -> Any:
    texts = [str(o).lower() for o in options]
    low = span.lower()
    if low in texts:
        return options[texts.index(low)]
    contained = [o for o, t in zip(options, texts, strict=True) if t and (t in low or low in t)]
    if contained:
        return contained[0]
    scores = [difflib.SequenceMatcher(None, low, t).ratio() for t in texts]
    return options[scores.index(max(scores))]


def gold_mode(value: Any) -> int:
    if isinstance(value, bool):
        return TRUE if value else FALSE
    return SPAN
