"""Curation at scale: N demo records of one workload, ingested and curated; time, records/s, peak RSS.

Generates the demo traffic of one workload (support-routing by default) with the demo generator's own
faults (duplicates, errors, refusals, PII, skew), ingests it into a fresh warehouse, then runs
`curate_workload` in a child process whose peak RSS (the whole process tree, polled, and the kernel's
high-water mark) is measured. `--incremental M` then ingests M fresh records (another seed) into the
largest warehouse and curates again over the whole history: what a daily curate costs once the
warehouse is large (the first curate stored every prepared row, so only the new ones are prepared).

    .venv/bin/python bench/curate_scale.py --records 62400 [--incremental 10000] [--data DIR]
    .venv/bin/python bench/curate_scale.py --records 62400 1000000 --incremental 10000   # both points
    .venv/bin/python bench/curate_scale.py --profile --records 15600      # cProfile of one curate

Generated logs are cached in --data (default /tmp/flywheel-curate-scale) by records and seed. The
demo generator holds a workload's records in memory while it writes them: 250,000 records took
4 min 16 s and 2.0 GB (load 10), so 1,000,000 take about 17 min and 8 GB, once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import figure  # noqa: E402

# Issue 22's figures before the rework, this machine on a quieter day: (records, seconds, peak MiB).
BASELINE = {1_560: (4.5, 487), 15_600: (9.7, 843), 62_400: (38.8, 2048)}
RECORDS_PER_SIZE = 1.04  # the generator adds ~4% planted duplicates and malformed lines to `size`


def generate(records: int, seed: int, workload_id: str, data: Path) -> Path:
    """One workload's demo log with about `records` lines (cached by records, seed and workload)."""
    from flywheel.demo import traffic

    path = data / f"{workload_id}-{records}-{seed}.jsonl"
    if path.exists():
        return path
    workload = next(w for w in traffic.WORKLOADS if w.workload_id == workload_id)
    rng = random.Random(f"flywheel-demo:{seed}:{workload_id}")
    built = traffic._build(workload, rng, max(1, round(records / RECORDS_PER_SIZE)), dict(traffic.RATES))
    data.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        for rec in built:  # what traffic._write writes, without the planted.json bookkeeping
            if rec.kind == "exact" and rec.original is not None:
                rec.raw = rec.original.raw
            elif rec.kind != "malformed":
                rec.raw = orjson.dumps(rec.doc) + b"\n"
            handle.write(rec.raw)
    partial.rename(path)
    return path


def workload_config(workload_id: str) -> Any:  # a WorkloadConfig, imported in the child only
    from flywheel.config import load_config
    from flywheel.demo import demo_config_path

    config = load_config(demo_config_path()).workload(workload_id)
    curation = config.curation.model_copy(update={"export": []})  # export is not curation's cost
    return config.model_copy(update={"curation": curation})


def ingest(home: Path, path: Path, workload_id: str) -> tuple[int, float]:
    from flywheel.ingest import ingest_paths
    from flywheel.store.db import Warehouse

    started = time.monotonic()
    report = ingest_paths(Warehouse(home / "warehouse.duckdb"), [path], workload_id=workload_id, fmt="openai")
    return report.total("ingested"), time.monotonic() - started


def child_curate(home: Path, workload_id: str, profile: Path | None) -> None:
    """Runs in the measured child: one curate, its report as JSON on the last stdout line."""
    from flywheel.curate import curate_workload
    from flywheel.store.db import Warehouse

    workload = workload_config(workload_id)
    warehouse = Warehouse(home / "warehouse.duckdb")
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        report = profiler.runcall(curate_workload, warehouse, workload, home=home)
        profiler.dump_stats(str(profile))
    else:
        report = curate_workload(warehouse, workload, home=home)
    body = {"in": report.n_in, "out": report.n_out, "rejected": report.rejected, "timings": report.timings,
            "splits": report.splits, "content_hash": report.content_hash,
            "prepared": report.prepared}  # fmt: skip
    print(json.dumps(body, default=str))


