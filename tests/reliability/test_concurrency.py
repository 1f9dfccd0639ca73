"""Several processes on one warehouse at once: never a corrupt row, a lost one or an unclear error.

DuckDB lets one process hold the file at a time; writers keep transactions short and everyone retries
on the lock (flywheel/store/db.py). These tests race real processes against each other.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

from dashboards import data
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from flywheel.testing.oracles import keyword_oracle
from tests.conftest import chat_record, write_jsonl
from tests.reliability.helpers import FLYWHEEL, child_env, spawn_python, start_serve, stop

RACE_CHILD = """
import json, sys, time
from pathlib import Path
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse

def main():
    go = Path(sys.argv[2])
    while not go.exists():  # both racers leave the start line together
        time.sleep(0.005)
    report = ingest_paths(Warehouse(sys.argv[1]), sys.argv[3:], workload_id="w", fmt="openai", batch_size=300)
    keys = ("read", "ingested", "duplicates", "quarantined", "errors")
    print(json.dumps({k: v for k, v in report.as_dict().items() if k in keys}), flush=True)

if __name__ == "__main__":
    main()
"""


def test_two_ingests_of_overlapping_files_at_once(tmp_path: Path, figures: dict) -> None:
    ranges = {"a.jsonl": range(0, 1500), "b.jsonl": range(1000, 2500), "c.jsonl": range(2000, 3500)}
    files = {
        name: write_jsonl(tmp_path / name, [*map(chat_record, numbers), b"{broken"])
        for name, numbers in ranges.items()
    }
    warehouse, go = Warehouse(tmp_path / "w.duckdb"), tmp_path / "go"
    racers = [
        spawn_python(RACE_CHILD, tmp_path, f"racer-{i}", str(warehouse.path), str(go), *map(str, paths))
        for i, paths in enumerate(
            [(files["a.jsonl"], files["b.jsonl"]), (files["c.jsonl"], files["b.jsonl"])]
        )
    ]
    time.sleep(1.0)  # both imported and waiting
    go.touch()
    reports = [json.loads(racer.finish(180)[-1]) for racer in racers]
    assert [r.process.returncode for r in racers] == [0, 0], [r.stderr for r in racers]
    unique = len(set().union(*ranges.values()))
    stored = warehouse.read(
        lambda con: con.execute("SELECT count(*), count(DISTINCT id) FROM interactions").fetchone()
    )
    assert stored == (unique, unique)
    assert sum(r["ingested"] for r in reports) == unique  # each record inserted by exactly one racer
    for report in reports:
        assert report["errors"] == [] and report["quarantined"] == 2
        assert report["read"] == report["ingested"] + report["duplicates"] + report["quarantined"] == 3002
    quarantined = warehouse.read(lambda con: con.execute("SELECT count(*) FROM quarantine").fetchone()[0])
    assert quarantined == 3  # b.jsonl's broken line is one row, however many runs saw it
    figures.update(cases=sum(r["read"] for r in reports), records_lost=0, processes=2)


WRITER_CHILD = """
import sys, time
from pathlib import Path
import orjson
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl

