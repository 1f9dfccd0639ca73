"""Run every benchmark in bench/ and write BENCHMARKS.md (machine, versions, figures, each one's output).

    .venv/bin/python bench/run_all.py [--only ingest,label] [--out BENCHMARKS.md]

Each benchmark prints its own figures with the baseline measured in the same run and their ratio;
this runner records them verbatim with the wall time, so every number in BENCHMARKS.md has the
command that produced it next to it. Lines a benchmark prints as `FIGURE {json}` become rows of the
figures table, and `WORKLOAD {json}` lines rows of the quality/cost table (student vs teacher vs gold
on held-out public data); both are taken out of the verbatim output they summarise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# train_banking77 (the encoder student outside the loop) is superseded by banking77, which trains the
# same student through `flywheel run`; it still runs on its own: `bench/run_all.py --only train_banking77`.
ORDER = ["ingest", "curate_banking77", "curate_scale", "label", "train", "evaluate_speed", "serve",
         "banking77", "banking77_noise", "snips", "bfcl_simple", "tau_retail_tool"]  # fmt: skip
EXTRA = ["train_banking77"]
VERSIONS = ["duckdb", "polars", "pyarrow", "torch", "transformers", "trl", "peft", "prefect", "openai"]
TAGS = ("FIGURE ", "WORKLOAD ")


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
        f"- measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at start "
        f"{os.getloadavg()[0]:.1f} (other jobs sharing the cores slow every figure down)",
    ]


def run(name: str) -> tuple[str, float, int]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py")], capture_output=True, text=True, cwd=ROOT
    )
    output = (proc.stdout + ("\n" + proc.stderr[-2000:] if proc.returncode else "")).strip()
    return output, time.monotonic() - started, proc.returncode


def split_output(output: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """(the human-readable lines, FIGURE rows, WORKLOAD rows)."""
    text, figures, workloads = [], [], []
    for line in output.splitlines():
        tag = next((t for t in TAGS if line.startswith(t)), None)
        if tag is None:
            text.append(line)
            continue
        try:
            row = json.loads(line[len(tag) :])
        except json.JSONDecodeError:
            text.append(line)
            continue
        (figures if tag == "FIGURE " else workloads).append(row)
    return "\n".join(text), figures, workloads


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if value == 0:
            return "0"
        if abs(value) < 0.01:
            return f"{value:.8f}".rstrip("0")
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"
    return str(value)


def figures_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = ["## Figures", "", "| benchmark | figure | value | baseline (same run) | ratio | target | pass |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        value = f"{_num(r['value'])} {r.get('unit') or ''}".strip()
        passed = "-" if r.get("pass") is None else ("yes" if r["pass"] else "**no**")
        lines.append(f"| {r['bench']} | {r['figure']} | {value} | {_num(r.get('baseline'))} | "
                     f"{_num(r.get('ratio'))} | {r.get('target') or '-'} | {passed} |")  # fmt: skip
    return [*lines, ""]


def workloads_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "## Quality and cost per workload (held-out public data, against gold)",
        "",
        "| workload | student | held-out n | student vs gold | teacher vs gold | size | latency | "
        "$/1k student | $/1k teacher | savings |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        mine = ", ".join(f"{m} {v[0]:.4f}" for m, v in r["metrics"].items() if v and v[0] is not None)
        theirs = ", ".join(f"{m} {v[0]:.4f}" for m, v in r["teacher"].items() if v and v[0] is not None)
        promoted = "" if r.get("promoted") else " (not promoted)"
        size = f"{(r.get('params') or 0) / 1e6:.1f}M params, {_num(r.get('size_mb'), 1)} MB"
        savings = "-" if r.get("savings_pct") is None else f"{r['savings_pct']:.2%}"
        lines.append(
            f"| {r['workload']} | {r['student']}{promoted} | {r['n']:,} | {mine} | "
            f"{theirs} ({r['teacher_model']}) | {size} | {_num(r.get('latency_ms'), 2)} ms | "
            f"${_num(r.get('student_cost_per_1k'))} | ${_num(r.get('teacher_cost_per_1k'))} | {savings} |"
        )
    notes = [
        "",
        "Teacher = the production model whose logged answers are the traffic; on held-out data its "
        "answers are the gold labels, so it scores 1.0 by construction. Its cost is its list price "
        "(flywheel/pricing/prices.yaml) x the tokens of the request the application sends (system "
        "prompt included) counted with the model's tokenizer: the public data logs no usage. The "
        "student's cost is the serving hardware's hourly rate (flywheel/hardware_profiles.yaml, "
        "cpu-2core $0.10/h) / its throughput measured on the held-out set in batches. Latency: mean "
        "per request in batches on this machine.",
        "",
    ]
    return lines + notes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    names = [n for n in ORDER if (ROOT / "bench" / f"{n}.py").exists()]
    if args.only:
        wanted = args.only.split(",")
        names = [n for n in ORDER + EXTRA if n in wanted and (ROOT / "bench" / f"{n}.py").exists()]
    header = ["# Benchmarks", "", "Written by `make bench` (`bench/run_all.py`).", "", *machine(), ""]
    started = time.monotonic()
    sections: list[str] = []
    figures: list[dict[str, Any]] = []
    workloads: list[dict[str, Any]] = []
    for name in names:
        print(f"running bench/{name}.py ...", flush=True)
        output, seconds, code = run(name)
        text, found, rows = split_output(output)
        figures += found
        workloads += rows
        status = "" if code == 0 else f" (exit {code})"
        command = f"`.venv/bin/python bench/{name}.py` ({seconds:.0f} s)"
        sections += [f"## {name}{status}", "", command, "", "```", text, "```", ""]
        print(output, flush=True)
    total = f"Total wall time of this run: {time.monotonic() - started:.0f} s ({len(names)} benchmarks)."
    body = [*header, total, "", *workloads_table(workloads), *figures_table(figures), *sections]
    Path(args.out).write_text("\n".join(body))
    print(f"wrote {args.out}; {total}")


if __name__ == "__main__":
    main()
