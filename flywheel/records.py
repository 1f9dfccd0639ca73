"""Canonical record types shared by connectors, the warehouse and every stage.

An `Interaction` is one LLM call: the chat.completions request payload and the assistant's answer in
canonical form. A `Rejected` is an input unit (usually a line) that could not become an interaction;
it goes to quarantine with a reason so nothing is lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import orjson

INTERACTION_COLUMNS = (
    "id",
    "workload_id",
    "client_id",
    "source",
    "source_ref",
    "ts",
    "model",
    "request",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "cost_usd",
    "logprobs",
    "feedback",
    "status",
    "metadata",
    "batch_id",
    "ingested_at",
)


@dataclass(slots=True)
class Interaction:
    """One logged LLM call in canonical form.

    request: the chat.completions.create payload (messages, tools, response_format, params).
    response: {"message": {"role": "assistant", "content"?, "tool_calls"?}, "finish_reason"} for a
    completed call, or {"error": {...}} for a failed one (then status is "error").
    """

    workload_id: str
    request: dict[str, Any]
    response: dict[str, Any]
    source: str
    source_ref: str
    client_id: str | None = None
    ts: datetime | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    logprobs: Any = None
    feedback: Any = None
    status: str = "ok"
    metadata: dict[str, Any] = field(default_factory=dict)
    _encoded: tuple[bytes, bytes] | None = field(default=None, repr=False, compare=False)

    def canonical_json(self) -> tuple[bytes, bytes]:
        """(request, response) as canonical JSON; computed once, since ids and storage both need it."""
        if self._encoded is None:
            self._encoded = (canonical_dumps(self.request), canonical_dumps(self.response))
        return self._encoded

    @property
    def id(self) -> str:
        request, response = self.canonical_json()
        return interaction_id(self.workload_id, request, response)

    def row(self) -> Row:
        """The warehouse row (see `interaction_row`)."""
        request, response = self.canonical_json()
        return interaction_row(
            self.workload_id,
            self.client_id,
            self.source,
            self.source_ref,
            self.ts,
            self.model,
            request,
            response,
            self.prompt_tokens,
            self.completion_tokens,
            self.latency_ms,
            self.cost_usd,
            self.logprobs,
            self.feedback,
            self.status,
            self.metadata,
        )


@dataclass(slots=True)
class Rejected:
    """An input unit that could not be read as an interaction."""

    source: str
    source_ref: str
    reason: str
    raw: str
    detail: str = ""


CANONICAL_JSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS  # orjson options of canonical_dumps


def canonical_dumps(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8. Used for ids and storage."""
    return orjson.dumps(value, option=CANONICAL_JSON)


def interaction_id(workload_id: str, request_json: bytes, response_json: bytes) -> str:
    """sha256 of workload id, request and response joined by NUL bytes, as hex."""
    digest = _workload_prefix(workload_id).copy()  # the prefix hashed once per workload
    digest.update(request_json)
    digest.update(b"\x00")
    digest.update(response_json)
    return digest.hexdigest()


@lru_cache(maxsize=256)
def _workload_prefix(workload_id: str) -> Any:
    return hashlib.sha256(workload_id.encode() + b"\x00")


Row = tuple[Any, ...]  # one interactions row: INTERACTION_COLUMNS up to "metadata"


def interaction_row(
    workload_id: str,
    client_id: str | None,
    source: str,
    source_ref: str,
    ts: datetime | None,
    model: str | None,
    request_json: bytes,
    response_json: bytes,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    latency_ms: float | None,
    cost_usd: float | None,
    logprobs: Any,
    feedback: Any,
    status: str,
    metadata: dict[str, Any],
) -> Row:
    """What ingestion stores for one interaction: its content id first, JSON columns as UTF-8 bytes.

    The one place that lays out a row, for `Interaction.row` and for connectors that build rows
    straight from their input (the fast path), so both produce the same values. Optional JSON
    columns keep their keys in the given order (only request and response are canonical).
    """
    return (
        interaction_id(workload_id, request_json, response_json),
        workload_id,
        client_id,
        source,
        source_ref,
        ts,
        model,
        request_json,
        response_json,
        prompt_tokens,
        completion_tokens,
        latency_ms,
        cost_usd,
        None if logprobs is None else orjson.dumps(logprobs, option=orjson.OPT_NON_STR_KEYS),
        None if feedback is None else orjson.dumps(feedback, option=orjson.OPT_NON_STR_KEYS),
        status,
        orjson.dumps(metadata, option=orjson.OPT_NON_STR_KEYS) if metadata else None,
    )


def quarantine_id(source_ref: str, raw: str, reason: str) -> str:
    return hashlib.sha256(f"{source_ref}\x00{reason}\x00{raw}".encode(errors="replace")).hexdigest()


_EPOCH = datetime(1970, 1, 1)
MAX_EPOCH_SECONDS = 10**11  # to_timestamp reads larger numbers as epoch milliseconds


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_timestamp(value: Any) -> datetime | None:
    """Epoch seconds/ms or ISO-8601 -> naive UTC datetime; None when absent. Raises on garbage."""
    if value.__class__ is int and 0 <= value <= MAX_EPOCH_SECONDS:
        return _EPOCH + timedelta(0, value)  # exact, like fromtimestamp, at a third of the cost
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    if isinstance(value, str):
        text = value.strip()
        try:
            return to_timestamp(float(text))
        except ValueError:
            pass
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    raise ValueError(f"not a timestamp: {value!r}")


def message_text(message: dict[str, Any] | None) -> str:
    """The plain text of a chat message's content (string or list of text parts)."""
    if not message:
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(str(p) for p in parts)
    return ""


@dataclass(slots=True)
class Example:
    """One training/evaluation example of a dataset snapshot, as students and metrics see it.

    messages: the (PII-scrubbed, prompt-pruned) chat messages the student receives.
    target: the assistant message to learn/compare: {"role": "assistant", "content"?, "tool_calls"?}.
    label: the task-level answer as a string (class label, canonical JSON for extraction, canonical
    tool-call JSON for tool calls, text for chat); gold: a ground-truth label when the source had one.
    request: the raw request as the application sent it (evaluation and serving); a model bundle
    turns it into the student's input itself, so `messages` are then the raw messages.
    """

    example_id: str
    workload_id: str
    messages: list[dict[str, Any]]
    target: dict[str, Any]
    label: str | None = None
    gold: str | None = None
    slice: str | None = None
    split: str | None = None
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    interaction_id: str | None = None
    synthetic: bool = False
    weight: float = 1.0
    request: dict[str, Any] | None = None  # the raw logged request, when the example carries it


@dataclass(slots=True)
class Prediction:
    """What a model answered for one Example: an assistant message plus how sure and how costly."""

    message: dict[str, Any]
    confidence: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    invalid_reason: str | None = None  # set by a model bundle: why the answer must not be served
    cost_usd: float | None = None  # set when the cost is known per call (a replayed teacher's log)


class Predictor(Protocol):
    """Anything that answers examples: a trained student, the teacher, a replay of logged answers."""

    name: str

    def predict(self, examples: list[Example]) -> list[Prediction]: ...
