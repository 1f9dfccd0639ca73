"""Dynamic batching for a student: concurrent requests are answered by one `predict` call.

The first request of a batch waits at most `max_wait_ms` for company; a batch never exceeds
`max_batch`. Requests that arrive while the student is busy form the next batch, so under load the
student runs back-to-back full batches, and a lone request is delayed by at most `max_wait_ms`.
`predict` is blocking CPU work: it runs in a worker thread, never on the event loop. One batch runs at
a time per student (the model already uses every core).

The worker task starts on demand and ends when the queue is empty, so a retired student's batcher
needs no shutdown: requests still holding it finish, then it is garbage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from flywheel.records import Example, Prediction

PredictFn = Callable[[list[Example]], list[Prediction]]
BatchObserver = Callable[[int, float], None]


@dataclass(frozen=True, slots=True)
class BatchedPrediction:
    """A student's answer and its share of the batch's compute time (for serving cost)."""

    prediction: Prediction
    compute_s: float
    batch_size: int


class DynamicBatcher:
    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        on_batch: BatchObserver | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms) / 1000
        self.on_batch = on_batch
        self._queue: list[tuple[Example, asyncio.Future[BatchedPrediction]]] = []
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, example: Example) -> BatchedPrediction:
        """The student's prediction for one example, computed in some batch."""
        future: asyncio.Future[BatchedPrediction] = asyncio.get_running_loop().create_future()
        self._queue.append((example, future))
        self._arrived.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._queue:
            await self._fill()
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            batch = [(example, future) for example, future in batch if not future.cancelled()]
            if batch:
                await self._answer(batch)

    async def _fill(self) -> None:
        """Wait until the batch is full or the oldest request has waited max_wait."""
        deadline = time.monotonic() + self.max_wait_s
        while len(self._queue) < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _answer(self, batch: list[tuple[Example, asyncio.Future[BatchedPrediction]]]) -> None:
        examples = [example for example, _ in batch]
        started = time.perf_counter()
        try:
            predictions = await asyncio.to_thread(self._predict, examples)
            if len(predictions) != len(examples):
                raise RuntimeError(
                    f"predict returned {len(predictions)} answers for {len(examples)} examples"
                )
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        elapsed = time.perf_counter() - started
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(len(batch), elapsed)
        share = elapsed / len(batch)
        for (_, future), prediction in zip(batch, predictions, strict=True):
            if not future.done():
                future.set_result(BatchedPrediction(prediction, share, len(batch)))
