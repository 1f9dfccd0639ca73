"""OpenAI wire shapes: ChatCompletion bodies, streamed chunks (SSE) and error bodies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from flywheel.records import Prediction


class ApiError(Exception):
    """An error the client gets as an OpenAI-style body with an HTTP status."""

    def __init__(
        self, status: int, message: str, *, code: str = "invalid_request_error", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return {"error": {"message": self.message, "type": kind, "code": self.code, "param": self.param}}


def student_completion(
    request_id: str, model: str, prediction: Prediction, created: int | None = None
) -> dict:
    """The ChatCompletion a student's prediction is returned as."""
    message = {"role": "assistant", "content": prediction.message.get("content")}
    if prediction.message.get("tool_calls"):
        message["tool_calls"] = [
            {
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": _arguments_text(call["function"].get("arguments")),
                },
            }
            for i, call in enumerate(prediction.message["tool_calls"])
        ]
    prompt, completion = prediction.prompt_tokens or 0, prediction.completion_tokens or 0
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return orjson.dumps(arguments if arguments is not None else {}, option=orjson.OPT_SORT_KEYS).decode()


def completion_usage(completion: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = completion.get("usage") or {}
    return usage.get("prompt_tokens"), usage.get("completion_tokens")


def completion_message(completion: dict[str, Any]) -> dict[str, Any]:
    choices = completion.get("choices") or [{}]
    return choices[0].get("message") or {}


def sse_events(completion: dict[str, Any], include_usage: bool = False) -> Iterator[bytes]:
    """A finished ChatCompletion as chat.completion.chunk events: role, content/tool calls, finish, [DONE]."""
    base = {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
    }
    for choice in completion.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        yield _event({**base, "choices": [_delta(index, {"role": "assistant", "content": ""})]})
        if message.get("content"):
            yield _event({**base, "choices": [_delta(index, {"content": message["content"]})]})
        for i, call in enumerate(message.get("tool_calls") or []):
            delta = {
                "tool_calls": [
                    {"index": i, "id": call.get("id"), "type": "function", "function": call["function"]}
                ]
            }
            yield _event({**base, "choices": [_delta(index, delta)]})
        yield _event({**base, "choices": [_delta(index, {}, choice.get("finish_reason") or "stop")]})
    if include_usage:
        yield _event({**base, "choices": [], "usage": completion.get("usage")})
    yield b"data: [DONE]\n\n"


def _delta(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None}


def _event(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
