"""OpenAI chat-completions request/response pairs as JSONL (plain or gzip).

One JSON object per line: {"request": <chat.completions.create payload>, "response": <ChatCompletion
| list of chat.completion.chunk | {"error": ...}>} plus optional "timestamp", "client_id",
"workload_id", "latency_ms", "feedback", "cost_usd" and "metadata".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.base import (
    Item,
    ReadContext,
    RecordError,
    connector,
    ensure_serializable,
    iter_lines,
    parse_json_line,
    raw_text,
    rows_reader,
)
from connectors.openai_fast import fast_row
from connectors.openai_format import model_name, normalize_completion, normalize_request, normalize_schemas
from flywheel.records import Interaction, Rejected, Row, to_timestamp

NAME = "openai"


@connector(NAME, suffixes=(".jsonl", ".jsonl.gz", ".json"), splittable=True)
def read_openai_jsonl(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """OpenAI chat-completions request/response pairs, one per line."""
    yield from read_json_lines(path, ctx, NAME, _from_document)


def read_json_lines(path: Path, ctx: ReadContext, source: str, build: Any) -> Iterator[Item]:
    """Drive a per-document builder over a JSONL file, turning every failure into a Rejected."""
    for ref, line in iter_lines(path, source, ctx.byte_range, ctx.first_line):
        yield line if isinstance(line, Rejected) else item_from_line(ref, line, ctx, source, build)


def item_from_line(ref: str, line: bytes, ctx: ReadContext, source: str, build: Any) -> Item:
    """One JSONL line -> Interaction, or a Rejected that says precisely why not."""
    document = parse_json_line(ref, line, source)
    if isinstance(document, Rejected):
        return document
    try:
        return ensure_serializable(build(document, ref, ctx))
    except RecordError as exc:
        return Rejected(source, ref, exc.reason, raw_text(line), str(exc))


@rows_reader(NAME)
def read_openai_rows(path: Path, ctx: ReadContext) -> Iterator[Row | Item]:
    """Ingestion's fast path: warehouse rows built straight from the lines.

    A line the fast path does not take (see connectors/openai_fast.py) is read by the general path,
    which also names what is wrong with it, so both paths give the same result for every line.
    """
    for ref, line in iter_lines(path, NAME, ctx.byte_range, ctx.first_line):
        if isinstance(line, Rejected):
            yield line
            continue
        row = fast_row(line, ref, ctx, NAME)
        yield row if row is not None else item_from_line(ref, line, ctx, NAME, _from_document)


def _from_document(doc: dict[str, Any], ref: str, ctx: ReadContext) -> Interaction:
    if "request" not in doc:
        raise RecordError("wrong_schema", "no 'request' key (not an OpenAI request/response pair)")
    return build_interaction(doc, doc["request"], doc.get("response"), ref, ctx, NAME)


def build_interaction(
    doc: dict[str, Any], request_payload: Any, raw_response: Any, ref: str, ctx: ReadContext, source: str
) -> Interaction:
    """Assemble a canonical Interaction from a request payload, a raw response and envelope keys."""
    request = normalize_request(request_payload)
    completion = normalize_completion(raw_response)
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    request, metadata = normalize_schemas(request, metadata)
    workload_id = doc.get("workload_id") or metadata.get("workload_id") or ctx.workload_id
    if not workload_id or not isinstance(workload_id, str):
        raise RecordError("missing_workload_id", "no workload_id in the record and none given")
    model = model_name(completion.model) or model_name(request.get("model"))
    try:
        ts = to_timestamp(_first(doc, "timestamp", "ts", "created_at") or _created(raw_response))
    except (ValueError, OverflowError, OSError) as exc:
        raise RecordError("bad_timestamp", str(exc)) from exc
    cost = _float(doc.get("cost_usd"))
    if cost is None and ctx.price_fn is not None:
        cost = ctx.price_fn(model, completion.prompt_tokens, completion.completion_tokens)
    client = _first(doc, "client_id") or metadata.get("client_id") or request_payload.get("user")
    return Interaction(
        workload_id=workload_id,
        request=request,
        response=completion.response,
        source=source,
        source_ref=ref,
        client_id=str(client) if client is not None else None,
        ts=ts,
        model=model,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_ms=_float(_first(doc, "latency_ms")),
        cost_usd=cost,
        logprobs=completion.logprobs,
        feedback=doc.get("feedback"),
        status=completion.status,
        metadata=metadata,
    )


def _first(doc: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if doc.get(key) is not None:
            return doc[key]
    return None


def _created(raw_response: Any) -> Any:
    if isinstance(raw_response, dict):
        return raw_response.get("created")
    if isinstance(raw_response, list) and raw_response and isinstance(raw_response[0], dict):
        return raw_response[0].get("created")
    return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise RecordError("bad_field", f"not a number: {value!r}") from exc
