"""A retrying, rate-limited teacher client over an `openai.AsyncOpenAI` that is passed in.

`make_client(teacher_config, env)` is the one place the API key is read (from the env var the config
names). The key then lives only inside the AsyncOpenAI object; this module never logs or raises it,
and error details are scrubbed of it in case an endpoint echoes it back.

The client owns a private event loop thread: httpx connection pools and asyncio primitives are bound
to the loop that first used them, so sync callers go through `run_sync`, which always uses that loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import openai
import orjson

from flywheel.config import ConfigError, TeacherConfig
from flywheel.openai_client import teacher_openai_client
from flywheel.teacher.limits import RateLimits

T = TypeVar("T")
log = logging.getLogger("flywheel.teacher")
MAX_RETRY_AFTER_S = 120.0
JSON_HEADERS = {"Content-Type": "application/json"}
MESSAGE_KEYS = ("content", "tool_calls", "refusal")
RETRYABLE = {"rate_limited", "server_error", "timeout", "connection", "malformed_response"}


@dataclass(slots=True)
class Completion:
    """One teacher answer: the assistant message and what it cost in tokens and time."""

    message: dict[str, Any]
    finish_reason: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    logprobs: list[dict[str, Any]] | None = None

    def as_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("message", "finish_reason", "model", "latency_ms")}
        if self.logprobs is not None:
            out["logprobs"] = self.logprobs
        return out


class AttemptGate(Protocol):
    """Sees every attempt of a call and may refuse the next one by raising (a circuit breaker)."""

    def check(self) -> None: ...
    def failed(self, exc: TeacherCallError) -> None: ...
    def succeeded(self) -> None: ...


class TeacherCallError(RuntimeError):
    """A call that failed for good; `reason` is a short code (rate_limited, timeout, bad_request, ...)."""

    def __init__(
        self, reason: str, detail: str = "", status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.status = status
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


def make_client(
    teacher: TeacherConfig,
    env: Mapping[str, str] | None = None,
    *,
    http_client: Any = None,
    **options: Any,
) -> TeacherClient:
    """Build the AsyncOpenAI for `teacher` (key from env[teacher.api_key_env]) and wrap it."""
    if not teacher.base_url:
        raise ConfigError("teacher.base_url is not set: only replay works without a live teacher")
    key = (os.environ if env is None else env).get(teacher.api_key_env)
    if not key:
        raise ConfigError(
            f"the teacher API key is missing: set the environment variable {teacher.api_key_env} "
            "(named by teacher.api_key_env; any non-empty value for endpoints that need none)"
        )
    # retries are ours: a 429 pauses the whole batch, each retry is checked against budget and breaker
    client = teacher_openai_client(teacher, key, sdk_retries=False, http_client=http_client)
    return TeacherClient(client, teacher, secrets=[key], **options)


class TeacherClient:
    """Concurrency limit, RPM/TPM limits, per-call timeout and retries around chat.completions."""

    def __init__(
        self,
        openai_client: Any,
        teacher: TeacherConfig,
        *,
        secrets: Sequence[str] = (),
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self.openai = openai_client
        self.config = teacher
        self.model = teacher.model
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._slots = asyncio.Semaphore(teacher.concurrency)
        # a fanned-out run passes limits every worker process shares (flywheel/teacher/shared.py)
        self._limits = limits or RateLimits(teacher.requests_per_minute, teacher.tokens_per_minute)
        self._paused_until = 0.0  # time.monotonic() before which no attempt starts (after a 429)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.attempts = 0

    def __repr__(self) -> str:  # never shows the key the wrapped client holds
        return f"TeacherClient(base_url={self.config.base_url!r}, model={self.model!r})"

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def complete(self, request: dict[str, Any], gate: AttemptGate | None = None) -> Completion:
        """Send one chat.completions request (model defaults to the config's); retry what is retryable.

        A 429 pauses every call of this client until its Retry-After (or backoff) has passed, so a
        rate-limit storm is met by one wave per pause, not by every queued call in turn. `gate` sees
        each attempt (teacher/breaker.py) and may refuse the next one.
        """
        payload = {"model": self.model, **request}
        estimate = estimate_tokens(payload)
        resume_at = 0.0  # when this call's own last delay ends: a pause up to then is already served
        for attempt in range(self.config.max_retries + 1):
            await self._limits.acquire(estimate)
            try:
                async with self._slots:
                    await self._wait_out_pause(resume_at)
                    if gate is not None:
                        gate.check()
                    self.attempts += 1
                    completion = await self._attempt(payload)
            except TeacherCallError as exc:
                self._limits.settle(estimate, 0)
                if gate is not None:
                    gate.failed(exc)
                if exc.reason not in RETRYABLE or attempt == self.config.max_retries:
                    raise
                delay = self._delay(attempt, exc.retry_after)
                resume_at = max(resume_at, time.monotonic() + delay)
                if exc.reason == "rate_limited":
                    self._paused_until = max(self._paused_until, resume_at)
                log.debug("teacher %s (attempt %d); retrying in %.2fs", exc.reason, attempt + 1, delay)
                await self._sleep(delay)
                continue
            self._limits.settle(estimate, completion.prompt_tokens + completion.completion_tokens)
            if gate is not None:
                gate.succeeded()
            return completion
        raise AssertionError("unreachable")

    async def _wait_out_pause(self, resume_at: float) -> None:
        """Sleep until the shared 429 pause ends, less what this call's own delay already covered."""
        remaining = self._paused_until - max(time.monotonic(), resume_at)
        if remaining > 0:
            await self._sleep(remaining)

    async def _attempt(self, payload: dict[str, Any]) -> Completion:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                # The client's generic POST (its documented route for custom requests) rather than
                # chat.completions.create: create() deep-transforms the params and builds pydantic
                # models, which cost ~40% of the client CPU at a few hundred calls a second; orjson
                # encodes the body faster than the client's json.dumps. Auth, errors and status handling
                # are the same.
                body = await self.openai.post(
                    "/chat/completions",
                    content=orjson.dumps(payload),
                    cast_to=bytes,
                    options={"timeout": self.config.timeout_s, "headers": JSON_HEADERS},
                )
            response = orjson.loads(body)
        except Exception as exc:
            raise self._classify(exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            return to_completion(response, payload["model"], latency_ms)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise TeacherCallError("malformed_response", f"unexpected response shape: {exc}") from None

    def _classify(self, exc: Exception) -> TeacherCallError:
        detail = self.redact(str(exc))[:500]
        if isinstance(exc, TimeoutError | openai.APITimeoutError):
            return TeacherCallError("timeout", f"no answer within {self.config.timeout_s:g}s")
        if isinstance(exc, openai.APIStatusError):
            retry_after = parse_retry_after(exc.response.headers)
            return TeacherCallError(status_reason(exc.status_code), detail, exc.status_code, retry_after)
        if isinstance(exc, openai.APIConnectionError):
            return TeacherCallError("connection", detail)
        if isinstance(exc, ValueError | openai.APIResponseValidationError):
            return TeacherCallError("malformed_response", detail)
        return TeacherCallError("error", f"{type(exc).__name__}: {detail}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After when the server gave one, else exponential backoff with jitter."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S) * (1 + 0.1 * self._rng.random())
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the client's own loop and wait; Ctrl-C cancels it and waits for its cleanup."""
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("run_sync called from the client's own loop; await the coroutine instead")
        done = threading.Event()

        async def tracked() -> T:
            try:
                return await coro
            finally:
                done.set()

        future = asyncio.run_coroutine_threadsafe(tracked(), loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            done.wait(timeout=30)
            raise

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="teacher-loop", daemon=True)
            self._thread.start()
        return self._loop

    def close(self) -> None:
        """Close the HTTP client and stop the private loop (if one was started)."""
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.openai.close(), self._loop).result(timeout=10)
        except Exception as exc:  # closing is best effort; the process may be shutting down
            log.debug("closing the teacher client failed: %s", type(exc).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> TeacherClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def status_reason(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status in (408, 409) or status >= 500:
        return "timeout" if status in (408, 504) else "server_error"
    if status in (401, 403):
        return "auth"
    return "bad_request"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from retry-after-ms, Retry-After seconds (floats allowed) or an HTTP date."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    value = headers.get("retry-after")
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def estimate_usage(payload: dict[str, Any]) -> tuple[int, int]:
    """(prompt, completion) token guesses for limits and budgets: ~4 bytes a token, the output cap."""
    prompt = len(orjson.dumps(payload.get("messages"))) + len(orjson.dumps(payload.get("tools") or []))
    cap = payload.get("max_tokens") or payload.get("max_completion_tokens") or 256
    return prompt // 4, int(cap)


def estimate_tokens(payload: dict[str, Any]) -> int:
    return sum(estimate_usage(payload))


def to_completion(response: Any, model: str, latency_ms: float) -> Completion:
    """An openai ChatCompletion (or its dict) -> Completion with a plain-dict message."""
    data = response if isinstance(response, dict) else response.model_dump(exclude_none=True)
    choice = data["choices"][0]
    raw = choice["message"]
    message = {"role": "assistant", **{k: raw[k] for k in MESSAGE_KEYS if raw.get(k) is not None}}
    usage = data.get("usage") or {}
    logprobs = compact_logprobs((choice.get("logprobs") or {}).get("content"))
    return Completion(
        message=message,
        finish_reason=choice.get("finish_reason"),
        model=data.get("model") or model,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        latency_ms=round(latency_ms, 2),
        logprobs=logprobs,
    )


def compact_logprobs(content: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Per token: {"token", "logprob", "top": [[token, logprob], ...]} (bytes dropped to save space)."""
    if not content:
        return None
    return [
        {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "top": [[alt["token"], alt["logprob"]] for alt in entry.get("top_logprobs") or []],
        }
        for entry in content
    ]
