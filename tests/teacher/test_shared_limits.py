"""The shared budget and rate limits hold across processes: N workers stop at max_usd, not N x max_usd."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from flywheel.teacher.budget import BudgetExhausted
from flywheel.teacher.shared import SharedBudget, SharedRateLimits

CALL_USD = 0.01


def _spend_until_exhausted(path: str, calls_out: multiprocessing.Queue[int]) -> None:
    async def spend() -> int:
        budget = SharedBudget(path)
        calls = 0
        while True:
            try:
                reserved = await budget.reserve(CALL_USD)
            except BudgetExhausted:
                return calls
            await asyncio.sleep(0.001)  # the call in flight
            await budget.settle(reserved, CALL_USD)
            calls += 1

    calls_out.put(asyncio.run(spend()))


def test_processes_share_one_pot(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    SharedBudget.create(path, max_usd=0.105)
    context = multiprocessing.get_context("spawn")
    calls: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_spend_until_exhausted, args=(str(path), calls)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    made = [calls.get(timeout=5) for _ in workers]
    budget = SharedBudget(path)
    assert sum(made) == 10  # 10 x $0.01 fit in $0.105; per-process pots would have allowed 30
    assert budget.spent == pytest.approx(0.10) and budget.exhausted
    assert budget.remaining == pytest.approx(0.005)


def test_a_dead_holder_does_not_block_the_others(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    SharedBudget.create(path, max_usd=0.015)
    context = multiprocessing.get_context("spawn")
    # a process reserves and dies mid-call: its reservation must not hold the pot forever
    dead = context.Process(target=_reserve_and_die, args=(str(path),))
    dead.start()
    dead.join(30)
    budget = SharedBudget(path)

    async def one_call() -> float:
        reserved = await asyncio.wait_for(budget.reserve(CALL_USD), 5)
        await budget.settle(reserved, CALL_USD)
        return reserved

    assert asyncio.run(one_call()) == CALL_USD
    with pytest.raises(BudgetExhausted):
        asyncio.run(one_call())


def _reserve_and_die(path: str) -> None:
    asyncio.run(SharedBudget(path).reserve(CALL_USD))
    os._exit(0)


def test_unlimited_budget_only_sums(tmp_path: Path) -> None:
    budget = SharedBudget.create(tmp_path / "b.json", max_usd=None)

    async def calls() -> None:
        for _ in range(3):
            await budget.settle(await budget.reserve(1.0), 0.5)

    asyncio.run(calls())
    assert budget.spent == pytest.approx(1.5) and not budget.exhausted and budget.remaining is None


def _take(directory: str, n: int, out: multiprocessing.Queue[float]) -> None:
    limits = SharedRateLimits(directory, requests_per_minute=600, tokens_per_minute=None)

    async def take() -> None:
        for _ in range(n):
            await limits.acquire(1)

    asyncio.run(take())
    out.put(time.time())


def test_two_processes_share_one_request_rate(tmp_path: Path) -> None:
    # 600/min = 10/s with a 10-request burst: 2 x 15 requests need >= 2 s together (1 s alone each)
    context = multiprocessing.get_context("spawn")
    done: multiprocessing.Queue[float] = context.Queue()
    SharedRateLimits(tmp_path, requests_per_minute=600, tokens_per_minute=None)  # create the bucket
    started = time.time()
    workers = [context.Process(target=_take, args=(str(tmp_path), 15, done)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    finished = max(done.get(timeout=5) for _ in workers)
    assert finished - started >= 1.9
