"""The closed wheel end to end on loopback with a trained student (issue 20 item 6): `flywheel run`
trains and promotes a MiniLM classifier on logged traffic; the real `flywheel serve` app under uvicorn
answers with it, a fake OpenAI-compatible teacher under uvicorn shadows every answer (rate 1.0); a
usual batch, then a shifted batch the student gets wrong, with thumbs-down feedback; `flywheel run`
ingests the spool each time, `monitor` shows the drop, retrain-check fires and, configured to, rolls
back to the teacher; served again, the workload's calls go to the teacher."""

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
from tests.conftest import write_jsonl
from tests.flows.tickets import Tickets
from tests.serve.conftest import serve_with_lifespan

pytestmark = pytest.mark.slow
LABELS = ["billing", "refund", "shipping"]
# This test follows detection and rollback: the shadow calls' teacher answers, labels by default
# (tests/serve/test_active_learning.py), would retrain the champion mid-test.
CURATION = {
    "expectations": False, "export": [], "max_client_share": None, "max_slice_share": None,
    "shadow_labels": False,
}  # fmt: skip
WORDS = [
    f"{a}{b}" for a in ("mar", "ven", "tol", "quis", "bran", "dor", "pel") for b in ("ak", "el", "im", "os")
]
KINDS = {
    "billing": "I see a charge on my card that I do not recognise",
    "shipping": "where is my parcel, the delivery is late",
    "refund": "I want my money back for this order",
}

TICKETS = Tickets(KINDS, WORDS, 6)


def write_config(tmp_path: Path, teacher_url: str) -> Path:
    (tmp_path / "logs").mkdir()
    logs = write_jsonl(
        tmp_path / "logs" / "calls.jsonl",
        [TICKETS.logged_call(kind, i) for i in range(60) for kind in ("billing", "shipping")],
    )
    student = {
        "name": "minilm", "kind": "encoder-classifier", "epochs": 3, "learning_rate": 1e-4,
        "max_seq_length": 48, "options": {"learning_curve": False},
    }  # fmt: skip
    workload = {
        "id": "support", "task": "classification", "labels": LABELS, "curation": CURATION,
        "sources": [{"path": str(logs), "format": "openai"}], "students": [student],
        "schedule": {"auto_rollback": True, "rollback_days": 1, "min_feedback": 2},
    }  # fmt: skip
    config = {
        "home": str(tmp_path / "home"),
        "teacher": {"base_url": teacher_url, "model": "gpt-4o-mini", "api_key_env": "E2E_TEACHER_KEY"},
        "workloads": [workload],
        "serve": {"shadow_rate": 1.0, "api_keys_env": "E2E_SERVE_KEYS"},
    }
    path = tmp_path / "flywheel.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def serve_batch(config: Path, home: Path, texts: list[str], thumbs_down: int = 0) -> list[httpx.Headers]:
    """The texts through a real `flywheel serve` on loopback; the first `thumbs_down` calls are rated
    down. The server's shutdown drains its shadows into the spool."""
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
            body = {"request_id": response["x-request-id"], "score": "down"}
            posted = httpx.post(
                url + "/feedback", json=body, headers={"authorization": "Bearer serve-key"}, timeout=10
            )
            assert posted.status_code == 200, posted.text
    return headers


def cli(config: Path, home: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli_app, ["--home", str(home), "--config", str(config), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_trained_student_served_shifted_monitored_and_rolled_back(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.retrain_check import retrain_check

    monkeypatch.setenv("E2E_TEACHER_KEY", "teacher-key")
    monkeypatch.setenv("E2E_SERVE_KEYS", "serve-key")
    with serve_with_lifespan(make_fake_openai_app(TICKETS.oracle)) as teacher_url:
        config = write_config(tmp_path, teacher_url)
        home = tmp_path / "home"
        # a turn on the logged traffic trains the MiniLM student and the gate promotes it
        first = cli(config, home, "run", "-w", "support")["workloads"]["support"]
        assert first["decision"] == "promote" and first["curated_out"] == 120
        registry = Registry(Warehouse(home / "warehouse.duckdb"), home)
        champion = registry.champion("support").model_id

        usual = [TICKETS.text(kind, i) for i in range(100, 115) for kind in ("billing", "shipping")]
        served = serve_batch(config, home, usual)
        assert {(h["x-flywheel-served-by"], h["x-flywheel-route"]) for h in served} == {
            ("student", "student")
        }
        # `flywheel run` ingests the spool; the student's answers are no labels, so nothing to retrain
        turn = cli(config, home, "run", "-w", "support")["turns"]["support"]
        assert turn["records_in"] == 150 and turn["decision"] == "skipped"
        before = cli(config, home, "monitor", "-w", "support")
        assert before["champion"] == champion and before["served"] == 30
        assert (before["shadow_agreement"]["value"], before["shadow_agreement"]["n"]) == (1.0, 30)

        # the traffic shifts to refunds, a label the student never saw; people rate five answers down
        shifted = [TICKETS.text("refund", i) for i in range(200, 230)]
        serve_batch(config, home, shifted, thumbs_down=5)
        cli(config, home, "run", "-w", "support")
        after = cli(config, home, "monitor", "-w", "support")
        agreement = after["shadow_agreement"]
        assert (agreement["value"], agreement["n"]) == (0.5, 60) and agreement["ci_high"] < 0.9
        assert after["feedback"]["negative"] == 5 and after["feedback"]["complaint_rate"] == 1.0

        decision = retrain_check("support", str(config), str(home), retrain=False)
        assert decision["trigger"] and {"shadow_agreement<0.9", "complaints>0.2"} <= set(decision["reasons"])
        assert decision["rollback_action"]["action"] == "rollback"
        assert decision["rollback_action"]["previous_model_id"] == champion
        assert registry.champion("support") is None

        (headers,) = serve_batch(config, home, [TICKETS.text("refund", 999)])
        assert (headers["x-flywheel-served-by"], headers["x-flywheel-route"]) == ("teacher", "proxy")
