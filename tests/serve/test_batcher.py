from __future__ import annotations

import asyncio
import threading
import time

import pytest

from flywheel.records import Example, Prediction
from flywheel.serve.batcher import DynamicBatcher


def example(i: int) -> Example:
    return Example(
        example_id=str(i), workload_id="w", messages=[{"role": "user", "content": str(i)}], target={}
    )


class EchoModel:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.threads: set[int] = set()

    def predict(self, examples: list[Example]) -> list[Prediction]:
        self.batches.append(len(examples))
        self.threads.add(threading.get_ident())
        time.sleep(self.delay_s)
        return [Prediction({"role": "assistant", "content": e.messages[0]["content"]}, 1.0) for e in examples]


def test_concurrent_requests_share_batches_and_get_their_own_answers() -> None:
    model = EchoModel(delay_s=0.02)
    observed: list[tuple[int, float]] = []

    async def scenario() -> list[str]:
        batcher = DynamicBatcher(
            model.predict, max_batch=8, max_wait_ms=20, on_batch=lambda n, s: observed.append((n, s))
        )
        results = await asyncio.gather(*(batcher.submit(example(i)) for i in range(20)))
        assert all(r.batch_size <= 8 and r.compute_s > 0 for r in results)
        return [r.prediction.message["content"] for r in results]

    assert asyncio.run(scenario()) == [str(i) for i in range(20)]
    assert model.batches == [8, 8, 4] and [n for n, _ in observed] == [8, 8, 4]
    assert threading.get_ident() not in model.threads  # predict never runs on the event loop's thread


def test_a_lone_request_waits_at_most_max_wait() -> None:
    model = EchoModel()

    async def scenario() -> float:
        batcher = DynamicBatcher(model.predict, max_batch=64, max_wait_ms=30)
        started = time.perf_counter()
        await batcher.submit(example(1))
        return time.perf_counter() - started

    elapsed = asyncio.run(scenario())
    assert 0.025 <= elapsed < 0.5 and model.batches == [1]


def test_requests_arriving_during_a_batch_form_the_next_one() -> None:
    model = EchoModel(delay_s=0.05)

    async def scenario() -> None:
        batcher = DynamicBatcher(model.predict, max_batch=16, max_wait_ms=1)
        first = asyncio.create_task(batcher.submit(example(0)))
        await asyncio.sleep(0.02)  # the first batch is running now
        await asyncio.gather(first, *(batcher.submit(example(i)) for i in range(1, 6)))

    asyncio.run(scenario())
    assert model.batches == [1, 5]


@pytest.mark.parametrize("failure", ["raises", "wrong_length"])
def test_a_failing_batch_fails_its_requests_and_the_next_batch_still_runs(failure: str) -> None:
    calls = []

    def predict(examples: list[Example]) -> list[Prediction]:
        calls.append(len(examples))
        if len(calls) == 1:
            if failure == "raises":
                raise RuntimeError("boom")
            return []
        return [Prediction({"role": "assistant", "content": "ok"}) for _ in examples]

    async def scenario() -> None:
        batcher = DynamicBatcher(predict, max_batch=4, max_wait_ms=5)
        outcomes = await asyncio.gather(
            *(batcher.submit(example(i)) for i in range(3)), return_exceptions=True
        )
        assert all(isinstance(o, RuntimeError) for o in outcomes)
        assert (await batcher.submit(example(9))).prediction.message["content"] == "ok"

    asyncio.run(scenario())


def test_cancelled_requests_are_skipped() -> None:
    model = EchoModel()

    async def scenario() -> None:
        batcher = DynamicBatcher(model.predict, max_batch=4, max_wait_ms=30)
        doomed = asyncio.create_task(batcher.submit(example(0)))
        kept = asyncio.create_task(batcher.submit(example(1)))
        await asyncio.sleep(0)
        doomed.cancel()
        assert (await kept).prediction.message["content"] == "1"

    asyncio.run(scenario())
    assert model.batches == [1]
