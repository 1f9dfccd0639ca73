"""Parse one big line-oriented log file on several cores.

Parsing, validating and canonicalising JSON is Python work bound to one core; DuckDB's own reader
uses them all. A plain (uncompressed) JSONL file is cut into byte ranges at line boundaries, each range
is parsed into Arrow tables by a worker process (or by the parent while the workers start), and the
parent inserts them in file order, so the result (ids, duplicates, quarantine, line numbers) is
identical to a sequential run. One `WorkerPool` serves all the files of an ingest call.

A worker hands its interactions table over as an Arrow IPC file in the pool's spool directory, which
this process memory-maps: no pickling, and no pipe that a 4 MB result crosses 64 KB at a time, each
piece waiting for a reader thread that competes for the GIL (that left the workers idle for 15-45 ms
after every shard, a quarter of their time).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors import REGISTRY, ReadContext, SourceError
from connectors.detect import detect_format
from flywheel.ingest.columns import ParsedChunk, build_chunks

SHARD_MIN_BYTES = 16 * 1024 * 1024  # below this, starting workers costs more than it saves
SHARD_TARGET_BYTES = 4 * 1024 * 1024  # small enough that no worker is left alone with the last one
_COUNT_BLOCK = 8 * 1024 * 1024
SPOOL_PREFIX = "flywheel-ingest-"  # + pid + "-": a worker pool's spool directory in the temp dir


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
    return _splittable(fmt) and _big_plain_file(path) and worker_count() >= 2


def _splittable(fmt: str) -> bool:
    connector = REGISTRY.get(fmt)
    return connector is not None and connector.splittable


def _big_plain_file(path: Path) -> bool:
    if path.stat().st_size < SHARD_MIN_BYTES:
        return False
    with path.open("rb") as handle:
        return handle.read(2) != b"\x1f\x8b"  # gzip streams cannot be entered mid-way


class WorkerPool:
    """Parse workers for the big files of one ingest call: started on first need, then shared.

    On Linux, workers are forked from this process while it runs no other thread: that takes
    milliseconds, and the workers inherit the imported connectors. Otherwise (a flow's event loop,
    a progress bar, DuckDB's scheduler may hold locks a fork would copy mid-use; macOS system
    libraries do not survive a fork) they fork from a clean forkserver process, which starts and
    imports the connectors in about half a second; this process parses the first shards meanwhile.
    """

    def __init__(self) -> None:
        self._starting: Future[Pool] | None = None
        self._starter: ThreadPoolExecutor | None = None
        self._processes: set[Any] = set()  # the workers: Pool does not say when one dies
        self.size = 0
        self.spool: Path | None = None

    def start(self) -> None:
        if self._starting is not None:
            return
        self.size = worker_count()
        remove_stale_spools()
        self.spool = Path(tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-"))
        if threading.active_count() == 1 and sys.platform == "linux":  # macOS frameworks dislike fork
            self._starting = Future()
            self._starting.set_result(self._new_pool(_forked_pool, self.size))
            return
        context = mp.get_context("forkserver")
        context.set_forkserver_preload(["connectors", "flywheel.ingest.sharding"])
        self._starter = ThreadPoolExecutor(1, thread_name_prefix="ingest-pool")
        self._starting = self._starter.submit(self._new_pool, context.Pool, self.size)

    def _new_pool(self, make: Any, size: int) -> Pool:
        before = set(mp.active_children())
        pool = make(size)
        self._processes = set(mp.active_children()) - before
        return pool

    def result(self, pending: AsyncResult, path: Path) -> Any:
        """A task's result. A worker that died (killed for memory, say) takes its task with it and
        Pool never answers it, so waiting stops with a SourceError and the workers are closed."""
        while not pending.ready():
            pending.wait(0.5)
            dead = [p for p in self._processes if not p.is_alive()]
            if dead and not pending.ready():
                self.close()
                codes = ", ".join(str(p.exitcode) for p in dead)
                raise SourceError(
                    f"{path}: a parse worker died (exit code {codes}; -9: killed, e.g. for memory); "
                    "the lines before its shard are in, a re-run adds the rest"
                )
        return pending.get()

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
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)
        self._starting = self._starter = self.spool = None
        self._processes = set()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _forked_pool(size: int) -> Pool:
    # Frozen objects are skipped by the children's collector, which would otherwise walk (and so
    # copy-on-write) every object they inherit: Python's advice for fork (gc.freeze docs).
    gc.freeze()
    try:
        return mp.get_context("fork").Pool(size)
    finally:
        gc.unfreeze()


def remove_stale_spools() -> None:
    """Delete the spool directories of ingest processes that no longer run (killed mid-file)."""
    for spool in Path(tempfile.gettempdir()).glob(f"{SPOOL_PREFIX}*-*"):
        pid = spool.name.removeprefix(SPOOL_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(spool, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def wants_workers(paths: list[Path], fmt: str) -> bool:
    """Whether any of these files will be parsed by workers (so they can start before anything else)."""
    for path in paths:
        try:
            big = _big_plain_file(path) and worker_count() >= 2  # before detecting: cheaper
            if big and _splittable(detect_format(path) if fmt == "auto" else fmt):
                return True
        except (OSError, ValueError):  # unreadable or undetectable: its own ingest reports why
            continue
    return False


def plan_shards(path: Path, target_bytes: int | None = None) -> Iterator[Shard]:
    """Byte ranges that start right after a newline, with the line number each starts at.

    Yielded as the file is scanned, so the first shards are parsed while the newlines of the rest
    are counted (counting all of a 66 MB file first kept the workers waiting for 55 ms).
    """
    target = target_bytes or SHARD_TARGET_BYTES  # read at call time: tests and tools set it
    size = path.stat().st_size
    start, first_line = 0, 1
    with path.open("rb") as handle:
        while start < size:
            handle.seek(min(start + target, size))
            handle.readline()  # move to the end of the line the cut fell into
            end = min(handle.tell(), size)
            yield Shard(start, end, first_line)
            first_line += _count_newlines(handle, start, end)
            start = end


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
    parses shards itself until the workers are up. At most two shards per worker are in flight,
    so a slow warehouse holds back the parse instead of filling memory and the spool."""
    jobs = ((str(path), fmt, ctx, shard, batch_size) for shard in plan_shards(path))
    first, second = next(jobs, None), next(jobs, None)
    if first is None or second is None:  # one shard: not worth a trip to a worker
        yield from _parse_shard(first) if first else ()
        return
    workers.start()
    ahead: Iterator[Any] = itertools.chain([first, second], jobs)
    while not workers.ready():
        job = next(ahead, None)
        if job is None:
            return
        yield from _parse_shard(job)
    pool, in_flight = workers.pool(), deque()
    for job in ahead:
        in_flight.append(pool.apply_async(_parse_shard_to_spool, (job, workers.spool)))
        if len(in_flight) >= 2 * workers.size:
            yield from map(_unspool, workers.result(in_flight.popleft(), path))
    while in_flight:
        yield from map(_unspool, workers.result(in_flight.popleft(), path))


