"""LLM-as-judge: the teacher scores a candidate answer against a reference with a rubric.

The judge is asked for JSON {"score", "reason"} (response_format json_schema where supported), and the
reply is parsed robustly: code fences, prose around the object, scores as strings ("10", "8/10",
"7.5 out of 10") and other key names (rating, grade), MT-Bench's "Rating: [[8]]", a bare number or
"10/10" as the whole reply. Numbers are read whole: "10" is ten, never the digit 1 followed by
noise, and "4/5" on a 1-10 scale is 8. A reply with no usable score gets one retry with the error
shown. Paid calls land in the cost ledger with kind 'evaluation'; answers are cached by request in
the teacher cache, so a re-run judges for free.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flywheel.pricing import PriceCatalog
from flywheel.records import message_text
from flywheel.store.db import Warehouse
from flywheel.teacher.budget import BudgetExhausted
from flywheel.teacher.client import TeacherCallError, TeacherClient
from flywheel.teacher.relabel import Progress, open_run
from flywheel.teacher.runs import LabelReport, new_run_id
from flywheel.teacher.session import TeacherSession
from flywheel.teacher.structured import InvalidAnswer, retry_request

DEFAULT_RUBRIC = (
    "Score how well the candidate answer matches the reference answer in meaning and correctness: "
    "1 = wrong or unrelated, 10 = equivalent in meaning and fully correct. Differences in wording or "
    "formatting that do not change the meaning do not lower the score."
)
SCORE_KEYS = ("score", "rating", "grade")
REASON_KEYS = ("reason", "explanation", "rationale", "justification")
NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
NUM = r"-?\d+(?:\.\d+)?"
FRACTION = rf"({NUM})\s*(?:/|out of)\s*({NUM})"
LOOSE_SCORE_RE = re.compile(rf"(?:score|rating|grade)\W{{0,4}}(?:{FRACTION}|({NUM}))", re.IGNORECASE)
BRACKETED_RE = re.compile(rf"\[\[\s*(?:{FRACTION}|({NUM}))\s*\]\]")  # MT-Bench: "Rating: [[8]]"
WHOLE_REPLY_RE = re.compile(rf"^\W*(?:{FRACTION}|({NUM}))\W*$")  # "10", "10/10", "**9**."
OBJECT_RE = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class JudgeScore:
    score: float
    reason: str


def judge_request(
    candidate: str,
    reference: str,
    rubric: str = DEFAULT_RUBRIC,
    *,
    question: str | None = None,
    scale: tuple[float, float] = (1, 10),
    json_schema: bool = True,
) -> dict[str, Any]:
    low, high = scale
    system = (
        "You are a strict, fair evaluator. Apply the rubric to the candidate answer, using the reference "
        f'answer as ground truth. Reply with JSON only: {{"score": <number from {low:g} to {high:g}>, '
        f'"reason": "<one or two sentences>"}}.\n\nRubric: {rubric}'
    )
    parts = [f"Input:\n{question}\n"] if question else []
    parts += [f"Reference answer:\n{reference}\n", f"Candidate answer:\n{candidate}"]
    request: dict[str, Any] = {
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(parts)}],
        "temperature": 0.0,
    }
    if json_schema:
        schema = {
            "type": "object",
            "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
            "required": ["score", "reason"],
            "additionalProperties": False,
        }
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "judgement", "strict": True, "schema": schema},
        }
    return request


def parse_judge_score(text: str, scale: tuple[float, float] = (1, 10)) -> JudgeScore:
    """The score and reason in a judge's reply; raises InvalidAnswer when there is no usable score."""
    data = _json_object(text)
    raw_score: Any = None
    reason = ""
    if isinstance(data, dict):
        raw_score = next((data[k] for k in SCORE_KEYS if k in data), None)
        reason = str(next((data[k] for k in REASON_KEYS if data.get(k)), ""))
    low, high = scale
    score = to_number(raw_score, high) if isinstance(data, dict) else _bare_json_number(data, high)
    for pattern in (BRACKETED_RE, LOOSE_SCORE_RE, WHOLE_REPLY_RE):
        match = pattern.search(text.strip()) if score is None else None
        if match:
            score = _match_score(match, high)
    if score is None:
        raise InvalidAnswer("no_score", f"no numeric score in the reply {text.strip()[:120]!r}")
    if not low <= score <= high:
        raise InvalidAnswer("score_out_of_range", f"score {score:g} is outside {low:g}..{high:g}")
    return JudgeScore(score, reason or text.strip()[:500])


