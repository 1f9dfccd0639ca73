"""What a crashed run leaves behind: its workload lock (released by the kernel), its 'running' row
(closed by the next run) and its child processes (stopped by the reaper). Fast versions of what
test_flow_crash.py checks through Prefect."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flywheel.config import FlywheelConfig
from flywheel.loop import Loop, WorkloadBusy, start_run, workload_lock
from flywheel.pricing import PriceCatalog
from flywheel.store.db import Warehouse
from tests.reliability.helpers import spawn_python

HOLDER = """
import sys, time
from pathlib import Path
from flywheel.loop import workload_lock
from flywheel.reaper import reap_children_at_death
import subprocess

def main():
    reap_children_at_death()
    child = subprocess.Popen(["sleep", "120"])  # stands in for Prefect's ephemeral API server
    with workload_lock(Path(sys.argv[1]), "w"):
        print("locked", child.pid, flush=True)
        time.sleep(120)

if __name__ == "__main__":
    main()
"""


def test_kill_9_frees_the_lock_and_stops_the_children(tmp_path: Path, figures: dict) -> None:
    holder = spawn_python(HOLDER, tmp_path, "holder", str(tmp_path))
    assert holder.wait_for("locked", 1, timeout_s=60)
    grandchild = int(holder.seen[-1].split()[1])
    with pytest.raises(WorkloadBusy, match=r"in progress \(pid \d+"), workload_lock(tmp_path, "w"):
        pass
    time.sleep(1.0)  # the reaper polls children twice a second
    assert holder.kill9()
    with workload_lock(tmp_path, "w"):  # free at once: the kernel dropped the dead holder's flock
        pass
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild), "the child outlived its killed parent"
    figures.update(crashes=1, records_lost=0)


def _alive(pid: int) -> bool:
    """Running; a zombie (killed, not yet reaped by init) counts as gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_shared_lock_is_joined_and_a_plain_second_one_refuses(tmp_path: Path) -> None:
    with workload_lock(tmp_path, "w", share=True), workload_lock(tmp_path, "w"):
        pass  # `flywheel run` holds it, the flow it starts joins
    with workload_lock(tmp_path, "w"), pytest.raises(WorkloadBusy), workload_lock(tmp_path, "w"):
        pass


def test_next_locked_run_closes_the_dead_runs_row(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    loop = Loop(FlywheelConfig(), tmp_path, warehouse, PriceCatalog({}))
    dead = start_run(loop, "w", "flywheel")  # a run that was killed: never finished
    other = start_run(loop, "v", "flywheel")  # another workload's run, maybe alive
    unlocked = start_run(loop, "w", "flywheel")  # without the lock nothing is assumed dead
    assert _status(warehouse, dead) == "running"
    with workload_lock(tmp_path, "w"):
        current = start_run(loop, "w", "flywheel")
    assert [_status(warehouse, r) for r in (dead, unlocked, other, current)] == [
        "interrupted",
        "interrupted",
        "running",
        "running",
    ]


def _status(warehouse: Warehouse, run_id: str) -> str:
    return warehouse.read(
        lambda con: con.execute("SELECT status FROM flywheel_runs WHERE run_id = ?", [run_id]).fetchone()[0]
    )
