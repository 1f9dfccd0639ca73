"""The closed wheel, in process: serve with shadowing, post feedback, ingest, then monitor, gold labels
and the retrain triggers (live-agreement drop, rollback to the teacher when configured)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flywheel import loop as stages
from flywheel.cli import app as cli_app
from flywheel.config import FlywheelConfig
from flywheel.config.serve import ServeConfig
from flywheel.datasets import load_examples
from flywheel.registry import Registry
from flywheel.triggers import apply_rollback, retrain_decision
from tests.serve.conftest import LABELS, WORKLOADS, ScriptedStudent

CURATION = {"expectations": False, "export": [], "max_client_share": None, "max_slice_share": None}
WORDS = [
    f"{a}{b}" for a in ("mar", "ven", "tol", "quis", "bran", "dor", "pel") for b in ("ak", "el", "im", "os")
]


def ticket(i: int, kind: str) -> list[dict[str, str]]:
    words = " ".join(random.Random(f"{kind}{i}").sample(WORDS, 8))
    return [{"role": "user", "content": f"ticket {kind} {i}: {words}"}]


def drifting_student() -> ScriptedStudent:
    """Right ('refund', like the teacher) on usual traffic, wrong ('billing') on the shifted kind."""
    return ScriptedStudent(lambda text: ("billing" if "shifted" in text else "refund", 0.95))


def write_config(home: Path, auto_rollback: bool) -> Path:
    workloads = [dict(w) for w in WORKLOADS]
    workloads[0] |= {
        "curation": CURATION,
        "schedule": {"auto_rollback": auto_rollback, "rollback_days": 1, "min_feedback": 2},
    }
    path = home / "flywheel.yaml"
    path.write_text(yaml.safe_dump({"workloads": workloads, "serve": {"shadow_rate": 1.0}}))
    return path


def register_champion(home: Path) -> Registry:
    config = FlywheelConfig(workloads=WORKLOADS, serve=ServeConfig())
    warehouse = stages.Warehouse(config.warehouse_path(home))
    warehouse.write(
        lambda con: con.execute(
            "INSERT INTO models (model_id, workload_id, name, kind, path, created_at) "
            "VALUES ('support-v1', 'support', 'scripted', 'scratch', 'models/support-v1', now())"
        )
    )
    registry = Registry(warehouse, home)
    registry.promote("support-v1", "test champion")
    return registry


async def send(harness: Any, http: Any, kinds: list[tuple[str, int]], feedback: list[dict]) -> list[str]:
    """Send the calls, then the feedback (a body's int request_id is a call's index); wait for the
    shadows to land in the spool. Returns the calls' request ids."""
    ids: list[str] = []
    for kind, n in kinds:
        for i in range(n):
            answer = await http.post(
                "/v1/chat/completions", json={"model": "support", "messages": ticket(i, kind)}
            )
            assert answer.status_code == 200, answer.text
            ids.append(answer.headers["x-request-id"])
    for body in feedback:
        body = dict(body)
        if isinstance(body.get("request_id"), int):
            body["request_id"] = ids[body["request_id"]]
        response = await http.post("/v1/feedback", json=body, headers={"authorization": "Bearer k"})
        assert response.status_code == 200, response.text
    serving = harness.app.state.serving
    while serving.shadows:
        await asyncio.gather(*list(serving.shadows))
    await serving.spool.drain()
    return ids


async def serve(harness: Any, kinds: list[tuple[str, int]], feedback: list[dict] | None = None) -> list[str]:
    async with harness.running(), harness.http() as http:
        return await send(harness, http, kinds, feedback or [])


