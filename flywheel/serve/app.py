"""The OpenAI-compatible app: /v1/chat/completions, /v1/feedback, /v1/models, /health, /metrics.

Per call: authenticate, bound the request, route it (student or teacher, see router), make the
capture record durable in the spool, and only then answer (JSON or SSE). A call whose capture cannot
be written is refused with 503, so no answer ever leaves without its record. Clients (the teacher
upstream, the spool, the champion watcher) are passed in; nothing is built from global settings.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from flywheel.bundle import default_bundle
from flywheel.serve.capture import capture_record, with_shadow
from flywheel.serve.champions import ChampionWatcher
from flywheel.serve.feedback import FEEDBACK_PREFIX, feedback_dir, feedback_record
from flywheel.serve.metrics import CONTENT_TYPE, ServeMetrics
from flywheel.serve.resolve import model_names, resolve_workload
from flywheel.serve.responses import ApiError, sse_events
from flywheel.serve.router import Call, Outcome, Router
from flywheel.serve.security import (
    authenticate,
    check_content_length,
    loggable_request,
    raise_too_large,
    validate_payload,
)
from flywheel.serve.settings import ServeSettings
from flywheel.serve.spool import SpoolError, SpoolWriter
from flywheel.serve.teacher import TeacherClients

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger("flywheel.serve")
SHUTDOWN_SHADOW_WAIT_S = 5.0
TICK_S = 1.0


@dataclass
class Serving:
    """What the request handlers share: settings, router, capture, metrics, background shadows."""

    settings: ServeSettings
    champions: ChampionWatcher
    router: Router
    spool: SpoolWriter
    metrics: ServeMetrics
    feedback: SpoolWriter
    shadows: set[asyncio.Task[None]] = field(default_factory=set)


def make_app(
    settings: ServeSettings,
    *,
    champions: ChampionWatcher,
    teacher_client: TeacherClients | Mapping[str, AsyncOpenAI] | AsyncOpenAI | None,
    spool: SpoolWriter,
    rng: random.Random | None = None,
    feedback_spool: SpoolWriter | None = None,
) -> FastAPI:
    """The app. `teacher_client`: one AsyncOpenAI for every workload, or one per workload id.
    `feedback_spool`: where /v1/feedback writes (default `<spool dir>/.feedback/feedback-*.jsonl`)."""
    metrics = ServeMetrics()
    teachers = (
        teacher_client
        if isinstance(teacher_client, TeacherClients)
        else TeacherClients(teacher_client, settings.teacher_models)
    )
    champions.set_batch_observer(metrics.observe_batch)
    champions.set_defaults({w: default_bundle(workload) for w, workload in settings.workloads.items()})
    feedback = feedback_spool or SpoolWriter(feedback_dir(spool.directory), prefix=FEEDBACK_PREFIX)
    router = Router(settings, champions, teachers, rng)
    serving = Serving(settings, champions, router, spool, metrics, feedback)
    app = FastAPI(
        title="flywheel serve", lifespan=_lifespan(serving), docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.serving = serving
    app.state.metrics, app.state.router, app.state.spool, app.state.champions = (
        metrics,
        serving.router,
        spool,
        champions,
    )
    _add_routes(app, serving)
    return app


def _lifespan(serving: Serving) -> Any:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        spool, champions = serving.spool, serving.champions
        recovered = await asyncio.to_thread(spool.recover)
        if recovered:
            log.warning("recovered %d captured calls whose shadow never finished", recovered)
        await champions.start()
        ticker = asyncio.create_task(_tick(champions, spool, serving.metrics))
        try:
            yield
        finally:
            ticker.cancel()
            await _finish(serving.shadows)
            await spool.drain()
            await asyncio.to_thread(spool.recover)  # shadows cut short land without a teacher answer
            await champions.stop()
            await serving.feedback.drain()
            serving.feedback.close()
            spool.close()

    return lifespan


def _add_routes(app: FastAPI, serving: Serving) -> None:
    settings, champions, metrics = serving.settings, serving.champions, serving.metrics

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 "ok" once every champion is loaded (or failed for good); 503 "loading" before."""
        ready = champions.ready
        body = {
            "status": "ok" if ready else "loading",
            "workloads": sorted(settings.workloads),
            "champions": champions.snapshot(),
            "spool": {"dir": str(serving.spool.directory), "lines_written": serving.spool.lines_written},
            "shadows_in_flight": serving.router.shadows_in_flight,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.set_champions(champions.serving())
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authenticate(request.headers.get("authorization"), settings.api_keys)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "flywheel"}
            for name in model_names(settings, champions.bundles())
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await _chat_completion(serving, request)

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> JSONResponse:
        return await _feedback(serving, request)


