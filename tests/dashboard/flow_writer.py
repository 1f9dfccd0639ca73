"""A stand-in for a flywheel flow writing to the warehouse, run in its own process by the tests.

Each round writes `flywheel serve` spool lines, ingests them with the real ingester in small
batches (many short write transactions, with a pause for the flow's own work between them), reads
them into the served-calls ledger as `flywheel costs` does, then books a ledger row, until the
stop file appears. It appends the number of finished rounds to `progress` so a test can see it
overlap.

    python -m tests.dashboard.flow_writer WAREHOUSE WORKDIR [MAX_SECONDS]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from flywheel.costs.served import sync_served_calls
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse

START_TS = 1_768_953_600  # 2026-01-21 00:00 UTC: the day after the fixture's traffic ends
LINES_PER_ROUND = 8
WORK_S = 0.2  # what a flow computes between two writes (parsing, scoring, a teacher call)


def spool_lines(round_no: int, n: int = LINES_PER_ROUND) -> list[bytes]:
    lines = []
    for k in range(n):
        student = k % 10 != 0
        model = "support/tiny/v1" if student else "gpt-4o"
        completion = {
            "id": f"c{round_no}-{k}",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "billing"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 2000, "completion_tokens": 200},
        }
        doc = {
            "flywheel_spool": 1,
            "id": f"writer-{round_no}-{k}",
            "ts": START_TS + round_no * 60 + k,
            "workload_id": "support",
            "request": {
                "model": "support",
                "messages": [{"role": "user", "content": f"ticket {round_no}/{k}"}],
            },
            "response": completion,
            "served_by": "student" if student else "teacher",
            "fallback_reason": None if student else "low_confidence",
            "model": model,
            "latency_ms": 20.0 if student else 900.0,
            "cost_usd": 0.0001 if student else 0.007,
        }
        lines.append(orjson.dumps(doc))
    return lines


def book(warehouse: Warehouse, round_no: int) -> None:
    warehouse.write(
        lambda con: con.execute(
            'INSERT INTO cost_ledger (entry_id, workload_id, run_id, kind, usd, "at") '
            "VALUES (?, 'support', 'writer', 'evaluation', 0.001, ?)",
            [
                f"writer-{round_no}",
                datetime.fromtimestamp(START_TS + round_no * 60, UTC).replace(tzinfo=None),
            ],
        )
    )


def main(warehouse_path: str, workdir: str, max_seconds: float = 120.0) -> int:
    warehouse, work = Warehouse(warehouse_path), Path(workdir)
    stop, progress = work / "stop", work / "progress"
    deadline = time.monotonic() + max_seconds
    round_no = 0
    while not stop.exists() and time.monotonic() < deadline:
        spool = work / f"spool-{round_no}.jsonl"
        spool.write_bytes(b"\n".join(spool_lines(round_no)) + b"\n")
        report = ingest_paths(
            warehouse,
            [spool],
            workload_id="support",
            fmt="spool",
            batch_size=4,
            progress=lambda _: time.sleep(WORK_S),
        )
        if report.errors or report.total("ingested") != LINES_PER_ROUND:
            print(f"round {round_no}: {report.as_dict()}", file=sys.stderr)
            return 1
        time.sleep(WORK_S)
        sync_served_calls(warehouse, work)  # what `flywheel costs` does: served calls count as money
        book(warehouse, round_no)
        round_no += 1
        time.sleep(WORK_S)
        with progress.open("a") as handle:
            handle.write(f"{round_no}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3], *(float(a) for a in sys.argv[3:4])))
