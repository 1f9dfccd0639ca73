"""kill -9 at seeded random points of ingestion and of a warehouse write transaction, then re-run.

Guarantees checked: no duplicate row, no lost row, every line accounted for once the re-run
completes; committed data never disappears; a transaction cut by the kill is all or nothing; the
warehouse opens after every kill; no worker process outlives a killed ingest.
"""

from __future__ import annotations

import gzip
import json
import random
import tempfile
import time
from pathlib import Path

import orjson

from flywheel.ingest import ingest_paths
from flywheel.ingest.sharding import SPOOL_PREFIX
from flywheel.store.db import Warehouse
from tests.conftest import chat_record
from tests.reliability.helpers import Child, spawn_python

SEED = 1111
PAD = "the parcel never arrived and the tracking page has not changed for days " * 4
BATCH = 250

INGEST_CHILD = """
import json, sys
import flywheel.ingest.sharding
from flywheel.ingest import ingest_paths
from flywheel.ingest.sharding import SPOOL_PREFIX
from flywheel.store.db import Warehouse

# Shard files from 1 MiB (not 16): the multi-process path, on a file small enough for a quick test.
flywheel.ingest.sharding.SHARD_MIN_BYTES, flywheel.ingest.sharding.SHARD_TARGET_BYTES = 1 << 20, 256 << 10

def main():
    report = ingest_paths(Warehouse(sys.argv[1]), sys.argv[2:], workload_id="w", fmt="openai",
                          batch_size=BATCH, progress=lambda n: print("batch", n, flush=True))
    keys = ("read", "ingested", "duplicates", "quarantined")
    print("done", json.dumps({k: v for k, v in report.as_dict().items() if k in keys}), flush=True)

BATCH = 250
if __name__ == "__main__":  # workers from a forkserver (a multi-threaded caller) re-import __main__
    main()
"""


def record(i: int) -> bytes:
    return orjson.dumps({**chat_record(i), "request": _request(i)})


def _request(i: int) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"ticket {i}: {PAD}"}]}


def bad_line(i: int) -> bytes:
    kinds = [b'{"request": {"messages": [', b"\xff\xfe not utf-8", b"[1, 2, 3]", b'{"request": 7}']
    return kinds[i % len(kinds)] + str(i).encode()


def write_inputs(tmp: Path) -> tuple[list[Path], set[int], int, int]:
    """A >1 MiB file (the sharded, multi-process path in the child), an overlapping plain file and a gzip one,
    with in-file duplicates and bad lines. Returns (files, valid record numbers, bad lines, lines)."""
    layout = {
        "big.jsonl": range(0, 5_000),
        "overlap.jsonl": range(4_000, 6_000),
        "more.jsonl.gz": range(5_500, 6_500),
    }
    files, valid, bad, lines_total = [], set(), 0, 0
    for name, numbers in layout.items():
        lines = []
        for i in numbers:
            lines.append(record(i))
            valid.add(i)
            if i % 97 == 0:
                lines.append(record(i))  # duplicate inside the file
            if i % 53 == 0:
                lines.append(bad_line(i))
                bad += 1
        data = b"\n".join(lines) + b"\n"
        path = tmp / name
        path.write_bytes(gzip.compress(data, compresslevel=1) if name.endswith(".gz") else data)
        files.append(path)
        lines_total += len(lines)
    assert files[0].stat().st_size > 1 << 20  # the child really runs flywheel.ingest.sharding
    return files, valid, bad, lines_total


def query(warehouse: Warehouse, sql: str) -> list[tuple]:
    return warehouse.read(lambda con: con.execute(sql).fetchall())


def count(warehouse: Warehouse, sql: str) -> int:
    return warehouse.read(lambda con: con.execute(sql).fetchone()[0])


def kill_at_random_point(
    child: Child, rng: random.Random, batches: int, first_batch_ok: bool = True
) -> tuple[bool, str]:
    """Wait for a random number of committed batches (0: still starting or migrating), then a
    random few ms more so the kill also lands inside a transaction, then SIGKILL."""
    wanted = rng.randint(1, batches) if first_batch_ok else 0
    if wanted == 0:
        time.sleep(rng.uniform(0.0, 2.0))
        where = "start-up"
    else:
        if not child.wait_for("batch", wanted, timeout_s=120):
            return False, "finished first"
        time.sleep(rng.uniform(0.0, 0.05))
        where = f"after batch {wanted}"
    return child.kill9(), where


