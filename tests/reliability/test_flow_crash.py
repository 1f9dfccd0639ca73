"""The parent flow under fire, through the real CLI and Prefect: two `flywheel run`s of one workload
at once (one refuses clearly), kill -9 of the other at a seeded random stage, then a clean re-run.

Then the whole home, the Prefect database, every process's output and every warehouse table are
scanned for the teacher key, the serve key and the PII planted in the demo traffic.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest
import yaml

from flywheel.demo import write_demo_setup
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from flywheel.testing.oracles import keyword_oracle
from tests.reliability.helpers import FLYWHEEL, Child, child_env, spawn, start_serve, stop

pytestmark = pytest.mark.slow
SEED = 4444
WORKLOAD = "support-routing"
TEACHER_KEY = "sk-canary-teacher-7f1e9b2c4d6a8e0f1a3b5c7d9e1f3a5b"
SERVE_KEY = "fw-canary-serve-0c2e4a6b8d0f2a4c6e8b0d2f4a6c8e0b"
RAW_TABLES = {"interactions", "quarantine"}  # the user's own traffic, as logged: PII allowed there only
# Kill points: after a stage is done, or mid-training once its first checkpoint is on disk. Not after
# "train done": evaluate and costs of the tiny student can finish inside the random delay.
STAGES = ("ingest", "curate", "label", "mid-train")


def setup_home(tmp_path: Path, teacher_url: str) -> tuple[Path, Path, list[str]]:
    home = tmp_path / "home"
    config_path, _ = write_demo_setup(home, seed=3, size=160)
    config = yaml.safe_load(config_path.read_text())
    config["workloads"] = [w for w in config["workloads"] if w["id"] == WORKLOAD]
    options = {"max_steps": 8, "save_steps": 2, "val_examples": 4, "postprocess": {"measure_examples": 2}}
    config["workloads"][0]["students"] = [
        {"name": "scratch-tiny", "kind": "scratch", "batch_size": 4, "max_seq_length": 96, "options": options}
    ]
    config["teacher"] = {
        "base_url": teacher_url,
        "model": "gpt-4o-mini",
        "api_key_env": "FLYWHEEL_CANARY_KEY",
        "concurrency": 4,
        "max_retries": 2,
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    planted = json.loads((home / "demo-data" / "planted.json").read_text())["workloads"][WORKLOAD]
    pii = [
        item["value"]
        for entry in planted["faults"].get("pii", [])
        for item in entry["items"]
        if item["origin"] == "planted"
    ]
    assert len(pii) >= 5
    return home, config_path, pii


def run_flywheel(config: Path, home: Path, name: str, prefect_home: Path) -> Child:
    args = [str(FLYWHEEL), "--config", str(config), "--home", str(home), "run", "-w", WORKLOAD]
    env = child_env(
        FLYWHEEL_CANARY_KEY=TEACHER_KEY, PREFECT_HOME=str(prefect_home), PREFECT_LOGGING_LEVEL="INFO"
    )
    return spawn([*args, "--label-mode", "relabel", "--json"], home, name, env)


def wait_until(child: Child, ready: Callable[[], bool], what: str, timeout_s: float) -> bool:
    """Poll `ready` while the child runs; once it has exited, whether `ready` came true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return True
        if child.process.poll() is not None:
            return ready()
        time.sleep(0.05)
    raise AssertionError(f"{what} never happened: {child.stderr[-2000:]}")


def kill_point_reached(child: Child, home: Path, stage: str) -> bool:
    """After "<stage> done" is logged; mid-train once the first checkpoint is on disk."""
    if stage == "mid-train":
        runs = home / "models" / WORKLOAD / ".runs"
        return wait_until(child, lambda: any(runs.rglob("checkpoint-*/trainer_state.json")), stage, 300)
    done = f"{WORKLOAD}: {stage} done"
    return wait_until(child, lambda: done in child.stderr, repr(done), 300)