def monitor(home: Path, config: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli_app, ["--home", str(home), "--config", str(config), "monitor", "-w", "support", "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_shadow_pairs_and_feedback_reach_monitor_and_gold(make_harness) -> None:
    harness = make_harness({"support": drifting_student()}, serve={"shadow_rate": 1.0})
    config = write_config(harness.home, auto_rollback=False)
    feedback = [
        {"request_id": 3, "score": "down", "correction": "Billing", "comment": "it was a double charge"},
        {"request_id": 4, "score": 1},
        {"request_id": "no-such-call", "score": "thumbs_down"},
    ]
    ids = asyncio.run(serve(harness, [("usual", 25)], feedback))
    loop = stages.Loop.open(config, harness.home)
    report = stages.ingest_stage(loop, "support")
    assert report["feedback"] | {"invalid_rows": [], "gold_imports": []} == {
        "read": 3, "new": 3, "invalid": 0, "invalid_rows": [], "matched": 2, "unmatched": 1,
        "corrections": 1, "gold_imports": [],
    }  # fmt: skip
    assert report["shadow"]["pairs"] == 25 and report["shadow"]["rows"] > 0

    summary = monitor(harness.home, config)
    assert summary["served"] == 25 and summary["student_share"] == 1.0 and summary["fallbacks"] == {}
    assert summary["shadow_pairs"] == 25
    assert summary["shadow_agreement"] | {"target": None} == {
        "metric": "accuracy", "value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 25, "target": None,
    }  # fmt: skip
    assert summary["feedback"] | {"complaint_rate": None} == {
        "positive": 1, "negative": 1, "corrections": 1, "total": 2, "complaint_rate": None,
    }  # fmt: skip
    assert {"since", "champion"} <= set(summary)
    human = CliRunner().invoke(
        cli_app, ["--home", str(harness.home), "--config", str(config), "monitor", "-w", "support"]
    )
    assert human.exit_code == 0 and "shadow pairs" in human.stdout and "1.000 [1.000, 1.000]" in human.stdout

    # Ingest again: nothing new, nothing counted twice.
    again = stages.ingest_stage(loop, "support")["feedback"]
    assert (again["new"], again["matched"], again["unmatched"], again["corrections"]) == (0, 0, 1, 0)

    # The correction is the next snapshot's gold for that call; the thumbs-down did not drop it.
    stages.curate_stage(loop, "support")
    examples = load_examples(loop.warehouse, "support", splits=("train", "val", "eval"))
    corrected = loop.warehouse.read(
        lambda con: con.execute(
            "SELECT id FROM interactions WHERE metadata->>'spool_id' = ?", [ids[3]]
        ).fetchone()[0]
    )
    gold = {e.interaction_id: e.gold for e in examples}
    assert gold[corrected] == "billing" and "billing" in LABELS
    stored = loop.warehouse.read(
        lambda con: con.execute("SELECT feedback FROM interactions WHERE id = ?", [corrected]).fetchone()[0]
    )
    assert json.loads(stored)["score"] == -1.0


@pytest.mark.parametrize("auto_rollback", [False, True])
def test_a_planted_quality_drop_triggers_and_rolls_back_when_configured(make_harness, auto_rollback) -> None:
    harness = make_harness({"support": drifting_student()}, serve={"shadow_rate": 1.0})
    config = write_config(harness.home, auto_rollback=auto_rollback)
    registry = register_champion(harness.home)
    loop = stages.Loop.open(config, harness.home)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with harness.running(), harness.http() as http:
            await send(harness, http, [("usual", 25)], [])
            stages.ingest_stage(loop, "support")
            calm = retrain_decision(loop.warehouse, loop.workload("support"), None)
            # The traffic shifts: the student answers wrong on the new kind of ticket.
            down = [{"request_id": i, "score": "down"} for i in range(10)]
            await send(harness, http, [("shifted", 40)], down)
            stages.ingest_stage(loop, "support")
            return calm, retrain_decision(loop.warehouse, loop.workload("support"), None)

    calm, decision = asyncio.run(scenario())
    assert not any(r.startswith("shadow_agreement") for r in calm["reasons"]) and not calm["rollback"]["due"]
    agreement = decision["shadow_agreement"]
    assert agreement["n"] == 65 and agreement["ci_high"] < 0.9 < 1.0
    assert decision["trigger"] and "shadow_agreement<0.9" in decision["reasons"]
    assert "complaints>0.2" in decision["reasons"]
    assert decision["rollback"]["due"] and "below the floor 0.90" in decision["rollback"]["reason"]

    action = apply_rollback(registry, loop.workload("support"), decision)
    if not auto_rollback:
        assert action["action"] == "none" and registry.champion("support") is not None
        return
    assert action["action"] == "rollback" and action["previous_model_id"] == "support-v1"
    assert registry.champion("support") is None
    assert json.loads((harness.home / "champions.json").read_text()) == {}
    reason = loop.warehouse.read(
        lambda con: con.execute(
            "SELECT reason FROM v_promotions WHERE workload_id = 'support' AND action = 'rollback'"
        ).fetchone()[0]
    )
    assert reason.startswith("auto_rollback: live agreement of support-v1 below the floor")


def test_chat_shadow_pairs_are_scored_offline_by_semantic_agreement(make_harness) -> None:
    echo = ScriptedStudent(lambda text: (f"teacher says: {text}" if "1" in text else "no idea", None))
    harness = make_harness({"chat": echo}, serve={"shadow_rate": 1.0})
    config = write_config(harness.home, auto_rollback=False)

    async def scenario() -> None:
        async with harness.running(), harness.http() as http:
            for i in range(4):
                body = {"model": "chat", "messages": [{"role": "user", "content": f"hello {i}"}]}
                assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
            serving = harness.app.state.serving
            while serving.shadows:
                await asyncio.gather(*list(serving.shadows))

    asyncio.run(scenario())
    loop = stages.Loop.open(config, harness.home)
    args = ["--home", str(harness.home), "--config", str(config), "ingest", str(harness.spool_dir), "--json"]
    result = CliRunner().invoke(cli_app, args)  # a plain `flywheel ingest` of the spool scores them too
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["served"]["chat"]["shadow"]["pairs"] == 4
    rows = loop.warehouse.read(
        lambda con: con.execute(
            "SELECT model_id, metric, value, n, target FROM v_shadow_agreement WHERE workload_id = 'chat'"
        ).fetchall()
    )
    ((model_id, metric, value, n, target),) = rows
    # the teacher's echo is repeated for "hello 1" only: 1 of 4 answers agrees (chat's target is 0.85)
    assert (model_id, metric, value, n, target) == ("chat-v1", "semantic_agreement", 0.25, 4, 0.85)
