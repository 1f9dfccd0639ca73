"""Shared by the benchmarks: run the `flywheel` CLI as a user would (banking77.py, snips.py,
banking77_noise.py), and print figures in the two machine-readable shapes bench/run_all.py collects:

    FIGURE {"bench", "figure", "value", "unit", "baseline", "ratio", "target", "pass"}
    WORKLOAD {"workload", "student", "promoted", "n", "metrics", "teacher", "size_mb", "savings_pct", ...}

A benchmark imports it as `from benchlib import figure` (python puts bench/ on sys.path).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLYWHEEL = str(Path(sys.executable).parent / "flywheel")
DATA_ROOT = ROOT.parent / "shared" / "data"


def recipe_parser(doc: str, dataset: str, epochs_help: str) -> argparse.ArgumentParser:
    """The options every real-data bench takes: where the data is, where to run, how long to train."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT / dataset)
    parser.add_argument("--out", type=Path, default=None, help="Run directory (default: a temp dir)")
    parser.add_argument("--epochs", type=float, default=None, help=epochs_help)
    return parser


@contextmanager
def run_dir(out: Path | None, prefix: str) -> Iterator[Path]:
    """`out` when given (kept for inspection), else a temporary directory removed afterwards."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def bench_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment: offline Hugging Face, a private Prefect home, a patient ephemeral API."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # a fresh Prefect database migrates on first start: slow on a busy 2-core machine
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        PREFECT_LOGGING_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env | (extra or {})


def flywheel(*args: str | Path, env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run `flywheel ARGS --json`; (its JSON object, seconds). A failure raises with its stderr tail."""
    command = [FLYWHEEL, *map(str, args), "--json"]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.monotonic() - started
    try:
        payload = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        payload = {}
    if proc.returncode != 0:
        detail = payload.get("error") or proc.stderr[-3000:]
        raise RuntimeError(f"{' '.join(command[1:])} failed (exit {proc.returncode}): {detail}")
    return payload, seconds


def latest_model(config: Path, workload: str, env: dict[str, str]) -> str | None:
    listed, _ = flywheel("--config", config, "models", env=env)
    models = [m for m in listed.get("models", []) if m["workload_id"] == workload]
    models.sort(key=lambda m: m["created_at"])
    return models[-1]["model_id"] if models else None


def score(config: Path, recipe: str, data: Path, env: dict[str, str], model: str | None = None) -> dict:
    """`flywheel recipe-score`: the champion (else `model`) on the held-out gold."""
    args: list[str | Path] = ["--config", config, "recipe-score", recipe, "--data", data]
    if model is not None:
        args += ["--model", model]
    result, seconds = flywheel(*args, env=env)
    return result | {"score_seconds": round(seconds, 1)}


def figure(bench: str, name: str, value: Any, unit: str = "", *, baseline: Any = None, ratio: Any = None,
           target: str | None = None, passed: bool | None = None) -> None:  # fmt: skip
    row = {"bench": bench, "figure": name, "value": value, "unit": unit, "baseline": baseline,
           "ratio": ratio, "target": target, "pass": passed}  # fmt: skip
    print("FIGURE " + json.dumps(row), flush=True)


def workload_row(result: dict[str, Any], metrics: list[str], note: str = "") -> None:
    """One line of the quality/cost table: student vs teacher vs gold on the held-out files."""
    student, teacher = result["student"], result["teacher"]
    row = {
        "workload": result["workload"],
        "student": f"{result['model_id']} ({result['kind']})",
        "promoted": result["promoted"],
        "n": result["n"],
        "metrics": {m: _metric(student, m) for m in metrics},
        "teacher": {m: _metric(teacher, m) for m in metrics},
        "teacher_model": teacher["model"],
        "params": result["params"],
        "size_mb": result["size_mb"],
        "latency_ms": student["latency_ms_mean"],
        "student_cost_per_1k": student["cost_per_1k"],
        "teacher_cost_per_1k": teacher["cost_per_1k"],
        "savings_pct": result["savings_pct"],
        "note": note,
    }
    print("WORKLOAD " + json.dumps(row), flush=True)


def _metric(summary: dict[str, Any], name: str) -> Any:
    if name in summary.get("metrics", {}):
        return summary["metrics"][name]
    return [summary[name], None, None] if name in summary else None


def ci_text(triple: list[float | None] | None) -> str:
    if not triple or triple[0] is None:
        return "-"
    value, low, high = triple
    return f"{value:.4f}" + (f" (95% CI {low:.4f}-{high:.4f})" if low is not None else "")


def cost_lines(result: dict[str, Any]) -> list[str]:
    student, teacher = result["student"], result["teacher"]
    return [
        f"cost per 1k requests: student ${student['cost_per_1k']:.6f} ({result['hardware']}, "
        f"{student['requests_per_second']:.0f} req/s measured, batched) vs teacher "
        f"${teacher['cost_per_1k']:.6f} ({teacher['model']} list price, "
        f"{teacher['prompt_tokens_mean']:.0f} prompt + {teacher['completion_tokens_mean']:.0f} completion "
        f"tokens/request, {teacher['tokens_basis']}): {result['savings_pct']:.2%} cheaper",
        f"student: {result['params'] / 1e6:.1f}M params, {result['size_mb']:.0f} MB on disk, "
        f"{student['latency_ms_mean']:.2f} ms/request mean in batches "
        f"(p95 {student['latency_ms_p95']:.2f}), trained in {result['train_seconds']:.0f} s",
    ]


def passed(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def loop_lines(turn: dict[str, Any], run_s: float) -> list[str]:
    """What the `flywheel run` turn did: funnel, gate decision, eval-split score, stage times."""
    reasons = ", ".join(turn.get("reasons") or [])
    student = [turn.get("student_score"), *(turn.get("student_ci") or [None, None])]
    teacher = turn.get("teacher_score")
    return [
        f"loop: {turn['records_in']:,} records in -> {turn['curated_out']:,} curated; "
        f"gate {turn['decision']} ({reasons}); champion {turn.get('champion')}",
        f"gate eval split ({turn.get('metric')} against the logged answers): student {ci_text(student)}, "
        f"teacher {'-' if teacher is None else f'{teacher:.4f}'}",
        f"stage seconds: {turn.get('seconds')}; `flywheel run` {run_s:.0f} s wall",
    ]
