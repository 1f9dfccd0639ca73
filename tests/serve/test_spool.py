from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path

import pytest

from flywheel.serve.spool import PENDING_LOG, SpoolError, SpoolWriter, compress_file, spool_files
from tests.connectors.factories import read


def record(i: int, **extra: object) -> dict:
    line = {
        "flywheel_spool": 1,
        "id": f"req-{i}",
        "ts": 1_715_000_000.0 + i,
        "workload_id": "support",
        "client_id": None,
        "request": {"model": "support", "messages": [{"role": "user", "content": f"ticket {i}"}]},
        "response": {
            "id": f"chatcmpl-{i}",
            "object": "chat.completion",
            "created": 1,
            "model": "support-v1",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "billing"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
        "served_by": "student",
        "model": "support-v1",
        "fallback_reason": None,
        "latency_ms": 1.5,
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "cost_usd": 1e-7,
        "teacher_response": None,
    }
    return line | extra


def lines_of(directory: Path) -> list[dict]:
    out = []
    for path in spool_files(directory):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as handle:
            out.extend(json.loads(line) for line in handle)
    return out


def test_concurrent_writes_are_group_committed_and_read_back(tmp_path: Path) -> None:
    spool = SpoolWriter(tmp_path)

    async def scenario() -> None:
        await asyncio.gather(*(spool.write(record(i)) for i in range(200)))

    asyncio.run(scenario())
    assert spool.lines_written == 200 and spool.fsyncs < 50  # far fewer fsyncs than lines
    items = read("spool", spool.current_path)
    assert len(items) == 200 and {item.metadata["spool_id"] for item in items} == {
        f"req-{i}" for i in range(200)
    }


def test_rotation_by_size_and_age_with_gzip(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    size = len(json.dumps(record(0), separators=(",", ":")))
    spool = SpoolWriter(
        tmp_path, rotate_bytes=3 * size, rotate_seconds=60, gzip_rotated=True, clock=lambda: now[0]
    )
    for i in range(10):  # rotates after every 3 lines: 3 full files, then 1 line
        spool.append(record(i))
        now[0] += 0.001
    now[0] += 61
    assert spool.maybe_rotate() is not None  # old enough, even without a write
    spool.append(record(10))
    deadline = time.monotonic() + 5
    while set(tmp_path.glob("spool-*.jsonl")) != {spool.current_path} and time.monotonic() < deadline:
        time.sleep(0.01)
    names = [p.name for p in spool_files(tmp_path)]
    assert all(n.startswith("spool-") for n in names) and sum(n.endswith(".gz") for n in names) >= 4
    assert [line["id"] for line in lines_of(tmp_path)] == [f"req-{i}" for i in range(11)]


def test_compress_file_replaces_the_original(tmp_path: Path) -> None:
    spool = SpoolWriter(tmp_path)
    spool.append(record(1))
    spool.close()
    target = compress_file(spool_files(tmp_path)[0])
    assert target.name.endswith(".jsonl.gz") and [p.name for p in spool_files(tmp_path)] == [target.name]
    assert read("spool", target)[0].metadata["spool_id"] == "req-1"


def test_pending_calls_survive_a_crash_and_are_recovered(tmp_path: Path) -> None:
    crashed = SpoolWriter(tmp_path)

    async def before_crash() -> None:
        await crashed.write_pending(record(1))
        await crashed.write_pending(record(2))
        await crashed.resolve_pending(record(2, teacher_response=record(9)["response"]))

    asyncio.run(before_crash())
    assert [line["id"] for line in lines_of(tmp_path)] == ["req-2"]
    crashed.close()  # what a kill -9 leaves: the log still holds req-1
    restarted = SpoolWriter(tmp_path)
    assert restarted.recover() == 1
    lines = {line["id"]: line for line in lines_of(tmp_path)}
    assert (
        lines["req-1"]["teacher_response"] is None
        and lines["req-1"]["metadata"]["shadow"] == "lost_on_restart"
    )
    assert lines["req-2"]["teacher_response"]["model"] == "support-v1"
    assert not (tmp_path / PENDING_LOG).exists()
    assert restarted.recover() == 0


def test_log_is_compacted_when_nothing_is_pending(tmp_path: Path) -> None:
    spool = SpoolWriter(tmp_path)

    async def scenario() -> None:
        for i in range(5):
            await spool.write_pending(record(i))
            await spool.resolve_pending(record(i))
        await spool.write(record(99))  # the next commit sees nothing outstanding

    asyncio.run(scenario())
    assert (tmp_path / PENDING_LOG).stat().st_size == 0


def test_one_server_per_spool_directory(tmp_path: Path) -> None:
    first = SpoolWriter(tmp_path)
    first.recover()
    with pytest.raises(SpoolError, match="in use by another flywheel server"):
        SpoolWriter(tmp_path).recover()
    first.close()
    SpoolWriter(tmp_path).recover()


def test_failed_write_is_reported_not_acknowledged(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    spool = SpoolWriter(blocker / "spool")  # a directory under a regular file cannot be created

    async def scenario() -> None:
        await spool.write(record(1))

    with pytest.raises(SpoolError, match="capture spool write failed"):
        asyncio.run(scenario())