def test_ingest_survives_kill_9_at_random_points(tmp_path: Path, figures: dict) -> None:
    files, valid, bad, lines_total = write_inputs(tmp_path)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    args = [str(warehouse.path), *map(str, files)]
    rng = random.Random(SEED)
    kills, points, orphans, seen, pids = 0, [], 0, 0, []
    for attempt in range(5):
        child = spawn_python(INGEST_CHILD, tmp_path, f"ingest-{attempt}", *args)
        pids.append(child.process.pid)
        # the first kill lands in start-up (imports, schema migration), the others mid-ingest
        killed, where = kill_at_random_point(child, rng, lines_total // BATCH, first_batch_ok=attempt > 0)
        orphans += child.reap_group()
        kills += killed
        points.append(where)
        if warehouse.path.exists():  # opens after every kill, and committed rows never disappear
            now = count(warehouse, "SELECT count(*) FROM interactions") if _has_schema(warehouse) else 0
            assert seen <= now <= len(valid)
            seen = now
    final = spawn_python(INGEST_CHILD, tmp_path, "ingest-final", *args)
    done = json.loads(final.finish(300)[-1].removeprefix("done "))
    assert final.process.returncode == 0, final.stderr
    assert orphans == 0, "worker processes outlived a killed ingest"
    spools = [p for pid in pids for p in Path(tempfile.gettempdir()).glob(f"{SPOOL_PREFIX}{pid}-*")]
    assert not spools, "the re-run left the killed runs' spool directories behind"

    reference = Warehouse(tmp_path / "reference.duckdb")  # the same files, never interrupted
    ingest_paths(reference, files, workload_id="w", fmt="openai")
    expected_ids, stored = ids(reference), ids(warehouse)
    assert len(expected_ids) == len(valid)
    assert stored == expected_ids  # nothing lost, nothing extra
    assert count(warehouse, "SELECT count(*) - count(DISTINCT id) FROM interactions") == 0
    assert count(warehouse, "SELECT count(*) FROM quarantine") == bad
    assert count(warehouse, "SELECT count(DISTINCT source_ref) FROM quarantine") == bad
    assert done["read"] == lines_total == done["ingested"] + done["duplicates"] + done["quarantined"]
    assert kills >= 3, points  # the seed really killed most attempts
    lost = len(expected_ids - stored)
    figures.update(crashes=kills, cases=lines_total, records_lost=lost, kill_points=points)


def ids(warehouse: Warehouse) -> set[str]:
    return warehouse.read(lambda con: {r[0] for r in con.execute("SELECT id FROM interactions").fetchall()})


def _has_schema(warehouse: Warehouse) -> bool:
    return bool(
        warehouse.read(
            lambda con: con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'interactions'"
            ).fetchone()[0]
        )
    )


TXN_CHILD = """
import sys
from flywheel.store.db import Warehouse
warehouse = Warehouse(sys.argv[1])
start, rows = int(sys.argv[2]), int(sys.argv[3])
warehouse.write(lambda con: con.execute("CREATE TABLE IF NOT EXISTS probe (round INTEGER, k BIGINT)"))
for r in range(start, start + 1000):
    def txn(con, r=r):
        print("begin", r, flush=True)
        con.execute("INSERT INTO probe SELECT ?, range FROM range(?)", [r, rows])
        con.execute("INSERT INTO ingest_batches VALUES (?, 'w', 'probe', 'p', ?, ?, 0, 0, now(), now())",
                    [f"probe-{r}", rows, rows])
    warehouse.write(txn)  # commit, then close: DuckDB checkpoints the WAL into the file on close
    print("commit", r, flush=True)
"""


def test_transaction_cut_by_kill_9_is_all_or_nothing(tmp_path: Path, figures: dict) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    rows, rng = 300_000, random.Random(SEED + 1)
    committed: set[int] = set()
    kills = 0
    for attempt in range(8):
        start = attempt * 1000
        args = (str(warehouse.path), str(start), str(rows))
        child = spawn_python(TXN_CHILD, tmp_path, f"txn-{attempt}", *args)
        child.wait_for("begin", rng.randint(1, 4), timeout_s=60)
        time.sleep(rng.uniform(0.0, 0.4))  # inside the insert, the commit or the checkpoint
        kills += child.kill9()
        committed |= {int(line.split()[1]) for line in child.seen if line.startswith("commit")}
        per_round = dict(query(warehouse, "SELECT round, count(*) FROM probe GROUP BY round"))
        batches = {row[0] for row in query(warehouse, "SELECT batch_id FROM ingest_batches")}
        assert set(per_round.values()) <= {rows}, per_round  # never a partial transaction
        assert committed <= set(per_round), "a committed transaction was lost"
        assert batches == {f"probe-{r}" for r in per_round}  # both tables of a transaction, or neither
    assert kills == 8
    figures.update(crashes=kills, cases=len(committed), records_lost=0)
