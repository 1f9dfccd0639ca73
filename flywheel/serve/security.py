"""Guards in front of routing: bearer API keys, request size, max_tokens and payload shape.

Each failure is an ApiError with the HTTP status and a message that says exactly what to change. Keys
are compared in constant time and never logged; a caller is identified by a short fingerprint of its
key (used as client_id when the request names none).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flywheel.serve.responses import ApiError

TOKEN_LIMIT_PARAMS = ("max_tokens", "max_completion_tokens")


def key_fingerprint(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:10]


def authenticate(authorization: str | None, keys: frozenset[str]) -> str | None:
    """The caller's key fingerprint; None when no keys are configured. Raises ApiError(401)."""
    if not keys:
        return None
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")
    matched = None
    for key in keys:  # compare with every key so timing does not reveal which prefix matched
        if hmac.compare_digest(token.encode(), key.encode()):
            matched = key
    if matched is None:
        raise ApiError(401, "invalid API key", code="invalid_api_key")
    return key_fingerprint(matched)


def check_content_length(header: str | None, max_bytes: int) -> None:
    if header is None:
        return
    try:
        size = int(header)
    except ValueError as exc:
        raise ApiError(400, "Content-Length is not an integer") from exc
    if size > max_bytes:
        raise_too_large(size, max_bytes)


def raise_too_large(size: int, max_bytes: int) -> None:
    raise ApiError(
        413,
        f"request body is {size} bytes; the limit is {max_bytes} (serve.max_request_bytes)",
        code="request_too_large",
    )


def validate_payload(payload: Any, max_tokens_limit: int) -> None:
    """The request is a chat.completions payload this server can route."""
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required: name a workload (see GET /v1/models)", param="model")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(
                400, f"messages[{index}] must be an object with a 'role'", param=f"messages[{index}]"
            )
    if "tools" in payload and payload["tools"] is not None and not isinstance(payload["tools"], list):
        raise ApiError(400, "'tools' must be a list", param="tools")
    for param in TOKEN_LIMIT_PARAMS:
        value = payload.get(param)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ApiError(400, f"'{param}' must be a positive integer", param=param)
        if value > max_tokens_limit:
            raise ApiError(
                400, f"'{param}' is {value}; this server allows at most {max_tokens_limit}", param=param
            )
    if payload.get("n") not in (None, 1):
        raise ApiError(400, "only n=1 is supported", param="n")


def loggable_request(payload: dict[str, Any], log_prompts: bool) -> dict[str, Any]:
    """What the server's own log may say about a request: shape only, unless prompts are allowed."""
    if log_prompts:
        return payload
    messages = payload.get("messages") or []
    return {
        "model": payload.get("model"),
        "messages": len(messages),
        "chars": sum(len(str(m.get("content") or "")) for m in messages if isinstance(m, dict)),
        "tools": len(payload.get("tools") or []),
        "stream": bool(payload.get("stream")),
    }