def to_number(value: Any, high: float = 10) -> float | None:
    """10, 9.5, "10", " 8/10 ", "7.5 out of 10" -> the score on a scale topped by `high` ("4/5" -> 8
    when high is 10); None when there is no number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        fraction = re.search(FRACTION, value)
        if fraction:
            return _rescale(float(fraction.group(1)), float(fraction.group(2)), high)
        match = NUMBER_RE.search(value)
        return float(match.group(0)) if match else None
    return None


def _rescale(numerator: float, denominator: float, high: float) -> float:
    """N/D on a scale topped by `high`: N itself when D is `high`, else N * high / D."""
    if denominator in (0, high):
        return numerator
    return numerator * high / denominator


def _match_score(match: re.Match[str], high: float) -> float:
    """The score in a FRACTION-or-NUM match (groups 1-2: N/D, group 3: a plain number)."""
    if match.group(1) is not None:
        return _rescale(float(match.group(1)), float(match.group(2)), high)
    return float(match.group(3))


def _bare_json_number(data: Any, high: float) -> float | None:
    """A reply that is JSON but not an object: 8, "8/10", [[8]], [8]."""
    while isinstance(data, list) and len(data) == 1:
        data = data[0]
    return to_number(data, high) if isinstance(data, int | float | str) else None


def _json_object(text: str) -> Any:
    stripped = re.sub(r"^\s*```(?:json)?|```\s*$", "", text.strip())
    for candidate in (stripped, *(m.group(0) for m in [OBJECT_RE.search(stripped)] if m)):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


async def ajudge_many(
    pairs: Sequence[tuple[str, str]],
    rubric: str = DEFAULT_RUBRIC,
    *,
    client: TeacherClient,
    warehouse: Warehouse | None = None,
    prices: PriceCatalog | None = None,
    questions: Sequence[str | None] | None = None,
    scale: tuple[float, float] = (1, 10),
    run_id: str | None = None,
    workload_id: str | None = None,
    max_usd: float | None = None,
    progress: Progress = None,
) -> list[JudgeScore | None]:
    """Scores for (candidate, reference) pairs; None where the judge failed for good."""
    report = LabelReport(run_id or new_run_id(workload_id or "judge", "judge"), workload_id or "", "judge")
    prices = prices or PriceCatalog.load()
    async with open_run(client, warehouse, prices, report, max_usd=max_usd, kind="evaluation") as run:
        run.session.k_votes = 1

        async def one(i: int) -> JudgeScore | None:
            question = questions[i] if questions else None
            try:
                return await _judge_one(run.session, *pairs[i], rubric, question, scale)
            except (InvalidAnswer, TeacherCallError, BudgetExhausted):
                return None
            finally:
                if progress is not None:
                    progress(1)

        return list(await asyncio.gather(*(one(i) for i in range(len(pairs)))))


async def _judge_one(
    session: TeacherSession, candidate: str, reference: str, rubric: str, question: str | None, scale: tuple
) -> JudgeScore:
    def build() -> dict[str, Any]:
        return judge_request(
            candidate, reference, rubric, question=question, scale=scale, json_schema=session.json_schema_ok
        )

    request = build()
    try:
        answer = await session.ask(request)
    except TeacherCallError as exc:
        if exc.reason != "bad_request" or "response_format" not in request:
            raise
        session.json_schema_ok = False  # the endpoint rejects json_schema: ask by instruction, then parse
        request = build()
        answer = await session.ask(request)
    try:
        return parse_judge_score(message_text(answer.completion.message), scale)
    except InvalidAnswer as error:
        second = await session.ask(retry_request(request, answer.completion.message, error))
        return parse_judge_score(message_text(second.completion.message), scale)


def judge_many(
    pairs: Sequence[tuple[str, str]], rubric: str = DEFAULT_RUBRIC, **kwargs: Any
) -> list[JudgeScore | None]:
    """Sync wrapper of `ajudge_many` (runs on the client's loop)."""
    return kwargs["client"].run_sync(ajudge_many(pairs, rubric, **kwargs))


def judge(
    candidate: str, reference: str, rubric: str = DEFAULT_RUBRIC, *, client: TeacherClient, **kwargs: Any
) -> JudgeScore:
    """One score; raises InvalidAnswer/TeacherCallError when the judge gives no usable score."""
    return client.run_sync(ajudge(candidate, reference, rubric, client=client, **kwargs))


async def ajudge(
    candidate: str,
    reference: str,
    rubric: str = DEFAULT_RUBRIC,
    *,
    client: TeacherClient,
    warehouse: Warehouse | None = None,
    prices: PriceCatalog | None = None,
    question: str | None = None,
    scale: tuple[float, float] = (1, 10),
    run_id: str | None = None,
    workload_id: str | None = None,
) -> JudgeScore:
    report = LabelReport(run_id or new_run_id(workload_id or "judge", "judge"), workload_id or "", "judge")
    async with open_run(client, warehouse, prices or PriceCatalog.load(), report, kind="evaluation") as run:
        run.session.k_votes = 1
        return await _judge_one(run.session, candidate, reference, rubric, question, scale)
