"""The teacher client: retries, Retry-After, backoff, timeouts, rate limits and the API key."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from flywheel.config import ConfigError, TeacherConfig
from flywheel.store.db import Warehouse
from flywheel.teacher import TeacherCallError, label_examples, make_client
from flywheel.teacher.client import parse_retry_after
from flywheel.teacher.limits import TokenBucket
from flywheel.testing.fake_openai import make_fake_openai_app
from flywheel.testing.oracles import keyword_oracle
from tests.teacher.conftest import API_KEY, PRICES, support_examples, support_workload, teacher

REQUEST = {"messages": [{"role": "user", "content": "a billing question"}]}


def in_process_client(app: Any, sleeps: list[float] | None = None, **config: Any) -> Any:
    """A client over httpx.ASGITransport (no sockets), recording the delays it sleeps."""

    async def record(delay: float) -> None:
        if sleeps is not None:
            sleeps.append(delay)

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
    settings = {"base_url": "http://fake/v1", "model": "fake-teacher", **config}
    return make_client(
        TeacherConfig(**settings), {"OPENAI_API_KEY": "k"}, http_client=http, sleep=record, seed=1
    )


def test_retry_after_is_honoured_on_429() -> None:
    app = make_fake_openai_app(keyword_oracle, failure_rate=1.0, failures=("429",), retry_after_s=0.25)
    sleeps: list[float] = []
    with in_process_client(app, sleeps, max_retries=3) as client, pytest.raises(TeacherCallError) as caught:
        client.run_sync(client.complete(REQUEST))
    assert caught.value.reason == "rate_limited" and caught.value.status == 429
    assert len(sleeps) == 3 and all(0.25 <= s <= 0.25 * 1.1 for s in sleeps)
    assert app.state.stats["requests"] == 4


def test_backoff_is_exponential_with_jitter_then_succeeds() -> None:
    app = make_fake_openai_app(keyword_oracle, failure_rate=0.7, failures=("500", "malformed"), seed=3)
    sleeps: list[float] = []
    with in_process_client(app, sleeps, max_retries=10) as client:
        client.backoff_base_s = 1.0
        completion = client.run_sync(client.complete(REQUEST))
    assert completion.message == {"role": "assistant", "content": "other"}  # no label set offered
    assert sleeps, "the seed makes the first attempts fail"
    for attempt, delay in enumerate(sleeps):
        ceiling = min(30.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_client_errors_are_not_retried_and_timeouts_are() -> None:
    app = make_fake_openai_app(keyword_oracle, json_schema_support=False)
    sleeps: list[float] = []
    with in_process_client(app, sleeps, max_retries=5) as client:
        bad = {
            **REQUEST,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        }
        with pytest.raises(TeacherCallError) as caught:
            client.run_sync(client.complete(bad))
    assert caught.value.reason == "bad_request" and sleeps == [] and app.state.stats["requests"] == 1

    slow = make_fake_openai_app(keyword_oracle, failure_rate=1.0, failures=("timeout",), hang_s=2.0)
    with in_process_client(slow, [], max_retries=1, timeout_s=0.2) as client:
        started = time.monotonic()
        with pytest.raises(TeacherCallError) as caught:
            client.run_sync(client.complete(REQUEST))
    assert caught.value.reason == "timeout" and time.monotonic() - started < 1.5


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({}) is None


def test_requests_per_minute_limit_paces_calls() -> None:
    bucket = TokenBucket(per_minute=1200)  # 20/s, a one-second burst of 20

    async def take(n: int) -> float:
        started = time.monotonic()
        for _ in range(n):
            await bucket.acquire()
        return time.monotonic() - started

    elapsed = asyncio.run(take(30))
    assert 0.4 <= elapsed < 1.5  # 20 from the burst, 10 more at 20/s


def test_tokens_per_minute_settles_estimates_with_real_usage() -> None:
    bucket = TokenBucket(per_minute=600)  # 10 tokens/s, capacity 10
    asyncio.run(bucket.acquire(10))
    bucket.adjust(-8)  # the call used 8 tokens fewer than estimated: they come back
    assert bucket.level >= 8


def test_missing_key_is_a_clear_config_error_naming_the_variable() -> None:
    config = TeacherConfig(base_url="http://127.0.0.1:9/v1", api_key_env="MY_TEACHER_KEY")
    with pytest.raises(ConfigError, match="MY_TEACHER_KEY"):
        make_client(config, {})
    with pytest.raises(ConfigError, match="base_url"):
        make_client(TeacherConfig(), {"OPENAI_API_KEY": "x"})


def test_extra_headers_and_key_are_sent(warehouse: Warehouse) -> None:
    with teacher(keyword_oracle, headers={"X-Team": "flywheel"}) as (client, app):
        client.run_sync(client.complete(REQUEST))
        headers = app.state.last_headers
    assert headers["x-team"] == "flywheel"
    assert headers["authorization"] == f"Bearer {API_KEY}"


def test_the_api_key_reaches_neither_the_warehouse_nor_logs_nor_errors(
    warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    def echo_headers(request: dict[str, Any]) -> str:  # a hostile endpoint that echoes what it got
        raise RuntimeError(f"bad request, you sent {app.state.last_headers}")

    caplog.set_level(logging.DEBUG)
    examples = support_examples(5)
    flaky = {"failure_rate": 0.5, "seed": 4, "hang_s": 0.5, "retry_after_s": 0.01}
    with teacher(keyword_oracle, app_options=flaky, timeout_s=0.2, max_retries=10) as (client, app):
        assert API_KEY not in repr(client)
        label_examples(
            examples, support_workload(), "relabel", client=client, warehouse=warehouse, prices=PRICES
        )
    with teacher(echo_headers, max_retries=1) as (client, app):
        report = label_examples(
            support_examples(2, start=10),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
        with pytest.raises(TeacherCallError) as caught:
            client.run_sync(client.complete(REQUEST))
    assert report.failed == 2 and API_KEY not in str(caught.value) and "***" in str(caught.value)
    raw = b"".join(p.read_bytes() for p in warehouse.path.parent.rglob("*") if p.is_file())
    assert API_KEY.encode() not in raw and b"sk-test" not in raw
    rows = warehouse_text(warehouse)  # also decoded: DuckDB may compress strings on disk
    assert API_KEY not in rows and "sk-test" not in rows
    assert "server_error" in rows and "***" in rows  # the redacted failure details did land
    assert API_KEY not in caplog.text


def warehouse_text(warehouse: Warehouse) -> str:
    def dump(con: Any) -> str:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return "\n".join(str(con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)

    return warehouse.read(dump)
