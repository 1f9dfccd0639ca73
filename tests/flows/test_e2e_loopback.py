"""The closed wheel end to end on loopback (issue 20 item 6): a promoted champion served by the real
`flywheel serve` app under uvicorn, a fake OpenAI-compatible teacher under uvicorn, shadow rate 1.0;
a usual day, then a shifted batch the student gets wrong, with thumbs-down feedback; the CLI ingests
the spool, `monitor` shows the drop, retrain-check fires and, configured to, rolls back to the
teacher; served again, the workload's calls go to the teacher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai import OpenAI
from typer.testing import CliRunner

from flywheel.cli import app as cli_app
from flywheel.config import load_config
from flywheel.registry import Registry
from flywheel.serve.server import build_server
from flywheel.store.db import Warehouse
from flywheel.testing.fake_openai import make_fake_openai_app
from flywheel.testing.oracles import last_user_text
from tests.serve.conftest import serve_with_lifespan

pytestmark = pytest.mark.slow
LABELS = ["billing", "refund", "shipping"]
CURATION = {"expectations": False, "export": [], "max_client_share": None, "max_slice_share": None}


def teacher_oracle(request: dict[str, Any]) -> str:
    """The teacher: money back -> refund, a charge -> billing, else shipping."""
    text = last_user_text(request)
    if "money back" in text:
        return "refund"
    return "billing" if "charge" in text else "shipping"


def write_config(tmp_path: Path, teacher_url: str) -> Path:
    workload = {
        "id": "support", "task": "classification", "labels": LABELS, "curation": CURATION,
        "schedule": {"auto_rollback": True, "rollback_days": 1, "min_feedback": 2},
    }  # fmt: skip
    config = {
        "home": str(tmp_path / "home"),
        "teacher": {"base_url": teacher_url, "model": "fake-teacher", "api_key_env": "E2E_TEACHER_KEY"},
        "workloads": [workload],
        # tests.serve.students.KeywordStudent: 'billing' on a charge, else 'shipping', always sure
        "serve": {
            "shadow_rate": 1.0, "student_loader": "tests.serve.students:keyword_loader",
            "api_keys_env": "E2E_SERVE_KEYS",
        },
    }  # fmt: skip
    path = tmp_path / "flywheel.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def promote_champion(home: Path) -> Registry:
    warehouse = Warehouse(home / "warehouse.duckdb")
    (home / "models" / "support-v1").mkdir(parents=True)
    warehouse.write(
        lambda con: con.execute(
            "INSERT INTO models (model_id, workload_id, name, kind, path, created_at) "
            "VALUES ('support-v1', 'support', 'keyword', 'scratch', 'models/support-v1', now())"
        )
    )
    registry = Registry(warehouse, home)
    registry.promote("support-v1", "passed the gate (test champion)")
    return registry


def serve_batch(config: Path, home: Path, texts: list[str], thumbs_down: int = 0) -> list[httpx.Headers]:
    """The texts through a real `flywheel serve` on loopback; the first `thumbs_down` calls are rated
    down with the right answer. The server's shutdown drains its shadows into the spool."""
    server = build_server(load_config(config), home)
    headers = []
    with serve_with_lifespan(server.app) as url:
        client = OpenAI(base_url=url, api_key="serve-key", max_retries=0)
        for text in texts:
            raw = client.chat.completions.with_raw_response.create(
                model="support", messages=[{"role": "user", "content": text}]
            )
            headers.append(raw.headers)
        for response in headers[:thumbs_down]:
            body = {"request_id": response["x-request-id"], "score": "down", "correction": "refund"}
            posted = httpx.post(
                url + "/feedback", json=body, headers={"authorization": "Bearer serve-key"}, timeout=10
            )
            assert posted.status_code == 200, posted.text
    return headers


def cli(config: Path, home: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli_app, ["--home", str(home), "--config", str(config), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_serve_shift_feedback_monitor_retrain_check_rollback(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.retrain_check import retrain_check

    monkeypatch.setenv("E2E_TEACHER_KEY", "teacher-key")
    monkeypatch.setenv("E2E_SERVE_KEYS", "serve-key")
    teacher_app = make_fake_openai_app(teacher_oracle)
    with serve_with_lifespan(teacher_app) as teacher_url:
        config = write_config(tmp_path, teacher_url)
        home = tmp_path / "home"
        registry = promote_champion(home)

        usual = [f"ticket {i}: I see a charge of {i} EUR" for i in range(15)]
        usual += [f"ticket {i}: where is my parcel {i}?" for i in range(15, 30)]
        served = serve_batch(config, home, usual)
        assert {h["x-flywheel-served-by"] for h in served} == {"student"}
        ingested = cli(config, home, "ingest", str(home / "spool"))
        assert ingested["served"]["support"]["shadow"]["pairs"] == 30
        before = cli(config, home, "monitor", "-w", "support")["shadow_agreement"]
        assert (before["value"], before["n"]) == (1.0, 30)

        # the traffic shifts: customers want their money back, the student still says 'shipping'
        shifted = [f"ticket {i}: I want my money back for order {i}" for i in range(30, 60)]
        serve_batch(config, home, shifted, thumbs_down=5)
        ingested = cli(config, home, "ingest", str(home / "spool"))
        feedback = ingested["served"]["support"]["feedback"]
        assert feedback["matched"] == 5 and feedback["corrections"] == 5
        after = cli(config, home, "monitor", "-w", "support")
        agreement = after["shadow_agreement"]
        assert (agreement["value"], agreement["n"]) == (0.5, 60) and agreement["ci_high"] < 0.9
        assert after["feedback"]["negative"] == 5 and after["served"] == 60

        decision = retrain_check("support", str(config), str(home), retrain=False)
        assert decision["trigger"] and "shadow_agreement<0.9" in decision["reasons"]
        assert decision["rollback_action"]["action"] == "rollback"
        assert registry.champion("support") is None

        # the rolled-back workload is served by the teacher, who answers the shifted traffic right
        (headers,) = serve_batch(config, home, ["ticket 99: I want my money back for order 99"])
        assert (headers["x-flywheel-served-by"], headers["x-flywheel-route"]) == ("teacher", "proxy")
