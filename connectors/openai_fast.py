"""Ingestion's fast path for OpenAI request/response lines: the warehouse row straight from the bytes.

The general path (`openai_jsonl.item_from_line`) accepts every shape a log can take and names what
is wrong with a bad line, through layers of small functions and objects that cost more than parsing
the JSON. Nearly all production lines have one plain shape: a request with messages, a
ChatCompletion (tool calls allowed) or an error. `fast_row` handles exactly that shape in one pass
and returns the row the general path would store, value for value; for anything else it returns
None and the line takes the general path. tests/connectors/test_openai_fast.py holds the two equal.
"""

from __future__ import annotations

from typing import Any

import orjson

from connectors.base import ReadContext, RecordError
from connectors.openai_format import REQUEST_PARAMS_DROPPED as _DROPPED
from connectors.openai_format import SCHEMA_PARAMS, normalize_schemas, normalize_tool_calls, token_count
from flywheel.records import CANONICAL_JSON, MAX_EPOCH_SECONDS, Row, interaction_row, to_timestamp


def fast_row(line: bytes, ref: str, ctx: ReadContext, source: str) -> Row | None:
    """The row for a plain line, or None: then the general path decides (and explains)."""
    if not line.isascii():
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if doc.__class__ is not dict:
        return None
    request, raw = doc.get("request"), doc.get("response")
    # normalize_request's checks, for a request without transport-only params
    if request.__class__ is not dict or raw.__class__ is not dict:
        return None
    messages = request.get("messages")
    if messages.__class__ is not list or not messages or not _DROPPED.isdisjoint(request):
        return None
    for message in messages:
        if message.__class__ is not dict or message.get("role").__class__ is not str:
            return None
    if "tools" in request and request["tools"].__class__ is not list:
        return None
    try:
        return _row(doc, request, raw, ref, ctx, source)
    except (RecordError, TypeError, ValueError, OverflowError, OSError):
        # e.g. a bad timestamp, or JSON too deep to write back (request, response or metadata, as
        # ensure_serializable checks): the general path says which
        return None


def _row(
    doc: dict[str, Any], request: dict[str, Any], raw: dict[str, Any], ref: str, ctx: ReadContext, source: str
) -> Row | None:
    completion = _completion(raw)
    metadata = doc.get("metadata")
    if metadata.__class__ is not dict:
        metadata = {}
    if not SCHEMA_PARAMS.isdisjoint(request):  # only requests with schemas pay for their check
        request, metadata = normalize_schemas(request, metadata)
    workload_id = doc.get("workload_id") or metadata.get("workload_id") or ctx.workload_id
    if completion is None or not workload_id or workload_id.__class__ is not str:
        return None
    response, status, logprobs, prompt_tokens, completion_tokens = completion
    model = raw.get("model")
    if model.__class__ is not str or not model:  # model_name(response) or model_name(request)
        model = request.get("model")
        if model.__class__ is not str:
            model = None
    ts = _timestamp(doc, raw)
    cost = doc.get("cost_usd")
    if cost is not None:
        cost = _number(cost)
    if cost is None and ctx.price_fn is not None:
        cost = ctx.price_fn(model, prompt_tokens, completion_tokens)
    client = doc.get("client_id") or metadata.get("client_id")  # no request "user" on this path
    request_json = orjson.dumps(request, option=CANONICAL_JSON)
    response_json = orjson.dumps(response, option=CANONICAL_JSON)
    latency = doc.get("latency_ms")
    return interaction_row(
        workload_id, None if client is None else str(client), source, ref, ts, model, request_json,
        response_json, prompt_tokens, completion_tokens, None if latency is None else _number(latency),
        cost, logprobs, doc.get("feedback"), status, metadata,
    )  # fmt: skip


def _completion(raw: dict[str, Any]) -> tuple[dict[str, Any], str, Any, Any, Any] | None:
    """normalize_completion for one ChatCompletion or error object: (response, status, logprobs,
    prompt_tokens, completion_tokens); None for anything else (streamed chunks, odd shapes)."""
    if raw.get("error"):
        error = raw["error"]
        if error.__class__ is not dict:
            return None
        return (
            {"error": {k: error.get(k) for k in ("message", "type", "code") if k in error}},
            "error",
            None,
            None,
            None,
        )
    choices = raw.get("choices")
    if raw.get("object") == "chat.completion.chunk" or choices.__class__ is not list or not choices:
        return None
    choice = choices[0]
    message = choice.get("message") if choice.__class__ is dict else None
    if message.__class__ is not dict:
        return None
    content = message.get("content")
    if content is not None and content.__class__ is not str and content.__class__ is not list:
        return None
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if message.get("tool_calls"):
        out["tool_calls"] = normalize_tool_calls(message["tool_calls"])
    if message.get("refusal"):
        out["refusal"] = message["refusal"]
    response = {"message": out, "finish_reason": choice.get("finish_reason")}
    usage = raw.get("usage")
    if usage.__class__ is not dict:
        return response, "ok", choice.get("logprobs") or None, None, None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return response, "ok", choice.get("logprobs") or None, token_count(prompt), token_count(completion)


def _timestamp(doc: dict[str, Any], raw: dict[str, Any]) -> Any:
    """Microseconds since the epoch for whole epoch seconds (Arrow takes them as the datetime
    to_timestamp would give, without building one), else to_timestamp's datetime."""
    value = doc.get("timestamp")
    if value is None:
        value = doc.get("ts")
        if value is None:
            value = doc.get("created_at")
    if not value:
        value = raw.get("created")
    if value.__class__ is int and 0 <= value <= MAX_EPOCH_SECONDS:
        return value * 1_000_000
    return to_timestamp(value)


def _number(value: Any) -> float | None:
    """openai_jsonl._float; a value it rejects raises (and the general path names it)."""
    if isinstance(value, bool):
        return None
    return float(value)
