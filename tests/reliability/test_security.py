"""Security: serve keys, no key or prompt in logs, path traversal refused, a read-only dashboard.

The end-to-end scan of every file, table, Prefect record and process output for keys and PII after a
whole crashed-and-rerun turn is in test_flow_crash.py.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import logging
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli import app as cli_app
from tests.costs.conftest import fixture_copy, fixture_db
from tests.dashboard.conftest import PAGES, run_page
from tests.serve.conftest import make_harness

__all__ = ["fixture_copy", "fixture_db", "make_harness"]  # fixtures used below
SERVE_KEY = "fw-test-3c5e7a9b1d3f5a7c9e1b3d5f7a9c1e3b"
EMAIL = "dana.whitfield@example.org"
runner = CliRunner()


def test_serve_demands_the_key_and_never_logs_it_or_the_prompt(make_harness, caplog) -> None:
    harness = make_harness(environ={"FLYWHEEL_API_KEYS": f"{SERVE_KEY},second-key"})
    body = {"model": "chat", "messages": [{"role": "user", "content": f"mail me at {EMAIL}"}]}

    async def scenario() -> dict[str, int]:
        async with harness.running(), harness.http() as http:
            statuses = {}
            for name, header in {
                "none": None,
                "wrong": "Bearer nope",
                "prefix": f"Bearer {SERVE_KEY[:-1]}",
                "basic": f"Basic {SERVE_KEY}",
                "right": f"Bearer {SERVE_KEY}",
            }.items():
                headers = {"authorization": header} if header else {}
                statuses[name] = (
                    await http.post("/v1/chat/completions", json=body, headers=headers)
                ).status_code
            statuses["models"] = (await http.get("/v1/models")).status_code
            return statuses

    with caplog.at_level(logging.DEBUG):
        statuses = asyncio.run(scenario())
    assert statuses == {"none": 401, "wrong": 401, "prefix": 401, "basic": 401, "right": 200, "models": 401}
    assert SERVE_KEY not in caplog.text and EMAIL not in caplog.text and "call " in caplog.text
    spool = "".join(p.read_text() for p in harness.spool_dir.glob("spool-*.jsonl"))
    assert SERVE_KEY not in spool and re.search(r'"client_id":"key-[0-9a-f]{10}"', spool)


@pytest.mark.parametrize("model", ["../../etc/passwd", "/etc/passwd", "chat/../../x", "..", "chat\x00"])
def test_model_names_are_never_paths(make_harness, model: str) -> None:
    harness = make_harness()

    async def scenario() -> tuple[int, dict]:
        async with harness.running(), harness.http() as http:
            response = await http.post(
                "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
            )
            return response.status_code, response.json()

    status, body = asyncio.run(scenario())
    assert status == 404 and body["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "args",
    [
        ["promote", "../../etc/passwd", "--reason", "x"],
        ["promote", "support/../../../x", "--reason", "x"],
        ["rollback", "--workload", "../../etc"],
        ["train", "--workload", "../x"],
        ["train", "--workload", "support", "--candidate", "../../outside"],
    ],
)
def test_cli_names_that_look_like_paths_are_refused(tmp_path: Path, args: list[str]) -> None:
    config = tmp_path / "flywheel.yaml"
    config.write_text("workloads: [{id: support, task: classification, labels: [a, b]}]\n")
    home = tmp_path / "home"
    result = runner.invoke(cli_app, ["--home", str(home), "--config", str(config), *args, "--json"])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and '"error"' in result.stdout
    outside = [p for p in tmp_path.parent.iterdir() if p.name in ("x", "outside", "etc")]
    assert outside == []  # nothing was created outside the test's folder


def test_dashboard_never_writes_the_warehouse(fixture_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("FLYWHEEL_WAREHOUSE", str(fixture_copy))
    before, files = _digest(fixture_copy), sorted(p.name for p in fixture_copy.parent.iterdir())
    for page in PAGES:
        query = {"workload": "support' OR 1=1; DROP TABLE models; --"} if page == "workload" else {}
        run_page(page, **query)
    assert _digest(fixture_copy) == before  # not one byte changed
    assert sorted(p.name for p in fixture_copy.parent.iterdir()) == files  # no WAL, no temp file


WRITE_SQL = re.compile(
    r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+|DROP\s+|ALTER\s+|COPY\s+|ATTACH\s+|CHECKPOINT)"
)  # case-sensitive: SQL here is upper case, and UI text may say "create" or "update"


def test_dashboard_code_has_no_write_path() -> None:
    """Nothing under dashboards/ opens a writable connection or carries writing SQL."""
    root = Path(__file__).parents[2] / "dashboards"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("write", "connect", "execute_write"):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and WRITE_SQL.search(node.value)
            ):
                found.append(f"{path.name}:{node.lineno} {node.value[:40]!r}")
    assert found == []


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
