"""Builders for realistic OpenAI-shaped payloads and files that the connector tests share."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

from connectors import REGISTRY, ReadContext
from flywheel.records import Interaction, Rejected

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat_request(prompt: str = "What is the weather in Paris?", tools: bool = False, **params: Any) -> dict:
    request: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": prompt}],
        **params,
    }
    if tools:
        request["tools"] = [WEATHER_TOOL]
        request["tool_choice"] = "auto"
    return request


def tool_call(arguments: Any = '{"city": "Paris"}', call_id: str = "call_1") -> dict:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def completion(
    content: str | None = "It is sunny.",
    tool_calls: list | None = None,
    model: str = "gpt-4o-mini",
    created: int = 1_700_000_000,
    usage: tuple[int, int] = (20, 5),
) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
        ],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def stream_chunks(text: str = "It is sunny.", model: str = "gpt-4o-mini") -> list[dict]:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model}
    pieces = [text[: len(text) // 2], text[len(text) // 2 :]]
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return chunks


def error_body(message: str = "Rate limit reached", code: str = "rate_limit_exceeded") -> dict:
    return {"error": {"message": message, "type": "requests", "code": code}}


def to_line(item: dict | bytes | str) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    return orjson.dumps(item)


def write_jsonl(
    path: Path, items: list[dict | bytes | str], gz: bool = False, trailing_newline: bool = True
) -> Path:
    data = b"\n".join(to_line(item) for item in items) + (b"\n" if trailing_newline else b"")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read(
    name: str, path: Path, workload_id: str | None = "wl", **mapping: Any
) -> list[Interaction | Rejected]:
    return list(REGISTRY[name].read(path, ReadContext(workload_id=workload_id, mapping=mapping)))


def only(items: list) -> Any:
    assert len(items) == 1, items
    return items[0]
