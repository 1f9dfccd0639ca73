"""Parse one big line-oriented log file on several cores.

Parsing, validating and canonicalising JSON is Python work bound to one core; DuckDB's own reader
uses them all. A plain (uncompressed) JSONL file is cut into byte ranges at line boundaries, each range
is parsed into Arrow tables by a worker process (or by the parent while the workers start), and the
parent inserts them in file order, so the result (ids, duplicates, quarantine, line numbers) is
identical to a sequential run. One `WorkerPool` serves all the files of an ingest call.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

from connectors import REGISTRY, ReadContext
from flywheel.ingest_columns import ParsedChunk, build_chunks

SHARD_MIN_BYTES = 16 * 1024 * 1024  # below this, starting workers costs more than it saves
SHARD_TARGET_BYTES = 4 * 1024 * 1024  # small enough that no worker is left alone with the last one
_COUNT_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Shard:
    start: int
    end: int
    first_line: int


def worker_count() -> int:
    """Worker processes for one big file: FLYWHEEL_INGEST_WORKERS, else one per core (up to 8), or
    none (parse here) while the machine is already busier than its cores: workers pay off only on
    idle cores, and on busy ones they add their start-up and transfer costs and finish later (100k
    lines on 2 cores at load 4.3, median of 5: 6.0 s with 2 workers, 4.7 s without)."""
    env = os.environ.get("FLYWHEEL_INGEST_WORKERS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    return 1 if _load() >= cores + 1 else max(1, min(cores, 8))


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return 0.0


def can_shard(path: Path, fmt: str) -> bool:
    connector = REGISTRY.get(fmt)
    if connector is None or not connector.splittable:
        return False
    return _big_plain_file(path) and worker_count() >= 2


def _big_plain_file(path: Path) -> bool:
    if path.stat().st_size < SHARD_MIN_BYTES:
        return False
    with path.open("rb") as handle:
        return handle.read(2) != b"\x1f\x8b"  # gzip streams cannot be entered mid-way


class WorkerPool:
    """Parse workers for the big files of one ingest call: started on first need, then shared.

    Workers are forked from this process while it runs no other thread: that takes milliseconds,
    and the workers inherit the imported connectors. Otherwise (a flow's event loop, a progress
    bar, DuckDB's scheduler may hold locks a fork would copy mid-use) they fork from a clean
    forkserver process, which starts and imports the connectors in about half a second; this
    process parses the first shards meanwhile.
    """

    def __init__(self) -> None:
        self._starting: Future[Pool] | None = None
        self._starter: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._starting is not None:
            return
        if threading.active_count() == 1:
            self._starting = Future()
            self._starting.set_result(mp.get_context("fork").Pool(worker_count()))
            return
        context = mp.get_context("forkserver")
        context.set_forkserver_preload(["connectors", "flywheel.sharding"])
        self._starter = ThreadPoolExecutor(1, thread_name_prefix="ingest-pool")
        self._starting = self._starter.submit(context.Pool, worker_count())

    def ready(self) -> bool:
        return self._starting is not None and self._starting.done()

    def pool(self) -> Pool:
        self.start()
        assert self._starting is not None
        return self._starting.result()

    def close(self) -> None:
        """Stop the workers, also mid-file (a failed or abandoned parse)."""
        if self._starting is not None:
            self._starting.result().terminate()
        if self._starter is not None:
            self._starter.shutdown()
        self._starting = self._starter = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wants_workers(paths: list[Path], fmt: str) -> bool:
    """Whether any of these files will be parsed by workers (so they can start before anything else)."""
    from connectors.detect import detect_format  # only for the rare auto-detected big file

    for path in paths:
        try:
            if _big_plain_file(path) and can_shard(path, detect_format(path) if fmt == "auto" else fmt):
                return True
        except (OSError, ValueError):  # unreadable or undetectable: its own ingest reports why
            continue
    return False


def plan_shards(path: Path, target_bytes: int = SHARD_TARGET_BYTES) -> list[Shard]:
    """Byte ranges that start right after a newline, with the line number each starts at."""
    size = path.stat().st_size
    shards: list[Shard] = []
    start, first_line = 0, 1
    with path.open("rb") as handle:
        while start < size:
            handle.seek(min(start + target_bytes, size))
            handle.readline()  # move to the end of the line the cut fell into
            end = min(handle.tell(), size)
            shards.append(Shard(start, end, first_line))
            first_line += _count_newlines(handle, start, end)
            start = end
    return shards


def _count_newlines(handle: Any, start: int, end: int) -> int:
    handle.seek(start)
    count, remaining = 0, end - start
    while remaining > 0:
        block = handle.read(min(_COUNT_BLOCK, remaining))
        if not block:
            break
        count += block.count(b"\n")
        remaining -= len(block)
    return count


def parse_sharded(
    path: Path, fmt: str, ctx: ReadContext, batch_size: int, workers: WorkerPool
) -> Iterator[ParsedChunk]:
    """Parsed chunks of the whole file, in file order, from the worker processes; this process
    parses shards itself until the workers are up."""
    jobs = [(str(path), fmt, ctx, shard, batch_size) for shard in plan_shards(path)]
    if len(jobs) == 1:
        yield from _parse_shard(jobs[0])
        return
    workers.start()
    done = 0
    while done < len(jobs) and not workers.ready():
        yield from _parse_shard(jobs[done])
        done += 1
    for chunks in workers.pool().imap(_parse_shard, jobs[done:]):
        yield from chunks


def _parse_shard(job: tuple[str, str, ReadContext, Shard, int]) -> list[ParsedChunk]:
    path, fmt, ctx, shard, batch_size = job
    shard_ctx = ReadContext(
        ctx.workload_id, ctx.mapping, ctx.price_fn, (shard.start, shard.end), shard.first_line
    )
    # The sequential code path, so both modes agree exactly.
    return list(build_chunks(REGISTRY[fmt].items(Path(path), shard_ctx), batch_size))
