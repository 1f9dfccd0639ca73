"""Parse one big line-oriented log file on several cores.

Parsing, validating and canonicalising JSON is Python work bound to one core; DuckDB's own reader
uses them all. A plain (uncompressed) JSONL file is cut into byte ranges at line boundaries, each range
is parsed in a worker process into Arrow tables, and the parent inserts them in file order, so the
result (ids, duplicates, quarantine, line numbers) is identical to a sequential run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors import REGISTRY, ReadContext

SHARD_MIN_BYTES = 16 * 1024 * 1024  # below this, starting workers costs more than it saves
SHARD_TARGET_BYTES = 8 * 1024 * 1024
_COUNT_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Shard:
    start: int
    end: int
    first_line: int


@dataclass(slots=True)
class ParsedChunk:
    interactions: pa.Table
    repeated: int
    quarantine: pa.Table
    reasons: Counter[str]
    read: int


def worker_count() -> int:
    env = os.environ.get("FLYWHEEL_INGEST_WORKERS")
    return max(1, int(env)) if env else max(1, min(os.cpu_count() or 1, 8))


def can_shard(path: Path, fmt: str) -> bool:
    connector = REGISTRY.get(fmt)
    if connector is None or not connector.splittable or worker_count() < 2:
        return False
    with path.open("rb") as handle:
        if handle.read(2) == b"\x1f\x8b":  # gzip streams cannot be entered mid-way
            return False
    return path.stat().st_size >= SHARD_MIN_BYTES


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


def parse_sharded(path: Path, fmt: str, ctx: ReadContext, batch_size: int) -> Iterator[ParsedChunk]:
    """Parsed chunks of the whole file, in file order, from a pool of worker processes."""
    shards = plan_shards(path)
    # forkserver: children fork from a clean server process, not from this one, which may hold
    # threads (DuckDB, Prefect's event loop) whose locks a plain fork would copy mid-use.
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["connectors", "flywheel.sharding"])
    jobs = [(str(path), fmt, ctx, shard, batch_size) for shard in shards]
    with context.Pool(min(worker_count(), len(shards))) as pool:
        for chunks in pool.imap(_parse_shard, jobs):
            yield from chunks


def _parse_shard(job: tuple[str, str, ReadContext, Shard, int]) -> list[ParsedChunk]:
    from flywheel.ingest import parse_chunk  # the sequential code path, so both modes agree exactly

    path, fmt, ctx, shard, batch_size = job
    shard_ctx = ReadContext(
        ctx.workload_id, ctx.mapping, ctx.price_fn, (shard.start, shard.end), shard.first_line
    )
    chunks: list[ParsedChunk] = []
    batch: list[Any] = []
    for item in REGISTRY[fmt].read(Path(path), shard_ctx):
        batch.append(item)
        if len(batch) >= batch_size:
            chunks.append(parse_chunk(batch))
            batch = []
    if batch:
        chunks.append(parse_chunk(batch))
    return chunks
