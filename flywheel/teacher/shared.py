"""One budget and one set of rate limits for every process of a fanned-out teacher run.

When the label stage's batches run in several worker processes (a Dask cluster), per-process
`Budget`s and token buckets would let N workers spend N x max_usd and send N x the allowed rate. These
keep the same state in small JSON files under an exclusive `flock`, so every worker on the machine (or
on hosts that share the directory over a filesystem with working POSIX locks) reserves from one pot.

`SharedBudget` keeps the semantics of `Budget` (reserve the estimate before a call, settle with the real
cost, overshoot by at most one call): the run stops at max_usd, never at N x max_usd. Reservations are
counted per holder process, so a worker that dies mid-call does not leave the others waiting forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from flywheel.teacher.budget import BudgetExhausted
from flywheel.teacher.limits import RateLimits

POLL_S = 0.02  # how often a waiting reservation looks again: in-flight calls settle in ~ms to seconds


@contextlib.contextmanager
def locked_state(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON state in `path`, read and written back under an exclusive lock held for the block."""
    with open(path.with_suffix(".lock"), "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            state = orjson.loads(path.read_bytes()) if path.exists() else {}
            before = orjson.dumps(state)
            yield state
            if orjson.dumps(state) != before:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(orjson.dumps(state))
                tmp.replace(path)  # atomic: a reader never sees half a file
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(holder: str) -> bool:
    """Whether a holder process still runs; one on another host is assumed alive (cannot be checked)."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedBudget:
    """`Budget`'s interface (reserve, settle, exhausted, spent, remaining) over a locked state file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        with locked_state(self.path) as state:
            if "max_usd" not in state:
                raise FileNotFoundError(f"{self.path}: no shared budget here (SharedBudget.create first)")
            self.max_usd: float | None = state["max_usd"]

    @classmethod
    def create(cls, path: str | os.PathLike[str], max_usd: float | None) -> SharedBudget:
        """A fresh pot of max_usd (None: unlimited, only spending is summed) at `path`."""
        if max_usd is not None and max_usd < 0:
            raise ValueError("max_usd must be >= 0")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with locked_state(target) as state:
            state.clear()
            state.update(max_usd=max_usd, spent=0.0, largest=0.0, exhausted=False, holders={})
        return cls(target)

    def _read(self) -> dict[str, Any]:
        with locked_state(self.path) as state:
            return dict(state)

    @property
    def spent(self) -> float:
        return float(self._read()["spent"])

    @property
    def exhausted(self) -> bool:
        return bool(self._read()["exhausted"])

    @property
    def remaining(self) -> float | None:
        state = self._read()
        return None if state["max_usd"] is None else max(0.0, state["max_usd"] - state["spent"])

    async def reserve(self, guess_usd: float) -> float:
        """Reserve room for one call across all processes; returns the amount to pass to `settle`."""
        while True:
            amount = self._try_reserve(guess_usd)
            if amount is not None:
                return amount
            await asyncio.sleep(POLL_S)

    def _try_reserve(self, guess_usd: float) -> float | None:
        me = _holder()
        with locked_state(self.path) as state:
            if state["max_usd"] is None:
                return 0.0
            if state["exhausted"]:
                raise BudgetExhausted(
                    f"budget of ${state['max_usd']:g} reached (spent ${state['spent']:.6f})"
                )
            holders = {h: v for h, v in state["holders"].items() if h == me or _alive(h)}
            amount = state["largest"] if state["largest"] > 0 else guess_usd
            reserved = sum(usd for _, usd in holders.values())
            if state["spent"] + reserved + amount <= state["max_usd"]:
                count, usd = holders.get(me, (0, 0.0))
                holders[me] = (count + 1, usd + amount)
                state["holders"] = holders
                return amount
            if not any(count for count, _ in holders.values()):  # nothing in flight will free room
                state["exhausted"] = True
            state["holders"] = holders
            return None

    async def settle(self, reserved: float, actual_usd: float) -> None:
        me = _holder()
        with locked_state(self.path) as state:
            state["spent"] += actual_usd
            state["largest"] = max(state["largest"], actual_usd)
            if state["max_usd"] is None:
                return
            count, usd = state["holders"].get(me, (1, reserved))
            if count <= 1:  # float sums leave ~1e-17 behind: the last call out clears its share
                state["holders"].pop(me, None)
            else:
                state["holders"][me] = (count - 1, max(0.0, usd - reserved))


class SharedTokenBucket:
    """`TokenBucket` (flywheel/teacher/limits.py) with its level in a locked file, on the wall clock."""

    def __init__(self, path: str | os.PathLike[str], per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.path = Path(path)
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        with locked_state(self.path) as state:
            state.setdefault("level", self.capacity)
            state.setdefault("stamp", time.time())

    def _refill(self, state: dict[str, Any]) -> None:
        now = time.time()
        state["level"] = min(self.capacity, state["level"] + max(0.0, now - state["stamp"]) * self.rate)
        state["stamp"] = now

    async def acquire(self, amount: float = 1.0) -> None:
        amount = min(amount, self.capacity)  # a single oversized request must still be able to go
        while True:
            with locked_state(self.path) as state:
                self._refill(state)
                if state["level"] >= amount:
                    state["level"] -= amount
                    return
                wait = (amount - state["level"]) / self.rate
            await asyncio.sleep(wait)

    def adjust(self, delta: float) -> None:
        with locked_state(self.path) as state:
            self._refill(state)
            state["level"] = min(self.capacity, state["level"] - delta)


class SharedRateLimits(RateLimits):
    """`RateLimits` (requests and tokens per minute) shared by every process that opens `directory`:
    the same acquire/settle over buckets whose state is a locked file."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
    ) -> None:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.requests = (
            SharedTokenBucket(folder / "rpm.json", requests_per_minute) if requests_per_minute else None
        )
        self.tokens = SharedTokenBucket(folder / "tpm.json", tokens_per_minute) if tokens_per_minute else None