async def _feedback(serving: Serving, request: Request) -> JSONResponse:
    """Authenticate, validate, fsync to the feedback spool, then 200; 503 when it cannot be recorded."""
    key_id, payload = await _read_json(request, serving.settings)
    record = feedback_record(payload, request.headers.get("x-flywheel-client-id") or key_id)
    try:
        await serving.feedback.write(record)
    except SpoolError as exc:
        serving.metrics.spool_errors.inc()
        log.error("feedback capture failed for %s: %s", record["request_id"], exc)
        raise ApiError(503, "the feedback could not be recorded; retry", code="capture_failed") from exc
    body_out = {"id": record["id"], "request_id": record["request_id"], "score": record["score"]}
    return JSONResponse(body_out | {"status": "recorded"})


async def _chat_completion(serving: Serving, request: Request) -> Response:
    """Read, route, capture durably, then answer; a capture failure answers 503 instead."""
    started = time.perf_counter()
    try:
        call = await _read_call(request, serving.settings, serving.champions)
    except ApiError as exc:
        serving.metrics.requests.labels("-", "rejected", "none", str(exc.status)).inc()
        raise
    outcome = await serving.router.answer(call)
    latency_s = time.perf_counter() - started
    record = capture_record(call, outcome, latency_s * 1000)
    try:
        await (serving.spool.write_pending(record) if outcome.shadow else serving.spool.write(record))
    except SpoolError as exc:
        serving.metrics.spool_errors.inc()
        log.error("capture failed for %s: %s", call.request_id, exc)
        raise ApiError(
            503, "the call could not be recorded, so it is not answered; retry", code="capture_failed"
        ) from exc
    _observe(serving.metrics, call, outcome, latency_s)
    _log_call(call, outcome, latency_s, serving.settings.serve.log_prompts)
    if outcome.shadow:
        task = asyncio.create_task(_shadow(serving, call, outcome, record))
        serving.shadows.add(task)
        task.add_done_callback(serving.shadows.discard)
    return _respond(call, outcome)


async def _read_json(request: Request, settings: ServeSettings) -> tuple[str | None, Any]:
    """(the caller's key id, the JSON body) of an authenticated request within the size limit."""
    key_id = authenticate(request.headers.get("authorization"), settings.api_keys)
    limit = settings.serve.max_request_bytes
    check_content_length(request.headers.get("content-length"), limit)
    body = bytearray()
    async for chunk in request.stream():  # counted as it arrives: a huge body is refused early
        body += chunk
        if len(body) > limit:
            raise_too_large(len(body), limit)
    try:
        return key_id, orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc


async def _read_call(request: Request, settings: ServeSettings, champions: ChampionWatcher) -> Call:
    """Authenticated, size-checked, validated call; raises ApiError otherwise."""
    key_id, payload = await _read_json(request, settings)
    validate_payload(payload, settings.serve.max_tokens_limit)
    workload_id = resolve_workload(settings, champions.bundles(), payload)
    user = payload.get("user")
    client_id = (
        user if isinstance(user, str) and user else request.headers.get("x-flywheel-client-id") or key_id
    )
    return Call(uuid.uuid4().hex[:24], settings.workloads[workload_id], payload, client_id)