@dataclass(frozen=True, slots=True)
class _Spooled:
    """A parsed chunk whose interactions table waits in an Arrow IPC file."""

    path: Path
    repeated: int
    quarantine: pa.Table
    reasons: Counter[str]
    read: int


def _parse_shard_to_spool(job: tuple[str, str, ReadContext, Shard, int], spool: Path) -> list[_Spooled]:
    out = []
    for chunk in _parse_shard(job):
        path = spool / f"{uuid.uuid4().hex}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, chunk.interactions.schema) as file:
            file.write_table(chunk.interactions)
        out.append(_Spooled(path, chunk.repeated, chunk.quarantine, chunk.reasons, chunk.read))
    return out


def _unspool(spooled: _Spooled) -> ParsedChunk:
    # The table's buffers point into the mapping, which outlives the file's name.
    interactions = pa.ipc.open_file(pa.memory_map(str(spooled.path))).read_all()
    spooled.path.unlink()
    return ParsedChunk(interactions, spooled.repeated, spooled.quarantine, spooled.reasons, spooled.read)


def _parse_shard(job: tuple[str, str, ReadContext, Shard, int]) -> list[ParsedChunk]:
    path, fmt, ctx, shard, batch_size = job
    shard_ctx = ReadContext(
        ctx.workload_id, ctx.mapping, ctx.price_fn, (shard.start, shard.end), shard.first_line
    )
    # The sequential code path, so both modes agree exactly.
    return list(build_chunks(REGISTRY[fmt].items(Path(path), shard_ctx), batch_size))
