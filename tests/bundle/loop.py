"""One real turn of the loop on written logs, then the same logged requests sent through `serve`.

Shared by the parity tests: the served answers must be exactly what `evaluate` scored, on the raw
requests as the application sent them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from flywheel.config import load_config
from flywheel.config.serve import ServeConfig
from flywheel.demo import demo_config_path
from flywheel.evaluate.workflow import EvaluationReport
from flywheel.loop import Loop, curate_stage, evaluate_stage, ingest_stage, train_stage
from flywheel.serve.app import make_app
from flywheel.serve.champions import ChampionWatcher
from flywheel.serve.settings import build_settings
from flywheel.serve.spool import SpoolWriter


@dataclass
class Turn:
    loop: Loop
    report: EvaluationReport

    @property
    def champion(self) -> str:
        assert self.report.decision.winner, self.report.as_dict()["reasons"]
        return self.report.decision.winner

    def evaluated(self) -> dict[str, dict[str, Any]]:
        """interaction id -> the message `evaluate` scored for the winner."""
        scored = self.report.result.models[self.champion]
        return {
            eid: p.message for eid, p in zip(self.report.result.example_ids, scored.predictions, strict=True)
        }


def write_config(home: Path, workload: dict[str, Any]) -> Path:
    path = home / "flywheel.yaml"
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"home": str(home), "workloads": [workload]}, sort_keys=False))
    return path


def run_turn(config: Path, workload_id: str, reference: str = "teacher") -> Turn:
    loop = Loop.open(config)
    ingest_stage(loop, workload_id)
    curate_stage(loop, workload_id)
    trained = train_stage(loop, workload_id)
    assert trained["trained"], trained
    report = evaluate_stage(loop, workload_id, reference=reference, resamples=200)
    return Turn(loop, report)


def logged_requests(loop: Loop, interaction_ids: list[str]) -> dict[str, tuple[dict, dict]]:
    """interaction id -> (request as logged, response message as logged)."""

    def read(con: Any) -> list[tuple[Any, ...]]:
        return con.execute(
            "SELECT id, request, response FROM interactions WHERE list_contains(?, id)", [interaction_ids]
        ).fetchall()

    rows = loop.warehouse.read(read)
    return {i: (orjson.loads(req), orjson.loads(resp).get("message") or {}) for i, req, resp in rows}


def serve(loop: Loop, payloads: list[dict[str, Any]], **serve_options: Any) -> list[httpx.Response]:
    """Each payload POSTed to a real `serve` app over the champions manifest (no teacher configured)."""
    settings = build_settings(loop.config, serve=ServeConfig(**serve_options), environ={})
    watcher = ChampionWatcher(loop.home / "champions.json")
    app = make_app(settings, champions=watcher, teacher_client=None, spool=SpoolWriter(loop.home / "spool"))

    async def scenario() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve", timeout=120) as http:
                health = await http.get("/health")
                assert health.status_code in (200, 503)
                return list(
                    await asyncio.gather(*(http.post("/v1/chat/completions", json=p) for p in payloads))
                )

    return asyncio.run(scenario())


def content(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]


def demo_workload(workload_id: str, logs: Path, student: dict[str, Any]) -> dict[str, Any]:
    workload = (
        load_config(demo_config_path()).workload(workload_id).model_dump(mode="json", exclude_none=True)
    )
    workload["sources"] = [{"path": str(logs / f"{workload_id}.jsonl"), "format": "openai"}]
    workload["students"] = [student]
    workload["gate"] = {"min_agreement": 0.0, "min_cost_reduction": 0.0, "min_format_validity": 0.0}
    return workload
