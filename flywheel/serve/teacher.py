"""The teacher upstream: any OpenAI-compatible endpoint, one `AsyncOpenAI` per distinct teacher config.

Clients are built here from flywheel.yaml and the environment (keys from the env var the config
names, never from the file) and passed into `make_app`, so tests hand in clients pointed at a local
fake. The request goes upstream as the application sent it, except `model` (the workload's teacher
model) and streaming (the server needs the whole answer to validate, cost and capture it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from flywheel.serve.responses import ApiError

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from flywheel.config import FlywheelConfig, TeacherConfig

STREAM_PARAMS = ("stream", "stream_options")
MISSING_KEY = "sk-none"  # local OpenAI-compatible servers accept any key; the client needs a string


@dataclass(frozen=True, slots=True)
class TeacherAnswer:
    completion: dict[str, Any]
    latency_ms: float


class TeacherClients:
    """Workload id -> (client, teacher model). A workload without an upstream has no entry."""

    def __init__(
        self, clients: Mapping[str, AsyncOpenAI] | AsyncOpenAI | None, models: Mapping[str, str]
    ) -> None:
        self._models = dict(models)
        if clients is None:
            self._clients: dict[str, Any] = {}
        elif isinstance(clients, Mapping):
            self._clients = dict(clients)
        else:  # one client for every workload
            self._clients = dict.fromkeys(self._models, clients)

    def available(self, workload_id: str) -> bool:
        return workload_id in self._clients

    def model(self, workload_id: str) -> str:
        return self._models[workload_id]

    async def ask(self, workload_id: str, payload: dict[str, Any]) -> TeacherAnswer:
        """The teacher's ChatCompletion for the application's payload. Raises ApiError on failure."""
        client = self._clients.get(workload_id)
        if client is None:
            raise ApiError(
                503, f"workload {workload_id!r} has no teacher base_url configured", code="no_teacher"
            )
        body = {k: v for k, v in payload.items() if k not in STREAM_PARAMS}
        body["model"] = self._models[workload_id]
        started = time.perf_counter()
        response = await _post(client, body)
        completion = _parse_completion(response.content)
        return TeacherAnswer(completion, (time.perf_counter() - started) * 1000)

    async def close(self) -> None:
        for client in {id(c): c for c in self._clients.values()}.values():
            await client.close()


async def _post(client: AsyncOpenAI, body: dict[str, Any]) -> Any:
    import httpx
    import openai

    try:
        return await client.post("/chat/completions", cast_to=httpx.Response, body=body)
    except openai.APIStatusError as exc:
        status = exc.status_code
        mapped = status if 400 <= status < 500 else 502
        raise ApiError(
            mapped, f"teacher returned {status}: {_upstream_message(exc)}", code="teacher_error"
        ) from exc
    except openai.APITimeoutError as exc:
        raise ApiError(504, "teacher timed out", code="teacher_timeout") from exc
    except openai.APIConnectionError as exc:
        raise ApiError(502, f"teacher unreachable: {exc}", code="teacher_unreachable") from exc


def _parse_completion(content: bytes) -> dict[str, Any]:
    try:
        completion = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ApiError(502, "teacher returned a body that is not JSON", code="teacher_bad_response") from exc
    if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
        raise ApiError(502, "teacher returned no choices", code="teacher_bad_response")
    return completion


def _upstream_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner.get("message"), str):
            return inner["message"][:300]
    return str(exc)[:300]


def build_teacher_clients(
    config: FlywheelConfig, environ: Mapping[str, str] | None = None
) -> dict[str, AsyncOpenAI]:
    """One AsyncOpenAI per distinct upstream, keyed by the workloads it serves."""
    environ = os.environ if environ is None else environ
    shared: dict[tuple[Any, ...], AsyncOpenAI] = {}
    clients = {}
    for workload in config.workloads:
        teacher = config.teacher_for(workload.id)
        if not teacher.base_url:
            continue
        key = (
            teacher.base_url,
            teacher.api_key_env,
            tuple(sorted(teacher.headers.items())),
            teacher.timeout_s,
        )
        if key not in shared:
            shared[key] = make_teacher_client(teacher, environ)
        clients[workload.id] = shared[key]
    return clients


def make_teacher_client(teacher: TeacherConfig, environ: Mapping[str, str]) -> AsyncOpenAI:
    from flywheel.openai_client import teacher_openai_client

    return teacher_openai_client(teacher, environ.get(teacher.api_key_env) or MISSING_KEY, sdk_retries=True)
