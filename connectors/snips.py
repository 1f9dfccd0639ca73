"""Snips-style annotated utterances (the sonos/nlu-benchmark span format) as extraction traffic.

A file is one JSON document {"<Intent>": [{"data": [{"text": "..."}, {"text": "...", "entity": "<slot>"},
...]}, ...], ...}. The utterance is the concatenation of the pieces' text; a piece with "entity" is a
slot span. Each utterance becomes one interaction whose request is [system?, user: utterance] and
whose answer is the JSON object

    {"intent": "<Intent>", "slots": {"<slot>": "<value>", "<repeated slot>": ["<v1>", "<v2>"]}}

Slot values are the span texts with outer whitespace trimmed; a slot that occurs more than once in an
utterance becomes a list of its values in utterance order. `ctx.mapping` may carry `system_prompt`
(a literal system message for every request) and `encoding` ("auto": UTF-8, falling back to Latin-1
for a file that is not valid UTF-8, as one of the public Snips files is).

source_ref is "file:<Intent>[index]" (0-based within the intent's list). An utterance that does not
fit the format (no "data" list, a piece without string "text", a non-string "entity", an empty
utterance or an empty slot value) is quarantined as "invalid_snips_item" with the reason; a file that
is not a JSON object of lists is a SourceError naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from connectors.base import (
    Item,
    ReadContext,
    SourceError,
    connector,
    ensure_serializable,
    open_binary,
    raw_text,
)
from flywheel.records import Interaction, Rejected

SOURCE = "snips"
INVALID = "invalid_snips_item"


class SnipsFormatError(ValueError):
    """One utterance that does not fit the span format; the message says what and where."""


@dataclass(frozen=True, slots=True)
class Utterance:
    """One annotated utterance: where it came from, its text and its answer."""

    ref: str
    intent: str
    text: str
    slots: dict[str, str | list[str]]

    def answer(self) -> dict[str, Any]:
        return {"intent": self.intent, "slots": dict(self.slots)}

    def answer_json(self) -> str:
        return orjson.dumps(self.answer()).decode()


def parse_pieces(pieces: Any, intent: str) -> tuple[str, dict[str, str | list[str]]]:
    """(utterance text, slots) from a list of span pieces; SnipsFormatError says what is wrong."""
    if not isinstance(pieces, list) or not pieces:
        raise SnipsFormatError('"data" must be a non-empty list of pieces')
    text_parts: list[str] = []
    slots: dict[str, str | list[str]] = {}
    for position, piece in enumerate(pieces):
        if not isinstance(piece, dict) or not isinstance(piece.get("text"), str):
            raise SnipsFormatError(f'piece {position} must be an object with a string "text"')
        text_parts.append(piece["text"])
        entity = piece.get("entity")
        if entity is None:
            continue
        if not isinstance(entity, str) or not entity.strip():
            raise SnipsFormatError(f'piece {position}: "entity" must be a non-empty string')
        value = piece["text"].strip()
        if not value:
            raise SnipsFormatError(f"piece {position}: slot {entity!r} has an empty value")
        _add_slot(slots, entity.strip(), value)
    text = "".join(text_parts).strip()
    if not text:
        raise SnipsFormatError("the utterance is empty")
    return text, slots


def _add_slot(slots: dict[str, str | list[str]], name: str, value: str) -> None:
    current = slots.get(name)
    if current is None:
        slots[name] = value
    elif isinstance(current, list):
        current.append(value)
    else:
        slots[name] = [current, value]


def load_document(path: Path, encoding: str = "auto") -> dict[str, list[Any]]:
    """The whole file as {intent: [items]}; SourceError naming the file when it is not that."""
    with open_binary(path) as handle:
        data = handle.read()
    text = _decode(path, data, encoding)
    if not text.strip():
        return {}  # an empty export holds no utterance, like an empty JSONL file
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{path}: not a JSON document ({exc})") from None
    if not isinstance(document, dict) or not document:
        raise SourceError(f"{path}: expected a JSON object {{intent: [utterances]}}, got {_kind(document)}")
    for intent, items in document.items():
        if not isinstance(items, list):
            raise SourceError(f"{path}: intent {intent!r} must map to a list, got {_kind(items)}")
    return document


def _decode(path: Path, data: bytes, encoding: str) -> str:
    if encoding not in ("auto", "utf-8"):
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise SourceError(f"{path}: cannot decode as {encoding}: {exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if encoding == "utf-8":
            raise SourceError(f"{path}: not UTF-8 (byte {exc.start}); set mapping encoding") from None
        return data.decode("latin-1")


def _kind(value: Any) -> str:
    return "an empty object" if value == {} else type(value).__name__


def iter_utterances(path: Path, encoding: str = "auto") -> Iterator[Utterance | Rejected]:
    """Every utterance of a file in order, or a Rejected (file:<Intent>[index]) saying why not."""
    for intent, items in load_document(path, encoding).items():
        for index, item in enumerate(items):
            ref = f"{path}:{intent}[{index}]"
            try:
                pieces = item.get("data") if isinstance(item, dict) else None
                if pieces is None:
                    raise SnipsFormatError('an utterance must be an object with a "data" list')
                text, slots = parse_pieces(pieces, intent)
            except SnipsFormatError as exc:
                raw = raw_text(orjson.dumps(item, default=str))
                yield Rejected(SOURCE, ref, INVALID, raw, f"{ref}: {exc}")
                continue
            yield Utterance(ref, intent, text, slots)


@connector("snips", suffixes=(".json",))
def read_snips(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """Snips-style span-annotated utterances -> extraction interactions (intent + slots JSON)."""
    system = ctx.mapping.get("system_prompt")
    encoding = ctx.mapping.get("encoding") or "auto"
    workload_id = ctx.workload_id
    if not workload_id:
        raise SourceError(f"{path}: snips files carry no workload id; pass one (-w / the config)")
    for item in iter_utterances(path, encoding):
        if isinstance(item, Rejected):
            yield item
            continue
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": item.text}
        ]
        yield ensure_serializable(
            Interaction(
                workload_id=str(workload_id),
                request={"messages": messages},
                response={
                    "message": {"role": "assistant", "content": item.answer_json()},
                    "finish_reason": "stop",
                },
                source=SOURCE,
                source_ref=item.ref,
                metadata={"intent": item.intent},
            )
        )
