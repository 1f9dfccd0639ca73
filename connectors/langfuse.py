"""Langfuse observation exports: a JSON array (or {"data": [...]}), JSONL (plain or gzip), or Parquet.

Only observations of type GENERATION are LLM calls. Other observation types (SPAN, EVENT, AGENT,
TOOL, ...) are the trace's scaffolding, not traffic: they are NOT input units for our accounting and
yield nothing. The one-item-per-unit rule therefore reads, for this connector: every GENERATION
observation, and every line/element/row that is not a well-formed observation with a string "type"
(unparseable, not an object, no type), yields exactly one item.

Fields used: input (a list of messages, {"messages": [...], "tools": ...}, or a string -> one user
message), output (an assistant message, a string, or a ChatCompletion-like dict), model,
modelParameters (merged into the request), usageDetails / usage (input/output or
promptTokens/completionTokens), startTime/endTime (latency_ms = end - start), completionStartTime
(time to first token, kept in metadata), level/statusMessage (level ERROR -> status "error"),
calculatedTotalCost / costDetails.total, traceId, id, metadata, userId -> client_id. The workload is
metadata.workload_id, else ctx.workload_id.

source_ref: "file:line" for JSONL, "file:#index" (0-based) for array elements, "file:row N"
(1-based) for Parquet rows. A JSON array is loaded whole (no streaming JSON parser is installed);
JSONL streams line by line and Parquet by record batches. Parquet exports often hold nested fields
(input, output, metadata, ...) as JSON text; those are decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from connectors.base import (
    Item,
    ReadContext,
    RecordError,
    SourceError,
    connector,
    ensure_serializable,
    iter_lines,
    open_binary,
    parse_json_line,
    raw_text,
)
from connectors.openai_format import normalize_completion, normalize_request, normalize_schemas
from connectors.tabular import iter_parquet_rows, open_parquet
from flywheel.records import Interaction, Rejected, to_timestamp

NAME = "langfuse"
PARQUET_MAGIC = b"PAR1"
JSON_TEXT_FIELDS = ("input", "output", "metadata", "modelParameters", "usage", "usageDetails", "costDetails")


@connector(NAME, suffixes=(".json", ".json.gz", ".jsonl", ".jsonl.gz", ".parquet"))
def read_langfuse(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """Langfuse GENERATION observations (JSON array, JSONL or Parquet export)."""
    try:
        with open_binary(path) as handle:
            head = handle.read(4096)
    except (EOFError, OSError):
        head = b""  # a broken gzip: iter_lines below reports it as one unreadable_file item
    # The file's name says JSON or JSONL when it can: *.jsonl is always line by line (a line may even
    # read "PAR1" or "[..."); otherwise the PAR1 magic means Parquet, "[" starts a JSON array, and a
    # *.json starting with "{" is one document ({"data": [...]} or a single observation).
    name, start = path.name.lower(), head.lstrip()[:1]
    if head.startswith(PARQUET_MAGIC) and ".json" not in name:
        yield from _read_parquet(path, ctx)
        return
    if ".jsonl" not in name and (start == b"[" or (start == b"{" and ".json" in name)):
        elements = _load_json_document(path, start == b"[")
        if elements is not None:
            for index, element in enumerate(elements):
                yield from _unit(element, f"{path}:#{index}", ctx, json_text=False)
            return
    for ref, line in iter_lines(path, NAME):
        doc = line if isinstance(line, Rejected) else parse_json_line(ref, line, NAME)
        if isinstance(doc, Rejected):
            yield doc
            continue
        yield from _unit(doc, ref, ctx, json_text=False, raw=line)


def _load_json_document(path: Path, is_array: bool) -> list[Any] | None:
    """Elements of a JSON array / {"data": [...]} / single-object file; None means "read it as JSONL"."""
    with open_binary(path) as handle:
        try:
            data = handle.read()
        except (EOFError, OSError) as exc:
            raise SourceError(f"{path}: unreadable: {type(exc).__name__}: {exc}") from None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if is_array:  # a broken array has no units we could count: the whole file is unusable
            raise SourceError(f"{path}: not a valid JSON array: {exc}") from None
        return None  # a '{' file that is not one document: try it line by line
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        return value["data"]  # Langfuse public API list response
    return [value]


def _read_parquet(path: Path, ctx: ReadContext) -> Iterator[Item]:
    for ref, record in iter_parquet_rows(open_parquet(path), path, NAME):
        if isinstance(record, Rejected):
            yield record
        else:
            yield from _unit(record, ref, ctx, json_text=True)


def _unit(doc: Any, ref: str, ctx: ReadContext, json_text: bool, raw: bytes | None = None) -> Iterator[Item]:
    """Zero items for a non-GENERATION observation, else exactly one."""
    if not isinstance(doc, dict):
        yield Rejected(
            NAME, ref, "not_an_object", _raw(doc, raw), f"expected an observation, got {type(doc).__name__}"
        )
        return
    kind = doc.get("type")
    if isinstance(kind, str) and kind.upper() != "GENERATION":
        return  # SPAN, EVENT, ...: not an LLM call and not a unit (see the module docstring)
    try:
        if not isinstance(kind, str):
            raise RecordError("wrong_schema", "observation has no string 'type' (not a Langfuse export?)")
        if json_text:
            doc = {k: _maybe_json(v) if k in JSON_TEXT_FIELDS else v for k, v in doc.items()}
        yield ensure_serializable(_from_observation(doc, ref, ctx))
    except RecordError as exc:
        yield Rejected(NAME, ref, exc.reason, _raw(doc, raw), str(exc))


def _from_observation(doc: dict[str, Any], ref: str, ctx: ReadContext) -> Interaction:
    raw_in = doc.get("input")
    params = doc.get("modelParameters") if isinstance(doc.get("modelParameters"), dict) else {}
    payload: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
    if doc.get("model"):
        payload["model"] = doc["model"]
    if isinstance(raw_in, dict) and "messages" in raw_in:
        payload.update({k: v for k, v in raw_in.items() if v is not None})
    else:
        payload["messages"] = _messages(raw_in)
    request = normalize_request(payload)
    given = doc.get("metadata")
    metadata = dict(given) if isinstance(given, dict) else {"langfuse": given} if given is not None else {}
    request, metadata = normalize_schemas(request, metadata)
    completion = normalize_completion(_raw_response(doc, metadata))
    workload_id = metadata.get("workload_id") or ctx.workload_id
    if not workload_id or not isinstance(workload_id, str):
        raise RecordError("missing_workload_id", "no metadata.workload_id in the observation and none given")
    try:
        start, end, first_token = (
            to_timestamp(doc.get(k)) for k in ("startTime", "endTime", "completionStartTime")
        )
    except (ValueError, OverflowError, OSError) as exc:
        raise RecordError("bad_timestamp", str(exc)) from exc
    ids = (("langfuse_observation_id", "id"), ("langfuse_trace_id", "traceId"), ("langfuse_name", "name"))
    metadata.update({key: doc[field] for key, field in ids if doc.get(field) is not None})
    if start and first_token:
        metadata["ttft_ms"] = _ms(first_token, start)
    prompt_tokens, completion_tokens = _usage(doc)
    model = doc.get("model") if isinstance(doc.get("model"), str) else completion.model
    cost = _number(doc.get("calculatedTotalCost"))
    if cost is None and isinstance(doc.get("costDetails"), dict):
        cost = _number(doc["costDetails"].get("total"))
    if prompt_tokens is None:
        prompt_tokens, completion_tokens = completion.prompt_tokens, completion.completion_tokens
    if cost is None and ctx.price_fn is not None:
        cost = ctx.price_fn(model, prompt_tokens, completion_tokens)
    user = doc.get("userId")
    return Interaction(
        workload_id=workload_id, request=request, response=completion.response, source=NAME,
        source_ref=ref, client_id=str(user) if user is not None else None, ts=start, model=model,
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
        latency_ms=_ms(end, start) if start and end else None, cost_usd=cost,
        logprobs=completion.logprobs, status=completion.status, metadata=metadata,
    )  # fmt: skip


def _messages(raw_in: Any) -> list[Any]:
    if isinstance(raw_in, str):
        return [{"role": "user", "content": raw_in}]
    if isinstance(raw_in, list):
        return raw_in
    if isinstance(raw_in, dict) and "role" in raw_in:
        return [raw_in]
    raise RecordError("bad_request", f"observation input is not messages or text: {type(raw_in).__name__}")


def _raw_response(doc: dict[str, Any], metadata: dict[str, Any]) -> Any:
    """Turn the observation's output into something normalize_completion understands."""
    output = doc.get("output")
    if doc.get("level") == "ERROR":
        return {"error": {"message": str(doc.get("statusMessage") or "Langfuse level ERROR")}}
    if isinstance(output, list) and len(output) == 1:
        output = output[0]  # some SDKs log the choices list
    if isinstance(output, str):
        output = {"role": "assistant", "content": output}
    if output is None:
        raise RecordError("missing_response", "observation has no output")
    if not isinstance(output, dict):
        raise RecordError("bad_response", f"observation output is a {type(output).__name__}")
    if "choices" in output or output.get("error") or output.get("object") == "chat.completion.chunk":
        return output
    if "content" not in output and "tool_calls" not in output:
        raise RecordError("bad_response", "observation output is neither a message nor a completion")
    finish = metadata.get("finish_reason") or ("tool_calls" if output.get("tool_calls") else "stop")
    return {"choices": [{"message": output, "finish_reason": finish}], "model": doc.get("model")}


