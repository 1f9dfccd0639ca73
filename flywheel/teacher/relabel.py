"""Relabel: ask the teacher again, constrained to the workload's format, with a k-sample majority vote.

Each of the k samples is checked (`parse_answer`); a failing one gets one retry with the error shown.
Valid samples vote on their task-level label; the winner's share of k is the confidence.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.pricing import PriceCatalog
from flywheel.records import Example, utcnow
from flywheel.store.db import Warehouse
from flywheel.teacher.breaker import TeacherUnavailable
from flywheel.teacher.budget import Budget, BudgetExhausted
from flywheel.teacher.cache import MemoryStore, TeacherStore
from flywheel.teacher.client import TeacherCallError, TeacherClient
from flywheel.teacher.labels import Label, label_id
from flywheel.teacher.runs import LabelReport, quarantine_row, upsert_run
from flywheel.teacher.session import Answer, TeacherSession
from flywheel.teacher.structured import (
    InvalidAnswer,
    ParsedAnswer,
    build_request,
    parse_answer,
    retry_request,
    uses_json_schema,
)

log = logging.getLogger("flywheel.teacher")
CHUNK = 4096  # examples whose cache entries are loaded and labeled together
Progress = Callable[[int], None] | None


@dataclass
class LabelRun:
    session: TeacherSession
    report: LabelReport
    snapshot_id: str | None = None


@asynccontextmanager
async def open_run(
    client: TeacherClient,
    warehouse: Warehouse | None,
    prices: PriceCatalog,
    report: LabelReport,
    *,
    max_usd: float | None = None,
    kind: str = "labeling",
    snapshot_id: str | None = None,
    store: Any = None,
    budget: Any = None,
) -> AsyncIterator[LabelRun]:
    """A session with a budget and a store; the label_runs row is written at start and at the end.

    A fanned-out shard (flywheel/teacher/shards.py) passes its own store (nothing written: its rows
    go back to the flow) and the run's shared budget; the flow then writes the one label_runs row.
    """
    own_store = store is None
    if store is None:
        store = TeacherStore(warehouse) if warehouse is not None else MemoryStore()
    if budget is None:
        budget = Budget(max_usd if max_usd is not None else client.config.max_usd)
    session = TeacherSession(
        client,
        store,
        prices,
        budget=budget,
        run_id=report.run_id,
        workload_id=report.workload_id or None,
        kind=kind,
    )
    await store.open()
    track = own_store and warehouse is not None and kind == "labeling"
    try:
        if track:
            await store.run(lambda con: upsert_run(con, report))
        yield LabelRun(session, report, snapshot_id)
        report.stopped_reason = _stopped_reason(session)
    except (asyncio.CancelledError, KeyboardInterrupt):
        report.stopped_reason = "interrupted"
        raise
    except Exception:
        report.stopped_reason = "error"
        raise
    finally:
        await session.aclose()
        report.calls, report.cost_usd, report.finished_at = session.calls, session.cost_usd, utcnow()
        await store.close()
        if track:
            await store.run(lambda con: upsert_run(con, report))


def _stopped_reason(session: TeacherSession) -> str:
    if session.breaker.tripped:
        log.warning("teacher unavailable: %s", session.breaker.describe())
        return "teacher_unavailable"
    return "budget" if session.budget.exhausted else "completed"


async def relabel_examples(
    run: LabelRun, examples: Sequence[Example], workload: WorkloadConfig, progress: Progress
) -> None:
    session, k = run.session, run.session.k_votes
    for start in range(0, len(examples), CHUNK):
        chunk = examples[start : start + CHUNK]
        requests = [_request(session, example, workload) for example in chunk]
        keys = [session.key(request, sample) for request in requests for sample in range(k)]
        await session.prefetch(keys)
        async with asyncio.TaskGroup() as group:
            for example, request in zip(chunk, requests, strict=True):
                group.create_task(label_item(run, example, workload, progress, request=request))
        session.forget(keys)


async def label_item(
    run: LabelRun,
    example: Example,
    workload: WorkloadConfig,
    progress: Progress,
    *,
    mode: str = "relabel",
    request: dict[str, Any] | None = None,
) -> Label | None:
    """Label one example and record the outcome (label row, or quarantine row with the reason)."""
    report = run.report
    try:
        label, fresh = await relabel_one(
            run.session, example, workload, mode=mode, snapshot_id=run.snapshot_id, request=request
        )
    except (BudgetExhausted, TeacherUnavailable):  # not the item's fault: the next run labels it
        report.skipped += 1
        return None
    except (InvalidAnswer, TeacherCallError) as exc:
        report.failed += 1
        report.failures[exc.reason] += 1
        detail = run.session.client.redact(exc.detail)
        run.session.store.record("quarantine", quarantine_row(example, exc.reason, detail, report.run_id))
        return None
    finally:
        if progress is not None:
            progress(1)
    report.labeled += 1
    report.cached += 0 if fresh else 1
    report.labels.append(label)
    run.session.store.record("labels", label.row())
    return label


async def relabel_one(
    session: TeacherSession,
    example: Example,
    workload: WorkloadConfig,
    *,
    mode: str,
    snapshot_id: str | None,
    request: dict[str, Any] | None = None,
) -> tuple[Label, bool]:
    """(label, whether any call was paid for); raises InvalidAnswer/TeacherCallError/BudgetExhausted."""
    k = session.k_votes
    results: list[Any]
    if k == 1:  # the common case: no gather, so no extra task per item
        try:
            results = [await answer_sample(session, example, workload, 0, request)]
        except (InvalidAnswer, TeacherCallError) as exc:
            results = [exc]
    else:
        samples = (answer_sample(session, example, workload, i, request) for i in range(k))
        results = await asyncio.gather(*samples, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, InvalidAnswer | TeacherCallError):
            raise result
    valid = [r for r in results if not isinstance(r, BaseException)]
    if not valid:
        raise next(r for r in results if isinstance(r, BaseException))
    votes = Counter(parsed.label for parsed, _ in valid)
    winner, count = max(votes.items(), key=lambda item: item[1])  # ties: the earliest sample's label
    parsed, answers = next((p, a) for p, a in valid if p.label == winner)
    everything = [a for _, group in valid for a in group]
    settings = f"{session.prompt_version}|k={k}"
    config = session.client.config
    label = Label(
        example_id=example.example_id,
        workload_id=example.workload_id,
        mode=mode,
        target=parsed.target,
        label=parsed.label,
        teacher_model=session.client.model,
        prompt_version=session.prompt_version,
        snapshot_id=snapshot_id,
        messages=example.messages if example.synthetic else None,
        confidence=count / k,
        votes=dict(votes),
        logprobs=answers[-1].completion.logprobs if config.logprobs_top_k is not None else None,
        cost_usd=sum(a.cached.cost_usd for a in everything),
        synthetic=example.synthetic,
        slice=example.slice,
        label_id=label_id(example.workload_id, example.example_id, mode, session.client.model, settings),
    )
    return label, any(a.fresh for a in everything)


async def answer_sample(
    session: TeacherSession,
    example: Example,
    workload: WorkloadConfig,
    sample: int,
    request: dict[str, Any] | None = None,
) -> tuple[ParsedAnswer, list[Answer]]:
    """One checked sample: ask; on an invalid answer, ask once more with the error shown."""
    if request is None or (uses_json_schema(request) and not session.json_schema_ok):
        request = _request(session, example, workload)
    answer = await _ask(session, example, workload, request, sample)
    if uses_json_schema(request) and not session.json_schema_ok:  # the fallback answered instead
        request = _request(session, example, workload)
    try:
        return _parse(answer, workload, example), [answer]
    except InvalidAnswer as error:
        second = await session.ask(retry_request(request, answer.completion.message, error), sample)
        return _parse(second, workload, example), [answer, second]


async def _ask(
    session: TeacherSession, example: Example, workload: WorkloadConfig, request: dict[str, Any], sample: int
) -> Answer:
    try:
        return await session.ask(request, sample)
    except TeacherCallError as exc:
        if exc.reason != "bad_request" or not uses_json_schema(request):
            raise
        if session.json_schema_ok:  # the endpoint rejects response_format json_schema: validate instead
            log.warning("teacher rejected response_format json_schema; falling back to instructions + checks")
            session.json_schema_ok = False
        return await session.ask(_request(session, example, workload), sample)


def _request(session: TeacherSession, example: Example, workload: WorkloadConfig) -> dict[str, Any]:
    return build_request(
        example, workload, session.client.config, json_schema=session.json_schema_ok, k_votes=session.k_votes
    )


def _parse(answer: Answer, workload: WorkloadConfig, example: Example) -> ParsedAnswer:
    completion = answer.completion
    return parse_answer(completion.message, workload, example, completion.finish_reason)
