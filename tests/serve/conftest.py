"""Shared pieces for serving tests: scripted students, a fake teacher, an app with its lifespan running."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openai import AsyncOpenAI

from flywheel.config import FlywheelConfig
from flywheel.config.serve import ServeConfig
from flywheel.records import Example, Prediction, message_text
from flywheel.serve.app import make_app
from flywheel.serve.champions import ChampionWatcher
from flywheel.serve.settings import build_settings
from flywheel.serve.spool import SpoolWriter
from flywheel.testing.fake_openai import make_fake_openai_app
from flywheel.testing.oracles import answer_in_request_format, last_user_text

LABELS = ["billing", "refund", "shipping"]
ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order_status",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]
WORKLOADS = [
    {"id": "support", "task": "classification", "labels": LABELS},
    {"id": "orders", "task": "extraction", "json_schema": ORDER_SCHEMA},
    {"id": "assistant", "task": "tool_call", "tools": TOOLS},
    {"id": "chat", "task": "chat"},
]


@dataclass
class ScriptedStudent:
    """A Predictor whose answer is a function of the last user message: (message, confidence)."""

    answer: Callable[[str], tuple[dict[str, Any] | str, float | None]]
    name: str = "scripted"
    delay_s: float = 0.0
    calls: list[int] = field(default_factory=list)
    seen: list[Example] = field(default_factory=list)

    def predict(self, examples: list[Example]) -> list[Prediction]:
        self.calls.append(len(examples))
        self.seen.extend(examples)
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for example in examples:
            text = next((message_text(m) for m in reversed(example.messages) if m.get("role") == "user"), "")
            message, confidence = self.answer(text)
            if isinstance(message, str):
                message = {"role": "assistant", "content": message}
            out.append(Prediction(message, confidence, prompt_tokens=len(text.split()), completion_tokens=1))
        return out


def teacher_oracle(request: dict[str, Any]) -> str | dict[str, Any]:
    """The fake teacher: 'refund' for classification, a tool call when tools are offered, else JSON/text."""
    text = last_user_text(request)
    if request.get("tools"):
        return answer_in_request_format(
            request, {"name": "get_order_status", "arguments": {"order_id": "T-1"}}
        )
    if (request.get("response_format") or {}).get("type") == "json_schema":
        return answer_in_request_format(request, {"order_id": "T-1"})
    return "refund" if "ticket" in text else f"teacher says: {text}"


def write_manifest(home: Path, champions: dict[str, str]) -> None:
    """champions: workload -> artifact dir name under home/models (created)."""
    manifest = {}
    for workload_id, name in champions.items():
        (home / "models" / name).mkdir(parents=True, exist_ok=True)
        manifest[workload_id] = {
            "model_id": name,
            "path": f"models/{name}",
            "kind": "scratch",
            "promoted_at": "t",
        }
    tmp = home / "champions.json.tmp"
    tmp.write_text(json.dumps(manifest))
    tmp.replace(home / "champions.json")


@dataclass
class Harness:
    app: FastAPI
    home: Path
    teacher_app: FastAPI
    students: dict[str, ScriptedStudent]

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    def spool_lines(self) -> list[dict[str, Any]]:
        lines = []
        for path in sorted(self.spool_dir.glob("spool-*.jsonl")):
            lines.extend(json.loads(line) for line in path.read_text().splitlines())
        return lines

    def client(self, api_key: str = "k") -> AsyncOpenAI:
        transport = httpx.ASGITransport(app=self.app)
        return AsyncOpenAI(
            base_url="http://serve/v1", api_key=api_key, http_client=httpx.AsyncClient(transport=transport)
        )

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://serve")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Harness]:
        async with self.app.router.lifespan_context(self.app):
            await self.app.state.champions.wait_loaded()
            yield self


@pytest.fixture
def make_harness(tmp_path: Path) -> Callable[..., Harness]:
    def build(
        students: dict[str, ScriptedStudent] | None = None,
        serve: dict[str, Any] | None = None,
        environ: dict[str, str] | None = None,
        teacher_kwargs: dict[str, Any] | None = None,
        teacher: bool = True,
    ) -> Harness:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        students = students or {}
        write_manifest(home, {w: f"{w}-v1" for w in students})
        by_dir = {f"{w}-v1": s for w, s in students.items()}
        config = FlywheelConfig(workloads=WORKLOADS, serve=ServeConfig(**(serve or {})))
        settings = build_settings(config, environ=environ or {})
        teacher_app = make_fake_openai_app(teacher_oracle, **(teacher_kwargs or {}))
        client = None
        if teacher:
            transport = httpx.ASGITransport(app=teacher_app)
            client = AsyncOpenAI(
                base_url="http://teacher/v1",
                api_key="t",
                max_retries=0,
                http_client=httpx.AsyncClient(transport=transport),
            )
        watcher = ChampionWatcher(
            home / "champions.json",
            loader=lambda path: by_dir[path.name],
            poll_s=0.05,
            max_batch=settings.serve.max_batch,
            max_wait_ms=settings.serve.max_wait_ms,
        )
        app = make_app(settings, champions=watcher, teacher_client=client, spool=SpoolWriter(home / "spool"))
        return Harness(app, home, teacher_app, students)

    return build


@contextmanager
def serve_with_lifespan(app: FastAPI) -> Iterator[str]:
    """uvicorn on loopback in a thread, lifespan on (the app's start-up work runs); yields base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
