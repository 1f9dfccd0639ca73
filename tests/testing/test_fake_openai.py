"""The fake OpenAI-compatible server, driven by the official openai client in-process and over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest

from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from flywheel.testing.oracles import keyword_oracle, lookup_oracle

MESSAGES = [{"role": "user", "content": "where is ORD-123456?"}]
TOOLS = [{"type": "function", "function": {"name": "get_order_status", "parameters": {"type": "object"}}}]


def tool_oracle(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool_calls": [{"function": {"name": "get_order_status", "arguments": {"order_id": "ORD-123456"}}}]
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_in_process_completion_tools_and_models() -> None:
    app = make_fake_openai_app(tool_oracle, model="teacher-x")

    async def talk() -> tuple[Any, Any]:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
        async with openai.AsyncOpenAI(api_key="k", base_url="http://fake/v1", http_client=http) as client:
            completion = await client.chat.completions.create(
                model="teacher-x", messages=MESSAGES, tools=TOOLS
            )
            models = await client.models.list()
        return completion, models

    completion, models = run(talk())
    call = completion.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_order_status",
        {"order_id": "ORD-123456"},
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert [m.id for m in models.data] == ["teacher-x"]
    assert app.state.requests[0]["tools"] == TOOLS


def test_over_http_response_format_logprobs_and_streaming() -> None:
    app = make_fake_openai_app(keyword_oracle, latency_s=0.01)
    response_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "label",
            "schema": {"properties": {"label": {"enum": ["billing", "shipping"]}}},
        },
    }
    with serve_in_thread(app) as base_url:
        client = openai.OpenAI(api_key="k", base_url=base_url)
        messages = [{"role": "user", "content": "my shipping is late"}]
        completion = client.chat.completions.create(
            model="m", messages=messages, response_format=response_format, logprobs=True, top_logprobs=2
        )
        stream = client.chat.completions.create(
            model="m", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
    assert json.loads(completion.choices[0].message.content) == {"label": "shipping"}
    tokens = completion.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == '{"label": "shipping"}' and len(tokens[0].top_logprobs) == 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "other"
    assert chunks[-1].usage.total_tokens > 0


def test_injected_failures_are_deterministic_and_shaped_like_the_real_ones() -> None:
    def outcomes(seed: int) -> list[str]:
        app = make_fake_openai_app(lookup_oracle({}, "ok"), failure_rate=0.5, seed=seed, hang_s=0.05)
        results = []

        async def hit() -> None:
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
            async with http:
                for i in range(20):
                    body = {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}
                    response = await http.post("/v1/chat/completions", json=body)
                    try:
                        response.json()
                        parsed = "json"
                    except json.JSONDecodeError:
                        parsed = "broken"
                    results.append(
                        f"{response.status_code}:{parsed}:{response.headers.get('retry-after-ms')}"
                    )

        run(hit())
        return results

    first = outcomes(seed=1)
    assert first == outcomes(seed=1)  # same seed, same failures
    assert first != outcomes(seed=2)
    kinds = set(first)
    assert "200:json:None" in kinds and "429:json:50" in kinds and "500:json:None" in kinds
    assert "200:broken:None" in kinds  # malformed JSON body with a 200
    assert "504:json:None" in kinds  # the hang ends in a gateway timeout


def test_json_schema_can_be_refused_and_bad_failure_kinds_rejected() -> None:
    app = make_fake_openai_app(keyword_oracle, json_schema_support=False)

    async def ask() -> httpx.Response:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
        async with http:
            body = {"model": "m", "messages": MESSAGES, "response_format": {"type": "json_schema"}}
            return await http.post("/v1/chat/completions", json=body)

    assert run(ask()).status_code == 400
    with pytest.raises(ValueError, match="failures must be among"):
        make_fake_openai_app(keyword_oracle, failures=("teapot",))