def tree_rss(pid: int) -> int:
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def measured_curate(home: Path, workload_id: str, profile: Path | None) -> dict:
    """Curate in a child process; its report plus wall seconds and peak RSS (MiB) of its tree."""
    command = [sys.executable, __file__, "--child", str(home), "--workload", workload_id]
    if profile is not None:
        command += ["--profile-out", str(profile)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    high_before = before.ru_maxrss
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    peak = [0]

    def poll() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    poller.join()
    if proc.returncode != 0:
        raise RuntimeError(f"curate failed (exit {proc.returncode}): {err.decode()[-3000:]}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    # the kernel's high-water mark covers every child so far: it speaks for this one only if it grew
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    high_water = after.ru_maxrss / 1024 if after.ru_maxrss > high_before else 0  # KiB -> MiB
    # CPU seconds: on a shared machine wall time swings with the load, CPU time much less
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    report.update(
        wall_s=round(seconds, 2), cpu_s=round(cpu, 1), peak_mib=round(max(peak[0] / 2**20, high_water))
    )
    return report


def print_run(label: str, run: dict, records: int) -> None:
    rate = records / run["wall_s"]
    print(f"{label}: {records:,} records in {run['wall_s']:.1f} s wall ({rate:,.0f} records/s, imports "
          f"included; {run['cpu_s']:.1f} s CPU, load {os.getloadavg()[0]:.1f}), "
          f"peak RSS {run['peak_mib']:,} MiB; in={run['in']:,} out={run['out']:,}")  # fmt: skip
    print(f"  stages (s): {run['timings']}; rows stored/prepared now: {run.get('prepared')}")
    print(f"  rejected: {run['rejected']}; content hash {str(run['content_hash'])[:16]}")


def measure_size(records: int, args: argparse.Namespace, incremental: int) -> None:
    """One size: generate (cached), ingest into a fresh warehouse, curate; then the incremental point."""
    path = generate(records, 7, args.workload, args.data)
    with tempfile.TemporaryDirectory(prefix="bench-curate-scale-") as tmp:
        home = Path(tmp)
        n, ingest_s = ingest(home, path, args.workload)
        print(f"ingest: {n:,} interactions from {path.name} in {ingest_s:.1f} s")
        profile = home / "curate.prof" if args.profile else None
        run = measured_curate(home, args.workload, profile)
        print_run("curate (full)", run, n)
        if profile is not None:
            import pstats

            pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(35)
        rate = n / run["wall_s"]
        base = BASELINE.get(records)
        figure("curate_scale", f"curate {n:,} demo records of one workload", round(rate), "records/s",
               baseline=round(n / base[0]) if base else None, target=">= 10,000 records/s",
               passed=rate >= 10_000)  # fmt: skip
        figure("curate_scale", f"curate {n:,} records: peak RSS", run["peak_mib"], "MiB",
               baseline=base[1] if base else None, target="<= 3072 MiB",
               passed=run["peak_mib"] <= 3072)  # fmt: skip
        figure("curate_scale", f"curate {n:,} records: CPU seconds", run["cpu_s"], "s")
        if incremental:
            new = generate(incremental, 1007, args.workload, args.data)
            m, _ = ingest(home, new, args.workload)
            again = measured_curate(home, args.workload, None)
            print_run(f"incremental curate (+{m:,} new over {n:,})", again, m)
            figure("curate_scale", f"incremental curate of {m:,} new records over {n:,}", again["wall_s"],
                   "s", target="<= 10 s", passed=again["wall_s"] <= 10)  # fmt: skip
            figure(
                "curate_scale", f"incremental curate of {m:,} over {n:,}: CPU seconds", again["cpu_s"], "s"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records",
        type=int,
        nargs="+",
        default=[62_400],
        help="Log lines of the workload (about); several sizes run one after another",
    )
    more = "Then ingest this many new records into the largest size and curate again"
    parser.add_argument("--incremental", type=int, default=10_000, help=more)
    parser.add_argument("--workload", default="support-routing")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "flywheel-curate-scale")
    parser.add_argument("--profile", action="store_true", help="cProfile the (first) curate")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_curate(args.child, args.workload, args.profile_out)
        return 0
    sizes = sorted(args.records)
    for records in sizes:
        measure_size(records, args, incremental=args.incremental if records == sizes[-1] else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
