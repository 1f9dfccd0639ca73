"""Requests-per-minute and tokens-per-minute limits as async token buckets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """Refills `per_minute / 60` units a second up to a one-second burst (at least one request's worth).

    `acquire(n)` waits until n units are available and takes them. Token estimates are corrected with
    `adjust(actual - estimated)` once the usage is known, so the level may go negative (callers then
    wait longer), which keeps the long-run rate honest even when estimates are off.
    """

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)  # a single oversized request must still be able to go
        async with self._lock:  # FIFO: a big request is not starved by a stream of small ones
            while True:
                self._refill()
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)

    def adjust(self, delta: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level - delta)


class RateLimits:
    """Both limits of a teacher endpoint; either may be absent."""

    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None

    async def acquire(self, estimated_tokens: int) -> None:
        if self.requests is not None:
            await self.requests.acquire(1)
        if self.tokens is not None:
            await self.tokens.acquire(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int | None) -> None:
        if self.tokens is not None and actual_tokens is not None:
            self.tokens.adjust(actual_tokens - estimated_tokens)
