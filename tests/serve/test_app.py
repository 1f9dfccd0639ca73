"""The endpoint through the official openai client: sync, async, streaming, tools, fallbacks, capture."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import openai
import pytest

from flywheel.answers import AnswerSpec
from flywheel.bundle import Bundle, write_bundle
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse
from tests.serve.conftest import LABELS, TOOLS, ScriptedStudent, serve_with_lifespan


def confident(label: str = "billing", confidence: float = 0.9) -> ScriptedStudent:
    return ScriptedStudent(lambda text: (label, confidence))


def ticket(text: str = "ticket: I was charged twice") -> list[dict]:
    return [{"role": "system", "content": "Route the ticket."}, {"role": "user", "content": text}]


def test_sync_client_on_loopback_student_and_proxy(make_harness) -> None:
    harness = make_harness({"support": confident()})
    with serve_with_lifespan(harness.app) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
        deadline = 50
        while harness.app.state.champions.lookup("support").champion is None and deadline:
            asyncio.run(asyncio.sleep(0.02))
            deadline -= 1
        raw = client.chat.completions.with_raw_response.create(model="support", messages=ticket())
        answer = raw.parse()
        proxied = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        models = client.models.list()
    assert answer.choices[0].message.content == "billing" and answer.model == "support-v1"
    assert raw.headers["x-flywheel-served-by"] == "student"
    assert proxied.choices[0].message.content == "teacher says: hi" and proxied.model == "gpt-4o-mini"
    assert {m.id for m in models.data} == {"support", "orders", "assistant", "chat"}
    lines = {line["id"]: line for line in harness.spool_lines()}
    assert lines[raw.headers["x-request-id"]]["served_by"] == "student"
    assert [line["fallback_reason"] for line in lines.values()] == [None, "no_champion"]


def test_async_client_streaming_and_tool_calls(make_harness) -> None:
    function = {"name": "get_order_status", "arguments": '{"order_id":"O-7"}'}
    tool_call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c0", "type": "function", "function": function}],
    }
    harness = make_harness({"assistant": ScriptedStudent(lambda text: (tool_call, 0.95))})

    async def scenario() -> None:
        async with harness.running():
            client = harness.client()
            messages = [{"role": "user", "content": "where is O-7"}]
            answer = await client.chat.completions.create(model="assistant", messages=messages, tools=TOOLS)
            call = answer.choices[0].message.tool_calls[0]
            assert answer.choices[0].finish_reason == "tool_calls"
            assert (call.function.name, json.loads(call.function.arguments)) == (
                "get_order_status",
                {"order_id": "O-7"},
            )
            stream = await client.chat.completions.create(
                model="assistant",
                messages=messages,
                tools=TOOLS,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
            deltas = [c.choices[0].delta for c in chunks if c.choices]
            streamed = [tc for d in deltas for tc in d.tool_calls or []]
            assert streamed[0].function.name == "get_order_status" and chunks[-1].usage.completion_tokens == 1
            text_stream = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hello"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in text_stream if c.choices])
            assert text == "teacher says: hello"

    asyncio.run(scenario())
    assert [line["served_by"] for line in harness.spool_lines()] == ["student", "student", "teacher"]


@pytest.mark.parametrize(
    ("workload", "student_answer", "confidence", "reason", "detail"),
    [
        ("support", "billing", 0.2, "low_confidence", None),
        ("support", "upgrade", 0.99, "invalid_format", "label_not_in_set"),
        ("orders", '{"order_id": 7}', 0.99, "invalid_format", "schema_violation"),
        ("orders", "not json", 0.99, "invalid_format", "invalid_json"),
        ("assistant", {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "delete_everything", "arguments": "{}"}}]},
         0.99, "invalid_format", "unknown_tool"),
    ],
)  # fmt: skip
def test_fallback_to_teacher_with_reason(
    make_harness, workload, student_answer, confidence, reason, detail
) -> None:
    harness = make_harness({workload: ScriptedStudent(lambda text: (student_answer, confidence))})
    payload = {"model": workload, "messages": ticket()}
    if workload == "assistant":
        payload["tools"] = TOOLS
    if workload == "orders":
        payload["response_format"] = {"type": "json_schema", "json_schema": {"name": "o", "schema": {}}}

    async def scenario() -> tuple[dict, str]:
        async with harness.running(), harness.http() as http:
            response = await http.post("/v1/chat/completions", json=payload)
            assert response.status_code == 200, response.text
            assert response.headers["x-flywheel-fallback-reason"] == reason
            return response.json(), (await http.get("/metrics")).text

    body, metrics = asyncio.run(scenario())
    assert body["model"] == "gpt-4o-mini"
    (line,) = harness.spool_lines()
    assert (line["served_by"], line["fallback_reason"]) == ("teacher", reason)
    assert line["metadata"]["student_model"] == f"{workload}-v1"
    assert line["metadata"].get("invalid_reason") == detail
    assert line["cost_usd"] > 0 and line["prompt_tokens"] > 0
    assert f'flywheel_fallbacks_total{{reason="{reason}",workload="{workload}"}} 1.0' in metrics


def test_no_teacher_means_unsure_answers_never_leave_unmarked(make_harness) -> None:
    def broken(text: str) -> tuple[str, float]:
        raise RuntimeError("model exploded")

    harness = make_harness(
        {"support": ScriptedStudent(broken), "chat": confident("hello", 0.1)}, teacher=False
    )

    async def scenario() -> str:
        async with harness.running(), harness.http() as http:
            failed = await http.post("/v1/chat/completions", json={"model": "support", "messages": ticket()})
            assert failed.status_code == 503 and failed.json()["error"]["code"] == "student_unsure"
            assert failed.headers["x-flywheel-fallback-wanted"] == "student_error"
            unsure = await http.post("/v1/chat/completions", json={"model": "chat", "messages": ticket()})
            assert unsure.status_code == 503 and "low_confidence" in unsure.json()["error"]["message"]
            assert unsure.headers["x-flywheel-fallback-wanted"] == "low_confidence"
            return (await http.get("/metrics")).text

    metrics = asyncio.run(scenario())
    failed, unsure = harness.spool_lines()
    assert failed["metadata"]["fallback_wanted"] == "student_error" and "error" in failed["response"]
    assert unsure["metadata"]["fallback_wanted"] == "low_confidence"
    for workload, reason in (("support", "student_error"), ("chat", "low_confidence")):
        assert f'flywheel_fallbacks_total{{reason="{reason}",workload="{workload}"}} 1.0' in metrics


def test_on_unsure_student_serves_the_answer_marked(make_harness) -> None:
    harness = make_harness(
        {"chat": confident("hello", 0.1)}, teacher=False, serve={"on_unsure_by_workload": {"chat": "student"}}
    )

    async def scenario() -> None:
        async with harness.running(), harness.http() as http:
            unsure = await http.post("/v1/chat/completions", json={"model": "chat", "messages": ticket()})
            assert unsure.status_code == 200 and unsure.json()["choices"][0]["message"]["content"] == "hello"
            assert unsure.headers["x-flywheel-fallback-wanted"] == "low_confidence"
            assert unsure.headers["x-flywheel-served-by"] == "student"

    asyncio.run(scenario())
    (line,) = harness.spool_lines()
    assert line["served_by"] == "student" and line["metadata"]["fallback_wanted"] == "low_confidence"


def test_auth_limits_and_bad_requests(make_harness) -> None:
    harness = make_harness(
        serve={"max_request_bytes": 2048, "max_tokens_limit": 64}, environ={"FLYWHEEL_API_KEYS": "k1, k2"}
    )

    async def scenario() -> dict[str, tuple[int, dict]]:
        async with harness.running(), harness.http() as http:
            good = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
            auth = {"authorization": "Bearer k2"}
            cases = {
                "no_key": await http.post("/v1/chat/completions", json=good),
                "wrong_key": await http.post(
                    "/v1/chat/completions", json=good, headers={"authorization": "Bearer x"}
                ),
                "ok": await http.post("/v1/chat/completions", json=good, headers=auth),
                "too_big": await http.post(
                    "/v1/chat/completions",
                    json={**good, "messages": [{"role": "user", "content": "x" * 5000}]},
                    headers=auth,
                ),
                "max_tokens": await http.post(
                    "/v1/chat/completions", json={**good, "max_tokens": 65}, headers=auth
                ),
                "unknown_model": await http.post(
                    "/v1/chat/completions", json={**good, "model": "gpt-9"}, headers=auth
                ),
                "not_json": await http.post("/v1/chat/completions", content=b"{nope", headers=auth),
                "no_messages": await http.post("/v1/chat/completions", json={"model": "chat"}, headers=auth),
                "models_no_key": await http.get("/v1/models"),
                "health": await http.get("/health"),
            }
            return {name: (r.status_code, r.json() if name != "ok" else {}) for name, r in cases.items()}

    results = asyncio.run(scenario())
    assert {name: status for name, (status, _) in results.items()} == {
        "no_key": 401,
        "wrong_key": 401,
        "ok": 200,
        "too_big": 413,
        "max_tokens": 400,
        "unknown_model": 404,
        "not_json": 400,
        "no_messages": 400,
        "models_no_key": 401,
        "health": 200,
    }
    assert results["max_tokens"][1]["error"]["param"] == "max_tokens"
    assert "2048" in results["too_big"][1]["error"]["message"]
    assert "chat" in results["unknown_model"][1]["error"]["message"]
    (line,) = harness.spool_lines()
    assert line["client_id"].startswith("key-")


def test_teacher_failure_is_a_clear_error_and_still_captured(make_harness) -> None:
    harness = make_harness(teacher_kwargs={"failure_rate": 1.0, "failures": ["500"]})

    async def scenario() -> int:
        async with harness.running(), harness.http() as http:
            response = await http.post("/v1/chat/completions", json={"model": "chat", "messages": ticket()})
            assert response.json()["error"]["code"] == "teacher_error"
            return response.status_code

    assert asyncio.run(scenario()) == 502
    (line,) = harness.spool_lines()
    assert line["response"]["error"]["code"] == "teacher_error" and line["metadata"]["http_status"] == 502


def test_the_bundle_template_is_pruned_before_the_student(make_harness) -> None:
    student = confident()
    harness = make_harness({"support": student})
    template = {"messages": [{"role": "system", "content": "Route the ticket."}], "text_prefix": None}
    spec = AnswerSpec(task="classification", labels=tuple(LABELS))
    write_bundle(harness.home / "models" / "support-v1", Bundle("support", spec, template=template))

    async def scenario() -> None:
        async with harness.running():
            await harness.client().chat.completions.create(model="support", messages=ticket("ticket: hello"))

    asyncio.run(scenario())
    assert student.seen[0].messages == [{"role": "user", "content": "ticket: hello"}]
    assert harness.spool_lines()[0]["request"]["messages"] == ticket(
        "ticket: hello"
    )  # capture keeps the original


def test_aliases_route_to_workloads(make_harness) -> None:
    harness = make_harness({"support": confident()}, serve={"aliases": {"router-v2": "support"}})

    async def scenario() -> str:
        async with harness.running():
            answer = await harness.client().chat.completions.create(model="router-v2", messages=ticket())
            return answer.choices[0].message.content

    assert asyncio.run(scenario()) == "billing"
    assert harness.spool_lines()[0]["workload_id"] == "support"


def test_shadow_answers_are_captured_and_compared(make_harness) -> None:
    harness = make_harness({"support": confident("billing")}, serve={"shadow_rate": 1.0})

    async def scenario() -> str:
        async with harness.running(), harness.http() as http:
            for i in range(3):
                await http.post(
                    "/v1/chat/completions", json={"model": "support", "messages": ticket(f"ticket {i}")}
                )
            await asyncio.sleep(0)
            return (await http.get("/metrics")).text

    metrics = asyncio.run(scenario())
    lines = harness.spool_lines()
    assert len(lines) == 3 and all(line["served_by"] == "student" for line in lines)
    assert all(line["teacher_response"]["choices"][0]["message"]["content"] == "refund" for line in lines)
    assert {line["metadata"]["shadow"] for line in lines} == {"disagree"}
    assert 'flywheel_shadow_total{outcome="disagree",workload="support"} 3.0' in metrics
    assert not (harness.spool_dir / ".pending.wal").exists()


def test_capture_is_ingested_with_fallback_reasons(make_harness, tmp_path) -> None:
    harness = make_harness(
        {"support": ScriptedStudent(lambda text: ("billing", 0.1 if "doubt" in text else 0.9))}
    )

    async def scenario() -> None:
        async with harness.running():
            client = harness.client()
            texts = ["sure 1", "sure 2", "doubt 3", "sure 4", "doubt 5"]
            await asyncio.gather(
                *(client.chat.completions.create(model="support", messages=ticket(t)) for t in texts),
                client.chat.completions.create(model="chat", messages=ticket("proxy")),
            )

    asyncio.run(scenario())
    warehouse = Warehouse(tmp_path / "wh.duckdb")
    report = ingest_paths(warehouse, [harness.spool_dir], workload_id=None, fmt="spool")
    assert (report.total("read"), report.total("ingested"), report.total("quarantined")) == (6, 6, 0)
    rows = warehouse.read(
        lambda con: con.execute(
            "SELECT metadata->>'served_by', metadata->>'fallback_reason', count(*) FROM interactions "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    )
    assert rows == [("student", None, 3), ("teacher", "low_confidence", 2), ("teacher", "no_champion", 1)]


@pytest.mark.parametrize("log_prompts", [False, True])
def test_prompt_text_stays_out_of_the_log_unless_asked(make_harness, caplog, log_prompts: bool) -> None:
    harness = make_harness({"support": confident()}, serve={"log_prompts": log_prompts})

    async def scenario() -> None:
        async with harness.running():
            await harness.client().chat.completions.create(
                model="support", messages=ticket("ticket: my pin is 4321")
            )

    with caplog.at_level(logging.INFO, logger="flywheel.serve"):
        asyncio.run(scenario())
    assert '"served_by":"student"' in caplog.text
    assert ("4321" in caplog.text) is log_prompts


def test_health_is_ready_only_once_champions_load_and_calls_wait_for_the_load(make_harness) -> None:
    harness = make_harness({"support": confident()})
    gate = threading.Event()
    watcher = harness.app.state.champions
    inner = watcher._loader

    def slow_loader(path):  # the first load takes until the test lets it finish
        gate.wait(10)
        return inner(path)

    watcher._loader = slow_loader

    async def scenario() -> tuple[int, int, int, str]:
        async with harness.app.router.lifespan_context(harness.app), harness.http() as http:
            loading = (await http.get("/health")).status_code
            call = asyncio.create_task(
                http.post("/v1/chat/completions", json={"model": "support", "messages": ticket()})
            )
            await asyncio.sleep(0.2)
            gate.set()
            answered = await call
            ready = (await http.get("/health")).status_code
            return loading, answered.status_code, ready, answered.headers["x-flywheel-route"]

    assert asyncio.run(scenario()) == (503, 200, 200, "student")
