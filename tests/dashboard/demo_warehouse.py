"""A warehouse shaped like the one `flywheel demo` leaves, built in seconds instead of minutes.

The real stages run where they are cheap: demo traffic generation (`write_demo_setup`), ingest
(`ingest_stage`), the registry's promotion and champions manifest, run records (`start_run` /
`finish_run`), the serve spool (`SpoolWriter`, lines as `flywheel serve` captures them) and the costs
stage (spool sync into served_calls, token counting, pricing assumptions). Training and evaluation
are what make `flywheel demo` take minutes, so their outputs are written as the stages store them:
one model row with its measured train time (priced by the costs views) and one gate decision.

Like the demo, the logged traffic is dated June 2025 (flywheel/demo/common.py) and the served day
is today: months without data between the two.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from flywheel.demo import write_demo_setup
from flywheel.loop import Loop, costs_stage, finish_run, ingest_stage, start_run
from flywheel.records import utcnow
from flywheel.registry import Registry, register_candidates
from flywheel.serve.capture import SPOOL_VERSION
from flywheel.serve.spool import SpoolWriter

CHAMPION_WORKLOAD = "support-routing"  # promoted: its served calls go to the student
PROXIED_WORKLOAD = "order-extraction"  # served with no champion yet: every call goes to the teacher
CHAMPION = f"{CHAMPION_WORKLOAD}/minilm/v1"
TRAIN_SECONDS = 110.0  # the README's measured support-routing training time
STUDENT_USD = 1.1e-6  # per student answer: measured CPU time at cpu-2core (README: $0.0011 per 1k)
FALLBACK_SHARE = 0.15
PREFECT_RUN = "5d0c3a9e-7b1f-4c55-9b0e-2f7d1c9a0001"


def build_demo_warehouse(home: Path, size: int = 150, served: int = 80) -> Loop:
    """Ingest demo traffic for three workloads, promote one student, serve a day, price it all."""
    config, workloads = write_demo_setup(home, seed=7, size=size)
    loop = Loop.open(config)
    for workload in workloads:
        ingest_stage(loop, workload)
    run_id = start_run(loop, CHAMPION_WORKLOAD, "flywheel", PREFECT_RUN)
    _promote(loop)
    finish_run(loop, run_id, "completed", _turn_summary())
    _serve_day(loop, home, served)
    for workload in workloads:
        costs_stage(loop, workload)
    return loop


def _promote(loop: Loop) -> None:
    now = utcnow()
    path = loop.home / "models" / CHAMPION
    path.mkdir(parents=True, exist_ok=True)
    (path / "bundle.json").write_text("{}")
    model = {
        "model_id": CHAMPION, "workload_id": CHAMPION_WORKLOAD, "name": "minilm",
        "kind": "encoder-classifier", "path": str(path), "train_seconds": TRAIN_SECONDS,
        "tokens_per_second": 900.0, "created_at": now,
    }  # fmt: skip
    register_candidates(loop.warehouse, [model], {})
    _gate(loop, now)
    Registry(loop.warehouse, loop.home).promote(CHAMPION, "gate passed", action="promote", run_id="eval-demo")


def _gate(loop: Loop, now: Any) -> None:
    """The gate's decision and scores, as flywheel/evaluate/store.py saves them."""
    scores = {CHAMPION: (0.953, 0.924, 0.979), "teacher": (0.970, 0.947, 0.989)}
    results = {"primary_metric": "accuracy", "models": [{"model": CHAMPION, "cost_per_1k": 0.0011}]}

    def write(con: Any) -> None:
        con.execute(
            "INSERT INTO eval_runs VALUES ('eval-demo', ?, NULL, ?, ?, 'promote', ?, '[]', ?)",
            [CHAMPION_WORKLOAD, now - timedelta(seconds=4), now, CHAMPION, orjson.dumps(results).decode()],
        )
        for model, (value, low, high) in scores.items():
            con.execute(
                "INSERT INTO evaluations VALUES (?, 'eval-demo', ?, ?, NULL, 'accuracy', NULL, ?, ?, ?, 236, "
                "'gold', ?)",
                [f"eval-demo-{model}", model, CHAMPION_WORKLOAD, value, low, high, now],
            )

    loop.warehouse.write(write)


def _turn_summary() -> dict[str, Any]:
    return {"decision": "promote", "reasons": [], "champion": CHAMPION, "metric": "accuracy"}


def _serve_day(loop: Loop, home: Path, served: int) -> None:
    """Fresh requests (a seed the logs never used) captured in the serve spool, as `serve` writes them."""
    day = home / "served-day"
    write_demo_setup(day, seed=1007, size=served)
    rng = random.Random(1007)
    spool = SpoolWriter(home / "spool")
    try:
        for workload in (CHAMPION_WORKLOAD, PROXIED_WORKLOAD):
            lines = (day / "demo-data" / f"{workload}.jsonl").read_bytes().splitlines()
            for number, line in enumerate(lines):
                logged = _answered(line)
                if logged is not None:
                    spool.append(_record(workload, number, logged, rng))
    finally:
        spool.close()


def _answered(line: bytes) -> dict[str, Any] | None:
    """A logged call the teacher answered (the demo logs plant malformed lines, errors, streams)."""
    try:
        logged = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    response = logged.get("response") if isinstance(logged, dict) else None
    return logged if isinstance(response, dict) and response.get("choices") else None


def _served_ts(rng: random.Random) -> float:
    """A moment of the last hour, within today (UTC): the tests expect one served day, also when
    they run just after midnight."""
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    return now.timestamp() - rng.random() * min(3600.0, now.timestamp() - midnight)


def _record(workload: str, number: int, logged: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    student = workload == CHAMPION_WORKLOAD and rng.random() >= FALLBACK_SHARE
    response = logged["response"]
    usage = response.get("usage") or {}
    record = {
        "flywheel_spool": SPOOL_VERSION, "id": f"{workload}-served-{number}",
        "ts": _served_ts(rng), "workload_id": workload,
        "client_id": logged.get("client_id"), "request": logged["request"], "response": response,
        "teacher_response": None,
    }  # fmt: skip
    if student:
        return record | {
            "served_by": "student", "model": CHAMPION, "fallback_reason": None,
            "latency_ms": round(rng.uniform(12, 45), 3), "prompt_tokens": None, "completion_tokens": None,
            "cost_usd": STUDENT_USD, "metadata": {"route": "student"},
        }  # fmt: skip
    reason = "low_confidence" if workload == CHAMPION_WORKLOAD else "no_champion"
    return record | {
        "served_by": "teacher", "model": response.get("model"), "fallback_reason": reason,
        "latency_ms": round(rng.uniform(600, 1500), 3), "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"), "cost_usd": None,
        "metadata": {"route": "fallback" if reason == "low_confidence" else "proxy"},
    }  # fmt: skip
