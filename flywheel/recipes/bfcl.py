"""BFCL (Berkeley Function Calling Leaderboard) items as OpenAI chat-completions logs.

A BFCL directory holds `BFCL_v4_<category>.json` (JSON Lines: {"id", "question": [[messages]],
"function": [schemas]}) and `possible_answer/BFCL_v4_<category>.json` ({"id", "ground_truth":
[{"<function>": {"<param>": [acceptable values]}}]}). Each item becomes one logged call: the request
carries the item's functions as `tools` (their schemas exactly as BFCL wrote them, non-standard types
included: turning those into JSON Schema is ingestion's job), the response is the gold call as
`tool_calls`. The gold call takes the first acceptable value of every argument, where "" means "may
be omitted": an optional argument whose first acceptable value is "" is left out, a required one
takes its first other value. Nested dict answers follow the same rule key by key.

Metadata keeps the BFCL id, the gold calls as `label` (the tool-call label curation reads as gold)
and the full possible answer, so a benchmark can score with BFCL's own "any acceptable value" rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

QUESTIONS = "BFCL_v4_{category}.json"
ANSWERS = "possible_answer/BFCL_v4_{category}.json"
MODEL = "gpt-4o-2024-08-06"
EPOCH = 1_750_000_000  # the first item's logged timestamp; item i is logged i seconds later
OMITTED = ""


class BfclDataError(ValueError):
    """A BFCL file that does not have the expected shape; the message names file and line."""


@dataclass(frozen=True, slots=True)
class BfclItem:
    id: str
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    ground_truth: list[dict[str, Any]]


def load_items(data: Path, category: str = "simple_python") -> list[BfclItem]:
    """The category's items joined with their possible answers by id (in the questions' order)."""
    questions = list(_json_lines(data / QUESTIONS.format(category=category)))
    answers = {doc["id"]: doc for _, doc in _json_lines(data / ANSWERS.format(category=category))}
    items = []
    for where, doc in questions:
        answer = answers.get(doc.get("id"))
        if answer is None:
            raise BfclDataError(f"{where}: no possible answer for id {doc.get('id')!r}")
        turns = doc.get("question")
        if not isinstance(turns, list) or not turns or not isinstance(turns[0], list):
            raise BfclDataError(f"{where}: 'question' must be a list of turns (lists of messages)")
        items.append(BfclItem(doc["id"], turns[0], doc.get("function") or [], answer["ground_truth"]))
    return items


def _json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise BfclDataError(f"{path}: no such file")
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise BfclDataError(f"{path}:{number}: invalid JSON ({exc})") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                raise BfclDataError(f"{path}:{number}: expected an object with a string 'id'")
            yield f"{path}:{number}", doc


def gold_calls(item: BfclItem) -> list[dict[str, Any]]:
    """[{"name", "arguments"}] in order: one value per argument picked from the possible answer."""
    schemas = {f.get("name"): f.get("parameters") or {} for f in item.functions if isinstance(f, dict)}
    calls = []
    for entry in item.ground_truth:
        for name, arguments in entry.items():
            required = schemas.get(name, {}).get("required") or []
            calls.append({"name": name, "arguments": pick_arguments(arguments, required)})
    return calls


def pick_arguments(
    acceptable: dict[str, list[Any]], required: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """One value per argument: the first acceptable one; "" (omit) only where it may be omitted."""
    out: dict[str, Any] = {}
    for name, values in acceptable.items():
        if not isinstance(values, list) or not values:
            continue
        if values[0] == OMITTED and name not in required:
            continue
        value = next((v for v in values if v != OMITTED), OMITTED)
        out[name] = _pick_nested(value)
    return out


def _pick_nested(value: Any) -> Any:
    """A dict answer lists acceptable values per key too: {"k": [v, ...]} -> {"k": v}, also as the
    elements of a list answer ([{"field": ["age"]}] -> [{"field": "age"}])."""
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return pick_arguments(value)
    if isinstance(value, list):
        return [_pick_nested(element) for element in value]
    return value


def to_log(item: BfclItem, index: int, model: str = MODEL) -> dict[str, Any]:
    """One OpenAI request/response log record for the item (the gold call as the logged answer)."""
    calls = gold_calls(item)
    tool_calls = [
        {
            "id": f"call_{index}_{position}",
            "type": "function",
            "function": {"name": call["name"], "arguments": orjson.dumps(call["arguments"]).decode()},
        }
        for position, call in enumerate(calls)
    ]
    message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    tools = [{"type": "function", "function": function} for function in item.functions]
    return {
        "request": {"model": model, "messages": item.messages, "tools": tools},
        "response": {
            "id": f"chatcmpl-{item.id}",
            "object": "chat.completion",
            "created": EPOCH + index,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        },
        "timestamp": EPOCH + index,
        "client_id": "bfcl",
        "metadata": {"bfcl_id": item.id, "label": calls, "possible_answer": item.ground_truth},
    }


def write_logs(data: Path, out: Path, category: str = "simple_python", model: str = MODEL) -> int:
    """Write every item of the category as one JSONL log line to `out`; returns the line count."""
    items = load_items(data, category)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as handle:
        for index, item in enumerate(items):
            handle.write(orjson.dumps(to_log(item, index, model)) + b"\n")
    return len(items)
