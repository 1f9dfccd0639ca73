"""Soak: `flywheel ingest` of a generated ~1 GiB JSONL file, with peak memory of its process tree.

    python -m tests.reliability.soak_ingest [--gib 1.0] [--max-rss-mib 2048] [--dir DIR]

Writes two files with the same mix (valid records of ~1 KiB, exact duplicates, bad lines): a small
one (1/10 of the size) and the big one. Each is ingested by a real `flywheel ingest` subprocess
while a sampler adds up the resident memory of it and every descendant (the parse
workers). Checks: exit 0, every line accounted for and counted right, peak RSS under --max-rss-mib,
and the big file's peak within 2x the small one's plus 256 MiB (memory does not grow with the
file). Prints one JSON line of figures. Nothing is committed: files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from tests.reliability.helpers import proc_stats

REPO = Path(__file__).resolve().parents[2]
FLYWHEEL = Path(sys.executable).with_name("flywheel")
PAD = "my order arrived damaged and the replacement never shipped, please help " * 11
BAD = (b'{"request": {"messages": [', b"\xff\xfe not utf-8", b"[1, 2, 3]")


def line(i: int) -> bytes:
    record = {
        "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"ticket {i}: {PAD}"}]},
        "response": {
            "model": "gpt-4o-mini",
            "choices": [{"message": {"role": "assistant", "content": "shipping"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 250, "completion_tokens": 1},
        },
        "timestamp": 1_700_000_000 + i,
    }
    return orjson.dumps(record)


def write_file(path: Path, target_bytes: int) -> dict[str, int]:
    """Every 1000th record repeated (duplicate), every 500th line followed by a bad one."""
    counts = {"lines": 0, "unique": 0, "bad": 0}
    written, i = 0, 0
    with path.open("wb", buffering=8 << 20) as out:
        while written < target_bytes:
            chunk = []
            for _ in range(1000):
                data = line(i)
                chunk.append(data)
                counts["unique"] += 1
                if i % 1000 == 0:
                    chunk.append(data)
                if i % 500 == 0:
                    chunk.append(BAD[i % len(BAD)])
                    counts["bad"] += 1
                i += 1
            block = b"\n".join(chunk) + b"\n"
            out.write(block)
            written += len(block)
            counts["lines"] += len(chunk)
    return counts


def tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for pid, fields in proc_stats():
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # field 24: rss pages
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0) for pid in tree)


def ingest(path: Path, home: Path) -> dict[str, Any]:
    args = [str(FLYWHEEL), "--home", str(home), "ingest", str(path), "-w", "soak", "-f", "openai", "--json"]
    # Both files with the same worker count: ingest picks none under load, so otherwise the small and
    # the big run can differ in process count and their peaks do not compare.
    env = {"FLYWHEEL_INGEST_WORKERS": "2", **os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    peak = {"bytes": 0}

    def sample() -> None:
        while process.poll() is None:
            peak["bytes"] = max(peak["bytes"], tree_rss_bytes(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    sampler.join()
    if process.returncode != 0 or b"Traceback" in stderr:
        raise SystemExit(f"ingest failed ({process.returncode}): {stderr.decode(errors='replace')[-3000:]}")
    report = json.loads(stdout)
    keys = ("read", "ingested", "duplicates", "quarantined")
    seconds = time.monotonic() - started
    return {k: report[k] for k in keys} | {"peak_rss_mib": peak["bytes"] >> 20, "seconds": round(seconds, 1)}


def check(name: str, result: dict[str, Any], counts: dict[str, int], size: int) -> None:
    expected = {
        "read": counts["lines"],
        "ingested": counts["unique"],
        "duplicates": counts["lines"] - counts["unique"] - counts["bad"],
        "quarantined": counts["bad"],
    }
    got = {k: result[k] for k in expected}
    if got != expected:
        raise SystemExit(f"{name}: counts {got} != expected {expected}")
    result["file_mib"] = size >> 20
    result["rows_per_s"] = round(result["read"] / max(result["seconds"], 1e-9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--max-rss-mib", type=int, default=2048)
    parser.add_argument("--dir", default=None, help="Where to write the files (default: a temp dir)")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="flywheel-soak-") as name:
        work = Path(name)
        for label, fraction in (("small", 0.1), ("big", 1.0)):
            path = work / f"{label}.jsonl"
            counts = write_file(path, int(args.gib * fraction * (1 << 30)))
            result = ingest(path, work / f"home-{label}")
            check(label, result, counts, path.stat().st_size)
            figures[label] = result
            path.unlink()
    small, big = figures["small"]["peak_rss_mib"], figures["big"]["peak_rss_mib"]
    # A 10x larger file may reach the full write batch the small one never fills, but memory that grew
    # with the file would be ~10x: twice the small peak plus slack separates the two cleanly.
    figures["bounded"] = big <= args.max_rss_mib and big <= 2 * small + 256
    print(json.dumps(figures, sort_keys=True))
    if not figures["bounded"]:
        raise SystemExit(
            f"peak RSS {big} MiB on the big file (small file: {small} MiB; limit {args.max_rss_mib})"
        )


if __name__ == "__main__":
    main()
