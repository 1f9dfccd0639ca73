"""Faults outside Flywheel: the teacher down, slow, answering garbage or rate limiting without end;
the capture spool's disk full; a champion's artifact deleted. Each ends in a clear outcome, nothing
paid twice, nothing captured lost, and recovery once the fault is gone."""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connectors import REGISTRY, ReadContext
from flywheel.config import TeacherConfig
from flywheel.records import Rejected
from flywheel.store.db import Warehouse
from flywheel.teacher import TeacherClient, label_examples, make_client
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
from flywheel.testing.oracles import keyword_oracle
from tests.reliability.helpers import start_serve, stop
from tests.serve.conftest import LABELS, teacher_oracle, write_manifest
from tests.teacher.conftest import PRICES, support_examples, support_workload

N = 40
CONCURRENCY = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def client_for(base_url: str, **config: Any) -> Iterator[TeacherClient]:
    settings = {"model": "fake-teacher", "concurrency": CONCURRENCY, "max_retries": 2, "timeout_s": 2.0}
    teacher = TeacherConfig(base_url=base_url, **(settings | config))
    with make_client(teacher, {"OPENAI_API_KEY": "k"}, backoff_base_s=0.01) as client:
        yield client


def label(client: TeacherClient, warehouse: Warehouse) -> Any:
    return label_examples(
        support_examples(N), support_workload(), "relabel", client=client, warehouse=warehouse, prices=PRICES
    )


def paid_rows(warehouse: Warehouse) -> tuple[int, int]:
    return warehouse.read(
        lambda con: (
            con.execute("SELECT count(*) FROM teacher_cache").fetchone()[0],
            con.execute("SELECT count(*) FROM cost_ledger").fetchone()[0],
        )
    )


def assert_stopped_early(report: Any, reason: str) -> None:
    """The breaker stopped the run: a wave or two failed, the rest were skipped (not quarantined,
    so the next run labels them)."""
    assert report.stopped_reason == "teacher_unavailable", report.as_dict()
    assert set(report.failures) <= {reason}
    assert report.failed <= 2 * max(5, 2 * CONCURRENCY) and report.skipped >= N // 2
    assert report.labeled + report.failed + report.skipped == N


@pytest.mark.parametrize(
    ("fault", "app_options", "client_options", "reason"),
    [
        ("slow", {"latency_s": 1.0}, {"timeout_s": 0.2}, "timeout"),
        ("garbage", {"failure_rate": 1.0, "failures": ["malformed"]}, {}, "malformed_response"),
        ("429 storm", {"failure_rate": 1.0, "failures": ["429"], "retry_after_s": 0.2}, {}, "rate_limited"),
        ("5xx", {"failure_rate": 1.0, "failures": ["500"]}, {}, "server_error"),
    ],
)
def test_teacher_fault_stops_the_run_clearly_and_a_rerun_recovers(
    tmp_path: Path, fault: str, app_options: dict, client_options: dict, reason: str, figures: dict
) -> None:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    broken = make_fake_openai_app(keyword_oracle, **app_options)
    started = time.monotonic()
    with serve_in_thread(broken) as url, client_for(url, **client_options) as client:
        report = label(client, warehouse)
    elapsed = time.monotonic() - started
    assert_stopped_early(report, reason)
    assert elapsed < 30, f"{fault}: a broken teacher held the run for {elapsed:.0f}s"
    assert paid_rows(warehouse) == (0, 0)  # nothing booked for calls that produced no answer
    attempts = broken.state.stats["requests"]
    if reason == "rate_limited":  # one shared pause per 429: at most a wave of calls per Retry-After
        assert attempts <= CONCURRENCY * (elapsed / 0.2 + 2), (attempts, elapsed)
    else:  # 16 failed attempts in a row trip it, plus what was in flight; never N x retries
        assert attempts <= 16 + CONCURRENCY, attempts
    healthy = make_fake_openai_app(keyword_oracle)
    with serve_in_thread(healthy) as url, client_for(url) as client:
        rerun = label(client, warehouse)
    assert (rerun.labeled, rerun.failed, rerun.calls, rerun.stopped_reason) == (N, 0, N, "completed")
    assert paid_rows(warehouse) == (N, N)
    figures.update(cases=N, fault=fault, records_lost=0, attempts=attempts, seconds=round(elapsed, 1))


