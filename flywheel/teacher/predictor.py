"""The teacher as a `flywheel.records.Predictor`: evaluation scores it like any student.

Requests are the relabel requests with one deterministic sample, so answers already paid for while
relabeling (k_votes=1) are reused from the cache; new calls are ledgered with kind 'evaluation'.
"""

from __future__ import annotations

import asyncio

from flywheel.config import WorkloadConfig
from flywheel.pricing import PriceCatalog
from flywheel.records import Example, Prediction
from flywheel.store.db import Warehouse
from flywheel.teacher.budget import BudgetExhausted
from flywheel.teacher.client import TeacherCallError, TeacherClient
from flywheel.teacher.relabel import answer_sample, open_run
from flywheel.teacher.runs import LabelReport, new_run_id
from flywheel.teacher.session import Answer, TeacherSession
from flywheel.teacher.structured import InvalidAnswer, build_request

EMPTY = {"role": "assistant", "content": None}


class TeacherPredictor:
    """Answers examples by asking the teacher endpoint (constrained to the workload's format)."""

    def __init__(
        self,
        client: TeacherClient,
        workload: WorkloadConfig,
        *,
        warehouse: Warehouse | None = None,
        prices: PriceCatalog | None = None,
        name: str | None = None,
        max_usd: float | None = None,
    ) -> None:
        self.client = client
        self.workload = workload
        self.warehouse = warehouse
        self.prices = prices or PriceCatalog.load()
        self.name = name or f"teacher:{client.model}"
        self.max_usd = max_usd
        self.last_report: LabelReport | None = None

    def predict(self, examples: list[Example]) -> list[Prediction]:
        return self.client.run_sync(self.apredict(examples))

    async def apredict(self, examples: list[Example]) -> list[Prediction]:
        report = LabelReport(new_run_id(self.workload.id, "predict"), self.workload.id, "predict")
        self.last_report = report
        async with open_run(
            self.client, self.warehouse, self.prices, report, max_usd=self.max_usd, kind="evaluation"
        ) as run:
            session = run.session
            session.k_votes = 1
            await session.prefetch([session.key(self._request(session, ex)) for ex in examples])
            return list(await asyncio.gather(*(self._predict_one(session, ex, report) for ex in examples)))

    def _request(self, session: TeacherSession, example: Example) -> dict:
        return build_request(
            example, self.workload, self.client.config, json_schema=session.json_schema_ok, k_votes=1
        )

    async def _predict_one(
        self, session: TeacherSession, example: Example, report: LabelReport
    ) -> Prediction:
        try:
            parsed, answers = await answer_sample(session, example, self.workload, 0)
        except InvalidAnswer as exc:  # the raw (cached) answer, so evaluation sees the format failure
            report.failures[exc.reason] += 1
            raw = await session.ask(self._request(session, example))
            return _prediction(raw.completion.message, [raw])
        except (TeacherCallError, BudgetExhausted) as exc:
            report.failures[getattr(exc, "reason", "budget")] += 1
            return Prediction(message=dict(EMPTY))
        report.labeled += 1
        return _prediction(parsed.target, answers)


def _prediction(message: dict, answers: list[Answer]) -> Prediction:
    return Prediction(
        message=message,
        confidence=None,
        prompt_tokens=sum(a.completion.prompt_tokens for a in answers),
        completion_tokens=sum(a.completion.completion_tokens for a in answers),
        latency_ms=sum(a.completion.latency_ms for a in answers),
    )