def _usage(doc: dict[str, Any]) -> tuple[int | None, int | None]:
    for key in ("usageDetails", "usage"):
        usage = doc.get(key)
        if not isinstance(usage, dict):
            continue
        prompt = _first_int(usage, "input", "promptTokens", "prompt_tokens", "input_tokens")
        completion = _first_int(usage, "output", "completionTokens", "completion_tokens", "output_tokens")
        if prompt is not None or completion is not None:
            return prompt, completion
    return None, None


def _first_int(mapping: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = mapping.get(key)
        if value is not None and not isinstance(value, bool):
            try:
                return int(value)
            except (TypeError, ValueError, OverflowError):
                raise RecordError("bad_field", f"usage {key} is not a number: {value!r:.40}") from None
    return None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RecordError("bad_field", f"not a number: {value!r:.40}") from None


def _ms(end: datetime, start: datetime) -> float:
    return (end - start).total_seconds() * 1000


def _maybe_json(value: Any) -> Any:
    """Parquet/CSV exports store nested fields as JSON text; a plain prompt string stays a string."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _raw(doc: Any, raw: bytes | None) -> str:
    """The line as read, else the element/row re-serialised (repr when too deep for orjson)."""
    if raw is not None:
        return raw_text(raw)
    try:
        return raw_text(orjson.dumps(doc, default=str))
    except TypeError:
        return raw_text(repr(doc))
