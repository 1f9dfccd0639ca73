"""Ingest throughput: `flywheel ingest` of a 100k-record OpenAI JSONL vs DuckDB's raw read_json.

Both land the same file into a fresh DuckDB file on disk; the raw baseline only parses (no
validation, canonicalisation, content ids, de-duplication or quarantine). Each is timed --repeats
times, alternating, and the medians are compared, so one noisy run on a shared machine does not
decide the ratio. Prints records/s and the ratio (target >= 0.5).

    .venv/bin/python bench/ingest.py [--records 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import figure  # noqa: E402

from flywheel.ingest import ingest_paths  # noqa: E402
from flywheel.pricing import PriceCatalog  # noqa: E402
from flywheel.store.db import Warehouse  # noqa: E402

LABELS = ["billing", "shipping", "refund", "technical_issue", "account_access", "cancellation"]
SYSTEM = "You are a support router. Answer with exactly one label from: " + ", ".join(LABELS) + "."


def write_logs(path: Path, records: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("wb") as handle:
        for i in range(records):
            verb = rng.choice(["where is", "refund for", "cannot log into"])
            text = f"Order #{rng.randint(10000, 99999)}: {verb} my account {i}"
            request = {
                "model": "gpt-4o-mini",
                "temperature": 0,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
            }
            response = {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "created": 1_760_000_000 + i,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": rng.choice(LABELS)},
                    }
                ],
                "usage": {"prompt_tokens": 60, "completion_tokens": 2, "total_tokens": 62},
            }
            doc = {
                "request": request,
                "response": response,
                "timestamp": 1_760_000_000 + i,
                "client_id": f"client-{rng.randint(1, 8)}",
                "latency_ms": rng.uniform(200, 900),
            }
            handle.write(orjson.dumps(doc) + b"\n")


def raw_duckdb(path: Path, db: Path) -> float:
    started = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_json('{path}')")
    con.close()
    return time.perf_counter() - started


def flywheel_ingest(path: Path, db: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    report = ingest_paths(Warehouse(db), [path], workload_id="bench", price_fn=PriceCatalog.load().cost)
    return time.perf_counter() - started, report.as_dict()


def cli_ingest(path: Path, home: Path) -> float:
    started = time.perf_counter()
    cmd = [
        str(ROOT / ".venv/bin/flywheel"),
        "--home",
        str(home),
        "ingest",
        str(path),
        "-w",
        "bench",
        "--json",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    raw_runs: list[float] = []
    our_runs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        logs = tmp_dir / "logs.jsonl"
        write_logs(logs, args.records)
        size_mb = logs.stat().st_size / 1e6
        for k in range(args.repeats):
            raw_runs.append(raw_duckdb(logs, tmp_dir / f"raw-{k}.duckdb"))
            seconds, report = flywheel_ingest(logs, tmp_dir / f"ours-{k}.duckdb")
            our_runs.append(seconds)
            assert report["ingested"] == args.records, report
        again_s, again = flywheel_ingest(logs, tmp_dir / "ours-0.duckdb")
        cli_s = cli_ingest(logs, tmp_dir / "cli-home")
    n = args.records
    assert again["duplicates"] == n, again
    raw_s, ours_s = statistics.median(raw_runs), statistics.median(our_runs)
    print(f"file: {n:,} records ({size_mb:.0f} MB); medians of {args.repeats} alternating runs")
    print(f"duckdb raw read_json -> table : {n / raw_s:>10,.0f} records/s ({_spread(raw_runs)})")
    print(f"flywheel ingest (library)     : {n / ours_s:>10,.0f} records/s ({_spread(our_runs)})")
    print(f"flywheel ingest, re-run (dups): {n / again_s:>10,.0f} records/s ({again_s:.2f} s)")
    print(f"flywheel ingest (CLI process) : {n / cli_s:>10,.0f} records/s ({cli_s:.2f} s, incl. start-up)")
    print(f"ratio flywheel/raw            : {raw_s / ours_s:.2f}  (target >= 0.5)")
    figure("ingest", f"ingest {n:,} OpenAI JSONL records (library)", round(n / ours_s), "records/s",
           baseline=round(n / raw_s), ratio=round(raw_s / ours_s, 3), target=">= 0.5",
           passed=raw_s / ours_s >= 0.5)  # fmt: skip


def _spread(runs: list[float]) -> str:
    return f"{statistics.median(runs):.2f} s; runs {min(runs):.2f}-{max(runs):.2f} s"


if __name__ == "__main__":
    main()