def _respond(call: Call, outcome: Outcome) -> Response:
    headers = {
        "x-request-id": call.request_id,
        "x-flywheel-served-by": outcome.served_by,
        "x-flywheel-route": outcome.route,
    }
    if outcome.fallback_reason:
        headers["x-flywheel-fallback-reason"] = outcome.fallback_reason
    if outcome.fallback_wanted:
        headers["x-flywheel-fallback-wanted"] = outcome.fallback_wanted
    if outcome.completion is None:
        error = outcome.error or ApiError(502, "no answer", code="no_answer")
        return JSONResponse(error.body(), status_code=error.status, headers=headers)
    if call.payload.get("stream"):
        include_usage = bool((call.payload.get("stream_options") or {}).get("include_usage"))
        events = list(sse_events(outcome.completion, include_usage))
        return StreamingResponse(_iterate(events), media_type="text/event-stream", headers=headers)
    return Response(orjson.dumps(outcome.completion), media_type="application/json", headers=headers)


async def _iterate(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


async def _shadow(serving: Serving, call: Call, outcome: Outcome, record: dict[str, Any]) -> None:
    spool, metrics = serving.spool, serving.metrics
    result = await serving.router.shadow(call, outcome)
    metrics.shadows.labels(call.workload_id, result["shadow"]).inc()
    if result.get("shadow_cost_usd"):
        metrics.cost.labels(call.workload_id, "shadow").inc(result["shadow_cost_usd"])
    try:
        await spool.resolve_pending(with_shadow(record, result))
    except SpoolError as exc:  # the call stays in the write-ahead log and is recovered at next start
        metrics.spool_errors.inc()
        log.error("shadow capture failed for %s: %s", call.request_id, exc)


def _observe(metrics: ServeMetrics, call: Call, outcome: Outcome, latency_s: float) -> None:
    workload, served_by = call.workload_id, outcome.served_by
    status = str(outcome.error.status) if outcome.error is not None else "200"
    metrics.requests.labels(workload, outcome.route, served_by, status).inc()
    metrics.latency.labels(workload, served_by).observe(latency_s)
    if outcome.route == "fallback" and outcome.fallback_reason:
        metrics.fallbacks.labels(workload, outcome.fallback_reason).inc()
    elif outcome.fallback_wanted:  # wanted but not possible: counted all the same
        metrics.fallbacks.labels(workload, outcome.fallback_wanted).inc()
    if outcome.prompt_tokens:
        metrics.tokens.labels(workload, served_by, "prompt").inc(outcome.prompt_tokens)
    if outcome.completion_tokens:
        metrics.tokens.labels(workload, served_by, "completion").inc(outcome.completion_tokens)
    if outcome.cost_usd:
        metrics.cost.labels(workload, served_by).inc(outcome.cost_usd)


def _log_call(call: Call, outcome: Outcome, latency_s: float, log_prompts: bool) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "id": call.request_id,
        "workload": call.workload_id,
        "route": outcome.route,
        "served_by": outcome.served_by,
        "reason": outcome.fallback_reason,
        "status": outcome.error.status if outcome.error else 200,
        "latency_ms": round(latency_s * 1000, 1),
        "request": loggable_request(call.payload, log_prompts),
    }
    if log_prompts:
        fields["answer"] = outcome.completion
    log.info("call %s", orjson.dumps(fields, default=str).decode())


async def _tick(champions: ChampionWatcher, spool: SpoolWriter, metrics: ServeMetrics) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        try:
            metrics.set_champions(champions.serving())
            await asyncio.to_thread(spool.maybe_rotate)
        except Exception:  # housekeeping must not die on one bad turn
            log.exception("serve housekeeping failed")


async def _finish(tasks: set[asyncio.Task[None]]) -> None:
    """Give running shadows a moment; cancel the rest (they stay in the write-ahead log)."""
    if not tasks:
        return
    _, pending = await asyncio.wait(set(tasks), timeout=SHUTDOWN_SHADOW_WAIT_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
