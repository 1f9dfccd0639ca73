"""Normalise OpenAI chat-completions payloads (requests, completions, streamed chunks, errors).

Shared by every connector whose logs carry the raw OpenAI objects (OpenAI JSONL, Batch API output,
NVIDIA Data Flywheel documents, Flywheel's own spool).
"""

from __future__ import annotations

from typing import Any

import orjson

from connectors.base import RecordError
from flywheel.schemas import MAX_CHANGES_KEPT, SCHEMA_CHANGES_KEY, InvalidSchema, normalize_request_schemas

REQUEST_PARAMS_DROPPED = frozenset(("stream", "stream_options", "n", "user"))
SCHEMA_PARAMS = frozenset(("tools", "functions", "response_format"))  # request keys carrying schemas
TOKEN_LIMIT = 2**31  # token counts are stored as INTEGER


def normalize_request(payload: Any) -> dict[str, Any]:
    """Validate a chat.completions.create payload and drop transport-only params."""
    if not isinstance(payload, dict):
        raise RecordError("bad_request", f"request must be an object, got {type(payload).__name__}")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RecordError("bad_request", "request.messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RecordError("bad_request", f"request.messages[{index}] has no role")
    if REQUEST_PARAMS_DROPPED.isdisjoint(payload):  # the usual case: a plain copy is cheaper
        request = payload.copy()
    else:
        request = {k: v for k, v in payload.items() if k not in REQUEST_PARAMS_DROPPED}
    if "tools" in request and not isinstance(request["tools"], list):
        raise RecordError("bad_request", "request.tools must be a list")
    return request


def normalize_schemas(
    request: dict[str, Any], metadata: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(request, metadata) with the request's tool and response schemas in standard JSON Schema and
    what changed noted in the metadata; both unchanged (the same objects) when nothing needed a change.
    A schema that stays invalid is a bad record: invalid_tool_schema / invalid_response_schema."""
    if SCHEMA_PARAMS.isdisjoint(request):
        return request, metadata
    try:
        request, changes = normalize_request_schemas(request)
    except InvalidSchema as exc:
        raise RecordError(exc.reason, str(exc)) from None
    if changes:
        metadata = {**metadata, SCHEMA_CHANGES_KEY: changes[:MAX_CHANGES_KEPT]}
    return request, metadata


def normalize_tool_calls(calls: Any) -> list[dict[str, Any]]:
    """Canonical tool calls: arguments always a JSON string (objects are serialised)."""
    if not isinstance(calls, list):
        raise RecordError("bad_response", "tool_calls must be a list")
    out = []
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RecordError("bad_response", f"tool_calls[{index}] has no function.name")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = _json_text(arguments)
        out.append(
            {
                "id": call.get("id") or f"call_{index}",
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
        )
    return out


def normalize_message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise RecordError("bad_response", "choices[0].message must be an object")
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if out["content"] is not None and not isinstance(out["content"], str | list):
        raise RecordError("bad_response", "message.content must be a string, list or null")
    if message.get("tool_calls"):
        out["tool_calls"] = normalize_tool_calls(message["tool_calls"])
    if message.get("refusal"):
        out["refusal"] = message["refusal"]
    return out


class Completion:
    """A normalised completion: canonical response plus the metadata around it."""

    __slots__ = ("completion_tokens", "logprobs", "model", "prompt_tokens", "response", "status")

    def __init__(
        self,
        response: dict[str, Any],
        status: str,
        model: str | None = None,
        usage: dict[str, Any] | None = None,
        logprobs: Any = None,
    ) -> None:
        self.response = response
        self.status = status
        self.model = model
        usage = usage if isinstance(usage, dict) else {}
        self.prompt_tokens = token_count(usage.get("prompt_tokens", usage.get("input_tokens")))
        self.completion_tokens = token_count(usage.get("completion_tokens", usage.get("output_tokens")))
        self.logprobs = logprobs


def normalize_completion(raw: Any) -> Completion:
    """A ChatCompletion, a list of streamed chunks, or an error object -> Completion."""
    if raw is None:
        raise RecordError("missing_response", "record has no response")
    if isinstance(raw, list):
        return reassemble_stream(raw)
    if not isinstance(raw, dict):
        raise RecordError("bad_response", f"response must be an object, got {type(raw).__name__}")
    if raw.get("error"):
        return Completion({"error": _error_payload(raw["error"])}, "error", raw.get("model"))
    if raw.get("object") == "chat.completion.chunk":
        return reassemble_stream([raw])
    choices = raw.get("choices")
    if not isinstance(choices, list) or not choices:
        raise RecordError("bad_response", "response.choices must be a non-empty list")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise RecordError("bad_response", "response.choices[0] must be an object")
    response = {
        "message": normalize_message(choice.get("message")),
        "finish_reason": choice.get("finish_reason"),
    }
    logprobs = choice.get("logprobs")
    return Completion(response, "ok", raw.get("model"), raw.get("usage"), logprobs or None)


def reassemble_stream(chunks: list[Any]) -> Completion:
    """Merge chat.completion.chunk deltas (content and indexed tool-call fragments) into one."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish_reason = model = usage = None
    logprob_tokens: list[Any] = []
    for position, chunk in enumerate(chunks):
        if not isinstance(chunk, dict):
            raise RecordError("bad_response", f"stream chunk {position} is not an object")
        if chunk.get("error"):
            return Completion({"error": _error_payload(chunk["error"])}, "error", chunk.get("model"))
        model = chunk.get("model") or model
        usage = chunk.get("usage") or usage
        for choice in _list(chunk.get("choices"), f"stream chunk {position} choices"):
            if not isinstance(choice, dict):
                raise RecordError(
                    "bad_response", f"stream chunk {position} has a choice that is not an object"
                )
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise RecordError("bad_response", f"stream chunk {position} delta is not an object")
            if isinstance(delta.get("content"), str):
                content.append(delta["content"])
            for fragment in _list(delta.get("tool_calls"), f"stream chunk {position} tool_calls"):
                _merge_tool_fragment(calls, fragment)
            finish_reason = choice.get("finish_reason") or finish_reason
            if isinstance(choice.get("logprobs"), dict):
                logprob_tokens.extend(_list(choice["logprobs"].get("content"), "logprobs.content"))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) if content else None}
    if calls:
        message["tool_calls"] = normalize_tool_calls([calls[i] for i in sorted(calls)])
    response = {"message": message, "finish_reason": finish_reason}
    logprobs = {"content": logprob_tokens} if logprob_tokens else None
    return Completion(response, "ok", model, usage, logprobs)


