"""One run's view of the teacher: cache first, then a budgeted, costed, de-duplicated call.

`ask(request)` returns the cached answer when the warehouse has one; otherwise it reserves budget,
calls the endpoint, prices the usage, journals the answer with its ledger row and returns it. Two
concurrent asks for the same request share one call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from flywheel.config import ConfigError
from flywheel.pricing import PriceCatalog
from flywheel.records import utcnow
from flywheel.teacher.breaker import Breaker
from flywheel.teacher.budget import Budget
from flywheel.teacher.cache import CachedAnswer, TeacherStore, cache_key, ledger_row
from flywheel.teacher.client import Completion, TeacherCallError, TeacherClient, estimate_usage


@dataclass(slots=True)
class Answer:
    cached: CachedAnswer
    fresh: bool  # paid for in this run (False: served from the cache)

    @property
    def completion(self) -> Completion:
        return self.cached.completion


class TeacherSession:
    def __init__(
        self,
        client: TeacherClient,
        store: TeacherStore,
        prices: PriceCatalog,
        *,
        budget: Budget,
        run_id: str,
        workload_id: str | None,
        kind: str = "labeling",
    ) -> None:
        if prices.price(client.model) is None:
            raise ConfigError(
                f"no price for teacher model {client.model!r}: add it under `prices:` in flywheel.yaml "
                "(USD per 1M tokens, e.g. {input: 0, output: 0} for a self-hosted model)"
            )
        self.client = client
        self.store = store
        self.prices = prices
        self.budget = budget
        self.run_id = run_id
        self.workload_id = workload_id
        self.kind = kind
        self.prompt_version = client.config.prompt_version
        self.json_schema_ok = client.config.supports_json_schema
        self.k_votes = client.config.k_votes  # predictions and judging set 1
        self.calls = 0
        self.cost_usd = 0.0
        self.breaker = Breaker.for_concurrency(client.config.concurrency)
        self._known: dict[str, CachedAnswer] = {}
        self._looked_up: set[str] = set()
        self._inflight: dict[str, asyncio.Task[CachedAnswer]] = {}

    def key(self, request: dict[str, Any], sample: int = 0) -> str:
        return cache_key({"model": self.client.model, **request}, self.prompt_version, sample)

    async def prefetch(self, keys: list[str]) -> None:
        """Load cached answers for many keys in one query."""
        missing = [k for k in dict.fromkeys(keys) if k not in self._looked_up]
        self._known.update(await self.store.lookup(missing))
        self._looked_up.update(missing)

    def forget(self, keys: list[str]) -> None:
        """Drop prefetched answers a finished chunk no longer needs (keeps memory flat on big runs)."""
        for key in keys:
            self._known.pop(key, None)
            self._looked_up.discard(key)

    async def ask(self, request: dict[str, Any], sample: int = 0) -> Answer:
        payload = {"model": self.client.model, **request}
        key = cache_key(payload, self.prompt_version, sample)
        if key not in self._looked_up:
            await self.prefetch([key])
        if key in self._known:
            return Answer(self._known[key], fresh=False)
        task = self._inflight.get(key)
        if task is not None:
            return Answer(await asyncio.shield(task), fresh=False)
        task = asyncio.ensure_future(self._call(key, payload))
        self._inflight[key] = task
        try:
            return Answer(await asyncio.shield(task), fresh=True)
        finally:
            if task.done():
                self._inflight.pop(key, None)

    async def _call(self, key: str, payload: dict[str, Any]) -> CachedAnswer:
        self.breaker.check()
        price = self.prices.price(self.client.model)
        guess = price.cost(*estimate_usage(payload)) if price else 0.0
        reserved = await self.budget.reserve(guess)
        actual = 0.0
        try:
            completion = await self.client.complete(payload, gate=self.breaker)
            actual = self.cost(completion)
        except TeacherCallError as exc:
            self.breaker.call_failed(exc)
            raise
        finally:
            await self.budget.settle(reserved, actual)
        answer = CachedAnswer(key, self.client.model, payload, completion, actual, utcnow())
        ledger = ledger_row(answer, workload_id=self.workload_id, run_id=self.run_id, kind=self.kind)
        self.store.record_answer(answer, ledger)
        self._known[key] = answer
        self._looked_up.add(key)
        self.calls += 1
        self.cost_usd += actual
        return answer

    async def aclose(self) -> None:
        """Cancel calls still in flight (shielded from their waiters) before the run's store closes."""
        pending = [task for task in self._inflight.values() if not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._inflight.clear()

    def cost(self, completion: Completion) -> float:
        """Usage x the catalog price of the answering model, else of the configured model."""
        for model in (completion.model, self.client.model):
            cost = self.prices.cost(model, completion.prompt_tokens, completion.completion_tokens)
            if cost is not None:
                return cost
        return 0.0  # unreachable: the configured model's price was checked at construction