def race_then_kill(config: Path, home: Path, prefect_home: Path, rng: random.Random) -> dict[str, Any]:
    """Two runs at once: one must refuse; the other is killed after a random stage."""
    racers = [run_flywheel(config, home, f"race-{i}", prefect_home) for i in range(2)]
    deadline = time.monotonic() + 240
    while all(r.process.poll() is None for r in racers):  # the refusal ends its process first
        assert time.monotonic() < deadline, [r.stderr[-1500:] for r in racers]
        time.sleep(0.1)
    loser = next(r for r in racers if r.process.poll() is not None)
    winner = next(r for r in racers if r is not loser)
    loser.finish(30)
    stage = rng.choice(STAGES)
    reached = kill_point_reached(winner, home, stage)
    if stage != "mid-train":
        time.sleep(rng.uniform(0.0, 1.0))
    killed = winner.kill9() if reached else False
    return {
        "loser": loser,
        "winner": winner,
        "stage": stage,
        "killed": killed,
        "orphans": winner.reap_group(),
    }


def serve_one_call(config: Path, home: Path) -> None:
    """Traffic through `flywheel serve` with keys on: its capture joins the next turn's ingest."""
    server, base = start_serve(config, home, FLYWHEEL_API_KEYS=SERVE_KEY, FLYWHEEL_CANARY_KEY=TEACHER_KEY)
    body = {"model": WORKLOAD, "messages": [{"role": "user", "content": "my card was charged twice"}]}
    with httpx.Client(base_url=base, timeout=20) as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 401  # keys are required
        auth = {"authorization": f"Bearer {SERVE_KEY}"}
        assert http.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
    assert stop(server) in (0, -15)
    (home / "serve.out").write_text("\n".join(server.seen) + server.stderr)


def test_concurrent_runs_kill_9_rerun_and_no_secret_anywhere(tmp_path: Path, figures: dict) -> None:
    teacher_app = make_fake_openai_app(keyword_oracle, latency_s=0.005)
    prefect_home, rng = tmp_path / "prefect", random.Random(SEED)
    with serve_in_thread(teacher_app) as teacher_url:
        home, config, pii = setup_home(tmp_path, teacher_url)
        race = race_then_kill(config, home, prefect_home, rng)
        serve_one_call(config, home)
        final = run_flywheel(config, home, "final", prefect_home)
        lines = final.finish(600)
    loser = race["loser"]
    refusal = json.loads(loser.seen[-1]) if loser.seen else {}
    assert loser.process.returncode == 1 and "in progress" in refusal.get("error", ""), loser.stderr[-3000:]
    assert "Traceback" not in loser.stderr, loser.stderr[-3000:]  # one clear line, no Prefect traceback
    assert final.process.returncode == 0, final.stderr[-3000:]
    assert race["killed"], f"the winner finished before the kill after {race['stage']}"
    assert race["orphans"] == 0, "processes outlived the killed run"
    turn = json.loads(lines[-1])["turns"][WORKLOAD]
    warehouse = Warehouse(home / "warehouse.duckdb")
    check_runs(warehouse, turn["run_id"])
    check_rows(warehouse, config, home, tmp_path)
    repeated = check_teacher(warehouse, teacher_app, pii)
    check_registry(home)
    outputs = [c.stderr + "\n".join(c.seen) for c in (loser, race["winner"], final)]
    scanned = scan_for_secrets(home, prefect_home, warehouse, outputs, pii)
    figures.update(
        crashes=1, kill_after=race["stage"], paid_twice=repeated, records_lost=0, files_scanned=scanned
    )


def check_runs(warehouse: Warehouse, final_run: str) -> None:
    runs = dict(query(warehouse, "SELECT run_id, status FROM flywheel_runs WHERE flow = 'flywheel'"))
    assert runs.pop(final_run) == "completed"
    assert list(runs.values()) == ["interrupted"], runs  # the killed run, closed by the next one