def _merge_tool_fragment(calls: dict[int, dict[str, Any]], fragment: Any) -> None:
    if not isinstance(fragment, dict):
        raise RecordError("bad_response", "stream tool_call fragment is not an object")
    index = fragment.get("index")
    index = len(calls) if index is None else index
    if isinstance(index, bool) or not isinstance(index, int):
        raise RecordError("bad_response", f"stream tool_call index must be an integer, got {index!r:.40}")
    call = calls.setdefault(index, {"id": None, "function": {"name": "", "arguments": ""}})
    call["id"] = fragment.get("id") or call["id"]
    function = fragment.get("function") or {}
    if not isinstance(function, dict) or not isinstance(function.get("name") or "", str):
        raise RecordError("bad_response", "stream tool_call function must be an object with a string name")
    call["function"]["name"] += function.get("name") or ""
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        call["function"]["arguments"] += arguments
    elif arguments is not None:
        call["function"]["arguments"] = _json_text(arguments)


def _list(value: Any, what: str) -> list[Any]:
    """An optional list field of a stream chunk: absent -> [], anything but a list -> bad_response."""
    if not value:
        return []
    if not isinstance(value, list):
        raise RecordError("bad_response", f"{what} must be a list, got {type(value).__name__}")
    return value


def _json_text(value: Any) -> str:
    """Tool-call arguments given as an object -> JSON text; too deep to write back is a bad record."""
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:  # orjson.JSONEncodeError: nesting over 254 levels
        raise RecordError("unserializable", f"tool-call arguments cannot be written as JSON: {exc}") from exc


def _error_payload(error: Any) -> dict[str, Any]:
    if isinstance(error, dict):
        return {k: error.get(k) for k in ("message", "type", "code") if k in error}
    return {"message": str(error)}


def token_count(value: Any) -> int | None:
    """A token count, or None where there is none that fits the warehouse's INTEGER columns."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -TOKEN_LIMIT <= number < TOKEN_LIMIT else None


def model_name(value: Any) -> str | None:
    """A logged "model" as a name: anything but a string (a list, a number) is no name."""
    return value if isinstance(value, str) else None
