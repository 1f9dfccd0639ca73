"""Who answers a call: the workload's champion student, or the teacher, and why.

A workload without a champion is proxied to the teacher. With one, the student answers (dynamically
batched, through its model bundle: the raw request in, the answer in the teacher's format out)
unless it fails, is unsure (confidence under the workload's threshold: serve.thresholds, else the
champion's calibrated one, else serve.confidence_threshold), gives an answer that is invalid for the
task, or answers in text when its partial promotion claims only tool-call turns (`text_turn`). Such
a call is never answered silently: the workload's `on_unsure` policy decides between the teacher (a
fallback), the student's answer marked `x-flywheel-fallback-wanted`, or a 503 naming the reason;
every case counts in flywheel_fallbacks_total{reason}. A call that arrives while its champion loads
waits for it (serve.load_wait_s). Student answers are sometimes
shadowed: the teacher is also asked, after the client got its answer, so the two can be compared.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from flywheel.answers import AnswerSpec, read_message
from flywheel.answers.claims import claimed
from flywheel.config import WorkloadConfig
from flywheel.records import Example
from flywheel.serve.champions import Champion, ChampionWatcher
from flywheel.serve.responses import ApiError, completion_message, completion_usage, student_completion
from flywheel.serve.settings import ServeSettings
from flywheel.serve.teacher import TeacherClients

log = logging.getLogger("flywheel.serve")
Route = Literal["student", "fallback", "proxy"]


@dataclass
class Call:
    request_id: str
    workload: WorkloadConfig
    payload: dict[str, Any]
    client_id: str | None
    arrived_ts: float = field(default_factory=time.time)

    @property
    def workload_id(self) -> str:
        return self.workload.id


@dataclass
class Outcome:
    """The answer to one call (or the error the client gets) and everything the capture records."""

    route: Route
    served_by: Literal["student", "teacher"]
    completion: dict[str, Any] | None = None
    error: ApiError | None = None
    model: str | None = None
    fallback_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    shadow: bool = False
    fallback_wanted: str | None = None  # why the teacher should have answered, when it could not


@dataclass
class StudentTry:
    outcome: Outcome | None  # the student's answer, when it produced one
    reason: str | None  # why it must not be served; None = serve it
    detail: dict[str, Any] = field(default_factory=dict)


class Router:
    def __init__(
        self,
        settings: ServeSettings,
        champions: ChampionWatcher,
        teachers: TeacherClients,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.champions = champions
        self.teachers = teachers
        self._rng = rng or random.Random()
        self.shadows_in_flight = 0

    async def answer(self, call: Call) -> Outcome:
        lookup = self.champions.lookup(call.workload_id)
        if lookup.reason == "champion_loading":
            await self.champions.wait_loaded(call.workload_id, self.settings.serve.load_wait_s)
            lookup = self.champions.lookup(call.workload_id)
        if lookup.champion is None:
            route: Route = "proxy" if lookup.reason == "no_champion" else "fallback"
            return await self.from_teacher(call, route, lookup.reason)
        attempt = await self._from_student(call, lookup.champion)
        if attempt.reason is None and attempt.outcome is not None:
            attempt.outcome.shadow = self._should_shadow(call.workload_id, attempt.outcome)
            return attempt.outcome
        return await self._unsure(call, attempt)

    async def _unsure(self, call: Call, attempt: StudentTry) -> Outcome:
        """The workload's policy for a student answer that must not go out as a normal one."""
        reason = attempt.reason or "student_error"
        teacher = self.teachers.available(call.workload_id)
        policy = self.settings.on_unsure(call.workload_id, teacher)
        if policy == "teacher":
            return await self.from_teacher(call, "fallback", reason, attempt.detail)
        extra = {k: v for k, v in attempt.detail.items() if k != "student_message"}
        if policy == "student" and attempt.outcome is not None:
            attempt.outcome.metadata.update(extra, fallback_wanted=reason)
            attempt.outcome.fallback_wanted = reason
            return attempt.outcome
        why = "no teacher is configured" if not teacher else "the workload's on_unsure policy is error"
        error = ApiError(
            503, f"the student's answer is not usable ({reason}) and {why}", code="student_unsure"
        )
        return Outcome(
            "student",
            "student",
            error=error,
            model=attempt.outcome.model if attempt.outcome else None,
            metadata={**extra, "fallback_wanted": reason},
            fallback_wanted=reason,
        )

    async def from_teacher(
        self, call: Call, route: Route, reason: str | None, metadata: dict[str, Any] | None = None
    ) -> Outcome:
        outcome = Outcome(route, "teacher", fallback_reason=reason, metadata=dict(metadata or {}))
        model = self.teachers.model(call.workload_id)
        outcome.model = model
        try:
            answer = await self.teachers.ask(call.workload_id, call.payload)
        except ApiError as exc:
            outcome.error = exc
            return outcome
        completion = answer.completion
        outcome.metadata["upstream_id"] = completion.get("id")
        completion["id"] = f"chatcmpl-{call.request_id}"
        outcome.completion = completion
        outcome.model = completion.get("model") or model
        outcome.prompt_tokens, outcome.completion_tokens = completion_usage(completion)
        outcome.cost_usd = self.settings.prices.cost(
            outcome.model, outcome.prompt_tokens, outcome.completion_tokens
        )
        return outcome

    async def _from_student(self, call: Call, champion: Champion) -> StudentTry:
        detail: dict[str, Any] = {"student_model": champion.model_id}
        try:
            result = await champion.batcher.submit(student_example(call))
        except Exception as exc:
            log.warning("student %s failed on %s: %s", champion.model_id, call.request_id, type(exc).__name__)
            error = f"{type(exc).__name__}: {exc}"[:300]
            return StudentTry(None, "student_error", detail | {"student_error": error})
        prediction = result.prediction
        completion = student_completion(call.request_id, champion.model_id, prediction)
        outcome = Outcome(
            "student",
            "student",
            completion=completion,
            model=champion.model_id,
            prompt_tokens=prediction.prompt_tokens,
            completion_tokens=prediction.completion_tokens,
            cost_usd=self.settings.student_usd_per_hour * result.compute_s / 3600,
            metadata={"confidence": prediction.confidence, "batch_size": result.batch_size},
        )
        detail |= {
            "student_confidence": prediction.confidence,
            "student_message": completion_message(completion),
        }
        threshold = self.settings.threshold(call.workload_id, champion.entry.threshold)
        if prediction.confidence is not None and prediction.confidence < threshold:
            return StudentTry(outcome, "low_confidence", detail)
        if prediction.invalid_reason is not None:
            return StudentTry(
                outcome, "invalid_format", detail | {"invalid_reason": prediction.invalid_reason}
            )
        if not claimed(prediction.message, champion.entry.claims):
            return StudentTry(outcome, "text_turn", detail)  # a tool-only student's text answer
        return StudentTry(outcome, None)

    def _should_shadow(self, workload_id: str, outcome: Outcome | None = None) -> bool:
        serve = self.settings.serve
        if serve.shadow_rate <= 0 or not self.teachers.available(workload_id):
            return False
        if self.shadows_in_flight >= serve.shadow_concurrency:
            return False  # shed shadow load rather than queue it without bound
        rate = serve.shadow_rate
        confidence = (outcome.metadata if outcome is not None else {}).get("confidence")
        unsure_below = self.settings.threshold(workload_id) + serve.shadow_unsure_margin
        if isinstance(confidence, int | float) and confidence < unsure_below:
            # the student served but barely: where a shadow most often finds an error to learn from
            rate = min(1.0, rate * serve.shadow_unsure_boost)
        return self._rng.random() < rate

    async def shadow(self, call: Call, outcome: Outcome) -> dict[str, Any]:
        """Ask the teacher the same question; returns the metadata to record (agreement, cost)."""
        self.shadows_in_flight += 1
        try:
            teacher = await self.from_teacher(call, "fallback", None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a shadow never affects the client; record what went wrong
            return {"shadow": "error", "shadow_error": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            self.shadows_in_flight -= 1
        if teacher.error is not None or teacher.completion is None:
            message = teacher.error.message if teacher.error else "no answer"
            return {"shadow": "error", "shadow_error": message[:300]}
        agree = same_answer(call, outcome.completion or {}, teacher.completion)
        return {
            "shadow": "agree" if agree else "disagree",
            "shadow_cost_usd": teacher.cost_usd,
            "teacher_response": teacher.completion,
        }


def student_example(call: Call) -> Example:
    """The call as its champion's bundle takes it: the raw request, as the application sent it."""
    payload = call.payload
    return Example(
        example_id=call.request_id,
        workload_id=call.workload_id,
        messages=list(payload.get("messages") or []),
        target={},
        tools=payload.get("tools"),
        response_format=payload.get("response_format"),
        request=payload,
    )


def same_answer(call: Call, student: dict[str, Any], teacher: dict[str, Any]) -> bool:
    """Do the two completions give the same task-level answer (label, JSON, tool calls, text)?"""
    spec = AnswerSpec.of(call.workload)
    answers = [read_message(spec, completion_message(c), call.payload) for c in (student, teacher)]
    return answers[0].valid and answers[0].value == answers[1].value