def check_rows(warehouse: Warehouse, config: Path, home: Path, tmp_path: Path) -> None:
    """The crashed-then-rerun warehouse holds exactly what one clean ingest of the same inputs does."""
    reference = Warehouse(tmp_path / "reference.duckdb")
    source = yaml.safe_load(config.read_text())["workloads"][0]["sources"][0]["path"]
    ingest_paths(reference, [source], workload_id=WORKLOAD, fmt="openai")
    ingest_paths(reference, sorted((home / "spool").glob("spool-*.jsonl")), workload_id=None, fmt="spool")
    for table in ("interactions", "quarantine"):
        ids = {r[0] for r in query(warehouse, f"SELECT id FROM {table}")}
        assert ids == {r[0] for r in query(reference, f"SELECT id FROM {table}")}, table
    assert query(warehouse, "SELECT count(*) - count(DISTINCT id) FROM interactions")[0][0] == 0
    labels = query(
        warehouse, "SELECT example_id, mode, count(*) FROM labels GROUP BY ALL HAVING count(*) > 1"
    )
    assert labels == []


def check_teacher(warehouse: Warehouse, app: Any, pii: list[str]) -> int:
    """Answers paid twice: only calls in flight at the kill (<= concurrency). Nothing sent to the
    teacher held PII: relabeling sends the scrubbed snapshot, not the raw logs."""
    sent = orjson.dumps(app.state.requests).decode()
    assert len(app.state.requests) > 0 and not [v for v in pii if v in sent]
    paid = Counter(orjson.dumps(r["messages"]) for r in app.state.requests)
    repeated = sum(n - 1 for n in paid.values())
    assert repeated <= 4, repeated
    cache, refs = query(
        warehouse, "SELECT (SELECT count(*) FROM teacher_cache), count(DISTINCT ref) FROM cost_ledger"
    )[0]
    assert cache == refs  # every cached answer booked once, nothing booked without an answer
    return repeated


def check_registry(home: Path) -> None:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        champions = con.execute(
            "SELECT workload_id, model_id, path FROM models WHERE stage = 'champion'"
        ).fetchall()
        models = con.execute("SELECT path FROM models").fetchall()
    finally:
        con.close()
    assert len({w for w, _, _ in champions}) == len(champions) <= 1  # at most one per workload
    assert all((home / p if not Path(p).is_absolute() else Path(p)).is_dir() for (p,) in models)
    manifest_path = home / "champions.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    assert {w: m for w, m, _ in champions} == {w: e["model_id"] for w, e in manifest.items()}
    assert not list((home / "models").glob("*/.runs/*"))  # no checkpoint left behind


def scan_for_secrets(
    home: Path, prefect_home: Path, warehouse: Warehouse, outputs: list[str], pii: list[str]
) -> int:
    keys = [TEACHER_KEY.encode(), SERVE_KEY.encode()]
    files = [p for root in (home, prefect_home) for p in root.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        assert not [k for k in keys if k in data], f"a key leaked into {path}"
        if not _raw_traffic(path, home):  # model cards, tokenizers, checkpoints, Prefect's database...
            assert not [v for v in pii if v.encode() in data], f"PII leaked into {path}"
    for text in outputs:
        assert TEACHER_KEY not in text and SERVE_KEY not in text
    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        for table in tables:
            text = repr(con.execute(f"SELECT * FROM {table}").fetchall())
            assert TEACHER_KEY not in text and SERVE_KEY not in text, table
            if table not in RAW_TABLES:
                assert not [v for v in pii if v in text], f"PII in derived table {table}"
    finally:
        con.close()
    return len(files)


def _raw_traffic(path: Path, home: Path) -> bool:
    """The logs themselves, the capture spool, and the warehouse file (compressed: scanned per table)."""
    raw = (home / "demo-data", home / "spool")
    return path.name.startswith("warehouse.duckdb") or any(path.is_relative_to(r) for r in raw)


def query(warehouse: Warehouse, sql: str) -> list[tuple]:
    return warehouse.read(lambda con: con.execute(sql).fetchall())
