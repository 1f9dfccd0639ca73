"""Served traffic counts where it happens: every call `flywheel serve` answered is in `costs` at once,
without an ingest, identical repeats included, priced on the request as the application sent it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from flywheel.cli import app as cli
from flywheel.config import load_config
from flywheel.costs.teacher_cost import count_call
from flywheel.pricing import PriceCatalog
from flywheel.serve.app import make_app
from flywheel.serve.champions import ChampionWatcher
from flywheel.serve.settings import build_settings
from flywheel.serve.spool import SpoolWriter
from tests.serve.conftest import ScriptedStudent, write_manifest

SYSTEM = "You route support tickets for ShopWave. " * 40  # a long static prompt the student never reads
TEACHER_MODEL = "gpt-4o-mini"


def ticket(i: int) -> dict:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"ticket {i}: charged twice"},
    ]
    return {"model": "support", "messages": messages}


def test_fifty_served_calls_with_ten_repeats_are_fifty_in_costs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config_path = tmp_path / "flywheel.yaml"
    workload = {"id": "support", "task": "classification", "labels": ["billing", "refund"]}
    config_path.write_text(yaml.safe_dump({"teacher": {"model": TEACHER_MODEL}, "workloads": [workload]}))
    config = load_config(config_path)
    write_manifest(home, {"support": "support-v1"})
    student = ScriptedStudent(lambda text: ("billing", 0.95))
    watcher = ChampionWatcher(home / "champions.json", loader=lambda path: student)
    settings = build_settings(config, environ={})
    app = make_app(settings, champions=watcher, teacher_client=None, spool=SpoolWriter(home / "spool"))
    payloads = [ticket(i) for i in range(40)] + [ticket(0)] * 10  # ten identical repeats

    async def serve_all() -> list[int]:
        async with app.router.lifespan_context(app):
            await watcher.wait_loaded()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
                return [(await http.post("/v1/chat/completions", json=p)).status_code for p in payloads]

    assert asyncio.run(serve_all()) == [200] * 50
    args = ["--home", str(home), "--config", str(config_path), "costs", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    support = json.loads(result.stdout)["workloads"]["support"]
    assert support["requests"] == 50 and support["student_requests"] == 50

    price = PriceCatalog.load().resolve(TEACHER_MODEL).price
    answer = {"role": "assistant", "content": "billing"}
    expected = 0.0
    for payload in payloads:  # the full request as sent, counted with the teacher's tokenizer
        prompt, completion, _ = count_call(TEACHER_MODEL, payload, answer)
        expected += (prompt * price.input_per_1m + completion * price.output_per_1m) / 1e6
    assert support["teacher_usd"] == pytest.approx(expected, rel=0.01)
    again = json.loads(CliRunner().invoke(cli, args).stdout)["workloads"]["support"]
    assert again["requests"] == 50  # a second look adds nothing
