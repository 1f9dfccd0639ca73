"""A hard USD budget per run that concurrent calls cannot overshoot by more than one request.

Each call reserves its estimated cost before it is sent and settles with the real cost after. A call
that does not fit next to the money already spent and reserved waits for in-flight calls to settle; when
nothing is in flight and it still does not fit, the budget is exhausted and the run stops cleanly
(answers already paid for are kept). The estimate is the most expensive call seen so far in the run,
or the caller's prompt-based guess before the first call returns.
"""

from __future__ import annotations

import asyncio


class BudgetExhausted(RuntimeError):
    """The next call would take spending past the run's max_usd."""


class Budget:
    def __init__(self, max_usd: float | None) -> None:
        if max_usd is not None and max_usd < 0:
            raise ValueError("max_usd must be >= 0")
        self.max_usd = max_usd
        self.spent = 0.0
        self.exhausted = False
        self._reserved = 0.0
        self._in_flight = 0  # counted, not inferred from _reserved: float sums leave ~1e-17 behind
        self._largest_call = 0.0
        self._changed = asyncio.Condition()

    @property
    def remaining(self) -> float | None:
        return None if self.max_usd is None else max(0.0, self.max_usd - self.spent)

    def estimate(self, guess_usd: float) -> float:
        return self._largest_call if self._largest_call > 0 else guess_usd

    async def reserve(self, guess_usd: float) -> float:
        """Reserve room for one call; returns the amount to pass back to `settle`."""
        if self.max_usd is None:
            return 0.0
        async with self._changed:
            while True:
                if self.exhausted:
                    raise BudgetExhausted(f"budget of ${self.max_usd:g} reached (spent ${self.spent:.6f})")
                amount = self.estimate(guess_usd)
                if self.spent + self._reserved + amount <= self.max_usd:
                    self._reserved += amount
                    self._in_flight += 1
                    return amount
                if self._in_flight == 0:
                    self.exhausted = True
                    self._changed.notify_all()
                    continue
                await self._changed.wait()

    async def settle(self, reserved: float, actual_usd: float) -> None:
        if self.max_usd is None:  # nothing was reserved
            self.spent += actual_usd
            self._largest_call = max(self._largest_call, actual_usd)
            return
        async with self._changed:
            self._in_flight -= 1
            self._reserved = max(0.0, self._reserved - reserved) if self._in_flight else 0.0
            self.spent += actual_usd
            self._largest_call = max(self._largest_call, actual_usd)
            self._changed.notify_all()
