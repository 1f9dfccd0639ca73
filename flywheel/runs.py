"""Run bookkeeping: one flywheel run per workload at a time (an OS lock), and its `flywheel_runs` row.

`loop` re-exports these: the CLI, the flows and the demo take them from there with the stages.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from flywheel.records import utcnow


class WorkloadBusy(RuntimeError):
    """Another flywheel run of the same workload holds its lock."""


# (home, workload) pairs whose lock this process holds: start_run may then close stale runs.
_HELD_LOCKS: set[tuple[str, str]] = set()
# ...and those whose holder lets a nested workload_lock join it (`flywheel run` -> its flow).
_SHARED_LOCKS: set[tuple[str, str]] = set()
INTERRUPTED = {"error": "the process died before the run finished (found by the next run)"}


@contextmanager
def workload_lock(home: Path, workload_id: str, *, share: bool = False) -> Iterator[None]:
    """One flywheel run per workload at a time: a second one refuses clearly instead of racing.

    An OS file lock (flock) is released by the kernel when its holder dies, so a killed run never
    leaves a stale lock behind. With `share`, a workload_lock of the same workload taken inside the
    block joins this one: `flywheel run` locks before Prefect starts (so a refusal is one line, not a
    failed flow run with a traceback), then the flow it runs locks again.
    """
    held = (str(home.resolve()), workload_id)
    if held in _SHARED_LOCKS:
        yield
        return
    lock_dir = home / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    handle = (lock_dir / f"{workload_id}.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise WorkloadBusy(f"another flywheel run of {workload_id!r} is in progress ({holder})") from exc
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {utcnow():%Y-%m-%d %H:%M:%S} UTC")
        handle.flush()
        _HELD_LOCKS.add(held)
        if share:
            _SHARED_LOCKS.add(held)
        yield
    finally:
        _HELD_LOCKS.discard(held)
        _SHARED_LOCKS.discard(held)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def start_run(loop: Any, workload_id: str, flow: str, prefect_flow_run_id: str | None = None) -> str:
    """Record a run as 'running'. Under the workload lock, an older 'running' row of the same flow
    can only belong to a process that died (kill -9, power loss): it is closed as 'interrupted', so
    the dashboard does not show it running forever."""
    run_id = f"{flow}-{workload_id}-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    locked = (str(loop.home.resolve()), workload_id) in _HELD_LOCKS
    now = utcnow()

    def record(con: Any) -> None:
        if locked:
            con.execute(
                "UPDATE flywheel_runs SET status = 'interrupted', finished_at = ?, summary = ? "
                "WHERE workload_id = ? AND flow = ? AND status = 'running'",
                [now, orjson.dumps(INTERRUPTED).decode(), workload_id, flow],
            )
        con.execute(
            "INSERT INTO flywheel_runs VALUES (?, ?, ?, ?, NULL, 'running', ?, NULL)",
            [run_id, workload_id, flow, now, prefect_flow_run_id],
        )

    loop.warehouse.write(record)
    return run_id


def finish_run(loop: Any, run_id: str, status: str, summary: dict[str, Any]) -> None:
    payload = orjson.dumps(summary, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    loop.warehouse.write(
        lambda con: con.execute(
            "UPDATE flywheel_runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
            [utcnow(), status, payload, run_id],
        )
    )
