"""A local OpenAI-compatible server for tests, benchmarks and demos.

`make_fake_openai_app(oracle, ...)` builds a FastAPI app serving /v1/chat/completions (tools,
response_format, logprobs, streaming) and /v1/models. Answers come from `oracle(request) -> str | dict`
(a string is the assistant content; a dict is the assistant message). Latency and failures are
injected on purpose: 429 with Retry-After, 500, a hang past the client's timeout, or a 200 whose body
is truncated JSON. Failure decisions hash (seed, request body, attempt number), so they do not depend
on the order concurrent requests arrive in.

Run it in-process with `httpx.ASGITransport(app=app)`, on loopback with `serve_in_thread(app)`, or as
a separate process: `python -m flywheel.testing.fake_openai --latency-s 0.1 --oracle module:function`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

Oracle = Callable[[dict[str, Any]], "str | dict[str, Any]"]
FAILURE_KINDS = ("429", "500", "timeout", "malformed")
TOKEN_RE = re.compile(r"\S+|\s+")


def make_fake_openai_app(
    oracle: Oracle,
    *,
    latency_s: float = 0.0,
    failure_rate: float = 0.0,
    failures: Sequence[str] = FAILURE_KINDS,
    seed: int = 0,
    model: str = "fake-teacher",
    retry_after_s: float = 0.05,
    hang_s: float = 5.0,
    json_schema_support: bool = True,
) -> FastAPI:
    """The app; `app.state.stats` counts requests, completions and each injected failure kind."""
    unknown = set(failures) - set(FAILURE_KINDS)
    if unknown or not 0 <= failure_rate <= 1:
        raise ValueError(f"failures must be among {FAILURE_KINDS} and 0 <= failure_rate <= 1")
    app = FastAPI(title="fake-openai", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stats = Counter()
    app.state.requests = []  # every parsed request body, in arrival order
    app.state.last_headers = {}
    attempts: Counter[str] = Counter()

    def pick_failure(body: bytes) -> str | None:
        digest = hashlib.sha256(body).hexdigest()
        attempt = attempts[digest]
        attempts[digest] += 1
        rng = random.Random(f"{seed}:{digest}:{attempt}")
        return rng.choice(list(failures)) if failures and rng.random() < failure_rate else None

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 0, "owned_by": "fake"}],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await request.body()
        app.state.stats["requests"] += 1
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "request body is not JSON")
        app.state.requests.append(payload)
        app.state.last_headers = dict(request.headers)
        if latency_s:
            await asyncio.sleep(latency_s)
        failure = pick_failure(body)
        if failure:
            app.state.stats[failure] += 1
            return await _failure(failure, retry_after_s, hang_s)
        if not json_schema_support and (payload.get("response_format") or {}).get("type") == "json_schema":
            app.state.stats["400"] += 1
            return _error(400, "response_format json_schema is not supported by this endpoint")
        try:
            message = to_message(oracle(payload))
        except Exception as exc:  # the oracle is test code: report its bug as a 500 the client can see
            app.state.stats["oracle_error"] += 1
            return _error(500, f"oracle failed: {type(exc).__name__}: {exc}")
        app.state.stats["completions"] += 1
        completion = build_completion(payload, message, model)
        if payload.get("stream"):
            return StreamingResponse(_sse(completion, payload), media_type="text/event-stream")
        return Response(orjson.dumps(completion), media_type="application/json")

    return app


def to_message(answer: str | dict[str, Any]) -> dict[str, Any]:
    """An oracle's answer as an assistant message with tool-call ids and JSON-string arguments."""
    if isinstance(answer, str):
        return {"role": "assistant", "content": answer}
    message = {"role": "assistant", "content": answer.get("content"), **answer}
    calls = []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = dict(call.get("function", call))
        arguments = function.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        calls.append(
            {
                "id": call.get("id", f"call_{i}"),
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
        )
    if calls:
        message["tool_calls"] = calls
    else:
        message.pop("tool_calls", None)
    return message


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: words and punctuation runs."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def build_completion(request: dict[str, Any], message: dict[str, Any], model: str) -> dict[str, Any]:
    prompt_tokens = sum(
        4 + count_tokens(orjson.dumps(m.get("content")).decode()) for m in request["messages"]
    )
    answer_text = message.get("content") or ""
    answer_text += "".join(c["function"]["arguments"] for c in message.get("tool_calls", []))
    completion_tokens = max(1, count_tokens(answer_text))
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
        "logprobs": None,
    }
    if request.get("logprobs"):
        choice["logprobs"] = {"content": _logprobs(message.get("content") or "", request.get("top_logprobs"))}
    return {
        "id": "chatcmpl-" + hashlib.sha256(orjson.dumps(request)).hexdigest()[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model") or model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _logprobs(content: str, top_k: int | None) -> list[dict[str, Any]]:
    entries = []
    for i, token in enumerate(TOKEN_RE.findall(content)):
        logprob = -0.05 * (1 + i % 3)
        top = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
        for j in range(1, top_k or 0):
            alt = f"{token}~{j}"
            top.append({"token": alt, "logprob": logprob - 2.0 * j, "bytes": list(alt.encode())})
        entries.append({**top[0], "top_logprobs": top})
    return entries


async def _sse(completion: dict[str, Any], request: dict[str, Any]) -> Any:
    choice = completion["choices"][0]
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    delta = {k: v for k, v in choice["message"].items() if v is not None}
    if "tool_calls" in delta:
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
    ]
    if (request.get("stream_options") or {}).get("include_usage"):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    for chunk in chunks:
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    yield b"data: [DONE]\n\n"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 else "invalid_request"
    body = {"error": {"message": message, "type": kind, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _failure(kind: str, retry_after_s: float, hang_s: float) -> Response:
    if kind == "429":
        headers = {"retry-after-ms": str(int(retry_after_s * 1000)), "retry-after": f"{retry_after_s:g}"}
        return _error(429, "Rate limit reached (injected)", headers)
    if kind == "500":
        return _error(500, "The server had an error (injected)")
    if kind == "timeout":
        await asyncio.sleep(hang_s)
        return _error(504, "gateway timeout (injected)")
    return Response(
        b'{"id": "chatcmpl-broken", "choices": [{"message": {"role": "assist', media_type="application/json"
    )


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` with uvicorn on loopback in a daemon thread; yields the base URL ending in /v1."""
    import uvicorn

    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP,
    # and without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def load_oracle(spec: str) -> Oracle:
    """`module:attribute` -> the oracle function."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"oracle must look like module:function, got {spec!r}")
    return getattr(importlib.import_module(module_name), attribute)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve on loopback until killed; prints the base URL as the first stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle", default="flywheel.testing.oracles:keyword_oracle")
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="fake-teacher")
    args = parser.parse_args(argv)
    app = make_fake_openai_app(
        load_oracle(args.oracle),
        latency_s=args.latency_s,
        failure_rate=args.failure_rate,
        seed=args.seed,
        model=args.model,
    )
    with serve_in_thread(app, port=args.port) as base_url:
        print(base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
