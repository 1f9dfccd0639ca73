"""A day of fresh demo traffic through the real `serve` app, so the demo shows the wheel paying.

After the demo's turn promotes students, `serve_demo_day` generates new traffic for each workload (a
seed the training logs never used), and sends every request, as the application logged it, to the
OpenAI-compatible app in process: champions answer through their bundles, unsure or invalid answers
fall back to a local fake teacher that knows the right answers (the role a real LLM plays), and every
call lands in the serve spool, where `flywheel costs` and the dashboard count it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

from flywheel.config import FlywheelConfig
from flywheel.demo.traffic import generate_demo_traffic
from flywheel.layout import MANIFEST_NAME
from flywheel.testing.fake_openai import make_fake_openai_app
from flywheel.testing.oracles import last_user_text, lookup_oracle

CONCURRENCY = 16


def demo_serving_stage(loop: Any, seed: int = 7, size: int = 300) -> dict[str, Any]:
    """The demo's day of fresh traffic through `serve`, then the ledger (the flows' serve-demo-day task)."""
    from flywheel.costs import savings_report
    from flywheel.loop import costs_stage

    served = serve_demo_day(loop.config, loop.home, seed=seed, size=size)
    for workload in loop.config.workloads:
        costs_stage(loop, workload.id)
    report = savings_report(loop.warehouse)
    return served | {"ledger": report["workloads"], "totals": report["totals"]}


def serve_demo_day(config: FlywheelConfig, home: Path, seed: int = 7, size: int = 300) -> dict[str, Any]:
    """Serve `size` fresh requests per workload; {"served", "by_workload": {w: {route: n}}, ...}."""
    from flywheel.serve.champions import ChampionWatcher, read_manifest

    day_dir = home / "demo-served" / f"seed-{seed + 1000}"
    generate_demo_traffic(day_dir, seed=seed + 1000, size=size)
    champions = read_manifest(home / MANIFEST_NAME)
    calls, answers = [], {}
    for workload in config.workloads:
        requests, gold = day_requests(day_dir, workload.id)
        answers.update(gold)
        for request in requests:  # an app whose workload has no student yet names the workload id
            payload = request if workload.id in champions else {**request, "model": workload.id}
            calls.append((workload.id, payload))
    app = _serve_app(config, home, answers, ChampionWatcher(home / MANIFEST_NAME))
    results = asyncio.run(_send_all(app, calls))
    by_workload: dict[str, Counter[str]] = {}
    for workload_id, route, status in results:
        by_workload.setdefault(workload_id, Counter())[route if status == 200 else f"http_{status}"] += 1
    return {
        "served": len(results),
        "by_workload": {w: dict(c) for w, c in sorted(by_workload.items())},
        "traffic": str(day_dir),
    }


def day_requests(day_dir: Path, workload_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The day's well-formed requests of one workload, and the right answer to each (by user text)."""
    gold = {
        row["line"]: row["answer"] for row in map(json.loads, (day_dir / f"{workload_id}.gold.jsonl").open())
    }
    requests, answers = [], {}
    for number, line in enumerate((day_dir / f"{workload_id}.jsonl").open("rb"), start=1):
        try:
            request = orjson.loads(line)["request"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # a planted malformed line: the application never sent it
        request = {k: v for k, v in request.items() if k != "stream"}
        requests.append(request)
        if gold.get(number) is not None:
            answers[last_user_text(request)] = _oracle_answer(gold[number])
    return requests, answers


def _oracle_answer(answer: Any) -> Any:
    """A gold answer as the fake teacher's oracle takes it (a tool call as {"name", "arguments"})."""
    if isinstance(answer, dict) and answer.get("type") == "tool_call":
        return {"name": answer["name"], "arguments": answer.get("arguments") or {}}
    if isinstance(answer, dict) and answer.get("type") == "text":
        return answer.get("content") or ""
    return answer


def _serve_app(config: FlywheelConfig, home: Path, answers: dict[str, Any], watcher: Any) -> Any:
    from openai import AsyncOpenAI

    from flywheel.serve.app import make_app
    from flywheel.serve.settings import build_settings, spool_dir
    from flywheel.serve.spool import SpoolWriter

    teacher_app = make_fake_openai_app(lookup_oracle(answers), model=config.teacher.model)
    teacher = AsyncOpenAI(
        base_url="http://teacher/v1",
        api_key="demo",
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=teacher_app)),
    )
    settings = build_settings(config, environ={})
    spool = SpoolWriter(spool_dir(config.serve, home))
    return make_app(settings, champions=watcher, teacher_client=teacher, spool=spool)


async def _send_all(app: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, int]]:
    """(workload, route, HTTP status) of every call, CONCURRENCY at a time."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with app.router.lifespan_context(app):
        await app.state.champions.wait_loaded()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve", timeout=120) as http:

            async def send(workload_id: str, payload: dict[str, Any]) -> tuple[str, str, int]:
                async with limit:
                    response = await http.post("/v1/chat/completions", json=payload)
                return workload_id, response.headers.get("x-flywheel-route", "-"), response.status_code

            return list(await asyncio.gather(*(send(w, c) for w, c in calls)))