def main():
    warehouse, workdir, spool = Warehouse(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    for round_no in range(int(sys.argv[4])):
        if (workdir / "stop").exists():
            break
        path = write_jsonl(workdir / f"round-{round_no}.jsonl",
                           [chat_record(100_000 + round_no * 200 + k) for k in range(200)])
        ingest_paths(warehouse, [path], workload_id="support", fmt="openai", batch_size=50)
        spooled = sorted(spool.glob("spool-*.jsonl"))
        if spooled:  # what the flow's ingest stage does: read the spool while serve appends to it
            ingest_paths(warehouse, spooled, workload_id=None, fmt="spool", batch_size=50)
        print("round", round_no, flush=True)
        time.sleep(0.05)

if __name__ == "__main__":
    main()
"""


def serve_config(tmp_path: Path, teacher_url: str) -> Path:
    config = tmp_path / "flywheel.yaml"
    workload = {"id": "support", "task": "classification", "labels": ["billing", "refund", "shipping"]}
    teacher = {"base_url": teacher_url, "model": "fake-teacher", "max_retries": 1}
    config.write_text(yaml.safe_dump({"teacher": teacher, "workloads": [workload]}))
    return config


def cli_stats(config: Path, home: Path) -> dict:
    done = subprocess.run(
        [str(FLYWHEEL), "--config", str(config), "--home", str(home), "stats", "--json"],
        capture_output=True,
        text=True,
        env=child_env(OPENAI_API_KEY="k"),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def test_dashboard_cli_and_serve_keep_working_while_a_flow_writes(
    tmp_path: Path, monkeypatch, figures: dict
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    warehouse = Warehouse(home / "warehouse.duckdb")
    ingest_paths(
        warehouse,
        [write_jsonl(tmp_path / "seed.jsonl", [chat_record(i) for i in range(50)])],
        workload_id="support",
    )
    monkeypatch.setenv(data.WAREHOUSE_ENV, str(warehouse.path))
    with serve_in_thread(make_fake_openai_app(keyword_oracle, latency_s=0.01)) as teacher_url:
        config = serve_config(tmp_path, teacher_url)
        server, base = start_serve(config, home, OPENAI_API_KEY="k", FLYWHEEL_API_KEYS="")
        writer = spawn_python(
            WRITER_CHILD, tmp_path, "writer", str(warehouse.path), str(tmp_path), str(home / "spool"), "200"
        )
        acknowledged: list[str] = []
        with ThreadPoolExecutor(2) as pool:
            calls = pool.submit(_call_serve, base, acknowledged, writer)
            stats_seen, pages = _read_while_writing(config, home, writer)
            (tmp_path / "stop").touch()
            calls.result()
        assert writer.finish(120)[-1].startswith("round") and writer.process.returncode == 0, writer.stderr
        assert stop(server) in (0, -15) and "Traceback" not in server.stderr
    assert stats_seen == sorted(stats_seen) and stats_seen[-1] > stats_seen[0]  # saw the writes land
    torn = check_every_call_landed(warehouse, home / "spool", acknowledged)
    figures.update(
        cases=len(acknowledged) + len(stats_seen) + pages, records_lost=0, processes=3, torn_reads=torn
    )


def check_every_call_landed(warehouse: Warehouse, spool: Path, acknowledged: list[str]) -> int:
    """Every call answered while the flow wrote is in the warehouse; returns the torn reads seen."""
    final = ingest_paths(warehouse, [spool], workload_id=None, fmt="spool")
    sql = "SELECT json_extract_string(metadata, '$.spool_id') FROM interactions"
    assert set(acknowledged) <= {row[0] for row in query(warehouse, sql)}
    # A line the server is still appending can be read half-written (Linux makes no promise to a
    # reader racing a write). It is quarantined as truncated_json, then ingested whole next time:
    # noise in the quarantine, never a loss. Known limitation, see RELIABILITY.md.
    torn = query(
        warehouse,
        "SELECT q.source_ref, q.reason, count(i.id) FROM quarantine q "
        "LEFT JOIN interactions i USING (source_ref) GROUP BY ALL",
    )
    assert all(reason == "truncated_json" and found == 1 for _, reason, found in torn), torn
    assert final.total("quarantined") == 0  # once the server stopped, every line reads whole
    return len(torn)


def query(warehouse: Warehouse, sql: str) -> list[tuple]:
    return warehouse.read(lambda con: con.execute(sql).fetchall())


def _call_serve(base: str, acknowledged: list[str], writer) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        for i in range(400):
            if writer.process.poll() is not None:
                return
            body = {"model": "support", "messages": [{"role": "user", "content": f"refund please {i}"}]}
            response = http.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            acknowledged.append(response.headers["x-request-id"])
            assert http.get("/health").json()["status"] == "ok"


def _read_while_writing(config: Path, home: Path, writer) -> tuple[list[int], int]:
    """The CLI and the dashboard's data layer, over and over, while the writer writes."""
    stats_seen, pages = [], 0
    while len(stats_seen) < 4:
        assert writer.process.poll() is None, writer.stderr
        stats_seen.append(cli_stats(config, home)["workloads"]["support"]["interactions"])
        for _ in range(3):
            data.clear_cache()
            views = data.load_all({"overview": data.Query("v_overview"), "runs": data.Query("v_runs")})
            assert all(v.problem is None and not v.stale for v in views.values()), views
            pages += 1
    return stats_seen, pages
