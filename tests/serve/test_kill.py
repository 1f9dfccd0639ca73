"""kill -9 of `flywheel serve` loses no capture record that a client got an answer for."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from flywheel.ingest import ingest_paths
from flywheel.serve.spool import PENDING_LOG
from flywheel.store.db import Warehouse
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from tests.serve.conftest import LABELS, teacher_oracle, write_manifest

REPO = Path(__file__).resolve().parents[2]
FLYWHEEL = Path(sys.executable).with_name("flywheel")


def start_server(config: Path, home: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLYWHEEL_API_KEYS": ""}
    command = [str(FLYWHEEL), "--config", str(config), "--home", str(home), "serve", "--port", "0", "--json"]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    line = process.stdout.readline()
    assert line, process.stderr.read().decode()
    started = json.loads(line)
    base = started["url"].removesuffix("/v1")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{base}/health", timeout=1).json()
            if health["champions"]["support"]["serving"]:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError("server did not become healthy: " + process.stderr.read().decode())


def spooled_ids(spool: Path) -> set[str]:
    ids = set()
    for path in spool.glob("spool-*.jsonl"):
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line torn by the kill was never acknowledged
                ids.add(json.loads(line)["id"])
    return ids


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_call(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_manifest(home, {"support": "support-v1"})
    teacher_app = make_fake_openai_app(teacher_oracle, latency_s=0.8)
    with serve_in_thread(teacher_app) as teacher_url:
        config = tmp_path / "flywheel.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "teacher": {"base_url": teacher_url, "model": "gpt-4o-mini", "max_retries": 0},
                    "workloads": [
                        {"id": "support", "task": "classification", "labels": LABELS},
                        {"id": "chat", "task": "chat"},
                    ],
                    "serve": {
                        "student_loader": "tests.serve.students:keyword_loader",
                        "shadow_rate": 1.0,
                        "shadow_concurrency": 256,
                    },
                }
            )
        )
        process, base = start_server(config, home)
        acknowledged: list[str] = []

        def client_loop(worker: int) -> None:
            with httpx.Client(base_url=base, timeout=5) as http:
                for i in range(1000):
                    model = "chat" if i % 8 == 0 else "support"
                    body = {"model": model, "messages": [{"role": "user", "content": f"charge {worker}-{i}"}]}
                    try:
                        response = http.post("/v1/chat/completions", json=body)
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 200:
                        acknowledged.append(response.headers["x-request-id"])

        with ThreadPoolExecutor(8) as pool:
            for worker in range(8):
                pool.submit(client_loop, worker)
            deadline = time.monotonic() + 20
            while len(acknowledged) < 40 and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)  # mid-traffic: requests and shadows are in flight
        process.wait(5)

        spool = home / "spool"
        assert len(acknowledged) >= 40
        pending = (spool / PENDING_LOG).read_bytes()
        assert pending, f"no shadow in flight at the kill ({len(acknowledged)} acknowledged)"
        in_log = {json.loads(line)["pending"]["id"] for line in pending.splitlines() if b'"pending"' in line}
        assert set(acknowledged) <= spooled_ids(spool) | in_log

        process, base = start_server(config, home)  # restart: recovers the log into the spool
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
        assert b"Traceback" not in process.stderr.read()
    assert set(acknowledged) <= spooled_ids(spool)
    print(f"acknowledged {len(acknowledged)}, recovered from the log {len(in_log)}")
    report = ingest_paths(Warehouse(tmp_path / "wh.duckdb"), [spool], workload_id=None, fmt="spool")
    assert report.total("ingested") >= len(set(acknowledged)) and report.total("quarantined") <= 1
