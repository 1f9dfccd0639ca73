"""prefect.yaml for real: a Prefect server subprocess, `deploy --all`, a manual run, a process worker.

Follows the README's "Running on a schedule" commands against a throwaway server on loopback (its own
PREFECT_HOME under tmp_path), so what operations type is what this test proves works: every
deployment in prefect.yaml is created, and the nightly one runs a whole turn through a worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml

from flywheel.demo import write_demo_setup

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WORKLOAD = "support-routing"
DEPLOYMENT = "flywheel/nightly-support-routing"


def _prefect_cli() -> str:
    # The CLI of the interpreter running the tests (the project's venv), not whatever is on PATH.
    local = Path(sys.executable).parent / "prefect"
    found = str(local) if local.exists() else shutil.which("prefect")
    if found is None:
        pytest.fail("no prefect CLI next to the test interpreter or on PATH")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrefectServer:
    api_url: str
    env: dict[str, str]
    log: Path

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run `prefect ARGS` from the project root, as the README does; fail with its output."""
        process = subprocess.Popen(
            [_prefect_cli(), *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(process)  # a worker's flow-run child would outlive the worker otherwise
            output, _ = process.communicate()
            pytest.fail(f"prefect {' '.join(args)} still running after {timeout} s:\n{output[-4000:]}")
        assert process.returncode == 0, (
            f"prefect {' '.join(args)} exited {process.returncode}:\n{output[-4000:]}"
        )
        return output

    def api(self, method: str, path: str, json: object | None = None) -> object:
        response = httpx.request(method, f"{self.api_url}{path}", json=json, timeout=30)
        response.raise_for_status()
        return response.json()


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGTERM a CLI and everything under it, then SIGKILL what is left after 15 s.

    By parent, not by process group: the server's uvicorn children and a worker's flow-run process
    (which Prefect may start in a session of its own) are all descendants of the CLI we started.
    """
    import psutil  # comes with accelerate (pinned in constraints.txt); only a test helper needs it

    if process.poll() is not None:
        return
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    process.wait(timeout=10)


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[PrefectServer]:
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    # Nothing from the caller's Prefect profile or a harness may leak in: this server, and every CLI
    # call and flow run below, must use only the throwaway PREFECT_HOME.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # else `database is locked` telemetry errors
        # deploy --all creates cron schedules; with the scheduler on, the server would fill the
        # queue with future runs (CPU on a 2-core box) and a one-shot worker could pick one of them.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        # prefect.yaml's pull step is `{{ $PWD }}`, read from the environment at deploy time, not the
        # process's cwd: a shell that `cd`s sets it; a subprocess must be told.
        "PWD": str(REPO),
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # --no-ui: the UI is not under test, and skipping it saves copying its assets at start.
            [_prefect_cli(), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90  # ~3 s idle, 15+ s measured when other work shares the CPUs
        while True:
            if process.poll() is not None:
                pytest.fail(f"prefect server exited {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after 90 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield PrefectServer(api_url, env, log)
    finally:
        _kill_tree(process)


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    """One workload, a few hundred log lines, one tiny student: a whole turn in well under a minute."""
    home = tmp_path / "flywheel-home"
    home.mkdir()
    config_path, _ = write_demo_setup(home, seed=3, size=160)  # sets `home` and absolute sources
    config = yaml.safe_load(config_path.read_text())
    config["workloads"] = [w for w in config["workloads"] if w["id"] == WORKLOAD]
    config["workloads"][0]["students"] = [
        {"name": "scratch-tiny", "kind": "scratch", "size": "tiny", "epochs": 0.5}
    ]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


def test_prefect_yaml_deploys_and_a_run_completes_through_a_worker(
    prefect_server: PrefectServer, small_config: Path
) -> None:
    server = prefect_server
    server.cli("work-pool", "create", "local-pool", "--type", "process")
    server.cli("--no-prompt", "deploy", "--all", timeout=180)

    # Every deployment in prefect.yaml exists, in the pool, running from this checkout, and its
    # default parameters are ones its flow accepts (a typo would only surface at the first run).
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    created = server.api("POST", "/deployments/filter", json={})
    assert isinstance(created, list)
    by_name = {d["name"]: d for d in created}
    assert set(by_name) == {d["name"] for d in declared}
    for spec in declared:
        deployment = by_name[spec["name"]]
        assert deployment["work_pool_name"] == "local-pool"
        accepted = set(deployment["parameter_openapi_schema"]["properties"])
        assert set(spec["parameters"]) <= accepted, (spec["name"], set(spec["parameters"]) - accepted)
        steps = deployment["pull_steps"]
        assert steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(REPO)
        if "schedules" in spec:
            assert [s["schedule"]["cron"] for s in deployment["schedules"]] == [
                s["cron"] for s in spec["schedules"]
            ]
            # created paused: deploying queues nothing until a person resumes the schedules
            assert [s["active"] for s in deployment["schedules"]] == [False] * len(spec["schedules"])

    # A manual run, as from the UI: the deployment's defaults, pointed at the tiny config.
    started = server.cli(
        "deployment", "run", DEPLOYMENT, "--param", f"config={small_config}", "--param", "force=true"
    )
    match = re.search(r"UUID: ([0-9a-f-]{36})", started)
    assert match, started
    flow_run_id = match.group(1)

    worker = server.cli("worker", "start", "--pool", "local-pool", "--run-once", timeout=300)

    flow_run = server.api("GET", f"/flow_runs/{flow_run_id}")
    assert isinstance(flow_run, dict)
    assert flow_run["state_type"] == "COMPLETED", worker[-4000:]
    assert flow_run["deployment_id"] == by_name["nightly-support-routing"]["id"]
    assert flow_run["work_pool_name"] == "local-pool"
    by_run = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    artifacts = server.api("POST", "/artifacts/filter", json=by_run)
    assert isinstance(artifacts, list)
    assert f"flywheel-{WORKLOAD}" in {a["key"] for a in artifacts if a["key"]}

    # The run did the work, in the config's home, and recorded which Prefect run it was.
    warehouse = small_config.parent / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        runs = con.execute(
            "SELECT flow, status FROM flywheel_runs WHERE prefect_flow_run_id = ?", [flow_run_id]
        ).fetchall()
        interactions = con.execute(
            "SELECT count(*) FROM interactions WHERE workload_id = ?", [WORKLOAD]
        ).fetchone()
        models = con.execute("SELECT count(*) FROM models WHERE workload_id = ?", [WORKLOAD]).fetchone()
    finally:
        con.close()
    assert runs == [("flywheel", "completed")]
    assert interactions is not None and interactions[0] > 100
    assert models is not None and models[0] >= 1  # the student was trained and registered