def test_teacher_down_then_back_on_the_same_address(tmp_path: Path, figures: dict) -> None:
    warehouse, port = Warehouse(tmp_path / "warehouse.duckdb"), free_port()
    url = f"http://127.0.0.1:{port}/v1"
    with client_for(url) as client:
        down = label(client, warehouse)
    assert_stopped_early(down, "connection")
    app = make_fake_openai_app(keyword_oracle)
    with serve_in_thread(app, port=port), client_for(url) as client:
        back = label(client, warehouse)
    assert (back.labeled, back.calls, back.stopped_reason) == (N, N, "completed")
    assert app.state.stats["completions"] == N  # each answer paid once
    figures.update(cases=N, fault="down", records_lost=0)


def limit_file_size(limit: int) -> Any:
    def apply() -> None:  # runs in the child before exec: a "disk" that takes `limit` bytes per file
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then write() fails with EFBIG, like ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def serve_config(tmp_path: Path, teacher_url: str, **serve: Any) -> Path:
    config = tmp_path / "flywheel.yaml"
    teacher = {"base_url": teacher_url, "model": "gpt-4o-mini", "max_retries": 0}
    workloads = [{"id": "support", "task": "classification", "labels": LABELS}]
    serve = {"student_loader": "tests.serve.students:keyword_loader", **serve}
    config.write_text(yaml.safe_dump({"teacher": teacher, "workloads": workloads, "serve": serve}))
    return config


def ask(http: httpx.Client, i: int) -> httpx.Response:
    body = {"model": "support", "messages": [{"role": "user", "content": f"ticket {i}: a charge"}]}
    return http.post("/v1/chat/completions", json=body)


def test_full_spool_disk_refuses_calls_then_recovers_without_a_torn_line(
    tmp_path: Path, figures: dict
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with serve_in_thread(make_fake_openai_app(teacher_oracle)) as teacher_url:
        config = serve_config(tmp_path, teacher_url)
        server, base = start_serve(config, home, preexec_fn=limit_file_size(6_000), FLYWHEEL_API_KEYS="")
        acknowledged, refused = [], 0
        with httpx.Client(base_url=base, timeout=10) as http:
            for i in range(60):
                if refused >= 3:  # the disk is "freed": lift the limit on the running server
                    resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (-1, -1))
                response = ask(http, i)
                if response.status_code == 200:
                    acknowledged.append(response.headers["x-request-id"])
                else:
                    assert (
                        response.status_code == 503 and response.json()["error"]["code"] == "capture_failed"
                    )
                    refused += 1
        assert stop(server) in (0, -signal.SIGTERM) and "Traceback" not in server.stderr
    items = [
        item
        for path in sorted((home / "spool").glob("spool-*.jsonl"))
        for item in REGISTRY["spool"].read(path, ReadContext())
    ]
    torn = [item for item in items if isinstance(item, Rejected)]
    assert refused >= 3 and len(acknowledged) > 30
    assert torn == [], torn[0].reason if torn else None  # no half line glued to a later record
    spooled = {item.metadata["spool_id"] for item in items}
    assert set(acknowledged) <= spooled  # every answered call was captured
    figures.update(cases=60, refused=refused, records_lost=len(set(acknowledged) - spooled))


def test_deleted_champion_falls_back_to_the_teacher_and_says_why(tmp_path: Path, figures: dict) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_manifest(home, {"support": "support-v1"})
    with serve_in_thread(make_fake_openai_app(teacher_oracle)) as teacher_url:
        config = serve_config(tmp_path, teacher_url)
        server, base = start_serve(config, home, FLYWHEEL_API_KEYS="")
        with httpx.Client(base_url=base, timeout=10) as http:
            _wait_serving(http)
            assert ask(http, 0).headers["x-flywheel-served-by"] == "student"
        stop(server)
        (home / "models" / "support-v1").rmdir()  # the artifact is gone; the manifest still names it
        server, base = start_serve(config, home, name="serve-2", FLYWHEEL_API_KEYS="")
        with httpx.Client(base_url=base, timeout=10) as http:
            answer = ask(http, 1)
            health = http.get("/health").json()
        assert stop(server) in (0, -signal.SIGTERM)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "refund"
    assert answer.headers["x-flywheel-served-by"] == "teacher"
    assert answer.headers["x-flywheel-fallback-reason"] == "champion_missing"
    assert health["champions"]["support"]["problem"] == "champion_missing"
    assert "support-v1" in server.stderr and "missing" in server.stderr  # the log says which and why
    figures.update(cases=2, records_lost=0)


def _wait_serving(http: httpx.Client) -> None:
    deadline = time.monotonic() + 20
    while not http.get("/health").json()["champions"]["support"]["serving"]:
        assert time.monotonic() < deadline, "the champion never loaded"
        time.sleep(0.05)
