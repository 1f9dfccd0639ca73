import itertools
import os
import subprocess
import time
from pathlib import Path

import pytest

from connectors import base
from flywheel.ingest import ingest_paths, sharding
from flywheel.records import Rejected
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl


def _snapshot(warehouse: Warehouse) -> tuple[list, list]:
    def query(con):
        rows = con.execute("SELECT id, source_ref FROM interactions ORDER BY id").fetchall()
        quarantine = con.execute("SELECT source_ref, reason FROM quarantine ORDER BY source_ref").fetchall()
        return rows, quarantine

    return warehouse.read(query)


def _logs(path: Path) -> Path:
    lines: list = []
    for i in range(600):
        lines.append(chat_record(i % 450))  # ids repeat across shard boundaries
        if i % 97 == 0:
            lines.append(b"{broken")
        if i % 131 == 0:
            lines.append(b"   ")
    return write_jsonl(path, lines)


def test_plan_shards_cover_the_file_at_line_boundaries(tmp_path: Path) -> None:
    path = _logs(tmp_path / "logs.jsonl")
    shards = list(sharding.plan_shards(path, target_bytes=10_000))
    data = path.read_bytes()
    assert shards[0].start == 0 and shards[-1].end == len(data)
    for before, after in itertools.pairwise(shards):
        assert before.end == after.start and data[after.start - 1 : after.start] == b"\n"
        assert after.first_line == data[: after.start].count(b"\n") + 1


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_sharded_ingest_equals_sequential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_method: str
) -> None:
    """Workers fork from this process when it runs one thread, else from a forkserver."""
    path = _logs(tmp_path / "logs.jsonl")
    monkeypatch.setenv("FLYWHEEL_INGEST_WORKERS", "1")
    sequential = Warehouse(tmp_path / "seq.duckdb")
    expected = ingest_paths(sequential, [path], workload_id="w", batch_size=50).as_dict()

    monkeypatch.setenv("FLYWHEEL_INGEST_WORKERS", "2")
    monkeypatch.setattr(sharding, "SHARD_MIN_BYTES", 1)
    monkeypatch.setattr(sharding, "SHARD_TARGET_BYTES", 20_000)
    assert sharding.can_shard(path, "openai")
    parallel = Warehouse(tmp_path / "par.duckdb")
    used: list[str] = []
    get_context = sharding.mp.get_context
    monkeypatch.setattr(sharding.mp, "get_context", lambda m: used.append(m) or get_context(m))
    monkeypatch.setattr(sharding.threading, "active_count", lambda: 1 if start_method == "fork" else 3)
    got = ingest_paths(parallel, [path], workload_id="w", batch_size=50).as_dict()
    assert used == [start_method]

    keys = ("read", "ingested", "duplicates", "quarantined", "reasons")
    assert {k: got[k] for k in keys} == {k: expected[k] for k in keys}
    assert got["read"] == got["ingested"] + got["duplicates"] + got["quarantined"]
    assert _snapshot(parallel) == _snapshot(sequential)


def test_gzip_is_never_sharded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    path = tmp_path / "logs.jsonl.gz"
    path.write_bytes(gzip.compress(_logs(tmp_path / "plain.jsonl").read_bytes()))
    monkeypatch.setenv("FLYWHEEL_INGEST_WORKERS", "2")
    monkeypatch.setattr(sharding, "SHARD_MIN_BYTES", 1)
    assert not sharding.can_shard(path, "openai")
    assert not sharding.can_shard(tmp_path / "plain.jsonl", "csv")


def test_no_workers_while_the_machine_is_busier_than_its_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLYWHEEL_INGEST_WORKERS", raising=False)
    monkeypatch.setattr(sharding.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(sharding, "_load", lambda: 0.3)
    assert sharding.worker_count() == 2
    monkeypatch.setattr(sharding, "_load", lambda: 3.2)
    assert sharding.worker_count() == 1
    monkeypatch.setenv("FLYWHEEL_INGEST_WORKERS", "2")  # an explicit count always wins
    assert sharding.worker_count() == 2


def test_shards_read_the_same_lines_as_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte ranges are followed by counting bytes, also past lines too long to keep."""
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 1000)
    lines = [chat_record(i) for i in range(200)]
    for i in range(0, 200, 23):
        lines[i] = b'{"request": "' + b"x" * (1000 + 97 * i) + b'"}'  # over the limit, some many times
    path = write_jsonl(tmp_path / "logs.jsonl", lines)
    whole = [(ref, _kind(line)) for ref, line in base.iter_lines(path, "openai")]
    parts = []
    for shard in sharding.plan_shards(path, target_bytes=1_000):
        span = (shard.start, shard.end)
        parts += [(r, _kind(line)) for r, line in base.iter_lines(path, "openai", span, shard.first_line)]
    assert parts == whole
    assert sum(kind == "line_too_long" for _, kind in whole) == 9


def _kind(line: object) -> str:
    return line.reason if isinstance(line, Rejected) else "line"


def test_spools_of_dead_processes_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sharding.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = _exited_pid()
    stale = tmp_path / f"{sharding.SPOOL_PREFIX}{dead}-abc"
    live = tmp_path / f"{sharding.SPOOL_PREFIX}{os.getpid()}-def"
    for spool in (stale, live):
        spool.mkdir()
        (spool / "x.arrow").write_bytes(b"rows")
    with sharding.WorkerPool() as workers:
        monkeypatch.setattr(sharding, "worker_count", lambda: 2)
        workers.start()
        own = workers.spool
        assert own is not None and own.is_dir() and own.parent == tmp_path
    assert not stale.exists() and live.exists() and not own.exists()


def _exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _dies_on_the_third_shard(job: tuple, spool: Path) -> list:
    if job[3].first_line > 1 and job[3].start >= 2 * 20_000:
        os.kill(os.getpid(), 9)  # as the kernel's OOM killer would
    return _parse_shard_to_spool(job, spool)


_parse_shard_to_spool = sharding._parse_shard_to_spool


def test_a_worker_killed_mid_file_ends_the_file_with_an_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _logs(tmp_path / "logs.jsonl")
    monkeypatch.setenv("FLYWHEEL_INGEST_WORKERS", "2")
    monkeypatch.setattr(sharding, "SHARD_MIN_BYTES", 1)
    monkeypatch.setattr(sharding, "SHARD_TARGET_BYTES", 20_000)
    monkeypatch.setattr(sharding.threading, "active_count", lambda: 1)  # fork: the workers see the patch
    monkeypatch.setattr(sharding, "_parse_shard_to_spool", _dies_on_the_third_shard)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    started = time.monotonic()
    report = ingest_paths(warehouse, [path], workload_id="w", batch_size=50).as_dict()
    assert time.monotonic() - started < 60
    assert "a parse worker died (exit code -9" in report["errors"][0]
    assert 0 < report["read"] < len(path.read_bytes().splitlines())
    assert report["read"] == report["ingested"] + report["duplicates"] + report["quarantined"]

    monkeypatch.setattr(sharding, "_parse_shard_to_spool", _parse_shard_to_spool)
    again = ingest_paths(warehouse, [path], workload_id="w", batch_size=50).as_dict()
    assert again["errors"] == [] and again["duplicates"] >= report["ingested"]
    stored = warehouse.read(lambda con: con.execute("SELECT count(*) FROM interactions").fetchone()[0])
    assert stored == 450  # every distinct record of the file, once
