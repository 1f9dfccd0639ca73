"""Run every benchmark in bench/ and write BENCHMARKS.md (machine, versions, each one's output).

    .venv/bin/python bench/run_all.py [--only ingest,label] [--out BENCHMARKS.md]

Each benchmark prints its own figures with the baseline measured in the same run and their ratio;
this runner records them verbatim with the wall time, so every number in BENCHMARKS.md has the
command that produced it next to it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["ingest", "curate_banking77", "label", "train", "train_banking77", "evaluate_speed", "serve"]
VERSIONS = ["duckdb", "polars", "pyarrow", "torch", "transformers", "trl", "peft", "prefect", "openai"]


def machine() -> list[str]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in VERSIONS)
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB",
        f"- Python {platform.python_version()}",
        f"- {versions}",
        f"- measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]


def run(name: str) -> tuple[str, float, int]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py")], capture_output=True, text=True, cwd=ROOT
    )
    output = (proc.stdout + ("\n" + proc.stderr[-2000:] if proc.returncode else "")).strip()
    return output, time.monotonic() - started, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    names = [n for n in ORDER if (ROOT / "bench" / f"{n}.py").exists()]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    sections = ["# Benchmarks", "", "Written by `make bench` (`bench/run_all.py`).", "", *machine(), ""]
    for name in names:
        print(f"running bench/{name}.py ...", flush=True)
        output, seconds, code = run(name)
        status = "" if code == 0 else f" (exit {code})"
        sections += [
            f"## {name}{status}",
            "",
            f"`.venv/bin/python bench/{name}.py` ({seconds:.0f} s)",
            "",
            "```",
            output,
            "```",
            "",
        ]
        print(output, flush=True)
    Path(args.out).write_text("\n".join(sections))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
